"""The vectorised adapters give exactly what the row-by-row adapters gave.

The second half of this file is a saved copy of the adapters as they were before they were
vectorised (one Python loop iteration per CSV row; commit 4d2d477), kept only here. On the
committed fixtures and on generated tables with injected bad rows of every kind the old code
handled, the new loaders must return the same manifest (values and dtypes, findings included),
the same ``attrs["dropped"]`` table (rows, order and reasons) and the same ``attrs["notes"]``.
Inputs that the old code could not handle (it aborted or accepted them silently) have their
own tests in ``test_adapters_bad_input.py``.
"""

from __future__ import annotations

import ast
import math
import os
import plistlib
import re
import shutil
import warnings
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path, PurePosixPath
from typing import Any
from xml.parsers.expat import ExpatError

import numpy as np
import pandas as pd
import pytest
from bench_adapters import make_cbis_ddsm, make_embed, make_inbreast, make_rsna, make_vindr

from mammo_helpers.boxes import clip_box
from mammo_helpers.data.adapters import LOADERS, AdapterWarning
from mammo_helpers.data.manifest import (
    MANIFEST_COLUMNS,
    make_finding,
    manifest_row,
    validate_manifest,
)
from mammo_helpers.io import (
    DicomError,
    pixel_spacing_mm,
    read_dicom,
    read_dicom_header,
    write_dicom,
)
from mammo_helpers.vocab import LATERALITIES, VIEWS

DATASETS = Path(__file__).parent / "fixtures" / "datasets"


def _load(loader, root, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AdapterWarning)
        return loader(root, **kwargs)


def assert_same(name: str, root: Path, **kwargs) -> pd.DataFrame:
    """New and legacy loader agree on ``root``; returns the new manifest."""
    new = _load(LOADERS[name], root, **kwargs)
    old = _load(LEGACY[name], root, **kwargs)
    pd.testing.assert_frame_equal(new, old, check_exact=True)
    assert list(new["findings"]) == list(old["findings"])
    pd.testing.assert_frame_equal(new.attrs["dropped"], old.attrs["dropped"], check_exact=True)
    assert new.attrs["notes"] == old.attrs["notes"]
    return new


@pytest.mark.parametrize("name", ["vindr", "cbis_ddsm", "rsna", "embed", "inbreast"])
def test_same_as_row_loop_on_fixtures(name):
    df = assert_same(name, DATASETS / name)
    assert len(df) and len(df.attrs["dropped"])


def test_same_as_row_loop_with_require_files():
    for name in ("vindr", "rsna", "embed"):
        df = assert_same(name, DATASETS / name, require_files=True)
        missing = "image file not found" in set(df.attrs["dropped"]["reason"])
        assert missing == (name == "vindr")  # the VinDr fixture lacks one DICOM


# --------------------------------------------------------------------------- bad rows
def _read(path: Path, sep: str = ",") -> pd.DataFrame:
    return pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False)


def _write(frame: pd.DataFrame, path: Path, sep: str = ",") -> None:
    frame.to_csv(path, sep=sep, index=False, lineterminator="\n")


def _with(frame: pd.DataFrame, base: int, **changes) -> pd.DataFrame:
    """Row ``base`` of ``frame`` with some cells changed, as a one-row frame."""
    row = frame.iloc[[base]].copy()
    for col, value in changes.items():
        row[col] = value
    return row


def _append(frame: pd.DataFrame, *rows: pd.DataFrame) -> pd.DataFrame:
    return pd.concat([frame, *rows], ignore_index=True)


