"""RSNA Screening Mammography Breast Cancer Detection (Kaggle) -> manifest (notebooks 00, 01, 05).

Layout under ``root``: ``train.csv`` and ``train_images/<patient_id>/<image_id>.dcm``.

Decisions:
- Views other than ``views`` (default CC/MLO, which drops AT, LM, ML, LMO: 38 of 54,706
  images) are dropped with a reason; ``views=None`` keeps every code of ``vocab.ALL_VIEWS``.
- Density is given only for site 1; site-2 images keep a missing density (not dropped), so
  density experiments must filter on ``density.notna()``.
- No boxes: ``findings`` is always ``[]``; ``cancer`` comes from the ``cancer`` column.
- RSNA has one screening exam per patient and no study id: ``study_id = patient_id``.
- ``site = str(site_id)``, ``vendor = str(machine_id)`` (the machine id is the best vendor proxy
  the CSV has); ``birads``, ``biopsy``, ``invasive``, ``implant`` and
  ``difficult_negative_case`` are kept as optional columns.
- Image size and pixel spacing are not in the CSV and are left missing (reading 54k headers
  would dominate the load time; use ``mammo_helpers.io.read_dicom`` when an image is read).

Bad cells (the rule of :mod:`mammo_helpers.data.adapters._common`):
- dropped: missing ``patient_id`` / ``image_id`` (level 'row'), a repeated ``image_id``, a
  view or laterality outside the vocabulary, a missing DICOM with ``require_files=True``;
- set to missing (level 'value'): ``density`` other than A-D, ``age`` that is not a number
  in 0-120, ``cancer`` / ``biopsy`` / ``invasive`` / ``implant`` other than 0/1, ``BIRADS``
  other than 0-6, ``difficult_negative_case`` other than True/False/1/0.
"""

from __future__ import annotations

import os

import numpy as np

from mammo_helpers.data.adapters._common import (
    LoadReport,
    as_root,
    codes,
    file_check,
    first_failure,
    float_values,
    int_values,
    joined_paths,
    keep_unique,
    manifest_rows,
    numbers,
    objects,
    read_table,
    resolve_views,
    text,
    view_checks,
)
from mammo_helpers.vocab import DENSITIES, VIEWS

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
#: Optional 0/1 columns kept as nullable integers.
FLAG_COLUMNS = ("biopsy", "invasive", "implant")
BOOLEANS = {"true": True, "1": True, "1.0": True, "false": False, "0": False, "0.0": False}


def load_rsna(
    root: str | os.PathLike,
    *,
    require_files: bool = False,
    views: tuple[str, ...] | None = VIEWS,
):
    """Manifest of the RSNA training set (one row per image of ``views``, default CC/MLO).

    ``require_files=True`` drops (with a reason) images whose DICOM is not under ``root``;
    ``views=None`` keeps every view code of ``vocab.ALL_VIEWS``.
    """
    root = as_root(root, "RSNA")
    views = resolve_views(views)
    report = LoadReport("rsna", "load_rsna", in_file_order=True)
    table = read_table(root / TRAIN_CSV, TRAIN_COLUMNS, what="RSNA train.csv")
    rows = table.index.to_numpy()
    patient_id, image_id = text(table["patient_id"]), text(table["image_id"])
    laterality, view = text(table["laterality"]), text(table["view"])
    has_ids = (patient_id.notna() & image_id.notna()).to_numpy()
    paths = joined_paths(root / "train_images", patient_id, image_id + ".dcm")
    checks = view_checks(laterality, view, views)
    if require_files:
        file_check(checks, has_ids, paths)
    reason = first_failure(checks, len(rows))
    kept, ids = keep_unique(
        report,
        rows,
        image_id,
        has_ids,
        reason,
        missing="missing patient_id or image_id",
        source_file=TRAIN_CSV,
    )

    def checked(column, values_bad, rule):
        values, bad = values_bad
        report.bad_values(
            bad & kept, column, table[column], rule, source_file=TRAIN_CSV, image_ids=ids
        )
        return values[kept]

    density = checked(
        "density",
        codes(table["density"], dict(zip(DENSITIES, DENSITIES, strict=True))),
        "is not A-D",
    )
    age = checked("age", numbers(table["age"], low=0, high=120), "is not an age in 0-120")
    cancer = checked("cancer", numbers(table["cancer"], integer=True, low=0, high=1), "is not 0/1")
    birads = checked(
        "BIRADS", numbers(table["BIRADS"], integer=True, low=0, high=6), "is not BI-RADS 0-6"
    )
    flags = {
        col: checked(col, numbers(table[col], integer=True, low=0, high=1), "is not 0/1")
        for col in FLAG_COLUMNS
    }
    lowered = text(table["difficult_negative_case"]).str.lower()
    difficult = checked(
        "difficult_negative_case", codes(lowered, BOOLEANS), "is not True/False/1/0"
    )
    patients = objects(patient_id)[kept]
    n = int(kept.sum())
    columns = {
        "patient_id": patients,
        "study_id": patients,
        "image_id": ids[kept],
        "path": paths[kept],
        "laterality": objects(laterality)[kept],
        "view": objects(view)[kept],
        "site": objects(text(table["site_id"]).fillna("unknown"))[kept],
        "vendor": objects(text(table["machine_id"]).fillna("unknown"))[kept],
        "density": density,
        "age": float_values(age),
        "cancer": int_values(cancer),
        "birads": int_values(birads),
        **{col: int_values(values) for col, values in flags.items()},
        "difficult_negative_case": difficult,
        "split": np.full(n, "train", dtype=object),
    }
    return report.finish(
        manifest_rows(columns),
        int_columns=("birads", *FLAG_COLUMNS),
        bool_columns=("difficult_negative_case",),
    )
