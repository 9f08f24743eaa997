"""Training and applying the multi-label crop classifier (paper 02, §3.3; chapters 02, 03).

The paper's recipe: crops re-drawn every epoch (:class:`mammo_helpers.data.crops.CropDataset`),
drawn with replacement by inverse label frequency (``WeightedRandomSampler``), the focal
loss (alpha 0.95, gamma 2.5, in the alpha_t form of the text and code), Adam at 1e-3 with a
cosine decay to 1e-7 over the epochs, batch 48. :func:`train` runs it through the shared loop
(:func:`mammo_helpers.training.fit`) and :func:`cached` through the model cache;
:func:`predict` gives sigmoid probabilities of crops or windows.
"""

from __future__ import annotations

import sys

import numpy as np

from mammo_helpers import devices, training
from mammo_helpers.models import classifiers, losses

__all__ = ["batches", "cached", "dataset_arrays", "focal_batch_loss", "predict", "train"]


def batches(dataset, weights, *, batch_size: int, seed: int, draws: int = 1, loader=None):
    """``batches(epoch)`` for :func:`~mammo_helpers.training.fit`: ``draws x len(dataset)``
    samples drawn with replacement, weighted by ``weights``, in batches of ``batch_size``;
    the k-th draw of an epoch is item ``(index, k)`` of the dataset, so a sample drawn twice
    gets two different crops. The draw depends only on ``seed`` and the epoch. ``loader``:
    ``DataLoader`` keywords (:func:`mammo_helpers.devices.loader_options`: worker processes
    cut the crops, pinned memory on CUDA); each epoch has its own loader, so its workers
    are never persistent (they would keep the previous epoch's crops)."""
    import torch
    from torch.utils.data import DataLoader

    w = torch.as_tensor(np.asarray(weights, dtype=np.float64))
    if w.shape != (len(dataset),) or not torch.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
        raise ValueError(f"weights must be {len(dataset)} finite values >= 0, not all 0")
    if isinstance(draws, bool) or not isinstance(draws, int) or draws < 1:
        raise ValueError(f"draws must be an integer >= 1, got {draws!r}")
    n = draws * len(dataset)

    def of_epoch(epoch: int):
        dataset.set_epoch(epoch)
        gen = torch.Generator().manual_seed(int(seed) * 10_007 + int(epoch))
        picks = torch.multinomial(w, n, replacement=True, generator=gen).tolist()
        keys = list(zip(picks, range(n), strict=True))
        options = dict(loader or {}) | {"persistent_workers": False}
        return DataLoader(dataset, batch_size=batch_size, sampler=keys, **options)

    return of_epoch


def focal_batch_loss(alpha: float, gamma: float, alpha_on: str = "t"):
    """``loss(model, (x, y))``: the focal loss of the model's logits."""

    def loss(model, batch):
        x, y = batch
        _, logits = model(x)
        return losses.focal_loss(logits, y, alpha=alpha, gamma=gamma, alpha_on=alpha_on)

    return loss


def train(
    model,
    dataset,
    weights,
    *,
    epochs: int,
    batch_size: int = 48,
    lr: float = 1e-3,
    lr_min: float = 1e-7,
    alpha: float = 0.95,
    gamma: float = 2.5,
    seed: int = 0,
    draws: int = 1,
    validate=None,
    progress: bool = False,
    precision: str = "fp32",
    loader=None,
) -> training.History:
    """Train ``model`` in place with the paper's recipe (module docstring), ``draws`` crops
    per sample and epoch on average; ``validate`` as in :func:`~mammo_helpers.training.fit`.
    Returns the per-epoch history. ``precision``: ``PRECISION``, as in ``training.fit``;
    ``loader``: the crop loader's keywords, as in :func:`batches`."""
    import torch

    torch.manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs, eta_min=lr_min)
    return training.fit(
        model,
        batches(dataset, weights, batch_size=batch_size, seed=seed, draws=draws, loader=loader),
        focal_batch_loss(alpha, gamma),
        opt,
        epochs=epochs,
        scheduler=sched,
        validate=validate,
        progress=progress,
        precision=precision,
        desc="crop classifier",
    )


def cached(model, name: str, settings: dict, run, *, cache_dir=None):
    """:func:`~mammo_helpers.training.cached_fit` keyed by ``settings`` and the code of the
    classifier, the losses, the crops and this module. ``(history, hit)``."""
    from mammo_helpers.data import crops

    code = [classifiers, losses, crops, sys.modules[__name__]]
    return training.cached_fit(model, name, settings, run, code=code, cache_dir=cache_dir)


def dataset_arrays(dataset) -> tuple[np.ndarray, np.ndarray]:
    """Every item of a (test) dataset stacked: ``x`` (N, C, H, W) float32, ``y`` (N, L)."""
    items = [dataset[i] for i in range(len(dataset))]
    x = np.stack([xi.numpy() for xi, _ in items]).astype(np.float32)
    return x, np.stack([yi.numpy() for _, yi in items])


def predict(model, x, *, batch_size: int = 256) -> np.ndarray:
    """Sigmoid probabilities (N, L) of ``x`` (N, C, H, W) in eval mode, on the model's
    device."""
    import torch

    out = devices.predict_batches(
        model, x, lambda m, b: torch.sigmoid(m(b)[1]), batch_size=batch_size
    )
    if out is None:
        return np.zeros((0, len(getattr(model, "labels", ()))), np.float32)
    return out
