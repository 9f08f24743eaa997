"""EMBED Open Data (Emory) -> manifest (notebook 00 data; notebook 01 external density validation).

Inputs: ``EMBED_OpenData_clinical.csv`` (one row per finding) and
``EMBED_OpenData_metadata.csv`` (one row per DICOM), looked up in ``root/tables/`` and then
``root/``; images ``<cohort_N>/<empi_anon>/<acc_anon>/<SOPInstanceUID>.dcm`` under
``root/images/`` (the AWS bucket layout) or directly under ``root``.

Decisions:
- Images: ``FinalImageType`` '2D' -> modality DM, 'cview' (also spelled 'C-view') -> s2D; 3D
  and screensave (ROI_SSC / ROI_SS) rows are dropped with a reason, as are special views
  (``spot_mag == 1``), views other than CC/MLO and lateralities other than L/R.
- ``path``: ``anon_dicom_path`` is the path on Emory's server
  (``/mnt/NAS2/mammo/anon_dicom/cohort_1/...``); everything before the ``cohort_<n>`` folder is
  removed and the rest is resolved under ``root/images`` if that folder exists, else ``root``.
- Clinical rows are joined on ``acc_anon`` (and must agree on ``empi_anon``); a finding row
  applies to an image if ``side == ImageLateralityFinal`` or ``side`` is 'B' or missing
  (README section VIII). Images of exams missing from the clinical table are dropped.
- Density per exam: ``tissueden`` 1-4 -> A-D; 5 (normal male) -> missing, counted in the notes.
- Boxes: ``ROI_coords`` holds one ``[ymin, xmin, ymax, xmax]`` per ROI (y first!), in DICOM
  pixels. The ROI -> finding link is not in the data: an ROI takes the labels of the single
  applicable finding row that has descriptors; with several such rows, a row with exactly the
  image's side wins, otherwise identical rows are merged and differing ones make the ROI
  ambiguous (dropped with a reason).
- Labels from the descriptor codes as in the official sample notebook: mass = ``massshape`` in
  G,R,O,X,N,Y,D,L or ``massmargin`` in D,U,M,I,S or ``massdens`` in +,-,=; asymmetry =
  ``massshape`` in T,B,S,F,V; architectural distortion = ``massshape`` in Q,A; calcification =
  any of ``calcfind`` / ``calcdistri`` / ``calcnumber`` present. One row can give several labels.
- ``path_severity`` 0/1 (invasive / in situ) -> ``malignant=True``; 2-5 -> ``False``; 6
  (non-breast cancer) and missing -> ``None``. ``cancer`` = 1 if any applicable row is 0/1,
  else 0 if any applicable row has a severity 0-5, else missing.
- Optional columns: ``birads`` (highest ``asses`` of the applicable rows as 0-6), ``cohort``
  and ``study_description`` (clinical ``desc``: screening vs diagnostic).
"""

from __future__ import annotations

import math
import os
import re
from collections import defaultdict
from pathlib import Path, PurePosixPath

