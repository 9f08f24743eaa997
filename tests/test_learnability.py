"""mammo_helpers.learnability: patches land on the lesion, the CNN learns a learnable task
and not a shuffled one, per-kind AUCs match scikit-learn, runs are cached and repeatable."""

import numpy as np
import pandas as pd
import pytest
import torch
from mixed_devices import NoMixedDevices
from sklearn.metrics import roc_auc_score

import mammo_helpers as mh

lb = mh.learnability


def _blob_samples(n=240, px=24, seed=0, signal=0.3):
    """Noise patches; positives carry a faint disc at a random place near the centre."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0.5, 0.1, (n, px, px)).astype(np.float32)
    y = np.arange(n) % 2
    yy, xx = np.mgrid[:px, :px]
    for i in np.flatnonzero(y):
        cy, cx = rng.integers(px // 3, 2 * px // 3, 2)
        x[i][(yy - cy) ** 2 + (xx - cx) ** 2 <= 9] += signal
    kind = np.where(y == 1, np.where(np.arange(n) % 4 == 1, "mass", "calcification"), "normal")
    return lb.Samples(
        y, kind.astype(object), np.array([f"p{i // 4}" for i in range(n)], dtype=object), x
    )


def _split(s):
    test = np.isin(s.patient_id, [f"p{i}" for i in range(0, 60, 4)])
    return s.take(~test), s.take(test)


def test_cnn_learns_a_visible_lesion_and_not_shuffled_labels():
    train, test = _split(_blob_samples())
    run = lb.train_cnn(train, epochs=6, width=8, blocks=3, batch_size=32)
    assert roc_auc_score(test.y, lb.predict(run, test)) > 0.95
    shuffled = lb.Samples(
        np.random.default_rng(0).permutation(train.y), train.kind, train.patient_id, train.x
    )
    chance = roc_auc_score(
        test.y, lb.predict(lb.train_cnn(shuffled, epochs=6, width=8, blocks=3), test)
    )
    assert 0.25 < chance < 0.75
    assert len(run.loss) == 6 and run.loss[-1] < run.loss[0]


def test_score_map_is_the_cnn_on_each_window_inside_the_mask():
    run = lb.train_cnn(_blob_samples(64, px=32), epochs=1, width=4, blocks=3)
    img = np.random.default_rng(2).random((96, 80)).astype(np.float32)
    mask = np.zeros(img.shape, bool)
    mask[:, :40] = True  # window centres at x = 16 + 8j: j = 0, 1, 2 inside
    dense = lb.score_map(run, img, 8, mask)
    assert dense.shape == ((96 - 32) // 8 + 1, (80 - 32) // 8 + 1)
    assert np.isfinite(dense[:, :3]).all() and np.isnan(dense[:, 3:]).all()
    net = run.model()
    for i, j in [(0, 0), (2, 1), (dense.shape[0] - 1, 2)]:
        window = torch.from_numpy(img[None, None, 8 * i : 8 * i + 32, 8 * j : 8 * j + 32].copy())
        with torch.no_grad():
            assert dense[i, j] == pytest.approx(net(window).item(), abs=1e-5)


def _lesion_image(seed, at=(95, 95), side=6):
    img = _breast_image(noise=100, seed=seed)
    (y, x) = at
    img[y : y + side, x : x + side] += 600  # a 3 mm square at 0.5 mm
    box = {"xmin": float(x), "ymin": float(y), "xmax": float(x + side), "ymax": float(y + side)}
    return img, [{"label": "mass", **box, "malignant": True}]


@pytest.fixture(scope="module")
def square_lesion_model(tmp_path_factory):
    """A patch CNN trained end to end on DICOM files: patches of 16 images (every other one
    with a bright 3 mm square finding at a random place), 8 mm patches at 16 px."""
    rng = np.random.default_rng(0)
    images, findings = [], []
    for seed in range(16):
        if seed % 2:
            img, found = _lesion_image(seed, at=tuple(rng.integers(40, 150, 2)))
        else:
            img, found = _breast_image(noise=100, seed=seed), []
        images.append(img)
        findings.append(found)
    train = lb.lesion_patches(
        _manifest(tmp_path_factory.mktemp("train"), images, findings),
        size_mm=8,
        px=16,
        normals_per_image=8,
        crops_per_lesion=8,
        jitter_mm=1.5,
    )
    return lb.train_cnn(train, epochs=15, width=8, blocks=2, batch_size=16)


def test_patches_train_a_cnn_whose_sliding_score_finds_the_lesion_image(
    tmp_path, square_lesion_model
):
    """Slid over two new images, the patch CNN scores the one with a lesion higher,
    wherever the lesion is."""
    run = square_lesion_model
    img, found = _lesion_image(99, at=(150, 60))
    test = _manifest(tmp_path / "test", [img, _breast_image(noise=100, seed=98)], [found, []])
    scores = lb.image_scores(run, test, size_mm=8)
    assert scores.shape == (2,) and scores[0] > scores[1]
    assert lb.image_labels(test).y.tolist() == [1, 0]


def test_same_seed_same_weights():
    s = _blob_samples(64)
    a, b = (lb.train_cnn(s, epochs=1, width=4, blocks=2, seed=3) for _ in range(2))
    assert all(np.array_equal(a.state[k], b.state[k]) for k in a.state)


def test_evaluate_per_kind_matches_sklearn():
    s = _blob_samples(80)
    scores = np.random.default_rng(1).normal(size=len(s)) + s.y
    table = lb.evaluate(scores, s, n_boot=50).set_index("kind")
    assert list(table.index) == ["all", "calcification", "mass"]
    for kind in ("mass", "calcification"):
        keep = (s.y == 0) | (s.kind == kind)
        assert table.loc[kind, "auc"] == pytest.approx(roc_auc_score(s.y[keep], scores[keep]))
        assert table.loc[kind, "positives"] == 20 and table.loc[kind, "negatives"] == 40
    assert table.loc["all", "auc"] == pytest.approx(roc_auc_score(s.y, scores))


def test_pooling_reads_one_logit_map_and_a_patch_model_scores_whole_images():
    """avg / max pool the same 1x1-conv logit map, so a patch model's weights score a larger
    image by its highest location; avg pooling equals a linear layer on averaged features."""
    patch = lb.train_cnn(_blob_samples(64, px=16), epochs=1, width=4, blocks=2)
    img = torch.from_numpy(np.random.default_rng(5).random((2, 1, 40, 32)).astype(np.float32))
    nets = {}
    for pool in lb.POOLS:
        nets[pool] = lb.small_cnn(4, 2, pool).eval()
        nets[pool].load_state_dict(patch.state)
    with torch.no_grad():
        features = nets["avg"][:-3](img)  # after the blocks and dropout: (2, 8, 10, 8)
        logit_map = nets["avg"][-3](features)[:, 0]
        assert nets["max"](img)[:, 0] == pytest.approx(logit_map.amax((1, 2)), abs=1e-6)
        assert nets["avg"](img)[:, 0] == pytest.approx(logit_map.mean((1, 2)), abs=1e-6)
        conv = nets["avg"][-3]
        linear = features.mean((2, 3)) @ conv.weight[0, :, 0, 0] + conv.bias
        assert nets["avg"](img)[:, 0] == pytest.approx(linear, abs=1e-6)
    with pytest.raises(ValueError, match="pool must be one of avg, max"):
        lb.small_cnn(pool="mean")


def test_training_from_a_patch_model_starts_at_its_weights(tmp_path):
    patch = lb.train_cnn(_blob_samples(64, px=16), epochs=1, width=4, blocks=2)
    start = lb._network(None, None, "max", patch)
    assert all(torch.equal(start.state_dict()[k], patch.state[k]) for k in patch.state)
    images = _blob_samples(32, px=24, seed=1)
    run = lb.train_cnn(images, epochs=1, lr=1e-12, pool="max", init=patch)
    assert (run.settings["width"], run.settings["blocks"], run.settings["pool"]) == (4, 2, "max")
    conv = "0.weight"
    assert torch.allclose(run.state[conv], patch.state[conv], atol=1e-6)
    assert run.settings["init"] == mh.cache.weights_digest(patch.state)
    with pytest.raises(ValueError, match="init has width 4 and 2 blocks; got width=8"):
        lb.train_cnn(images, epochs=1, width=8, init=patch)
    kw = {"epochs": 1, "pool": "max", "cache_dir": tmp_path}
    _, hit = lb.train_cached(images, init=patch, **kw)
    other = lb.train_cnn(_blob_samples(64, px=16, seed=2), epochs=1, width=4, blocks=2)
    _, hit_other = lb.train_cached(images, init=other, **kw)
    _, hit_again = lb.train_cached(images, init=patch, **kw)
    assert (hit, hit_other, hit_again) == (False, False, True)


def test_train_cached_hits_on_same_data_and_misses_on_other(tmp_path):
    s = _blob_samples(48)
    kw = {"epochs": 1, "width": 4, "blocks": 2}
    first, hit1 = lb.train_cached(s, cache_dir=tmp_path, **kw)
    again, hit2 = lb.train_cached(s, cache_dir=tmp_path, **kw)
    other, hit3 = lb.train_cached(s.take(np.arange(40)), cache_dir=tmp_path, **kw)
    assert (hit1, hit2, hit3) == (False, True, False)
    assert again.loss == first.loss and again.settings == first.settings


def test_the_cnn_trains_on_the_given_device_and_where_is_not_in_the_cache_key(tmp_path):
    """DEVICE: the network, its loss and every batch go to the device (``meta`` stands in
    for a GPU: the run stops at the first value read back, with no operation mixing
    devices); the weights come back on the CPU; the cache key does not depend on it."""
    samples = _blob_samples(n=16)
    with pytest.raises(RuntimeError, match="meta tensors"), NoMixedDevices():
        lb.train_cnn(samples, epochs=1, batch_size=8, device="meta")
    run = lb.train_cnn(samples, epochs=1, batch_size=8, device=torch.device("cpu"))
    assert {v.device.type for v in run.state.values()} == {"cpu"}
    first, _ = lb.train_cached(samples, cache_dir=tmp_path, epochs=1, batch_size=8)
    again, hit = lb.train_cached(
        samples, cache_dir=tmp_path, epochs=1, batch_size=8, device=torch.device("cpu")
    )
    assert hit and again.loss == first.loss


def test_torchrun_training_is_cached_for_the_chapter_and_matches_one_process(tmp_path):
    s = _blob_samples(48)
    kw = {"epochs": 2, "width": 4, "blocks": 2, "batch_size": 16}
    two, hit = lb.train_cached(s, cache_dir=tmp_path / "a", launcher="torchrun", nproc=2, **kw)
    assert hit  # trained by the two ranks, then read from the cache by this process
    assert len(list((tmp_path / "a" / "models").iterdir())) == 1
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["models"]  # the samples file went
    one, hit_one = lb.train_cached(s, cache_dir=tmp_path / "b", **kw)
    assert not hit_one and two.settings == one.settings
    # Batch norm normalises each rank's half batch (SyncBatchNorm needs GPUs), so the runs
    # differ a little (measured: 0.24 % in the loss); test_distributed checks exact
    # agreement on a net without batch norm.
    assert two.loss == pytest.approx(one.loss, rel=0.01)
    assert two.loss != one.loss
    for name, value in one.state.items():
        assert torch.allclose(two.state[name].float(), value.float(), atol=0.02), name
    with pytest.raises(ValueError, match="LAUNCHER must be one of in-process, torchrun"):
        lb.train_cached(s, cache_dir=tmp_path, launcher="slurm", **kw)


def test_learning_curve_nests_patients_and_refuses_too_many(tmp_path):
    train, test = _split(_blob_samples())
    curve = lb.learning_curve(
        train, test, [5, 20], cache_dir=tmp_path, epochs=2, width=4, blocks=2, n_boot=20
    )
    assert curve.patients.tolist() == [5, 20] and curve.samples.tolist() == [20, 80]
    assert curve.auc.between(0, 1).all()
    with pytest.raises(ValueError, match="99 patients asked, the training set has 45"):
        lb.learning_curve(train, test, [99], cache_dir=tmp_path, epochs=1)


def _manifest(tmp_path, pixels, findings, spacing=0.5):
    tmp_path.mkdir(parents=True, exist_ok=True)
    paths, rows = [], []
    for i, (img, found) in enumerate(zip(pixels, findings, strict=True)):
        path = mh.io.write_dicom(
            tmp_path / f"{i}.dcm",
            img,
            pixel_spacing_mm=spacing,
            laterality="R",
            view="CC",
            patient_id=f"p{i}",
            study_id=f"s{i}",
            image_id=f"i{i}",
        )
        rows.append(
            mh.data.manifest.manifest_row(
                patient_id=f"p{i}",
                study_id=f"s{i}",
                image_id=f"i{i}",
                path=path,
                laterality="R",
                view="CC",
                site="x",
                pixel_spacing_mm=spacing,
                findings=found,
            )
        )
        paths.append(path)
    return pd.DataFrame(rows)


def _breast_image(h=200, w=160, noise=0.0, seed=0):
    img = np.zeros((h, w), np.uint16)
    tissue = np.random.default_rng(seed).normal(1000, noise, (160, 120))
    img[20:180, 40:160] = tissue.clip(500, 1500)  # a right breast against the chest wall
    return img


def test_patches_are_centred_on_the_finding_at_the_physical_size(tmp_path):
    img = _breast_image()
    img[95:105, 95:105] = 4000  # the lesion, 5 mm at 0.5 mm
    finding = {
        "label": "mass",
        "xmin": 95.0,
        "ymin": 95.0,
        "xmax": 105.0,
        "ymax": 105.0,
        "malignant": True,
    }
    df = _manifest(tmp_path, [img, _breast_image()], [[finding], []])
    s = lb.lesion_patches(df, size_mm=20, px=16, normals_per_image=3, margin_mm=5)
    assert s.y.tolist() == [1, 0, 0, 0] and s.kind.tolist() == ["mass"] + ["normal"] * 3
    assert s.x.shape == (4, 16, 16) and s.patient_id.tolist() == ["p0"] + ["p1"] * 3
    lesion = s.x[0]  # 40 px field -> lesion spans 4 of 16 px, in the middle
    assert lesion[6:10, 6:10].min() == pytest.approx(1.0) and lesion[:4].max() < 1.0
    assert (s.x[1:] < 1.0).all()  # normal patches: breast only, no lesion


def test_whole_images_flip_to_the_left_and_label_by_finding(tmp_path):
    img = _breast_image()
    img[30:40, 140:150] = 4000  # near the right edge of a right breast
    finding = {
        "label": "calcification",
        "xmin": 140.0,
        "ymin": 30.0,
        "xmax": 150.0,
        "ymax": 40.0,
        "malignant": None,
    }
    df = _manifest(tmp_path, [img, _breast_image()], [[finding], []])
    s = lb.whole_images(df, size_hw=(32, 24))
    assert s.x.shape == (2, 32, 24) and s.y.tolist() == [1, 0]
    assert s.kind.tolist() == ["calcification", "normal"]
    bright = np.unravel_index(np.argmax(s.x[0]), s.x[0].shape)
    assert bright[1] < 12  # mirrored: the lesion is now on the left half


def test_samples_need_spacing_and_classes(tmp_path):
    df = _manifest(tmp_path, [_breast_image()], [[]])
    df["pixel_spacing_mm"] = np.nan
    with pytest.raises(ValueError, match="'i0' has no pixel spacing"):
        lb.lesion_patches(df)
    with pytest.raises(ValueError, match="lesion and normal"):
        lb.train_cnn(_blob_samples(8).take(np.array([0, 2, 4])), epochs=1)


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"px": 4}, "px must be an integer >= 8"),
        ({"crops_per_lesion": 0}, "crops_per_lesion must be an integer >= 1"),
        ({"normals_per_image": -1}, "normals_per_image"),
        ({"size_mm": 0}, "size_mm must be a finite number > 0"),
        ({"jitter_mm": float("nan")}, "jitter_mm"),
        ({"margin_mm": -1.0}, "margin_mm must be a finite number >= 0"),
    ],
)
def test_lesion_patches_refuse_bad_settings(tmp_path, kwargs, pattern):
    df = _manifest(tmp_path, [_breast_image()], [[]])
    with pytest.raises(ValueError, match=pattern):
        lb.lesion_patches(df, **kwargs)


# --------------------------------------------------------------------------- search model
def _monte_carlo_search_auc(location_auc, k, n=100_000, seed=0):
    """The search model simulated: k N(0,1) scores per normal image; one of a lesion
    image's k scores shifted by d'; the image score is the maximum."""
    from scipy.stats import norm

    rng = np.random.default_rng(seed)
    d = np.sqrt(2) * norm.ppf(location_auc)
    normal = rng.standard_normal((n, k)).max(1)
    lesion = rng.standard_normal((n, k))
    lesion[:, 0] += d
    y = np.r_[np.zeros(n), np.ones(n)]
    return roc_auc_score(y, np.r_[normal, lesion.max(1)])


@pytest.mark.parametrize("auc", [0.55, 0.8, 0.97])
def test_search_auc_of_one_location_is_the_location_auc(auc):
    assert mh.learnability.search_auc(auc, 1) == pytest.approx(auc, abs=1e-6)


@pytest.mark.parametrize("auc, k", [(0.85, 7), (0.95, 30), (0.7, 3), (0.99, 120)])
def test_search_auc_matches_a_simulation_of_the_search(auc, k):
    expected = _monte_carlo_search_auc(auc, k)
    assert mh.learnability.search_auc(auc, k) == pytest.approx(expected, abs=0.006)


def test_search_auc_falls_with_locations_and_chance_stays_chance():
    aucs = [mh.learnability.search_auc(0.9, k) for k in (1, 2, 10, 100, 1000)]
    assert all(a > b for a, b in zip(aucs, aucs[1:], strict=False))
    assert aucs[-1] < 0.6
    assert mh.learnability.search_auc(0.5, 40) == pytest.approx(0.5, abs=1e-6)


def test_effective_locations_inverts_the_search_model():
    L = mh.learnability
    for k in (2.5, 12.7, 60.0):
        image = L.search_auc(0.88, k)
        assert L.effective_locations(0.88, image) == pytest.approx(k, rel=1e-3)
    assert L.effective_locations(0.88, 0.9) == 1.0  # no search penalty measured
    assert L.effective_locations(0.88, 0.48) == np.inf  # the images at chance
    assert np.isnan(L.effective_locations(0.45, 0.6))  # the locations at chance


def test_location_auc_needed_inverts_the_search_model():
    L = mh.learnability
    needed = [L.location_auc_needed(0.75, k) for k in (1, 10, 60)]
    assert needed[0] == pytest.approx(0.75, abs=1e-6)
    assert needed[0] < needed[1] < needed[2]
    for k, a in zip((1, 10, 60), needed, strict=True):
        assert L.search_auc(a, k) == pytest.approx(0.75, abs=1e-6)


@pytest.mark.parametrize(
    "call, pattern",
    [
        (lambda L: L.search_auc(1.0, 5), "location_auc"),
        (lambda L: L.search_auc(float("nan"), 5), "location_auc"),
        (lambda L: L.search_auc(0.8, 0.5), "locations"),
        (lambda L: L.search_auc(0.8, float("inf")), "locations"),
        (lambda L: L.search_auc(0.8, True), "locations"),
        (lambda L: L.effective_locations(1.5, 0.6), "location_auc"),
        (lambda L: L.effective_locations(0.8, 1.2), "image_auc"),
        (lambda L: L.location_auc_needed(0.5, 10), "image_auc"),
    ],
)
def test_search_model_refuses_bad_values(call, pattern):
    with pytest.raises(ValueError, match=pattern):
        call(mh.learnability)


def _monte_carlo_hit_rate(location_auc, k, n=200_000, seed=1):
    """The Pointing Game simulated: does the lesion's score beat k - 1 normal scores?"""
    from scipy.stats import norm

    rng = np.random.default_rng(seed)
    lesion = rng.standard_normal(n) + np.sqrt(2) * norm.ppf(location_auc)
    others = rng.standard_normal((n, k - 1)).max(1)
    return float((lesion > others).mean())


