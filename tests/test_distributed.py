"""Tests for mammo_helpers.distributed: the fit loop under torchrun (gloo, 2 processes),
checkpoints and resume after a killed rank, and the launcher's checks."""

from __future__ import annotations

import os
import textwrap

import pytest
import torch

from mammo_helpers import distributed, training
from mammo_helpers.cache import ModelCache

# A training job as a chapter would write one: weighted sampling with replacement drawn
# per epoch from a seeded generator, a conv net without batch norm, SGD with momentum.
TOY_JOB = textwrap.dedent(
    """
    import os, signal
    from pathlib import Path
    import torch
    import mammo_helpers as mh

    X = torch.randn(96, 1, 8, 8, generator=torch.Generator().manual_seed(123))
    Y = torch.randint(0, 3, (96,), generator=torch.Generator().manual_seed(124))

    def model(seed=0):
        torch.manual_seed(seed)
        return torch.nn.Sequential(
            torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(144, 3)
        )

    def batches_of(seed, batch_size):
        weights = torch.where(Y == 0, 3.0, 1.0)
        def batches(epoch):
            g = torch.Generator().manual_seed(seed * 1000 + epoch)
            order = torch.multinomial(weights, len(weights), replacement=True, generator=g)
            return [(X[i], Y[i]) for i in order.split(batch_size)]
        return batches

    def train(out=None, batch_size=16, epochs=4, seed=0, checkpoint=None, die_at=None,
              marker=None, net=None):
        net = net or model(seed)
        ctx = mh.distributed.context()
        calls = {"n": 0}
        def loss(m, batch):
            calls["n"] += 1
            if die_at == calls["n"] and ctx.rank == 1 and not Path(marker).exists():
                Path(marker).touch()
                os.kill(os.getpid(), signal.SIGKILL)
            return torch.nn.functional.cross_entropy(m(batch[0]), batch[1])
        validate = lambda m: {"val_loss": torch.nn.functional.cross_entropy(m(X), Y)}
        opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
        sched = torch.optim.lr_scheduler.StepLR(opt, 2, 0.5)
        history = mh.training.fit(
            net, batches_of(seed, batch_size), loss, opt, epochs=epochs, scheduler=sched,
            validate=validate, checkpoint=checkpoint,
        )
        if out is not None and ctx.is_main:
            with mh.paths.atomic_write(out) as fh:
                torch.save({"state": net.state_dict(), "history": history.to_dict()}, fh)
        return history

    def cached(cache_dir, epochs=3):
        net = model(0)
        run = lambda checkpoint: train(epochs=epochs, checkpoint=checkpoint, net=net)
        settings = {"epochs": epochs}
        return mh.training.cached_fit(
            net, "toy", settings, run, cache_dir=cache_dir, checkpoint=True
        )
    """
)


