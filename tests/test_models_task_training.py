"""mammo_helpers.models.task_training: paper 04's training recipes (chapter 04)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mammo_helpers.models import image_training, multiview, task_training


def _images(n=24, seed=0, hw=(16, 12)):
    """Class 1 has a bright square, class 0 does not."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0.2, 0.05, (n, 1, *hw)).astype(np.float32)
    y = np.arange(n) % 2
    x[y == 1, :, 4:9, 3:8] += 1.0
    return x, y


def test_augment_keeps_shapes_and_a_four_view_batch_is_augmented_view_by_view():
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(3, 4, 1, 20, 16)
    out = task_training.augment(x, gen, hflip=False, degrees=15, crop=(0.85, 1.0), shear=5)
    assert out.shape == x.shape and not torch.equal(out, x)
    # without any transform the batch comes back unchanged
    same = task_training.augment(x[:, 0], gen, hflip=False, degrees=0, crop=None, shear=0)
    torch.testing.assert_close(same, x[:, 0])


def test_augment_flip_only_mirrors_and_crop_zooms_in():
    img = torch.zeros(1, 1, 20, 20)
    img[..., :, :5] = 1.0  # a bright left band
    flips = [
        task_training.augment(img, torch.Generator().manual_seed(s), degrees=0, crop=None)
        for s in range(20)
    ]
    sides = {(float(f[..., :5].mean()), float(f[..., -5:].mean())) for f in flips}
    assert sides == {(1.0, 0.0), (0.0, 1.0)}  # either untouched or mirrored
    ramp = torch.linspace(0, 1, 40).repeat(40, 1)[None, None]
    zoom = task_training.augment(
        ramp, torch.Generator().manual_seed(0), hflip=False, degrees=0, crop=(0.5, 0.5)
    )
    # a crop of half the area spans ~71 % of the ramp's range, resized back to 40 px
    span = float(zoom[..., 20, -1] - zoom[..., 20, 0])
    assert 0.6 < span < 0.8


def test_balanced_batches_draw_both_classes_equally_and_repeat_with_the_seed():
    x = np.zeros((100, 1, 4, 4), np.float32)
    y = (np.arange(100) < 10).astype(int)  # 10 % positives
    of_epoch = task_training.batches(x, y, batch_size=50, seed=1, balanced=True)
    ys = torch.cat([yb for _, yb in of_epoch(0)])
    assert len(ys) == 100 and 0.35 < ys.float().mean() < 0.65
    again = torch.cat([yb for _, yb in task_training.batches(x, y, batch_size=50, seed=1,
                                                               balanced=True)(0)])  # fmt: skip
    assert torch.equal(ys, again)
    plain = torch.cat([yb for _, yb in task_training.batches(x, y, batch_size=50, seed=1)(0)])
    assert int(plain.sum()) == 10  # a plain epoch is a permutation
    with pytest.raises(ValueError, match="both classes"):
        next(task_training.batches(x, np.zeros(100, int), batch_size=5, seed=0, balanced=True)(0))
    with pytest.raises(ValueError, match="labels must be 0 or 1"):
        task_training.batches(x, np.full(100, 2), batch_size=5, seed=0)


def test_swa_ends_with_the_average_of_the_weights_from_swa_start(monkeypatch):
    x, y = _images()
    snapshots = []
    evaluate = image_training.evaluate

    def recording(model, xv, yv):
        snapshots.append({k: v.detach().clone() for k, v in model.state_dict().items()})
        return evaluate(model, xv, yv)

    monkeypatch.setattr(image_training, "evaluate", recording)
    model = multiview.findings_model(seed=0, hidden=8, width=4, blocks=2)
    history = task_training.train(model, (x, y), (x, y), epochs=4, swa_start=1, seed=0)
    assert len(snapshots) == 4 and [r["swa_epochs"] for r in history.rows] == [0, 1, 2, 3]
    final = model.state_dict()
    for name, value in final.items():
        if value.dtype.is_floating_point:
            expected = torch.stack([s[name] for s in snapshots[1:]]).mean(0)
            torch.testing.assert_close(value, expected, rtol=1e-5, atol=1e-6)


