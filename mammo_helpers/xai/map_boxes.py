"""From an attribution map to one box and its IoU with the ground truth (paper 03, §3.2.5
and Fig. 3; chapter 03).

The paper's steps, one helper each:

0. :func:`dilate_map`: every map except LIME's and SHAP's is first dilated (grey dilation,
   9 x 9 rectangle, one iteration, at 1024 px height; :func:`scaled_kernel` keeps the
   kernel's physical size at other heights).
1. :func:`binarise`: the pixels *strictly above* a quantile of the map are 1, the others 0.
2. :func:`open_binary`: erosion, then dilation, "to remove the very small regions".
3. :func:`contour_boxes`: one box per external contour of the binary.
4. :func:`mammo_helpers.boxes.merge_boxes`: all boxes merged into one.
5. :func:`best_iou`: the IoU of that box with the ground truth (no box = IoU 0).

:func:`map_box` runs steps 1-4. The paper gives neither the quantile nor the kernel sizes
of step 2: :func:`sweep` scores a grid of them on *validation* images and
:func:`best_setting` picks one, which is then used unchanged on the test images.
:func:`tpr_at_iou` gives the share of images whose IoU reaches each threshold.

Boxes follow :mod:`mammo_helpers.boxes`: ``(xmin, ymin, xmax, ymax)`` floats, pixel
``(r, c)`` covering ``[c, c+1) x [r, r+1)``, so a region of columns ``x .. x + w - 1``
gives ``xmin = x, xmax = x + w``.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from numbers import Real

import numpy as np

from mammo_helpers.boxes import as_boxes, box_iou, merge_boxes
from mammo_helpers.xai.localisation import _as_map, _as_mask

__all__ = [
    "PAPER_HEIGHT",
    "PAPER_KERNEL",
    "SWEEP_COLUMNS",
    "MapBox",
    "best_iou",
    "best_setting",
    "binarise",
    "contour_boxes",
    "dilate_map",
    "map_box",
    "map_ious",
    "open_binary",
    "scaled_kernel",
    "sweep",
    "tpr_at_iou",
]

#: The paper's dilation kernel (pixels) and the image height it was used at.
PAPER_KERNEL = 9
PAPER_HEIGHT = 1024

#: The columns of a :func:`sweep` table.
SWEEP_COLUMNS = ("quantile", "erode", "dilate", "median_iou", "mean_iou", "no_box_share")


# ------------------------------------------------------------------ input checks
def _odd_kernel(value, name: str) -> int:
    """An odd positive int (1 = no-op), else ``ValueError`` naming the parameter."""
    ok = isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)
    if not ok or value < 1 or value % 2 == 0:
        raise ValueError(f"{name} must be an odd positive integer, got {value!r}")
    return int(value)


def _positive(value, name: str) -> float:
    ok = isinstance(value, Real) and not isinstance(value, bool | np.bool_)
    if not (ok and math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def _quantile(value) -> float:
    ok = isinstance(value, Real) and not isinstance(value, bool | np.bool_)
    if not (ok and 0 < value < 1):
        raise ValueError(f"quantile must be in (0, 1) (both excluded), got {value!r}")
    return float(value)


def _as_binary(binary, name: str = "binary") -> np.ndarray:
    b = np.asarray(binary)
    if b.ndim != 2 or 0 in b.shape:
        raise ValueError(f"{name} must be a non-empty 2-D array, got shape {b.shape}")
    return _as_mask(b, b.shape, name, name)


def _rect(size: int) -> np.ndarray:
    return np.ones((size, size), np.uint8)


# ------------------------------------------------------------------- the steps
def scaled_kernel(
    kernel: int = PAPER_KERNEL, height: float = PAPER_HEIGHT, reference: float = PAPER_HEIGHT
) -> int:
    """The odd kernel size nearest ``kernel * height / reference`` (halfway: the larger
    one), at least 1: the paper's 9 px at 1024 px height is 5 at 512 and 3 at 256."""
    kernel = _odd_kernel(kernel, "kernel")
    size = kernel * _positive(height, "height") / _positive(reference, "reference")
    return max(1, 2 * math.floor((size - 1) / 2 + 0.5) + 1)


def dilate_map(map2d, kernel: int = PAPER_KERNEL) -> np.ndarray:
    """Grey dilation of a map: each pixel becomes the maximum over the ``kernel x kernel``
    rectangle centred on it (``cv2.dilate``, one iteration, pixels outside the image
    ignored). Computed in float32 as cv2 does; returned as float64. Paper 03 dilates
    every map but LIME's and SHAP's with ``kernel = 9`` at 1024 px height."""
    import cv2

    m = _as_map(map2d, "map2d").astype(np.float32)
    kernel = _odd_kernel(kernel, "kernel")
    return cv2.dilate(m, _rect(kernel), iterations=1).astype(np.float64)