@pytest.fixture
def toy(tmp_path, monkeypatch):
    """The toy job as an importable module, for this process and for torchrun's ranks."""
    import importlib
    import sys

    (tmp_path / "toy_job.py").write_text(TOY_JOB)
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("toy_job", None)
    module = importlib.import_module("toy_job")
    env = {"PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    return module, env, tmp_path


def _max_diff(a: dict, b: dict) -> float:
    return max((a[k] - b[k]).abs().max().item() for k in a)


def _load(path):
    return torch.load(path, map_location="cpu", weights_only=True)


def test_one_process_is_rank_0_of_1_and_changes_nothing():
    ctx = distributed.context()
    assert (ctx.rank, ctx.world_size, ctx.is_main, ctx.distributed) == (0, 1, True, False)
    batch = (torch.arange(5), {"y": torch.arange(5)})
    assert distributed.split_batch(batch) is batch
    assert distributed.all_reduce_sums([1.5, 2.0]) == [1.5, 2.0]
    assert distributed.broadcast_object({"a": 1}) == {"a": 1}
    model = torch.nn.Linear(2, 2)
    assert distributed.wrap(model) is model and distributed.unwrap(model) is model


def test_split_batch_gives_each_rank_a_contiguous_share_that_adds_up():
    batch = (torch.arange(7), {"y": torch.arange(7) * 10})
    parts = [distributed.split_batch(batch, distributed.Context(r, 3)) for r in range(3)]
    assert torch.equal(torch.cat([p[0] for p in parts]), batch[0])
    assert torch.equal(torch.cat([p[1]["y"] for p in parts]), batch[1]["y"])
    assert [len(p[0]) for p in parts] == [3, 2, 2]
    with pytest.raises(ValueError, match="batch of 2 sample.*3 ranks.*BATCH_SIZE"):
        distributed.split_batch(torch.arange(2), distributed.Context(0, 3))
    with pytest.raises(TypeError, match="cannot split a str"):
        distributed.split_batch(("abc", "def"), distributed.Context(0, 2))


def test_check_nproc_names_the_parameter_and_the_devices(monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    assert distributed.check_nproc(2, "cpu") == 2
    with pytest.raises(ValueError, match=r"NPROC=3 is more than this machine's 2 CPU core"):
        distributed.check_nproc(3, torch.device("cpu"))
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(ValueError, match=r"NPROC=2 is more than this machine's 1 GPU"):
        distributed.check_nproc(2, "cuda")
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(ValueError, match="NPROC must be an integer >= 1"):
            distributed.check_nproc(bad, "cpu")


def test_launch_refuses_bad_jobs_and_settings_before_starting_torchrun():
    with pytest.raises(ValueError, match="'module:function'"):
        distributed.launch("no_colon", {}, nproc=1)
    with pytest.raises(ValueError, match="cannot be imported"):
        distributed.launch("mammo_helpers.training:no_such_job", {}, nproc=1)
    with pytest.raises(TypeError, match="JSON values; got a Tensor"):
        distributed.launch("mammo_helpers.training:fit", {"x": torch.ones(1)}, nproc=1)
    with pytest.raises(ValueError, match="RDZV_ENDPOINT"):
        distributed.launch("mammo_helpers.training:fit", {}, nproc=1, nnodes=2)


def test_main_names_an_unreadable_config(tmp_path, capsys):
    assert distributed.main([str(tmp_path / "missing.json")]) == 2
    assert "missing.json" in capsys.readouterr().err
    assert distributed.main([]) == 2


def test_two_gloo_processes_give_the_weights_of_one_process(toy):
    job, env, tmp = toy
    one = job.train(epochs=4)
    net_one = job.model(0)
    job.train(epochs=4, net=net_one)
    distributed.launch("toy_job:train", {"out": str(tmp / "two.pt")}, nproc=2, env=env, timeout=300)
    two = _load(tmp / "two.pt")
    # Same effective batch (16 = 2 ranks x 8), same sampled batches: equal up to float
    # summation order (measured 2.5e-7).
    assert _max_diff(net_one.state_dict(), two["state"]) < 1e-5
    losses_one = one.column("loss")
    losses_two = training.History.from_dict(two["history"]).column("loss")
    assert losses_two == pytest.approx(losses_one, rel=1e-5)
    assert losses_one[-1] < losses_one[0]


def test_a_rank_killed_mid_epoch_resumes_from_the_checkpoint(toy):
    job, env, tmp = toy
    reference = job.model(0)
    job.train(epochs=4, net=reference)
    settings = {
        "out": str(tmp / "killed.pt"),
        "checkpoint": str(tmp / "ck" / "run.pt"),
        "die_at": 15,  # rank 1's 15th batch: the third batch of epoch 2 (6 per epoch)
        "marker": str(tmp / "killed-once"),
    }
    result = distributed.launch(
        "toy_job:train", settings, nproc=2, env=env, max_restarts=1, timeout=300
    )
    assert (tmp / "killed-once").exists(), "the rank was not killed"
    assert "exitcode: -9" in result.stderr
    resumed = _load(tmp / "killed.pt")
    assert _max_diff(reference.state_dict(), resumed["state"]) < 1e-5
    assert len(resumed["history"]["rows"]) == 4
    assert sorted(p.name for p in (tmp / "ck").iterdir()) == ["run.pt"]  # nothing half-written


def test_torchrun_training_lands_in_the_model_cache_for_the_notebook(toy, tmp_path):
    job, env, _ = toy
    cache = tmp_path / "cache"
    distributed.launch("toy_job:cached", {"cache_dir": str(cache)}, nproc=2, env=env, timeout=300)
    entries = list((cache / "models").iterdir())
    assert [e.name.startswith("toy-") for e in entries] == [True]
    history, hit = job.cached(cache)  # what the notebook does next: load, not train
    assert hit and len(history.rows) == 3
    fresh = job.model(0)
    job.train(epochs=3, net=fresh)
    cached = _load(entries[0] / "model.pt")["state"]
    assert _max_diff(fresh.state_dict(), cached) < 1e-5
    checkpoint = ModelCache(cache).checkpoint_path("toy", {"epochs": 3}, [training])
    assert not checkpoint.exists()


def test_checkpoint_resume_in_one_process_equals_an_uninterrupted_run(toy):
    job, _, tmp = toy
    straight = job.model(0)
    straight_history = job.train(epochs=5, net=straight)
    ck = tmp / "run.pt"
    first = job.model(0)
    job.train(epochs=3, net=first, checkpoint=ck)  # "killed" after epoch 2
    resumed = job.model(0)
    history = job.train(epochs=5, net=resumed, checkpoint=ck)
    assert _max_diff(straight.state_dict(), resumed.state_dict()) == 0.0
    assert history.column("loss") == straight_history.column("loss")
    assert [r["epoch"] for r in history.rows] == [0, 1, 2, 3, 4]


def test_a_crash_mid_epoch_leaves_the_last_whole_epoch(toy):
    job, _, tmp = toy
    ck = tmp / "run.pt"
    net = job.model(0)
    calls = []

    def crash(m, batch):
        calls.append(1)
        if len(calls) == 14:  # epoch 2, batch 2
            raise KeyboardInterrupt
        return torch.nn.functional.cross_entropy(m(batch[0]), batch[1])

    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    with pytest.raises(KeyboardInterrupt):
        training.fit(net, job.batches_of(0, 16), crash, opt, epochs=4, checkpoint=ck)
    state = _load(ck)
    assert state["epoch"] == 1 and len(state["history"]["rows"]) == 2
    assert [p.name for p in tmp.iterdir() if p.name.startswith(".run.pt")] == []


def test_a_checkpoint_of_another_model_or_a_damaged_one_is_refused(toy):
    job, _, tmp = toy
    ck = tmp / "run.pt"
    job.train(epochs=1, checkpoint=ck)
    other = torch.nn.Sequential(torch.nn.Linear(64, 3))
    opt = torch.optim.SGD(other.parameters(), lr=0.1)
    with pytest.raises(ValueError, match=r"run\.pt is of another model \(Sequential-"):
        training.fit(other, lambda e: [], None, opt, epochs=2, checkpoint=ck)
    ck.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match=r"run\.pt cannot be read.*delete it"):
        job.train(epochs=2, checkpoint=ck)


def test_bf16_autocast_trains_and_differs_from_fp32(toy):
    job, _, _ = toy
    net32, net16 = job.model(0), job.model(0)

    def fit(net, precision):
        opt = torch.optim.SGD(net.parameters(), lr=0.1)

        def loss(m, batch):
            return torch.nn.functional.cross_entropy(m(batch[0]), batch[1])

        return training.fit(
            net, job.batches_of(0, 16), loss, opt, epochs=3, precision=precision
        ).column("loss")

    loss32, loss16 = fit(net32, "fp32"), fit(net16, "bf16")
    assert loss16[-1] < loss16[0]
    assert loss16 == pytest.approx(loss32, rel=0.05)
    assert 0 < _max_diff(net32.state_dict(), net16.state_dict()) < 0.05
    with pytest.raises(ValueError, match="PRECISION 'fp16' needs a CUDA device"):
        fit(job.model(0), "fp16")
