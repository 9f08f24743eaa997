"""VinDr-Mammo (PhysioNet 1.0.0) -> manifest (notebook 00 data; notebooks 02/03 use the boxes).

Layout under ``root``::

    breast-level_annotations.csv   one row per image (BI-RADS, density, split, size)
    finding_annotations.csv        one row per box, or one 'No Finding' row per image
    images/<study_id>/<image_id>.dicom

Decisions:
- VinDr has one study per patient and no patient identifier, so ``patient_id = study_id``.
- No pathology: ``malignant`` is ``None`` for every finding and ``cancer`` is missing; the
  image-level ``breast_birads`` is kept as the integer column ``birads`` and each finding keeps
  its ``finding_birads`` number as the string key ``birads``.
- ``finding_categories`` is a Python list literal (``"['Suspicious Calcification', 'Mass']"``);
  a box row with several categories gives one finding per category with the same box.
- Boxes are clipped to the image (20 real boxes reach past the border); clipped boxes are
  counted in ``df.attrs['notes']``.
- ``split``: 'training' -> 'train', 'test' stays 'test'.
- Views other than ``views`` (default CC/MLO; ``views=None`` keeps every code of
  ``vocab.ALL_VIEWS``) are dropped with a reason.

Bad cells (the rule of :mod:`mammo_helpers.data.adapters._common`):
- dropped rows / images: missing ``study_id`` or ``image_id`` (level 'row'), a repeated
  ``image_id``, a view or laterality outside the vocabulary, a missing DICOM with
  ``require_files=True``; a finding row whose image was not kept or whose
  ``finding_categories`` is not a list literal (level 'row'); an unknown category, or a box
  whose coordinates are missing or not numbers (level 'finding');
- set to missing (level 'value'): ``breast_density`` other than ``DENSITY A``-``D``,
  ``breast_birads`` / ``finding_birads`` other than ``BI-RADS 0``-``6``, ``height`` /
  ``width`` that are not positive integers (the boxes of such an image are then clipped to
  ``[0, 65535]`` only).
"""

from __future__ import annotations

import ast
import os

import numpy as np
import pandas as pd

from mammo_helpers.data.adapters._common import (
    LoadReport,
    as_root,
    boxed_finding,
    file_check,
    first_failure,
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

BREAST_CSV = "breast-level_annotations.csv"
FINDING_CSV = "finding_annotations.csv"
BREAST_COLUMNS = (
    "study_id",
    "series_id",
    "image_id",
    "laterality",
    "view_position",
    "height",
    "width",
    "breast_birads",
    "breast_density",
    "split",
)
FINDING_COLUMNS = (
    "study_id",
    "image_id",
    "finding_categories",
    "finding_birads",
    "xmin",
    "ymin",
    "xmax",
    "ymax",
)
BOX_COLUMNS = ("xmin", "ymin", "xmax", "ymax")

#: VinDr category -> (canonical label, subtype or None).
VINDR_LABELS = {
    "Mass": ("mass", None),
    "Suspicious Calcification": ("calcification", None),
    "Asymmetry": ("asymmetry", None),
    "Focal Asymmetry": ("asymmetry", "focal"),
    "Global Asymmetry": ("asymmetry", "global"),
    "Architectural Distortion": ("architectural_distortion", None),
    "Suspicious Lymph Node": ("lymph_node", None),
    "Skin Thickening": ("skin_thickening", None),
    "Nipple Retraction": ("retraction", "nipple"),
    "Skin Retraction": ("retraction", "skin"),
}
NO_FINDING = "No Finding"
SPLITS = {"training": "train", "test": "test"}


def parse_categories(text: str | None) -> list[str]:
    """``"['Mass', 'Suspicious Calcification']"`` -> list of category names.

    ``ValueError`` (or ``SyntaxError``) for text that is not a string or a list / tuple literal.
    """
    if text is None:
        return []
    value = ast.literal_eval(text)
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list | tuple):
        raise ValueError(f"finding_categories {text!r} is not a list of names")
    return [str(v).strip() for v in value]


def _after_prefix(column: pd.Series, prefix: str) -> tuple[pd.Series, np.ndarray]:
    """``('BI-RADS 4' -> '4', present mask)``; NaN where the cell lacks the prefix."""
    cells = text(column)
    has = cells.str.upper().str.startswith(prefix).fillna(False).to_numpy()
    rest = cells.str.slice(len(prefix)).str.strip().where(has)
    return rest, cells.notna().to_numpy()


