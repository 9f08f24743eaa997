"""Training recipes of paper 04's image task models through the shared loop
(:func:`mammo_helpers.training.fit`; chapter 04, Wimmer et al. §III-A).

- Augmentations (§III-A): horizontal flips, rotations in [-15, 15] degrees and random
  sized crops of 85-100 % of the image, in every model; shears for D^v; vertical flips for
  the findings model and its patches; no horizontal flip for the four-view D (each view's
  side is part of its input). Grid distortion and blurring (D) and transposes (patches)
  are left out (stated in the chapter). A four-view batch (B, 4, C, H, W) is augmented
  view by view.
- Adam and cross-entropy everywhere; ``ReduceLROnPlateau`` (factor 0.2, patience 5) on
  the validation loss for D^v and D; early stopping (``stop_on``: validation loss for the
  patch model, validation AUC for F, patience 10, tolerance 0.001); stochastic weight
  averaging (SWA) from ``swa_start`` (D^v: epoch 10, D and F: epoch 5); batches balanced
  between the classes (F, the patch model and P_feat: "stratified sampling").

SWA keeps a running average of the weights (and batch-norm statistics) from ``swa_start``
on, updated once per epoch after the training batches; the model ends with the average.
Without SWA the epoch best by ``stop_on`` is kept. The models return ``(features,
logits)``; :func:`predict` gives the positive-class probability and the features.
"""

from __future__ import annotations

import math
import sys

import numpy as np

from mammo_helpers import devices, training
from mammo_helpers.models import classifiers, image_training, multiview

__all__ = ["augment", "batches", "cached", "predict", "train"]

#: Early-stopping monitors: name -> mode.
MONITORS = {"val_loss": "min", "val_auc": "max"}


def _augment_image(img, gen, *, hflip, vflip, degrees, crop, shear, translate, zoom):
    import torch
    from torchvision.transforms.v2 import functional as TF

    u = torch.rand(7, generator=gen)
    if hflip and u[0] < 0.5:
        img = TF.horizontal_flip(img)
    if vflip and u[1] < 0.5:
        img = TF.vertical_flip(img)
    move = [0, 0]
    scale = 1.0
    if translate or zoom:  # drawn only when asked, so chapter 04's draws stay as they were
        v = torch.rand(3, generator=gen)
        h, w = img.shape[-2:]
        move = [
            round(float((2 * v[0] - 1) * translate * w)),
            round(float((2 * v[1] - 1) * translate * h)),
        ]
        scale = float(1 + (2 * v[2] - 1) * zoom)
    if degrees or shear or translate or zoom:
        angle = float((2 * u[2] - 1) * degrees)
        img = TF.affine(img, angle=angle, translate=move, scale=scale,
                        shear=[float((2 * u[3] - 1) * shear), 0.0])  # fmt: skip
    if crop is not None:
        h, w = img.shape[-2:]
        side = math.sqrt(float(crop[0] + (crop[1] - crop[0]) * u[4]))
        ch, cw = max(1, round(h * side)), max(1, round(w * side))
        top, left = int(u[5] * (h - ch + 1)), int(u[6] * (w - cw + 1))
        img = TF.resized_crop(img, top, left, ch, cw, [h, w], antialias=True)
    return img


def augment(
    x, generator, *, hflip=True, vflip=False, degrees=15.0, crop=(0.85, 1.0), shear=0.0,
    translate=0.0, zoom=0.0,
):  # fmt: skip
    """A batch (B, C, H, W) or four-view batch (B, V, C, H, W) augmented image by image
    with draws from ``generator``: flips, a rotation by a uniform angle in
    [-``degrees``, ``degrees``], a shear by a uniform angle in [-``shear``, ``shear``]
    (degrees, along x), shifts by uniform shares in [-``translate``, ``translate``] of the
    width and height, a zoom by a uniform factor in [1 - ``zoom``, 1 + ``zoom``] (paper 05's
    Table 7), and a crop of a uniform share in ``crop`` of the image's area (same aspect)
    resized back (``crop=None``: none). Zero fill outside the image. Chapters 04, 05."""
    import torch

    kw = {"hflip": hflip, "vflip": vflip, "degrees": degrees, "crop": crop, "shear": shear,
          "translate": translate, "zoom": zoom}  # fmt: skip
    if x.ndim == 5:
        return torch.stack([augment(x[:, v], generator, **kw) for v in range(x.shape[1])], 1)
    return torch.stack([_augment_image(img, generator, **kw) for img in x])


def _arrays(x, y, n_classes: int = 2):
    import torch

    x = torch.as_tensor(np.asarray(x, dtype=np.float32))
    y = torch.as_tensor(np.asarray(y, dtype=np.int64))
    if x.ndim not in (4, 5) or len(x) != len(y) or len(y) == 0:
        raise ValueError(
            f"x must be (N, C, H, W) or (N, 4, C, H, W) with N = len(y) > 0; got {tuple(x.shape)}"
        )
    bad = sorted(set(y.unique().tolist()) - set(range(n_classes)))
    if bad:
        allowed = "0 or 1" if n_classes == 2 else f"0 ... {n_classes - 1}"
        raise ValueError(f"labels must be {allowed}; found {bad}")
    return x, y


