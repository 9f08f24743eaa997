"""Sanity checks for attribution maps: model-parameter randomisation (Adebayo et al. 2018,
"Sanity Checks for Saliency Maps"; chapter 03).

An explanation that depends on what the model learnt must change when the learnt weights
are destroyed. :func:`cascading_randomisation` re-initialises the layers of a copy of the
model one after another from the logits down (:func:`randomisable_layers`) and computes a
map after each step; :func:`map_similarity` compares each map with the original one
(Spearman rank correlation of the absolute and of the signed values, SSIM). A method
whose maps stay similar to the original ones after randomisation fails the check.
"""

from __future__ import annotations

import copy
import math
import warnings
from typing import TYPE_CHECKING

import numpy as np

from mammo_helpers.xai.localisation import _as_map, _as_mask

if TYPE_CHECKING:
    from torch import nn

__all__ = ["cascading_randomisation", "map_similarity", "randomisable_layers"]


def _layer_types() -> tuple[type, ...]:
    from torch import nn

    return (nn.Conv2d, nn.Linear, nn.BatchNorm2d)


def randomisable_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The ``Conv2d``, ``Linear`` and ``BatchNorm2d`` modules of ``model`` that hold
    parameters (a BatchNorm without affine weights has none and is left out), as ``(name,
    module)`` with the names of ``named_modules``, ordered from the logits down: the
    reverse of the order in which they are defined."""
    types = _layer_types()
    found = [
        (name, module)
        for name, module in model.named_modules()
        if isinstance(module, types) and any(True for _ in module.parameters(recurse=False))
    ]
    return found[::-1]


def _map(explain_fn, model, step: str) -> np.ndarray:
    out = explain_fn(model)
    if hasattr(out, "detach"):  # a torch tensor
        out = out.detach().cpu().numpy()
    return _as_map(out, f"map of explain_fn after {step!r}")


def _reinitialise(module, seed: int) -> None:
    """``module.reset_parameters()`` under ``seed``, without touching the global RNG; a
    BatchNorm's running statistics are reset too (and its weight / bias go back to 1 / 0,
    its default initialisation)."""
    import torch
    from torch import nn

    with torch.random.fork_rng():
        torch.manual_seed(seed)
        module.reset_parameters()
    if isinstance(module, nn.BatchNorm2d):
        module.reset_running_stats()


def cascading_randomisation(
    model: nn.Module, explain_fn, *, seed: int = 0, layers=None
) -> list[tuple[str, np.ndarray]]:
    """Cumulative (cascading) model-parameter randomisation on a ``copy.deepcopy`` of
    ``model`` (the model itself is untouched).

    ``explain_fn(model_copy)`` returns a 2-D map (array or tensor). The first entry is
    ``("original", map)`` of the untouched copy; then the layers are re-initialised one
    after another, layer ``i`` with ``module.reset_parameters()`` under
    ``torch.manual_seed(seed + i)``, each step keeping the earlier ones (after step ``i``
    the top ``i + 1`` layers are random), and ``(layer name, map)`` follows each step.
    ``layers``: names in the order to randomise them (default: every layer of
    :func:`randomisable_layers`, from the logits down). The copy keeps the model's mode
    (train / eval) and device."""
    work = copy.deepcopy(model)
    available = dict(randomisable_layers(work))
    names = list(available) if layers is None else list(layers)
    unknown = [n for n in names if n not in available]
    if unknown:
        raise ValueError(
            f"layers {unknown} are not randomisable layers of the model; "
            f"choose among {list(available)}"
        )
    out = [("original", _map(explain_fn, work, "original"))]
    for i, name in enumerate(names):
        _reinitialise(available[name], seed + i)
        out.append((name, _map(explain_fn, work, name)))
    return out


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import spearmanr

    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(spearmanr(a, b).statistic)


def _unit_scaled(m: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """``m`` min-max scaled to [0, 1] over ``keep`` (0 for a constant map), 0 outside."""
    lo, hi = m[keep].min(), m[keep].max()
    scaled = (m - lo) / (hi - lo) if hi > lo else np.zeros_like(m)
    return np.where(keep, np.clip(scaled, 0.0, 1.0), 0.0)


def map_similarity(a, b, breast_mask=None) -> dict:
    """How similar two maps are over the breast pixels (all pixels without a mask).

    ``spearman_abs``: Spearman rank correlation of ``|a|`` and ``|b|``; ``spearman_signed``:
    of ``a`` and ``b`` (``scipy.stats.spearmanr``); NaN when either side is constant over
    the breast (the correlation is undefined). ``ssim``:
    ``skimage.metrics.structural_similarity`` of the two maps, each min-max scaled to
    [0, 1] over the breast and set to 0 outside it (``data_range=1``, 7 x 7 windows: maps
    need at least 7 pixels a side), its SSIM map averaged over the breast pixels."""
    from skimage.metrics import structural_similarity

    a, b = _as_map(a, "a"), _as_map(b, "b")
    if a.shape != b.shape:
        raise ValueError(f"a has shape {a.shape}, b {b.shape}")
    keep = np.ones(a.shape, bool)
    if breast_mask is not None:
        keep = _as_mask(breast_mask, a.shape, "breast_mask", "a")
        if not keep.any():
            raise ValueError("breast_mask is empty: no pixel to compare")
    _, ssim_map = structural_similarity(
        _unit_scaled(a, keep), _unit_scaled(b, keep), data_range=1.0, full=True
    )
    return {
        "spearman_abs": _spearman(np.abs(a[keep]), np.abs(b[keep])),
        "spearman_signed": _spearman(a[keep], b[keep]),
        "ssim": float(ssim_map[keep].mean()),
    }
