"""Quantum-noise linearity: local variance against local mean of a raw image.

In a raw ("FOR PROCESSING") image, quantum noise makes the local variance a linear function
of the local signal, var = a * I + b (Poisson statistics of the detected photons; b is
electronic noise), the square-root noise model used for noise equalisation of mammograms
(e.g. van Schie and Karssemeijer, SPIE Medical Imaging 2009). :func:`noise_variance_fit`
fits that line robustly over small tiles. Used by :func:`~.noise_checks.noise_check` (chapter 00).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._arrays import check_image_mask, check_number


@dataclass(frozen=True)
class NoiseFitResult:
    """Result of :func:`noise_variance_fit`: var = slope * mean + intercept.

    Unpacks as ``slope, intercept, r2 = result``. ``means`` / ``variances`` are all blocks,
    ``used`` marks the ones kept by the outlier rejection (for a scatter plot).
    """

    slope: float
    intercept: float
    r2: float
    means: np.ndarray
    variances: np.ndarray
    used: np.ndarray

    def __iter__(self):
        return iter((self.slope, self.intercept, self.r2))


def tile_statistics(image, mask=None, *, block: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Mean and plane-detrended variance (ddof = 3) of every ``block`` x ``block`` tile that
    lies fully inside ``mask`` (and has only finite pixels)."""
    img, msk = check_image_mask(image, mask, name="image")
    block = check_number("block", block, low=3, integer=True)
    nby, nbx = img.shape[0] // block, img.shape[1] // block
    if nby == 0 or nbx == 0:
        raise ValueError(f"block {block} px is larger than the {img.shape} image")
    sl = (slice(0, nby * block), slice(0, nbx * block))
    tiles = img[sl].reshape(nby, block, nbx, block).swapaxes(1, 2).reshape(-1, block, block)
    inside = msk[sl].reshape(nby, block, nbx, block).all(axis=(1, 3)).ravel()
    tiles = tiles[inside & np.isfinite(tiles).all(axis=(1, 2))]
    if len(tiles) < 3:
        raise ValueError(
            f"only {len(tiles)} tiles of {block}x{block} px lie fully inside the mask; need 3"
        )
    yy, xx = np.mgrid[0:block, 0:block]
    a = np.column_stack([np.ones(block * block), yy.ravel(), xx.ravel()])
    flat = tiles.reshape(len(tiles), -1)
    coef, *_ = np.linalg.lstsq(a, flat.T, rcond=None)
    resid = flat - (a @ coef).T
    return flat.mean(1), (resid**2).sum(1) / (block * block - 3)


def _start_line(means: np.ndarray, variances: np.ndarray) -> tuple[float, float]:
    """Robust start: the line through the median variance of ~20 equally populated bins."""
    n_bins = int(min(20, max(3, len(means) // 10)))
    order = np.argsort(means)
    chunks = [c for c in np.array_split(order, n_bins) if c.size]
    if len(chunks) >= 2:
        return np.polyfit(
            [np.median(means[c]) for c in chunks], [np.median(variances[c]) for c in chunks], 1
        )
    return np.polyfit(means, variances, 1)


def _inliers(means, variances, slope, icpt, reject_sigma) -> np.ndarray | None:
    """Tiles whose relative residual var / fit - 1 is within ``reject_sigma`` robust sd.

    Relative residuals, because a variance estimate's spread grows with the variance
    itself. ``None`` when fewer than 3 tiles would remain.
    """
    pred = slope * means + icpt
    ok = pred > 0
    res = np.full(len(means), np.inf)
    res[ok] = variances[ok] / pred[ok] - 1.0
    fin = np.isfinite(res)
    if fin.sum() < 3:
        return None
    med = np.median(res[fin])
    mad = 1.4826 * np.median(np.abs(res[fin] - med))
    keep = np.abs(res - med) <= reject_sigma * mad if mad > 0 else fin
    return keep if keep.sum() >= 3 else None


def noise_variance_fit(image, mask=None, *, block: int = 16, reject_sigma: float = 3.0):
    """Fit local variance against local mean over ``block`` x ``block`` tiles inside ``mask``.

    Each tile fully inside the mask has its best-fit plane removed (so smooth gradients do
    not count as noise) and its residual variance computed with ddof = 3
    (:func:`tile_statistics`). A least-squares line var = a * mean + b is fitted robustly: a
    start line through the median variance of ~20 equally populated mean bins, then
    (twice) tiles whose relative residual var / fit - 1 lies beyond ``reject_sigma`` robust
    standard deviations (MAD) - structured tiles such as edges - are dropped and the line
    refitted by least squares on the rest. Linear raw-domain quantum noise gives a > 0 and
    a high r2. Returns :class:`NoiseFitResult` (unpacks to ``(slope, intercept, r2)``).
    """
    if not reject_sigma > 0:  # inf (no rejection) is allowed
        raise ValueError(f"reject_sigma must be > 0, got {reject_sigma!r}")
    means, variances = tile_statistics(image, mask, block=block)
    slope, icpt = _start_line(means, variances)
    used = np.ones(len(means), dtype=bool)
    for _ in range(2):  # reject on relative residuals, refit by least squares
        keep = _inliers(means, variances, slope, icpt, reject_sigma)
        if keep is None:
            break
        used = keep
        slope, icpt = np.polyfit(means[used], variances[used], 1)
    pred = slope * means[used] + icpt
    ss_res = float(np.sum((variances[used] - pred) ** 2))
    ss_tot = float(np.sum((variances[used] - variances[used].mean()) ** 2))
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else float("nan")
    return NoiseFitResult(
        slope=float(slope),
        intercept=float(icpt),
        r2=float(r2),
        means=means,
        variances=variances,
        used=used,
    )