def _epoch_order(y, gen, balanced: bool):
    import torch

    if not balanced:
        return torch.randperm(len(y), generator=gen)
    counts = torch.bincount(y, minlength=2).double()
    if (counts == 0).any():
        raise ValueError("balanced batches need both classes in the training set")
    weights = (1.0 / counts)[y]
    return torch.multinomial(weights, len(y), replacement=True, generator=gen)


def batches(
    x, y, *, batch_size: int, seed: int, augment_kw=None, balanced: bool = False, n_classes=2
):
    """``batches(epoch)`` for :func:`~mammo_helpers.training.fit`: a seeded pass over
    ``(x, y)`` per epoch, augmented with :func:`augment` (``augment_kw``; None: no
    augmentation). ``balanced``: each epoch draws ``len(y)`` samples with replacement,
    both classes equally likely (paper 04's balanced batches). Labels are 0 ...
    ``n_classes`` - 1 (End2End's patch classes, chapter 05: 5)."""
    import torch

    x, y = _arrays(x, y, n_classes)

    def of_epoch(epoch: int):
        gen = torch.Generator().manual_seed(int(seed) * 10_007 + int(epoch))
        order = _epoch_order(y, gen, balanced)
        for i in range(0, len(order), batch_size):
            idx = order[i : i + batch_size]
            xb = x[idx] if augment_kw is None else augment(x[idx], gen, **augment_kw)
            yield xb, y[idx]

    return of_epoch


class _Swa:
    """The validation hook that also keeps the SWA average (``fit`` calls it once per
    epoch, after the training batches)."""

    def __init__(self, model, start: int | None, validate):
        from torch.optim.swa_utils import AveragedModel

        self.start, self.validate, self.epoch = start, validate, 0
        self.average = None if start is None else AveragedModel(model, use_buffers=True)

    def __call__(self, model) -> dict:
        if self.average is not None and self.epoch >= self.start:
            self.average.update_parameters(model)
        self.epoch += 1
        return self.validate(model)

    @property
    def used(self) -> bool:
        return self.average is not None and int(self.average.n_averaged) > 0


def train(
    model, train_xy, val_xy, *, epochs: int, lr: float = 1e-3, batch_size: int = 16,
    augment_kw: dict | None = None, balanced: bool = False, swa_start: int | None = None,
    plateau: bool = False, stop_on: str = "val_loss", stop_patience: int | None = None,
    min_delta: float = 1e-3, seed: int = 0, progress: bool = False, desc: str = "model",
    precision: str = "fp32",
) -> training.History:  # fmt: skip
    """Train ``model`` in place with Adam at ``lr`` on ``train_xy = (x, y)`` (see the module
    docstring). ``plateau``: ReduceLROnPlateau (factor 0.2, patience 5) on the validation
    loss. ``stop_on`` / ``stop_patience`` / ``min_delta``: early stopping (None patience:
    run every epoch, still keeping the best epoch without SWA). ``swa_start``: the first
    epoch (0-based) averaged by SWA; the model ends with the average when any epoch was
    averaged. The history records ``swa_epochs`` averaged. ``precision``: ``PRECISION``, as
    in :func:`~mammo_helpers.training.fit`. Chapter 04."""
    import torch

    if stop_on not in MONITORS:
        raise ValueError(f"stop_on must be one of {', '.join(MONITORS)}, got {stop_on!r}")
    torch.manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = (
        torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="min", factor=0.2, patience=5)
        if plateau
        else None
    )
    x_val, y_val = val_xy
    hook = _Swa(model, swa_start, lambda m: image_training.evaluate(m, x_val, y_val))
    stopper = training.EarlyStopping(
        stop_on, mode=MONITORS[stop_on], patience=stop_patience or epochs, min_delta=min_delta
    )
    history = training.fit(
        model,
        batches(
            *train_xy, batch_size=batch_size, seed=seed, augment_kw=augment_kw, balanced=balanced
        ),  # fmt: skip
        image_training.ce_loss,
        opt,
        epochs=epochs,
        scheduler=sched,
        validate=hook,
        stopper=stopper,
        plateau_monitor="val_loss",
        progress=progress,
        precision=precision,
        desc=desc,
    )
    if hook.used:
        model.load_state_dict(hook.average.module.state_dict())
    for row in history.rows:
        row["swa_epochs"] = max(0, row["epoch"] - swa_start + 1) if swa_start is not None else 0
    return history


def predict(model, x, *, batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """``(p, features)``: the positive class's softmax probability (N,) and the pooled
    features (N, D) of ``x`` in eval mode. Chapter 04 (P_score takes ``p``, P_feat the
    features). On the model's device."""
    import torch

    def step(m, b):
        f, logits = m(b)
        return torch.softmax(logits.double(), 1)[:, 1], f.flatten(1).float()

    out = devices.predict_batches(model, x, step, batch_size=batch_size)
    return (np.zeros(0), np.zeros((0, 0), np.float32)) if out is None else out


def cached(model, name: str, settings: dict, run, *, cache_dir=None):
    """:func:`~mammo_helpers.training.cached_fit` keyed by ``settings`` and the code of the
    models and this module. ``(history, hit)``."""
    code = [classifiers, multiview, image_training, sys.modules[__name__]]
    return training.cached_fit(model, name, settings, run, code=code, cache_dir=cache_dir)
