"""A phantom cohort written in the exact layouts of RSNA, CBIS-DDSM and INbreast (chapter 05's
real-data path test).

Chapter 05 trains on two sources, CBIS-DDSM and INbreast, and tests on a target with four
views per patient, per-image cancer labels and ages (RSNA has all three). Like
:func:`mammo_helpers.data.examples.phantom_as_vindr`, :func:`phantom_as_rsna`,
:func:`phantom_as_cbis_ddsm` and :func:`phantom_as_inbreast` write a phantom cohort
(``load_source("phantom", ...)`` or ``build_cohort(...).manifest``) into a folder laid out
as the dataset is distributed, so that ``load_source(<name>, dest)`` reads it back through
the package's own adapter. Each refuses a ``dest`` that exists and is not an empty folder
and builds it under a temporary name, renamed when complete, so an interrupted run leaves
nothing. The phantom's DICOMs are hard-linked (copied across file systems) where the adapter
reads nothing in them that the metadata files contradict.
"""

from __future__ import annotations

import hashlib
import math
import os
import plistlib
from pathlib import Path

import numpy as np
import pandas as pd

from mammo_helpers.boxes import BOX_KEYS, clip_box
from mammo_helpers.data.examples import (
    CBIS_CALC_HEADER,
    CBIS_MASS_HEADER,
    INBREAST_HEADER,
    RSNA_HEADER,
    _cbis_paths,
    _cell,
    _check_phantom_manifest,
    _check_split_settings,
    _csv_text,
    _dicom,
    _empty_dest,
    _finding_birads,
    _link_or_copy,
    _mask,
    _phantom_dicoms,
    _roi,
    _vindr_split,
    _write_text,
)
from mammo_helpers.io import read_dicom
from mammo_helpers.paths import atomic_directory, sigterm_as_interrupt
from mammo_helpers.vocab import DENSITIES

#: CBIS-DDSM (DDSM lexicon) words for the phantom's subtypes; others are written upper-cased.
CBIS_MARGINS = {
    "circumscribed": "CIRCUMSCRIBED",
    "obscured": "OBSCURED",
    "microlobulated": "MICROLOBULATED",
    "indistinct": "ILL_DEFINED",
    "spiculated": "SPICULATED",
}
CBIS_CALC_TYPES = {
    "punctate": "PUNCTATE",
    "amorphous": "AMORPHOUS",
    "coarse_heterogeneous": "COARSE",
    "fine_pleomorphic": "PLEOMORPHIC",
    "fine_linear": "FINE_LINEAR_BRANCHING",
}
#: (label, subtype) -> the mass shape under which CBIS-DDSM files it (subtype None: any).
CBIS_MASS_SHAPES = {
    ("architectural_distortion", None): "ARCHITECTURAL_DISTORTION",
    ("asymmetry", None): "FOCAL_ASYMMETRIC_DENSITY",
    ("asymmetry", "global"): "ASYMMETRIC_BREAST_TISSUE",
}
#: Finding label -> INbreast ROI name (INbreast's own spelling 'Assymetry').
INBREAST_ROI_NAMES = {
    "mass": "Mass",
    "calcification": "Cluster",
    "asymmetry": "Assymetry",
    "architectural_distortion": "Distortion",
}
CBIS_CSVS = {
    (family, part): f"{family}_case_description_{part}_set.csv"
    for family in ("mass", "calc")
    for part in ("train", "test")
}
CBIS_SERIES = {
    (family, part): f"{family.capitalize()}-{'Training' if part == 'train' else 'Test'}"
    for family, part in CBIS_CSVS
}
SIDES = {"L": "LEFT", "R": "RIGHT"}
RSNA_PATIENT_START, RSNA_IMAGE_START, INBREAST_NAME_START = 10_000, 1_000_000_000, 20_000_001


