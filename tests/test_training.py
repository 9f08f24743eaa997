"""mammo_helpers.training: the loop learns, steps schedulers like torch's own formulas, stops
early at the right epoch with the best weights, and refuses bad settings by name."""

import math

import numpy as np
import pytest
import torch

import mammo_helpers as mh

tr = mh.training


def _regression(n=64, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, generator=gen)
    w = torch.tensor([[1.5], [-2.0], [0.5]])
    return x, x @ w + 0.3


def _batches(x, y, size=16):
    return lambda epoch: [(x[i : i + size], y[i : i + size]) for i in range(0, len(x), size)]


def _mse(model, batch):
    return torch.nn.functional.mse_loss(model(batch[0]), batch[1])


def test_fit_learns_a_linear_map_and_records_each_epoch():
    torch.manual_seed(0)
    x, y = _regression()
    model = torch.nn.Linear(3, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    history = tr.fit(model, _batches(x, y), _mse, opt, epochs=40)
    assert len(history.rows) == 40 and history.column("epoch") == list(range(40))
    assert history.rows[-1]["loss"] < 1e-4 < history.rows[0]["loss"]
    assert torch.allclose(model.weight, torch.tensor([[1.5, -2.0, 0.5]]), atol=0.01)
    assert torch.allclose(model.bias, torch.tensor([0.3]), atol=0.01)
    frame = history.frame()
    assert list(frame.columns) == ["epoch", "loss", "lr", "seconds", "samples_per_s"]
    assert (frame.samples_per_s > 0).all() and history.best_epoch is None


def test_epoch_loss_is_the_sample_weighted_mean_of_the_batches():
    """Batches of 3 and 1 samples: the epoch loss weights them 3:1 (computed by hand)."""
    model = torch.nn.Linear(1, 1, bias=False)
    torch.nn.init.zeros_(model.weight)
    x = torch.tensor([[1.0], [1.0], [1.0], [1.0]])
    y = torch.tensor([[1.0], [1.0], [1.0], [3.0]])
    opt = torch.optim.SGD(model.parameters(), lr=0.0)  # no update: losses 1 and 9
    history = tr.fit(model, lambda e: [(x[:3], y[:3]), (x[3:], y[3:])], _mse, opt, epochs=1)
    assert history.rows[0]["loss"] == pytest.approx((3 * 1 + 1 * 9) / 4)


def test_cosine_schedule_records_the_lr_each_epoch_used():
    x, y = _regression()
    model = torch.nn.Linear(3, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, 6, eta_min=0.001)
    history = tr.fit(model, _batches(x, y), _mse, opt, epochs=6, scheduler=sched)
    expected = [0.001 + (0.05 - 0.001) * (1 + math.cos(math.pi * t / 6)) / 2 for t in range(6)]
    assert history.column("lr") == pytest.approx(expected)


def _scripted(values):
    """A validate function returning ``values`` in turn, and the weights seen at each call."""
    seen = []

    def validate(model):
        seen.append(model.weight.detach().clone())
        return {"val_auc": values[len(seen) - 1]}

    return validate, seen


def test_early_stopping_stops_after_patience_and_restores_the_best_weights():
    x, y = _regression()
    model = torch.nn.Linear(3, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    validate, seen = _scripted([0.6, 0.7, 0.705, 0.69, 0.7, 0.9, 0.95])
    stopper = tr.EarlyStopping("val_auc", mode="max", patience=3, min_delta=0.01)
    history = tr.fit(model, _batches(x, y), _mse, opt, epochs=7, validate=validate, stopper=stopper)
    # 0.705 gains only 0.005 <= min_delta: epochs 2, 3, 4 are three without improvement
    assert len(history.rows) == 5 and history.stopped_early
    assert history.best_epoch == 1 and stopper.best == 0.7
    assert torch.equal(model.weight, seen[1])
    assert history.column("val_auc") == [0.6, 0.7, 0.705, 0.69, 0.7]


def test_early_stopping_min_mode_and_no_stop_when_it_keeps_improving():
    stopper = tr.EarlyStopping("loss", mode="min", patience=1)
    model = torch.nn.Linear(1, 1)
    assert [stopper.update(e, v, model) for e, v in enumerate([3.0, 2.0, 1.0])] == [False] * 3
    assert stopper.update(3, 1.0, model) is True  # equal is not better
    assert stopper.best_epoch == 2


def test_plateau_scheduler_reads_the_monitored_value():
    x, y = _regression()
    model = torch.nn.Linear(3, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="max", factor=0.5, patience=0)
    validate, _ = _scripted([0.5, 0.4, 0.3, 0.9])
    stopper = tr.EarlyStopping("val_auc", mode="max", patience=10)
    history = tr.fit(
        model,
        _batches(x, y),
        _mse,
        opt,
        epochs=4,
        scheduler=sched,
        validate=validate,
        stopper=stopper,
    )
    assert history.column("lr") == pytest.approx([0.1, 0.1, 0.05, 0.025])


def test_plateau_monitor_overrides_the_stoppers_value():
    x, y = _regression()
    model = torch.nn.Linear(3, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="max", factor=0.5, patience=0)
    scripted, _ = _scripted([0.5, 0.4, 0.3, 0.9])
    validate = lambda m: {"val_f1": scripted(m)["val_auc"]}  # noqa: E731
    stopper = tr.EarlyStopping("val_loss_unused", mode="max", patience=10)
    history = tr.fit(
        model, _batches(x, y), _mse, opt, epochs=4, scheduler=sched,
        validate=lambda m: validate(m) | {"val_loss_unused": 1.0}, stopper=stopper,
        plateau_monitor="val_f1",
    )  # fmt: skip
    assert history.column("lr") == pytest.approx([0.1, 0.1, 0.05, 0.025])
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, patience=0)
    with pytest.raises(KeyError, match="plateau_monitor 'nope' is not a column"):
        tr.fit(model, _batches(x, y), _mse, opt, epochs=1, scheduler=sched, plateau_monitor="nope")


def test_validation_runs_in_eval_mode_without_gradients_and_training_in_train_mode():
    model = torch.nn.Sequential(torch.nn.Linear(3, 1), torch.nn.Dropout(0.5))
    modes = []

    def loss(m, batch):
        modes.append(("train", m.training, torch.is_grad_enabled()))
        return _mse(m, batch)

    def validate(m):
        modes.append(("val", m.training, torch.is_grad_enabled()))
        return {"val_loss": 1.0}

    x, y = _regression(16)
    tr.fit(
        model,
        _batches(x, y),
        loss,
        torch.optim.SGD(model.parameters(), lr=0.01),
        epochs=1,
        validate=validate,
    )
    assert modes == [("train", True, True), ("val", False, False)]


def test_batches_are_drawn_again_every_epoch():
    x, y = _regression(32)
    drawn = []

    def batches(epoch):
        drawn.append(epoch)
        return [(x[epoch : epoch + 8], y[epoch : epoch + 8])]

    model = torch.nn.Linear(3, 1)
    tr.fit(model, batches, _mse, torch.optim.SGD(model.parameters(), lr=0.01), epochs=3)
    assert drawn == [0, 1, 2]


def test_gradient_clipping_bounds_the_step():
    model = torch.nn.Linear(3, 1)
    before = torch.cat([p.detach().clone().flatten() for p in model.parameters()])
    x, y = _regression(16)
    tr.fit(
        model,
        lambda e: [(x, y * 100)],
        _mse,
        torch.optim.SGD(model.parameters(), lr=1.0),
        epochs=1,
        grad_clip=0.01,
    )
    after = torch.cat([p.detach().flatten() for p in model.parameters()])
    assert torch.linalg.vector_norm(after - before) == pytest.approx(0.01, rel=1e-4)


def test_history_round_trips_and_batch_sizes_are_counted():
    history = tr.History([{"epoch": 0, "loss": 1.0}], best_epoch=0, stopped_early=True)
    assert tr.History.from_dict(history.to_dict()) == history
    t = torch.zeros(5, 2)
    assert [tr.batch_size_of(b) for b in (t, (t, t[:1]), [t], {"image": t, "text": t[:2]})] == [
        5,
        5,
        5,
        5,
    ]


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"epochs": 0}, ValueError, "epochs must be an integer >= 1, got 0"),
        ({"epochs": 2.5}, ValueError, "epochs must be an integer >= 1, got 2.5"),
        (
            {"epochs": 1, "stopper": tr.EarlyStopping("val_auc")},
            KeyError,
            "monitors 'val_auc'; this epoch has loss",
        ),
    ],
)
def test_fit_refuses_bad_settings(kwargs, error, match):
    x, y = _regression(16)
    model = torch.nn.Linear(3, 1)
    with pytest.raises(error, match=match):
        tr.fit(model, _batches(x, y), _mse, torch.optim.SGD(model.parameters(), lr=0.1), **kwargs)


