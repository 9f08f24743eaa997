"""Cross-entropy training of paper 03's two classifiers through the shared loop
(:func:`mammo_helpers.training.fit`; chapter 03, Sam Millan 2023 §3.2.2-3.2.3).

- Patches (§3.2.2): horizontal and vertical flips, a random rotation of up to 30 degrees,
  cross-entropy, Adam at 1e-3, ``ReduceLROnPlateau`` with patience 5 on the validation loss.
- Whole images (§3.2.3): cross-entropy, SGD at 0.01 with momentum 0.9,
  ``CosineAnnealingWarmRestarts``; the paper names no augmentation for whole images.

The models are :class:`~mammo_helpers.models.classifiers.CropClassifier` s with the labels
``("normal", "malignant")``: ``forward`` returns ``(features, logits)`` and the softmax of
the logits gives the malignancy probability. The best epoch (lowest validation loss) is kept.
"""

from __future__ import annotations

import math
import sys

import numpy as np

from mammo_helpers import devices, training
from mammo_helpers.models import classifiers

__all__ = [
    "CLASSES",
    "augment",
    "batches",
    "cached",
    "evaluate",
    "predict_proba",
    "train",
]

CLASSES = ("normal", "malignant")
OPTIMISERS = ("adam", "sgd")
SCHEDULERS = ("plateau", "cosine_warm_restarts")


def augment(x, generator, *, hflip: bool = True, vflip: bool = True, degrees: float = 30.0):
    """A batch (B, C, H, W) flipped and rotated per image, drawn from ``generator``
    (rotation by a uniform angle in [-degrees, degrees], zero fill)."""
    import torch
    from torchvision.transforms.v2 import functional as TF

    out = []
    for img in x:
        draws = torch.rand(3, generator=generator)
        if hflip and draws[0] < 0.5:
            img = TF.horizontal_flip(img)
        if vflip and draws[1] < 0.5:
            img = TF.vertical_flip(img)
        if degrees:
            img = TF.rotate(img, float((2 * draws[2] - 1) * degrees))
        out.append(img)
    return torch.stack(out)


def _arrays(x, y):
    import torch

    x = torch.as_tensor(np.asarray(x, dtype=np.float32))
    y = torch.as_tensor(np.asarray(y, dtype=np.int64))
    if x.ndim != 4 or len(x) != len(y) or len(y) == 0:
        raise ValueError(f"x must be (N, C, H, W) with N = len(y) > 0; got {tuple(x.shape)}")
    bad = sorted(set(y.unique().tolist()) - {0, 1})
    if bad:
        raise ValueError(f"labels must be 0 (normal) or 1 (malignant); found {bad}")
    return x, y


def batches(x, y, *, batch_size: int, seed: int, augment_kw: dict | None = None):
    """``batches(epoch)`` for :func:`~mammo_helpers.training.fit`: a seeded shuffle of
    ``(x, y)`` per epoch in batches of ``batch_size``, augmented with :func:`augment`
    (``augment_kw``) unless it is None."""
    import torch

    x, y = _arrays(x, y)

    def of_epoch(epoch: int):
        gen = torch.Generator().manual_seed(int(seed) * 10_007 + int(epoch))
        order = torch.randperm(len(y), generator=gen)
        for i in range(0, len(order), batch_size):
            idx = order[i : i + batch_size]
            xb = x[idx] if augment_kw is None else augment(x[idx], gen, **augment_kw)
            yield xb, y[idx]

    return of_epoch


def ce_loss(model, batch):
    """Cross-entropy of the model's logits."""
    import torch.nn.functional as F

    x, y = batch
    _, logits = model(x)
    return F.cross_entropy(logits, y)


def predict_proba(model, x, *, batch_size: int = 128) -> np.ndarray:
    """Softmax probability of ``malignant`` (N,) for ``x`` (N, C, H, W), in eval mode, on
    the model's device."""
    import torch

    def step(m, b):
        return torch.softmax(m(b)[1].double(), 1)[:, 1]

    out = devices.predict_batches(model, x, step, batch_size=batch_size)
    return np.zeros(0) if out is None else out


def evaluate(model, x, y) -> dict:
    """``val_loss`` (mean cross-entropy), ``val_auc`` and ``val_accuracy`` (at 0.5)."""
    from mammo_helpers.metrics import roc_auc

    y = np.asarray(y, dtype=int)
    p = np.clip(predict_proba(model, x), 1e-12, 1 - 1e-12)
    loss = -np.mean(np.where(y == 1, np.log(p), np.log1p(-p)))
    auc = roc_auc(y, p) if 0 < y.sum() < len(y) else math.nan
    return {
        "val_loss": float(loss),
        "val_auc": auc,
        "val_accuracy": float(np.mean((p >= 0.5) == y)),
    }


def _optimiser(model, name: str, lr: float, momentum: float):
    import torch

    if name == "adam":
        return torch.optim.Adam(model.parameters(), lr=lr)
    if name == "sgd":
        return torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    raise ValueError(f"optimizer must be one of {OPTIMISERS}, got {name!r}")


def _scheduler(opt, name: str, *, patience: int, t0: int):
    import torch

    if name == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="min", patience=patience)
    if name == "cosine_warm_restarts":
        return torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=t0)
    raise ValueError(f"scheduler must be one of {SCHEDULERS}, got {name!r}")


def train(
    model,
    train_xy,
    val_xy,
    *,
    epochs: int,
    optimizer: str = "adam",
    lr: float = 1e-3,
    momentum: float = 0.9,
    scheduler: str = "plateau",
    patience: int = 5,
    plateau_on: str = "loss",
    t0: int = 10,
    batch_size: int = 32,
    augment_kw: dict | None = None,
    seed: int = 0,
    progress: bool = False,
    precision: str = "fp32",
    desc: str = "classifier",
) -> training.History:
    """Train ``model`` in place on ``train_xy = (x, y)``, keeping the epoch with the lowest
    validation loss on ``val_xy``. The plateau scheduler watches ``plateau_on``: the
    training ``"loss"`` (default) or ``"val_loss"`` (the paper does not say which; on a
    small validation set whose loss stays flat while a model trained from scratch starts
    to learn, it would cut the rate before anything is learnt). Returns the per-epoch
    history (loss, val_loss, val_auc, val_accuracy, lr). ``precision``: ``PRECISION``, as in
    ``training.fit``."""
    import torch

    torch.manual_seed(seed)
    opt = _optimiser(model, optimizer, lr, momentum)
    sched = _scheduler(opt, scheduler, patience=patience, t0=t0)
    x_val, y_val = val_xy
    return training.fit(
        model,
        batches(*train_xy, batch_size=batch_size, seed=seed, augment_kw=augment_kw),
        ce_loss,
        opt,
        epochs=epochs,
        scheduler=sched,
        validate=lambda m: evaluate(m, x_val, y_val),
        stopper=training.EarlyStopping("val_loss", mode="min", patience=epochs),
        plateau_monitor=plateau_on,
        progress=progress,
        precision=precision,
        desc=desc,
    )


def cached(model, name: str, settings: dict, run, *, cache_dir=None):
    """:func:`~mammo_helpers.training.cached_fit` keyed by ``settings`` and the code of the
    classifier and this module. ``(history, hit)``."""
    code = [classifiers, sys.modules[__name__]]
    return training.cached_fit(model, name, settings, run, code=code, cache_dir=cache_dir)
