"""The crops paper 02 (CorRELAX, §3.2-3.3) trains and tests its classifier on, cut from the
breast ROI of :func:`mammo_helpers.preprocess.pipeline_correlax`. Chapter 02 (03 later).

* **Samples** (:func:`samples_from_rois`): every annotated box is one sample; identical boxes
  of one image (VinDr lists one row per label) become one multi-label sample. An image
  without findings gives one normal sample (label ``"No Finding"`` only, no box). The label
  vector is ``("No Finding",) + finding labels`` in :data:`~mammo_helpers.vocab.FINDING_LABELS`
  order (:func:`crop_labels`).
* **Training crops** (:func:`draw_training_crop`, re-drawn every epoch by
  :class:`CropDataset`): centred on the box centre, area = ``s`` x the box area and aspect
  ratio ``r`` = crop **width / height**, ``s`` and ``r`` log-uniform in ``area_range`` (0.05-5)
  and ``aspect_range`` (0.33-1.66), as torchvision's ``RandomResizedCrop`` draws them. Normal
  crops are centred on a uniformly drawn breast pixel and apply the same law to a reference
  box size drawn uniformly from the training lesion boxes (:func:`lesion_sizes`), so crop
  size alone does not tell normals from lesions (see :func:`crop_geometry`).
* **Test crops** (:func:`box_crop`): exactly the annotated box. Normal test crops get boxes
  size-matched to the lesion boxes, at seeded random places in the breast
  (:func:`normal_test_boxes`) instead of the paper's centre crop.
* Crops are cut at whole pixels (size and centre rounded, so the centre moves by <= 0.5 px),
  zero-padded where they leave the ROI (the ROI is zero outside the breast anyway) and resized
  with antialiased bilinear interpolation (torchvision ``resize``, the default of the
  ``Resize`` the paper's torchvision code uses; OpenCV's ``INTER_LINEAR`` skips pixels when
  shrinking a crop 5-10 x and would drop calcifications).
* :func:`sampling_weights` feeds ``torch.utils.data.WeightedRandomSampler``; each sample
  weighs the largest inverse frequency among its labels (its rarest label).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from mammo_helpers.boxes import BOX_KEYS, as_boxes, as_hw, box_area, clip_box
from mammo_helpers.data.adapters.vindr import NO_FINDING
from mammo_helpers.vocab import FINDING_LABELS

__all__ = [
    "GEOMETRY_FEATURES",
    "NO_FINDING",
    "CropDataset",
    "CropSample",
    "augment",
    "crop_geometry",
    "crop_labels",
    "downsample_x2",
    "draw_training_crop",
    "lesion_sizes",
    "normal_test_boxes",
    "padded_crop",
    "random_crop_box",
    "roi_breast_mask",
    "samples_from_rois",
    "sampling_weights",
    "table1_counts",
    "targets",
    "box_crop",
]

#: The columns of :func:`crop_geometry` a geometry-only baseline is fitted on.
GEOMETRY_FEATURES: tuple[str, ...] = ("width", "height", "area", "aspect", "x_centre", "y_centre")
#: Tries of the rejection sampler for a breast pixel before it scans the whole mask.
_CENTRE_TRIES = 16


# --------------------------------------------------------------------------- labels, samples
def crop_labels(used: Iterable[str] = FINDING_LABELS) -> tuple[str, ...]:
    """``("No Finding",)`` + the labels of ``used``, in ``FINDING_LABELS`` order (7 for VinDr;
    the phantom's 4 with ``crop_labels(mh.data.phantom.lesions.LESION_KINDS)``)."""
    used = set(used)
    unknown = sorted(used - set(FINDING_LABELS))
    if unknown:
        raise ValueError(f"used: unknown finding label(s) {unknown}; known: {FINDING_LABELS}")
    return (NO_FINDING,) + tuple(label for label in FINDING_LABELS if label in used)


def _check_labels(labels: Sequence[str]) -> tuple[str, ...]:
    labels = tuple(labels)
    if not labels or labels[0] != NO_FINDING:
        raise ValueError(f"labels must start with {NO_FINDING!r}, got {labels!r}")
    if len(set(labels)) != len(labels):
        raise ValueError(f"labels has duplicates: {labels!r}")
    unknown = [name for name in labels[1:] if name not in FINDING_LABELS]
    if unknown:
        raise ValueError(f"labels: unknown finding label(s) {unknown}; known: {FINDING_LABELS}")
    return labels


@dataclass(frozen=True)
class CropSample:
    """One crop: the ROI it comes from (``image`` key, ``roi_hw`` = (height, width)), its box
    in ROI pixels (``None`` for a normal training sample: drawn anew each epoch) and its
    label names (``("No Finding",)`` for a normal one)."""

    image: str
    roi_hw: tuple[int, int]
    box: tuple[float, float, float, float] | None
    labels: tuple[str, ...]

    @property
    def is_normal(self) -> bool:
        return self.labels == (NO_FINDING,)

    def target(self, labels: Sequence[str]) -> np.ndarray:
        """Multi-hot float32 vector over ``labels`` (the label vector)."""
        missing = [name for name in self.labels if name not in labels]
        if missing:
            raise ValueError(f"image {self.image!r}: label(s) {missing} not in labels {labels}")
        return np.array([name in self.labels for name in labels], dtype=np.float32)


def targets(samples: Sequence[CropSample], labels: Sequence[str]) -> np.ndarray:
    """``(N, len(labels))`` multi-hot float32 targets of ``samples``."""
    labels = _check_labels(labels)
    rows = [s.target(labels) for s in samples]
    return np.stack(rows) if rows else np.zeros((0, len(labels)), dtype=np.float32)


def _roi_hw(roi, key) -> tuple[int, int]:
    """(height, width) of an ROI given as an image or as its (height, width)."""
    if np.ndim(roi) == 1:
        return as_hw(roi, f"ROI size of image {key!r}")
    return as_hw(np.shape(roi)[:2], f"ROI of image {key!r}")


def _image_samples(key: str, hw, findings, labels) -> list[CropSample]:
    """The samples of one ROI: one per distinct box (its labels merged), or one normal."""
    if not findings:
        return [CropSample(key, hw, None, (NO_FINDING,))]
    merged: dict[tuple, set] = {}
    for finding in findings:
        if finding["label"] not in labels[1:]:
            raise ValueError(
                f"image {key!r}: finding label {finding['label']!r} is not one of {labels[1:]}"
            )
        (box,) = as_boxes([finding[k] for k in BOX_KEYS], f"box of image {key!r}")
        merged.setdefault(tuple(float(v) for v in box), set()).add(finding["label"])
    out = []
    for box, names in merged.items():
        clipped = clip_box(*box, rows=hw[0], cols=hw[1])
        if clipped is None:
            raise ValueError(f"image {key!r}: box {box} lies outside its ROI of size {hw}")
        out.append(CropSample(key, hw, clipped, tuple(n for n in labels if n in names)))
    return out


def samples_from_rois(
    rois: Mapping[str, object],
    findings_per_roi: Mapping[str, Sequence[dict]],
    labels: Sequence[str],
) -> list[CropSample]:
    """The crop samples of every ROI, in ``rois`` order.

    ``rois`` maps an image key to its ROI image or its (height, width); ``findings_per_roi``
    maps the same keys to finding dicts already in ROI pixels (e.g.
    ``result.box_transform.findings(row.findings)``). Identical boxes are merged into one
    multi-label sample (boxes differing in any coordinate are not); boxes are clipped to the
    ROI. ``labels`` starts with "No Finding" (:func:`crop_labels`).
    """
    labels = _check_labels(labels)
    missing = [k for k in rois if k not in findings_per_roi]
    extra = [k for k in findings_per_roi if k not in rois]
    if missing or extra:
        raise ValueError(
            f"findings_per_roi must have the keys of rois: missing {missing[:5]}, extra {extra[:5]}"
        )
    out: list[CropSample] = []
    for key, roi in rois.items():
        out += _image_samples(str(key), _roi_hw(roi, key), findings_per_roi[key], labels)
    return out


def roi_breast_mask(result) -> np.ndarray:
    """The breast mask of a :func:`~mammo_helpers.preprocess.pipeline_correlax` result, cut
    (and mirrored) like its ROI ``result.output``."""
    x0, y0, x1, y1 = result.info["breast_box"]
    mask = result["breast_mask"][y0:y1, x0:x1]
    return np.ascontiguousarray(mask[:, ::-1] if result.info.get("flipped") else mask)


def lesion_sizes(samples: Sequence[CropSample]) -> np.ndarray:
    """``(N, 2)`` (width, height) of the boxes of the lesion samples: the reference sizes of
    normal crops."""
    boxes = as_boxes([s.box for s in samples if not s.is_normal and s.box is not None])
    return np.stack([boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]], axis=1)


