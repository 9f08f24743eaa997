"""EMBED Open Data (Emory) -> manifest (notebook 00 data; notebook 01 external density validation).

Inputs: ``EMBED_OpenData_clinical.csv`` (one row per finding) and
``EMBED_OpenData_metadata.csv`` (one row per DICOM), looked up in ``root/tables/`` and then
``root/``; images ``<cohort_N>/<empi_anon>/<acc_anon>/<SOPInstanceUID>.dcm`` under
``root/images/`` (the AWS bucket layout) or directly under ``root``.

Decisions:
- Images: ``FinalImageType`` '2D' -> modality DM, 'cview' (also spelled 'C-view') -> s2D; 3D
  and screensave (ROI_SSC / ROI_SS) rows are dropped with a reason, as are special views
  (``spot_mag == 1``), views other than ``views`` (default CC/MLO; ``views=None`` keeps every
  code of ``vocab.ALL_VIEWS``) and lateralities other than L/R.
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

Bad cells (the rule of :mod:`mammo_helpers.data.adapters._common`):
- dropped: a clinical row without ``acc_anon`` (level 'row'); an image whose
  ``FinalImageType``, ``spot_mag`` (not a number), view, laterality or ``anon_dicom_path``
  cannot be used, a repeated SOPInstanceUID, an exam missing from the clinical table or with
  another / no ``empi_anon``; an ROI whose ``ROI_coords`` cannot be parsed or cannot be linked
  to one finding (level 'finding');
- set to missing (level 'value'): clinical ``tissueden`` other than 1-5, ``path_severity``
  other than 0-6, ``asses`` other than the legend's letters, ``age_at_study`` that is not a
  number in 0-120 (the exam's next readable value is used); metadata ``Rows`` / ``Columns``
  that are not positive integers (boxes are then clipped to ``[0, 65535]`` only). A clinical
  ``side`` other than L/R/B is reported and that row applies to no image. Descriptor codes
  outside the legend simply imply no label.
"""

from __future__ import annotations

import os
import re
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from mammo_helpers.data.adapters._common import (
    DENSITY_FROM_INT,
    LoadReport,
    as_root,
    boxed_finding,
    clean,
    codes,
    first_failure,
    first_kept,
    float_values,
    int_values,
    manifest_rows,
    numbers,
    objects,
    read_table,
    resolve_views,
    text,
    view_checks,
)
from mammo_helpers.vocab import VIEWS

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
DESCRIPTOR_COLUMNS = ("massshape", "massmargin", "massdens", "calcfind", "calcdistri", "calcnumber")
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
SIDES = ("L", "R", "B")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_COHORT = re.compile(r"cohort_\d+")
_MISSING, _SEVERAL = "\0missing", "\0several"  # placeholders that no CSV cell holds
#: tissueden code (0 = missing, 5 = male) -> density
_DENSITY_OF_CODE = np.array([None, *DENSITY_FROM_INT.values(), None], dtype=object)
#: Paths that PurePosixPath would normalise (``//``, ``.`` parts, trailing slash).
_ODD_PATH = r"//|(?:^|/)\.(?:/|$)|/$"


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


def _column(table: pd.DataFrame, name: str) -> pd.Series:
    """An optional column, or an all-missing one if the table lacks it."""
    if name in table.columns:
        return table[name]
    return pd.Series(np.nan, index=table.index, dtype="str")


def load_embed(
    root: str | os.PathLike,
    *,
    require_files: bool = False,
    views: tuple[str, ...] | None = VIEWS,
):
    """Manifest of EMBED 2D / C-view images with ROI boxes; see the module docstring.

    ``require_files=True`` drops (with a reason) images whose DICOM is not under ``root``;
    ``views`` chooses the view codes kept (default CC/MLO; ``None``: every code in
    ``vocab.ALL_VIEWS``).
    """
    root = as_root(root, "EMBED")
    views = resolve_views(views)
    report = LoadReport("embed", "load_embed", in_file_order=True)
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
    report.stage = 0
    exams = _Exams(clinical, report)
    report.stage = 1
    images = _images(metadata, exams, image_base, views, require_files, report)
    return report.finish(manifest_rows(images), int_columns=("birads",))


