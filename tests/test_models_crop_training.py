"""mammo_helpers.models.crop_training: the weighted epoch draws, the focal-loss training
recipe on crops a small CNN can learn (bright squares = "mass"), prediction and the cache."""

import numpy as np
import pytest
import torch

import mammo_helpers as mh

ct = mh.models.crop_training
crops = mh.data.crops
LABELS = ("No Finding", "mass")


def _rois(n=12, seed=0):
    rng = np.random.default_rng(seed)
    rois, findings = {}, {}
    for i in range(n):
        img = 0.2 + 0.05 * rng.random((48, 40, 3)).astype(np.float32)
        found = []
        if i % 2 == 0:
            x, y = rng.integers(4, 24), rng.integers(4, 32)
            img[y : y + 12, x : x + 12] = 0.9
            found = [{"label": "mass", "xmin": x, "ymin": y, "xmax": x + 12, "ymax": y + 12}]
        rois[f"im{i}"], findings[f"im{i}"] = img, found
    return rois, findings


def _dataset(train=True, seed=0):
    rois, findings = _rois(seed=seed)
    samples = crops.samples_from_rois(rois, findings, LABELS)
    return crops.CropDataset(samples, rois, LABELS, size_px=16, train=train, seed=seed), samples


def test_epoch_draws_are_weighted_and_repeatable():
    dataset, samples = _dataset()
    weights = np.where([s.is_normal for s in samples], 0.0, 1.0)
    of_epoch = ct.batches(dataset, weights, batch_size=4, seed=3)
    first = torch.cat([y for _, y in of_epoch(0)])
    assert len(first) == len(dataset) and (first[:, 1] == 1).all()  # normals weigh 0
    again = torch.cat([x for x, _ in of_epoch(0)])
    assert torch.equal(again, torch.cat([x for x, _ in of_epoch(0)]))
    assert not torch.equal(again, torch.cat([x for x, _ in of_epoch(1)]))
    with pytest.raises(ValueError, match="weights must be"):
        ct.batches(dataset, weights[:-1], batch_size=4, seed=0)


def test_loader_workers_cut_the_same_crops_as_the_main_process():
    """NUM_WORKERS: two loader processes (``mh.devices.loader_options``) give the epoch's
    crops, in order, exactly as the main process does, and a new epoch new crops."""
    dataset, samples = _dataset()
    weights = np.where([s.is_normal for s in samples], 0.5, 1.0)
    here = ct.batches(dataset, weights, batch_size=4, seed=3)
    options = mh.devices.loader_options(torch.device("cpu"), 2)
    assert options["num_workers"] == 2 and options["persistent_workers"]
    workers = ct.batches(dataset, weights, batch_size=4, seed=3, loader=options)
    for epoch in (0, 1):
        expected = [x for x, _ in here(epoch)]
        got = [x for x, _ in workers(epoch)]
        assert len(got) == len(expected) and all(map(torch.equal, got, expected))
    assert not torch.equal(torch.cat(got), torch.cat([x for x, _ in here(0)]))


def test_training_learns_bright_squares_and_predicts_probabilities(tmp_path):
    dataset, samples = _dataset()
    model = mh.models.classifiers.build_classifier("small_cnn", LABELS, width=8, seed=0)
    weights = crops.sampling_weights(samples, LABELS)
    settings = {"epochs": 12, "seed": 0}

    def run():
        return ct.train(model, dataset, weights, epochs=12, batch_size=8, lr=3e-3, seed=0)

    history, hit = ct.cached(model, "toy-crops", settings, run, cache_dir=tmp_path)
    losses = history.column("loss")
    assert not hit and len(losses) == 12 and np.mean(losses[-3:]) < np.mean(losses[:3])
    lrs = history.column("lr")
    assert lrs[0] == pytest.approx(3e-3) and lrs[-1] < lrs[0] / 10  # cosine decay
    test_set, test_samples = _dataset(train=False, seed=1)
    masks = {k: np.ones(v.shape[:2], bool) for k, v in test_set.rois.items()}
    test_set.samples = crops.normal_test_boxes(test_samples, masks, seed=0)
    x, y = ct.dataset_arrays(test_set)
    probs = ct.predict(model, x, batch_size=5)
    assert probs.shape == y.shape and ((probs >= 0) & (probs <= 1)).all()
    assert mh.metrics.roc_auc(y[:, 1], probs[:, 1]) > 0.8
    again = mh.models.classifiers.build_classifier("small_cnn", LABELS, width=8, seed=5)
    _, hit = ct.cached(again, "toy-crops", settings, run, cache_dir=tmp_path)
    assert hit and np.allclose(ct.predict(again, x), probs)


def test_a_sample_drawn_twice_in_an_epoch_gets_two_crops():
    dataset, samples = _dataset()
    weights = np.zeros(len(samples))
    weights[0] = 1.0  # every draw is sample 0
    xs = torch.cat([x for x, _ in ct.batches(dataset, weights, batch_size=4, seed=0, draws=2)(0)])
    assert len(xs) == 2 * len(dataset)
    assert len({x.numpy().tobytes() for x in xs}) == len(xs)
    with pytest.raises(ValueError, match="draws"):
        ct.batches(dataset, weights, batch_size=4, seed=0, draws=0)
    with pytest.raises(ValueError, match="not all 0"):
        ct.batches(dataset, np.zeros(len(samples)), batch_size=4, seed=0)
