"""The training loop shared by the chapters that train (00's learnability check, 01-05).

One loop, with the pieces each paper varies passed in:

    history = mh.training.fit(
        model, batches, loss, optimizer,
        epochs=30,
        scheduler=torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, 30),
        validate=lambda m: {"val_loss": ..., "val_auc": ...},
        stopper=mh.training.EarlyStopping("val_auc", mode="max", patience=10, min_delta=1e-3),
        progress=True,
    )
    history.frame()  # one row per epoch: loss, lr, validation metrics, seconds, samples/s

``batches(epoch)`` returns that epoch's mini-batches, so a chapter can re-draw its crops
every epoch (chapter 02) or balance its batches (chapter 04); ``loss(model, batch)`` returns
the scalar loss of one batch (a focal loss, a contrastive loss...). The model is put in
``train()`` mode for the batches and in ``eval()`` mode, without gradients, for
``validate``. With a stopper, training ends when the monitored value has not improved by
``min_delta`` for ``patience`` epochs, and the best epoch's weights are put back. Trained
weights and their history go to the model cache with :class:`mammo_helpers.cache.ModelCache`
(settings + code hash), so a rebuild of the book does not retrain.
"""

from __future__ import annotations

import copy
import math
import numbers
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "CHECKPOINT_FORMAT",
    "EarlyStopping",
    "History",
    "batch_size_of",
    "cached_fit",
    "fit",
    "model_signature",
]

MODES = ("min", "max")


@dataclass
class EarlyStopping:
    """Stop when ``monitor`` (a key of ``validate``'s dict, or ``"loss"``) has not improved
    by more than ``min_delta`` for ``patience`` epochs in a row; ``mode`` says whether lower
    ("min", a loss) or higher ("max", an AUC) is better. Keeps the best epoch's weights."""

    monitor: str = "val_loss"
    mode: str = "min"
    patience: int = 10
    min_delta: float = 0.0
    best: float = field(default=math.nan, init=False)
    best_epoch: int = field(default=-1, init=False)
    best_state: dict | None = field(default=None, init=False, repr=False)
    bad_epochs: int = field(default=0, init=False)

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"EarlyStopping: mode must be 'min' or 'max', got {self.mode!r}")
        if isinstance(self.patience, bool) or not isinstance(self.patience, numbers.Integral):
            raise ValueError(f"EarlyStopping: patience must be an integer, got {self.patience!r}")
        if self.patience < 1:
            raise ValueError(f"EarlyStopping: patience must be >= 1, got {self.patience}")
        if not (isinstance(self.min_delta, numbers.Real) and 0 <= self.min_delta < math.inf):
            raise ValueError(
                f"EarlyStopping: min_delta must be a finite number >= 0, got {self.min_delta!r}"
            )

    def improved(self, value: float) -> bool:
        """Whether ``value`` beats the best so far by more than ``min_delta``."""
        if math.isnan(self.best):
            return True
        gain = self.best - value if self.mode == "min" else value - self.best
        return gain > self.min_delta

    def update(self, epoch: int, value: float, model) -> bool:
        """Record one epoch's monitored ``value``; True when training should stop."""
        if not math.isfinite(value):
            raise ValueError(f"EarlyStopping: {self.monitor} is {value} at epoch {epoch}")
        if self.improved(value):
            self.best, self.best_epoch, self.bad_epochs = value, epoch, 0
            self.best_state = copy.deepcopy(model.state_dict())
            return False
        self.bad_epochs += 1
        return self.bad_epochs >= self.patience


@dataclass
class History:
    """One dict per epoch (``epoch``, ``loss``, ``lr``, validation metrics, ``seconds``,
    ``samples_per_s``) and, with a stopper, the best epoch and whether it stopped early."""

    rows: list[dict] = field(default_factory=list)
    best_epoch: int | None = None
    stopped_early: bool = False

    def frame(self):
        import pandas as pd

        return pd.DataFrame(self.rows)

    def to_dict(self) -> dict:
        """Plain data (for the model cache and ``metrics.json``)."""
        return {
            "rows": self.rows,
            "best_epoch": self.best_epoch,
            "stopped_early": self.stopped_early,
        }

    @classmethod
    def from_dict(cls, data: dict) -> History:
        return cls(list(data["rows"]), data["best_epoch"], bool(data["stopped_early"]))

    def column(self, name: str) -> list:
        return [row[name] for row in self.rows]