class _Exams:
    """The clinical table, parsed column by column and summarised per exam (``acc_anon``)."""

    def __init__(self, clinical: pd.DataFrame, report: LoadReport):
        acc = text(clinical["acc_anon"])
        has_acc = acc.notna().to_numpy()
        report.drop_many(
            clinical.index.to_numpy()[~has_acc],
            "clinical row without acc_anon",
            level="row",
            source_file=CLINICAL_CSV,
        )
        table = clinical[has_acc]
        self.acc = objects(acc[has_acc])
        self.empi = objects(text(table["empi_anon"]))

        def checked(column, values_bad, rule, consequence="set to missing"):
            values, bad = values_bad
            report.bad_values(
                bad,
                column,
                _column(table, column),
                rule,
                source_file=CLINICAL_CSV,
                consequence=consequence,
            )
            return values

        self.density = checked(
            "tissueden", numbers(table["tissueden"], integer=True, low=1, high=5), "is not 1-5"
        )
        self.severity = checked(
            "path_severity",
            numbers(table["path_severity"], integer=True, low=0, high=6),
            "is not 0-6",
        )
        self.asses = checked(
            "asses", codes(_column(table, "asses"), ASSESSMENT), "is not one of A, N, B, P, S, M, K"
        )
        self.age = checked(
            "age_at_study",
            numbers(_column(table, "age_at_study"), low=0, high=120),
            "is not an age in 0-120",
        )
        side = objects(text(table["side"]))
        bad_side = np.array([s is not None and s not in SIDES for s in side], dtype=bool)
        checked("side", (side, bad_side), "is not L/R/B", "ignored (the row applies to no image)")
        self.side = side
        self.labels = self._labels(table)
        self.desc = objects(text(_column(table, "desc")))
        self._summaries()

    def _labels(self, table: pd.DataFrame) -> list:
        """finding_labels of every row (``[]`` quickly for rows without descriptors)."""
        cells = {c: objects(text(_column(table, c))) for c in DESCRIPTOR_COLUMNS}
        present = np.zeros(len(table), dtype=bool)
        for values in cells.values():
            present |= pd.notna(values)
        out = [[] for _ in range(len(table))]
        for pos in np.flatnonzero(present):
            out[pos] = finding_labels({c: cells[c][pos] for c in DESCRIPTOR_COLUMNS})
        return out

    def _summaries(self) -> None:
        """Per exam (``self.index``, in order of first appearance): arrays of its summaries."""
        code, uniques = pd.factorize(self.acc)
        self.index = pd.Index(uniques)
        frame = pd.DataFrame(
            {
                "exam": code,
                "empi": pd.Series(self.empi, dtype=object).fillna(_MISSING),
                "density": self.density,
                "age": self.age,
            }
        )
        groups = frame.groupby("exam", sort=True)
        empi = groups["empi"].agg(["nunique", "first"])
        # the exam's one empi_anon (MISSING if absent), SEVERAL where its rows disagree
        self.exam_empi = empi["first"].where(empi["nunique"] == 1, _SEVERAL).to_numpy(object)
        self.exam_density = groups["density"].first().to_numpy(float)
        self.exam_age = groups["age"].first().to_numpy(float)
        _, first = np.unique(code, return_index=True)
        self.exam_desc = self.desc[first]
        flagged: dict[str, list[int]] = {}
        for pos in np.flatnonzero([bool(x) for x in self.labels]):
            flagged.setdefault(self.acc[pos], []).append(int(pos))
        self.flagged = flagged
        self.by_side = {lat: self._side_summary(code, lat) for lat in ("L", "R")}

    def _side_summary(self, code: np.ndarray, laterality: str) -> tuple[np.ndarray, np.ndarray]:
        """Per exam: (cancer, highest BI-RADS) of the rows that apply to ``laterality``."""
        applies = np.array([s in (None, "B", laterality) for s in self.side], dtype=bool)
        sev = np.where(applies, self.severity, np.nan)
        asses = np.array([np.nan if a is None else a for a in self.asses], dtype=float)
        frame = pd.DataFrame(
            {
                "exam": code,
                "malignant": np.isin(sev, (0, 1)),
                "benign": np.isin(sev, (2, 3, 4, 5)),
                "birads": np.where(applies, asses, np.nan),
            }
        )
        out = frame.groupby("exam", sort=True).agg(
            malignant=("malignant", "any"), benign=("benign", "any"), birads=("birads", "max")
        )
        cancer = np.where(out["malignant"], 1.0, np.where(out["benign"], 0.0, np.nan))
        return cancer, out["birads"].to_numpy(float)

    def applicable_flagged(self, acc: str, laterality: str) -> list[int]:
        """Rows of exam ``acc`` with descriptors that apply to ``laterality``, in file order."""
        return [p for p in self.flagged.get(acc, []) if self.side[p] in (None, "B", laterality)]


