"""INbreast (release 1.0) -> manifest (notebook 00 data; notebook 05 domain shift target).

Layout under ``root``::

    INbreast.csv                                   semicolon-separated, one row per image
    AllDICOMs/<File Name>_<hash>_MG_<L|R>_<CC|ML>_ANON.dcm
    AllXML/<File Name>.xml                         OsiriX plist outlines (absent = no outline)

Decisions:
- ``patient_id`` is the hash in the DICOM file name (the CSV says 'removed'); an exam is one
  patient's visit, so ``study_id = <hash>_<Acquisition date>``. ``ML`` in file names is MLO.
- ``ACR`` 1-4 -> density A-D; blank (space padded) -> missing.
- ``views`` (default CC/MLO; ``None``: every code of ``vocab.ALL_VIEWS``) chooses the views
  kept; INbreast has only CC and MLO.
- Outlines: ``Images[0].ROIs[*]`` of the plist; the box is the min/max of the ``Point_px``
  points ``"(x, y)"`` (:func:`outline_box`). ROIs with at most 2 points are single calcification dots and get a
  box of +-3 px around their centre (``DOT_HALF_SIZE``). Names: Mass -> mass; Calcification /
  Cluster -> calcification (Cluster keeps subtype 'cluster'); Assymetry / Asymmetry ->
  asymmetry; Spiculated Region / Espiculated Region / Distortion -> architectural_distortion.
  Other names (e.g. Point, Nipple, Cyst) are dropped with a reason.
- No pathology in the CSV: ``malignant`` is ``None`` and ``cancer`` missing. The image-level
  ``Bi-Rads`` ('1'...'6', '4a'/'4b'/'4c') is kept as the string column ``birads`` and on every
  finding; ``birads_suspicious`` is True for BI-RADS 4a-6 (the usual positive class in INbreast
  papers: BI-RADS >= 4 means biopsy-recommended, not biopsy-proven).
- Rows, cols, pixel spacing and vendor come from the DICOM header; images whose DICOM is
  missing, or whose file name disagrees with the CSV laterality/view, are dropped with a reason.

Bad cells (the rule of :mod:`mammo_helpers.data.adapters._common`):
- dropped: a row with an empty ``File Name`` (level 'row'); a repeated ``File Name``, an image
  whose DICOM is missing, repeated, oddly named or unreadable (truncated header, no
  Rows/Columns), or whose file name disagrees with the CSV; an unreadable XML file's outlines,
  an outline with an unknown name or no points (level 'finding');
- set to missing (level 'value'): ``ACR`` other than 1-4, ``Bi-Rads`` other than 0-6 / 4a-4c.
"""

from __future__ import annotations

import os
import plistlib
import re
from pathlib import Path
from xml.parsers.expat import ExpatError

import numpy as np
import pandas as pd

from mammo_helpers.data.adapters._common import (
    DENSITY_FROM_INT,
    LoadReport,
    as_root,
    boxed_finding,
    header_info,
    numbers,
    objects,
    read_table,
    resolve_views,
    text,
)
from mammo_helpers.data.manifest import manifest_row
from mammo_helpers.io import DicomError
from mammo_helpers.paths import describe_path
from mammo_helpers.vocab import VIEWS

CSV_NAME = "INbreast.csv"
CSV_COLUMNS = (
    "Patient ID",
    "Patient age",
    "Laterality",
    "View",
    "Acquisition date",
    "File Name",
    "ACR",
    "Bi-Rads",
)
DOT_HALF_SIZE = 3.0
ROI_LABELS = {
    "mass": ("mass", None),
    "calcification": ("calcification", None),
    "calcifications": ("calcification", None),
    "cluster": ("calcification", "cluster"),
    "assymetry": ("asymmetry", None),
    "asymmetry": ("asymmetry", None),
    "spiculated region": ("architectural_distortion", "spiculated_region"),
    "espiculated region": ("architectural_distortion", "spiculated_region"),
    "distortion": ("architectural_distortion", None),
}
BIRADS = ("0", "1", "2", "3", "4", "4a", "4b", "4c", "5", "6")
SUSPICIOUS = {"4", "4a", "4b", "4c", "5", "6"}
_FILE = re.compile(r"^(?P<name>[^_]+)_(?P<hash>[^_]+)_MG_(?P<side>[LR])_(?P<view>[A-Z]+)_ANON$")
_POINT = re.compile(r"\(\s*([-+0-9.eE]+)\s*,\s*([-+0-9.eE]+)\s*\)")