# --------------------------------------------------------------------------- shared checks
def _start(manifest, dest, caller: str, *, needs=(), one_study=None) -> tuple[Path, list[Path]]:
    """(final folder, the manifest's DICOMs) after checking the manifest, ``needs`` columns,
    one study per patient (if ``one_study`` names the dataset) and ``dest``."""
    _check_phantom_manifest(manifest, caller)
    missing = [c for c in needs if c not in manifest.columns]
    if missing:
        raise ValueError(f"{caller}: manifest lacks column(s) {', '.join(missing)}")
    if one_study:
        studies = manifest.groupby(manifest["patient_id"].astype(str))["study_id"].nunique()
        if (studies > 1).any():
            patient = studies.index[studies > 1][0]
            raise ValueError(
                f"{caller}: patient {patient!r} has {studies[patient]} studies; {one_study} has "
                "one exam per patient (keep one study per patient)"
            )
    return _empty_dest(dest, caller), _phantom_dicoms(manifest, caller)


def _numbered(values, start: int) -> dict[str, int]:
    """Each distinct value (as text) -> ``start`` + its position in sorted order."""
    return {v: start + k for k, v in enumerate(sorted(set(map(str, values))))}


def _density(value, codes) -> object:
    return _cell(value, lambda d: codes[DENSITIES.index(d)] if d in DENSITIES else None)


# --------------------------------------------------------------------------- RSNA
def phantom_as_rsna(manifest: pd.DataFrame, dest: str | os.PathLike) -> Path:
    """Write a phantom cohort into ``dest`` as RSNA Screening Mammography lays it out.

    Chapter 05's real-data path test (the target: ``load_source("rsna", dest)``). ``dest``
    gets ``train.csv`` (RSNA's 14 columns, one row per image) and
    ``train_images/<patient_id>/<image_id>.dcm`` (the phantom's DICOM, hard-linked or copied:
    the RSNA adapter reads no DICOM tag). RSNA ids are integers: the phantom's patient ids in
    sorted order become 10000, 10001, ..., its image ids in sorted order 1000000000,
    1000000001, ...; ``site_id`` and ``machine_id`` number the sorted sites and vendors from 1.

    Survive the round trip: laterality, view, ``age`` (as written, e.g. ``63.4``),
    ``cancer`` per image, density (written for every site) and the pixels. Lost: the ids
    (numbered as above), site and vendor names (the adapter's ``site`` / ``vendor`` become
    the numbers), the findings (RSNA has no boxes: ``findings`` is ``[]``). ``biopsy``,
    ``invasive``, ``BIRADS`` and ``difficult_negative_case`` are left empty (unknown) and
    ``implant`` is 0. RSNA has one exam per patient: a patient with several studies is a
    ``ValueError``. ``dest`` must not exist or be an empty folder.
    """
    caller = "phantom_as_rsna"
    final, sources = _start(
        manifest, dest, caller, needs=("age", "cancer", "site", "vendor"), one_study="RSNA"
    )
    patients = _numbered(manifest["patient_id"], RSNA_PATIENT_START)
    images = _numbered(manifest["image_id"], RSNA_IMAGE_START)
    sites, machines = _numbered(manifest["site"], 1), _numbered(manifest["vendor"], 1)
    rows = [
        [
            sites[str(r["site"])],
            patients[str(r["patient_id"])],
            images[r["image_id"]],
            r["laterality"],
            r["view"],
            _cell(r["age"], float),
            _cell(r["cancer"], int),
            None,  # biopsy
            None,  # invasive
            None,  # BIRADS
            0,  # implant
            _density(r["density"], DENSITIES),
            machines[str(r["vendor"])],
            None,  # difficult_negative_case
        ]
        for r in manifest.to_dict("records")
    ]
    with sigterm_as_interrupt(), atomic_directory(final, replace=True) as tmp:
        _write_text(tmp / "train.csv", _csv_text(RSNA_HEADER, rows))
        for row, source in zip(rows, sources, strict=True):
            _link_or_copy(source, tmp / "train_images" / str(row[1]) / f"{row[2]}.dcm")
    return final


# --------------------------------------------------------------------------- CBIS-DDSM
def _cbis_words(finding: dict, image_id: str, caller: str) -> tuple[str, str | None, str | None]:
    """(family 'mass' / 'calc', shape or calc type, margins) of a finding in CBIS-DDSM words."""
    label, subtype = finding.get("label"), finding.get("subtype")
    upper = str(subtype).upper() if subtype else None
    if label == "calcification":
        return "calc", CBIS_CALC_TYPES.get(subtype, upper), None
    if label == "mass":
        return "mass", None, CBIS_MARGINS.get(subtype, upper)
    shape = CBIS_MASS_SHAPES.get((label, subtype)) or CBIS_MASS_SHAPES.get((label, None))
    if shape is None:
        raise ValueError(
            f"{caller}: finding {label!r} of image {image_id!r} has no CBIS-DDSM abnormality "
            "type (masses, calcifications, architectural distortions and asymmetries only)"
        )
    return "mass", shape, None


