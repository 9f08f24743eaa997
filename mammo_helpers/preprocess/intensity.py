"""Intensity operations: min-max scaling, 8/16-bit conversion, CLAHE and the CLAHE channel
fusion of paper 02, the featurewise mean of paper 05 and histogram matching inside the breast
(chapter 05). Chapters 00, 02, 03, 05.
"""

from __future__ import annotations

from collections.abc import Iterable

import cv2
import numpy as np

from mammo_helpers.boxes import as_hw

from ._checks import _as_image, _as_mask, _finite_positive
from .breast import otsu_breast_mask


def scale_to_unit(img, *, mask=None, low_pct: float = 0.0, high_pct: float = 100.0) -> np.ndarray:
    """Min-max scale an image to float32 [0, 1] (paper 02 §3.1; notebooks 00, 02, 03, 05).

    With ``low_pct``/``high_pct`` the limits are percentiles instead of min/max, computed only
    over ``mask`` pixels when a mask is given (e.g. the breast), and values outside the limits
    are clipped. A constant image (or limits that coincide) gives zeros, never a division by 0.
    """
    arr = _as_image(img)
    if not 0.0 <= low_pct < high_pct <= 100.0:  # also rejects NaN
        raise ValueError(f"need 0 <= low_pct < high_pct <= 100, got {low_pct}, {high_pct}")
    x = arr.astype(np.float64)
    ref = x if mask is None else x[_as_mask(mask, arr.shape, "mask")]
    if ref.size == 0:
        raise ValueError(f"mask selects no pixel of the image (shape {arr.shape})")
    lo, hi = np.percentile(ref, [low_pct, high_pct])
    if hi <= lo:
        return np.zeros(arr.shape, dtype=np.float32)
    return np.clip((x - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)


def to_uint8(img01) -> np.ndarray:
    """[0, 1] float image -> uint8 (rounded, values outside [0, 1] clipped)."""
    x = _as_image(img01, "img01", allow_channels=True)
    return np.rint(np.clip(x, 0.0, 1.0) * 255.0).astype(np.uint8)


def to_uint16(img01) -> np.ndarray:
    """[0, 1] float image -> uint16 (rounded, values outside [0, 1] clipped)."""
    x = _as_image(img01, "img01", allow_channels=True)
    return np.rint(np.clip(x, 0.0, 1.0) * 65535.0).astype(np.uint16)


def clahe(
    img01, clip_limit: float, tile_grid: tuple[int, int] = (8, 8), *, bits: int = 8
) -> np.ndarray:
    """OpenCV CLAHE of a [0, 1] image, returned as float32 [0, 1] (paper 02 §3.1).

    Runs ``cv2.createCLAHE`` on the image quantised to uint8 by default, as the CorRELAX
    authors do (their ``clahefusion`` requires uint8), so the clip limits 1.0 / 2.0 mean what they
    meant in the paper. ``bits=16`` runs it on uint16 instead (65536-bin histograms: no
    quantisation of 16-bit detail, but not the paper's setting).

    ``tile_grid`` is the *number of tiles* as (rows, cols), OpenCV's ``tileGridSize`` semantics;
    the paper's "8x8 pixels" is this 8x8 grid (the authors pass ``tileGridSize=(8, 8)``).
    """
    x = _as_image(img01, "img01")
    clip_limit = _finite_positive(clip_limit, "clip_limit")
    ty, tx = as_hw(tile_grid, "tile_grid")
    op = cv2.createCLAHE(clipLimit=float(clip_limit), tileGridSize=(tx, ty))
    if bits == 8:
        return (op.apply(to_uint8(x)).astype(np.float32) / 255.0).astype(np.float32)
    if bits == 16:
        return (op.apply(to_uint16(x)).astype(np.float32) / 65535.0).astype(np.float32)
    raise ValueError(f"bits must be 8 or 16, got {bits}")


def clahe_fusion(
    img01,
    clip_limits: tuple[float, ...] = (1.0, 2.0),
    tile_grid: tuple[int, int] = (8, 8),
    background=None,
) -> np.ndarray:
    """3-channel image [original, CLAHE clip 1.0, CLAHE clip 2.0] (paper 02 §3.1; notebook 02).

    ``img01`` is a [0, 1] image (``scale_to_unit``). ``background`` is a boolean mask, True
    outside the breast; by default ``~otsu_breast_mask(img01)``. Background pixels are set to 0
    in *every* channel (CLAHE lifts the dark background; the authors' code zeroes only pixels
    that are exactly 0 in uint8 and only in the CLAHE channels - an Otsu mask also removes
    background noise and burned-in labels). Channel 0 equals ``img01`` inside the breast.
    Returns float32 ``(H, W, 1 + len(clip_limits))``.
    """
    x = _as_image(img01, "img01").astype(np.float32)
    if background is None:
        bg = ~otsu_breast_mask(x)
    else:
        bg = _as_mask(background, x.shape, "background")
    channels = [x] + [clahe(x, c, tile_grid) for c in clip_limits]
    fused = np.stack(channels, axis=-1)
    fused[bg] = 0.0
    return fused


def featurewise_mean(images: Iterable) -> float:
    """Mean pixel value over all pixels of all ``images`` (End2End's scalar featurewise mean).

    Paper 05 §4.2 subtracts the mean computed on the *training split*: pass the
    ``"scaled_255"`` steps of ``pipeline_domain_shift`` for the training images, then give
    the result as ``featurewise_mean=`` for every split. Accepts a generator (streams).
    """
    total, count = 0.0, 0
    for i, im in enumerate(images):
        arr = _as_image(im, f"images[{i}]", allow_channels=True)
        total += float(arr.sum(dtype=np.float64))
        count += arr.size
    if count == 0:
        raise ValueError("featurewise_mean needs at least one non-empty image")
    return total / count


def reference_quantiles(images: Iterable, masks: Iterable, n: int = 1024) -> np.ndarray:
    """``n`` evenly spaced quantiles of the pooled in-mask pixels of ``images`` (a
    domain's intensity distribution; each image weighs by its breast area). The reference
    of :func:`match_quantiles`. Chapter 05 (histogram matching to the source domain)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 2:
        raise ValueError(f"n must be an integer >= 2, got {n!r}")
    pooled = []
    for i, (im, m) in enumerate(zip(images, masks, strict=True)):
        img = _as_image(im, f"images[{i}]")
        mask = _as_mask(m, img.shape, f"masks[{i}]")
        pooled.append(img[mask].astype(np.float64))
    values = np.concatenate(pooled) if pooled else np.zeros(0)
    if not values.size:
        raise ValueError("reference_quantiles: the masks hold no pixel")
    return np.quantile(values, np.linspace(0.0, 1.0, n))


def match_quantiles(img, mask, quantiles) -> np.ndarray:
    """``img`` with its in-mask pixels mapped so that their distribution follows
    ``quantiles`` (:func:`reference_quantiles`): each pixel goes to the reference quantile
    at its own rank (mid-ranks for ties), as histogram matching does
    (``skimage.exposure.match_histograms``, which cannot restrict itself to the breast).
    Pixels outside the mask are set to the reference minimum. Chapter 05."""
    img = _as_image(img, "img")
    mask = _as_mask(mask, img.shape, "mask")
    q = np.asarray(quantiles, dtype=np.float64)
    if q.ndim != 1 or len(q) < 2 or not np.isfinite(q).all() or (np.diff(q) < 0).any():
        raise ValueError("quantiles must be a finite, non-decreasing 1-D array of >= 2 values")
    if not mask.any():
        raise ValueError("match_quantiles: the mask holds no pixel")
    values = img[mask].astype(np.float64)
    uniq, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    rank = (np.cumsum(counts) - 0.5 * counts) / len(values)  # mid-rank of each distinct value
    out = np.full(img.shape, q[0], dtype=np.float64)
    out[mask] = np.interp(rank, np.linspace(0.0, 1.0, len(q)), q)[inverse]
    return out
