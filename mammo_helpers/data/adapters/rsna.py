"""RSNA Screening Mammography Breast Cancer Detection (Kaggle) -> manifest (notebooks 00, 01, 05).

Layout under ``root``: ``train.csv`` and ``train_images/<patient_id>/<image_id>.dcm``.

Decisions:
- Views other than CC/MLO (AT, LM, ML, LMO: 38 of 54,706 images) are dropped with a reason.
- Density is given only for site 1; site-2 images keep a missing density (not dropped), so
  density experiments must filter on ``density.notna()``.
- No boxes: ``findings`` is always ``[]``; ``cancer`` comes from the ``cancer`` column.
- RSNA has one screening exam per patient and no study id: ``study_id = patient_id``.
- ``site = str(site_id)``, ``vendor = str(machine_id)`` (the machine id is the best vendor proxy
  the CSV has); ``birads``, ``biopsy``, ``invasive``, ``implant`` and
  ``difficult_negative_case`` are kept as optional columns.
- Image size and pixel spacing are not in the CSV and are left missing (reading 54k headers
  would dominate the load time; use ``mammo_helpers.io.read_dicom`` when an image is read).
"""

from __future__ import annotations

import os

from mammo_helpers.data.adapters._common import (
    LoadReport,
    as_root,
    clean,
    read_table,
    records,
    to_float,
    to_int,
)
from mammo_helpers.data.manifest import manifest_row

TRAIN_CSV = "train.csv"
TRAIN_COLUMNS = (
    "site_id",
    "patient_id",
    "image_id",
    "laterality",
    "view",
    "age",
    "cancer",
    "biopsy",
    "invasive",
    "BIRADS",
    "implant",
    "density",
    "machine_id",
    "difficult_negative_case",
)


def _bool(value) -> bool | None:
    text = clean(value)
    if text is None:
        return None
    return text.lower() in ("true", "1", "1.0")


def load_rsna(root: str | os.PathLike, *, require_files: bool = False):
    """Manifest of the RSNA training set (one row per CC/MLO image).

    ``require_files=True`` drops (with a reason) images whose DICOM is not under ``root``.
    """
    root = as_root(root, "RSNA")
    report = LoadReport("rsna", "load_rsna")
    table = read_table(root / TRAIN_CSV, TRAIN_COLUMNS, what="RSNA train.csv")
    rows: list[dict] = []
    seen: set[str] = set()
    for idx, rec in records(table):
        patient_id, image_id = clean(rec["patient_id"]), clean(rec["image_id"])
        where = {"source_file": TRAIN_CSV, "source_row": idx, "image_id": image_id}
        if patient_id is None or image_id is None:
            report.drop("missing patient_id or image_id", level="row", **where)
            continue
        if image_id in seen:
            report.drop("duplicate image_id", **where)
            continue
        laterality, view = clean(rec["laterality"]), clean(rec["view"])
        if not report.accept_view(laterality, view, **where):
            continue
        density = clean(rec["density"])
        if density is not None and density not in ("A", "B", "C", "D"):
            report.note(f"density {density!r} set to missing")
            density = None
        path = root / "train_images" / patient_id / f"{image_id}.dcm"
        if require_files and not path.is_file():
            report.drop("image file not found", **where)
            continue
        seen.add(image_id)
        rows.append(
            manifest_row(
                patient_id=patient_id,
                study_id=patient_id,
                image_id=image_id,
                path=path,
                laterality=laterality,
                view=view,
                site=clean(rec["site_id"]) or "unknown",
                vendor=clean(rec["machine_id"]) or "unknown",
                density=density,
                age=to_float(rec["age"]),
                cancer=to_int(rec["cancer"]),
                birads=to_int(rec["BIRADS"]),
                biopsy=to_int(rec["biopsy"]),
                invasive=to_int(rec["invasive"]),
                implant=to_int(rec["implant"]),
                difficult_negative_case=_bool(rec["difficult_negative_case"]),
                split="train",
            )
        )
    return report.finish(
        rows,
        int_columns=("birads", "biopsy", "invasive", "implant"),
        bool_columns=("difficult_negative_case",),
    )
