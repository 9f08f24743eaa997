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
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["EarlyStopping", "History", "batch_size_of", "cached_fit", "fit"]

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
    model, batches: Iterable, loss: Callable, optimizer, grad_clip
) -> tuple[float, int]:
    """One pass over ``batches``; the sample-weighted mean loss and the number of samples."""
    import torch

    model.train()
    total, seen = 0.0, 0
    for batch in batches:
        optimizer.zero_grad()
        value = loss(model, batch)
        if not torch.isfinite(value):
            raise FloatingPointError(f"fit: the loss is {value.item()} at batch {seen}")
        value.backward()
        if grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()
        n = batch_size_of(batch)
        total += value.item() * n
        seen += n
    if seen == 0:
        raise ValueError("fit: batches(epoch) gave no batch")
    return total / seen, seen


def _validate(model, validate: Callable | None) -> dict:
    import torch

    if validate is None:
        return {}
    model.eval()
    with torch.no_grad():
        return {k: float(v) for k, v in validate(model).items()}


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
    progress: bool = False,
    desc: str = "epochs",
) -> History:
    """Train ``model`` for up to ``epochs`` epochs (see the module docstring); returns the
    per-epoch :class:`History`. The scheduler is stepped once per epoch; a
    ``ReduceLROnPlateau`` gets the value of ``plateau_monitor`` (default: the stopper's
    monitor, else the training loss). Chapters 00-05."""
    from tqdm.auto import trange

    epochs = _check_epochs(epochs)
    history = History()
    bar = trange(epochs, desc=desc, disable=not progress)
    for epoch in bar:
        start = time.perf_counter()
        lr = optimizer.param_groups[0]["lr"]
        mean_loss, seen = _train_epoch(model, batches(epoch), loss, optimizer, grad_clip)
        row = {"epoch": epoch, "loss": mean_loss, "lr": lr, **_validate(model, validate)}
        seconds = time.perf_counter() - start
        row |= {"seconds": seconds, "samples_per_s": seen / seconds if seconds > 0 else math.inf}
        history.rows.append(row)
        bar.set_postfix({k: f"{v:.4g}" for k, v in row.items() if k not in ("epoch", "lr")})
        monitor = plateau_monitor or (stopper.monitor if stopper else "loss")
        _step_scheduler(scheduler, row, monitor)
        if stopper is not None and _stop(stopper, row, epoch, model):
            history.stopped_early = True
            break
    if stopper is not None and stopper.best_state is not None:
        model.load_state_dict(stopper.best_state)
        history.best_epoch = stopper.best_epoch
    return history


def _stop(stopper: EarlyStopping, row: dict, epoch: int, model) -> bool:
    if stopper.monitor not in row:
        known = ", ".join(k for k in row if k not in ("epoch", "seconds", "samples_per_s"))
        raise KeyError(f"EarlyStopping monitors {stopper.monitor!r}; this epoch has {known}")
    return stopper.update(epoch, row[stopper.monitor], model)


def cached_fit(
    model, name: str, settings: dict, train: Callable[[], History], *, code=(), cache_dir=None
) -> tuple[History, bool]:
    """Run ``train()`` (which trains ``model`` in place and returns its History) unless the
    model cache holds its result for ``name``, ``settings`` and ``code`` (modules whose
    edit retrains); then load those weights into ``model``. Returns ``(history, hit)``; the
    entry is written all-or-nothing. Chapters 01-05."""
    import sys

    from mammo_helpers.cache import ModelCache

    def run() -> dict:
        history = train()
        return {"state": model.state_dict(), "history": history.to_dict()}

    code = [*code, sys.modules[__name__]]
    obj, hit = ModelCache(cache_dir).get_or_train(name, settings, run, code=code)
    if hit:
        model.load_state_dict(obj["state"])
    return History.from_dict(obj["history"]), hit
