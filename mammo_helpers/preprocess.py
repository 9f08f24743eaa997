"""Mammogram preprocessing: intensity scaling, CLAHE channel fusion, Otsu breast ROI, flips,
resizing, and the three papers' preprocessing pipelines (with box transforms).

Used by notebook 00 (shows every pipeline step on one image), 02 (CorRELAX input: CLAHE fusion +
Otsu ROI crop), 03 (XAI IoU input: crop, flip to left, 1024x512), 05 (End2End input: 1152x896,
[0, 255], featurewise mean) and by the torch Datasets of every notebook.

Conventions
-----------
* Images are numpy arrays ``(rows, cols)`` (or ``(rows, cols, channels)`` where stated), bright =
  attenuating (MONOCHROME2, as returned by ``mammo_helpers.io.read_dicom``).
* **Sizes are always (height, width) in this module**, including ``resize`` and every entry of
  ``PAPER_INPUT_SIZES``; the (width, height) order that OpenCV wants is handled internally.
* Boxes are ``(xmin, ymin, xmax, ymax)`` float pixel coordinates, x = column, on a continuous
  grid where pixel ``(r, c)`` covers ``[c, c+1) x [r, r+1)``; an integer box ``(x0, y0, x1, y1)``
  therefore selects ``img[y0:y1, x0:x1]`` (the convention of :mod:`mammo_helpers.boxes`). Each
  pipeline returns a :class:`mammo_helpers.boxes.BoxTransform` mapping boxes of the original
  image into its output.
* Laterality: a left breast has its chest wall at column 0; "flip to a common laterality" mirrors
  right images so that every breast looks like a left one (paper 03).
"""

from __future__ import annotations

from collections.abc import Iterable

import cv2
import numpy as np
from scipy import ndimage
from skimage.filters import threshold_otsu

from mammo_helpers.boxes import BoxTransform
from mammo_helpers.vocab import check_laterality

__all__ = [
    "END2END_PIXEL_MEANS",
    "IMAGENET_NORMALISATION",
    "PAPER_INPUT_SIZES",
    "clahe",
    "clahe_fusion",
    "crop",
    "featurewise_mean",
    "flip_to_laterality",
    "infer_laterality",
    "otsu_breast_mask",
    "pipeline_correlax",
    "pipeline_domain_shift",
    "pipeline_xai_iou",
    "remove_burned_in_text",
    "resize",
    "roi_box",
    "scale_to_unit",
    "to_uint8",
    "to_uint16",
]

# Model input sizes of the papers, all as (height, width).
PAPER_INPUT_SIZES: dict = {
    # Paper 01 (BiomedCLIP density): the ViT-B/16 image tower takes 224x224
    # (open_clip_config.json image_size 224, notes/anchors.md A3).
    "01_density_clip": (224, 224),
    # Paper 02 (CorRELAX) §3.1/§3: no resize; the ROI crop stays at native resolution and is
    # scanned with 256x256 sliding windows (CodigoTesis eval_correlax --window-size 256).
    "02_correlax": (256, 256),
    # Paper 03 (XAI IoU) §3.2.2: patches resized to 224x224; §3.2.3: whole images 1024x512.
    "03_xai_iou": {"patch": (224, 224), "whole": (1024, 512)},
    # Paper 05 (domain shift) §4.2: every mammogram resized to 1152 x 896 (End2End, H x W).
    "05_domain_shift": (1152, 896),
}