def _vindr_bad(root: Path) -> None:
    breast_csv, finding_csv = (
        root / "breast-level_annotations.csv",
        root / "finding_annotations.csv",
    )
    b, f = _read(breast_csv), _read(finding_csv)
    new_id = "e" * 32
    b.loc[3, "image_id"] = ""  # missing image_id (its finding rows: image not kept)
    b.loc[5, "study_id"] = " "
    b.loc[6, "view_position"] = "ML"
    b.loc[7, "laterality"] = "B"
    b.loc[8, "view_position"] = ""
    b.loc[9, ["breast_birads", "breast_density", "height"]] = ""
    b.loc[10, ["laterality", "view_position", "width"]] = [" R ", "CC ", "2800.0"]
    b.loc[11, "split"] = "validation"
    b = _append(
        b,
        _with(b, 0),  # exact duplicate of a kept row
        _with(b, 1, image_id=new_id, view_position="LM"),  # dropped for its view ...
        _with(b, 1, image_id=new_id),  # ... so this later copy is kept
        _with(b, 2, image_id=new_id),  # and this one is a duplicate
    )
    boxed = f.index[(f["finding_categories"] != "['No Finding']") & (f.index > 60)]
    base = boxed[0]  # a box row of an image that is kept
    i9, i6 = b.loc[9, "image_id"], b.loc[6, "image_id"]
    assert f.loc[base, "image_id"] in set(b.loc[12:, "image_id"])
    rows = [
        _with(f, base, image_id="f" * 32),  # image not in the breast-level CSV
        _with(f, base, image_id=i6),  # image dropped for its view
        _with(f, base, finding_categories="['Mass'"),
        _with(f, base, finding_categories="['Calcification', 'Mass']", finding_birads=""),
        _with(f, base, finding_categories="['No Finding', 'Mass']", xmin="-4", xmax="50000"),
        _with(f, base, finding_categories="[]"),
        _with(f, base, finding_categories=""),
        _with(f, base, finding_categories="'Mass'"),
        _with(f, base, finding_categories="('Asymmetry', 'Skin Retraction')"),
        _with(f, base, finding_categories="['Mass', 'Focal Asymmetry']", xmin="", ymin=""),
        _with(f, base, xmin="9000", xmax="9100"),  # outside the image
        _with(f, base, xmin="2700", xmax="2900", ymax="3600"),  # clipped
        _with(f, base, image_id=i9, xmin="10", ymin="20", xmax="2000", ymax="4000"),  # no height
        _with(f, base, image_id=new_id, finding_categories="['Suspicious Lymph Node']"),
    ]
    _write(b, breast_csv)
    _write(_append(f, *rows), finding_csv)


def _rsna_bad(root: Path) -> None:
    csv = root / "train.csv"
    t = _read(csv)
    t.loc[2, "patient_id"] = ""
    t.loc[4, "image_id"] = " "
    t.loc[5, "view"] = "AT"
    t.loc[6, "view"] = "LMO"
    t.loc[7, "view"] = ""
    t.loc[8, "laterality"] = "X"
    t.loc[9, ["age", "BIRADS", "cancer", "biopsy", "density"]] = ""
    t.loc[10, ["site_id", "machine_id", "difficult_negative_case"]] = ["", "", "1"]
    t.loc[11, ["age", "difficult_negative_case"]] = ["58", "True"]
    t.loc[12, ["laterality", "view", "density"]] = [" L", "MLO ", " C "]
    new_id = "999999999"
    t = _append(
        t,
        _with(t, 0),
        _with(t, 1, image_id=new_id, view="ML"),
        _with(t, 1, image_id=new_id),
        _with(t, 3, image_id=new_id),
    )
    _write(t, csv)


