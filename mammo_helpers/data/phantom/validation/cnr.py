"""Lesion contrast-to-noise ratio (CNR) against the annulus around the lesion.

CNR = (mean lesion - mean background) / std background, the background being the annulus
R..2R around the lesion (R its equivalent radius). Used by
:func:`~.detectability_checks.contrast_check`, which checks that masses get harder to see
from density A to D (chapter 00).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._arrays import check_image_mask


@dataclass(frozen=True)
class CNRResult:
    """Result of :func:`contrast_to_noise`; ``float(result)`` is the CNR.

    ``background_mask`` is the annulus actually used (for an overlay plot).
    """

    cnr: float
    contrast: float
    lesion_mean: float
    background_mean: float
    background_std: float
    radius_px: float
    center_rc: tuple[float, float]
    n_lesion: int
    n_background: int
    background_mask: np.ndarray

    def __float__(self) -> float:
        return self.cnr


def contrast_to_noise(
    image,
    lesion_mask,
    *,
    annulus: tuple[float, float] = (1.0, 2.0),
    breast_mask=None,
) -> CNRResult:
    """Lesion CNR = (mean lesion - mean background) / std background (ddof=1).

    The background is the annulus between ``annulus[0] * R`` and ``annulus[1] * R`` from the
    lesion centroid, where R = sqrt(area / pi) is the lesion's equivalent radius; lesion
    pixels are removed from it and it is clipped to ``breast_mask`` if given. Works in
    whatever domain the image is in (raw or log).
    """
    img, les = check_image_mask(image, lesion_mask, name="image")
    if lesion_mask is None or not les.any():
        raise ValueError("contrast_to_noise: lesion_mask is empty")
    a0, a1 = map(float, annulus)
    if not 0 <= a0 < a1:
        raise ValueError(f"annulus must satisfy 0 <= inner < outer, got {annulus!r}")
    area = int(les.sum())
    radius = float(np.sqrt(area / np.pi))
    rr, cc = np.nonzero(les)
    cy, cx = float(rr.mean()), float(cc.mean())
    yy, xx = np.ogrid[: img.shape[0], : img.shape[1]]
    d = np.hypot(yy - cy, xx - cx)
    bg = (d >= a0 * radius) & (d <= a1 * radius) & ~les
    if breast_mask is not None:
        bm = np.asarray(breast_mask).astype(bool)
        if bm.shape != img.shape:
            raise ValueError(f"breast_mask has shape {bm.shape}, the image {img.shape}")
        bg &= bm
    if bg.sum() < 2:
        raise ValueError(
            f"contrast_to_noise: background annulus {a0:g}R..{a1:g}R (R = {radius:.1f} px) "
            f"has {int(bg.sum())} pixels inside the image/breast mask"
        )
    lm = float(img[les].mean())
    bmean = float(img[bg].mean())
    bstd = float(img[bg].std(ddof=1))
    contrast = lm - bmean
    return CNRResult(
        cnr=contrast / bstd if bstd > 0 else float("inf") * np.sign(contrast),
        contrast=contrast,
        lesion_mean=lm,
        background_mean=bmean,
        background_std=bstd,
        radius_px=radius,
        center_rc=(cy, cx),
        n_lesion=area,
        n_background=int(bg.sum()),
        background_mask=bg,
    )