# --------------------------------------------------------------------------- crop geometry
def _check_range(value, name: str) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be (low, high), got {value!r}") from exc
    if not (math.isfinite(lo) and math.isfinite(hi) and 0 < lo <= hi):
        raise ValueError(f"{name} must be finite with 0 < low <= high, got {value!r}")
    return lo, hi


def _log_uniform(rng: np.random.Generator, value_range, name: str) -> float:
    lo, hi = _check_range(value_range, name)
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def random_crop_box(
    box,
    rng: np.random.Generator,
    *,
    area_range=(0.05, 5.0),
    aspect_range=(0.33, 1.66),
) -> tuple[float, float, float, float]:
    """A float box centred on ``box``'s centre with area ``s`` x ``box``'s area and width /
    height = ``r``; ``s`` and ``r`` log-uniform in ``area_range`` and ``aspect_range``."""
    ((x0, y0, x1, y1),) = as_boxes(box)
    area = float(box_area([x0, y0, x1, y1])[0])
    if area <= 0:
        raise ValueError(f"box {tuple(box)} is empty: no area to scale")
    scale = _log_uniform(rng, area_range, "area_range")
    aspect = _log_uniform(rng, aspect_range, "aspect_range")
    w, h = math.sqrt(area * scale * aspect), math.sqrt(area * scale / aspect)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    return cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2


