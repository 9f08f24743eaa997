"""Density truth and the reader's call: true area percent density and BI-RADS A-D from it.

The true area percent density of a view is the share of the breast (muscle excluded)
whose projected glandular fraction exceeds ``calibration.DENSE_FRACTION_THRESHOLD``; a
reader calls BI-RADS A-D from the exam's percent density (plus a per-exam bias) with the
cut points ``calibration.PD_CUTPOINTS``. Used by the generator and the cohort builder
(chapter 00); the reader category is the density label of chapter 01.
"""

from __future__ import annotations

import numpy as np

from mammo_helpers.vocab import DENSITIES

from .calibration import DENSE_FRACTION_THRESHOLD, PD_CUTPOINTS

#: BI-RADS density classes A (fatty) ... D (extremely dense), the package's one definition.
DENSITY_CLASSES = DENSITIES


def percent_density_true(frac: np.ndarray, breast: np.ndarray, pectoral: np.ndarray) -> float:
    """Ground-truth area percent density: share of breast (no muscle) that reads as dense."""
    region = breast & ~pectoral
    if not region.any():
        return 0.0
    return float(100.0 * (frac[region] > DENSE_FRACTION_THRESHOLD).mean())


def density_from_pd(pd: float) -> str:
    """BI-RADS class a reader gives an area percent density ``pd`` (%), by PD_CUTPOINTS."""
    if not np.isfinite(pd):
        raise ValueError(f"percent density must be a finite number, got {pd!r}")
    return DENSITY_CLASSES[int(np.searchsorted(PD_CUTPOINTS, pd))]