def batch_size_of(batch: Any) -> int:
    """Samples in a batch: the length of a tensor, or of the first item of a tuple, list or
    dict of them."""
    first = batch
    if isinstance(batch, dict):
        first = next(iter(batch.values()))
    elif isinstance(batch, tuple | list):
        first = batch[0]
    return len(first)


def _check_epochs(epochs) -> int:
    if isinstance(epochs, bool) or not isinstance(epochs, numbers.Integral) or epochs < 1:
        raise ValueError(f"fit: epochs must be an integer >= 1, got {epochs!r}")
    return int(epochs)


def _train_epoch(
    net, batches: Iterable, loss: Callable, optimizer, grad_clip, amp
) -> tuple[float, int]:
    """One pass over ``batches``; the sample-weighted mean loss and the number of samples
    (over all ranks). Under DDP each rank computes the loss of its share of every global
    batch, weighted so that DDP's gradient average is the gradient of the global batch.
    Each batch's tensors are moved to the model's device first."""
    import torch

    from mammo_helpers import devices, distributed

    ctx = distributed.context()
    net.train()
    total, seen = 0.0, 0
    for batch in batches:
        n_global = batch_size_of(batch)
        local = devices.to_device(distributed.split_batch(batch, ctx), amp.device)
        n = batch_size_of(local)
        optimizer.zero_grad()
        with amp.autocast():
            value = loss(net, local)
        if not torch.isfinite(value):
            raise FloatingPointError(f"fit: the loss is {value.item()} at batch {seen}")
        weight = n * ctx.world_size / n_global
        amp.scaler.scale(value if weight == 1 else value * weight).backward()
        if grad_clip is not None:
            amp.scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(net.parameters(), grad_clip)
        amp.scaler.step(optimizer)
        amp.scaler.update()
        total += value.item() * n
        seen += n
    if seen == 0:
        raise ValueError("fit: batches(epoch) gave no batch")
    total, seen = distributed.all_reduce_sums([total, seen], ctx)
    return total / seen, int(seen)


@dataclass
class _Amp:
    """Mixed precision of one fit: the autocast context and the gradient scaler."""

    device: Any
    precision: str
    scaler: Any

    @classmethod
    def of(cls, model, precision: str) -> _Amp:
        from mammo_helpers import devices

        device = devices.model_device(model)
        precision = devices.resolve_precision(precision, device)
        return cls(device, precision, devices.grad_scaler(device, precision))

    def autocast(self):
        from mammo_helpers import devices

        return devices.autocast(self.device, self.precision)


def _validate(model, validate: Callable | None) -> dict:
    """``validate(model)`` in eval mode without gradients, on rank 0 only; every rank gets
    rank 0's values (so all ranks take the same early-stopping decision)."""
    import torch

    from mammo_helpers import distributed

    if validate is None:
        return {}
    ctx = distributed.context()
    values = None
    if ctx.is_main:
        model.eval()
        with torch.no_grad():
            values = {k: float(v) for k, v in validate(model).items()}
    return distributed.broadcast_object(values, ctx)


def _step_scheduler(scheduler, row: dict, monitor: str) -> None:
    import torch

    if scheduler is None:
        return
    if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        if monitor not in row:
            known = ", ".join(k for k in row if k not in ("epoch", "seconds", "samples_per_s"))
            raise KeyError(
                f"fit: plateau_monitor {monitor!r} is not a column; this epoch has {known}"
            )
        scheduler.step(row[monitor])
    else:
        scheduler.step()


