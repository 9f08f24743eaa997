"""Realism check of geometry: a lesion sits at the same distance from the nipple in CC and MLO.

Radiologists locate a lesion in the other view by its distance from the nipple; the two
views agree within about 10 mm. :func:`four_view_check` measures it on the stored images of
a cohort. Used by chapter 00.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from mammo_helpers.preprocess import otsu_breast_mask

#: CC and MLO nipple distances of one lesion agree within this many millimetres.
AGREEMENT_MM = 10.0
_COLUMNS = ["patient_id", "laterality", "lesion_id", "label", "CC", "MLO", "difference_mm"]


@dataclass(frozen=True)
class FourViewCheck:
    """Result of :func:`four_view_check`.

    ``table``: one row per lesion seen in both views of its breast (patient_id, laterality,
    lesion_id, label, CC and MLO nipple distance in mm, difference_mm).
    ``within_10mm``: share of lesions whose two distances agree within 10 mm (NaN without
    lesions); ``median_difference_mm``: the median difference (NaN without lesions).
    """

    table: pd.DataFrame
    within_10mm: float
    median_difference_mm: float


def nipple_distance_mm(image: np.ndarray, box, laterality: str, spacing_mm: float) -> float:
    """Distance from the nipple to a box centre along the chest-wall-to-nipple axis.

    The nipple is the breast pixel farthest from the chest wall (column 0 for a left breast,
    the last column for a right one) in the Otsu breast mask of ``image``.
    """
    mask = otsu_breast_mask(image)
    cols = np.flatnonzero(mask.any(axis=0))
    nipple_col = cols[-1] if laterality == "L" else cols[0]
    centre_col = (box[0] + box[2]) / 2
    return float(abs(nipple_col - centre_col) * spacing_mm)


def _distances(manifest: pd.DataFrame) -> list[dict]:
    """Nipple distance of every finding of ``manifest``, read from its stored image."""
    from mammo_helpers.io import read_dicom

    rows = []
    for rec in manifest[manifest.findings.map(len) > 0].itertuples():
        image = read_dicom(rec.path).pixels
        for f in rec.findings:
            box = (f["xmin"], f["ymin"], f["xmax"], f["ymax"])
            rows.append(
                {
                    "patient_id": rec.patient_id,
                    "laterality": rec.laterality,
                    "lesion_id": f.get("lesion_id"),
                    "label": f["label"],
                    "view": rec.view,
                    "distance_mm": nipple_distance_mm(
                        image, box, rec.laterality, rec.pixel_spacing_mm
                    ),
                }
            )
    return rows


def _pair_views(rows: list[dict]) -> pd.DataFrame:
    """One row per lesion with its CC and MLO distance (lesions seen in both views only)."""
    if not rows:
        return pd.DataFrame(columns=_COLUMNS)
    wide = pd.DataFrame(rows).pivot_table(
        index=["patient_id", "laterality", "lesion_id", "label"],
        columns="view",
        values="distance_mm",
        aggfunc="first",
    )
    wide = wide.reset_index()
    if not {"CC", "MLO"} <= set(wide.columns):
        return pd.DataFrame(columns=_COLUMNS)
    wide = wide.dropna(subset=["CC", "MLO"])
    wide["difference_mm"] = (wide["CC"] - wide["MLO"]).abs()
    wide.columns.name = None
    return wide[_COLUMNS].reset_index(drop=True)


def four_view_check(manifest: pd.DataFrame) -> FourViewCheck:
    """Nipple distance of every lesion seen in both views of its breast, measured on the
    stored images of ``manifest`` (target: CC and MLO agree within 10 mm)."""
    table = _pair_views(_distances(manifest))
    diff = table["difference_mm"].astype(float)
    return FourViewCheck(
        table=table,
        within_10mm=float((diff <= AGREEMENT_MM).mean()) if len(diff) else float("nan"),
        median_difference_mm=float(diff.median()) if len(diff) else float("nan"),
    )
