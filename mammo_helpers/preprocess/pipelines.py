"""The preprocessing pipelines of papers 02-05, each returning a typed
:class:`PipelineResult`: the model input, every named intermediate image (for figures) and the
:class:`~mammo_helpers.boxes.BoxTransform` that moves finding boxes along.

Step names mean the same in every pipeline: ``"unit"`` is the min-max scaled image in
[0, 1]; ``"scaled_255"`` is on the [0, 255] scale; ``"breast_mask"`` is the Otsu breast mask.
Used by chapters 00 (on one image), 02, 03, 04 and 05.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mammo_helpers.boxes import BoxTransform, as_hw
from mammo_helpers.vocab import check_laterality

from ._checks import _as_mammogram
from .breast import breast_box, infer_laterality, otsu_breast_mask, remove_burned_in_text
from .geometry import crop, flip_to_laterality, resize
from .intensity import clahe_fusion, scale_to_unit

# Model input sizes of the papers, all as (height, width).
PAPER_INPUT_SIZES: dict = {
    # Paper 01 (BiomedCLIP density): the ViT-B/16 image tower takes 224x224
    # (open_clip_config.json image_size 224 of the BiomedCLIP release).
    "01_density_clip": (224, 224),
    # Paper 02 (CorRELAX) §3.1/§3: no resize; the ROI crop stays at native resolution and is
    # scanned with 256x256 sliding windows (CodigoTesis eval_correlax --window-size 256).
    "02_correlax": (256, 256),
    # Paper 03 (XAI IoU) §3.2.2: patches resized to 224x224; §3.2.3: whole images 1024x512.
    "03_xai_iou": {"patch": (224, 224), "whole": (1024, 512)},
    # Paper 04 (multi-task fusion) §III-A.1-3: density models 336 x 224, findings model
    # 1152 x 896, the detector 2700 x 1200 (H x W).
    "04_multitask_fusion": {
        "density": (336, 224),
        "findings": (1152, 896),
        "detector": (2700, 1200),
    },
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


@dataclass(frozen=True)
class PipelineResult:
    """What a preprocessing pipeline produced.

    ``output``: the model input; ``steps``: the named intermediate images in the order they
    were made (``output`` is the last one); ``box_transform``: maps finding boxes of the
    original image into ``output`` (``box_transform.findings(findings)`` for finding dicts);
    ``info``: settings found on the way (``breast_box``, ``laterality``, ``flipped``,
    ``featurewise_mean``, ``window_hw``, ``norm_stats``).
    """

    output: np.ndarray
    steps: dict[str, np.ndarray]
    box_transform: BoxTransform
    info: dict = field(default_factory=dict)

    def __getitem__(self, name: str) -> np.ndarray:
        """A step by name (``result["unit"]``); the error lists the steps there are."""
        try:
            return self.steps[name]
        except KeyError:
            raise KeyError(f"no step {name!r}; steps: {', '.join(self.steps)}") from None


def _finite_number(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return float(value)


def pipeline_correlax(
    img,
    laterality: str | None = None,
    *,
    clip_limits: tuple[float, ...] = (1.0, 2.0),
    tile_grid: tuple[int, int] = (8, 8),
    margin: int = 0,
) -> PipelineResult:
    """Paper 02 §3.1 preprocessing (chapters 00, 02): min-max -> CLAHE fusion -> Otsu ROI crop.

    The crop stays at native resolution (CorRELAX scans it with 256x256 windows,
    ``info["window_hw"]``). The paper does not flip; pass ``laterality`` to additionally
    mirror right breasts to the left after cropping. Steps: ``unit``, ``breast_mask``,
    ``clahe_fused`` (H, W, 3), ``cropped`` (h, w, 3), then ``flipped`` when a laterality is
    given.
    """
    unit = scale_to_unit(_as_mammogram(img))
    mask = otsu_breast_mask(unit)
    fused = clahe_fusion(unit, clip_limits, tile_grid, background=~mask)
    box = breast_box(unit, margin=margin, mask=mask)
    steps = {"unit": unit, "breast_mask": mask, "clahe_fused": fused, "cropped": crop(fused, box)}
    flipped = False
    if laterality is not None:
        steps["flipped"], flipped = flip_to_laterality(steps["cropped"], laterality)
    return PipelineResult(
        output=list(steps.values())[-1],
        steps=steps,
        box_transform=BoxTransform(unit.shape, box, flipped, None),
        info={
            "breast_box": box,
            "laterality": laterality,
            "flipped": flipped,
            "window_hw": PAPER_INPUT_SIZES["02_correlax"],
        },
    )


def imagenet_normalise(unit) -> np.ndarray:
    """A grey image in [0, 1] (H, W) -> three identical channels normalised with
    ``IMAGENET_NORMALISATION``, (H, W, 3) float32 channels-last: paper 03's input for
    whole images (:func:`pipeline_xai_iou`) and lesion patches (chapter 03)."""
    grey = np.asarray(unit, dtype=np.float32)
    if grey.ndim != 2:
        raise ValueError(f"imagenet_normalise needs a 2-D grey image, got shape {grey.shape}")
    mean = np.asarray(IMAGENET_NORMALISATION["mean"], dtype=np.float32)
    std = np.asarray(IMAGENET_NORMALISATION["std"], dtype=np.float32)
    return ((np.repeat(grey[:, :, None], 3, axis=2) - mean) / std).astype(np.float32)


def pipeline_xai_iou(
    img, laterality: str | None, *, size_hw=PAPER_INPUT_SIZES["03_xai_iou"]["whole"]
) -> PipelineResult:
    """Paper 03 §3.2.1/§3.2.3 whole-image preprocessing (chapters 00, 03).

    Min-max -> threshold (Otsu) + connected components -> breast box -> crop -> flip to
    left -> resize to 1024x512 (H x W) -> 3 channels normalised with ``IMAGENET_NORMALISATION``
    (assumed: the paper only says "normalization" of ImageNet-pretrained torchvision models).
    ``laterality=None`` infers it with ``infer_laterality``. Steps: ``unit``,
    ``breast_mask``, ``cropped``, ``flipped``, ``resized`` (H, W) in [0, 1], ``normalised``
    (H, W, 3) float32 channels-last (transpose to CHW for torch).
    """
    size_hw = as_hw(size_hw, "size_hw")
    unit = scale_to_unit(_as_mammogram(img))
    mask = otsu_breast_mask(unit)
    laterality = infer_laterality(unit, mask=mask) if laterality is None else laterality
    check_laterality(laterality)
    box = breast_box(unit, mask=mask)
    cropped = crop(unit, box)
    flipped, was_flipped = flip_to_laterality(cropped, laterality)
    resized = np.clip(resize(flipped, size_hw, interpolation="area"), 0.0, 1.0)
    normalised = imagenet_normalise(resized)
    steps = {
        "unit": unit,
        "breast_mask": mask,
        "cropped": cropped,
        "flipped": flipped,
        "resized": resized,
        "normalised": normalised,
    }
    return PipelineResult(
        output=normalised,
        steps=steps,
        box_transform=BoxTransform(unit.shape, box, was_flipped, size_hw),
        info={
            "breast_box": box,
            "laterality": laterality,
            "flipped": was_flipped,
            "norm_stats": IMAGENET_NORMALISATION,
        },
    )


def pipeline_multitask(
    img, *, size_hw=PAPER_INPUT_SIZES["04_multitask_fusion"]["findings"]
) -> PipelineResult:
    """Paper 04 §III-A preprocessing (chapter 04): min-max to [0, 1] -> breast segmented
    with a non-learning method (Otsu + largest component; the paper follows Shen et al.'s
    End2End) -> background cleaned (set to 0 outside the breast) -> bicubic resize of the
    whole image to ``size_hw`` (no crop and no flip: the four-view density model keeps each
    breast where it lies). Steps: ``unit``, ``breast_mask``, ``cleaned``, ``resized`` (H, W)
    in [0, 1] (clipped after the bicubic overshoot) and ``breast`` (the mask at
    ``size_hw``). Each model scales ``resized`` its own way (§III-A.1: density x 255;
    §III-A.2: findings z-scored per image).
    """
    size_hw = as_hw(size_hw, "size_hw")
    unit = scale_to_unit(_as_mammogram(img))
    mask = otsu_breast_mask(unit)
    cleaned = np.where(mask, unit, 0.0).astype(np.float32)
    resized = np.clip(resize(cleaned, size_hw, interpolation="cubic"), 0.0, 1.0)
    breast = resize(mask, size_hw, interpolation="nearest")
    steps = {
        "unit": unit,
        "breast_mask": mask,
        "cleaned": cleaned,
        "resized": resized,
        "breast": breast,
    }
    return PipelineResult(
        output=resized,
        steps=steps,
        box_transform=BoxTransform(unit.shape, None, False, size_hw),
        info={},
    )


def pipeline_domain_shift(
    img, featurewise_mean: float | None = None, *, size_hw=PAPER_INPUT_SIZES["05_domain_shift"]
) -> PipelineResult:
    """Paper 05 §4.2 / End2End preprocessing (chapters 00, 05).

    Min-max to [0, 1] (as the End2End inference container's ImageMagick ``auto_level``) ->
    resize to 1152x896 (H x W) -> x255 (End2End's ``--rescale-factor 255/65535`` applied to
    the min-max scaled 16-bit image) -> replicate to 3 channels -> subtract the featurewise
    mean. The paper uses the training-split mean (``featurewise_mean(...)``); with None the
    mean of this image is used (per-image centring, a stand-in). Steps: ``unit``,
    ``resized`` (H, W) in [0, 1], ``scaled_255`` (H, W) in [0, 255], ``rgb`` (H, W, 3),
    ``centred`` (H, W, 3).
    """
    size_hw = as_hw(size_hw, "size_hw")
    unit = scale_to_unit(_as_mammogram(img))
    resized = np.clip(resize(unit, size_hw, interpolation="area"), 0.0, 1.0)
    scaled = (resized * 255.0).astype(np.float32)
    rgb = np.repeat(scaled[:, :, None], 3, axis=2)
    if featurewise_mean is None:
        mean = float(scaled.mean())
    else:
        mean = _finite_number(featurewise_mean, "featurewise_mean")
    centred = (rgb - np.float32(mean)).astype(np.float32)
    steps = {"unit": unit, "resized": resized, "scaled_255": scaled, "rgb": rgb, "centred": centred}
    return PipelineResult(
        output=centred,
        steps=steps,
        box_transform=BoxTransform(unit.shape, None, False, size_hw),
        info={"featurewise_mean": mean},
    )


#: BiomedCLIP's image statistics (its open_clip_config.json preprocess_cfg: OpenAI CLIP's).
CLIP_NORMALISATION: dict = {
    "mean": (0.48145466, 0.4578275, 0.40821073),
    "std": (0.26862954, 0.26130258, 0.27577711),
}


def pipeline_density_clip(
    img, *, size: int = PAPER_INPUT_SIZES["01_density_clip"][0], norm=CLIP_NORMALISATION
) -> PipelineResult:
    """Paper 01 §2.2 preprocessing (chapter 01): min-max -> burned-in text and markers
    removed (everything outside the Otsu breast mask set to 0, the breast min-max scaled on
    its own pixels) -> crop to the breast ->
    resize to ``size`` x ``size`` (the ViT's square input; the paper's 224) -> 3 channels
    normalised with ``norm`` (BiomedCLIP's mean and std; ``Clip.mean`` / ``Clip.std`` for
    another model). Steps: ``unit``, ``breast_mask``, ``text_removed``, ``cropped``,
    ``resized`` (size, size) in [0, 1], ``normalised`` (3, size, size), channels first as
    the model takes it.
    """
    size = as_hw((size, size), "size")[0]
    unit = scale_to_unit(_as_mammogram(img))
    mask = otsu_breast_mask(unit)
    # text and markers removed, and the breast's own range stretched to [0, 1], so a label
    # brighter than the tissue does not darken it
    clean = remove_burned_in_text(scale_to_unit(unit, mask=mask), mask)
    box = breast_box(unit, mask=mask)
    cropped = crop(clean, box)
    resized = np.clip(resize(cropped, (size, size), interpolation="area"), 0.0, 1.0)
    mean = np.asarray(norm["mean"], dtype=np.float32)[:, None, None]
    std = np.asarray(norm["std"], dtype=np.float32)[:, None, None]
    normalised = ((resized[None] - mean) / std).astype(np.float32)
    steps = {"unit": unit, "breast_mask": mask, "text_removed": clean, "cropped": cropped}
    steps |= {"resized": resized, "normalised": normalised}
    return PipelineResult(
        output=normalised,
        steps=steps,
        box_transform=BoxTransform(unit.shape, box, False, (size, size)),
        info={"breast_box": box, "norm_stats": {k: tuple(v) for k, v in norm.items()}},
    )
