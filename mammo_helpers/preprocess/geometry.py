"""Geometric operations on images: crop, flip to a common laterality, resize (sizes are
(height, width)). Their box twins are in :mod:`mammo_helpers.boxes`. Chapters 00, 02, 03, 05.
"""

from __future__ import annotations

import cv2
import numpy as np

from mammo_helpers.boxes import as_hw
from mammo_helpers.vocab import check_laterality

from ._checks import _as_image

_INTERPOLATIONS = {
    "area": cv2.INTER_AREA,
    "linear": cv2.INTER_LINEAR,
    # paper 04 §III-A: "all image resizing operations were performed using bicubic resampling"
    "cubic": cv2.INTER_CUBIC,
    # INTER_NEAREST_EXACT samples pixel centres (INTER_NEAREST is shifted by half a pixel),
    # so nearest-neighbour resizing agrees with resize_boxes.
    "nearest": cv2.INTER_NEAREST_EXACT,
}


def crop(img, box) -> np.ndarray:
    """``img[y0:y1, x0:x1]`` for an integer box ``(x0, y0, x1, y1)`` inside the image (copy)."""
    arr = _as_image(img, allow_channels=True)
    x0, y0, x1, y1 = (int(v) for v in box)
    rows, cols = arr.shape[:2]
    if not (0 <= x0 < x1 <= cols and 0 <= y0 < y1 <= rows):
        raise ValueError(
            f"crop box {tuple(box)} is empty or outside the image of shape {arr.shape}"
        )
    return arr[y0:y1, x0:x1].copy()


def flip_to_laterality(img, laterality: str, target: str = "L") -> tuple[np.ndarray, bool]:
    """Mirror the image horizontally if ``laterality != target`` (paper 03: all breasts left).

    Returns ``(image, flipped)``; use ``boxes.flip_boxes(boxes, width)`` when ``flipped`` is True.
    """
    arr = _as_image(img, allow_channels=True)
    check_laterality(laterality)
    check_laterality(target, "target")
    if laterality == target:
        return arr, False
    return np.ascontiguousarray(arr[:, ::-1]), True


def resize(img, size_hw, *, interpolation: str = "area") -> np.ndarray:
    """Resize with OpenCV to ``size_hw`` = **(HEIGHT, WIDTH)** (not OpenCV's (width, height)!).

    ``interpolation`` is 'area' (default, best for downsampling), 'linear', 'cubic' or 'nearest'
    (pixel-centre exact, for label maps). Keeps dtype and a trailing channel axis (also of size
    1); boolean masks are resized as uint8 and thresholded at 0.5.
    """
    arr = _as_image(img, allow_channels=True)
    h, w = as_hw(size_hw, "size_hw")
    if interpolation not in _INTERPOLATIONS:
        raise ValueError(
            f"interpolation must be one of {sorted(_INTERPOLATIONS)}, got {interpolation!r}"
        )
    flag = _INTERPOLATIONS[interpolation]
    if arr.dtype == bool:
        out = cv2.resize(arr.astype(np.uint8) * 255, (w, h), interpolation=flag) >= 128
    elif arr.dtype in (np.uint8, np.uint16, np.int16, np.float32, np.float64):
        out = cv2.resize(arr, (w, h), interpolation=flag)
    else:
        out = cv2.resize(arr.astype(np.float64), (w, h), interpolation=flag)
        if arr.dtype.kind in "iu":
            out = np.rint(out)
        out = out.astype(arr.dtype)
    if arr.ndim == 3 and out.ndim == 2:
        out = out[:, :, None]
    return out


def warp_like(img, transform, *, interpolation: str = "area") -> np.ndarray:
    """``img`` (same size as the transform's input) moved exactly as a pipeline moved the
    image: crop -> horizontal flip -> resize, by a :class:`~mammo_helpers.boxes.BoxTransform`.
    A boolean mask (a lesion or breast mask) is resized by area and thresholded at 0.5, so
    it stays where :meth:`BoxTransform.__call__` puts its box. Chapter 03 (exact lesion
    masks on the whole-image input)."""
    arr = _as_image(img, allow_channels=True)
    if tuple(arr.shape[:2]) != tuple(transform.in_hw):
        raise ValueError(
            f"warp_like: image of shape {arr.shape[:2]} does not match the transform's input "
            f"{tuple(transform.in_hw)}"
        )
    if transform.crop_box is not None:
        arr = crop(arr, transform.crop_box)
    if transform.flip:
        arr = np.ascontiguousarray(arr[:, ::-1])
    if transform.out_hw is not None:
        arr = resize(arr, transform.out_hw, interpolation=interpolation)
    return arr
