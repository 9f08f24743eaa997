"""Physics-based (Volpara-like) percent density from a raw image and the breast thickness.

Follows van Engeland S et al. Volumetric breast density estimation from full-field digital
mammograms. IEEE TMI 25:273 (2006) and Highnam R et al. Robust breast composition
measurement - Volpara. IWDM 2010, LNCS 6136: in the log of a raw ("FOR PROCESSING") image,
attenuation in excess of a pure-fat column of the same thickness, divided by
``mu_gland - mu_fat``, is the thickness of dense tissue along each ray. The attenuation
coefficients default to the phantom's (:mod:`mammo_helpers.data.phantom.physics`), the
dense cut to its ``DENSE_FRACTION_THRESHOLD``. Used by
:func:`~.density_checks.density_check` (chapter 00).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ..calibration import DENSE_FRACTION_THRESHOLD
from ..physics import MU_FAT, MU_GLAND
from ._arrays import check_number


@dataclass(frozen=True)
class VolumetricDensity:
    """Result of :func:`volumetric_percent_density` (percentages 0-100)."""

    area_percent: float  # share of the contact region whose dense fraction exceeds the cut
    volume_percent: float  # mean dense-tissue fraction of the contact region
    fat_reference: float  # log signal taken as pure fat
    region: np.ndarray  # bool mask of the pixels used (contact region minus exclusions)


def volumetric_percent_density(
    log_image,
    breast_mask,
    thickness_mm: float,
    spacing_mm: float,
    *,
    mu_fat: float = MU_FAT,
    mu_gland: float = MU_GLAND,
    dense_fraction: float = DENSE_FRACTION_THRESHOLD,
    fat_percentile: float = 1.0,
    skin_band_mm: float = 3.0,
    scatter_gain: float = 1.0,
    smooth_mm: float = 1.0,
    exclude=None,
) -> VolumetricDensity:
    """Physics-based density from a raw image and the compressed thickness (Volpara-like).

    Follows van Engeland et al. (IEEE TMI 2006) and Highnam et al. (IWDM 2010): in the log
    of a raw ("FOR PROCESSING") image, attenuation in excess of a pure-fat column of the same
    thickness, divided by ``mu_gland - mu_fat``, is the thickness of dense tissue along the
    ray. ``log_image`` is ``-log(raw signal)`` and ``thickness_mm`` the compressed thickness
    (DICOM BodyPartThickness). The breast periphery, which loses contact with the paddles,
    is given a semicircular thickness profile over a band of half the thickness; the fat
    reference is the fattiest column (``fat_percentile``) of the contact region.
    ``scatter_gain`` undoes the contrast lost to scatter (1 + scatter-to-primary ratio, a
    system calibration). The breast minus ``exclude`` (e.g. the pectoral muscle) and minus a
    ``skin_band_mm`` rim is measured; a pixel is dense when its dense fraction exceeds
    ``dense_fraction``.
    """
    log_image = np.asarray(log_image, dtype=float)
    breast = np.asarray(breast_mask, dtype=bool)
    if log_image.shape != breast.shape:
        raise ValueError(
            f"log_image {log_image.shape} and breast_mask {breast.shape} differ in shape"
        )
    check_number("thickness_mm", thickness_mm, low=0, low_open=True)
    check_number("spacing_mm", spacing_mm, low=0, low_open=True)
    check_number("scatter_gain", scatter_gain, low=0, low_open=True)
    check_number("dense_fraction", dense_fraction, low=0, high=1, low_open=True)
    check_number("fat_percentile", fat_percentile, low=0, high=100)
    check_number("skin_band_mm", skin_band_mm, low=0)
    check_number("smooth_mm", smooth_mm, low=0)
    if mu_gland <= mu_fat:
        raise ValueError("mu_gland must exceed mu_fat")
    # distance to the skin line; pixels beyond the array count as inside, so the chest
    # wall (the image edge the breast touches) is not taken for a skin line
    dist = ndimage.distance_transform_edt(breast) * spacing_mm
    band = thickness_mm / 2
    x = np.clip(dist / band, 0.0, 1.0)
    thick = thickness_mm * np.sqrt(np.clip(1.0 - (1.0 - x) ** 2, 0.0, 1.0))
    region = breast & (dist > skin_band_mm)
    if exclude is not None:
        region &= ~np.asarray(exclude, dtype=bool)
    # fat reference from the thickest part (full contact; in a small breast, its core)
    contact = region & (dist >= min(band, 0.8 * float(dist[region].max(initial=0.0))))
    if contact.sum() < 10 or region.sum() < 10:
        raise ValueError(
            f"breast too small to measure: {breast.sum()} px, {region.sum()} px beyond the "
            f"{skin_band_mm} mm skin band, {contact.sum()} px in full contact "
            f"({band:.1f} mm from the skin line)"
        )
    sigma = smooth_mm / spacing_mm
    w = region.astype(float)
    smooth = ndimage.gaussian_filter(log_image * w, sigma) / np.maximum(
        ndimage.gaussian_filter(w, sigma), 1e-6
    )
    fat_ref = float(np.percentile(smooth[contact], fat_percentile))
    excess = (smooth - fat_ref) * scatter_gain + mu_fat * (thickness_mm - thick)
    dense_mm = excess / (mu_gland - mu_fat)
    frac = np.clip(dense_mm / np.maximum(thick, 1e-3), 0.0, 1.0)
    return VolumetricDensity(
        area_percent=float(100.0 * (frac[region] > dense_fraction).mean()),
        volume_percent=float(100.0 * frac[region].mean()),
        fat_reference=fat_ref,
        region=region,
    )