def binarise(map2d, quantile: float, mask=None) -> np.ndarray:
    """The pixels of ``map2d`` *strictly above* its ``quantile`` (``np.quantile`` over the
    pixels of ``mask`` when given, else over all pixels); pixels outside ``mask`` are
    False. ``quantile`` lies in (0, 1), both excluded.

    Ties: with the strict ``>``, pixels equal to the quantile value are dropped, so a map
    whose quantile value is shared by many pixels keeps fewer than ``1 - quantile`` of
    them (a sparse map, 0 on 95 % of the breast, keeps only its non-zero pixels at any
    quantile up to 0.95), and a constant map, or one whose maximum fills more than about
    ``1 - quantile`` of the pixels, gives an empty binary."""
    m = _as_map(map2d, "map2d")
    q = _quantile(quantile)
    keep = np.ones(m.shape, bool)
    if mask is not None:
        keep = _as_mask(mask, m.shape, "mask", "map2d")
        if not keep.any():
            raise ValueError("mask is empty: no pixel to binarise")
    return (m > np.quantile(m[keep], q)) & keep


def open_binary(binary, erode: int, dilate: int) -> np.ndarray:
    """Erosion with an ``erode x erode`` rectangle, then dilation with a ``dilate x
    dilate`` rectangle (cv2, one iteration each; 1 = no-op). With ``erode == dilate`` this
    is a morphological opening: regions narrower than the kernel vanish. Pixels outside
    the image count neither as foreground nor as background (cv2's default borders)."""
    import cv2

    b = _as_binary(binary).astype(np.uint8)
    erode, dilate = _odd_kernel(erode, "erode"), _odd_kernel(dilate, "dilate")
    out = cv2.erode(b, _rect(erode), iterations=1)
    return cv2.dilate(out, _rect(dilate), iterations=1).astype(bool)


