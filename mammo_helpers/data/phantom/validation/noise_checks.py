"""Realism check of the detector noise: raw variance is linear in the mean (quantum noise).

As in detector quality control (flat-field images, IEC 62220-1), the check exposes a flat
step wedge - uniform bands of increasing attenuation, no anatomy - through each site's
acquisition model and fits the variance of small tiles against their mean signal
(:func:`~.noise.noise_variance_fit`). Quantum noise is Poisson, so the variance is linear
in the mean: target R^2 > 0.9, with a slope equal to the noise-power gain of the detector
blur (the sum of its squared impulse response) and a small positive intercept (electronic
noise). In the breast itself, anatomical texture adds variance that has nothing to do
with the detector. Used by chapter 00.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..acquisition import SITES, SiteProfile, expose, gaussian_blur, photons_per_pixel
from ..calibration import ELECTRONIC_NOISE
from ..config import PhantomConfig
from .noise import NoiseFitResult, noise_variance_fit


@dataclass(frozen=True)
class NoiseCheck:
    """Result of :func:`noise_check`.

    ``table`` has one row per site: spacing_mm, slope, expected_slope (noise-power gain of
    the site's detector blur), intercept, expected_intercept (electronic noise variance),
    r2, tiles and tiles_used; ``fits`` maps each site
    to its :class:`~.noise.NoiseFitResult` (tile means, variances, inliers: for a scatter
    plot); ``min_r2`` is the worst site's R^2.
    """

    table: pd.DataFrame
    fits: dict[str, NoiseFitResult]
    min_r2: float


def step_wedge(
    spacing_mm: float,
    *,
    n_steps: int = 8,
    step_mm: float = 25.0,
    height_mm: float = 60.0,
    span: float = 2.0,
):
    """Line integrals of a flat step wedge: ``n_steps`` bands of ``step_mm`` whose
    attenuation rises evenly over ``span`` (log units), and the mask of the band interiors
    (2 mm from every band edge)."""
    cols_per_step = int(round(step_mm / spacing_mm))
    rows = int(round(height_mm / spacing_mm))
    levels = np.linspace(0.0, span, n_steps, dtype=np.float32)
    line = np.repeat(levels, cols_per_step)[None, :].repeat(rows, axis=0) + np.float32(3.0)
    margin = int(np.ceil(2.0 / spacing_mm))
    col = np.arange(line.shape[1]) % cols_per_step
    inner_cols = (col >= margin) & (col < cols_per_step - margin)
    inner_rows = (np.arange(rows) >= margin) & (np.arange(rows) < rows - margin)
    return line, inner_rows[:, None] & inner_cols[None, :]


def blur_noise_gain(site: SiteProfile, spacing_mm: float) -> float:
    """Variance gain of the site's detector blur on white noise: the sum of its squared
    impulse response."""
    size = 2 * int(np.ceil(6 * site.mtf_sigma_mm / spacing_mm)) + 9
    impulse = np.zeros((size, size), np.float32)
    impulse[size // 2, size // 2] = 1.0
    return float(
        np.sum(gaussian_blur(impulse, site.mtf_sigma_mm / spacing_mm).astype(np.float64) ** 2)
    )


def noise_check(config: PhantomConfig, *, block: int = 16, rng=0) -> NoiseCheck:
    """Variance against mean of ``block`` x ``block`` tiles of a flat step wedge exposed by
    each of the config's sites at its pixel spacing and dose (see :class:`NoiseCheck`)."""
    rows, fits = [], {}
    for k, name in enumerate(config.sites):
        site = SITES[name]
        spacing = config.spacing_for(site)
        line, inner = step_wedge(spacing)
        gen = np.random.default_rng([0 if rng is None else rng, k])
        raw = expose(line, np.ones(line.shape, bool), spacing, site, gen, dose=config.dose)
        fit = noise_variance_fit(raw, inner, block=block)
        fits[name] = fit
        rows.append(
            {
                "site": name,
                "spacing_mm": spacing,
                "slope": fit.slope,
                "expected_slope": blur_noise_gain(site, spacing),
                "intercept": fit.intercept,
                "expected_intercept": (
                    ELECTRONIC_NOISE * photons_per_pixel(site, spacing, config.dose)
                )
                ** 2,
                "r2": fit.r2,
                "tiles": len(fit.means),
                "tiles_used": int(fit.used.sum()),
            }
        )
    table = pd.DataFrame(rows).set_index("site")
    return NoiseCheck(table=table, fits=fits, min_r2=float(table.r2.min()))
