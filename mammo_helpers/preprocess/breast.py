"""Where the breast is: Otsu breast mask, breast bounding box, burned-in text removal and the
side the chest wall is on. Chapters 00, 02, 03 (and the phantom's realism checks).
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy import ndimage
from skimage.filters import threshold_otsu

from mammo_helpers.boxes import mask_box

from ._checks import _as_image, _as_mask


def otsu_breast_mask(img, *, keep: str = "largest", min_area_fraction: float = 0.005) -> np.ndarray:
    """Boolean breast mask: Otsu threshold + connected components + hole filling.

    ``keep='largest'`` keeps only the largest 8-connected foreground component, which discards
    burned-in labels, markers and background noise that are not connected to the breast;
    ``keep='all'`` keeps every component. Holes (dark fat lobules) are filled. Raises
    ValueError when no breast is found (constant image, or the kept area is below
    ``min_area_fraction`` of the image). Used by ``breast_box``, ``clahe_fusion``, the pipelines.
    """
    arr = _as_image(img)
    if keep not in ("largest", "all"):
        raise ValueError(f"keep must be 'largest' or 'all', got {keep!r}")
    x = arr.astype(np.float32) if arr.dtype.kind == "b" else arr
    if x.min() == x.max():
        raise ValueError(
            f"no breast found: image of shape {arr.shape} is constant (value {x.min()!r})"
        )
    fg = x > threshold_otsu(x)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(fg.astype(np.uint8), connectivity=8)
    if n <= 1:
        raise ValueError(f"no breast found: Otsu mask is empty for image of shape {arr.shape}")
    if keep == "largest":
        biggest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
        fg = labels == biggest
    mask = ndimage.binary_fill_holes(fg)
    if mask.sum() < min_area_fraction * mask.size:
        raise ValueError(
            f"no breast found: largest foreground region has {int(mask.sum())} pixels, below "
            f"{min_area_fraction:.3%} of the image of shape {arr.shape}"
        )
    return mask


def breast_box(img, *, margin: int = 0, mask=None) -> tuple[int, int, int, int]:
    """Breast ROI box ``(x0, y0, x1, y1)`` (ints, end-exclusive) for ``crop`` (papers 02/03).

    Bounding box of the largest 8-connected component of the Otsu breast mask (or of
    ``mask`` if given), grown by ``margin`` pixels and clipped to the image.
    """
    arr = _as_image(img, allow_channels=True)
    if isinstance(margin, bool) or not isinstance(margin, int | np.integer) or margin < 0:
        raise ValueError(f"margin must be an integer >= 0, got {margin!r}")
    m = otsu_breast_mask(arr) if mask is None else _as_mask(mask, arr.shape, "mask")
    n, labels, stats, _ = cv2.connectedComponentsWithStats(m.astype(np.uint8), connectivity=8)
    if n <= 1:
        raise ValueError(f"no breast found: mask is empty for image of shape {arr.shape}")
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    x0, y0, x1, y1 = (int(v) for v in mask_box(labels == largest))
    rows, cols = arr.shape[:2]
    margin = int(margin)
    return max(0, x0 - margin), max(0, y0 - margin), min(cols, x1 + margin), min(rows, y1 + margin)


def remove_burned_in_text(img, mask=None) -> np.ndarray:
    """Zero every pixel outside the breast mask (labels, markers, text), keep the breast as is.

    ``mask`` defaults to ``otsu_breast_mask(img)``; the dtype of ``img`` is kept. Notebook 00.
    """
    arr = _as_image(img)
    m = otsu_breast_mask(arr) if mask is None else _as_mask(mask, arr.shape, "mask")
    return np.where(m, arr, np.zeros((), dtype=arr.dtype))


def infer_laterality(img, *, mask=None) -> str:
    """'L' or 'R': the side holding more breast intensity (inside the Otsu mask).

    Left breasts have the chest wall, hence most tissue, at column 0. Ties give 'L'.
    """
    arr = _as_image(img)
    m = otsu_breast_mask(arr) if mask is None else _as_mask(mask, arr.shape, "mask")
    weights = np.where(m, arr.astype(np.float64) - float(arr.min()), 0.0).sum(axis=0)
    half = arr.shape[1] // 2
    left, right = weights[:half].sum(), weights[arr.shape[1] - half :].sum()
    return "L" if left >= right else "R"