def _pixel_box(finding: dict, rows: int, cols: int, image_id: str) -> tuple[int, ...]:
    """The finding's box clipped to the image, widened to whole pixels (x0, y0, x1, y1)."""
    box = clip_box(*(float(finding[k]) for k in BOX_KEYS), rows, cols)
    if box is None:
        raise ValueError(
            f"phantom_as_cbis_ddsm: the {finding.get('label')} box of image {image_id!r} lies "
            "outside the image"
        )
    return math.floor(box[0]), math.floor(box[1]), math.ceil(box[2]), math.ceil(box[3])


def _cbis_plan(manifest, sources, split) -> tuple[dict, list]:
    """({csv name: rows}, [(source, full path, patient, lat, view, image id, rois)]) of the
    images with findings; rois are (crop path, mask path, finding)."""
    caller = "phantom_as_cbis_ddsm"
    patients = {p: f"P_{k:05d}" for p, k in _numbered(manifest["patient_id"], 1).items()}
    tables: dict[str, list] = {name: [] for name in CBIS_CSVS.values()}
    jobs = []
    for r, source in zip(manifest.to_dict("records"), sources, strict=True):
        families: dict[str, list] = {}
        for f in r["findings"] or []:
            families.setdefault(_cbis_words(f, r["image_id"], caller)[0], []).append(f)
        patient, side = patients[str(r["patient_id"])], SIDES[r["laterality"]]
        part = "train" if split.get(str(r["patient_id"])) == "training" else "test"
        for family, found in families.items():
            series = f"{CBIS_SERIES[family, part]}_{patient}_{side}_{r['view']}"
            rois = []
            for n, f in enumerate(found, start=1):
                full, crop, mask = _cbis_paths(series, n)
                _, shape, margins = _cbis_words(f, r["image_id"], caller)
                tables[CBIS_CSVS[family, part]].append(
                    [
                        *(patient, _density(r["density"], (1, 2, 3, 4)), side, r["view"], n),
                        "mass" if family == "mass" else "calcification",
                        *(shape, margins, _finding_birads(f)),
                        {True: "MALIGNANT", False: "BENIGN"}.get(f.get("malignant")),
                        None,  # subtlety: no reader's rating
                        *(full, crop, mask),
                    ]
                )
                rois.append((crop, mask, f))
            jobs.append((source, full, patient, r["laterality"], r["view"], r["image_id"], rois))
    empty = [name for name, rows in tables.items() if not rows]
    if empty:
        raise ValueError(
            f"{caller}: no finding for {', '.join(empty)}; the CBIS-DDSM adapter reads all four "
            "CSVs and refuses an empty one (use another seed or test_fraction, or more patients)"
        )
    return tables, jobs


def _write_rois(root: Path, source: Path, patient, lat, view, image_id, rois) -> None:
    """The cropped image and the full-size binary mask (box filled) of each finding."""
    shown = np.clip(np.rint(read_dicom(source, apply_voi=False).pixels), 0, 65535)
    rows, cols = shown.shape
    common = {"lat": lat, "view": view, "patient": patient, "study": patient}
    common |= {"spacing": None, "manufacturer": "DDSM"}
    for crop, mask, finding in rois:
        x0, y0, x1, y1 = _pixel_box(finding, rows, cols, image_id)
        pixels = shown[y0:y1, x0:x1].astype(np.uint16)
        _dicom(root / crop, **common, image=crop, pixels=pixels, bits_stored=16)
        box_mask = _mask(rows, cols, (x0, y0, x1, y1))
        _dicom(root / mask, **common, image=mask, pixels=box_mask, bits_stored=8)