def fit(
    model,
    batches: Callable[[int], Iterable],
    loss: Callable[[Any, Any], Any],
    optimizer,
    *,
    epochs: int,
    scheduler=None,
    validate: Callable[[Any], dict] | None = None,
    stopper: EarlyStopping | None = None,
    grad_clip: float | None = None,
    plateau_monitor: str | None = None,
    precision: str = "fp32",
    checkpoint: str | os.PathLike | None = None,
    progress: bool = False,
    desc: str = "epochs",
) -> History:
    """Train ``model`` for up to ``epochs`` epochs (see the module docstring); returns the
    per-epoch :class:`History`. The scheduler is stepped once per epoch; a
    ``ReduceLROnPlateau`` gets the value of ``plateau_monitor`` (default: the stopper's
    monitor, else the training loss). ``precision`` is ``PRECISION`` (fp32, bf16, fp16 with
    a gradient scaler, auto; see :mod:`mammo_helpers.devices`).

    With ``checkpoint`` (a file), the state after every epoch (weights, optimizer,
    scheduler, stopper, history, RNG) is written there atomically, and a later call resumes
    after the last finished epoch. For an exact resume ``batches(epoch)`` must depend only
    on the epoch (e.g. a generator seeded by ``(seed, epoch)``). Under ``torchrun`` the
    model is wrapped in DDP and ``loss`` gets the wrapped model: call it, do not call its
    methods (see :mod:`mammo_helpers.distributed`). Chapters 00-05."""
    from tqdm.auto import trange

    from mammo_helpers import distributed

    epochs = _check_epochs(epochs)
    amp = _Amp.of(model, precision)
    run = _Run(model, optimizer, scheduler, stopper, amp.scaler, History())
    start = run.resume(checkpoint) if checkpoint is not None else 0
    net = distributed.wrap(model)
    bar = trange(start, epochs, desc=desc, disable=not (progress and distributed.context().is_main))
    for epoch in bar if not run.history.stopped_early else ():
        row = _epoch(net, epoch, batches, loss, optimizer, grad_clip, amp, validate)
        run.history.rows.append(row)
        bar.set_postfix({k: f"{v:.4g}" for k, v in row.items() if k not in ("epoch", "lr")})
        _step_scheduler(scheduler, row, plateau_monitor or (stopper.monitor if stopper else "loss"))
        stop = stopper is not None and _stop(stopper, row, epoch, model)
        run.history.stopped_early = stop
        if checkpoint is not None:
            run.save(checkpoint, epoch)
        if stop:
            break
    if stopper is not None and stopper.best_state is not None:
        model.load_state_dict(stopper.best_state)
        run.history.best_epoch = stopper.best_epoch
    return run.history


def _epoch(net, epoch, batches, loss, optimizer, grad_clip, amp, validate) -> dict:
    from mammo_helpers import distributed

    start = time.perf_counter()
    lr = optimizer.param_groups[0]["lr"]
    mean_loss, seen = _train_epoch(net, batches(epoch), loss, optimizer, grad_clip, amp)
    row = {"epoch": epoch, "loss": mean_loss, "lr": lr}
    row |= _validate(distributed.unwrap(net), validate)
    seconds = time.perf_counter() - start
    return row | {"seconds": seconds, "samples_per_s": seen / seconds if seconds > 0 else math.inf}


def model_signature(model) -> str:
    """The model's class and its parameter and buffer names and shapes, hashed: two models
    with the same signature can load each other's weights."""
    import hashlib

    parts = [type(model).__qualname__]
    parts += [f"{k}:{tuple(v.shape)}" for k, v in model.state_dict().items()]
    return f"{type(model).__qualname__}-{hashlib.sha256(chr(10).join(parts).encode()).hexdigest()[:12]}"