def _stem(name: str) -> str | None:
    """``PurePosixPath(name).stem`` of a file name (``None`` if empty)."""
    dot = name.rfind(".")
    return (name[:dot] if 0 < dot < len(name) - 1 else name) or None


def _split_paths(paths: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(image_id = file stem, cohort folder, path from the cohort folder on) per row, as
    PurePosixPath would split them; ``None`` where there is no ``cohort_<n>`` folder.

    The regular expressions run in pyarrow (RE2, ASCII digits); paths that Path would
    normalise, or with non-ASCII characters, go through PurePosixPath itself.
    """
    cells = pa.array(objects(text(paths).fillna("")), type=pa.string())
    odd = pc.or_(pc.match_substring_regex(cells, _ODD_PATH), pc.invert(pc.string_is_ascii(cells)))
    found = pc.extract_regex(cells, r"(?s)(?:^|/)(?P<rel>(?P<cohort>cohort_\d+)(?:/.*)?)$")
    matched = found.is_valid().to_numpy(zero_copy_only=False)  # fields of a null row are ""
    rel = np.where(matched, np.array(found.field("rel").to_pylist(), dtype=object), None)
    cohort = np.where(matched, np.array(found.field("cohort").to_pylist(), dtype=object), None)
    values = cells.to_pylist()
    stem = np.array([_stem(v.rpartition("/")[2]) for v in values], dtype=object)
    for pos in np.flatnonzero(odd.to_numpy(zero_copy_only=False)):
        path = PurePosixPath(values[pos])
        start = next((i for i, p in enumerate(path.parts) if _COHORT.fullmatch(p)), None)
        stem[pos] = path.stem or None
        cohort[pos] = None if start is None else path.parts[start]
        rel[pos] = None if start is None else "/".join(path.parts[start:])
    return stem, cohort, rel


def _images(metadata, exams, image_base, views, require_files, report) -> dict:
    """Manifest columns of the kept metadata rows; drops the others with their reason."""
    image_id, cohort, rel = _split_paths(metadata["anon_dicom_path"])
    prefix = os.path.join(str(image_base), "")
    paths = np.array([None if r is None else prefix + r for r in rel], dtype=object)
    exam = exams.index.get_indexer(objects(text(metadata["acc_anon"])))  # -1: not in clinical
    kept = _kept(metadata, exams, exam, image_id, cohort, paths, views, require_files, report)
    size = {}
    for col in ("Rows", "Columns"):
        values, bad = numbers(_column(metadata, col), integer=True, low=1)
        report.bad_values(
            bad & kept,
            col,
            _column(metadata, col),
            "is not a positive integer",
            source_file=METADATA_CSV,
            image_ids=image_id,
        )
        size[col] = int_values(values)[kept]
    e = exam[kept]
    laterality = objects(text(metadata["ImageLateralityFinal"]))[kept]
    code = exams.exam_density[e]
    report.note("images with tissueden 5 (male) given a missing density", int((code == 5).sum()))
    cancer, birads = np.full(len(e), np.nan), np.full(len(e), np.nan)
    for lat, (lat_cancer, lat_birads) in exams.by_side.items():
        mine = laterality == lat
        cancer[mine], birads[mine] = lat_cancer[e[mine]], lat_birads[e[mine]]
    columns = {
        "patient_id": objects(text(metadata["empi_anon"]))[kept],
        "study_id": exams.index.to_numpy(object)[e],
        "image_id": image_id[kept],
        "path": paths[kept],
        "laterality": laterality,
        "view": objects(text(metadata["ViewPosition"]))[kept],
        "modality": objects(_kinds(metadata).map(IMAGE_TYPES))[kept],
        "site": np.full(len(e), "embed", dtype=object),
        "vendor": objects(text(_column(metadata, "Manufacturer")).fillna("unknown"))[kept],
        "density": _DENSITY_OF_CODE[np.nan_to_num(code).astype(int).clip(0, 5)],
        "age": float_values(exams.exam_age[e]),
        "rows": size["Rows"],
        "cols": size["Columns"],
        "cancer": int_values(cancer),
        "findings": None,
        "birads": int_values(birads),
        "cohort": cohort[kept],
        "study_description": exams.exam_desc[e],
    }
    columns["findings"] = _all_findings(metadata, kept, columns, exams, report)
    return columns


def _kinds(metadata: pd.DataFrame) -> pd.Series:
    """FinalImageType in lower case without '-' and spaces ('C-view' -> 'cview')."""
    return text(metadata["FinalImageType"]).str.lower().str.replace("-", "").str.replace(" ", "")


def _kept(metadata, exams, exam, image_id, cohort, paths, views, require_files, report):
    """Mask of the metadata rows kept; every other row is dropped with its first failed rule."""
    n = len(metadata)
    kind_text = text(metadata["FinalImageType"])
    spot, bad_spot = numbers(metadata["spot_mag"])
    spot_text = metadata["spot_mag"].astype(object).map(repr)
    laterality, view = text(metadata["ImageLateralityFinal"]), text(metadata["ViewPosition"])
    empi = objects(text(metadata["empi_anon"]))
    pre = [
        (
            _kinds(metadata).isin(list(IMAGE_TYPES)).to_numpy(),
            ("FinalImageType " + kind_text.fillna("None") + " is not 2D/cview").to_numpy(object),
        ),
        (~bad_spot, ("spot_mag " + spot_text + " is not a number").to_numpy(object)),
        (spot != 1, "spot compression / magnification view (spot_mag == 1)"),
        *view_checks(laterality, view, views),
        (pd.notna(image_id) & pd.notna(cohort), "anon_dicom_path has no cohort_<n> folder"),
    ]
    in_exam = exam >= 0
    same_empi = exams.exam_empi[exam] == np.where(pd.isna(empi), _MISSING, empi)
    post = [
        (in_exam, "exam (acc_anon) not in the clinical table"),
        (same_empi | ~in_exam, "empi_anon differs between clinical and metadata tables"),
        (pd.notna(empi), "missing empi_anon"),
    ]
    pre_reason = first_failure(pre, n)
    if require_files:
        reachable = pd.isna(pre_reason) & pd.isna(first_failure(post, n))
        found = np.ones(n, dtype=bool)
        found[reachable] = [os.path.isfile(p) for p in paths[reachable]]
        post.append((found, "image file not found"))
    post_reason = first_failure(post, n)
    passed = pd.isna(pre_reason)
    kept, duplicate = first_kept(pd.Series(image_id), passed & pd.isna(post_reason))
    reason = np.where(passed, post_reason, pre_reason)
    reason[passed & duplicate] = "duplicate image (SOPInstanceUID)"
    report.drop_many(
        metadata.index.to_numpy()[~kept],
        reason[~kept],
        level="image",
        source_file=METADATA_CSV,
        image_ids=image_id[~kept],
    )
    return kept


def _all_findings(metadata, kept, columns, exams, report) -> list[list]:
    """Findings of every kept image (only images whose ROI_coords hold a number are parsed)."""
    roi = text(metadata["ROI_coords"])
    roi_text = objects(roi)[kept]
    rows = metadata.index.to_numpy()[kept]
    findings = [[] for _ in range(len(roi_text))]
    # text without a digit ('[]') holds no ROI: parse_roi_coords would return []
    with_number = roi.str.contains(r"\d", regex=True).fillna(False).to_numpy()[kept]
    for pos in np.flatnonzero(with_number):
        where = {
            "source_file": METADATA_CSV,
            "source_row": int(rows[pos]),
            "image_id": columns["image_id"][pos],
        }
        findings[pos] = _roi_findings(
            roi_text[pos],
            exams,
            columns["study_id"][pos],
            columns["laterality"][pos],
            columns["rows"][pos],
            columns["cols"][pos],
            report,
            where,
        )
    return findings


def _roi_findings(roi_text, exams, acc, laterality, rows_px, cols_px, report, where) -> list:
    """Findings of one image's ROIs, linked to the exam's single applicable finding row."""
    try:
        rois = parse_roi_coords(roi_text)
    except ValueError:
        report.drop("unparseable ROI_coords", level="finding", **where)
        return []
    if not rois:
        return []
    flagged = exams.applicable_flagged(acc, laterality)
    exact = [p for p in flagged if exams.side[p] == laterality]
    if len(flagged) > 1 and len(exact) == 1:
        flagged = exact
    severity = {p: _int_or_none(exams.severity[p]) for p in flagged}
    signatures = {(tuple(exams.labels[p]), _malignant(severity[p])) for p in flagged}
    findings = []
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
        asses = exams.asses[chosen]
        for label, subtype, source in exams.labels[chosen]:
            found = boxed_finding(
                label,
                (xmin, ymin, xmax, ymax),
                rows=rows_px,
                cols=cols_px,
                report=report,
                malignant=_malignant(severity[chosen]),
                source_label=source,
                subtype=subtype,
                birads=None if asses is None else str(asses),
                **where,
            )
            if found is not None:
                findings.append(found)
    return findings


def _int_or_none(value: float) -> int | None:
    return None if np.isnan(value) else int(value)
