"""Paper 03's two inputs from a manifest (Sam Millan 2023, §3.1-3.2.3; chapter 03): whole
images, malignant against normal, through :func:`~mammo_helpers.preprocess.pipeline_xai_iou`
with their exact lesion and breast masks moved like the image; and, for the patch
classifier, one lesion-centred patch per malignant finding plus one normal patch from the
same image.

Chapter 05 takes its image label from :func:`malignancy_label`. Malignant means a finding with ``malignant=True`` (the phantom, CBIS-DDSM, EMBED) or, where
a dataset has no pathology (VinDr-Mammo), a finding of BI-RADS 4 or 5: a stated proxy.
Normal means an image without any finding and without a cancer flag. Images holding only
benign findings belong to neither class and are left out (counted by :func:`image_classes`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from mammo_helpers import io
from mammo_helpers.boxes import BoxTransform, as_boxes, box_iou, boxes_from_findings, crop_around

from .geometry import resize, warp_like
from .pipelines import imagenet_normalise, pipeline_xai_iou

__all__ = [
    "Case",
    "PROXY_BIRADS",
    "balanced_ids",
    "image_classes",
    "is_malignant",
    "iter_cases",
    "lesion_patches",
    "load_case",
    "load_cases",
    "malignant_findings",
    "malignancy_label",
    "patch_sets",
    "study_images",
]

#: BI-RADS categories that stand in for malignancy where a dataset has no pathology.
PROXY_BIRADS = (4, 5)


def _birads(value) -> int | None:
    """The category number of a BI-RADS text ("BI-RADS 4", "4", "4A") or None."""
    match = re.search(r"\d", str(value)) if value is not None else None
    return int(match.group()) if match else None


def is_malignant(finding: dict) -> bool:
    """``malignant=True``, or, with no pathology (``None``), BI-RADS 4 or 5 (the proxy)."""
    flag = finding.get("malignant")
    if flag is not None and not (isinstance(flag, float) and math.isnan(flag)):
        return bool(flag)
    return _birads(finding.get("birads")) in PROXY_BIRADS


def malignant_findings(findings) -> list[dict]:
    """The malignant findings of one image (:func:`is_malignant`)."""
    return [f for f in findings if is_malignant(f)]


def malignancy_label(manifest: pd.DataFrame, where: str = "manifest") -> pd.Series:
    """Per image 1 or 0 (``Int64``): the image's ``cancer`` flag where the dataset gives
    one, else whether one of its findings is malignant (:func:`is_malignant`: pathology, or
    BI-RADS 4-5 as the proxy, e.g. INbreast). Chapter 05's image label (malignant against
    non-malignant views, Tables 2-4). A manifest without ``cancer`` or ``findings`` is an
    error naming ``where``."""
    missing = [c for c in ("cancer", "findings") if c not in manifest.columns]
    if missing:
        raise ValueError(f"{where}: no {' or '.join(missing)} column for a malignancy label")
    from_findings = manifest.findings.map(lambda fs: int(bool(malignant_findings(fs))))
    flag = manifest.cancer.astype("Float64")
    label = flag.where(flag.notna(), from_findings.astype("Float64"))
    return label.astype("Int64").rename("malignant")


def image_classes(manifest: pd.DataFrame) -> pd.Series:
    """Per image: 1 malignant, 0 normal (no finding, no cancer flag), NaN otherwise (only
    benign findings: left out of paper 03's two classes)."""
    if "findings" not in manifest.columns:
        raise ValueError("the manifest has no 'findings' column: paper 03 needs lesion boxes")
    malignant = manifest.findings.map(lambda fs: bool(malignant_findings(fs)))
    empty = manifest.findings.map(len) == 0
    if "cancer" in manifest.columns:
        empty &= manifest.cancer.fillna(0).astype(float) != 1
    out = pd.Series(np.nan, index=manifest.index, name="malignant")
    out[empty] = 0.0
    out[malignant] = 1.0
    return out


def study_images(manifest: pd.DataFrame, source: str) -> pd.DataFrame:
    """The images of paper 03's two classes with a ``malignant`` column (1 / 0); a source
    without any malignant finding (no lesion boxes, e.g. RSNA) is an error naming it."""
    classes = image_classes(manifest)
    if not (classes == 1).any():
        raise ValueError(
            f"{source}: no image holds a malignant finding with a box; paper 03 scores maps "
            "against lesion boxes (use a source with boxes: the phantom, vindr, cbis_ddsm)"
        )
    return manifest[classes.notna()].assign(malignant=classes.dropna().astype(int))


def balanced_ids(study: pd.DataFrame, split: str, *, seed: int = 0) -> list[str]:
    """Image ids of one split (column ``split``) for the whole-image task: every malignant
    image, then as many normal images drawn at random (all when there are fewer). A split
    without a malignant image is an error naming it."""
    part = study[study.split == split]
    malignant = part[part.malignant == 1]
    if malignant.empty:
        raise ValueError(f"the {split!r} split holds no malignant image: add patients or data")
    normal = part[part.malignant == 0]
    normal = normal.sample(min(len(malignant), len(normal)), random_state=seed)
    return [*map(str, malignant.image_id), *map(str, normal.image_id)]


@dataclass
class Case:
    """One image as paper 03 feeds it: ``image`` (3, H, W) float32 normalised, ``unit``
    (H, W) in [0, 1], ``breast`` and ``lesion`` (H, W) bool masks at the model input (the
    lesion mask is the union of the malignant findings' exact masks where the source ships
    them, else of their boxes), ``boxes`` (K, 4) malignant boxes at the input, and the
    cropped and flipped image at native resolution (``native``, ``native_boxes``) for
    patches, with its pixel spacing (``spacing_mm``: the manifest's, else the DICOM
    header's, else None). ``label`` 1 malignant, 0 normal."""

    image_id: str
    patient_id: str
    label: int
    image: np.ndarray
    unit: np.ndarray
    breast: np.ndarray
    lesion: np.ndarray
    boxes: np.ndarray
    native: np.ndarray | None
    native_breast: np.ndarray | None
    native_boxes: np.ndarray
    native_all_boxes: np.ndarray
    transform: BoxTransform
    spacing_mm: float | None = None
    info: dict = field(default_factory=dict)


def _mask_union(findings, root: Path | None, hw) -> np.ndarray | None:
    """Union of the findings' mask files (None when a finding has no mask file)."""
    import cv2

    out = np.zeros(hw, bool)
    for f in findings:
        if root is None or not f.get("mask_path"):
            return None
        path = root / f["mask_path"]
        mask = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if mask is None:
            raise FileNotFoundError(
                f"lesion mask {path} of a {f['label']} is missing or unreadable"
            )
        if mask.shape[:2] != tuple(hw):
            raise ValueError(f"lesion mask {path} is {mask.shape[:2]}, its image {tuple(hw)}")
        out |= mask > 0
    return out


def _box_union(boxes, hw) -> np.ndarray:
    out = np.zeros(hw, bool)
    for x0, y0, x1, y1 in as_boxes(boxes):
        out[int(math.floor(y0)) : int(math.ceil(y1)), int(math.floor(x0)) : int(math.ceil(x1))] = 1
    return out


def _spacing(*candidates) -> float | None:
    """The first finite positive spacing (mm) of the candidates, or None."""
    for value in candidates:
        if value is not None and math.isfinite(float(value)) and float(value) > 0:
            return float(value)
    return None


def load_case(
    row, *, size_hw, cohort_root=None, spacing_mm: float | None = None, native: bool = True
) -> Case:
    """A manifest row (``path``, ``image_id``, ``patient_id``, ``laterality``,
    ``findings``) -> :class:`Case` at ``size_hw`` (paper: 1024 x 512). The pixel spacing is
    the manifest's, else the DICOM header's, else ``spacing_mm`` (for sources whose files
    carry none: CBIS-DDSM's DICOMs have no PixelSpacing). With ``native=False`` the
    full-resolution image and breast mask are not kept (``None``: no patches can be cut),
    which is what a whole-image set at the paper scale can hold in memory."""
    dicom = io.read_dicom(row.path)
    res = pipeline_xai_iou(dicom.pixels, getattr(row, "laterality", None), size_hw=size_hw)
    malignant = malignant_findings(row.findings)
    hw = res["unit"].shape
    root = None if cohort_root is None else Path(cohort_root)
    full = _mask_union(malignant, root, hw)
    if full is None:
        full = _box_union(boxes_from_findings(malignant), hw)
    native_tf = BoxTransform(hw, res.box_transform.crop_box, res.box_transform.flip, None)
    return Case(
        image_id=str(row.image_id),
        patient_id=str(row.patient_id),
        label=int(bool(malignant)),
        image=np.ascontiguousarray(res.output.transpose(2, 0, 1)),
        unit=res["resized"].astype(np.float32),
        breast=warp_like(res["breast_mask"], res.box_transform),
        lesion=warp_like(full, res.box_transform),
        boxes=res.box_transform(boxes_from_findings(malignant))[0],
        native=res["flipped"].astype(np.float32) if native else None,
        native_breast=warp_like(res["breast_mask"], native_tf) if native else None,
        native_boxes=native_tf(boxes_from_findings(malignant))[0],
        native_all_boxes=native_tf(boxes_from_findings(row.findings))[0],
        transform=res.box_transform,
        spacing_mm=_spacing(
            getattr(row, "pixel_spacing_mm", None), dicom.pixel_spacing_mm, spacing_mm
        ),
        info={"laterality": res.info["laterality"], "flipped": res.info["flipped"]},
    )


def iter_cases(
    manifest: pd.DataFrame,
    *,
    size_hw,
    spacing_mm: float | None = None,
    native: bool = True,
    progress: bool = False,
):
    """:func:`load_case` of each row in turn, one image in memory at a time (chapter 03's
    patches from a second source); the phantom's lesion masks come from the manifest's
    ``cohort_root``."""
    from tqdm.auto import tqdm

    root = manifest.attrs.get("cohort_root")
    rows = manifest.itertuples(index=False)
    bar = tqdm(rows, total=len(manifest), desc="images", disable=not progress, leave=False)
    for r in bar:
        yield load_case(r, size_hw=size_hw, cohort_root=root, spacing_mm=spacing_mm, native=native)


def load_cases(
    manifest: pd.DataFrame,
    *,
    size_hw,
    spacing_mm: float | None = None,
    native: bool = True,
    progress: bool = False,
) -> dict[str, Case]:
    """:func:`iter_cases` of every row, keyed by image id (chapter 03)."""
    cases = iter_cases(
        manifest, size_hw=size_hw, spacing_mm=spacing_mm, native=native, progress=progress
    )
    return {c.image_id: c for c in cases}


def _patch(native: np.ndarray, box, size_px: int) -> np.ndarray:
    x0, y0, x1, y1 = box
    cut = native[y0:y1, x0:x1]
    return imagenet_normalise(resize(cut, (size_px, size_px))).transpose(2, 0, 1)


def _normal_box(case: Case, side: int, rng, tries: int = 200):
    """A ``side`` square inside the image, centred on a breast pixel, overlapping no
    finding box; None when ``tries`` draws all fail."""
    h, w = case.native.shape
    ys, xs = np.nonzero(case.native_breast)
    if side > min(h, w) or ys.size == 0:
        return None
    for _ in range(tries):
        i = int(rng.integers(ys.size))
        x0 = int(np.clip(xs[i] - side // 2, 0, w - side))
        y0 = int(np.clip(ys[i] - side // 2, 0, h - side))
        box = np.array([[x0, y0, x0 + side, y0 + side]], float)
        if not len(case.native_all_boxes) or box_iou(box, case.native_all_boxes).max() == 0:
            return x0, y0, x0 + side, y0 + side
    return None


def lesion_patches(
    case: Case, *, patch_mm: float, size_px: int, seed: int = 0
) -> tuple[list[np.ndarray], list[int], int]:
    """Paper 03 §3.1's patches of one malignant case: per malignant finding, a square of
    ``patch_mm`` (grown to 1.25 x the finding's larger side when the finding is bigger)
    centred on it, and a normal square of the same size from the same breast overlapping no
    finding, each resized to ``size_px`` and normalised. Returns ``(patches (3, s, s),
    labels, normal patches that found no room)``. Unlike chapter 00's learnability patches
    (:func:`mammo_helpers.learnability.lesion_patches`), the normal patch comes from the
    lesion's own breast, as in the paper."""
    if case.native is None:
        raise ValueError(
            f"image {case.image_id}: loaded without its full-resolution image (native=False); "
            "patches are cut from it"
        )
    spacing_mm = case.spacing_mm
    if spacing_mm is None:
        raise ValueError(
            f"image {case.image_id}: no pixel spacing in the manifest or the DICOM header; "
            "patches are cut at a physical size"
        )
    rng = np.random.default_rng([seed, int.from_bytes(case.image_id.encode()[-6:], "big")])
    patches, labels, missing = [], [], 0
    for box in case.native_boxes:
        extent_mm = 1.25 * max(box[2] - box[0], box[3] - box[1]) * spacing_mm
        crop = crop_around(box, case.native.shape, spacing_mm, size_mm=max(patch_mm, extent_mm))
        patches.append(_patch(case.native, crop, size_px))
        labels.append(1)
        normal = _normal_box(case, crop[2] - crop[0], rng)
        if normal is None:
            missing += 1
            continue
        patches.append(_patch(case.native, normal, size_px))
        labels.append(0)
    return patches, labels, missing


def patch_sets(
    cases, *, patch_mms, size_px: int, seed: int = 0
) -> dict[float, tuple[np.ndarray, np.ndarray, np.ndarray, int]]:
    """Paper 03 §3.1's patch set of some malignant cases (any iterable of :class:`Case`,
    e.g. :func:`iter_cases`) for each field of view in ``patch_mms``, in one pass over the
    cases (a lazy source reads each image once): :func:`lesion_patches` of each case,
    stacked. Returns ``{patch_mm: (x (N, 3, s, s) float32, y (N,), patient id per patch
    (N,), normal patches that found no room)}``. Chapter 03's patch classifier and its
    field-of-view choice; no field, or no patch at all, is an error."""
    patch_mms = list(patch_mms)
    if not patch_mms:
        raise ValueError("patch_sets: patch_mms is empty; give at least one field of view")
    acc = {mm: ([], [], [], [0]) for mm in patch_mms}
    for case in cases:
        for mm, (xs, ys, owners, missing) in acc.items():
            p, y, miss = lesion_patches(case, patch_mm=mm, size_px=size_px, seed=seed)
            xs += p
            ys += y
            owners += [case.patient_id] * len(y)
            missing[0] += miss
    if not acc[patch_mms[0]][0]:
        raise ValueError("patch_sets: no malignant finding with a box among the cases")
    return {
        mm: (np.stack(xs), np.array(ys), np.array(owners), missing[0])
        for mm, (xs, ys, owners, missing) in acc.items()
    }
