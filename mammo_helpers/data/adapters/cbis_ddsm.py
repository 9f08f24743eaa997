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
  files); either spelling is accepted in either file. 1-4 -> A-D; blank -> missing.
- Path cells can end with a newline inside the quotes; all paths are stripped.
- Path layout: the CSV paths (``<series folder>/<StudyUID>/<SeriesUID>/00000x.dcm``) are first
  resolved relative to ``root``. TCIA downloads (NBIA Data Retriever) store the same series as
  ``CBIS-DDSM/<series folder>/<date-...>/<n.000000-description-...>/1-1.dcm``, so if the CSV path
  does not exist the series folder name (the first path component) is searched anywhere under
  ``root`` and the ``.dcm`` files inside it are used.
- Cropped image vs ROI mask: the two file-path columns are swapped for part of the release, so
  neither column is trusted. Among the files named by both columns (or found in the series
  folder) the mask is the one whose Rows x Columns equal the full image and whose pixels are
  binary; the finding box is the bounding box of its nonzero pixels
  (:func:`mammo_helpers.boxes.mask_box`: ``x`` = column, edges in pixel units, so a single
  pixel at column 3 gives ``xmin=3, xmax=4``). If no such file exists
  (missing file, or a mask whose size differs from the image) the image is kept and the finding
  is reported as dropped.
- Pathology MALIGNANT -> ``malignant=True``; BENIGN / BENIGN_WITHOUT_CALLBACK -> ``False``;
  ``cancer`` = 1 if any abnormality of the image is malignant (also when its ROI was dropped).
- Finding ``subtype`` = ``<mass shape>/<mass margins>`` or ``<calc type>/<calc distribution>``
  in lower case; ``birads`` = assessment; ``source_label`` = abnormality type.
- ``split`` from the CSV file name (train/test); ``abnormality`` = 'mass' or 'calc' (source
  CSV family). Rows, cols, pixel spacing and vendor come from the full image's DICOM header.
- Views other than ``views`` (default CC/MLO, all CBIS-DDSM has) are dropped with a reason.

Bad cells (the rule of :mod:`mammo_helpers.data.adapters._common`):
- dropped: a row with an empty ``image file path`` (level 'row'); an image whose side or view
  is not LEFT/RIGHT and one of ``views``, without ``patient_id``, whose series folder name
  repeats an image already kept, whose full image is missing or whose DICOM header cannot be
  read (missing, truncated, no Rows/Columns); a finding of an unknown abnormality type or
  without a usable ROI mask (level 'finding');
