"""Training on several GPUs or machines with PyTorch's ``torchrun`` (DistributedDataParallel).

The package's training loop, :func:`mammo_helpers.training.fit`, runs unchanged under
``torchrun``: when a process group is up it wraps the model in DDP, gives each rank its
share of every global batch (so the chapter's weighted or undersampled sampling draws the
same batches as in one process), reduces the logged loss across ranks, validates on rank 0
and writes checkpoints from rank 0 only. A chapter starts a run with
``LAUNCHER = "torchrun"`` and ``NPROC``; :func:`launch` runs the package entry point

    torchrun --nproc_per_node NPROC -m mammo_helpers.distributed CONFIG.json

whose config names a training *job* (``"module:function"``) and its settings. The job
trains through :func:`mammo_helpers.training.cached_fit`, so rank 0 leaves the model in the
model cache and the notebook then loads it. Chapters 01-05 go through :func:`train_cached`,
which sends any cached training (the model and the notebook's ``run`` closure, pickled
with cloudpickle) to such a job; chapter 00's learnability CNN has its own job, and the
paper-scale appendix measures both.

On one process nothing here changes anything: :func:`context` says rank 0 of 1.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import numbers
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

__all__ = [
    "LAUNCHERS",
    "Context",
    "all_reduce_sums",
    "broadcast_object",
    "cached_job",
    "check_launcher",
    "check_nproc",
    "context",
    "gather_batch",
    "init_from_env",
    "launch",
    "main",
    "run_job",
    "split_batch",
    "train_cached",
    "unwrap",
    "wrap",
]

#: How long ranks wait for each other (process-group timeout), seconds.
TIMEOUT_S = 600
#: The ``LAUNCHER`` parameter: train in the notebook's process, or in a torchrun job.
LAUNCHERS = ("in-process", "torchrun")


@dataclass(frozen=True)
class Context:
    """This process's place in a run: ``rank`` of ``world_size`` (``local_rank`` on its
    machine)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def context() -> Context:
    """The running process group's rank and size, or rank 0 of 1 without one."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return Context()
    local = int(os.environ.get("LOCAL_RANK", dist.get_rank()))
    return Context(dist.get_rank(), dist.get_world_size(), local)


def init_from_env(backend: str | None = None) -> Context:
    """Join the process group ``torchrun`` describes in the environment (``RANK``,
    ``WORLD_SIZE``, ``MASTER_ADDR``...): NCCL on GPUs, gloo on the CPU. Without those
    variables this is one process and nothing is initialised."""
    import torch
    import torch.distributed as dist

    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return context()
    cuda = torch.cuda.is_available()
    backend = backend or ("nccl" if cuda else "gloo")
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    timeout = timedelta(seconds=TIMEOUT_S)
    store, rank, world_size = next(dist.rendezvous("env://", timeout=timeout))
    # A restarted group (a rank died) meets in the same store: its own key prefix keeps it
    # from reading the dead group's addresses.
    attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
    store = dist.PrefixStore(f"mammo-attempt-{attempt}", store)
    dist.init_process_group(backend, store=store, rank=rank, world_size=world_size, timeout=timeout)
    return context()


def wrap(model, ctx: Context | None = None):
    """``model`` in DistributedDataParallel when several ranks run, else ``model``."""
    from torch.nn.parallel import DistributedDataParallel

    from mammo_helpers import devices

    ctx = ctx or context()
    if not ctx.distributed:
        return model
    if devices.model_device(model).type != "cuda":
        # gloo on the CPU: batch norm normalises each rank's share (SyncBatchNorm is GPU-only)
        return DistributedDataParallel(model)
    import torch

    model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)  # in place for children
    return DistributedDataParallel(model, device_ids=[ctx.local_rank])


def unwrap(model):
    """The plain module inside a DDP wrapper (its ``state_dict`` has no ``module.`` prefix)."""
    return getattr(model, "module", model)


def _part(value, ctx: Context):
    import torch

    if isinstance(value, torch.Tensor):
        return torch.tensor_split(value, ctx.world_size)[ctx.rank]
    if isinstance(value, dict):
        return {k: _part(v, ctx) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return type(value)(_part(v, ctx) for v in value)
    raise TypeError(f"split_batch: cannot split a {type(value).__name__} across ranks")


def split_batch(batch, ctx: Context | None = None):
    """This rank's contiguous share of a global batch (a tensor, or a tuple, list or dict
    of tensors with the same first dimension). The shares of all ranks, in rank order,
    are the global batch."""
    from mammo_helpers.training import batch_size_of

    ctx = ctx or context()
    if not ctx.distributed:
        return batch
    n = batch_size_of(batch)
    if n < ctx.world_size:
        raise ValueError(
            f"a batch of {n} sample(s) cannot be shared by {ctx.world_size} ranks; "
            "use a BATCH_SIZE of at least NPROC"
        )
    return _part(batch, ctx)


def all_reduce_sums(values: list[float], ctx: Context | None = None) -> list[float]:
    """The sum of each value over all ranks (the values themselves on one process)."""
    import torch
    import torch.distributed as dist

    ctx = ctx or context()
    if not ctx.distributed:
        return list(values)
    tensor = torch.tensor(values, dtype=torch.float64)
    if dist.get_backend() == "nccl":
        tensor = tensor.cuda()
    dist.all_reduce(tensor)
    return tensor.cpu().tolist()


def broadcast_object(obj: Any, ctx: Context | None = None) -> Any:
    """Rank 0's ``obj`` on every rank."""
    import torch.distributed as dist

    ctx = ctx or context()
    if not ctx.distributed:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather_batch(*tensors, ctx: Context | None = None) -> list:
    """The global batch of a loss that compares samples with each other (CLIP's contrastive
    loss): each tensor (n_r, ...) of this rank concatenated with every rank's, in rank
    order (ranks may hold different n_r). Every rank then computes the global batch's
    loss L, and the gradient is exactly one process's:

    the other ranks' rows come without gradient and this rank's rows carry theirs scaled
    by k_r = n_global / n_r (same values). ``fit`` weights rank r's loss by
    w_r = n_r W / n_global, so rank r's parameters get W dL/de_r de_r/dtheta from its own
    rows, and DDP's average over the W ranks sums these into dL/dtheta; anything every
    rank computes itself (prompts, temperature) gets (1/W) sum_r w_r dL = dL since the w_r
    sum to W. In one process: the tensors as they are. Chapter 01."""
    ctx = ctx or context()
    if not ctx.distributed:
        return list(tensors)
    import torch
    import torch.distributed as dist

    n = len(tensors[0])
    device = tensors[0].device
    sizes = [torch.zeros(1, dtype=torch.int64, device=device) for _ in range(ctx.world_size)]
    dist.all_gather(sizes, torch.tensor([n], device=device))
    sizes = [int(s.item()) for s in sizes]
    out = []
    for t in tensors:
        padded = torch.cat([t.detach(), t.new_zeros((max(sizes) - len(t), *t.shape[1:]))])
        parts = [torch.empty_like(padded) for _ in sizes]
        dist.all_gather(parts, padded)
        parts = [part[:k] for part, k in zip(parts, sizes, strict=True)]
        k = sum(sizes) / n
        parts[ctx.rank] = t + (k - 1) * (t - t.detach()) if t.requires_grad else t
        out.append(torch.cat(parts))
    return out