def _embed_bad(root: Path) -> None:
    meta_csv = root / "tables" / "EMBED_OpenData_metadata.csv"
    clin_csv = root / "tables" / "EMBED_OpenData_clinical.csv"
    m, c = _read(meta_csv), _read(clin_csv)
    acc0, empi0 = m.loc[0, "acc_anon"], m.loc[0, "empi_anon"]
    path0 = m.loc[0, "anon_dicom_path"]
    m.loc[1, "FinalImageType"] = "3D"
    m.loc[2, "FinalImageType"] = " C-view"
    m.loc[3, "spot_mag"] = "1"
    m.loc[4, "spot_mag"] = "0"
    m.loc[5, "ViewPosition"] = "XCCL"
    m.loc[6, "ImageLateralityFinal"] = ""
    m.loc[7, "anon_dicom_path"] = "/mnt/NAS2/mammo/anon_dicom/57/1.dcm"
    m.loc[8, "acc_anon"] = "123"  # exam not in the clinical table
    m.loc[9, "empi_anon"] = "1"  # empi differs
    m.loc[[10, 12], ["acc_anon", "empi_anon"]] = [acc0, empi0]
    m.loc[10, ["Rows", "Columns"]] = ""
    m.loc[10, "ROI_coords"] = "[[10, 20, 30000, 40]]"  # size unknown: kept as is
    m.loc[11, "ROI_coords"] = "[[1, 2, 3]]"  # unparseable
    m.loc[12, "anon_dicom_path"] = path0.replace("/mnt/NAS2", "/mnt//NAS2/./x")  # normalised
    m.loc[12, "ROI_coords"] = "((40, 50, 60, 70),)"
    m.loc[13, ["FinalImageType", "ROI_coords"]] = ["ROI_SS", "[[1, 1, 5, 5]]"]
    m = _append(
        m,
        _with(m, 0),  # duplicate SOP
        _with(m, 0, ROI_coords="[[5, 6, 100, 90], [4000, 3300, 4200, 3400]]"),  # dup too
        _with(m, 0, anon_dicom_path=path0.replace(".dcm", "b.dcm"), ROI_coords="[[3, 4, 50, 60]]"),
    )
    clin = [
        _with(c, 0, acc_anon=""),  # no acc_anon
        _with(c, 0, side="B", massshape="X", massmargin="S", path_severity="1", asses="S"),
        _with(c, 0, side="R", tissueden="5", calcfind="K", path_severity="", asses=""),
    ]
    c.loc[c["acc_anon"] == acc0, ["tissueden", "age_at_study", "desc"]] = ""
    c = _append(c, *clin)
    c.loc[len(c) - 1, "tissueden"] = "2"
    assert (m["empi_anon"] == empi0).any()
    _write(m, meta_csv)
    _write(c, clin_csv)


def _cbis_bad(root: Path) -> None:
    mass = root / "mass_case_description_train_set.csv"
    calc = root / "calc_case_description_test_set.csv"
    t = _read(mass)
    t.loc[0, "image file path"] = ""
    t.loc[1, "left or right breast"] = "BOTH"
    t.loc[2, "image view"] = "ML"
    t.loc[3, "ROI mask file path"] = "nowhere_1/1/2/000000.dcm"
    t.loc[3, "cropped image file path"] = "nowhere_1/1/2/000001.dcm"
    t.loc[4, "abnormality type"] = "architectural"
    t.loc[5, "image file path"] = "Mass-Training_P_99999_LEFT_CC/1/2/000000.dcm"
    wrong = root / "wrong_1" / "000000.dcm"
    write_dicom(
        wrong, np.full((30, 48), 255, np.uint16), pixel_spacing_mm=None, laterality="L",
        view="CC", patient_id="p", study_id="s", image_id="w", bits_stored=8,
    )  # fmt: skip
    t.loc[6, "ROI mask file path"] = "wrong_1/000000.dcm"
    t.loc[6, "cropped image file path"] = ""
    _write(t, mass)
    c = _read(calc)
    c.loc[0, "pathology"] = "BENIGN_WITHOUT_CALLBACK"
    c.loc[0, "calc distribution"] = "N/A"
    _write(c, calc)


