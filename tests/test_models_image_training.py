"""mammo_helpers.models.image_training: paper 03's cross-entropy recipe, checked against
torch / scikit-learn references and on a toy task a small CNN must learn."""

import numpy as np
import pytest
import torch
from sklearn.metrics import log_loss, roc_auc_score

from mammo_helpers.models import classifiers
from mammo_helpers.models import image_training as it


def toy(n=48, seed=0, size=16):
    """A bright square on half of the images: class 1."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 0.3, (n, 3, size, size)).astype(np.float32)
    y = np.arange(n) % 2
    for i in np.flatnonzero(y):
        r, c = rng.integers(2, size - 6, 2)
        x[i, :, r : r + 4, c : c + 4] += 2.0
    return x, y


def model(seed=0):
    return classifiers.build_classifier("small_cnn", it.CLASSES, seed=seed, width=8, blocks=2)


def test_augment_is_seeded_and_flips_and_rotates():
    x = torch.arange(2 * 1 * 5 * 5, dtype=torch.float32).reshape(2, 1, 5, 5)
    a = it.augment(x, torch.Generator().manual_seed(1))
    b = it.augment(x, torch.Generator().manual_seed(1))
    torch.testing.assert_close(a, b)
    flips = it.augment(x, torch.Generator().manual_seed(1), degrees=0.0)
    for img, out in zip(x, flips, strict=True):  # only the four flips of the image
        candidates = [img, img.flip(-1), img.flip(-2), img.flip(-1).flip(-2)]
        assert any(torch.equal(out, c) for c in candidates)
    none = it.augment(x, torch.Generator().manual_seed(1), hflip=False, vflip=False, degrees=0.0)
    torch.testing.assert_close(none, x)


def test_batches_cover_the_set_once_per_epoch_in_a_seeded_order():
    x, y = toy(10)
    of_epoch = it.batches(x, y, batch_size=4, seed=3)
    first = [yb for _, yb in of_epoch(0)]
    assert [len(b) for b in first] == [4, 4, 2]
    xs = torch.cat([xb for xb, _ in of_epoch(0)])
    assert sorted(map(tuple, xs.flatten(1)[:, :3].tolist())) == sorted(
        map(tuple, torch.as_tensor(x).flatten(1)[:, :3].tolist())
    )
    again = [yb for _, yb in it.batches(x, y, batch_size=4, seed=3)(0)]
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    other = torch.cat([yb for _, yb in of_epoch(1)])
    assert not torch.equal(torch.cat(first), other) or len(set(y)) == 1


def test_loss_probabilities_and_evaluation_match_references():
    x, y = toy(12)
    m = model().eval()
    with torch.no_grad():
        _, logits = m(torch.as_tensor(x))
    ref = torch.nn.functional.cross_entropy(logits, torch.as_tensor(y))
    with torch.no_grad():
        got_loss = float(it.ce_loss(m, (torch.as_tensor(x), torch.as_tensor(y))))
    assert got_loss == pytest.approx(float(ref))
    p = it.predict_proba(m, x)
    np.testing.assert_allclose(p, torch.softmax(logits.double(), 1)[:, 1].numpy(), rtol=1e-6)
    got = it.evaluate(m, x, y)
    assert got["val_loss"] == pytest.approx(log_loss(y, p), rel=1e-6)
    assert got["val_auc"] == pytest.approx(roc_auc_score(y, p))
    assert got["val_accuracy"] == pytest.approx(np.mean((p >= 0.5) == y))


def test_training_learns_a_toy_task_and_keeps_the_best_epoch():
    x, y = toy(64, seed=1)
    xv, yv = toy(32, seed=2)
    m = model()
    history = it.train(m, (x, y), (xv, yv), epochs=12, lr=3e-3, batch_size=16, seed=0)
    frame = history.frame()
    assert frame.loss.iloc[-1] < frame.loss.iloc[0]
    assert history.best_epoch == int(frame.val_loss.idxmin())
    assert it.evaluate(m.eval(), xv, yv)["val_loss"] == pytest.approx(
        frame.val_loss.min(), rel=1e-5
    )
    assert frame.val_auc.max() > 0.9
    sgd = it.train(model(), (x, y), (xv, yv), epochs=3, optimizer="sgd", lr=0.01,
                   scheduler="cosine_warm_restarts", t0=2, seed=0)  # fmt: skip
    lrs = sgd.frame().lr.tolist()
    assert lrs[0] == pytest.approx(0.01) and lrs[1] < lrs[0] and lrs[2] == pytest.approx(0.01)


def test_plateau_schedule_watches_the_training_loss_by_default(monkeypatch):
    seen = []
    original = torch.optim.lr_scheduler.ReduceLROnPlateau.step
    monkeypatch.setattr(
        torch.optim.lr_scheduler.ReduceLROnPlateau, "step",
        lambda self, value: (seen.append(value), original(self, value))[1],
    )  # fmt: skip
    x, y = toy(16)
    h = it.train(model(), (x, y), (x, y), epochs=2, batch_size=8, seed=0)
    assert seen == pytest.approx(h.frame().loss.tolist())
    seen.clear()
    h = it.train(model(), (x, y), (x, y), epochs=2, batch_size=8, seed=0, plateau_on="val_loss")
    assert seen == pytest.approx(h.frame().val_loss.tolist())
    with pytest.raises(KeyError, match="plateau_monitor 'nope'"):
        it.train(model(), (x, y), (x, y), epochs=1, seed=0, plateau_on="nope")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(optimizer="rmsprop"), "optimizer must be one of"),
        (dict(scheduler="step"), "scheduler must be one of"),
    ],
)
def test_bad_settings_are_named(kwargs, match):
    x, y = toy(8)
    with pytest.raises(ValueError, match=match):
        it.train(model(), (x, y), (x, y), epochs=1, **kwargs)


def test_bad_data_is_named():
    x, y = toy(8)
    with pytest.raises(ValueError, match="labels must be 0 .* found \\[2\\]"):
        it.batches(x, np.where(y == 1, 2, 0), batch_size=4, seed=0)
    with pytest.raises(ValueError, match="x must be \\(N, C, H, W\\)"):
        it.batches(x[:, 0], y, batch_size=4, seed=0)
