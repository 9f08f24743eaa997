"""Mammogram preprocessing: intensity scaling, CLAHE channel fusion, the breast mask and box,
flips, resizing, and the three papers' pipelines (typed results whose boxes follow every step).

Used by chapter 00 (every pipeline step on one image), 02 (CorRELAX input: CLAHE fusion + Otsu
ROI crop; ``mh.preprocess.rois`` turns manifest rows into ROIs with their findings, loaded on
first access), 03 (XAI IoU input: crop, flip to left, 1024x512; ``mh.preprocess.malignancy``
turns manifest rows into whole images with exact lesion masks and lesion patches), 05 (End2End input: 1152x896,
[0, 255], featurewise mean) and by the torch datasets of every chapter.

Conventions
-----------
* Images are numpy arrays ``(rows, cols)`` (or ``(rows, cols, channels)`` where stated), bright =
  attenuating (MONOCHROME2, as returned by ``mammo_helpers.io.read_dicom``).
* **Sizes are always (height, width)**, including ``resize`` and every entry of
  ``PAPER_INPUT_SIZES``; the (width, height) order that OpenCV wants is handled internally.
* Boxes follow :mod:`mammo_helpers.boxes`: ``(xmin, ymin, xmax, ymax)`` float pixels, an integer
  box ``(x0, y0, x1, y1)`` selects ``img[y0:y1, x0:x1]``.
* Laterality: a left breast has its chest wall at column 0; "flip to a common laterality"
  mirrors right images so that every breast looks like a left one (paper 03).
"""

from .breast import breast_box, infer_laterality, otsu_breast_mask, remove_burned_in_text
from .geometry import crop, flip_to_laterality, resize, warp_like
from .intensity import (
    clahe,
    clahe_fusion,
    featurewise_mean,
    match_quantiles,
    reference_quantiles,
    scale_to_unit,
    to_uint8,
    to_uint16,
)
from .pipelines import (
    CLIP_NORMALISATION,
    END2END_PIXEL_MEANS,
    IMAGENET_NORMALISATION,
    PAPER_INPUT_SIZES,
    PipelineResult,
    imagenet_normalise,
    pipeline_correlax,
    pipeline_density_clip,
    pipeline_domain_shift,
    pipeline_multitask,
    pipeline_xai_iou,
)

__all__ = [
    "CLIP_NORMALISATION",
    "END2END_PIXEL_MEANS",
    "IMAGENET_NORMALISATION",
    "PAPER_INPUT_SIZES",
    "PipelineResult",
    "breast_box",
    "clahe",
    "clahe_fusion",
    "crop",
    "featurewise_mean",
    "match_quantiles",
    "reference_quantiles",
    "flip_to_laterality",
    "imagenet_normalise",
    "infer_laterality",
    "otsu_breast_mask",
    "pipeline_correlax",
    "pipeline_density_clip",
    "pipeline_domain_shift",
    "pipeline_multitask",
    "pipeline_xai_iou",
    "remove_burned_in_text",
    "resize",
    "scale_to_unit",
    "to_uint8",
    "to_uint16",
    "warp_like",
]


def __getattr__(name: str):
    if name in ("rois", "malignancy"):  # read DICOM files: loaded on first access only
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
