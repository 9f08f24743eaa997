"""Realism check of the phantom's texture: power-spectrum exponent beta per modality.

Targets: DM beta 2.8-3.3 (Burgess et al. 2001; Chen, Abbey & Boone 2012: 3.17 CC, 3.30
MLO), DBT slices lower than DM. Used by chapter 00.
"""

from __future__ import annotations

from ..config import PhantomConfig
from ._arrays import check_number
from ._renders import render_lesion_free
from .power_spectrum import BetaResult, power_spectrum_beta


def beta_check(
    config: PhantomConfig, n_images: int = 12, modality: str = "DM", rng=0
) -> BetaResult:
    """Power-spectrum beta of the log detector signal (breast minus muscle), one modality.

    Renders ``n_images`` lesion-free views of ``modality`` and fits
    :func:`~.power_spectrum.power_spectrum_beta` on ``-log(raw)`` inside the breast without
    the pectoral muscle.
    """
    check_number("n_images", n_images, low=1, integer=True)
    images = render_lesion_free(config, "beta", n_images, modality)
    return power_spectrum_beta(
        [im.log_raw for im in images],
        [im.breast_mask & ~im.pectoral_mask for im in images],
        [im.spacing_mm for im in images],
        rng=rng,
    )
