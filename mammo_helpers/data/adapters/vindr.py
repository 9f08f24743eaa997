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
"""

from __future__ import annotations

import ast
import os

from mammo_helpers.data.adapters._common import (
    LoadReport,
    as_root,
    boxed_finding,
    clean,
    read_table,
    records,
    to_float,
    to_int,
)
from mammo_helpers.data.manifest import manifest_row

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


def _number_after(text: str | None, prefix: str) -> str | None:
    """'BI-RADS 4' -> '4', 'DENSITY C' -> 'C' (``None`` if missing or not of that form)."""
    if text is None or not text.upper().startswith(prefix):
        return None
    return text[len(prefix) :].strip() or None


def parse_categories(text: str | None) -> list[str]:
    """``"['Mass', 'Suspicious Calcification']"`` -> list of category names."""
    if text is None:
        return []
    value = ast.literal_eval(text)
    if isinstance(value, str):
        return [value]
    return [str(v).strip() for v in value]


def load_vindr(root: str | os.PathLike, *, require_files: bool = False):
    """Manifest of VinDr-Mammo (one row per image); see the module docstring for the rules.

    ``require_files=True`` drops (with a reason) images whose DICOM is not under ``root``.
    """
    root = as_root(root, "VinDr-Mammo")
    report = LoadReport("vindr", "load_vindr")
    breast = read_table(root / BREAST_CSV, BREAST_COLUMNS, what="VinDr-Mammo breast-level CSV")
    finding = read_table(root / FINDING_CSV, FINDING_COLUMNS, what="VinDr-Mammo finding CSV")

    rows: dict[str, dict] = {}
    for idx, rec in records(breast):
        image_id = clean(rec["image_id"])
        study_id = clean(rec["study_id"])
        where = {"source_file": BREAST_CSV, "source_row": idx, "image_id": image_id}
        if image_id is None or study_id is None:
            report.drop("missing study_id or image_id", level="row", **where)
            continue
        if image_id in rows:
            report.drop("duplicate image_id", **where)
            continue
        laterality, view = clean(rec["laterality"]), clean(rec["view_position"])
        if not report.accept_view(laterality, view, **where):
            continue
        path = root / "images" / study_id / f"{image_id}.dicom"
        if require_files and not path.is_file():
            report.drop("image file not found", **where)
            continue
        birads = _number_after(clean(rec["breast_birads"]), "BI-RADS")
        split = clean(rec["split"])
        rows[image_id] = manifest_row(
            # VinDr-Mammo has exactly one study per patient and no patient id: reuse study_id.
            patient_id=study_id,
            study_id=study_id,
            image_id=image_id,
            path=path,
            laterality=laterality,
            view=view,
            site="vindr",
            density=_number_after(clean(rec["breast_density"]), "DENSITY"),
            rows=to_int(rec["height"]),
            cols=to_int(rec["width"]),
            cancer=None,
            birads=to_int(birads),
            split=SPLITS.get(split or "", split),
        )

    for idx, rec in records(finding):
        image_id = clean(rec["image_id"])
        where = {"source_file": FINDING_CSV, "source_row": idx, "image_id": image_id}
        row = rows.get(image_id or "")
        if row is None:
            report.drop(
                "finding row for an image not kept from the breast-level CSV", level="row", **where
            )
            continue
        try:
            categories = parse_categories(clean(rec["finding_categories"]))
        except (ValueError, SyntaxError):
            report.drop("unparseable finding_categories", level="row", **where)
            continue
        if not categories or categories == [NO_FINDING]:
            continue
        box = [to_float(rec[c]) for c in ("xmin", "ymin", "xmax", "ymax")]
        birads = _number_after(clean(rec["finding_birads"]), "BI-RADS")
        for category in categories:
            if category == NO_FINDING:
                continue
            if category not in VINDR_LABELS:
                report.drop(f"unknown finding category {category!r}", level="finding", **where)
                continue
            label, subtype = VINDR_LABELS[category]
            found = boxed_finding(
                label,
                box,
                rows=row["rows"],
                cols=row["cols"],
                report=report,
                malignant=None,
                source_label=category,
                subtype=subtype,
                birads=birads,
                **where,
            )
            if found is not None:
                row["findings"].append(found)

    return report.finish(list(rows.values()), int_columns=("birads",))
