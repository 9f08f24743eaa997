"""The image manifest: one schema for the phantom cohort and every real-dataset adapter.

A manifest is a pandas DataFrame with one row per image (columns in ``MANIFEST_COLUMNS``,
optional extra columns are kept). Every notebook (00-05) reads its data through it; the
adapters and the phantom generator produce it; ``validate_manifest`` is the single gate.

Dtypes of a validated manifest:

* string columns (ids, path, laterality, view, modality, site, vendor, density): pandas'
  default ``str`` dtype; a missing density is ``NaN`` (test with ``pd.isna``); ``view`` is CC
  or MLO unless an adapter was asked to keep other views (``vocab.ALL_VIEWS``);
* ``age``, ``pixel_spacing_mm``: ``float64`` (``NaN`` = unknown);
* ``rows``, ``cols``, ``cancer``: nullable ``Int64`` (``<NA>`` = unknown);
* ``findings``: ``object``, a Python list of finding dicts per row (``[]`` = no finding),
  coordinates as ``float`` and ``malignant`` as ``True``/``False``/``None``.
"""

from __future__ import annotations

import copy
import json
import math
import os
from collections.abc import Iterable
from numbers import Real
from pathlib import Path

import numpy as np
import pandas as pd

from mammo_helpers.boxes import MAX_COORDINATE
from mammo_helpers.paths import atomic_write
from mammo_helpers.vocab import (
    ALL_VIEWS,
    DENSITIES,
    FINDING_LABELS,
    FOUR_VIEWS,
    LATERALITIES,
    MODALITIES,
    VIEWS,
)

MANIFEST_COLUMNS: tuple[str, ...] = (
    "patient_id",
    "study_id",
    "image_id",
    "path",
    "laterality",
    "view",
    "modality",
    "site",
    "vendor",
    "density",
    "age",
    "pixel_spacing_mm",
    "rows",
    "cols",
    "cancer",
    "findings",
)
#: Keys every finding dict has, in this order.
FINDING_KEYS: tuple[str, ...] = ("label", "xmin", "ymin", "xmax", "ymax", "malignant")
#: Optional finding keys that must be strings (or None) when present.
FINDING_STR_KEYS: tuple[str, ...] = ("subtype", "birads", "mask_path", "source_label")

_ID_COLUMNS = ("patient_id", "study_id", "image_id", "path")
_TEXT_COLUMNS = ("site", "vendor")
_VOCAB_COLUMNS = {"laterality": LATERALITIES, "view": ALL_VIEWS, "modality": MODALITIES}
_STRING_COLUMNS = _ID_COLUMNS + tuple(_VOCAB_COLUMNS) + _TEXT_COLUMNS + ("density",)
_ROOT_ATTR = "manifest_root"


class ManifestError(ValueError):
    """A manifest breaks the schema; the message names the row, image_id and column."""


# --------------------------------------------------------------------------- helpers
def _where(df: pd.DataFrame, pos: int) -> str:
    """``manifest row <index label> (image_id='...')`` for the row at position ``pos``."""
    label = df.index[pos]
    image_id = df["image_id"].iloc[pos] if "image_id" in df.columns else None
    shown = repr(image_id) if isinstance(image_id, str) else "missing"
    return f"manifest row {label!r} (image_id={shown})"


def _fail(df: pd.DataFrame, pos: int, column: str, message: str) -> ManifestError:
    return ManifestError(f"{_where(df, pos)}, column {column!r}: {message}")


def _first(mask: np.ndarray) -> int | None:
    hits = np.flatnonzero(mask)
    return int(hits[0]) if hits.size else None


def _is_real(value: object) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool | np.bool_)