@pytest.mark.parametrize("auc, k", [(0.9, 10), (0.8, 40), (0.97, 200), (0.6, 3)])
def test_pointing_hit_rate_matches_a_simulation_of_the_game(auc, k):
    expected = _monte_carlo_hit_rate(auc, k)
    assert mh.learnability.pointing_hit_rate(auc, k) == pytest.approx(expected, abs=0.004)


@pytest.mark.parametrize("auc", [0.3, 0.55, 0.8, 0.97])
def test_pointing_hit_rate_hand_cases(auc):
    L = mh.learnability
    assert L.pointing_hit_rate(auc, 1) == pytest.approx(1.0, abs=1e-6)  # nothing to beat
    assert L.pointing_hit_rate(auc, 2) == pytest.approx(auc, abs=1e-6)  # one normal: the AUC
    assert L.pointing_hit_rate(0.5, 7.0) == pytest.approx(1 / 7, abs=1e-6)  # chance


def test_pointing_locations_and_auc_needed_invert_the_hit_rate():
    L = mh.learnability
    for k in (2.5, 12.7, 60.0, 400.0):
        rate = L.pointing_hit_rate(0.9, k)
        assert L.pointing_locations(0.9, rate) == pytest.approx(k, rel=1e-3)
        assert L.pointing_auc_needed(rate, k) == pytest.approx(0.9, abs=1e-6)
    assert L.pointing_locations(0.9, 1.0) == 1.0 and L.pointing_locations(0.9, 0.0) == np.inf
    assert L.pointing_auc_needed(0.05, 10) == 0.5  # below chance (1 / 10): no skill needed
    needed = [L.pointing_auc_needed(0.6, k) for k in (3, 40, 400)]
    assert needed[0] < needed[1] < needed[2] < 1


