"""CBIS-DDSM (TCIA) -> manifest (notebook 00 data; notebook 04 multitask fusion, 05 domain shift).

Inputs: the four case-description CSVs (``mass_case_description_{train,test}_set.csv``,
``calc_case_description_{train,test}_set.csv``; looked up in ``csv_dir``, default ``root``) and
the DICOM folders under ``root``.

Decisions:
- One manifest row per full mammogram (``image file path``); abnormality rows are grouped
  under it and become findings. ``image_id`` is the series folder name, e.g.
  ``Mass-Training_P_00001_LEFT_CC`` (unique; the same film appears once in the mass set and
  once in the calc set as two different DICOM copies). DDSM has one exam per patient, so
  ``study_id = patient_id``.
- Density column spelling differs (``breast_density`` in mass files, ``breast density`` in calc
  files); either spelling is accepted in either file. 1-4 -> A-D, anything else -> missing.
- Path cells can end with a newline inside the quotes; all paths are stripped.
- Path layout: the CSV paths (``<series folder>/<StudyUID>/<SeriesUID>/00000x.dcm``) are first
  resolved relative to ``root``. TCIA downloads (NBIA Data Retriever) store the same series as
  ``CBIS-DDSM/<series folder>/<date-...>/<n.000000-description-...>/1-1.dcm``, so if the CSV path
  does not exist the series folder name (the first path component) is searched anywhere under
  ``root`` and the ``.dcm`` files inside it are used.
- Cropped image vs ROI mask: the two file-path columns are swapped for part of the release, so
  neither column is trusted. Among the files named by both columns (or found in the series
  folder) the mask is the one whose Rows x Columns equal the full image and whose pixels are
  binary; the finding box is the bounding box of its nonzero pixels (``x`` = column, edges in
  pixel units, so a single pixel at column 3 gives ``xmin=3, xmax=4``). If no such file exists
  (missing file, or a mask whose size differs from the image) the image is kept and the finding
  is reported as dropped.
- Pathology MALIGNANT -> ``malignant=True``; BENIGN / BENIGN_WITHOUT_CALLBACK -> ``False``;
  ``cancer`` = 1 if any abnormality of the image is malignant (also when its ROI was dropped).
- Finding ``subtype`` = ``<mass shape>/<mass margins>`` or ``<calc type>/<calc distribution>``
  in lower case; ``birads`` = assessment; ``source_label`` = abnormality type.
- ``split`` from the CSV file name (train/test); ``abnormality`` = 'mass' or 'calc' (source
  CSV family). Rows, cols, pixel spacing and vendor come from the full image's DICOM header.
"""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path, PurePosixPath

import numpy as np

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
from mammo_helpers.io import DicomError, read_dicom

CSV_FILES = {
    ("mass", "train"): "mass_case_description_train_set.csv",
    ("mass", "test"): "mass_case_description_test_set.csv",
    ("calc", "train"): "calc_case_description_train_set.csv",
    ("calc", "test"): "calc_case_description_test_set.csv",
}
COMMON_COLUMNS = (
    "patient_id",
    "left or right breast",
    "image view",
    "abnormality id",
    "abnormality type",
    "assessment",
    "pathology",
    "subtlety",
    "image file path",
    "cropped image file path",
    "ROI mask file path",
)
FAMILY_COLUMNS = {
    "mass": ("breast_density", "mass shape", "mass margins"),
    "calc": ("breast density", "calc type", "calc distribution"),
}
DENSITY_ALIASES = {
    "mass": {"breast_density": ("breast density",)},
    "calc": {"breast density": ("breast_density",)},
}
SIDES = {"LEFT": "L", "RIGHT": "R"}
PATHOLOGY = {"MALIGNANT": True, "BENIGN": False, "BENIGN_WITHOUT_CALLBACK": False}
LABELS = {"mass": "mass", "calcification": "calcification"}


class _Resolver:
    """Find DICOM files for CSV paths, in the CSV layout or a TCIA download layout."""

    def __init__(self, root: Path):
        self.root = root
        self._folders: dict[str, list[Path]] | None = None

    def _index(self) -> dict[str, list[Path]]:
        if self._folders is None:
            folders: dict[str, list[Path]] = defaultdict(list)
            for dirpath, dirnames, _ in os.walk(self.root):
                for name in dirnames:
                    folders[name].append(Path(dirpath) / name)
            self._folders = dict(folders)
        return self._folders

    def files(self, rel: str | None) -> list[Path]:
        """Existing DICOM file(s) for a CSV path (the exact file, or all files of its series)."""
        if not rel:
            return []
        exact = self.root / rel
        if exact.is_file():
            return [exact]
        series = PurePosixPath(rel).parts[0]
        found = {f for folder in self._index().get(series, []) for f in folder.rglob("*.dcm")}
        return sorted(found)


def _subtype(*parts: str | None) -> str | None:
    kept = [p.lower() for p in parts if p and p.upper() not in ("NA", "N/A", "NAN")]
    return "/".join(kept) or None


def _mask_box(candidates: list[Path], rows: int, cols: int):
    """(box, path, problem): bounding box of the binary full-size mask among ``candidates``."""
    if not candidates:
        return None, None, "ROI mask file not found"
    problem = "no binary ROI mask with the full image size"
    for path in candidates:
        try:
            info = header_info(path)
            if (info["rows"], info["cols"]) != (rows, cols):
                continue
            # Masks may not be labelled MG; no VOI needed to find the stored nonzero pixels.
            image = read_dicom(path, apply_voi=False, require_mg=False)
        except DicomError:
            problem = "unreadable ROI DICOM file"
            continue
        pixels = np.asarray(image.pixels)
        values = np.unique(pixels)
        if values.size > 2:
            continue
        if values.size < 2:
            problem = "ROI mask is empty"
            continue
        # read_dicom inverts MONOCHROME1, where the stored nonzero pixels become the darker value
        inverted = image.photometric == "MONOCHROME1"
        ys, xs = np.nonzero(pixels < values[1] if inverted else pixels > values[0])
        box = (float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1))
        return box, path, None
    return None, None, problem


