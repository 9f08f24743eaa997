"""Small shared helpers of the realism estimators (chapter 00): random streams and input checks."""

from __future__ import annotations

import math
import numbers

import numpy as np


def as_rng(rng) -> np.random.Generator:
    """``rng`` as a Generator: ``None`` means seed 0 (reproducible by default)."""
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(0 if rng is None else rng)


def check_image_mask(image, mask, name: str = "image") -> tuple[np.ndarray, np.ndarray]:
    """A 2-D float image and a boolean mask of the same shape (``None`` = whole image)."""
    image = np.asarray(image, dtype=np.float64)
    if image.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array, got shape {image.shape}")
    if mask is None:
        mask = np.ones(image.shape, dtype=bool)
    else:
        mask = np.asarray(mask).astype(bool)
        if mask.shape != image.shape:
            raise ValueError(
                f"mask for {name} has shape {mask.shape}, but the image has shape {image.shape}"
            )
    return image, mask


def detrend_plane(roi: np.ndarray) -> np.ndarray:
    """``roi`` minus its least-squares plane (mean and tilt)."""
    n0, n1 = roi.shape
    yy, xx = np.mgrid[0:n0, 0:n1]
    a = np.column_stack([np.ones(roi.size), yy.ravel(), xx.ravel()])
    coef, *_ = np.linalg.lstsq(a, roi.ravel(), rcond=None)
    return roi - (a @ coef).reshape(roi.shape)


def check_number(name: str, value, *, low=None, high=None, low_open=False, integer=False):
    """``value`` if it is a finite number in [low, high] (``(low, high]`` with ``low_open``),
    else ``ValueError`` naming ``name``. ``integer`` also requires an int (not a bool)."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if integer:
        ok = ok and isinstance(value, numbers.Integral)
    if not ok or not math.isfinite(value):
        kind = "an integer" if integer else "a finite number"
        raise ValueError(f"{name} must be {kind}, got {value!r}")
    too_low = low is not None and (value <= low if low_open else value < low)
    if too_low or (high is not None and value > high):
        lower = "" if low is None else f"{'>' if low_open else '>='} {low:g}"
        upper = "" if high is None else f"<= {high:g}"
        raise ValueError(
            f"{name} must be {' and '.join(filter(None, [lower, upper]))}, got {value!r}"
        )
    return value