def test_pointing_search_takes_the_median_number_of_locations():
    """Hit rates made by the model at 10, 40 and 160 locations give back those numbers and
    their median, 40; a label without support (None) or with a perfect AUC stays out."""
    L = mh.learnability
    aucs = {"mass": 0.92, "calcification": 0.82, "asymmetry": 0.97, "other": 1.0, "none": 0.9}
    made_at = {"mass": 10, "calcification": 40, "asymmetry": 160, "other": 40, "none": 40}
    rates = {k: L.pointing_hit_rate(min(a, 0.999), made_at[k]) for k, a in aucs.items()}
    rates["none"] = None
    table, k = L.pointing_search(aucs, rates, target=0.6)
    assert k == pytest.approx(40, rel=1e-3)
    assert table.loc["mass", "locations"] == pytest.approx(10, rel=1e-3)
    assert table.loc["calcification", "predicted"] == pytest.approx(
        rates["calcification"], abs=1e-4
    )
    assert table.loc["mass", "predicted"] == pytest.approx(L.pointing_hit_rate(0.92, 40), abs=1e-4)
    assert np.isnan(table.loc["none", "locations"]) and np.isnan(table.loc["other", "locations"])
    assert np.isnan(table.loc["other", "predicted"])  # an AUC of 1 predicts nothing
    assert np.allclose(table.auc_needed, L.pointing_auc_needed(0.6, k))
    with pytest.raises(ValueError, match="no hit rate for label"):
        L.pointing_search({"mass": 0.9}, {}, target=0.6)
    table, k = L.pointing_search({"mass": 0.9, "calc": 1.0}, {"mass": 0.0, "calc": 0.5}, target=0.6)
    assert np.isnan(k) and table[["predicted", "auc_needed"]].isna().all().all()  # nothing fits