def _density(column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    rest, present = _after_prefix(column, "DENSITY")
    letter = rest.str.upper()
    ok = letter.isin(DENSITIES).to_numpy()
    return objects(letter.where(ok)), present & ~ok


def _birads(column: pd.Series) -> tuple[np.ndarray, pd.Series, np.ndarray]:
    """(integer values, the number as text, bad mask) of ``'BI-RADS <0-6>'`` cells."""
    rest, present = _after_prefix(column, "BI-RADS")
    values, _ = numbers(rest, integer=True, low=0, high=6)
    ok = ~np.isnan(values)
    return values, rest.where(ok), present & ~ok


def load_vindr(
    root: str | os.PathLike,
    *,
    require_files: bool = False,
    views: tuple[str, ...] | None = VIEWS,
):
    """Manifest of VinDr-Mammo (one row per image); see the module docstring for the rules.

    ``require_files=True`` drops (with a reason) images whose DICOM is not under ``root``;
    ``views`` chooses the view codes kept (``None``: every code in ``vocab.ALL_VIEWS``).
    """
    root = as_root(root, "VinDr-Mammo")
    views = resolve_views(views)
    report = LoadReport("vindr", "load_vindr", in_file_order=True)
    breast = read_table(root / BREAST_CSV, BREAST_COLUMNS, what="VinDr-Mammo breast-level CSV")
    finding = read_table(root / FINDING_CSV, FINDING_COLUMNS, what="VinDr-Mammo finding CSV")
    report.stage = 0
    images = _images(root, breast, report, views, require_files)
    report.stage = 1
    findings = _findings(finding, images, report)
    images["findings"] = [findings.get(i, []) for i in images["image_id"]]
    return report.finish(manifest_rows(images), int_columns=("birads",))


def _images(root, breast, report, views, require_files) -> dict[str, list]:
    """Manifest columns of the kept breast-level rows; drops the others with their reason."""
    rows = breast.index.to_numpy()
    image_id, study_id = text(breast["image_id"]), text(breast["study_id"])
    laterality, view = text(breast["laterality"]), text(breast["view_position"])
    has_ids = (image_id.notna() & study_id.notna()).to_numpy()
    paths = joined_paths(root / "images", study_id, image_id + ".dicom")
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
        missing="missing study_id or image_id",
        source_file=BREAST_CSV,
    )

    density, bad_density = _density(breast["breast_density"])
    birads, _, bad_birads = _birads(breast["breast_birads"])
    size = {}
    for col in ("height", "width"):
        values, bad = numbers(breast[col], integer=True, low=1)
        report.bad_values(
            bad & kept,
            col,
            breast[col],
            "is not a positive integer",
            source_file=BREAST_CSV,
            image_ids=ids,
        )
        size[col] = int_values(values)
    report.bad_values(
        bad_birads & kept,
        "breast_birads",
        breast["breast_birads"],
        "is not BI-RADS 0-6",
        source_file=BREAST_CSV,
        image_ids=ids,
    )
    report.bad_values(
        bad_density & kept,
        "breast_density",
        breast["breast_density"],
        "is not DENSITY A-D",
        source_file=BREAST_CSV,
        image_ids=ids,
    )
    split = text(breast["split"])
    split = split.map(SPLITS).fillna(split)
    study = objects(study_id)[kept]
    return {
        # VinDr-Mammo has exactly one study per patient and no patient id: reuse study_id.
        "patient_id": study,
        "study_id": study,
        "image_id": ids[kept],
        "path": paths[kept],
        "laterality": objects(laterality)[kept],
        "view": objects(view)[kept],
        "site": np.full(kept.sum(), "vindr", dtype=object),
        "density": density[kept],
        "rows": size["height"][kept],
        "cols": size["width"][kept],
        "cancer": np.full(kept.sum(), None, dtype=object),
        "birads": int_values(birads)[kept],
        "split": objects(split)[kept],
    }


def _findings(finding: pd.DataFrame, images: dict, report: LoadReport) -> dict[str, list]:
    """Finding dicts per kept image id, in file order; drops rows and findings with reasons."""
    rows = finding.index.to_numpy()
    image_id = text(finding["image_id"])
    ids = objects(image_id)
    sizes = dict(
        zip(images["image_id"], zip(images["rows"], images["cols"], strict=True), strict=True)
    )
    known = pd.Index(ids).isin(list(sizes))
    report.drop_many(
        rows[~known],
        "finding row for an image not kept from the breast-level CSV",
        level="row",
        source_file=FINDING_CSV,
        image_ids=ids[~known],
    )
    cells = objects(text(finding["finding_categories"]))
    parsed: dict = {None: []}
    for value in set(cells[known]) - {None}:
        try:
            parsed[value] = parse_categories(value)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            parsed[value] = None
    categories = [parsed.get(v, []) for v in cells]
    unparseable = known & np.array([c is None for c in categories], dtype=bool)
    report.drop_many(
        rows[unparseable],
        "unparseable finding_categories",
        level="row",
        source_file=FINDING_CSV,
        image_ids=ids[unparseable],
    )
    real = np.array([bool(c) and c != [NO_FINDING] for c in categories], dtype=bool)
    boxed = known & ~unparseable & real
    _, birads_text, bad_birads = _birads(finding["finding_birads"])
    report.bad_values(
        bad_birads & boxed,
        "finding_birads",
        finding["finding_birads"],
        "is not BI-RADS 0-6",
        source_file=FINDING_CSV,
        image_ids=ids,
    )
    coords = {c: numbers(finding[c]) for c in BOX_COLUMNS}
    raw = {c: objects(finding[c]) for c in BOX_COLUMNS}
    birads_text = objects(birads_text)
    out: dict[str, list] = {}
    for pos in np.flatnonzero(boxed):
        row, image = int(rows[pos]), ids[pos]
        where = {"source_file": FINDING_CSV, "source_row": row, "image_id": image}
        box = [coords[c][0][pos] for c in BOX_COLUMNS]
        bad = next((c for c in BOX_COLUMNS if coords[c][1][pos]), None)
        birads = birads_text[pos]
        for category in categories[pos]:
            if category == NO_FINDING:
                continue
            if category not in VINDR_LABELS:
                report.drop(f"unknown finding category {category!r}", level="finding", **where)
                continue
            label, subtype = VINDR_LABELS[category]
            if bad is not None:
                cell = raw[bad][pos]
                report.drop(
                    f"{label} finding: {bad} {cell!r} is not a number", level="finding", **where
                )
                continue
            rows_px, cols_px = sizes[image]
            found = boxed_finding(
                label,
                box,
                rows=rows_px,
                cols=cols_px,
                report=report,
                malignant=None,
                source_label=category,
                subtype=subtype,
                birads=birads,
                **where,
            )
            if found is not None:
                out.setdefault(image, []).append(found)
    return out