def barrier(ctx: Context | None = None) -> None:
    """Wait for every rank (nothing on one process)."""
    import torch.distributed as dist

    if (ctx or context()).distributed:
        dist.barrier()


# ----------------------------------------------------------------------------- launching
def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


def check_nproc(nproc, device) -> int:
    """``NPROC`` checked against the machine: at most one process per GPU on CUDA, at most
    one per core on the CPU."""
    import torch

    nproc = _positive_int(nproc, "NPROC")
    kind = getattr(device, "type", str(device))
    if kind == "cuda":
        have, what = torch.cuda.device_count(), "GPU(s)"
    else:
        have, what = os.cpu_count() or 1, "CPU core(s)"
    if nproc > have:
        raise ValueError(f"NPROC={nproc} is more than this machine's {have} {what} ({kind})")
    return nproc


def _job_function(job: str):
    module, _, name = str(job).partition(":")
    if not module or not name:
        raise ValueError(f"a training job is named 'module:function', got {job!r}")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"training job {job!r} cannot be imported: {exc}") from exc


def run_job(config: Mapping[str, Any]) -> Any:
    """Run the job a config names (``{"job": "module:function", "settings": {...}}``) in
    this process, inside the process group ``torchrun`` set up. The job gets the settings
    as keywords; rank 0 leaves its trained model in the model cache."""
    function = _job_function(config.get("job", ""))
    init_from_env()
    try:
        return function(**dict(config.get("settings", {})))
    finally:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()