def test_fit_names_a_non_finite_loss_and_an_empty_epoch():
    x, y = _regression(16)
    model = torch.nn.Linear(3, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    bad = y.clone()
    bad[0] = np.nan
    with pytest.raises(FloatingPointError, match="the loss is nan at batch 0"):
        tr.fit(model, lambda e: [(x, bad)], _mse, opt, epochs=1)
    with pytest.raises(ValueError, match="gave no batch"):
        tr.fit(model, lambda e: [], _mse, opt, epochs=1)
    stopper = tr.EarlyStopping("val_loss")
    with pytest.raises(ValueError, match="val_loss is nan at epoch 0"):
        tr.fit(
            model,
            _batches(x, y),
            _mse,
            opt,
            epochs=1,
            stopper=stopper,
            validate=lambda m: {"val_loss": math.nan},
        )


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"mode": "avg"}, "mode must be 'min' or 'max', got 'avg'"),
        ({"patience": 0}, "patience must be >= 1, got 0"),
        ({"patience": True}, "patience must be an integer, got True"),
        ({"min_delta": -0.1}, "min_delta must be a finite number >= 0, got -0.1"),
        ({"min_delta": math.inf}, "min_delta must be a finite number >= 0, got inf"),
    ],
)
def test_early_stopping_refuses_bad_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        tr.EarlyStopping(**kwargs)