def _inbreast_bad(root: Path) -> None:
    csv = root / "INbreast.csv"
    t = _read(csv, ";")
    dicoms = root / "AllDICOMs"
    first = {p.name.split("_", 1)[0]: p for p in sorted(dicoms.glob("*.dcm"))}
    names = list(t["File Name"])
    t.loc[0, "File Name"] = ""
    t.loc[1, "File Name"] = names[1] + ".0"
    first[names[2]].unlink()  # DICOM missing
    shutil.copy(first[names[3]], dicoms / first[names[3]].name.replace("_ANON", "_ANON2"))
    shutil.copy(first[names[3]], dicoms / (names[3] + "_x.dcm"))  # several files
    first[names[4]].rename(dicoms / f"{names[4]}_MG_L_CC.dcm")  # unexpected name
    t.loc[5, "View"] = "CC" if t.loc[5, "View"] != "CC" else "MLO"  # disagrees
    first[names[6]].unlink()  # a hard link: replace the file, do not write through it
    first[names[6]].write_bytes(b"not a dicom")
    t.loc[7, ["ACR", "Bi-Rads"]] = [" ", "4B"]
    xml = root / "AllXML"
    (xml / f"{names[8]}.xml").write_text("<plist><dict><key>Images")
    rois = [
        {"Name": "Point 1", "Point_px": ["(1, 1)"]},
        {"Name": "Mass", "Point_px": []},
        {"Name": "Mass", "Point_px": ["(40, 60)", "(60, 70)", "(45, 80)"]},  # clipped
        {"Name": "Calcification", "Point_px": ["(100, 100)"]},  # outside
    ]
    (xml / f"{names[9]}.xml").write_bytes(plistlib.dumps({"Images": [{"ROIs": rois}]}))
    _write(t, csv, ";")