def _is_json_value(value: object) -> bool:
    if value is None or isinstance(value, str | bool):
        return True
    if isinstance(value, int | float):  # not numpy ints (JSON cannot store them)
        return math.isfinite(value)
    if isinstance(value, list):
        return all(_is_json_value(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_json_value(v) for k, v in value.items())
    return False


# --------------------------------------------------------------------------- findings
def _check_box(finding: dict, rows: float | None, cols: float | None) -> tuple[dict, str]:
    """The finding's box as floats, or a problem (non-finite, empty, outside the image)."""
    box: dict = {}
    for key in ("xmin", "ymin", "xmax", "ymax"):
        value = finding[key]
        if not _is_real(value) or not math.isfinite(value):
            return {}, f"{key}={value!r} is not a finite number"
        box[key] = float(value)
    if not box["xmin"] < box["xmax"]:
        return {}, f"needs xmin < xmax, got xmin={box['xmin']}, xmax={box['xmax']}"
    if not box["ymin"] < box["ymax"]:
        return {}, f"needs ymin < ymax, got ymin={box['ymin']}, ymax={box['ymax']}"
    shown = f"box ({box['xmin']}, {box['ymin']}, {box['xmax']}, {box['ymax']})"
    outside = box["xmin"] < 0 or box["ymin"] < 0
    outside |= cols is not None and box["xmax"] > cols
    outside |= rows is not None and box["ymax"] > rows
    if outside:
        size = f"{'?' if cols is None else int(cols)} x {'?' if rows is None else int(rows)}"
        return {}, (
            f"{shown} lies outside the image [0, cols] x [0, rows] = {size}; clip it with "
            "boxes.clip_box() in the adapter"
        )
    if max(box["xmax"], box["ymax"]) > MAX_COORDINATE:  # checked even when the size is unknown
        return {}, (
            f"{shown} reaches beyond {MAX_COORDINATE:g} px, larger than any DICOM image can be "
            "(Rows/Columns are 16-bit); are the coordinates in pixels?"
        )
    return box, ""


def _check_extra_keys(finding: dict, known: dict) -> tuple[dict, str]:
    """The optional keys of a finding (copied), or a problem naming the first bad one."""
    extra: dict = {}
    for key, value in finding.items():
        if key in known:
            continue
        if not isinstance(key, str):
            return {}, f"key {key!r} is not a string"
        if key in FINDING_STR_KEYS and value is not None and not isinstance(value, str):
            return {}, f"{key}={value!r} is not a string"
        if not _is_json_value(value):
            return {}, (
                f"{key}={value!r} is not a JSON value (str, int, finite float, bool, None, list, "
                "dict)"
            )
        extra[key] = copy.deepcopy(value) if isinstance(value, list | dict) else value
    return extra, ""


def _check_finding(finding: object, rows: float | None, cols: float | None) -> tuple[dict, str]:
    """Return ``(normalised finding, "")`` or ``({}, problem)``; never raises."""
    if not isinstance(finding, dict):
        return {}, f"expected a dict, got {type(finding).__name__}"
    missing = [k for k in FINDING_KEYS if k not in finding]
    if missing:
        return {}, f"missing key(s) {', '.join(map(repr, missing))}"
    label = finding["label"]
    if label not in FINDING_LABELS:
        return {}, f"label {label!r} is not one of {', '.join(FINDING_LABELS)}"
    box, problem = _check_box(finding, rows, cols)
    if problem:
        return {}, problem
    malignant = finding["malignant"]
    if malignant is not None and not isinstance(malignant, bool | np.bool_):
        return {}, f"malignant={malignant!r} is not True, False or None"
    out = {"label": label, **box, "malignant": None if malignant is None else bool(malignant)}
    extra, problem = _check_extra_keys(finding, out)
    if problem:
        return {}, problem
    return {**out, **extra}, ""


def make_finding(
    label: str,
    xmin: float,
    ymin: float,
    xmax: float,
    ymax: float,
    malignant: bool | None = None,
    **extra: object,
) -> dict:
    """Build one finding dict (adapters, phantom), checking label, box and ``malignant``.

    Extra keyword arguments (``subtype``, ``birads``, ``mask_path``, ``source_label``, ...)
    are stored as extra keys. Raises ``ValueError`` naming the bad argument.
    """
    raw = {
        "label": label,
        "xmin": xmin,
        "ymin": ymin,
        "xmax": xmax,
        "ymax": ymax,
        "malignant": malignant,
    }
    raw.update(extra)
    finding, problem = _check_finding(raw, None, None)
    if problem:
        raise ValueError(f"make_finding: {problem}")
    return finding


def manifest_row(
    *,
    patient_id: str,
    study_id: str,
    image_id: str,
    path: str | os.PathLike,
    laterality: str,
    view: str,
    modality: str = "DM",
    site: str,
    vendor: str = "unknown",
    density: str | None = None,
    age: float = math.nan,
    pixel_spacing_mm: float = math.nan,
    rows: int | None = None,
    cols: int | None = None,
    cancer: int | None = None,
    findings: list | None = None,
    **extra: object,
) -> dict:
    """One manifest row as a dict: required columns first, then ``extra`` optional columns.

    The single constructor of manifest rows, for the phantom cohort and every adapter.
    Values are checked when the rows become a manifest (:func:`validate_manifest`).
    """
    row = {
        "patient_id": str(patient_id),
        "study_id": str(study_id),
        "image_id": str(image_id),
        "path": str(path),
        "laterality": laterality,
        "view": view,
        "modality": modality,
        "site": str(site),
        "vendor": str(vendor),
        "density": density,
        "age": age,
        "pixel_spacing_mm": pixel_spacing_mm,
        "rows": rows,
        "cols": cols,
        "cancer": cancer,
        "findings": list(findings or []),
    }
    row.update(extra)
    return row


# --------------------------------------------------------------------------- validation
def _check_strings(df: pd.DataFrame, col: str, *, allow_missing: bool) -> pd.Series:
    s = df[col]
    missing = s.isna().to_numpy()
    if s.dtype != "str":
        values = s.to_numpy(dtype=object)
        bad = np.fromiter(
            (not (m or isinstance(v, str)) for v, m in zip(values, missing, strict=True)),
            dtype=bool,
            count=len(values),
        )
        pos = _first(bad)
        if pos is not None:
            value = values[pos]
            raise _fail(df, pos, col, f"expected a string, got {type(value).__name__} {value!r}")
    out = s.astype("str")
    if not allow_missing:
        empty = missing | (out.fillna("").str.strip() == "").to_numpy()
        pos = _first(empty)
        if pos is not None:
            hint = " (use 'unknown' if it is not known)" if col in _TEXT_COLUMNS else ""
            raise _fail(df, pos, col, f"missing or empty value{hint}")
    return out


def _check_vocab(df: pd.DataFrame, col: str, allowed: tuple[str, ...], *, allow_missing: bool):
    s = df[col]
    missing = s.isna().to_numpy()
    bad = ~s.isin(allowed).to_numpy() & (~missing if allow_missing else True)
    pos = _first(bad)
    if pos is not None:
        value = s.iloc[pos]
        shown = "missing value" if missing[pos] else repr(value)
        extra = " or missing" if allow_missing else ""
        raise _fail(df, pos, col, f"{shown} is not one of {', '.join(allowed)}{extra}")
    return s.astype("str")


def _check_numbers(df: pd.DataFrame, col: str, *, allow_bool: bool = False) -> np.ndarray:
    """Column as float64 (NaN = missing); non-numbers raise naming the row."""
    s = df[col]
    is_bool = pd.api.types.is_bool_dtype(s.dtype)
    if (is_bool and allow_bool) or (pd.api.types.is_numeric_dtype(s.dtype) and not is_bool):
        return s.to_numpy(dtype="float64", na_value=np.nan)
    values = s.to_numpy(dtype=object)
    missing = s.isna().to_numpy()
    ok = (_is_real(v) or (allow_bool and isinstance(v, bool | np.bool_)) for v in values)
    good = np.fromiter(ok, dtype=bool, count=len(values)) | missing
    pos = _first(~good)
    if pos is not None:
        value = values[pos]
        raise _fail(df, pos, col, f"expected a number, got {type(value).__name__} {value!r}")
    return np.array([np.nan if m else float(v) for v, m in zip(values, missing, strict=True)])


def _check_range(df, col, values, ok_mask, requirement) -> None:
    pos = _first(~(np.isnan(values) | ok_mask))
    if pos is not None:
        raise _fail(df, pos, col, f"{float(values[pos])!r} is not {requirement} (or missing)")


def _check_cell_findings(df, pos: int, cell: list, rows, cols, cancer) -> list:
    """The normalised findings of the row at ``pos`` (raises naming the finding)."""
    r = None if np.isnan(rows[pos]) else rows[pos]
    c = None if np.isnan(cols[pos]) else cols[pos]
    normalised = []
    for k, finding in enumerate(cell):
        clean, problem = _check_finding(finding, r, c)
        if problem:
            raise _fail(df, pos, "findings", f"finding {k}: {problem}")
        if clean["malignant"] is True and cancer[pos] == 0:
            raise _fail(
                df,
                pos,
                "cancer",
                f"0 but finding {k} ({clean['label']}) has malignant=True; "
                "set cancer=1 or mark the finding malignant=False/None",
            )
        normalised.append(clean)
    return normalised


def _check_findings(df: pd.DataFrame, rows: np.ndarray, cols: np.ndarray, cancer: np.ndarray):
    """Every row's findings normalised (a new list per row; most rows have none)."""
    values = df["findings"].to_numpy(dtype=object)
    sizes = np.fromiter(
        (len(v) if isinstance(v, list) else -1 for v in values), dtype=np.int64, count=len(values)
    )
    pos = _first(sizes < 0)
    if pos is not None:
        cell = values[pos]
        raise _fail(
            df,
            pos,
            "findings",
            f"expected a list of finding dicts ([] for none), got {type(cell).__name__} {cell!r}",
        )
    out = np.empty(len(values), dtype=object)
    out[:] = [[] for _ in range(len(values))]
    for pos in np.flatnonzero(sizes):
        out[pos] = _check_cell_findings(df, int(pos), values[pos], rows, cols, cancer)
    return out


def _check_files(df: pd.DataFrame, root: str | os.PathLike | None) -> None:
    resolved = resolve_paths(df, root)["path"].to_numpy(dtype=object)
    exists = np.fromiter((os.path.exists(p) for p in resolved), dtype=bool, count=len(resolved))
    pos = _first(~exists)
    if pos is not None:
        n = int((~exists).sum())
        raise _fail(df, pos, "path", f"file {resolved[pos]!r} does not exist ({n} missing in all)")


def validate_manifest(
    df: pd.DataFrame, *, check_files: bool = False, root: str | os.PathLike | None = None
) -> pd.DataFrame:
    """Check ``df`` against the manifest schema and return a normalised copy (all notebooks).

    Required columns come first in ``MANIFEST_COLUMNS`` order, optional columns follow
    unchanged; dtypes are as described in the module docstring. Raises ``ManifestError`` on
    the first problem, naming the row (index label), image_id, column, value and allowed
    values. Vocabularies are strict (``'cc'`` is rejected: adapters normalise spelling).
    With ``check_files=True`` every ``path`` must exist; relative paths are resolved against
    ``root`` (default: the folder the manifest was loaded from, else the working directory).
    """
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"validate_manifest expects a pandas DataFrame, got {type(df).__name__}")
    missing_cols = [c for c in MANIFEST_COLUMNS if c not in df.columns]
    if missing_cols:
        raise ManifestError(
            f"manifest is missing required column(s) {', '.join(map(repr, missing_cols))} "
            f"(required: {', '.join(MANIFEST_COLUMNS)})"
        )
    if df.columns.duplicated().any():
        dup = sorted({str(c) for c in df.columns[df.columns.duplicated()]})
        raise ManifestError(f"manifest has duplicated column(s) {', '.join(map(repr, dup))}")

    new: dict[str, object] = {}
    for col in _ID_COLUMNS:
        new[col] = _check_strings(df, col, allow_missing=False)
    for col, allowed in _VOCAB_COLUMNS.items():
        new[col] = _check_vocab(df, col, allowed, allow_missing=False)
    for col in _TEXT_COLUMNS:
        new[col] = _check_strings(df, col, allow_missing=False)
    new["density"] = _check_vocab(df, "density", DENSITIES, allow_missing=True)

    age = _check_numbers(df, "age")
    with np.errstate(invalid="ignore"):
        _check_range(df, "age", age, (age >= 0) & (age <= 120), "an age in [0, 120]")
        spacing = _check_numbers(df, "pixel_spacing_mm")
        ok = (spacing > 0) & np.isfinite(spacing)
        _check_range(df, "pixel_spacing_mm", spacing, ok, "a finite number > 0")
        sizes = {}
        for col in ("rows", "cols"):
            v = _check_numbers(df, col)
            ok = (v > 0) & np.isfinite(v) & (v == np.round(v))
            _check_range(df, col, v, ok, "a positive integer")
            sizes[col] = v
        cancer = _check_numbers(df, "cancer", allow_bool=True)
        _check_range(df, "cancer", cancer, (cancer == 0) | (cancer == 1), "0 or 1")
    new["age"], new["pixel_spacing_mm"] = age, spacing
    for col, values in (*sizes.items(), ("cancer", cancer)):
        missing = np.isnan(values)
        new[col] = pd.arrays.IntegerArray(np.where(missing, 0, values).astype(np.int64), missing)

    ids = new["image_id"]
    dup = ids.duplicated(keep=False).to_numpy()
    if dup.any():
        first = _first(dup)
        second = int(np.flatnonzero(dup & (ids == ids.iloc[first]).to_numpy())[1])
        raise _fail(
            df,
            second,
            "image_id",
            f"{ids.iloc[first]!r} is not unique (also in row {df.index[first]!r})",
        )
    new["findings"] = _check_findings(df, sizes["rows"], sizes["cols"], cancer)

    extra = [c for c in df.columns if c not in MANIFEST_COLUMNS]
    out = df[list(MANIFEST_COLUMNS) + extra].copy()
    for col, values in new.items():
        out[col] = values.array if isinstance(values, pd.Series) else values
    out["findings"] = out["findings"].astype(object)
    out.attrs = copy.copy(df.attrs)
    if check_files:
        _check_files(out, root)
    return out