def test_cached_fit_trains_once_and_gives_the_weights_back(tmp_path):
    import types

    x, y = _regression()

    def trained(seed):
        torch.manual_seed(seed)
        model = torch.nn.Linear(3, 1)
        opt = torch.optim.SGD(model.parameters(), lr=0.1)

        def train():
            return mh.training.fit(model, _batches(x, y), _mse, opt, epochs=3)

        return model, train

    first, train = trained(0)
    h1, hit1 = mh.training.cached_fit(first, "toy", {"lr": 0.1}, train, cache_dir=tmp_path)
    second, train2 = trained(1)  # other initial weights: must be replaced by the cached ones
    calls = []
    h2, hit2 = mh.training.cached_fit(
        second, "toy", {"lr": 0.1}, lambda: calls.append(1) or train2(), cache_dir=tmp_path
    )
    assert (hit1, hit2) == (False, True) and not calls
    assert torch.equal(first.weight, second.weight) and h1.to_dict() == h2.to_dict()
    other_code = types.ModuleType("other")  # another module in the key: trains again
    other_code.__file__ = __file__
    _, hit3 = mh.training.cached_fit(
        second, "toy", {"lr": 0.1}, train2, code=[other_code], cache_dir=tmp_path
    )
    _, hit4 = mh.training.cached_fit(second, "toy", {"lr": 0.2}, train2, cache_dir=tmp_path)
    assert not hit3 and not hit4