def load_cbis_ddsm(
    root: str | os.PathLike,
    *,
    csv_dir: str | os.PathLike | None = None,
    abnormalities: tuple[str, ...] = ("mass", "calc"),
    splits: tuple[str, ...] = ("train", "test"),
):
    """Manifest of CBIS-DDSM full mammograms with mass / calcification boxes from the ROI masks.

    ``abnormalities`` and ``splits`` choose which of the four CSVs are read (all must exist).
    """
    root = as_root(root, "CBIS-DDSM")
    csv_root = Path(csv_dir).expanduser().absolute() if csv_dir is not None else root
    report = LoadReport("cbis_ddsm", "load_cbis_ddsm")
    resolver = _Resolver(root)
    rows: list[dict] = []
    for family in abnormalities:
        if family not in FAMILY_COLUMNS:
            raise ValueError(f"abnormalities: {family!r} is not one of 'mass', 'calc'")
        density_col, type_col, detail_col = FAMILY_COLUMNS[family]
        for split in splits:
            if (family, split) not in CSV_FILES:
                raise ValueError(f"splits: {split!r} is not one of 'train', 'test'")
            name = CSV_FILES[(family, split)]
            table = read_table(
                csv_root / name,
                COMMON_COLUMNS + FAMILY_COLUMNS[family],
                what=f"CBIS-DDSM {family} {split} CSV",
                aliases=DENSITY_ALIASES[family],
            )
            groups: dict[str, list] = defaultdict(list)
            for idx, rec in records(table):
                image_path = clean(rec["image file path"])
                if image_path is None:
                    report.drop(
                        "empty image file path", level="row", source_file=name, source_row=idx
                    )
                    continue
                groups[image_path].append((idx, rec))
            for image_path, members in groups.items():
                row = _image_row(
                    image_path,
                    members,
                    family,
                    split,
                    name,
                    density_col,
                    type_col,
                    detail_col,
                    resolver,
                    report,
                )
                if row is not None:
                    rows.append(row)
    return report.finish(rows)


def _image_row(
    image_path, members, family, split, name, density_col, type_col, detail_col, resolver, report
):
    first_idx, first = members[0]
    image_id = PurePosixPath(image_path).parts[0]
    where = {"source_file": name, "source_row": first_idx, "image_id": image_id}
    laterality = SIDES.get((clean(first["left or right breast"]) or "").upper())
    view = clean(first["image view"])
    if laterality is None or view not in ("CC", "MLO"):
        report.drop(
            f"side/view {first['left or right breast']}/{view} not LEFT|RIGHT / CC|MLO", **where
        )
        return None
    files = resolver.files(image_path)
    if not files:
        report.drop("full image file not found", **where)
        return None
    if len(files) > 1:
        report.drop(f"{len(files)} DICOM files for one full image", **where)
        return None
    try:
        info = header_info(files[0])
    except DicomError as exc:
        report.drop(f"unreadable full image DICOM ({type(exc).__name__})", **where)
        return None
    density_code = to_int(first[density_col])
    density = DENSITY_FROM_INT.get(density_code) if density_code is not None else None
    if density is None:
        report.note("images with density outside 1-4 set to missing")

    findings, malignant_flags = [], []
    for idx, rec in members:
        fwhere = {"source_file": name, "source_row": idx, "image_id": image_id}
        kind = (clean(rec["abnormality type"]) or "").lower()
        malignant = PATHOLOGY.get((clean(rec["pathology"]) or "").upper())
        malignant_flags.append(malignant)
        label = LABELS.get(kind)
        if label is None:
            report.drop(f"unknown abnormality type {kind!r}", level="finding", **fwhere)
            continue
        candidates = []
        for col in ("ROI mask file path", "cropped image file path"):
            for path in resolver.files(clean(rec[col])):
                if path not in candidates and path != files[0]:
                    candidates.append(path)
        box, mask_path, problem = _mask_box(candidates, info["rows"], info["cols"])
        if box is None:
            report.drop(problem, level="finding", **fwhere)
            continue
        found = boxed_finding(
            label,
            box,
            rows=info["rows"],
            cols=info["cols"],
            report=report,
            malignant=malignant,
            source_label=kind,
            mask_path=str(mask_path),
            subtype=_subtype(clean(rec[type_col]), clean(rec[detail_col])),
            birads=clean(rec["assessment"]),
            **fwhere,
        )
        if found is not None:
            findings.append(found)

    if any(m is True for m in malignant_flags):
        cancer = 1
    elif all(m is False for m in malignant_flags):
        cancer = 0
    else:
        cancer = None
    patient_id = clean(first["patient_id"])
    return manifest_row(
        patient_id=patient_id,
        study_id=patient_id,
        image_id=image_id,
        path=files[0],
        laterality=laterality,
        view=view,
        site="cbis_ddsm",
        vendor=info["vendor"],
        density=density,
        pixel_spacing_mm=info["pixel_spacing_mm"],
        rows=info["rows"],
        cols=info["cols"],
        cancer=cancer,
        findings=findings,
        split=split,
        abnormality=family,
    )