def parse_points(points) -> list[tuple[float, float]]:
    """OsiriX ``Point_px`` strings ``"(x, y)"`` -> list of (x, y) floats (``ValueError``
    for anything else)."""
    if not isinstance(points, list | tuple):
        raise ValueError(f"Point_px {points!r} is not a list of points")
    out = []
    for text_ in points:
        match = _POINT.search(str(text_))
        if match is None:
            raise ValueError(f"point {text_!r} is not of the form '(x, y)'")
        out.append((float(match.group(1)), float(match.group(2))))
    return out


def outline_box(points: list[tuple[float, float]]) -> tuple[float, float, float, float]:
    """(xmin, ymin, xmax, ymax) of an INbreast outline; <= 2 points (a calcification dot) ->
    centre +- ``DOT_HALF_SIZE``; a flat outline is widened to 1 px."""
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    if len(points) <= 2:
        cx, cy = sum(xs) / len(xs), sum(ys) / len(ys)
        h = DOT_HALF_SIZE
        return cx - h, cy - h, cx + h, cy + h
    xmin, xmax, ymin, ymax = min(xs), max(xs), min(ys), max(ys)
    if xmax - xmin < 1:
        xmin, xmax = xmin - 0.5, xmax + 0.5
    if ymax - ymin < 1:
        ymin, ymax = ymin - 0.5, ymax + 0.5
    return xmin, ymin, xmax, ymax


def read_outlines(path: Path) -> list[dict]:
    """ROI dicts (Name, points) of ``Images[0]`` in an INbreast OsiriX XML plist."""
    with open(path, "rb") as fh:
        plist = plistlib.load(fh)
    if not isinstance(plist, dict):
        raise ValueError(f"{path}: not an OsiriX ROI plist (the top level is not a dictionary)")
    images = plist.get("Images") or []
    if not isinstance(images, list) or not all(isinstance(i, dict) for i in images):
        raise ValueError(f"{path}: not an OsiriX ROI plist (Images is not a list of dictionaries)")
    if not images:
        return []
    rois = images[0].get("ROIs", [])
    if not isinstance(rois, list):
        raise ValueError(f"{path}: not an OsiriX ROI plist (Images[0].ROIs is not a list)")
    out = []
    for roi in rois:
        if not isinstance(roi, dict):
            raise ValueError(f"{path}: an ROI entry is not a dictionary")
        out.append(
            {
                "name": str(roi.get("Name", "")).strip(),
                "points": parse_points(roi.get("Point_px", [])),
            }
        )
    return out