@pytest.mark.parametrize(
    "call, pattern",
    [
        (lambda L: L.pointing_hit_rate(1.0, 5), "location_auc"),
        (lambda L: L.pointing_hit_rate(0.8, 0.5), "locations"),
        (lambda L: L.pointing_locations(0.8, 1.2), "hit_rate"),
        (lambda L: L.pointing_locations(0.8, True), "hit_rate"),
        (lambda L: L.pointing_auc_needed(float("nan"), 10), "hit_rate"),
        (lambda L: L.pointing_auc_needed(1.0, 10), "perfect detector"),
        (lambda L: L.pointing_search({"mass": 0.9}, {"mass": 0.3}, target=2), "hit_rate"),
    ],
)
def test_pointing_model_refuses_bad_values(call, pattern):
    with pytest.raises(ValueError, match=pattern):
        call(mh.learnability)


def test_hard_negatives_are_the_top_windows_clear_of_every_finding(tmp_path, square_lesion_model):
    """A CNN trained on bright squares also fires on a bright square that is no finding:
    mining returns that decoy (the top window clear of the finding), never the lesion."""
    run = square_lesion_model
    img, found = _lesion_image(99, at=(40, 60))  # finding box x 60-66, y 40-46
    img[140:146, 120:126] += 600  # the decoy: a lesion-like square with no finding
    test = _manifest(tmp_path / "test", [img], [found])
    mined = lb.hard_negatives(run, test, size_mm=8, per_image=1)
    assert len(mined) == 1 and mined.y.tolist() == [0] and mined.kind.tolist() == ["normal"]
    assert mined.patient_id.tolist() == ["p0"] and mined.x.shape == (1, 16, 16)
    # 16 px for 8 mm at 0.5 mm per pixel: the image is not resampled; windows every 8 px
    small, zoom, scores = lb._slid(run, test.iloc[0], 8, 8)
    assert zoom == 1.0 and np.isfinite(scores).sum() > 100
    touches = np.zeros(scores.shape, bool)
    for i in range(scores.shape[0]):
        for j in range(scores.shape[1]):  # window rows 8i..8i+15 and cols 8j..8j+15
            touches[i, j] = 8 * i < 46 and 8 * i + 16 > 40 and 8 * j < 66 and 8 * j + 16 > 60
    assert scores[touches].max() > np.nanmedian(scores)  # the lesion fires too
    i, j = np.unravel_index(np.nanargmax(np.where(touches, np.nan, scores)), scores.shape)
    assert 140 - 16 < 8 * i <= 140 and 120 - 16 < 8 * j <= 120  # the decoy is the top one
    np.testing.assert_allclose(mined.x[0], small[8 * i : 8 * i + 16, 8 * j : 8 * j + 16])
    every = lb.hard_negatives(run, test, size_mm=8, per_image=10_000)
    assert len(every) == (np.isfinite(scores) & ~touches).sum()
    with pytest.raises(ValueError, match="per_image"):
        lb.hard_negatives(run, test, size_mm=8, per_image=0)


def test_samples_plus_appends_every_field_and_refuses_other_sizes():
    a, b = _blob_samples(8, px=16, seed=1), _blob_samples(4, px=16, seed=2)
    both = a.plus(b)
    for field in ("y", "kind", "patient_id", "x"):
        np.testing.assert_array_equal(
            getattr(both, field), np.concatenate([getattr(a, field), getattr(b, field)])
        )
    with pytest.raises(ValueError, match="cannot join"):
        a.plus(_blob_samples(4, px=24))