# Paper 03 §3.2.2-3.2.3 only says "normalization"; the ImageNet-pretrained torchvision
# ResNet-50 / EfficientNet-B0 expect these per-channel statistics (input in [0, 1], RGB).
IMAGENET_NORMALISATION: dict = {"mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225)}

# Scalar pixel means (on the [0, 255] scale) used by End2End models, for reference (paper 05
# subtracts the training-split mean). Sources: lishen/end2end-all-conv
# ddsm_train/train_image_clf_inbreast.sh (--featurewise-mean 44.33) and
# nyukat/mammography_metarepository models/end2end (MEAN_PIXEL_INTENSITY).
END2END_PIXEL_MEANS: dict = {
    "inbreast_train_script": 44.33,
    "ddsm": 52.18,
    "inbreast": 44.4,
    "nyu": 31.28,
    "cmmd": 18.01,
}

_INTERPOLATIONS = {
    "area": cv2.INTER_AREA,
    "linear": cv2.INTER_LINEAR,
    # INTER_NEAREST_EXACT samples pixel centres (INTER_NEAREST is shifted by half a pixel),
    # so nearest-neighbour resizing agrees with resize_boxes.
    "nearest": cv2.INTER_NEAREST_EXACT,
}


# ----------------------------------------------------------------------------- validation
def _as_image(img, name: str = "img", *, allow_channels: bool = False) -> np.ndarray:
    arr = np.asarray(img)
    ok_ndim = (2, 3) if allow_channels else (2,)
    if arr.ndim not in ok_ndim:
        want = "(rows, cols) or (rows, cols, channels)" if allow_channels else "(rows, cols)"
        raise ValueError(f"{name} must be a {want} array, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape})")
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be numeric or boolean, got dtype {arr.dtype}")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        n_bad = int((~np.isfinite(arr)).sum())
        raise ValueError(f"{name} (shape {arr.shape}) has {n_bad} non-finite pixel(s)")
    return arr


def _as_mask(mask, shape: tuple[int, ...], name: str) -> np.ndarray:
    m = np.asarray(mask)
    if m.shape != tuple(shape[:2]):
        raise ValueError(f"{name} has shape {m.shape}, expected the image shape {shape[:2]}")
    return m.astype(bool, copy=False)


def _as_hw(size_hw, name: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in size_hw)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be (height, width), got {size_hw!r}") from exc
    if h <= 0 or w <= 0:
        raise ValueError(f"{name} must be positive (height, width), got {size_hw!r}")
    return h, w


# ----------------------------------------------------------------------------- intensity
def scale_to_unit(img, *, mask=None, low_pct: float = 0.0, high_pct: float = 100.0) -> np.ndarray:
    """Min-max scale an image to float32 [0, 1] (paper 02 §3.1; notebooks 00, 02, 03, 05).

    With ``low_pct``/``high_pct`` the limits are percentiles instead of min/max, computed only
    over ``mask`` pixels when a mask is given (e.g. the breast), and values outside the limits
    are clipped. A constant image (or limits that coincide) gives zeros, never a division by 0.
    """
    arr = _as_image(img)
    if not 0.0 <= low_pct < high_pct <= 100.0:
        raise ValueError(f"need 0 <= low_pct < high_pct <= 100, got {low_pct}, {high_pct}")
    x = arr.astype(np.float64)
    ref = x if mask is None else x[_as_mask(mask, arr.shape, "mask")]
    if ref.size == 0:
        raise ValueError(f"mask selects no pixel of the image (shape {arr.shape})")
    lo, hi = np.percentile(ref, [low_pct, high_pct])
    if hi <= lo:
        return np.zeros(arr.shape, dtype=np.float32)
    return np.clip((x - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)


def to_uint8(img01) -> np.ndarray:
    """[0, 1] float image -> uint8 (rounded, values outside [0, 1] clipped)."""
    x = _as_image(img01, "img01", allow_channels=True)
    return np.rint(np.clip(x, 0.0, 1.0) * 255.0).astype(np.uint8)


def to_uint16(img01) -> np.ndarray:
    """[0, 1] float image -> uint16 (rounded, values outside [0, 1] clipped)."""
    x = _as_image(img01, "img01", allow_channels=True)
    return np.rint(np.clip(x, 0.0, 1.0) * 65535.0).astype(np.uint16)


def clahe(
    img01, clip_limit: float, tile_grid: tuple[int, int] = (8, 8), *, bits: int = 8
) -> np.ndarray:
    """OpenCV CLAHE of a [0, 1] image, returned as float32 [0, 1] (paper 02 §3.1).

    Runs ``cv2.createCLAHE`` on the image quantised to uint8 by default, as the CorRELAX
    authors do (their ``clahefusion`` requires uint8), so the clip limits 1.0 / 2.0 mean what they
    meant in the paper. ``bits=16`` runs it on uint16 instead (65536-bin histograms: no
    quantisation of 16-bit detail, but not the paper's setting).

    ``tile_grid`` is the *number of tiles* as (rows, cols), OpenCV's ``tileGridSize`` semantics;
    the paper's "8x8 pixels" is this 8x8 grid (the authors pass ``tileGridSize=(8, 8)``).
    """
    x = _as_image(img01, "img01")
    if clip_limit <= 0:
        raise ValueError(f"clip_limit must be > 0, got {clip_limit}")
    ty, tx = _as_hw(tile_grid, "tile_grid")
    op = cv2.createCLAHE(clipLimit=float(clip_limit), tileGridSize=(tx, ty))
    if bits == 8:
        return (op.apply(to_uint8(x)).astype(np.float32) / 255.0).astype(np.float32)
    if bits == 16:
        return (op.apply(to_uint16(x)).astype(np.float32) / 65535.0).astype(np.float32)
    raise ValueError(f"bits must be 8 or 16, got {bits}")


def clahe_fusion(
    img01,
    clip_limits: tuple[float, ...] = (1.0, 2.0),
    tile_grid: tuple[int, int] = (8, 8),
    background=None,
) -> np.ndarray:
    """3-channel image [original, CLAHE clip 1.0, CLAHE clip 2.0] (paper 02 §3.1; notebook 02).

    ``img01`` is a [0, 1] image (``scale_to_unit``). ``background`` is a boolean mask, True
    outside the breast; by default ``~otsu_breast_mask(img01)``. Background pixels are set to 0
    in *every* channel (CLAHE lifts the dark background; the authors' code zeroes only pixels
    that are exactly 0 in uint8 and only in the CLAHE channels - an Otsu mask also removes
    background noise and burned-in labels). Channel 0 equals ``img01`` inside the breast.
    Returns float32 ``(H, W, 1 + len(clip_limits))``.
    """
    x = _as_image(img01, "img01").astype(np.float32)
    if background is None:
        bg = ~otsu_breast_mask(x)
    else:
        bg = _as_mask(background, x.shape, "background")
    channels = [x] + [clahe(x, c, tile_grid) for c in clip_limits]
    fused = np.stack(channels, axis=-1)
    fused[bg] = 0.0
    return fused


# ----------------------------------------------------------------------------- breast mask
def otsu_breast_mask(img, *, keep: str = "largest", min_area_fraction: float = 0.005) -> np.ndarray:
    """Boolean breast mask: Otsu threshold + connected components + hole filling.

    ``keep='largest'`` keeps only the largest 8-connected foreground component, which discards
    burned-in labels, markers and background noise that are not connected to the breast;
    ``keep='all'`` keeps every component. Holes (dark fat lobules) are filled. Raises
    ValueError when no breast is found (constant image, or the kept area is below
    ``min_area_fraction`` of the image). Used by ``roi_box``, ``clahe_fusion``, the pipelines.
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


def roi_box(img, *, margin: int = 0, mask=None) -> tuple[int, int, int, int]:
    """Breast ROI box ``(x0, y0, x1, y1)`` (ints, end-exclusive) for ``crop`` (papers 02/03).

    Bounding rectangle of the largest external contour (``cv2.findContours``) of the Otsu breast
    mask (or of ``mask`` if given), grown by ``margin`` pixels and clipped to the image.
    """
    arr = _as_image(img, allow_channels=True)
    m = otsu_breast_mask(arr) if mask is None else _as_mask(mask, arr.shape, "mask")
    contours, _ = cv2.findContours(m.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        raise ValueError(f"no breast found: mask is empty for image of shape {arr.shape}")
    largest = max(contours, key=lambda c: (cv2.contourArea(c), len(c)))
    x, y, w, h = cv2.boundingRect(largest)
    rows, cols = arr.shape[:2]
    margin = int(margin)
    if margin < 0:
        raise ValueError(f"margin must be >= 0, got {margin}")
    return (
        max(0, x - margin),
        max(0, y - margin),
        min(cols, x + w + margin),
        min(rows, y + h + margin),
    )


def remove_burned_in_text(img, mask=None) -> np.ndarray:
    """Zero every pixel outside the breast mask (labels, markers, text), keep the breast as is.

    ``mask`` defaults to ``otsu_breast_mask(img)``; the dtype of ``img`` is kept. Notebook 00.
    """
    arr = _as_image(img)
    m = otsu_breast_mask(arr) if mask is None else _as_mask(mask, arr.shape, "mask")
    return np.where(m, arr, np.zeros((), dtype=arr.dtype))


# ----------------------------------------------------------------------------- geometry
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

    Returns ``(image, flipped)``; use ``flip_boxes(boxes, width)`` when ``flipped`` is True.
    """
    arr = _as_image(img, allow_channels=True)
    check_laterality(laterality)
    check_laterality(target, "target")
    if laterality == target:
        return arr, False
    return np.ascontiguousarray(arr[:, ::-1]), True


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


def resize(img, size_hw, *, interpolation: str = "area") -> np.ndarray:
    """Resize with OpenCV to ``size_hw`` = **(HEIGHT, WIDTH)** (not OpenCV's (width, height)!).

    ``interpolation`` is 'area' (default, best for downsampling), 'linear' or 'nearest'
    (pixel-centre exact, for label maps). Keeps dtype and a trailing channel axis (also of size
    1); boolean masks are resized as uint8 and thresholded at 0.5.
    """
    arr = _as_image(img, allow_channels=True)
    h, w = _as_hw(size_hw, "size_hw")
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


# ----------------------------------------------------------------------------- pipelines
def pipeline_correlax(
    img,
    laterality: str | None = None,
    *,
    clip_limits: tuple[float, ...] = (1.0, 2.0),
    tile_grid: tuple[int, int] = (8, 8),
    margin: int = 0,
) -> dict:
    """Paper 02 §3.1 preprocessing (notebooks 00, 02): min-max -> CLAHE fusion -> Otsu ROI crop.

    The crop stays at native resolution (CorRELAX scans it with 256x256 windows,
    ``result['window_hw']``). The paper does not flip; pass ``laterality`` to additionally
    mirror right breasts to the left after cropping. Keys: 'scaled', 'mask', 'clahe_fused'
    (H, W, 3), 'roi_box', 'cropped' (h, w, 3), 'flipped' (after the optional flip),
    'was_flipped', 'output' (= 'flipped'), 'window_hw', 'box_transform', 'steps'.
    """
    scaled = scale_to_unit(img)
    mask = otsu_breast_mask(scaled)
    fused = clahe_fusion(scaled, clip_limits, tile_grid, background=~mask)
    box = roi_box(scaled, margin=margin, mask=mask)
    cropped = crop(fused, box)
    if laterality is None:
        flipped, was_flipped = cropped, False
    else:
        flipped, was_flipped = flip_to_laterality(cropped, laterality)
    return {
        "scaled": scaled,
        "mask": mask,
        "clahe_fused": fused,
        "roi_box": box,
        "cropped": cropped,
        "flipped": flipped,
        "was_flipped": was_flipped,
        "output": flipped,
        "window_hw": PAPER_INPUT_SIZES["02_correlax"],
        "box_transform": BoxTransform(scaled.shape, box, was_flipped, None),
        "steps": ["scaled", "mask", "clahe_fused", "cropped", "flipped"],
    }


def pipeline_xai_iou(
    img, laterality: str | None, *, size_hw=PAPER_INPUT_SIZES["03_xai_iou"]["whole"]
) -> dict:
    """Paper 03 §3.2.1/§3.2.3 whole-image preprocessing (notebooks 00, 03).

    Min-max -> threshold (Otsu) + connected components + ``findContours`` box -> crop -> flip to
    left -> resize to 1024x512 (H x W) -> 3 channels normalised with ``IMAGENET_NORMALISATION``
    (assumed: the paper only says "normalization" of ImageNet-pretrained torchvision models).
    ``laterality=None`` infers it with ``infer_laterality``. Keys: 'scaled', 'mask', 'roi_box',
    'cropped', 'laterality', 'flipped', 'was_flipped', 'resized' (H, W) in [0, 1],
    'normalised' (H, W, 3) float32 channels-last (transpose to CHW for torch), 'output'
    (= 'normalised'), 'norm_stats', 'box_transform', 'steps'.
    """
    size_hw = _as_hw(size_hw, "size_hw")
    scaled = scale_to_unit(img)
    mask = otsu_breast_mask(scaled)
    if laterality is None:
        laterality = infer_laterality(scaled, mask=mask)
    check_laterality(laterality)
    box = roi_box(scaled, mask=mask)
    cropped = crop(scaled, box)
    flipped, was_flipped = flip_to_laterality(cropped, laterality)
    resized = np.clip(resize(flipped, size_hw, interpolation="area"), 0.0, 1.0)
    mean = np.asarray(IMAGENET_NORMALISATION["mean"], dtype=np.float32)
    std = np.asarray(IMAGENET_NORMALISATION["std"], dtype=np.float32)
    normalised = ((np.repeat(resized[:, :, None], 3, axis=2) - mean) / std).astype(np.float32)
    return {
        "scaled": scaled,
        "mask": mask,
        "roi_box": box,
        "cropped": cropped,
        "laterality": laterality,
        "flipped": flipped,
        "was_flipped": was_flipped,
        "resized": resized,
        "normalised": normalised,
        "output": normalised,
        "norm_stats": IMAGENET_NORMALISATION,
        "box_transform": BoxTransform(scaled.shape, box, was_flipped, size_hw),
        "steps": ["scaled", "mask", "cropped", "flipped", "resized", "normalised"],
    }


def featurewise_mean(images: Iterable) -> float:
    """Mean pixel value over all pixels of all ``images`` (End2End's scalar featurewise mean).

    Paper 05 §4.2 subtracts the mean computed on the *training split*: pass the 'scaled'
    ([0, 255]) outputs of ``pipeline_domain_shift`` for the training images, then give the
    result as ``featurewise_mean=`` for every split. Accepts a generator (streams).
    """
    total, count = 0.0, 0
    for i, im in enumerate(images):
        arr = _as_image(im, f"images[{i}]", allow_channels=True)
        total += float(arr.sum(dtype=np.float64))
        count += arr.size
    if count == 0:
        raise ValueError("featurewise_mean needs at least one non-empty image")
    return total / count


def pipeline_domain_shift(
    img, featurewise_mean: float | None = None, *, size_hw=PAPER_INPUT_SIZES["05_domain_shift"]
) -> dict:
    """Paper 05 §4.2 / End2End preprocessing (notebooks 00, 05).

    Min-max to [0, 1] (as the End2End inference container's ImageMagick ``auto_level``) ->
    resize to 1152x896 (H x W) -> x255 (End2End's ``--rescale-factor 255/65535`` applied to the
    min-max scaled 16-bit image) -> replicate to 3 channels -> subtract the featurewise mean.
    The paper uses the training-split mean (``featurewise_mean(...)``); with None the mean of
    this image is used (per-image centring, a stand-in). Keys: 'scaled01', 'resized' (H, W) in
    [0, 1], 'scaled' [0, 255], 'rgb' (H, W, 3), 'featurewise_mean', 'centred' (H, W, 3),
    'output' (= 'centred'), 'box_transform', 'steps'.
    """
    size_hw = _as_hw(size_hw, "size_hw")
    scaled01 = scale_to_unit(img)
    resized = np.clip(resize(scaled01, size_hw, interpolation="area"), 0.0, 1.0)
    scaled = (resized * 255.0).astype(np.float32)
    rgb = np.repeat(scaled[:, :, None], 3, axis=2)
    mean = float(scaled.mean()) if featurewise_mean is None else float(featurewise_mean)
    centred = (rgb - np.float32(mean)).astype(np.float32)
    return {
        "scaled01": scaled01,
        "resized": resized,
        "scaled": scaled,
        "rgb": rgb,
        "featurewise_mean": mean,
        "centred": centred,
        "output": centred,
        "box_transform": BoxTransform(scaled01.shape, None, False, size_hw),
        "steps": ["scaled01", "resized", "scaled", "centred"],
    }