from mammo_helpers.data.adapters._common import (
    DENSITY_FROM_INT,
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

CLINICAL_CSV = "EMBED_OpenData_clinical.csv"
METADATA_CSV = "EMBED_OpenData_metadata.csv"
CLINICAL_COLUMNS = (
    "empi_anon",
    "acc_anon",
    "tissueden",
    "side",
    "massshape",
    "massmargin",
    "massdens",
    "calcfind",
    "calcdistri",
    "path_severity",
)
METADATA_COLUMNS = (
    "empi_anon",
    "acc_anon",
    "anon_dicom_path",
    "FinalImageType",
    "ImageLateralityFinal",
    "ViewPosition",
    "spot_mag",
    "ROI_coords",
)
CLINICAL_OPTIONAL = ("calcnumber", "asses", "age_at_study", "desc")
METADATA_OPTIONAL = ("Rows", "Columns", "Manufacturer")
IMAGE_TYPES = {"2d": "DM", "cview": "s2D"}
MASS_SHAPES = {
    "G": "generic",
    "R": "round",
    "O": "oval",
    "X": "irregular",
    "N": "intramammary_lymph_node",
    "Y": "lymph_node",
    "D": None,
    "L": None,
}
MASS_MARGINS = {"D", "U", "M", "I", "S"}
MASS_DENSITIES = {"+", "-", "="}
ASYMMETRY_SHAPES = {"T": "tubular", "B": "global", "S": None, "F": "focal", "V": "developing"}
DISTORTION_SHAPES = {"Q": "questioned", "A": None}
ASSESSMENT = {"A": 0, "N": 1, "B": 2, "P": 3, "S": 4, "M": 5, "K": 6}
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_COHORT = re.compile(r"cohort_\d+")


def parse_roi_coords(text: str | None) -> list[tuple[float, float, float, float]]:
    """``ROI_coords`` text -> list of (ymin, xmin, ymax, xmax); nesting and brackets ignored.

    Accepts ``"[[ymin, xmin, ymax, xmax], ...]"``, extra nesting and tuple spellings such as
    ``"((ymin, xmin, ymax, xmax),)"``; empty / missing -> ``[]``. ``ValueError`` if the number
    of values is not a multiple of 4.
    """
    if text is None:
        return []
    values = [float(v) for v in _NUMBER.findall(text)]
    if len(values) % 4:
        raise ValueError(f"ROI_coords {text!r} does not hold groups of 4 numbers")
    return [tuple(values[i : i + 4]) for i in range(0, len(values), 4)]


def finding_labels(rec) -> list[tuple[str, str | None, str]]:
    """(label, subtype, source_label) for every label a clinical row's descriptors imply."""
    get = {c: clean(rec.get(c)) for c in ("massshape", "massmargin", "massdens")}
    shape = get["massshape"]
    out = []
    if (
        shape in MASS_SHAPES
        or get["massmargin"] in MASS_MARGINS
        or get["massdens"] in MASS_DENSITIES
    ):
        source = ";".join(f"{k}={v}" for k, v in get.items() if v)
        out.append(("mass", MASS_SHAPES.get(shape or ""), source))
    if shape in ASYMMETRY_SHAPES:
        out.append(("asymmetry", ASYMMETRY_SHAPES[shape], f"massshape={shape}"))
    if shape in DISTORTION_SHAPES:
        out.append(("architectural_distortion", DISTORTION_SHAPES[shape], f"massshape={shape}"))
    calc = {c: clean(rec.get(c)) for c in ("calcfind", "calcdistri", "calcnumber")}
    if any(calc.values()):
        source = ";".join(f"{k}={v}" for k, v in calc.items() if v)
        out.append(("calcification", None, source))
    return out


def _malignant(severity: int | None) -> bool | None:
    if severity in (0, 1):
        return True
    if severity in (2, 3, 4, 5):
        return False
    return None


def _find_table(root: Path, name: str) -> Path:
    for candidate in (root / "tables" / name, root / name):
        if candidate.is_file():
            return candidate
    return root / "tables" / name


def load_embed(root: str | os.PathLike, *, require_files: bool = False):
    """Manifest of EMBED 2D / C-view CC+MLO images with ROI boxes; see the module docstring.

    ``require_files=True`` drops (with a reason) images whose DICOM is not under ``root``.
    """
    root = as_root(root, "EMBED")
    report = LoadReport("embed", "load_embed")
    clinical = read_table(
        _find_table(root, CLINICAL_CSV),
        CLINICAL_COLUMNS,
        what="EMBED clinical CSV",
        optional=CLINICAL_OPTIONAL,
    )
    metadata = read_table(
        _find_table(root, METADATA_CSV),
        METADATA_COLUMNS,
        what="EMBED metadata CSV",
        optional=METADATA_OPTIONAL,
    )
    image_base = root / "images" if (root / "images").is_dir() else root

    exams: dict[str, list] = defaultdict(list)
    for idx, rec in records(clinical):
        acc = clean(rec["acc_anon"])
        if acc is None:
            report.drop(
                "clinical row without acc_anon",
                level="row",
                source_file=CLINICAL_CSV,
                source_row=idx,
            )
            continue
        exams[acc].append(rec)

    rows: list[dict] = []
    seen: set[str] = set()
    for idx, rec in records(metadata):
        dicom_path = clean(rec["anon_dicom_path"]) or ""
        image_id = PurePosixPath(dicom_path).stem or None
        where = {"source_file": METADATA_CSV, "source_row": idx, "image_id": image_id}
        kind = (clean(rec["FinalImageType"]) or "").lower().replace("-", "").replace(" ", "")
        if kind not in IMAGE_TYPES:
            report.drop(f"FinalImageType {clean(rec['FinalImageType'])} is not 2D/cview", **where)
            continue
        if to_int(rec["spot_mag"]) == 1:
            report.drop("spot compression / magnification view (spot_mag == 1)", **where)
            continue
        view, laterality = clean(rec["ViewPosition"]), clean(rec["ImageLateralityFinal"])
        if not report.accept_view(laterality, view, **where):
            continue
        parts = PurePosixPath(dicom_path).parts
        start = next((i for i, p in enumerate(parts) if _COHORT.fullmatch(p)), None)
        if image_id is None or start is None:
            report.drop("anon_dicom_path has no cohort_<n> folder", **where)
            continue
        if image_id in seen:
            report.drop("duplicate image (SOPInstanceUID)", **where)
            continue
        acc, empi = clean(rec["acc_anon"]), clean(rec["empi_anon"])
        exam = exams.get(acc or "")
        if not exam:
            report.drop("exam (acc_anon) not in the clinical table", **where)
            continue
        if any(clean(r["empi_anon"]) != empi for r in exam):
            report.drop("empi_anon differs between clinical and metadata tables", **where)
            continue
        path = image_base.joinpath(*parts[start:])
        if require_files and not path.is_file():
            report.drop("image file not found", **where)
            continue
        seen.add(image_id)
        rows.append(
            _image_row(
                rec,
                exam,
                image_id,
                path,
                parts[start],
                laterality,
                view,
                IMAGE_TYPES[kind],
                report,
                where,
            )
        )
    return report.finish(rows, int_columns=("birads",))


def _image_row(rec, exam, image_id, path, cohort, laterality, view, modality, report, where):
    applicable = [r for r in exam if clean(r["side"]) in (None, "B", laterality)]
    severities = [to_int(r["path_severity"]) for r in applicable]
    if any(s in (0, 1) for s in severities):
        cancer = 1
    elif any(s in (2, 3, 4, 5) for s in severities):
        cancer = 0
    else:
        cancer = None

    density = None
    code = next((to_int(r["tissueden"]) for r in exam if to_int(r["tissueden"]) is not None), None)
    if code == 5:
        report.note("images with tissueden 5 (male) given a missing density")
    elif code is not None:
        density = DENSITY_FROM_INT.get(code)

    birads_values = [ASSESSMENT.get(clean(r.get("asses")) or "") for r in applicable]
    birads_values = [b for b in birads_values if b is not None]

    rows_px = to_int(rec.get("Rows"))
    cols_px = to_int(rec.get("Columns"))
    findings = []
    try:
        rois = parse_roi_coords(clean(rec["ROI_coords"]))
    except ValueError:
        report.drop("unparseable ROI_coords", level="finding", **where)
        rois = []
    if rois:
        flagged = [r for r in applicable if finding_labels(r)]
        exact = [r for r in flagged if clean(r["side"]) == laterality]
        if len(flagged) > 1 and len(exact) == 1:
            flagged = exact
        signatures = {
            (tuple(finding_labels(r)), _malignant(to_int(r["path_severity"]))) for r in flagged
        }
        for ymin, xmin, ymax, xmax in rois:
            if not flagged:
                report.drop(
                    "ROI without a clinical finding with descriptors on this side",
                    level="finding",
                    **where,
                )
                continue
            if len(signatures) > 1:
                report.drop(
                    "ROI matches several clinical findings with different labels",
                    level="finding",
                    **where,
                )
                continue
            chosen = flagged[0]
            malignant = _malignant(to_int(chosen["path_severity"]))
            asses = ASSESSMENT.get(clean(chosen.get("asses")) or "")
            for label, subtype, source in finding_labels(chosen):
                found = boxed_finding(
                    label,
                    (xmin, ymin, xmax, ymax),
                    rows=rows_px,
                    cols=cols_px,
                    report=report,
                    malignant=malignant,
                    source_label=source,
                    subtype=subtype,
                    birads=None if asses is None else str(asses),
                    **where,
                )
                if found is not None:
                    findings.append(found)

    ages = [to_float(r.get("age_at_study")) for r in exam]
    age = next((a for a in ages if not math.isnan(a)), math.nan)
    return manifest_row(
        patient_id=clean(rec["empi_anon"]),
        study_id=clean(rec["acc_anon"]),
        image_id=image_id,
        path=path,
        laterality=laterality,
        view=view,
        modality=modality,
        site="embed",
        vendor=clean(rec.get("Manufacturer")) or "unknown",
        density=density,
        age=age,
        rows=rows_px,
        cols=cols_px,
        cancer=cancer,
        findings=findings,
        birads=max(birads_values) if birads_values else None,
        cohort=cohort,
        study_description=clean(exam[0].get("desc")),
    )