def _torchrun_command(config_path: Path, nproc: int, nnodes: int, rdzv_endpoint, restarts: int):
    command = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}"]
    if nnodes > 1:
        if not rdzv_endpoint:
            raise ValueError("NNODES > 1 needs RDZV_ENDPOINT (host:port of the rendezvous)")
        command += [f"--nnodes={nnodes}", "--rdzv_backend=c10d", f"--rdzv_endpoint={rdzv_endpoint}"]
    else:
        command += ["--standalone"]
    command += [f"--max-restarts={restarts}", "-m", "mammo_helpers.distributed", str(config_path)]
    return command


def launch(
    job: str,
    settings: Mapping[str, Any],
    *,
    nproc: int,
    device="cpu",
    nnodes: int = 1,
    rdzv_endpoint: str | None = None,
    max_restarts: int = 1,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
) -> subprocess.CompletedProcess:
    """Run ``job`` with ``settings`` under ``torchrun`` on ``nproc`` processes (per node),
    restarting the whole group up to ``max_restarts`` times after a rank dies (training
    resumes from the last checkpoint). Raises with the run's output if it fails, and
    ``subprocess.TimeoutExpired`` after ``timeout`` seconds (the group is killed)."""
    _job_function(job)  # fail here, not in every rank
    nproc = check_nproc(nproc, device)
    nnodes = _positive_int(nnodes, "NNODES")
    json_settings = json.dumps({"job": job, "settings": dict(settings)}, default=_not_json)
    folder = Path(tempfile.mkdtemp(prefix="mammo-torchrun-"))
    try:
        config_path = folder / "config.json"
        config_path.write_text(json_settings)
        command = _torchrun_command(config_path, nproc, nnodes, rdzv_endpoint, max_restarts)
        result = subprocess.run(
            command, env=_environment(nnodes, env), capture_output=True, text=True, timeout=timeout
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-60:])
        raise RuntimeError(f"torchrun {job} on {nproc} process(es) failed:\n{tail}")
    return result


def check_launcher(launcher) -> str:
    """``LAUNCHER`` checked against :data:`LAUNCHERS`."""
    if launcher not in LAUNCHERS:
        raise ValueError(f"LAUNCHER must be one of {', '.join(LAUNCHERS)}; got {launcher!r}")
    return launcher


class _NotCached(Exception):
    """Raised instead of training, to ask a model cache whether it holds an entry."""


def _not_cached(**_):
    raise _NotCached