@dataclass
class _Run:
    """What a checkpoint holds, and how it is written (rank 0, atomically) and read."""

    model: Any
    optimizer: Any
    scheduler: Any
    stopper: EarlyStopping | None
    scaler: Any
    history: History

    def state(self, epoch: int) -> dict:
        import torch

        stopper = None
        if self.stopper is not None:
            stopper = {k: getattr(self.stopper, k) for k in _STOPPER_STATE}
        return {
            "format": CHECKPOINT_FORMAT,
            "signature": model_signature(self.model),
            "epoch": epoch,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "stopper": stopper,
            "history": self.history.to_dict(),
            "torch_rng": torch.get_rng_state(),
        }

    def save(self, path, epoch: int) -> None:
        import torch

        from mammo_helpers import distributed
        from mammo_helpers.paths import atomic_write

        if distributed.context().is_main:
            with atomic_write(path) as fh:
                torch.save(self.state(epoch), fh)
        distributed.barrier()

    def resume(self, path) -> int:
        """Load ``path`` if it exists; the first epoch still to run."""
        from pathlib import Path

        path = Path(path)
        if not path.is_file():
            return 0
        state = _read_checkpoint(path, model_signature(self.model))
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state["scheduler"] is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        if state["scaler"]:
            self.scaler.load_state_dict(state["scaler"])
        if self.stopper is not None and state["stopper"] is not None:
            for k, v in state["stopper"].items():
                setattr(self.stopper, k, v)
        self.history = History.from_dict(state["history"])
        _set_rng(state["torch_rng"])
        return int(state["epoch"]) + 1


#: Version of the checkpoint layout; a checkpoint of another version is refused.
CHECKPOINT_FORMAT = 1
_STOPPER_STATE = ("best", "best_epoch", "best_state", "bad_epochs")


def _read_checkpoint(path, signature: str) -> dict:
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        reason = (str(exc).strip() or type(exc).__name__).splitlines()[0]
        raise ValueError(
            f"checkpoint {path} cannot be read ({reason}); delete it to start over"
        ) from exc
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"checkpoint {path} is not a mammo_helpers checkpoint (format 1)")
    if state["signature"] != signature:
        raise ValueError(
            f"checkpoint {path} is of another model ({state['signature']}, this one is "
            f"{signature}); give another checkpoint file or delete it"
        )
    return state


def _set_rng(state) -> None:
    import torch

    torch.set_rng_state(state)


def _stop(stopper: EarlyStopping, row: dict, epoch: int, model) -> bool:
    if stopper.monitor not in row:
        known = ", ".join(k for k in row if k not in ("epoch", "seconds", "samples_per_s"))
        raise KeyError(f"EarlyStopping monitors {stopper.monitor!r}; this epoch has {known}")
    return stopper.update(epoch, row[stopper.monitor], model)


def cached_fit(
    model,
    name: str,
    settings: dict,
    train: Callable[..., History],
    *,
    code=(),
    cache_dir=None,
    checkpoint: bool = False,
) -> tuple[History, bool]:
    """Run ``train()`` (which trains ``model`` in place and returns its History) unless the
    model cache holds its result for ``name``, ``settings`` and ``code`` (modules whose
    edit retrains); then load those weights into ``model``. Returns ``(history, hit)``; the
    entry is written all-or-nothing (by rank 0 under ``torchrun``). With ``checkpoint``,
    ``train`` is called as ``train(checkpoint=path)`` with a file beside the cache entry to
    hand to :func:`fit`, so a killed run resumes; it is removed once the model is cached.
    Chapters 00-05."""
    import sys

    from mammo_helpers import distributed
    from mammo_helpers.cache import ModelCache

    cache = ModelCache(cache_dir)
    code = [*code, sys.modules[__name__]]
    path = cache.checkpoint_path(name, settings, code) if checkpoint else None

    def run() -> dict:
        history = train(checkpoint=path) if checkpoint else train()
        return {"state": distributed.unwrap(model).state_dict(), "history": history.to_dict()}

    obj, hit = cache.get_or_train(name, settings, run, code=code)
    if hit:
        model.load_state_dict(obj["state"])
    elif path is not None and distributed.context().is_main:
        path.unlink(missing_ok=True)
    return History.from_dict(obj["history"]), hit