- set to missing (level 'value'): a density other than 1-4 (the image's first abnormality
  row is read), a ``pathology`` other than MALIGNANT / BENIGN / BENIGN_WITHOUT_CALLBACK (the
  finding's ``malignant`` and so maybe the image's ``cancer``), an ``assessment`` other than
  0-5 (the finding's ``birads``).
"""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd

from mammo_helpers.boxes import mask_box
from mammo_helpers.data.adapters._common import (
    DENSITY_FROM_INT,
    LoadReport,
    as_root,
    boxed_finding,
    codes,
    header_info,
    numbers,
    objects,
    read_table,
    resolve_views,
    text,
)
from mammo_helpers.data.manifest import manifest_row
from mammo_helpers.io import DicomError, read_dicom
from mammo_helpers.paths import existing_dir
from mammo_helpers.vocab import VIEWS

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
FILE_COLUMNS = ("ROI mask file path", "cropped image file path")


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


def _binary_box(path: Path, rows: int, cols: int):
    """(box, problem) of the binary full-size mask in ``path``; box None if it is not one.

    The file is read once (header and pixels); only if that fails is the header read alone,
    so that a file of another size is skipped, as a header check first would do.
    """
    try:
        # Masks may not be labelled MG; no VOI needed to find the stored nonzero pixels.
        image = read_dicom(path, apply_voi=False, require_mg=False)
    except DicomError:
        info = header_info(path)  # DicomError: unreadable
        if (info["rows"], info["cols"]) != (rows, cols):
            return None, None
        raise
    pixels = np.asarray(image.pixels)
    if pixels.shape != (rows, cols):
        return None, None
    lo, hi = pixels.min(), pixels.max()
    if lo == hi:
        return None, "ROI mask is empty"
    if not ((pixels == lo) | (pixels == hi)).all():
        return None, None
    # read_dicom inverts MONOCHROME1, where the stored nonzero pixels become the darker value
    return mask_box(pixels == (lo if image.photometric == "MONOCHROME1" else hi)), None


def _mask_box(candidates: list[Path], rows: int, cols: int):
    """(box, path, problem): bounding box of the binary full-size mask among ``candidates``."""
    if not candidates:
        return None, None, "ROI mask file not found"
    problem = "no binary ROI mask with the full image size"
    for path in candidates:
        try:
            box, why = _binary_box(path, rows, cols)
        except DicomError:
            problem = "unreadable ROI DICOM file"
            continue
        if box is not None:
            return box, path, None
        problem = why or problem
    return None, None, problem


def load_cbis_ddsm(
    root: str | os.PathLike,
    *,
    csv_dir: str | os.PathLike | None = None,
    abnormalities: tuple[str, ...] = ("mass", "calc"),
    splits: tuple[str, ...] = ("train", "test"),
    views: tuple[str, ...] | None = VIEWS,
):
    """Manifest of CBIS-DDSM full mammograms with mass / calcification boxes from the ROI masks.

    ``abnormalities`` and ``splits`` choose which of the four CSVs are read (all must exist);
    ``views`` the view codes kept (``None``: every code in ``vocab.ALL_VIEWS``).
    """
    root = as_root(root, "CBIS-DDSM")
    csv_root = root if csv_dir is None else existing_dir(csv_dir, "CBIS-DDSM CSV", "csv_dir")
    views = resolve_views(views)
    report = LoadReport("cbis_ddsm", "load_cbis_ddsm", in_file_order=True)
    resolver = _Resolver(root)
    rows: list[dict] = []
    seen: set[str] = set()
    for family in abnormalities:
        if family not in FAMILY_COLUMNS:
            raise ValueError(f"abnormalities: {family!r} is not one of 'mass', 'calc'")
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
            report.stage += 1
            csv = _Table(table, name, family, split, views, report)
            report.stage += 1
            for members in csv.images():
                row = csv.image_row(members, resolver, seen)
                if row is not None:
                    rows.append(row)
    return report.finish(rows)


class _Table:
    """One case-description CSV parsed column by column; rows grouped by full image."""

    def __init__(self, table, name, family, split, views, report):
        self.name, self.family, self.split, self.views = name, family, split, views
        self.report = report
        density_col, type_col, detail_col = FAMILY_COLUMNS[family]
        self.rows = table.index.to_numpy()
        self.image_path = objects(text(table["image file path"]))
        empty = pd.isna(self.image_path)
        report.drop_many(self.rows[empty], "empty image file path", level="row", source_file=name)
        self.side_raw = table["left or right breast"].astype(object).to_numpy()
        self.side = objects(text(table["left or right breast"]).str.upper().map(SIDES))
        self.view = objects(text(table["image view"]))
        self.patient = objects(text(table["patient_id"]))
        self.density_col = density_col
        self.density, self.bad_density = numbers(table[density_col], integer=True, low=1, high=4)
        self.malignant, self.bad_pathology = codes(text(table["pathology"]).str.upper(), PATHOLOGY)
        assessment = text(table["assessment"])
        values, self.bad_assessment = numbers(assessment, integer=True, low=0, high=5)
        self.assessment = objects(assessment.where(~np.isnan(values)))
        self.kind = objects(text(table["abnormality type"]).str.lower().fillna(""))
        shape, detail = objects(text(table[type_col])), objects(text(table[detail_col]))
        self.subtype = [_subtype(a, b) for a, b in zip(shape, detail, strict=True)]
        self.files = {c: objects(text(table[c])) for c in FILE_COLUMNS}
        self.table = table

    def images(self) -> list[np.ndarray]:
        """Positions of the rows of each full image, images in order of first appearance."""
        has = np.flatnonzero(pd.notna(self.image_path))
        codes_, _ = pd.factorize(self.image_path[has])
        order = np.argsort(codes_, kind="stable")
        bounds = np.flatnonzero(np.diff(codes_[order])) + 1
        return np.split(has[order], bounds) if len(has) else []

    def _drop(self, reason, pos, first, image_id, level="image"):
        self.report.drop(
            reason,
            level=level,
            source_file=self.name,
            source_row=int(self.rows[pos]),
            image_id=image_id,
            group=int(self.rows[first]),
        )

    def image_row(self, members, resolver, seen) -> dict | None:
        """The manifest row of one full image (``None``, with the reason, if it is dropped)."""
        first = members[0]
        image_path = self.image_path[first]
        image_id = PurePosixPath(image_path).parts[0]
        laterality, view = self.side[first], self.view[first]
        if laterality is None or view not in self.views:
            side = self.side_raw[first]
            self._drop(
                f"side/view {side}/{view} not LEFT|RIGHT / {'|'.join(self.views)}",
                first,
                first,
                image_id,
            )
            return None
        if self.patient[first] is None:
            self._drop("missing patient_id", first, first, image_id)
            return None
        if image_id in seen:
            self._drop("duplicate image (series folder name)", first, first, image_id)
            return None
        files = resolver.files(image_path)
        if not files:
            self._drop("full image file not found", first, first, image_id)
            return None
        if len(files) > 1:
            self._drop(f"{len(files)} DICOM files for one full image", first, first, image_id)
            return None
        try:
            info = header_info(files[0])
        except DicomError as exc:
            self._drop(
                f"unreadable full image DICOM ({type(exc).__name__})", first, first, image_id
            )
            return None
        seen.add(image_id)
        self._values(members, image_id)
        findings = [
            f
            for pos in members
            if (f := self._finding(pos, first, image_id, files[0], info, resolver))
        ]
        flags = [self.malignant[pos] for pos in members]
        if any(m is True for m in flags):
            cancer = 1
        elif all(m is False for m in flags):
            cancer = 0
        else:
            cancer = None
        code = self.density[first]
        return manifest_row(
            patient_id=self.patient[first],
            study_id=self.patient[first],
            image_id=image_id,
            path=files[0],
            laterality=laterality,
            view=view,
            site="cbis_ddsm",
            vendor=info["vendor"],
            density=None if np.isnan(code) else DENSITY_FROM_INT[int(code)],
            pixel_spacing_mm=info["pixel_spacing_mm"],
            rows=info["rows"],
            cols=info["cols"],
            cancer=cancer,
            findings=findings,
            split=self.split,
            abnormality=self.family,
        )

    def _values(self, members, image_id) -> None:
        """Report the unreadable value cells of a kept image's rows."""
        first = members[0]
        only_first = np.zeros(len(self.rows), dtype=bool)
        only_first[first] = self.bad_density[first]
        mine = np.zeros(len(self.rows), dtype=bool)
        mine[members] = True
        ids = np.full(len(self.rows), image_id, dtype=object)
        groups = np.full(len(self.rows), self.rows[first])
        for bad, column, rule in (
            (only_first, self.density_col, "is not 1-4"),
            (
                mine & self.bad_pathology,
                "pathology",
                "is not MALIGNANT/BENIGN/BENIGN_WITHOUT_CALLBACK",
            ),
            (mine & self.bad_assessment, "assessment", "is not BI-RADS 0-5"),
        ):
            self.report.bad_values(
                bad,
                column,
                self.table[column],
                rule,
                source_file=self.name,
                image_ids=ids,
                groups=groups,
            )

    def _finding(self, pos, first, image_id, full_path, info, resolver) -> dict | None:
        kind = self.kind[pos]
        label = LABELS.get(kind)
        if label is None:
            self._drop(f"unknown abnormality type {kind!r}", pos, first, image_id, "finding")
            return None
        candidates = []
        for col in FILE_COLUMNS:
            for path in resolver.files(self.files[col][pos]):
                if path not in candidates and path != full_path:
                    candidates.append(path)
        box, mask_path, problem = _mask_box(candidates, info["rows"], info["cols"])
        if box is None:
            self._drop(problem, pos, first, image_id, "finding")
            return None
        return boxed_finding(
            label,
            box,
            rows=info["rows"],
            cols=info["cols"],
            report=self.report,
            malignant=self.malignant[pos],
            source_label=kind,
            mask_path=str(mask_path),
            subtype=self.subtype[pos],
            birads=self.assessment[pos],
            source_file=self.name,
            source_row=int(self.rows[pos]),
            image_id=image_id,
            group=int(self.rows[first]),
        )