BAD = {
    "vindr": (lambda r: make_vindr(r, n_studies=60, seed=3), _vindr_bad),
    "rsna": (lambda r: make_rsna(r, n_rows=300, seed=3), _rsna_bad),
    "embed": (lambda r: make_embed(r, n_images=400, seed=3), _embed_bad),
    "cbis_ddsm": (lambda r: make_cbis_ddsm(r, scale=0.01, seed=3), _cbis_bad),
    "inbreast": (lambda r: make_inbreast(r, n_images=24, seed=3), _inbreast_bad),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_same_as_row_loop_on_generated_tables_with_bad_rows(name, tmp_path):
    make, inject = BAD[name]
    root = make(tmp_path / name)
    inject(root)
    df = assert_same(name, root)
    dropped = df.attrs["dropped"]
    assert len(dropped) >= 5 and dropped["level"].nunique() >= 2
    assert sum(len(f) for f in df["findings"]) > 0 or name == "rsna"


def test_same_as_row_loop_with_require_files_on_generated_tables(tmp_path):
    root = make_vindr(tmp_path / "vindr", n_studies=20, seed=4)
    breast = _read(root / "breast-level_annotations.csv")
    for study, image in list(zip(breast["study_id"], breast["image_id"], strict=True))[::3]:
        (root / "images" / study).mkdir(parents=True, exist_ok=True)
        (root / "images" / study / f"{image}.dicom").write_bytes(b"")
    df = assert_same("vindr", root, require_files=True)
    assert 0 < len(df) < len(breast)


# =========================================================================== legacy code
# The adapters before vectorisation (commit 4d2d477), docstrings removed. Do not "fix" this
# code: it is the reference the vectorised adapters are compared with.
# ------------------------------------------------------------ legacy _common.py
DENSITY_FROM_INT = {1: "A", 2: "B", 3: "C", 4: "D"}
DROPPED_COLUMNS = ("level", "source_file", "source_row", "image_id", "reason")


def as_root(root: str | os.PathLike, dataset: str) -> Path:
    path = Path(root).expanduser().absolute()
    if not path.is_dir():
        raise FileNotFoundError(f"{dataset} root folder not found: {str(path)!r}")
    return path


def read_table(
    path: Path,
    required: Sequence[str],
    *,
    what: str,
    sep: str = ",",
    aliases: dict | None = None,
    optional: Sequence[str] | None = None,
) -> pd.DataFrame:
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {str(path)!r}")
    try:
        return _read_checked(path, required, sep, aliases, optional, "utf-8")
    except UnicodeDecodeError:
        return _read_checked(path, required, sep, aliases, optional, "latin-1")


def _read_checked(path, required, sep, aliases, optional, encoding) -> pd.DataFrame:
    header = pd.read_csv(path, sep=sep, nrows=0, encoding=encoding).columns
    names = {str(c).strip(): c for c in header}
    for name, alternatives in (aliases or {}).items():
        if name not in names:
            alt = next((a for a in alternatives if a in names), None)
            if alt is not None:
                names[name] = names.pop(alt)
    require_columns(pd.DataFrame(columns=list(names)), required, path)
    wanted = list(names) if optional is None else [*required, *(c for c in optional if c in names)]
    df = pd.read_csv(
        path,
        sep=sep,
        dtype=str,
        encoding=encoding,
        usecols=[names[c] for c in wanted],
        keep_default_na=True,
    )
    df = df.rename(columns={names[c]: c for c in wanted})[wanted]
    return df.dropna(how="all")


def records(df: pd.DataFrame) -> Iterator[tuple[int, dict]]:
    yield from zip((int(i) for i in df.index), df.to_dict("records"), strict=True)


def require_columns(df: pd.DataFrame, required: Iterable[str], path: Path) -> None:
    for col in required:
        if col not in df.columns:
            raise ValueError(
                f'''column "{col}" not found in {path}; columns are {", ".join(map(str, df.columns))}'''
            )


def clean(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if value is pd.NA:
        return None
    text = str(value).strip()
    return text or None


def to_float(value: Any) -> float:
    text = clean(value)
    if text is None:
        return math.nan
    try:
        return float(text)
    except ValueError:
        return math.nan


def to_int(value: Any) -> int | None:
    number = to_float(value)
    if math.isnan(number) or number != int(number):
        return None
    return int(number)


class LoadReport:
    def __init__(self, dataset: str, loader: str):
        self.dataset = dataset
        self.loader = loader
        self._dropped: list[dict] = []
        self.notes: Counter = Counter()

    def drop(
        self,
        reason: str,
        *,
        level: str = "image",
        source_file: str | None = None,
        source_row: int | None = None,
        image_id: str | None = None,
    ) -> None:
        self._dropped.append(
            {
                "level": level,
                "source_file": source_file,
                "source_row": source_row,
                "image_id": image_id,
                "reason": reason,
            }
        )

    def accept_view(self, laterality, view, view_label=None, **where) -> bool:
        if view not in VIEWS:
            self.drop(f"view {view_label or view} is not CC/MLO", **where)
            return False
        if laterality not in LATERALITIES:
            self.drop(f"laterality {laterality} is not L/R", **where)
            return False
        return True

    def note(self, what: str, n: int = 1) -> None:
        if n:
            self.notes[what] += n

    def dropped_frame(self) -> pd.DataFrame:
        frame = pd.DataFrame(self._dropped, columns=list(DROPPED_COLUMNS))
        frame["source_row"] = frame["source_row"].astype("Int64")
        return frame

    def summary(self, n_images: int) -> str:
        parts = [f"{self.loader}: {n_images} images kept"]
        dropped = Counter((d["level"], d["reason"]) for d in self._dropped)
        if dropped:
            items = "; ".join(
                (
                    f"{n} {level}{('s' if n > 1 else '')}: {reason}"
                    for (level, reason), n in sorted(
                        dropped.items(), key=lambda kv: (-kv[1], kv[0])
                    )
                )
            )
            parts.append(f"dropped {len(self._dropped)} ({items})")
        if self.notes:
            parts.append("; ".join((f"{n} {what}" for what, n in sorted(self.notes.items()))))
        parts.append("details in df.attrs['dropped'] and df.attrs['notes']")
        return "; ".join(parts)

    def finish(
        self, rows: list[dict], *, int_columns: Sequence[str] = (), bool_columns: Sequence[str] = ()
    ) -> pd.DataFrame:
        df = pd.DataFrame(rows)
        if df.empty:
            df = pd.DataFrame(columns=list(MANIFEST_COLUMNS) + [*int_columns, *bool_columns])
        for col in int_columns:
            df[col] = pd.array(list(df[col]), dtype="Int64")
        for col in bool_columns:
            df[col] = pd.array(list(df[col]), dtype="boolean")
        df["source"] = self.dataset
        extra = [c for c in df.columns if c not in MANIFEST_COLUMNS]
        df = df[list(MANIFEST_COLUMNS) + extra].reset_index(drop=True)
        out = validate_manifest(df)
        out.attrs["dropped"] = self.dropped_frame()
        out.attrs["notes"] = dict(self.notes)
        if self._dropped or self.notes:
            warnings.warn(self.summary(len(out)), AdapterWarning, stacklevel=3)
        return out


def boxed_finding(
    label: str,
    box: Sequence[float],
    *,
    rows: int | None,
    cols: int | None,
    report: LoadReport,
    image_id: str,
    source_file: str | None = None,
    source_row: int | None = None,
    malignant: bool | None = None,
    **extra: Any,
) -> dict | None:
    extra = {key: value for key, value in extra.items() if value is not None and value != ""}
    xmin, ymin, xmax, ymax = (float(v) for v in box)
    if any(math.isnan(v) for v in (xmin, ymin, xmax, ymax)):
        report.drop(
            f"{label} finding without box coordinates",
            level="finding",
            source_file=source_file,
            source_row=source_row,
            image_id=image_id,
        )
        return None
    if rows is not None and cols is not None:
        clipped = clip_box(xmin, ymin, xmax, ymax, rows, cols)
        if clipped is None:
            report.drop(
                f"{label} box outside the image after clipping",
                level="finding",
                source_file=source_file,
                source_row=source_row,
                image_id=image_id,
            )
            return None
        if tuple(float(v) for v in clipped) != (xmin, ymin, xmax, ymax):
            report.note("boxes clipped to the image")
        xmin, ymin, xmax, ymax = (float(v) for v in clipped)
    elif not (xmin < xmax and ymin < ymax):
        report.drop(
            f"{label} box is empty",
            level="finding",
            source_file=source_file,
            source_row=source_row,
            image_id=image_id,
        )
        return None
    return make_finding(label, xmin, ymin, xmax, ymax, malignant=malignant, **extra)


def header_info(path: str | os.PathLike) -> dict:
    ds = read_dicom_header(path)
    spacing = pixel_spacing_mm(ds)
    return {
        "rows": int(ds.Rows),
        "cols": int(ds.Columns),
        "pixel_spacing_mm": math.nan if spacing is None else spacing,
        "vendor": clean(ds.get("Manufacturer")) or "unknown",
    }


# ------------------------------------------------------------ legacy vindr.py
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
    if text is None or not text.upper().startswith(prefix):
        return None
    return text[len(prefix) :].strip() or None


def parse_categories(text: str | None) -> list[str]:
    if text is None:
        return []
    value = ast.literal_eval(text)
    if isinstance(value, str):
        return [value]
    return [str(v).strip() for v in value]


def load_vindr(root: str | os.PathLike, *, require_files: bool = False):
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
        laterality, view = (clean(rec["laterality"]), clean(rec["view_position"]))
        if not report.accept_view(laterality, view, **where):
            continue
        path = root / "images" / study_id / f"{image_id}.dicom"
        if require_files and (not path.is_file()):
            report.drop("image file not found", **where)
            continue
        birads = _number_after(clean(rec["breast_birads"]), "BI-RADS")
        split = clean(rec["split"])
        rows[image_id] = manifest_row(
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


# ------------------------------------------------------------ legacy rsna.py
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


def _bool(value) -> bool | None:
    text = clean(value)
    if text is None:
        return None
    return text.lower() in ("true", "1", "1.0")


def load_rsna(root: str | os.PathLike, *, require_files: bool = False):
    root = as_root(root, "RSNA")
    report = LoadReport("rsna", "load_rsna")
    table = read_table(root / TRAIN_CSV, TRAIN_COLUMNS, what="RSNA train.csv")
    rows: list[dict] = []
    seen: set[str] = set()
    for idx, rec in records(table):
        patient_id, image_id = (clean(rec["patient_id"]), clean(rec["image_id"]))
        where = {"source_file": TRAIN_CSV, "source_row": idx, "image_id": image_id}
        if patient_id is None or image_id is None:
            report.drop("missing patient_id or image_id", level="row", **where)
            continue
        if image_id in seen:
            report.drop("duplicate image_id", **where)
            continue
        laterality, view = (clean(rec["laterality"]), clean(rec["view"]))
        if not report.accept_view(laterality, view, **where):
            continue
        density = clean(rec["density"])
        if density is not None and density not in ("A", "B", "C", "D"):
            report.note(f"density {density!r} set to missing")
            density = None
        path = root / "train_images" / patient_id / f"{image_id}.dcm"
        if require_files and (not path.is_file()):
            report.drop("image file not found", **where)
            continue
        seen.add(image_id)
        rows.append(
            manifest_row(
                patient_id=patient_id,
                study_id=patient_id,
                image_id=image_id,
                path=path,
                laterality=laterality,
                view=view,
                site=clean(rec["site_id"]) or "unknown",
                vendor=clean(rec["machine_id"]) or "unknown",
                density=density,
                age=to_float(rec["age"]),
                cancer=to_int(rec["cancer"]),
                birads=to_int(rec["BIRADS"]),
                biopsy=to_int(rec["biopsy"]),
                invasive=to_int(rec["invasive"]),
                implant=to_int(rec["implant"]),
                difficult_negative_case=_bool(rec["difficult_negative_case"]),
                split="train",
            )
        )
    return report.finish(
        rows,
        int_columns=("birads", "biopsy", "invasive", "implant"),
        bool_columns=("difficult_negative_case",),
    )


# ------------------------------------------------------------ legacy cbis_ddsm.py
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
    if not candidates:
        return (None, None, "ROI mask file not found")
    problem = "no binary ROI mask with the full image size"
    for path in candidates:
        try:
            info = header_info(path)
            if (info["rows"], info["cols"]) != (rows, cols):
                continue
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
        inverted = image.photometric == "MONOCHROME1"
        ys, xs = np.nonzero(pixels < values[1] if inverted else pixels > values[0])
        box = (float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1))
        return (box, path, None)
    return (None, None, problem)


def load_cbis_ddsm(
    root: str | os.PathLike,
    *,
    csv_dir: str | os.PathLike | None = None,
    abnormalities: tuple[str, ...] = ("mass", "calc"),
    splits: tuple[str, ...] = ("train", "test"),
):
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
            name = CSV_FILES[family, split]
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
                row = _cbis_image_row(
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


def _cbis_image_row(
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
    findings, malignant_flags = ([], [])
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


# ------------------------------------------------------------ legacy embed.py
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
_NUMBER = re.compile("-?\\d+(?:\\.\\d+)?")
_COHORT = re.compile("cohort_\\d+")


def parse_roi_coords(text: str | None) -> list[tuple[float, float, float, float]]:
    if text is None:
        return []
    values = [float(v) for v in _NUMBER.findall(text)]
    if len(values) % 4:
        raise ValueError(f"ROI_coords {text!r} does not hold groups of 4 numbers")
    return [tuple(values[i : i + 4]) for i in range(0, len(values), 4)]


def finding_labels(rec) -> list[tuple[str, str | None, str]]:
    get = {c: clean(rec.get(c)) for c in ("massshape", "massmargin", "massdens")}
    shape = get["massshape"]
    out = []
    if (
        shape in MASS_SHAPES
        or get["massmargin"] in MASS_MARGINS
        or get["massdens"] in MASS_DENSITIES
    ):
        source = ";".join((f"{k}={v}" for k, v in get.items() if v))
        out.append(("mass", MASS_SHAPES.get(shape or ""), source))
    if shape in ASYMMETRY_SHAPES:
        out.append(("asymmetry", ASYMMETRY_SHAPES[shape], f"massshape={shape}"))
    if shape in DISTORTION_SHAPES:
        out.append(("architectural_distortion", DISTORTION_SHAPES[shape], f"massshape={shape}"))
    calc = {c: clean(rec.get(c)) for c in ("calcfind", "calcdistri", "calcnumber")}
    if any(calc.values()):
        source = ";".join((f"{k}={v}" for k, v in calc.items() if v))
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
        view, laterality = (clean(rec["ViewPosition"]), clean(rec["ImageLateralityFinal"]))
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
        acc, empi = (clean(rec["acc_anon"]), clean(rec["empi_anon"]))
        exam = exams.get(acc or "")
        if not exam:
            report.drop("exam (acc_anon) not in the clinical table", **where)
            continue
        if any(clean(r["empi_anon"]) != empi for r in exam):
            report.drop("empi_anon differs between clinical and metadata tables", **where)
            continue
        path = image_base.joinpath(*parts[start:])
        if require_files and (not path.is_file()):
            report.drop("image file not found", **where)
            continue
        seen.add(image_id)
        rows.append(
            _embed_image_row(
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


def _embed_image_row(rec, exam, image_id, path, cohort, laterality, view, modality, report, where):
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


# ------------------------------------------------------------ legacy inbreast.py
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
_FILE = re.compile("^(?P<name>[^_]+)_(?P<hash>[^_]+)_MG_(?P<side>[LR])_(?P<view>[A-Z]+)_ANON$")
_POINT = re.compile("\\(\\s*([-+0-9.eE]+)\\s*,\\s*([-+0-9.eE]+)\\s*\\)")


def parse_points(points) -> list[tuple[float, float]]:
    out = []
    for text in points:
        match = _POINT.search(str(text))
        if match is None:
            raise ValueError(f"point {text!r} is not of the form '(x, y)'")
        out.append((float(match.group(1)), float(match.group(2))))
    return out


def roi_box(points: list[tuple[float, float]]) -> tuple[float, float, float, float]:
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    if len(points) <= 2:
        cx, cy = (sum(xs) / len(xs), sum(ys) / len(ys))
        h = DOT_HALF_SIZE
        return (cx - h, cy - h, cx + h, cy + h)
    xmin, xmax, ymin, ymax = (min(xs), max(xs), min(ys), max(ys))
    if xmax - xmin < 1:
        xmin, xmax = (xmin - 0.5, xmax + 0.5)
    if ymax - ymin < 1:
        ymin, ymax = (ymin - 0.5, ymax + 0.5)
    return (xmin, ymin, xmax, ymax)


def read_outlines(path: Path) -> list[dict]:
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


def load_inbreast(root: str | os.PathLike):  # noqa: C901 (saved as it was)
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
        if name.endswith(".0"):
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
        csv_lat, csv_view = (clean(rec["Laterality"]), clean(rec["View"]))
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
                birads_suspicious=birads in SUSPICIOUS if birads else None,
            )
        )
    return report.finish(rows, bool_columns=("birads_suspicious",))


LEGACY = {
    "vindr": load_vindr,
    "cbis_ddsm": load_cbis_ddsm,
    "rsna": load_rsna,
    "embed": load_embed,
    "inbreast": load_inbreast,
}