def phantom_as_cbis_ddsm(
    manifest: pd.DataFrame,
    dest: str | os.PathLike,
    *,
    test_fraction: float = 0.2,
    seed: int = 0,
) -> Path:
    """Write a phantom cohort's images with findings into ``dest`` as CBIS-DDSM lays them out.

    Chapter 05's real-data path test (the first source: ``load_source("cbis_ddsm", dest)``).
    CBIS-DDSM holds only images with at least one abnormality: images without findings are
    left out. ``dest`` gets the four case-description CSVs (``{mass,calc}_case_description_
    {train,test}_set.csv``, CBIS-DDSM's headers) with one row per finding: masses,
    architectural distortions (mass shape ``ARCHITECTURAL_DISTORTION``) and asymmetries
    (``FOCAL_ASYMMETRIC_DENSITY``; global: ``ASYMMETRIC_BREAST_TISSUE``) in the mass CSVs,
    the phantom's mass margin as ``mass margins`` (:data:`CBIS_MARGINS`), calcifications in
    the calc CSVs with their ``calc type`` (:data:`CBIS_CALC_TYPES`); ``pathology``
    MALIGNANT / BENIGN from the finding's ``malignant`` (empty if unknown); ``assessment`` 5
    malignant, 3 benign (4 unknown; a finding's own ``birads`` wins); ``subtlety``, the mass
    shape of a mass and the calc distribution empty (the phantom has none). Patients are
    ``P_00001``, ``P_00002``, ... in the sorted order of the manifest's patient ids; the
    split is patient-level, drawn with ``seed`` as in ``phantom_as_vindr`` (patients join
    the test set until it holds ``round(test_fraction * patients)``, at least one on each
    side when ``0 < test_fraction < 1``) among the patients with findings. Files, at the
    CSV's paths (``<series>/<made-up UIDs>/000000.dcm``): the full mammogram (the phantom's
    DICOM, hard-linked or copied) and, per finding, in ``<series>_<n>/``, the cropped image
    (``000000.dcm``, the box's pixels) and the ROI mask (``000001.dcm``: 0/255 of the full
    image size, the box widened to whole pixels filled).

    Survive the round trip: laterality, view, density, the pixels and pixel spacing, each
    finding with its box (exact for the phantom's whole-pixel boxes), ``malignant`` and
    BI-RADS, and ``cancer`` = 1 exactly for images with a malignant finding. Lost: the ids
    (the series folder name is the image id), the label of distortions and asymmetries
    (CBIS-DDSM files them as masses: they come back as ``mass`` with the shape in
    ``subtype``), the exact subtype words (e.g. ``indistinct`` -> ``ill_defined``). An image
    with findings of both families is two images in CBIS-DDSM (the mass and the calc copy of
    one film, here two links to one file), each with its family's findings and ``cancer``.
    CBIS-DDSM has one exam per patient: a patient with several studies is a ``ValueError``.
    ``dest`` must not exist or be an empty folder.
    """
    caller = "phantom_as_cbis_ddsm"
    test_fraction, seed = _check_split_settings(test_fraction, seed, caller)
    final, sources = _start(manifest, dest, caller, one_study="CBIS-DDSM")
    with_findings = manifest[[bool(f) for f in manifest["findings"]]]
    split = _vindr_split(with_findings, test_fraction, seed) if len(with_findings) else {}
    tables, jobs = _cbis_plan(manifest, sources, split)
    with sigterm_as_interrupt(), atomic_directory(final, replace=True) as tmp:
        for (family, _), name in CBIS_CSVS.items():
            header = CBIS_MASS_HEADER if family == "mass" else CBIS_CALC_HEADER
            _write_text(tmp / name, _csv_text(header, tables[name]))
        for source, full, *where in jobs:
            _link_or_copy(source, tmp / full)
            _write_rois(tmp, source, *where)
    return final


# --------------------------------------------------------------------------- INbreast
def _inbreast_rois(r: dict) -> list[dict]:
    """OsiriX ROI dicts of an image's findings: the box's four corners as a polygon."""
    spacing = _cell(r.get("pixel_spacing_mm"), float)
    rois = []
    for i, f in enumerate(r["findings"] or []):
        name = INBREAST_ROI_NAMES.get(f.get("label"))
        if name is None:
            raise ValueError(
                f"phantom_as_inbreast: finding {f.get('label')!r} of image {r['image_id']!r} has "
                f"no INbreast ROI name; known: {', '.join(INBREAST_ROI_NAMES)}"
            )
        x0, y0, x1, y1 = (float(f[k]) for k in BOX_KEYS)
        corners = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
        roi = _roi(name, corners, i)
        if spacing:
            roi["Point_mm"] = [
                f"({x * spacing:.6f}, {y * spacing:.6f}, 0.000000)" for x, y in corners
            ]
        rois.append(roi)
    return rois