def _pixel_box(box) -> tuple[int, int, int, int]:
    """Whole-pixel box with ``box``'s size and centre rounded (an integer box is kept)."""
    ((x0, y0, x1, y1),) = as_boxes(box)
    w, h = max(math.floor(x1 - x0 + 0.5), 1), max(math.floor(y1 - y0 + 0.5), 1)
    left = math.floor((x0 + x1) / 2 - w / 2 + 0.5)
    top = math.floor((y0 + y1) / 2 - h / 2 + 0.5)
    return left, top, left + w, top + h


def _as_roi(roi, name: str = "roi") -> np.ndarray:
    arr = np.asarray(roi)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.size == 0:
        raise ValueError(f"{name} must be (H, W) or (H, W, C), got shape {arr.shape}")
    return arr


def padded_crop(roi, box) -> np.ndarray:
    """``roi`` cut to the integer box ``(x0, y0, x1, y1)``, zero where it leaves the ROI;
    (y1 - y0, x1 - x0, C)."""
    arr = _as_roi(roi)
    x0, y0, x1, y1 = (int(v) for v in box)
    if x1 <= x0 or y1 <= y0:
        raise ValueError(f"crop box {tuple(box)} is empty")
    out = np.zeros((y1 - y0, x1 - x0, arr.shape[2]), dtype=arr.dtype)
    inside = clip_box(x0, y0, x1, y1, rows=arr.shape[0], cols=arr.shape[1])
    if inside is not None:
        ix0, iy0, ix1, iy1 = (int(v) for v in inside)
        out[iy0 - y0 : iy1 - y0, ix0 - x0 : ix1 - x0] = arr[iy0:iy1, ix0:ix1]
    return out


