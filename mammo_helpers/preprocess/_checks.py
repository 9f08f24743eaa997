"""Input checks shared by the preprocessing modules (named errors instead of OpenCV ones)."""

from __future__ import annotations

import math

import numpy as np

#: Smallest image side the pipelines accept: anything smaller is not a mammogram.
MIN_IMAGE_SIDE = 8


def _as_image(img, name: str = "img", *, allow_channels: bool = False) -> np.ndarray:
    arr = np.asarray(img)
    ok_ndim = (2, 3) if allow_channels else (2,)
    if arr.ndim not in ok_ndim:
        want = "(rows, cols) or (rows, cols, channels)" if allow_channels else "(rows, cols)"
        raise ValueError(f"{name} must be a {want} array, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape})")
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be numeric or boolean, got dtype {arr.dtype}")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        n_bad = int((~np.isfinite(arr)).sum())
        raise ValueError(f"{name} (shape {arr.shape}) has {n_bad} non-finite pixel(s)")
    return arr


def _as_mask(mask, shape: tuple[int, ...], name: str) -> np.ndarray:
    m = np.asarray(mask)
    if m.shape != tuple(shape[:2]):
        raise ValueError(f"{name} has shape {m.shape}, expected the image shape {shape[:2]}")
    return m.astype(bool, copy=False)


def _finite_positive(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def _as_mammogram(img, name: str = "img") -> np.ndarray:
    """A 2-D image a pipeline can work on: at least MIN_IMAGE_SIDE px and not constant."""
    arr = _as_image(img, name)
    if min(arr.shape) < MIN_IMAGE_SIDE:
        raise ValueError(
            f"{name} of shape {arr.shape} is too small to be a mammogram (each side must be "
            f">= {MIN_IMAGE_SIDE} px)"
        )
    lo, hi = arr.min(), arr.max()
    if lo == hi:
        raise ValueError(
            f"{name} of shape {arr.shape} is blank (every pixel is {lo.item()!r}): no breast to "
            "preprocess; is the DICOM's VOI or photometric interpretation wrong?"
        )
    return arr