def phantom_as_inbreast(manifest: pd.DataFrame, dest: str | os.PathLike) -> Path:
    """Write a phantom cohort into ``dest`` as INbreast (release 1.0) lays it out.

    Chapter 05's real-data path test (the second source: ``load_source("inbreast", dest)``).
    ``dest`` gets ``INbreast.csv`` (semicolon-separated, INbreast's header; patient id and age
    ``removed`` as in the release), ``AllDICOMs/<File Name>_<hash>_MG_<L|R>_<CC|ML>_ANON.dcm``
    (the phantom's DICOM, hard-linked or copied: the adapter reads the image size, spacing and
    vendor from it, which agree) and, for each image with findings, ``AllXML/<File Name>.xml``
    (an OsiriX plist; each finding an ROI whose ``Point_px`` are its box's four corners, named
    ``Mass``, ``Cluster`` (calcifications), ``Assymetry`` or ``Distortion``). File names are
    20000001, 20000002, ... in the sorted order of the manifest's image ids; the hash is the
    first 16 hex digits of the SHA-256 of the phantom's patient id; a patient's studies get
    acquisition dates 201001, 201101, ... in sorted order. ``Bi-Rads`` per image: 5 with a
    malignant finding, 2 with findings that are not, 1 without; ``ACR`` 1-4 from density.

    Survive the round trip: laterality, view, density, the grouping into patients and
    studies, the pixels and pixel spacing, each finding's label and box (exactly), and
    ``birads_suspicious`` = the image has a malignant finding. Lost: the ids, ``age``,
    ``cancer`` and each finding's ``malignant`` (INbreast has no pathology: missing), the
    subtypes (calcifications come back with subtype ``cluster``, distortions with none).
    ``dest`` must not exist or be an empty folder.
    """
    final, sources = _start(manifest, dest, "phantom_as_inbreast")
    names = _numbered(manifest["image_id"], INBREAST_NAME_START)
    visits = manifest[["patient_id", "study_id"]].astype(str).drop_duplicates()
    visits = visits.sort_values(["patient_id", "study_id"])
    years = (2010 + visits.groupby("patient_id").cumcount()).astype(str) + "01"
    dates = dict(zip(zip(visits.patient_id, visits.study_id, strict=True), years, strict=True))
    rows, files, plists = [], [], {}
    for r in manifest.to_dict("records"):
        name, patient = str(names[r["image_id"]]), str(r["patient_id"])
        found = r["findings"] or []
        birads = "5" if any(f.get("malignant") is True for f in found) else "2" if found else "1"
        date = dates[patient, str(r["study_id"])]
        acr = _density(r["density"], (1, 2, 3, 4))
        rows.append(["removed", "removed", r["laterality"], r["view"], date, name, acr, birads])
        digest = hashlib.sha256(patient.encode()).hexdigest()[:16]
        view = "ML" if r["view"] == "MLO" else r["view"]
        files.append(f"{name}_{digest}_MG_{r['laterality']}_{view}_ANON.dcm")
        if found:
            size = {"ImageHeight": _cell(r["rows"], int), "ImageWidth": _cell(r["cols"], int)}
            image = {"ImageIndex": 0, "NumberOfROIs": len(found), "ROIs": _inbreast_rois(r)}
            plists[name] = {"Images": [image | {k: v for k, v in size.items() if v is not None}]}
    with sigterm_as_interrupt(), atomic_directory(final, replace=True) as tmp:
        _write_text(tmp / "INbreast.csv", _csv_text(INBREAST_HEADER, rows, sep=";"))
        for file, source in zip(files, sources, strict=True):
            _link_or_copy(source, tmp / "AllDICOMs" / file)
        (tmp / "AllXML").mkdir()
        for name, plist in plists.items():
            xml = plistlib.dumps(plist, fmt=plistlib.FMT_XML, sort_keys=True)
            (tmp / "AllXML" / f"{name}.xml").write_bytes(xml)
    return final