def train_cached(
    cached: Callable,
    model,
    name: str,
    settings: Mapping[str, Any],
    run: Callable,
    *,
    launcher: str = "in-process",
    nproc: int = 1,
    cache_dir=None,
    nnodes: int = 1,
    rdzv_endpoint: str | None = None,
    **options,
):
    """``cached(model, name, settings, run, cache_dir=..., **options)`` (a model-cache
    wrapper such as :func:`mammo_helpers.training.cached_fit` or ``models.*.cached``, whose
    ``run`` trains ``model`` through ``fit``), with the training where ``LAUNCHER`` says.

    ``"in-process"`` calls it here. ``"torchrun"``, when the cache does not hold the model
    yet, pickles the model and ``run`` (cloudpickle: a notebook's closure goes with the
    arrays it reads), trains them in ``nproc`` processes per node (DDP; each rank puts the
    model on its own GPU when the model was on one), where rank 0 writes the cache entry,
    and then reads the entry here. Returns what ``cached`` returns. Chapters 01-05."""
    check_launcher(launcher)
    if launcher == "in-process":
        return cached(model, name, settings, run, cache_dir=cache_dir, **options)
    try:  # already cached: nothing to launch
        return cached(model, name, settings, _not_cached, cache_dir=cache_dir, **options)
    except _NotCached:
        pass
    from mammo_helpers import devices

    job = {"cached": cached, "model": model, "name": name, "settings": settings, "run": run}
    job |= {"cache_dir": cache_dir, "options": options}
    with _job_file(job, model, cache_dir) as path:
        launch(
            _CACHED_JOB, {"job_file": str(path)}, nproc=nproc,
            device=devices.model_device(model), nnodes=nnodes, rdzv_endpoint=rdzv_endpoint,
        )  # fmt: skip

    def missing(**_):
        raise RuntimeError(f"the torchrun job for {name!r} finished but left no model in the cache")

    return cached(model, name, settings, missing, cache_dir=cache_dir, **options)


_CACHED_JOB = "mammo_helpers.distributed:cached_job"


@contextlib.contextmanager
def _job_file(job: dict, model, cache_dir):
    """The job pickled into a temporary file in the cache folder (all ranks, and on a
    cluster all nodes, must see it), with the model on the CPU inside the file; removed
    afterwards."""
    import cloudpickle

    from mammo_helpers import devices
    from mammo_helpers.paths import cache_dir as cache_root

    root = cache_root(cache_dir)
    root.mkdir(parents=True, exist_ok=True)
    device = devices.model_device(model)
    job = job | {"device": device.type}
    with tempfile.TemporaryDirectory(prefix=".torchrun-", dir=root) as tmp:
        path = Path(tmp) / "job.pkl"
        model.to("cpu")
        try:
            with open(path, "wb") as fh:
                cloudpickle.dump(job, fh)
        except Exception as exc:  # noqa: BLE001 - any pickling failure names the training
            raise TypeError(
                f"LAUNCHER torchrun: the training of {job['name']!r} cannot be sent to the "
                f"ranks ({type(exc).__name__}: {exc}); its run() must read only picklable "
                "values (arrays, datasets, models), not open files or clients"
            ) from exc
        finally:
            model.to(device)
        yield path


def cached_job(*, job_file: str) -> None:
    """What each ``torchrun`` rank runs for :func:`train_cached`: the pickled training, on
    this rank's GPU when the notebook's model was on a GPU."""
    import pickle

    import torch

    with open(job_file, "rb") as fh:
        job = pickle.load(fh)  # written by train_cached a moment ago
    if job["device"] == "cuda":
        job["model"].to(torch.device("cuda", context().local_rank))
    job["cached"](
        job["model"], job["name"], job["settings"], job["run"], cache_dir=job["cache_dir"],
        **job["options"],
    )  # fmt: skip


def _environment(nnodes: int, extra: Mapping[str, str] | None) -> dict:
    """The ranks' environment: one thread each unless told otherwise, and on one machine
    gloo on the loopback interface (a container's hostname may resolve elsewhere)."""
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    if nnodes == 1:
        env.setdefault("GLOO_SOCKET_IFNAME", "lo")
    return env | dict(extra or {})


def _not_json(value):
    raise TypeError(f"training settings must be JSON values; got a {type(value).__name__}")


def main(argv: list[str] | None = None) -> int:
    """``python -m mammo_helpers.distributed CONFIG.json`` (what :func:`launch` runs in
    every rank)."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m mammo_helpers.distributed CONFIG.json", file=sys.stderr)
        return 2
    path = Path(argv[0])
    try:
        config = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        print(f"cannot read the training config {path}: {exc}", file=sys.stderr)
        return 2
    run_job(config)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