def contour_boxes(binary) -> np.ndarray:
    """One box per external contour of ``binary`` (``cv2.findContours`` with
    ``RETR_EXTERNAL``, 8-connected regions; a region lying in the hole of another one has
    no external contour of its own), from ``cv2.boundingRect``: ``(x, y, x + w, y + h)``.
    ``(K, 4)`` float, sorted by ``(ymin, xmin, ymax, xmax)``; ``(0, 4)`` when empty."""
    import cv2

    b = _as_binary(binary).astype(np.uint8)
    contours, _ = cv2.findContours(b, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    rects = [cv2.boundingRect(c) for c in contours]
    boxes = as_boxes([(x, y, x + w, y + h) for x, y, w, h in rects])
    return boxes[np.lexsort((boxes[:, 2], boxes[:, 3], boxes[:, 0], boxes[:, 1]))]


@dataclass(frozen=True)
class MapBox:
    """The steps of :func:`map_box`: the thresholded map, the opened binary, one box per
    region ``(K, 4)`` and their merged box ``(4,)`` (``None`` when no region is left)."""

    binary: np.ndarray
    opened: np.ndarray
    boxes: np.ndarray
    box: np.ndarray | None


def map_box(map2d, *, quantile: float, erode: int, dilate: int, mask=None) -> MapBox:
    """Paper 03 §3.2.5 steps 1-4 on one map: :func:`binarise` -> :func:`open_binary` ->
    :func:`contour_boxes` -> :func:`~mammo_helpers.boxes.merge_boxes`. ``map2d`` is used as
    given: dilate it first (:func:`dilate_map`) when the method calls for it. The opening's
    dilation may reach outside ``mask``; the boxes are not clipped to it (nor in the
    paper)."""
    binary = binarise(map2d, quantile, mask)
    opened = open_binary(binary, erode, dilate)
    boxes = contour_boxes(opened)
    return MapBox(binary=binary, opened=opened, boxes=boxes, box=merge_boxes(boxes))


# ------------------------------------------------------------------------ scores
def _truth_boxes(truth_boxes) -> np.ndarray:
    t = as_boxes(truth_boxes, "truth_boxes")
    if not len(t):
        raise ValueError("truth_boxes is empty: an image needs at least one ground-truth box")
    for box in t:
        if box[2] <= box[0] or box[3] <= box[1]:
            raise ValueError(
                f"truth box {box.tolist()} needs xmin < xmax and ymin < ymax "
                "(xmin, ymin, xmax, ymax)"
            )
    return t


def best_iou(box, truth_boxes) -> float:
    """The largest IoU (:func:`~mammo_helpers.boxes.box_iou`) of ``box`` with any of
    ``truth_boxes``; 0.0 when ``box`` is ``None`` (no box = IoU 0, as in the paper)."""
    truths = _truth_boxes(truth_boxes)
    if box is None:
        return 0.0
    b = as_boxes(box, "box")
    if len(b) != 1:
        raise ValueError(f"box must be one box (xmin, ymin, xmax, ymax), got {len(b)}")
    return float(box_iou(b, truths).max())


def map_ious(maps, truths, *, quantile: float, erode: int, dilate: int, masks=None):
    """Per image: :func:`best_iou` of the :func:`map_box` of each map with its truth boxes.
    Returns ``(ious, no_box)``, two ``(n,)`` arrays (float, bool)."""
    maps, truths, masks = _aligned(maps, truths, masks)
    ious, no_box = np.zeros(len(maps)), np.zeros(len(maps), bool)
    for i, (m, t, k) in enumerate(zip(maps, truths, masks, strict=True)):
        box = map_box(m, quantile=quantile, erode=erode, dilate=dilate, mask=k).box
        ious[i], no_box[i] = best_iou(box, t), box is None
    return ious, no_box


def tpr_at_iou(ious, thresholds) -> np.ndarray:
    """For each threshold ``t``: the share of ``ious`` with IoU ``>= t`` (the true positive
    rate of a detector counting an image found when its box reaches ``t``)."""
    iou = np.asarray(ious, dtype=np.float64).ravel()
    if not iou.size:
        raise ValueError("ious is empty")
    if not np.isfinite(iou).all():
        raise ValueError("ious holds non-finite values")
    t = np.atleast_1d(np.asarray(thresholds, dtype=np.float64))
    if t.ndim != 1:
        raise ValueError(f"thresholds must be 1-D, got shape {t.shape}")
    return (iou[None, :] >= t[:, None]).mean(axis=1)


# -------------------------------------------------------------- parameter choice
def _aligned(maps, truths, masks) -> tuple[list, list, list]:
    maps, truths = list(maps), list(truths)
    masks = [None] * len(maps) if masks is None else list(masks)
    if not maps:
        raise ValueError("maps is empty")
    if not len(maps) == len(truths) == len(masks):
        raise ValueError(
            f"maps, truths and masks need one entry per image, got {len(maps)}, "
            f"{len(truths)} and {len(masks)}"
        )
    return maps, truths, masks


def _grid(values, name: str, check) -> list:
    values = [check(v) for v in values]
    if not values:
        raise ValueError(f"{name} is empty")
    return values


def sweep(maps, truths, quantiles, erodes, dilates, masks=None):
    """Every combination of ``quantiles x erodes x dilates`` scored on the images: the
    median and mean :func:`best_iou` and the share of images without a box. A DataFrame
    with columns ``quantile, erode, dilate, median_iou, mean_iou, no_box_share``, rows in
    the order of :func:`itertools.product` of the three lists. Use it on *validation*
    images only: the paper does not give these parameters."""
    import pandas as pd

    maps, truths, masks = _aligned(maps, truths, masks)
    quantiles = _grid(quantiles, "quantiles", _quantile)
    erodes = _grid(erodes, "erodes", lambda v: _odd_kernel(v, "erode"))
    dilates = _grid(dilates, "dilates", lambda v: _odd_kernel(v, "dilate"))
    truths = [_truth_boxes(t) for t in truths]
    rows = []
    for q in quantiles:
        binaries = [binarise(m, q, k) for m, k in zip(maps, masks, strict=True)]
        for e, d in itertools.product(erodes, dilates):
            boxes = [merge_boxes(contour_boxes(open_binary(b, e, d))) for b in binaries]
            ious = np.array([best_iou(b, t) for b, t in zip(boxes, truths, strict=True)])
            rows.append(
                {
                    "quantile": q, "erode": e, "dilate": d,
                    "median_iou": float(np.median(ious)), "mean_iou": float(ious.mean()),
                    "no_box_share": float(np.mean([b is None for b in boxes])),
                }
            )  # fmt: skip
    return pd.DataFrame(rows, columns=list(SWEEP_COLUMNS))


def best_setting(df) -> dict:
    """The row of a :func:`sweep` table with the largest median IoU; ties go to the larger
    mean IoU, then to the earlier row (rows follow the order of the quantiles given, then
    of the erode and dilate kernels). A dict of plain Python numbers."""
    missing = [c for c in SWEEP_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"df needs the sweep columns {list(SWEEP_COLUMNS)}; missing {missing}")
    if not len(df):
        raise ValueError("df is empty: no setting to choose")
    order = df.reset_index(drop=True).sort_values(
        ["median_iou", "mean_iou"], ascending=False, kind="stable"
    )
    row = order.iloc[0]
    out = {c: float(row[c]) for c in SWEEP_COLUMNS}
    out["erode"], out["dilate"] = int(row["erode"]), int(row["dilate"])
    return out
