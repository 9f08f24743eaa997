"""Boxes, once: arrays <-> finding dicts, mask -> box, clip / crop / flip / resize, IoU,
and a crop around a finding with a margin in millimetres.

Convention (every module and chapter uses it): a box is ``(xmin, ymin, xmax, ymax)`` in
float pixel coordinates, x = column, on a continuous grid where pixel ``(r, c)`` covers
``[c, c+1) x [r, r+1)``. An integer box ``(x0, y0, x1, y1)`` therefore selects
``img[y0:y1, x0:x1]`` and a box's area is ``(xmax - xmin) * (ymax - ymin)`` (the same
convention as ``torchvision.ops``). Sizes are ``(height, width)``.

Used by the phantom (lesion masks -> boxes), the dataset adapters (clipping), the
preprocessing pipelines (:class:`BoxTransform`), the learnability check of chapter 00
(:func:`crop_around`), the localisation chapters 02-04 (:func:`box_iou`) and the boxes
drawn from attribution maps in chapter 03 (:func:`merge_boxes`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from numbers import Real

import numpy as np

__all__ = [
    "BOX_KEYS",
    "MAX_COORDINATE",
    "BoxTransform",
    "as_boxes",
    "as_hw",
    "box_area",
    "box_iou",
    "boxes_from_findings",
    "clip_box",
    "clip_boxes",
    "crop_around",
    "crop_boxes",
    "flip_boxes",
    "mask_box",
    "merge_boxes",
    "resize_boxes",
    "with_boxes",
]

BOX_KEYS: tuple[str, ...] = ("xmin", "ymin", "xmax", "ymax")
#: The largest row or column count a DICOM image can have (Rows/Columns are 16-bit).
MAX_COORDINATE = 65535.0


def as_hw(size_hw, name: str) -> tuple[int, int]:
    """``(height, width)`` as positive ints, else ``ValueError`` naming the argument."""
    try:
        h, w = (int(v) for v in size_hw)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be (height, width), got {size_hw!r}") from exc
    if h <= 0 or w <= 0:
        raise ValueError(f"{name} must be positive (height, width), got {size_hw!r}")
    return h, w


def as_boxes(boxes, name: str = "boxes") -> np.ndarray:
    """``boxes`` as a float64 ``(N, 4)`` array (a single box gives ``(1, 4)``; copy)."""
    b = np.asarray(boxes, dtype=np.float64)
    if b.size == 0:
        return np.zeros((0, 4), dtype=np.float64)
    if b.ndim == 1 and b.shape[0] == 4:
        b = b[None, :]
    if b.ndim != 2 or b.shape[1] != 4:
        raise ValueError(f"{name} must have shape (N, 4) (xmin, ymin, xmax, ymax), got {b.shape}")
    if not np.isfinite(b).all():
        raise ValueError(f"{name} contains non-finite coordinates")
    return b.copy()


def boxes_from_findings(findings: Iterable[dict]) -> np.ndarray:
    """``(N, 4)`` array of the boxes of manifest finding dicts, in order."""
    rows = [[f[k] for k in BOX_KEYS] for f in findings]
    return as_boxes(rows, "findings")


def with_boxes(findings: Sequence[dict], boxes, kept: Sequence[int] | None = None) -> list[dict]:
    """Copies of ``findings`` carrying new ``boxes`` (e.g. after a :class:`BoxTransform`).

    ``kept`` are the indices of the findings the boxes belong to (as returned by
    :func:`crop_boxes` / :class:`BoxTransform`); findings not kept are left out.
    """
    b = as_boxes(boxes)
    kept = list(range(len(b))) if kept is None else [int(k) for k in kept]
    if len(kept) != len(b):
        raise ValueError(f"{len(b)} boxes but {len(kept)} kept indices")
    out = []
    for k, box in zip(kept, b, strict=True):
        finding = dict(findings[k])
        finding.update(zip(BOX_KEYS, (float(v) for v in box), strict=True))
        out.append(finding)
    return out


def box_area(boxes) -> np.ndarray:
    """Area of each box (0 for boxes with xmax <= xmin or ymax <= ymin)."""
    b = as_boxes(boxes)
    return np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)


def box_iou(a, b) -> np.ndarray:
    """Intersection over union of every box of ``a`` with every box of ``b``: ``(N, M)``.

    Same definition as ``torchvision.ops.box_iou``; two empty boxes give 0, not NaN.
    """
    a, b = as_boxes(a, "a"), as_boxes(b, "b")
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    union = box_area(a)[:, None] + box_area(b)[None, :] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def mask_box(mask) -> tuple[float, float, float, float] | None:
    """Box of the True pixels of a 2-D mask (end-exclusive), ``None`` for an empty mask.

    A single pixel at row 2, column 3 gives ``(3.0, 2.0, 4.0, 3.0)``.
    """
    m = np.asarray(mask)
    if m.ndim != 2:
        raise ValueError(f"mask must be 2-D, got shape {m.shape}")
    rows = np.flatnonzero(m.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(m.any(axis=0))
    return float(cols[0]), float(rows[0]), float(cols[-1] + 1), float(rows[-1] + 1)


def merge_boxes(boxes) -> np.ndarray | None:
    """The union box of ``(K, 4)`` boxes: the smallest box holding all of them (min of
    xmin / ymin, max of xmax / ymax), as a ``(4,)`` float array; ``None`` for ``K = 0``.

    Chapter 03 merges the boxes of an attribution map's regions into one box this way
    (paper 03, §3.2.5 step 4).
    """
    b = as_boxes(boxes)
    if not len(b):
        return None
    return np.concatenate([b[:, :2].min(axis=0), b[:, 2:].max(axis=0)])


def _is_real(value) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool | np.bool_)


def clip_box(
    xmin: float, ymin: float, xmax: float, ymax: float, rows: int, cols: int
) -> tuple[float, float, float, float] | None:
    """Clip one box to the image ``[0, cols] x [0, rows]``; ``None`` if nothing is left.

    Adapters use it for real annotations that stick out of the image (VinDr has some).
    """
    coords = (xmin, ymin, xmax, ymax)
    if not all(_is_real(v) and math.isfinite(v) for v in coords):
        raise ValueError(f"clip_box: coordinates must be finite numbers, got {coords!r}")
    if not (_is_real(rows) and rows > 0 and _is_real(cols) and cols > 0):
        raise ValueError(f"clip_box: rows and cols must be positive, got rows={rows}, cols={cols}")
    x0, x1 = min(max(float(xmin), 0.0), cols), min(max(float(xmax), 0.0), cols)
    y0, y1 = min(max(float(ymin), 0.0), rows), min(max(float(ymax), 0.0), rows)
    if x1 <= x0 or y1 <= y0:
        return None
    return float(x0), float(y0), float(x1), float(y1)


def clip_boxes(boxes, image_hw) -> tuple[np.ndarray, np.ndarray]:
    """Clip boxes to an image of ``image_hw``; returns ``(boxes, kept indices)``."""
    h, w = as_hw(image_hw, "image_hw")
    return crop_boxes(boxes, (0, 0, w, h))


def crop_boxes(boxes, box) -> tuple[np.ndarray, np.ndarray]:
    """Move boxes into the coordinates of the crop ``box`` = ``(x0, y0, x1, y1)``.

    Boxes are shifted by ``(x0, y0)`` and clipped to the crop; boxes with no area left
    inside it are dropped. Returns ``(new_boxes (K, 4), kept (K,) indices into boxes)``.
    """
    b = as_boxes(boxes)
    x0, y0, x1, y1 = (float(v) for v in box)
    if not (x1 > x0 and y1 > y0):
        raise ValueError(f"crop box {tuple(box)} is empty")
    out = b - np.array([x0, y0, x0, y0])
    out[:, [0, 2]] = np.clip(out[:, [0, 2]], 0.0, x1 - x0)
    out[:, [1, 3]] = np.clip(out[:, [1, 3]], 0.0, y1 - y0)
    kept = np.flatnonzero((out[:, 2] > out[:, 0]) & (out[:, 3] > out[:, 1]))
    return out[kept], kept


def flip_boxes(boxes, width: float) -> np.ndarray:
    """Horizontal mirror of boxes in an image ``width`` pixels wide: x -> width - x."""
    b = as_boxes(boxes)
    if not width > 0:
        raise ValueError(f"width must be > 0, got {width}")
    out = b.copy()
    out[:, 0] = width - b[:, 2]
    out[:, 2] = width - b[:, 0]
    return out


def resize_boxes(boxes, from_hw, to_hw) -> np.ndarray:
    """Scale boxes from an image of size ``from_hw`` to ``to_hw`` (both (height, width))."""
    b = as_boxes(boxes)
    fh, fw = as_hw(from_hw, "from_hw")
    th, tw = as_hw(to_hw, "to_hw")
    return b * np.array([tw / fw, th / fh, tw / fw, th / fh])


def crop_around(
    box,
    image_hw,
    spacing_mm: float,
    *,
    size_mm: float | None = None,
    margin_mm: float = 0.0,
) -> tuple[int, int, int, int]:
    """Integer crop box ``(x0, y0, x1, y1)`` around ``box``, measured in millimetres.

    With ``size_mm``: a square of that physical size centred on the box centre (a fixed
    field of view, e.g. 20 mm lesion patches); otherwise the box grown by ``margin_mm`` on
    every side. The crop is shifted (not shrunk) to stay inside the image when it fits, and
    clipped only when it is larger than the image.
    """
    ((x0, y0, x1, y1),) = as_boxes(box)
    h, w = as_hw(image_hw, "image_hw")
    if not (_is_real(spacing_mm) and math.isfinite(spacing_mm) and spacing_mm > 0):
        raise ValueError(f"spacing_mm must be a finite number > 0, got {spacing_mm!r}")
    if size_mm is not None:
        if not (_is_real(size_mm) and math.isfinite(size_mm) and size_mm > 0):
            raise ValueError(f"size_mm must be a finite number > 0, got {size_mm!r}")
        side = max(int(round(size_mm / spacing_mm)), 1)
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        spans = [(cx - side / 2, side, w), (cy - side / 2, side, h)]
    else:
        if not (_is_real(margin_mm) and math.isfinite(margin_mm) and margin_mm >= 0):
            raise ValueError(f"margin_mm must be a finite number >= 0, got {margin_mm!r}")
        pad = margin_mm / spacing_mm
        spans = [
            (x0 - pad, max(int(math.ceil(x1 + pad - (x0 - pad))), 1), w),
            (y0 - pad, max(int(math.ceil(y1 + pad - (y0 - pad))), 1), h),
        ]
    (cx0, cx1), (cy0, cy1) = (_fit(start, length, limit) for start, length, limit in spans)
    return cx0, cy0, cx1, cy1


def _fit(start: float, length: int, limit: int) -> tuple[int, int]:
    """A window of ``length`` px starting near ``start``, moved inside ``[0, limit]``."""
    if length >= limit:
        return 0, limit
    lo = int(round(start))
    lo = min(max(lo, 0), limit - length)
    return lo, lo + length


@dataclass(frozen=True)
class BoxTransform:
    """Maps boxes of the original image into a pipeline output: crop -> flip -> resize.

    ``in_hw``: original (height, width); ``crop_box``: integer ROI box or None; ``flip``:
    horizontal mirror after cropping; ``out_hw``: resize target (height, width) or None.
    Calling it returns ``(boxes_out (K, 4), kept (K,) indices)`` (boxes outside the crop are
    dropped); ``inverse`` maps output boxes (e.g. from an attribution map) back.
    """

    in_hw: tuple[int, int]
    crop_box: tuple[int, int, int, int] | None = None
    flip: bool = False
    out_hw: tuple[int, int] | None = None

    @property
    def crop_hw(self) -> tuple[int, int]:
        if self.crop_box is None:
            return tuple(self.in_hw)
        x0, y0, x1, y1 = self.crop_box
        return (y1 - y0, x1 - x0)

    def __call__(self, boxes) -> tuple[np.ndarray, np.ndarray]:
        b = as_boxes(boxes)
        kept = np.arange(len(b))
        if self.crop_box is not None:
            b, kept = crop_boxes(b, self.crop_box)
        ch, cw = self.crop_hw
        if self.flip:
            b = flip_boxes(b, cw)
        if self.out_hw is not None:
            b = resize_boxes(b, (ch, cw), self.out_hw)
        return b, kept

    def findings(self, findings: Sequence[dict]) -> list[dict]:
        """Finding dicts moved into the output (findings outside the crop are left out)."""
        moved, kept = self(boxes_from_findings(findings))
        return with_boxes(findings, moved, kept)

    def inverse(self, boxes) -> np.ndarray:
        b = as_boxes(boxes)
        ch, cw = self.crop_hw
        if self.out_hw is not None:
            b = resize_boxes(b, self.out_hw, (ch, cw))
        if self.flip:
            b = flip_boxes(b, cw)
        if self.crop_box is not None:
            x0, y0 = self.crop_box[:2]
            b = b + np.array([x0, y0, x0, y0], dtype=np.float64)
        return b
