"""Breast ROIs ready for crops and sliding windows: a manifest row -> paper 02's
preprocessing (:func:`~mammo_helpers.preprocess.pipeline_correlax`: CLAHE fusion and the Otsu
ROI crop) with its findings and breast mask moved into ROI coordinates, and, for the
phantom, the lesion masks. Chapters 02 and 03.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from mammo_helpers import io
from mammo_helpers.boxes import BoxTransform
from mammo_helpers.preprocess.pipelines import pipeline_correlax

__all__ = ["Roi", "load_roi", "load_rois"]


@dataclass
class Roi:
    """One image's breast ROI: ``image`` (h, w, 3) float32 in [0, 1] (original, CLAHE 1.0,
    CLAHE 2.0), ``breast`` (h, w) bool, ``findings`` in ROI pixels, ``lesion_masks`` one
    (h, w) bool mask per label where the source ships masks (the phantom), ``transform``
    from the stored image to the ROI."""

    image_id: str
    patient_id: str
    site: str | None
    image: np.ndarray
    breast: np.ndarray
    findings: list[dict]
    transform: BoxTransform
    lesion_masks: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def hw(self) -> tuple[int, int]:
        return self.image.shape[:2]

    def boxes(self, label: str) -> np.ndarray:
        """(K, 4) boxes of ``label`` in ROI pixels (K may be 0)."""
        rows = [[f["xmin"], f["ymin"], f["xmax"], f["ymax"]] for f in self.findings]
        keep = [f["label"] == label for f in self.findings]
        return np.asarray([r for r, k in zip(rows, keep, strict=True) if k], float).reshape(-1, 4)

    @property
    def labels(self) -> list[str]:
        """The finding labels present, each once, in the order they appear."""
        return list(dict.fromkeys(f["label"] for f in self.findings))


def _lesion_masks(findings, root: Path | None, box, hw) -> dict[str, np.ndarray]:
    """Union of the findings' mask files per label, cut to the ROI box."""
    import cv2

    x0, y0, x1, y1 = box
    out: dict[str, np.ndarray] = {}
    for f in findings:
        if root is None or not f.get("mask_path"):
            continue
        path = root / f["mask_path"]
        full = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if full is None:
            raise FileNotFoundError(
                f"lesion mask {path} of a {f['label']} is missing or unreadable"
            )
        cut = full[y0:y1, x0:x1] > 0
        out[f["label"]] = out.get(f["label"], np.zeros(hw, bool)) | cut
    return out


def load_roi(row, *, cohort_root=None) -> Roi:
    """The ROI of one manifest row (a namedtuple or Series with ``path``, ``image_id``,
    ``patient_id``, ``findings``); lesion masks are read when ``cohort_root`` is given and
    the findings carry ``mask_path``."""
    result = pipeline_correlax(io.read_dicom(row.path).pixels)
    x0, y0, x1, y1 = result.info["breast_box"]
    breast = np.ascontiguousarray(result["breast_mask"][y0:y1, x0:x1])
    image = result.output.astype(np.float32)
    root = None if cohort_root is None else Path(cohort_root)
    findings = list(row.findings)
    return Roi(
        image_id=str(row.image_id),
        patient_id=str(row.patient_id),
        site=getattr(row, "site", None),
        image=image,
        breast=breast,
        findings=result.box_transform.findings(findings),
        transform=result.box_transform,
        lesion_masks=_lesion_masks(findings, root, (x0, y0, x1, y1), breast.shape),
    )


def load_rois(manifest: pd.DataFrame, *, progress: bool = False) -> dict[str, Roi]:
    """:func:`load_roi` of every row, keyed by image id; the phantom's lesion masks come
    from the manifest's ``cohort_root``."""
    from tqdm.auto import tqdm

    root = manifest.attrs.get("cohort_root")
    rows = manifest.itertuples(index=False)
    bar = tqdm(rows, total=len(manifest), desc="ROIs", disable=not progress, leave=False)
    return {str(r.image_id): load_roi(r, cohort_root=root) for r in bar}