def load_inbreast(root: str | os.PathLike, *, views: tuple[str, ...] | None = VIEWS):
    """Manifest of INbreast with boxes from the XML outlines; see the module docstring.

    ``views`` chooses the view codes kept (``None``: every code in ``vocab.ALL_VIEWS``).
    """
    root = as_root(root, "INbreast")
    views = resolve_views(views)
    report = LoadReport("inbreast", "load_inbreast", in_file_order=True)
    table = read_table(root / CSV_NAME, CSV_COLUMNS, what="INbreast CSV", sep=";")
    dicom_dir = root / "AllDICOMs"
    if not dicom_dir.is_dir():
        raise FileNotFoundError(f"INbreast DICOM folder not found: {describe_path(dicom_dir)}")
    dicoms: dict[str, list[Path]] = {}
    for path in sorted(dicom_dir.glob("*.dcm")):
        dicoms.setdefault(path.stem.split("_", 1)[0], []).append(path)

    rows = table.index.to_numpy()
    # a File Name cell saved as a float by a spreadsheet ends in '.0'
    name = text(table["File Name"]).str.replace(r"\.0$", "", regex=True)
    names = objects(name)
    has_name = pd.notna(names)
    report.drop_many(rows[~has_name], "empty File Name", level="row", source_file=CSV_NAME)
    csv_view = objects(text(table["View"]).replace("ML", "MLO"))
    csv_lat = objects(text(table["Laterality"]))
    acr, bad_acr = numbers(table["ACR"], integer=True, low=1, high=4)
    birads = text(table["Bi-Rads"]).str.lower()
    bad_birads = (birads.notna() & ~birads.isin(BIRADS)).to_numpy()
    birads = objects(birads.where(~bad_birads))
    date = objects(text(table["Acquisition date"]).fillna("unknown"))

    out = []
    kept = np.zeros(len(rows), dtype=bool)
    seen: set[str] = set()
    for pos in np.flatnonzero(has_name):
        where = {"source_file": CSV_NAME, "source_row": int(rows[pos]), "image_id": names[pos]}
        if names[pos] in seen:
            report.drop("duplicate File Name", **where)
            continue
        image = _image(names[pos], dicoms, (csv_lat[pos], csv_view[pos]), views, report, where)
        if image is None:
            continue
        kept[pos] = True
        seen.add(names[pos])
        path, match, info = image
        b = birads[pos]
        findings = _findings(root / "AllXML" / f"{names[pos]}.xml", info, b, report, where)
        out.append(
            manifest_row(
                patient_id=match["hash"],
                study_id=f"{match['hash']}_{date[pos]}",
                image_id=names[pos],
                path=path,
                laterality=match["side"],
                view=_view(match["view"]),
                site="inbreast",
                vendor=info["vendor"],
                density=None if np.isnan(acr[pos]) else DENSITY_FROM_INT[int(acr[pos])],
                pixel_spacing_mm=info["pixel_spacing_mm"],
                rows=info["rows"],
                cols=info["cols"],
                cancer=None,
                findings=findings,
                birads=b,
                birads_suspicious=(b in SUSPICIOUS) if b else None,
            )
        )
    for bad, column, rule in (
        (bad_acr, "ACR", "is not 1-4"),
        (bad_birads, "Bi-Rads", "is not 0-6 or 4a-4c"),
    ):
        report.bad_values(
            bad & kept, column, table[column], rule, source_file=CSV_NAME, image_ids=names
        )
    return report.finish(out, bool_columns=("birads_suspicious",))


def _image(name, dicoms, csv_view, views, report, where):
    """(DICOM path, file-name match, header info) of one CSV row, or ``None`` (dropped)."""
    files = dicoms.get(name, [])
    if len(files) != 1:
        report.drop("DICOM file not found" if not files else "several DICOM files", **where)
        return None
    match = _FILE.match(files[0].stem)
    if match is None:
        report.drop(f"unexpected DICOM file name {files[0].name}", **where)
        return None
    laterality, view = match["side"], _view(match["view"])
    if not report.accept_view(laterality, view, view_label=match["view"], views=views, **where):
        return None
    if csv_view != (laterality, view):
        report.drop("CSV laterality/view disagree with the DICOM file name", **where)
        return None
    try:
        info = header_info(files[0])
    except DicomError as exc:
        report.drop(f"unreadable DICOM ({type(exc).__name__})", **where)
        return None
    return files[0], match, info


def _findings(xml: Path, info: dict, birads: str | None, report: LoadReport, where) -> list:
    """Findings from the image's XML outlines (none, with a note, if there is no XML file)."""
    if not xml.is_file():
        report.note("images without an XML outline file (no findings)")
        return []
    try:
        outlines = read_outlines(xml)
    except (ValueError, plistlib.InvalidFileException, ExpatError) as exc:
        report.drop(f"unreadable XML outline file ({type(exc).__name__})", level="finding", **where)
        return []
    findings = []
    for roi in outlines:
        key = roi["name"].lower()
        if key not in ROI_LABELS:
            report.drop(f"unknown ROI name {roi['name']!r}", level="finding", **where)
            continue
        if not roi["points"]:
            report.drop("ROI without points", level="finding", **where)
            continue
        label, subtype = ROI_LABELS[key]
        found = boxed_finding(
            label,
            outline_box(roi["points"]),
            rows=info["rows"],
            cols=info["cols"],
            report=report,
            malignant=None,
            source_label=roi["name"],
            subtype=subtype,
            birads=birads,
            **where,
        )
        if found is not None:
            findings.append(found)
    return findings


def _view(code: str) -> str:
    """View code of an INbreast file name ('ML' there means MLO)."""
    return "MLO" if code in ("ML", "MLO") else code