def _resize(img: np.ndarray, size_hw) -> np.ndarray:
    """(H, W, C) float32 resized to ``size_hw`` by antialiased bilinear interpolation."""
    x = torch.from_numpy(np.ascontiguousarray(img, dtype=np.float32)).permute(2, 0, 1)
    out = TF.resize(x, list(size_hw), interpolation=InterpolationMode.BILINEAR, antialias=True)
    return out.permute(1, 2, 0).numpy()


def _size(size_px) -> int:
    if isinstance(size_px, bool) or not isinstance(size_px, int | np.integer) or size_px < 1:
        raise ValueError(f"size_px must be a positive integer, got {size_px!r}")
    return int(size_px)


def _cut(roi, box, size_px) -> tuple[np.ndarray, tuple[float, ...]]:
    pixel_box = _pixel_box(box)
    crop = _resize(padded_crop(roi, pixel_box), (size_px, size_px))
    return crop, tuple(float(v) for v in pixel_box)


def box_crop(roi, box, size_px: int) -> np.ndarray:
    """Exactly ``box`` (rounded to whole pixels) cut from ``roi`` and resized to
    ``(size_px, size_px, C)`` float32 (the paper's test crops)."""
    return _cut(roi, box, _size(size_px))[0]


def downsample_x2(crop) -> np.ndarray:
    """``crop`` (H, W[, C]) resized to half size and back: the §2.3 resolution test."""
    arr = np.asarray(crop, dtype=np.float32)
    img = _as_roi(arr, "crop")
    h, w = img.shape[:2]
    if min(h, w) < 2:
        raise ValueError(f"crop of shape {arr.shape} is too small to halve")
    out = _resize(_resize(img, (h // 2, w // 2)), (h, w))
    return out.reshape(arr.shape)


# --------------------------------------------------------------------------- normal crops
def _inside(region: np.ndarray, r, c) -> np.ndarray:
    """Breast pixels: True in a 2-D mask, non-zero in any channel of a 3-D ROI."""
    return region[r, c] if region.ndim == 2 else (region[r, c] > 0).any(axis=-1)


def _breast_centre(region: np.ndarray, rng, image: str) -> tuple[float, float]:
    """Centre (x, y) of a uniformly drawn breast pixel of ``region`` (see :func:`_inside`) by
    rejection sampling: O(1) per draw, where a scan of a VinDr-sized mask is not."""
    rows, cols = region.shape[:2]
    for _ in range(_CENTRE_TRIES):
        r, c = rng.integers(0, rows, 64), rng.integers(0, cols, 64)
        hits = np.flatnonzero(_inside(region, r, c))
        if hits.size:
            return float(c[hits[0]]) + 0.5, float(r[hits[0]]) + 0.5
    ys, xs = np.nonzero(_inside(region, slice(None), slice(None)))
    if ys.size == 0:
        raise ValueError(f"image {image!r}: its ROI has no breast pixel to centre a normal crop")
    i = int(rng.integers(ys.size))
    return float(xs[i]) + 0.5, float(ys[i]) + 0.5


def _check_sizes(sizes, name: str) -> np.ndarray:
    arr = np.asarray([] if sizes is None else sizes, dtype=float)
    if arr.ndim != 2 or arr.shape[1] != 2 or len(arr) == 0 or not (arr > 0).all():
        raise ValueError(
            f"{name} must be a non-empty (N, 2) array of positive (width, height) (e.g. "
            f"lesion_sizes(train_samples)) for normal crops; got shape {arr.shape}"
        )
    return arr


def _region(roi: np.ndarray, mask, image: str) -> np.ndarray:
    """Where normal crops are centred: ``mask`` (checked against the ROI) or the ROI itself."""
    if mask is None:
        return roi
    m = np.asarray(mask, dtype=bool)
    if m.shape != roi.shape[:2]:
        raise ValueError(f"image {image!r}: breast_mask shape {m.shape} != ROI {roi.shape[:2]}")
    return m


def _reference_box(region, sizes: np.ndarray, rng, image: str):
    """A lesion size drawn from ``sizes`` centred on a drawn breast pixel of ``region``."""
    w, h = sizes[rng.integers(len(sizes))]
    cx, cy = _breast_centre(region, rng, image)
    return cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2


def draw_training_crop(
    roi,
    sample: CropSample,
    rng: np.random.Generator,
    *,
    size_px: int,
    area_range=(0.05, 5.0),
    aspect_range=(0.33, 1.66),
    breast_mask=None,
    reference_sizes=None,
) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """A random training crop of ``sample`` from ``roi``: ``(size_px, size_px, C)`` float32
    and the whole-pixel crop box in ROI pixels (before any augmentation).

    Lesion samples: :func:`random_crop_box` around the sample's box. Normal samples: the same
    law around a box of a size drawn from ``reference_sizes`` ((N, 2) width, height, e.g.
    :func:`lesion_sizes` of the training samples) centred on a random pixel of
    ``breast_mask`` (default: the ROI's non-zero pixels).
    """
    arr = _as_roi(roi, f"ROI of image {sample.image!r}")
    if sample.is_normal:
        sizes = _check_sizes(reference_sizes, "reference_sizes")
        box = _reference_box(_region(arr, breast_mask, sample.image), sizes, rng, sample.image)
    elif sample.box is None:
        raise ValueError(f"image {sample.image!r}: lesion sample {sample.labels} has no box")
    else:
        box = sample.box
    crop_box = random_crop_box(box, rng, area_range=area_range, aspect_range=aspect_range)
    return _cut(arr, crop_box, _size(size_px))


def normal_test_boxes(
    samples: Sequence[CropSample],
    masks: Mapping[str, np.ndarray],
    *,
    sizes=None,
    seed: int = 0,
) -> list[CropSample]:
    """``samples`` with every normal sample given a fixed test box: a size drawn (seeded,
    with replacement) from ``sizes`` ((N, 2) width, height; default :func:`lesion_sizes` of
    ``samples``), centred on a random pixel of the image's breast mask ``masks[image]`` and
    shifted inside the ROI when it fits. Lesion samples are returned unchanged."""
    sizes = _check_sizes(lesion_sizes(samples) if sizes is None else sizes, "sizes")
    rng = np.random.default_rng(seed)
    out = []
    for s in samples:
        if not s.is_normal:
            out.append(s)
            continue
        if s.image not in masks:
            raise ValueError(f"masks has no breast mask for image {s.image!r}")
        mask = np.asarray(masks[s.image], dtype=bool)
        if mask.shape != s.roi_hw:
            raise ValueError(f"image {s.image!r}: mask shape {mask.shape} != ROI {s.roi_hw}")
        box = _reference_box(mask, sizes, rng, s.image)
        out.append(CropSample(s.image, s.roi_hw, _shift_inside(box, s.roi_hw), s.labels))
    return out


def _shift_inside(box, roi_hw) -> tuple[float, float, float, float]:
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    x0 = min(max(x0, 0.0), max(roi_hw[1] - w, 0.0))
    y0 = min(max(y0, 0.0), max(roi_hw[0] - h, 0.0))
    return float(x0), float(y0), float(x0 + w), float(y0 + h)


# --------------------------------------------------------------------------- augmentation
def augment(
    x: torch.Tensor,
    rng: np.random.Generator,
    *,
    flip_p: float = 0.5,
    degrees: float = 30.0,
    brightness: float = 0.2,
    contrast: float = 0.2,
) -> torch.Tensor:
    """The paper's training augmentations of a (C, H, W) crop, parameters drawn from ``rng``:
    horizontal and vertical flips (each with ``flip_p``), a rotation uniform in
    [-degrees, degrees] (bilinear, zero fill), brightness then contrast factors uniform in
    [1 - b, 1 + b]. Saturation and hue are left out: the channels are the grey image and its
    two CLAHE versions, not colours, so hue would mix the CLAHE channels."""
    flips = rng.random(2) < flip_p
    angle, b, c = rng.uniform(-1.0, 1.0, 3) * (degrees, brightness, contrast)
    if flips[0]:
        x = TF.horizontal_flip(x)
    if flips[1]:
        x = TF.vertical_flip(x)
    if degrees:
        x = TF.rotate(x, float(angle), interpolation=InterpolationMode.BILINEAR, fill=0.0)
    x = TF.adjust_brightness(x, 1.0 + float(b))
    return TF.adjust_contrast(x, 1.0 + float(c))


class CropDataset(torch.utils.data.Dataset):
    """Crops of ``samples`` from ``rois`` (image key -> (H, W, C) ROI) as ``(x (C, H, W)
    float32, target multi-hot float32)``.

    ``train=True``: a new :func:`draw_training_crop` per item and epoch, then
    :func:`augment` (``augment=False`` to skip it); the draw depends only on ``seed``, the
    epoch (:meth:`set_epoch`, call it before each epoch; not seen by persistent DataLoader
    workers) and the index. ``train=False``: :func:`box_crop` of each sample's box (normal
    samples need :func:`normal_test_boxes`). ``transform`` maps each (size_px, size_px, C)
    numpy crop before augmentation (e.g. :func:`downsample_x2`). ``masks`` are the ROIs'
    breast masks (default: non-zero pixels); ``reference_sizes`` default to
    :func:`lesion_sizes` of ``samples``.
    """

    def __init__(
        self,
        samples: Sequence[CropSample],
        rois: Mapping[str, np.ndarray],
        labels: Sequence[str],
        *,
        size_px: int = 64,
        train: bool = True,
        seed: int = 0,
        augment: bool = True,
        masks: Mapping[str, np.ndarray] | None = None,
        reference_sizes=None,
        area_range=(0.05, 5.0),
        aspect_range=(0.33, 1.66),
        transform: Callable[[np.ndarray], np.ndarray] | None = None,
        augment_kwargs: dict | None = None,
    ):
        self.samples, self.rois, self.labels = list(samples), rois, _check_labels(labels)
        self.size_px, self.train, self.seed = _size(size_px), bool(train), int(seed)
        self.augmenting, self.masks, self.transform = bool(augment), masks or {}, transform
        self.ranges = {"area_range": area_range, "aspect_range": aspect_range}
        self.augment_kwargs = dict(augment_kwargs or {})
        has_normals = any(s.is_normal for s in self.samples)
        sizes = reference_sizes
        if sizes is None and self.train and has_normals:
            sizes = lesion_sizes(self.samples)
        self.reference_sizes, self.epoch = sizes, 0
        missing = sorted({s.image for s in self.samples} - set(rois))
        if missing:
            raise ValueError(f"rois has no ROI for image(s) {missing[:5]}")

    def set_epoch(self, epoch: int) -> None:
        """Re-draw the training crops for ``epoch``."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.samples)

    def rng(self, index: int, draw: int | None = None) -> np.random.Generator:
        """The generator of item ``index`` (its ``draw``-th draw) in the current epoch."""
        key = [self.seed, self.epoch, int(index)] + ([] if draw is None else [int(draw)])
        return np.random.default_rng(key)

    def crop(self, index: int, draw: int | None = None) -> tuple[np.ndarray, tuple | None]:
        """Item ``index``'s crop (size_px, size_px, C) and crop box, before augmentation."""
        s = self.samples[index]
        roi = self.rois[s.image]
        if not self.train:
            if s.box is None:
                raise ValueError(f"image {s.image!r}: normal sample has no test box")
            return box_crop(roi, s.box, self.size_px), s.box
        return draw_training_crop(
            roi,
            s,
            self.rng(index, draw),
            size_px=self.size_px,
            breast_mask=self.masks.get(s.image),
            reference_sizes=self.reference_sizes,
            **self.ranges,
        )

    def __getitem__(self, key) -> tuple[torch.Tensor, torch.Tensor]:
        """Item ``key``: an index, or ``(index, draw)`` when a sampler draws one sample
        several times in an epoch (each draw then gets its own crop and augmentation)."""
        index, draw = key if isinstance(key, tuple) else (key, None)
        crop, _ = self.crop(index, draw)
        if self.transform is not None:
            crop = self.transform(crop)
        x = torch.from_numpy(np.ascontiguousarray(crop, dtype=np.float32)).permute(2, 0, 1)
        if self.train and self.augmenting:
            # a second stream so that the crop draw does not depend on augmentation settings
            extra = [] if draw is None else [int(draw)]
            rng = np.random.default_rng([self.seed, self.epoch, int(index), *extra, 1])
            x = augment(x, rng, **self.augment_kwargs)
        target = torch.from_numpy(self.samples[index].target(self.labels))
        return x.contiguous(), target


# --------------------------------------------------------------------------- tables
def sampling_weights(samples: Sequence[CropSample], labels: Sequence[str]) -> np.ndarray:
    """Per sample, the largest of ``1 / count(label)`` over its labels, counts over all of
    ``samples`` (a multi-label sample weighs as its rarest label); for
    ``torch.utils.data.WeightedRandomSampler``."""
    y = targets(samples, labels)
    counts = y.sum(axis=0)
    inverse = np.divide(1.0, counts, out=np.zeros_like(counts), where=counts > 0)
    return (y * inverse).max(axis=1).astype(np.float64)


def table1_counts(
    samples_by_split: Mapping[str, Sequence[CropSample]], labels: Sequence[str] | None = None
) -> pd.DataFrame:
    """Samples carrying each label (rows, ``labels`` order; default :func:`crop_labels` of
    the labels seen) per split (columns): the paper's Table 1."""
    if labels is None:
        seen = {n for ss in samples_by_split.values() for s in ss for n in s.labels}
        labels = crop_labels(seen - {NO_FINDING})
    labels = _check_labels(labels)
    counts = {
        split: targets(ss, labels).sum(axis=0).astype(int) for split, ss in samples_by_split.items()
    }
    return pd.DataFrame(counts, index=pd.Index(labels, name="label"))


def crop_geometry(samples: Sequence[CropSample]) -> pd.DataFrame:
    """Per sample: ``image``, box ``width``, ``height`` (px), ``area`` (px²), ``aspect``
    (width / height) and box centre ``x_centre``, ``y_centre`` as fractions of the ROI width
    and height (:data:`GEOMETRY_FEATURES`): the geometry-only baseline's inputs."""
    no_box = [s.image for s in samples if s.box is None]
    if no_box:
        raise ValueError(f"samples of image(s) {no_box[:5]} have no box (normal_test_boxes?)")
    boxes = as_boxes([s.box for s in samples])
    hw = np.array([s.roi_hw for s in samples], dtype=float).reshape(-1, 2)
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    return pd.DataFrame(
        {
            "image": [s.image for s in samples],
            "width": w,
            "height": h,
            "area": w * h,
            "aspect": w / h,
            "x_centre": (boxes[:, 0] + boxes[:, 2]) / 2 / hw[:, 1],
            "y_centre": (boxes[:, 1] + boxes[:, 3]) / 2 / hw[:, 0],
        }
    )
