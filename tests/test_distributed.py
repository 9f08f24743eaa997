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


# A chapter's training as a notebook cell defines it: a model and a `run` closure over the
# cell's arrays, in __main__ (so cloudpickle sends them by value, as from a notebook).
NOTEBOOK_CELL = textwrap.dedent(
    """
    import torch
    import mammo_helpers as mh

    X = torch.randn(64, 1, 8, 8, generator=torch.Generator().manual_seed(5))
    Y = torch.randint(0, 2, (64,), generator=torch.Generator().manual_seed(6))
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(),
                              torch.nn.Linear(144, 2))

    def batches(epoch):
        order = torch.randperm(64, generator=torch.Generator().manual_seed(epoch))
        return [(X[i], Y[i]) for i in order.split(16)]

    def run():
        opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
        loss = lambda m, b: torch.nn.functional.cross_entropy(m(b[0]), b[1])
        return mh.training.fit(net, batches, loss, opt, epochs=3)
    """
)


def _notebook_cell() -> dict:
    namespace = {"__name__": "__main__"}
    exec(NOTEBOOK_CELL, namespace)  # noqa: S102 - the test's own code
    return namespace


def test_train_cached_in_process_is_the_cache_wrapper_itself(tmp_path):
    cell = _notebook_cell()
    history, hit = distributed.train_cached(
        training.cached_fit, cell["net"], "nb", {"epochs": 3}, cell["run"], cache_dir=tmp_path
    )
    assert not hit and len(history.rows) == 3
    with pytest.raises(ValueError, match="LAUNCHER must be one of in-process, torchrun"):
        distributed.train_cached(
            training.cached_fit, cell["net"], "nb", {}, cell["run"], launcher="slurm"
        )


def test_train_cached_sends_a_notebook_closure_to_torchrun_and_loads_its_model(
    tmp_path, monkeypatch
):
    cell, reference = _notebook_cell(), _notebook_cell()
    reference["run"]()
    cache = tmp_path / "cache"
    history, hit = distributed.train_cached(
        training.cached_fit, cell["net"], "nb", {"epochs": 3}, cell["run"],
        launcher="torchrun", nproc=2, cache_dir=cache,
    )  # fmt: skip
    assert hit and len(history.rows) == 3  # trained by the 2 ranks, read from the cache
    # 2 ranks x 8 = the batch of 16 in one process: equal up to float summation order
    assert _max_diff(cell["net"].state_dict(), reference["net"].state_dict()) < 1e-5
    assert sorted(p.name for p in cache.iterdir()) == ["models"]  # no job file left
    monkeypatch.setattr(distributed, "launch", lambda *a, **k: pytest.fail("launched again"))
    again = _notebook_cell()
    _, hit = distributed.train_cached(
        training.cached_fit, again["net"], "nb", {"epochs": 3}, again["run"],
        launcher="torchrun", nproc=2, cache_dir=cache,
    )  # fmt: skip
    assert hit and _max_diff(again["net"].state_dict(), reference["net"].state_dict()) < 1e-5


def test_train_cached_names_a_training_that_cannot_be_pickled(tmp_path):
    cell = _notebook_cell()
    with open(tmp_path / "log.txt", "w") as log:
        cell["log"] = log
        exec("def run():\n    log.write('x')\n", cell)  # noqa: S102 - reads an open file
        with pytest.raises(TypeError, match="training of 'nb' cannot be sent to the ranks"):
            distributed.train_cached(
                training.cached_fit, cell["net"], "nb", {}, cell["run"],
                launcher="torchrun", nproc=2, cache_dir=tmp_path / "cache",
            )  # fmt: skip
    assert list((tmp_path / "cache").iterdir()) == []  # the job file is gone


# A loss over the global batch under 2 ranks, with the ranks holding 4 and 3 samples:
# gathered, weighted as fit weights each rank's loss, gradients averaged as DDP does. The
# text side is computed on every rank (as CLIP's prompts and temperature are).
GATHER_JOB = textwrap.dedent(
    """
    import torch
    import torch.distributed as dist
    import mammo_helpers as mh

    X = torch.randn(7, 4, generator=torch.Generator().manual_seed(1))
    LABELS = torch.tensor([0, 1, 0, 2, 1, 1, 0])

    def gradients(out=None):
        ctx = mh.distributed.context()
        torch.manual_seed(0)
        net = torch.nn.Linear(4, 3)
        x, labels = mh.distributed.split_batch((X, LABELS), ctx)
        emb, labels = mh.distributed.gather_batch(net(x), labels)
        prompts = net(torch.eye(4)[:3])  # 3 class "prompts", computed by every rank
        loss = mh.models.losses.weighted_contrastive_loss(
            emb, prompts[labels], labels, 10.0, [0.5, 1.0, 2.0]
        )
        (loss * len(x) * ctx.world_size / len(X)).backward()  # fit's weighting of a rank
        grads = [p.grad for p in net.parameters()]
        if ctx.distributed:
            for g in grads:  # DDP's average
                dist.all_reduce(g)
                g /= ctx.world_size
        if out is not None and ctx.is_main:
            torch.save({"grads": grads, "n_local": len(x), "loss": loss.item()}, out)
        return grads
    """
)


def test_gather_batch_gives_each_rank_the_gradient_of_the_global_batch(tmp_path, monkeypatch):
    import importlib
    import sys

    (tmp_path / "gather_job.py").write_text(GATHER_JOB)
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("gather_job", None)
    job = importlib.import_module("gather_job")
    one = job.gradients()
    env = {"PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    out = tmp_path / "two.pt"
    distributed.launch("gather_job:gradients", {"out": str(out)}, nproc=2, env=env, timeout=300)
    two = _load(out)
    assert two["n_local"] == 4  # rank 0's share of 7: the ranks hold different numbers
    for a, b in zip(one, two["grads"], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    tensors = distributed.gather_batch(torch.ones(3), torch.zeros(3))  # one process
    assert [t.tolist() for t in tensors] == [[1.0] * 3, [0.0] * 3]


def test_two_nodes_meeting_at_a_rendezvous_endpoint_train_as_one_process(toy):
    """`--nnodes 2 --rdzv_endpoint host:port`, both "nodes" on this machine (one process
    each, gloo on the loopback): the same weights as one process with the same batches."""
    import socket
    from concurrent.futures import ThreadPoolExecutor

    job, env, tmp = toy
    reference = job.model(0)
    job.train(epochs=2, net=reference)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    node_env = env | {"GLOO_SOCKET_IFNAME": "lo"}

    def node(k: int):
        settings = {"out": str(tmp / f"node{k}.pt"), "epochs": 2}
        return distributed.launch(
            "toy_job:train", settings, nproc=1, nnodes=2, rdzv_endpoint=f"127.0.0.1:{port}",
            env=node_env, timeout=300,
        )  # fmt: skip

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(node, (0, 1)))
    written = [p for p in (tmp / "node0.pt", tmp / "node1.pt") if p.exists()]
    assert len(written) == 1  # rank 0 alone writes, on whichever node it landed
    assert _max_diff(reference.state_dict(), _load(written[0])["state"]) < 1e-5
