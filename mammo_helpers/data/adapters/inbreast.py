"""INbreast (release 1.0) -> manifest (notebook 00 data; notebook 05 domain shift target).

Layout under ``root``::

    INbreast.csv                                   semicolon-separated, one row per image
    AllDICOMs/<File Name>_<hash>_MG_<L|R>_<CC|ML>_ANON.dcm
    AllXML/<File Name>.xml                         OsiriX plist outlines (absent = no outline)

Decisions:
- ``patient_id`` is the hash in the DICOM file name (the CSV says 'removed'); an exam is one
  patient's visit, so ``study_id = <hash>_<Acquisition date>``. ``ML`` in file names is MLO.
- ``ACR`` 1-4 -> density A-D; blank (space padded) -> missing.
- Outlines: ``Images[0].ROIs[*]`` of the plist; the box is the min/max of the ``Point_px``
  points ``"(x, y)"``. ROIs with at most 2 points are single calcification dots and get a
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
"""

from __future__ import annotations

import os
import plistlib
import re
from pathlib import Path
from xml.parsers.expat import ExpatError

from mammo_helpers.data.adapters._common import (
    DENSITY_FROM_INT,
    LoadReport,
    as_root,
    boxed_finding,
    clean,
    header_info,
    read_table,
    records,
    to_int,
)
from mammo_helpers.data.manifest import manifest_row
from mammo_helpers.io import DicomError

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
SUSPICIOUS = {"4", "4a", "4b", "4c", "5", "6"}
_FILE = re.compile(r"^(?P<name>[^_]+)_(?P<hash>[^_]+)_MG_(?P<side>[LR])_(?P<view>[A-Z]+)_ANON$")
_POINT = re.compile(r"\(\s*([-+0-9.eE]+)\s*,\s*([-+0-9.eE]+)\s*\)")


def parse_points(points) -> list[tuple[float, float]]:
    """OsiriX ``Point_px`` strings ``"(x, y)"`` -> list of (x, y) floats."""
    out = []
    for text in points:
        match = _POINT.search(str(text))
        if match is None:
            raise ValueError(f"point {text!r} is not of the form '(x, y)'")
        out.append((float(match.group(1)), float(match.group(2))))
    return out


def roi_box(points: list[tuple[float, float]]) -> tuple[float, float, float, float]:
    """(xmin, ymin, xmax, ymax) of an outline; <= 2 points -> centre +- ``DOT_HALF_SIZE``."""
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
    images = plist.get("Images") or []
    if not images:
        return []
    out = []
    for roi in images[0].get("ROIs", []):
        out.append(
            {
                "name": str(roi.get("Name", "")).strip(),
                "points": parse_points(roi.get("Point_px", [])),
            }
        )
    return out


def load_inbreast(root: str | os.PathLike):
    """Manifest of INbreast with boxes from the XML outlines; see the module docstring."""
    root = as_root(root, "INbreast")
    report = LoadReport("inbreast", "load_inbreast")
    table = read_table(root / CSV_NAME, CSV_COLUMNS, what="INbreast CSV", sep=";")
    dicoms: dict[str, list[Path]] = {}
    dicom_dir = root / "AllDICOMs"
    if not dicom_dir.is_dir():
        raise FileNotFoundError(f"INbreast DICOM folder not found: {str(dicom_dir)!r}")
    for path in sorted(dicom_dir.glob("*.dcm")):
        dicoms.setdefault(path.stem.split("_", 1)[0], []).append(path)

    rows = []
    for idx, rec in records(table):
        name = clean(rec["File Name"])
        where = {"source_file": CSV_NAME, "source_row": idx, "image_id": name}
        if name is None:
            report.drop("empty File Name", level="row", **where)
            continue
        if name.endswith(".0"):  # a File Name cell saved as a float by a spreadsheet
            name = name[:-2]
        where["image_id"] = name
        files = dicoms.get(name, [])
        if len(files) != 1:
            report.drop("DICOM file not found" if not files else "several DICOM files", **where)
            continue
        match = _FILE.match(files[0].stem)
        if match is None:
            report.drop(f"unexpected DICOM file name {files[0].name}", **where)
            continue
        laterality = match["side"]
        view = "MLO" if match["view"] in ("ML", "MLO") else match["view"]
        if not report.accept_view(laterality, view, view_label=match["view"], **where):
            continue
        csv_lat, csv_view = clean(rec["Laterality"]), clean(rec["View"])
        if (csv_lat, "MLO" if csv_view == "ML" else csv_view) != (laterality, view):
            report.drop("CSV laterality/view disagree with the DICOM file name", **where)
            continue
        try:
            info = header_info(files[0])
        except DicomError as exc:
            report.drop(f"unreadable DICOM ({type(exc).__name__})", **where)
            continue
        acr = to_int(rec["ACR"])
        birads = (clean(rec["Bi-Rads"]) or "").lower() or None
        findings = []
        xml = root / "AllXML" / f"{name}.xml"
        outlines = []
        if xml.is_file():
            try:
                outlines = read_outlines(xml)
            except (ValueError, plistlib.InvalidFileException, ExpatError) as exc:
                report.drop(
                    f"unreadable XML outline file ({type(exc).__name__})", level="finding", **where
                )
        else:
            report.note("images without an XML outline file (no findings)")
        if outlines:
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
                    roi_box(roi["points"]),
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
        date = clean(rec["Acquisition date"]) or "unknown"
        rows.append(
            manifest_row(
                patient_id=match["hash"],
                study_id=f"{match['hash']}_{date}",
                image_id=name,
                path=files[0],
                laterality=laterality,
                view=view,
                site="inbreast",
                vendor=info["vendor"],
                density=DENSITY_FROM_INT.get(acr) if acr is not None else None,
                pixel_spacing_mm=info["pixel_spacing_mm"],
                rows=info["rows"],
                cols=info["cols"],
                cancer=None,
                findings=findings,
                birads=birads,
                birads_suspicious=(birads in SUSPICIOUS) if birads else None,
            )
        )
    return report.finish(rows, bool_columns=("birads_suspicious",))