# --------------------------------------------------------------------------- I/O
def _suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise ValueError(
            f"manifest file {str(path)!r}: unsupported suffix {path.suffix!r} "
            "(use .csv or .parquet)"
        )
    return suffix


def save_manifest(df: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Validate and write a manifest atomically as ``.csv`` or ``.parquet`` (notebook 00).

    Findings are stored as JSON text; the index and ``df.attrs`` are not stored (load gives
    a RangeIndex). Required columns round-trip exactly in both formats; optional columns
    keep their dtypes in parquet only (CSV re-infers them, e.g. "007" -> 7). Only empty CSV
    cells are missing values ("NA", "None" stay strings). Returns the path written.
    """
    path = Path(path)
    suffix = _suffix(path)
    try:
        clean = validate_manifest(df)
    except ManifestError as exc:
        raise ManifestError(f"cannot save manifest to {str(path)!r}: {exc}") from exc
    disk = clean.reset_index(drop=True)
    disk.attrs = {}
    disk["findings"] = [json.dumps(f, allow_nan=False) for f in disk["findings"]]
    with atomic_write(path, "wb") as fh:
        if suffix == ".csv":
            disk.to_csv(fh, index=False, lineterminator="\n")
        else:
            disk.to_parquet(fh, index=False)
    return path


def load_manifest(path: str | os.PathLike, *, check_files: bool = False) -> pd.DataFrame:
    """Read a manifest written by ``save_manifest`` (or by hand) and validate it.

    Paths are kept as stored; ``df.attrs["manifest_root"]`` records the file's folder, which
    ``resolve_paths`` and ``validate_manifest(check_files=True)`` use by default. Raises
    ``ManifestError`` naming the file and the row/column on any schema problem.
    """
    path = Path(path)
    suffix = _suffix(path)
    if not path.is_file():
        raise FileNotFoundError(f"manifest file {str(path)!r} does not exist")
    if path.stat().st_size == 0:
        raise ManifestError(f"manifest file {str(path)!r} is empty (0 bytes)")
    try:
        if suffix == ".csv":
            df = pd.read_csv(
                path,
                dtype={c: "str" for c in _STRING_COLUMNS + ("findings",)},
                keep_default_na=False,
                na_values=[""],
            )
        else:
            df = pd.read_parquet(path)
    except (ValueError, OSError, UnicodeDecodeError) as exc:  # pandas/pyarrow parse errors
        raise ManifestError(
            f"manifest file {str(path)!r} cannot be read ({type(exc).__name__}: {exc})"
        ) from exc
    try:
        if "findings" in df.columns:
            df["findings"] = _parse_findings(df)
        out = validate_manifest(df, check_files=check_files, root=path.parent)
    except ManifestError as exc:
        raise ManifestError(f"manifest file {str(path)!r}: {exc}") from exc
    out.attrs[_ROOT_ATTR] = str(path.parent.resolve())
    return out


def _parse_findings(df: pd.DataFrame) -> list:
    parsed = []
    for pos, text in enumerate(df["findings"].to_numpy(dtype=object)):
        if not isinstance(text, str):
            raise _fail(df, pos, "findings", f"expected JSON text, got {text!r}")
        try:
            parsed.append(json.loads(text))
        except json.JSONDecodeError as exc:
            raise _fail(df, pos, "findings", f"invalid JSON ({exc.msg}): {text[:80]!r}") from exc
    return parsed


def resolve_paths(df: pd.DataFrame, root: str | os.PathLike | None) -> pd.DataFrame:
    """Copy of ``df`` whose ``path`` column holds absolute paths (loaders, notebooks 00-05).

    Relative paths are joined to ``root``; ``root=None`` uses ``df.attrs["manifest_root"]``
    (set by ``load_manifest``) or the working directory. Absolute paths are kept.
    """
    if "path" not in df.columns:
        raise ManifestError("manifest has no 'path' column")
    if root is None:
        root = df.attrs.get(_ROOT_ATTR, os.getcwd())
    base = os.path.abspath(os.path.expanduser(os.fspath(root)))
    out = df.copy()
    out["path"] = pd.array(
        [os.path.normpath(os.path.join(base, p)) for p in df["path"].astype("str")], dtype="str"
    )
    return out


# --------------------------------------------------------------------------- views on it
def explode_findings(df: pd.DataFrame) -> pd.DataFrame:
    """One row per finding (notebooks 02-04): image_id, patient_id, study_id, laterality,
    view, label, xmin, ymin, xmax, ymax, malignant, then any extra finding keys."""
    base = ["image_id", "patient_id", "study_id", "laterality", "view"]
    missing = [c for c in base + ["findings"] if c not in df.columns]
    if missing:
        raise ManifestError(f"explode_findings: manifest lacks column(s) {', '.join(missing)}")
    records: list[dict] = []
    extra_keys: dict[str, None] = {}
    meta = df[base].to_numpy(dtype=object)
    for row, cell in zip(meta, df["findings"].to_numpy(dtype=object), strict=True):
        if not isinstance(cell, list):
            continue
        for finding in cell:
            rec = dict(zip(base, row, strict=True))
            rec.update(finding)
            extra_keys.update(dict.fromkeys(k for k in finding if k not in FINDING_KEYS))
            records.append(rec)
    columns = base + list(FINDING_KEYS) + list(extra_keys)
    out = pd.DataFrame.from_records(records, columns=columns)
    for col in ("xmin", "ymin", "xmax", "ymax"):
        out[col] = out[col].astype("float64")
    out["malignant"] = out["malignant"].astype(object)
    return out


def check_four_views(df: pd.DataFrame) -> pd.DataFrame:
    """Missing (patient_id, study_id, laterality, view) combinations of each study
    (four-view exams, notebook 04). Empty DataFrame when every study is complete."""
    keys = ["patient_id", "study_id"]
    present = df[keys + ["laterality", "view"]].drop_duplicates()
    studies = present[keys].drop_duplicates()
    expected = studies.merge(
        pd.DataFrame(list(FOUR_VIEWS), columns=["laterality", "view"]), how="cross"
    )
    merged = expected.merge(present, how="left", indicator=True)
    missing = merged.loc[merged["_merge"] == "left_only", keys + ["laterality", "view"]]
    return missing.sort_values(keys + ["laterality", "view"]).reset_index(drop=True)


def require_four_views(df: pd.DataFrame) -> None:
    """Raise ``ManifestError`` naming the first incomplete study and its missing views."""
    missing = check_four_views(df)
    if missing.empty:
        return
    first = missing.iloc[0]
    in_study = missing[
        (missing["patient_id"] == first["patient_id"]) & (missing["study_id"] == first["study_id"])
    ]
    views = ", ".join(f"{r.laterality}-{r.view}" for r in in_study.itertuples())
    n_bad = len(missing[["patient_id", "study_id"]].drop_duplicates())
    n_all = len(df[["patient_id", "study_id"]].drop_duplicates())
    raise ManifestError(
        f"study {first['study_id']!r} (patient {first['patient_id']!r}) is missing view(s) "
        f"{views}; {n_bad} of {n_all} studies lack one of L-CC, L-MLO, R-CC, R-MLO"
    )


def _counts(values: Iterable, order: Iterable[str] | None = None) -> dict[str, int]:
    s = pd.Series(list(values), dtype=object).fillna("missing")
    counts = {str(k): int(v) for k, v in s.value_counts(sort=False).items()}
    if order is None:
        return dict(sorted(counts.items()))
    head = {k: counts.pop(k, 0) for k in order}
    return head | dict(sorted(counts.items()))


def summarize_manifest(df: pd.DataFrame) -> dict:
    """Plain-Python counts for printing in notebooks and writing to metrics.json (00-05)."""
    labels = [f["label"] for cell in df["findings"] for f in cell]
    malignant = sum(bool(f.get("malignant")) for cell in df["findings"] for f in cell)
    cancer = df["cancer"].astype("Float64")
    known = int(cancer.notna().sum())
    positive = int((cancer == 1).sum())
    return {
        "patients": int(df["patient_id"].nunique()),
        "studies": int(df[["patient_id", "study_id"]].drop_duplicates().shape[0]),
        "images": len(df),
        "by_view": _counts(df["view"], VIEWS),
        "by_laterality": _counts(df["laterality"], LATERALITIES),
        "by_modality": _counts(df["modality"], MODALITIES),
        "by_site": _counts(df["site"]),
        "by_density": _counts(df["density"], DENSITIES + ("missing",)),
        "images_with_findings": int(sum(len(cell) > 0 for cell in df["findings"])),
        "findings_by_label": _counts(labels, FINDING_LABELS),
        "malignant_findings": int(malignant),
        "cancer_known": known,
        "cancer_positive": positive,
        "cancer_rate": positive / known if known else float("nan"),
    }