def test_training_learns_and_without_swa_keeps_the_best_epoch():
    x, y = _images(48)
    xv, yv = _images(24, seed=1)
    model = multiview.findings_model(seed=0, hidden=16, width=8, blocks=2)
    history = task_training.train(
        model, (x, y), (xv, yv), epochs=12, lr=3e-3, batch_size=8, stop_on="val_auc",
        stop_patience=12, augment_kw={"hflip": True, "vflip": True, "degrees": 0, "crop": None},
        balanced=True, seed=0,
    )  # fmt: skip
    frame = history.frame()
    p, feats = task_training.predict(model, xv)
    assert feats.shape == (24, model.feature_dim) and p.shape == (24,)
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(yv, p) == pytest.approx(frame.val_auc.max())
    assert frame.val_auc.max() > 0.9
    with pytest.raises(ValueError, match="stop_on must be one of"):
        task_training.train(model, (x, y), (xv, yv), epochs=1, stop_on="auc")


def test_four_view_model_trains_through_the_same_recipe():
    rng = np.random.default_rng(0)
    x = rng.random((8, 4, 1, 16, 12)).astype(np.float32)
    y = np.arange(8) % 2
    d = multiview.FourViewDensity(multiview.density_view_model(seed=0, width=4, blocks=2))
    history = task_training.train(
        d, (x, y), (x, y), epochs=2, plateau=True, swa_start=1,
        augment_kw={"hflip": False, "degrees": 15, "crop": (0.85, 1.0)},
    )  # fmt: skip
    assert len(history.rows) == 2
    p, feats = task_training.predict(d, x)
    assert feats.shape == (8, d.feature_dim) and np.all((p >= 0) & (p <= 1))


def test_augment_shifts_and_zooms_within_their_ranges_and_draws_nothing_extra_without():
    img = torch.zeros(1, 1, 41, 41)
    img[..., 20, 20] = 1.0  # an impulse at the centre
    moves = set()
    for s in range(30):
        out = task_training.augment(
            img, torch.Generator().manual_seed(s), hflip=False, degrees=0, crop=None,
            translate=0.1,
        )  # fmt: skip
        r, c = np.unravel_index(int(out[0, 0].argmax()), (41, 41))
        moves.add((int(r) - 20, int(c) - 20))
        assert abs(r - 20) <= 4 and abs(c - 20) <= 4  # 10 % of 41 px, rounded
    assert len(moves) > 5  # it does move, in both directions
    assert min(m[1] for m in moves) < 0 < max(m[1] for m in moves)
    ramp = torch.linspace(-1, 1, 41).repeat(41, 1)[None, None]
    slopes = []
    for s in range(30):
        out = task_training.augment(
            ramp, torch.Generator().manual_seed(s), hflip=False, degrees=0, crop=None, zoom=0.2
        )
        slopes.append(
            float(out[0, 0, 20, 25] - out[0, 0, 20, 15])
            / float(ramp[0, 0, 20, 25] - ramp[0, 0, 20, 15])
        )
    # a zoom by z stretches the ramp by z: slopes in [0.8, 1.2], both sides of 1
    assert 0.79 < min(slopes) < 1.0 < max(slopes) < 1.21
    # without shift or zoom the generator advances exactly as before (chapter 04's draws)
    gen_a, gen_b = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    task_training.augment(torch.rand(2, 1, 8, 8), gen_a, degrees=5, crop=(0.9, 1.0))
    torch.rand(14, generator=gen_b)
    assert torch.equal(torch.rand(4, generator=gen_a), torch.rand(4, generator=gen_b))


def test_precision_reaches_the_training_loop():
    """PRECISION: bf16 autocast trains the same recipe (loss finite and falling) to other
    weights than fp32; fp16 off CUDA is refused, naming the parameter."""
    x, y = _images(32)
    runs = {}
    for precision in ("fp32", "bf16"):
        model = multiview.findings_model(seed=0, hidden=16, width=8, blocks=2)
        history = task_training.train(
            model, (x, y), (x, y), epochs=3, lr=3e-3, batch_size=8, seed=0, precision=precision
        )
        losses = history.column("loss")
        assert np.isfinite(losses).all() and losses[-1] < losses[0]
        runs[precision] = model.state_dict()
    assert any(not torch.equal(runs["fp32"][k], runs["bf16"][k]) for k in runs["fp32"])
    with pytest.raises(ValueError, match="PRECISION 'fp16' needs a CUDA device"):
        task_training.train(model, (x, y), (x, y), epochs=1, precision="fp16")
