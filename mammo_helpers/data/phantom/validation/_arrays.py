"""Small shared helpers of the realism estimators: random streams and input checks."""

from __future__ import annotations

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
