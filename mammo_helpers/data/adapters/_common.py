"""Shared glue for the dataset adapters (notebook 00 data): reading CSVs, parsing whole columns,
reporting what is dropped, boxes.

Adapters work on whole columns with pandas (no Python loop over the metadata rows, except over
the few rows that carry boxes), build the manifest rows with
:func:`mammo_helpers.data.manifest.manifest_row`, record what they leave out in a
:class:`LoadReport` and finish with :meth:`LoadReport.finish`, which validates the manifest,
attaches ``df.attrs["dropped"]`` (one row per dropped image / finding / CSV row / cell value,
with the reason, in the order of the source files) and ``df.attrs["notes"]`` (counts of fixes
that kept the data, such as clipped boxes) and emits one :class:`AdapterWarning`.

Bad cells get the same treatment in every adapter and column:

* **identity cells** (ids, laterality, view, image type, file paths): missing or outside the
  vocabulary -> the image (or CSV row) is dropped; the reason names the column and value;
* **value cells** (density, BI-RADS, age, cancer and the other labels, image size): a cell
  that is present but unreadable (``DENSITY E``, a negative height, ``cancer = 2``, an age of
  ``unknown``) -> that value is set to missing and the image is kept; the cell is listed in
  ``df.attrs["dropped"]`` with level ``'value'`` (file, 0-based data row, column and value in
  the reason) and counted in ``df.attrs["notes"]`` as ``'<column> values set to missing'``;
* **box cells**: a finding whose coordinates are missing or not numbers -> that finding is
  dropped (level ``'finding'``); boxes are clipped to the image (to ``[0, 65535]`` where the
  image size is unknown);
* unreadable DICOM headers (missing, not DICOM, truncated, without Rows/Columns) -> the image
  (or the ROI) is dropped with the error's class in the reason.

Why: without its identity an image cannot be placed (patient, side, view, file), so it goes;
with one unreadable label it is still a good image for every other task, and a chapter that
needs that label already filters on it being present (as for RSNA's site-2 density). Cells
are reported only for images that are kept; blank cells are missing values, not bad ones.

Empty (zero-byte) and header-only CSVs raise ``ValueError`` naming the file; a missing folder
or file raises ``FileNotFoundError`` showing the path with ``repr`` and a note when it holds
invisible whitespace (:func:`mammo_helpers.paths.describe_path`).
"""

from __future__ import annotations

import math
import operator
import os
import warnings
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mammo_helpers.boxes import MAX_COORDINATE, clip_box
from mammo_helpers.data.manifest import (
    MANIFEST_COLUMNS,
    make_finding,
    manifest_row,
    validate_manifest,
)
from mammo_helpers.io import DicomError, pixel_spacing_mm, read_dicom_header
from mammo_helpers.paths import describe_path, existing_dir
from mammo_helpers.vocab import ALL_VIEWS, DENSITIES, LATERALITIES, VIEWS

DENSITY_FROM_INT = dict(zip(range(1, 5), DENSITIES, strict=True))
DROPPED_COLUMNS = ("level", "source_file", "source_row", "image_id", "reason")


class AdapterWarning(UserWarning):
    """Summary of rows an adapter dropped or fixed (one per loader call)."""


# --------------------------------------------------------------------------- folders, options
def as_root(root: str | os.PathLike, dataset: str) -> Path:
    """``root`` as an absolute folder; ``FileNotFoundError`` naming the dataset (and showing
    invisible whitespace in the path) if it is no folder."""
    return existing_dir(root, f"{dataset} root")


def resolve_views(views: str | Iterable[str] | None) -> tuple[str, ...]:
    """The ``views`` option of the loaders as a tuple: ``None`` -> every code in
    ``vocab.ALL_VIEWS``; otherwise each view must be one of them (``ValueError`` naming it)."""
    if views is None:
        return ALL_VIEWS
    chosen = (views,) if isinstance(views, str) else tuple(views)
    unknown = [v for v in chosen if v not in ALL_VIEWS]
    if unknown or not chosen:
        shown = repr(unknown[0]) if unknown else "an empty selection"
        raise ValueError(
            f"views: {shown} is not a view code; choose from {', '.join(ALL_VIEWS)} "
            "(or views=None for all of them)"
        )
    return tuple(dict.fromkeys(chosen))


# --------------------------------------------------------------------------- reading CSVs
def read_table(
    path: Path,
    required: Sequence[str],
    *,
    what: str,
    sep: str = ",",
    aliases: dict | None = None,
    optional: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Read a metadata CSV as strings and check its columns.

    ``aliases`` maps a required name to accepted alternative spellings (renamed to the required
    name). With ``optional`` given, only the required and optional columns are read (large
    tables such as EMBED's). UTF-8 is tried first, then Latin-1. Raises ``FileNotFoundError``
    naming the file, ``ValueError`` for an empty or header-only file, or ``ValueError`` naming
    the missing column, the file and the columns it does have. Fully empty lines are dropped;
    the index stays the 0-based data row.
    """
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {describe_path(path)}")
    if path.stat().st_size == 0:
        raise ValueError(f"{what} {describe_path(path)} is empty (0 bytes)")
    try:
        df = _read_checked(path, required, sep, aliases, optional, "utf-8")
    except UnicodeDecodeError:
        df = _read_checked(path, required, sep, aliases, optional, "latin-1")
    if df.empty:
        raise ValueError(f"{what} {describe_path(path)} has a header but no data rows")
    return df


def _read_checked(path, required, sep, aliases, optional, encoding) -> pd.DataFrame:
    try:
        header = pd.read_csv(path, sep=sep, nrows=0, encoding=encoding).columns
    except pd.errors.EmptyDataError as exc:  # only blank lines
        raise ValueError(f"{describe_path(path)} has no header line (blank file)") from exc
    except pd.errors.ParserError as exc:
        raise ValueError(f"{describe_path(path)} is not a readable CSV file ({exc})") from exc
    names = {str(c).strip(): c for c in header}
    for name, alternatives in (aliases or {}).items():
        if name not in names:
            alt = next((a for a in alternatives if a in names), None)
            if alt is not None:
                names[name] = names.pop(alt)
    require_columns(pd.DataFrame(columns=list(names)), required, path)
    wanted = list(names) if optional is None else [*required, *(c for c in optional if c in names)]
    try:
        df = pd.read_csv(
            path,
            sep=sep,
            dtype=str,
            encoding=encoding,
            usecols=[names[c] for c in wanted],
            keep_default_na=True,
        )
    except pd.errors.ParserError as exc:
        raise ValueError(f"{describe_path(path)} is not a readable CSV file ({exc})") from exc
    df = df.rename(columns={names[c]: c for c in wanted})[wanted]
    return df.dropna(how="all")


def require_columns(df: pd.DataFrame, required: Iterable[str], path: Path) -> None:
    """``ValueError`` for the first column of ``required`` that ``df`` (read from ``path``) lacks."""
    for col in required:
        if col not in df.columns:
            raise ValueError(
                f'column "{col}" not found in {path}; columns are {", ".join(map(str, df.columns))}'
            )


# --------------------------------------------------------------------------- single cells
def clean(value: Any) -> str | None:
    """A stripped string, or ``None`` for NaN / empty / whitespace-only cells."""
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if value is pd.NA:
        return None
    text = str(value).strip()
    return text or None


def to_float(value: Any) -> float:
    """Float or NaN for missing / unparseable cells."""
    text = clean(value)
    if text is None:
        return math.nan
    try:
        return float(text)
    except ValueError:
        return math.nan


def to_int(value: Any) -> int | None:
    """Integer (``'3'``, ``'3.0'``) or ``None`` for missing / non-integer cells."""
    number = to_float(value)
    if not math.isfinite(number) or number != int(number):
        return None
    return int(number)


# --------------------------------------------------------------------------- whole columns
def text(column: pd.Series) -> pd.Series:
    """Stripped strings; NaN for missing, empty and whitespace-only cells (index kept)."""
    stripped = column.astype("str").str.strip()
    return stripped.mask(stripped == "")


def objects(column: pd.Series) -> np.ndarray:
    """A column as an object array with ``None`` for missing values (for manifest rows)."""
    return np.array(column.astype(object).where(column.notna(), None), dtype=object)


def numbers(
    column: pd.Series,
    *,
    integer: bool = False,
    low: float = -math.inf,
    high: float = math.inf,
) -> tuple[np.ndarray, np.ndarray]:
    """``(values, bad)``: float values (NaN = missing or bad) and a mask of cells that hold
    something other than a finite number in ``[low, high]`` (an integer if ``integer``)."""
    cells = text(column)
    present = cells.notna().to_numpy()
    values = pd.to_numeric(cells, errors="coerce").to_numpy(
        dtype="float64", na_value=np.nan, copy=True
    )
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(values) & (values >= low) & (values <= high)
        if integer:
            ok &= values == np.round(values)
    bad = present & ~ok
    values[~ok] = np.nan
    return values, bad


def codes(column: pd.Series, mapping: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """``(values, bad)``: stripped cells mapped through ``mapping`` (object array of the mapped
    Python values, ``None`` for missing or unknown cells) and a mask of present cells that are
    not keys of ``mapping``."""
    cells = objects(text(column))
    values = np.array([mapping.get(v) if v is not None else None for v in cells], dtype=object)
    known = np.array([v in mapping for v in cells], dtype=bool)
    return values, pd.notna(cells) & ~known


def int_values(values: np.ndarray) -> np.ndarray:
    """Float array (NaN = missing) -> object array of Python ``int`` / ``None``."""
    out = np.full(len(values), None, dtype=object)
    ok = ~np.isnan(values)
    out[ok] = values[ok].astype(np.int64).tolist()
    return out


def float_values(values: np.ndarray) -> list:
    """Float array -> list of Python floats (NaN kept)."""
    return np.asarray(values, dtype="float64").tolist()


def first_failure(checks: Sequence[tuple[np.ndarray, Any]], n: int) -> np.ndarray:
    """Reason of the first failed check per row (object array, ``None`` where all pass).

    ``checks`` are ``(ok mask, reason)`` pairs in the order the rules apply; a reason is a
    string or an array of per-row strings.
    """
    reasons = np.full(n, None, dtype=object)
    failed = np.zeros(n, dtype=bool)
    for ok, reason in checks:
        new = ~np.asarray(ok, dtype=bool) & ~failed
        if new.any():
            reasons[new] = reason if isinstance(reason, str) else np.asarray(reason)[new]
            failed |= new
    return reasons


def first_kept(ids: pd.Series, ok: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(kept, duplicate)`` masks for rows in file order.

    A row is kept if ``ok`` and no earlier row with the same id was kept; it is a duplicate if
    an earlier row with the same id was kept (whatever its own checks say). This is what a loop
    that checks duplicates against the rows kept so far gives.
    """
    n = len(ids)
    ok = np.asarray(ok, dtype=bool)
    code, uniques = pd.factorize(np.asarray(ids, dtype=object))  # -1 for missing ids
    candidates = np.flatnonzero(ok & (code >= 0))
    found, first = np.unique(code[candidates], return_index=True)
    kept_pos = np.full(len(uniques) + 1, n)  # the last slot serves code -1 (never kept)
    kept_pos[found] = candidates[first]
    per_row = kept_pos[code]
    pos = np.arange(n)
    return pos == per_row, pos > per_row


def file_check(checks: list, has_ids: np.ndarray, paths: np.ndarray) -> None:
    """Append the "image file not found" check, looking on disk only for rows that have their
    ids and pass the earlier checks (VinDr-Mammo, RSNA)."""
    reachable = has_ids & pd.isna(first_failure(checks, len(has_ids)))
    found = np.ones(len(has_ids), dtype=bool)
    found[reachable] = [os.path.isfile(p) for p in paths[reachable]]
    checks.append((found, "image file not found"))


def keep_unique(
    report, rows, image_id: pd.Series, has_ids, reason, *, missing: str, source_file: str
) -> tuple[np.ndarray, np.ndarray]:
    """``(kept, ids)``: the rows that pass and are the first of their image_id; the others are
    dropped on ``report`` (``missing`` for rows without ids, else their reason or
    "duplicate image_id") (VinDr-Mammo, RSNA)."""
    kept, duplicate = first_kept(image_id, has_ids & pd.isna(reason))
    ids = objects(image_id)
    lacking = ~has_ids
    report.drop_many(
        rows[lacking], missing, level="row", source_file=source_file, image_ids=ids[lacking]
    )
    reason[duplicate] = "duplicate image_id"
    dropped = has_ids & ~kept
    report.drop_many(
        rows[dropped],
        reason[dropped],
        level="image",
        source_file=source_file,
        image_ids=ids[dropped],
    )
    return kept, ids


def view_checks(
    laterality: pd.Series, view: pd.Series, views: tuple[str, ...]
) -> list[tuple[np.ndarray, np.ndarray]]:
    """The view and laterality rules as :func:`first_failure` checks (the vectorised
    :meth:`LoadReport.accept_view`): view in ``views``, then laterality L/R."""
    allowed = "/".join(views)
    return [
        (
            view.isin(views).to_numpy(),
            ("view " + _shown(view) + f" is not {allowed}").to_numpy(dtype=object),
        ),
        (
            laterality.isin(LATERALITIES).to_numpy(),
            ("laterality " + _shown(laterality) + " is not L/R").to_numpy(dtype=object),
        ),
    ]


def _shown(column: pd.Series) -> pd.Series:
    """Values as an f-string shows them (``None`` for missing)."""
    return column.astype(object).where(column.notna(), "None").astype(str)


def joined_paths(base: Path, *parts: pd.Series | str) -> np.ndarray:
    """``str(base.joinpath(*parts))`` for every row without a Path object per row.

    ``parts`` are columns (Series of one length) or fixed strings. Rows whose parts need
    Path's normalisation (a ``//``, a ``.`` component, a leading or trailing slash) go through
    :class:`pathlib.Path`, so every result is exactly what Path gives; missing parts give
    ``None``.
    """
    n = next(len(p) for p in parts if isinstance(p, pd.Series))
    rel = pd.Series("", index=range(n), dtype="str")
    for k, part in enumerate(parts):
        piece = part.reset_index(drop=True).astype("str") if isinstance(part, pd.Series) else part
        rel = rel + piece if k == 0 else rel + "/" + piece
    odd = rel.str.contains(r"//|(?:^|/)\.(?:/|$)|/$|^/", regex=True).fillna(False).to_numpy()
    out = (os.path.join(str(base), "") + rel).to_numpy(dtype=object, na_value=None)
    for i in np.flatnonzero(odd):
        pieces = [p if isinstance(p, str) else p.iloc[i] for p in parts]
        out[i] = str(base.joinpath(*pieces))
    return out


def manifest_rows(columns: Mapping[str, Sequence]) -> list[dict]:
    """One :func:`~mammo_helpers.data.manifest.manifest_row` per position of the columns."""
    names = list(columns)
    return [
        manifest_row(**dict(zip(names, values, strict=True)))
        for values in zip(*columns.values(), strict=True)
    ]


# --------------------------------------------------------------------------- the report
class LoadReport:
    """Collects dropped rows (with reasons) and counted fixes while an adapter runs.

    Drops are listed in the order they are recorded, or with ``in_file_order=True`` (what the
    adapters use, since they find problems column by column) in the order of the source files:
    by ``stage`` (set :attr:`stage` before each file or pass), then ``group`` (a row's image
    group, default the row itself), source row, and the order of recording.
    """

    def __init__(self, dataset: str, loader: str, *, in_file_order: bool = False):
        self.dataset = dataset
        self.loader = loader
        self.in_file_order = in_file_order
        self.stage = 0
        self._records: list[tuple] = []  # DROPPED_COLUMNS + (stage, group, row)
        self.notes: Counter = Counter()

    def drop(
        self,
        reason: str,
        *,
        level: str = "image",
        source_file: str | None = None,
        source_row: int | None = None,
        image_id: str | None = None,
        group: int | None = None,
    ) -> None:
        """Record one dropped ``level`` ('image', 'finding', 'row' or 'value') and why."""
        row = -1 if source_row is None else source_row
        self._records.append(
            (
                level,
                source_file,
                source_row,
                image_id,
                reason,
                self.stage,
                row if group is None else group,
                row,
            )
        )

    def drop_many(
        self,
        rows: np.ndarray,
        reasons: str | Sequence[str],
        *,
        level: str,
        source_file: str | None,
        image_ids: Sequence | None = None,
        groups: Sequence[int] | None = None,
    ) -> None:
        """Record several drops at once: one per entry of ``rows`` (0-based data rows)."""
        rows = np.asarray(rows, dtype=np.int64).tolist()
        n = len(rows)
        reasons = [reasons] * n if isinstance(reasons, str) else list(reasons)
        ids = [None] * n if image_ids is None else list(image_ids)
        groups = rows if groups is None else np.asarray(groups, dtype=np.int64).tolist()
        stage = self.stage
        self._records.extend(
            (level, source_file, r, i, why, stage, g, r)
            for r, i, why, g in zip(rows, ids, reasons, groups, strict=True)
        )

    def bad_values(
        self,
        bad: np.ndarray,
        column: str,
        raw: pd.Series,
        rule: str,
        *,
        source_file: str,
        image_ids: Sequence | None = None,
        groups: Sequence[int] | None = None,
        consequence: str = "set to missing",
    ) -> None:
        """Record the cells of ``raw`` flagged in ``bad`` as unreadable values (level 'value').

        ``rule`` says what a readable value is (e.g. ``'is not DENSITY A-D'``); the reason reads
        ``"<column> '<cell>' <rule>: <consequence>"`` and the notes count
        ``'<column> values <consequence>'``. ``image_ids`` and ``groups`` (see the class) are
        given per row of ``raw``.
        """
        bad = np.asarray(bad, dtype=bool)
        if not bad.any():
            return
        cells = raw[bad]
        reasons = [f"{column} {str(v)!r} {rule}: {consequence}" for v in cells.to_numpy()]
        ids = None if image_ids is None else np.asarray(image_ids, dtype=object)[bad]
        self.drop_many(
            cells.index.to_numpy(),
            reasons,
            level="value",
            source_file=source_file,
            image_ids=ids,
            groups=None if groups is None else np.asarray(groups)[bad],
        )
        self.note(f"{column} values {consequence}", int(bad.sum()))

    def accept_view(self, laterality, view, view_label=None, views=VIEWS, **where) -> bool:
        """True for an L/R image of one of ``views``; otherwise record why it is dropped."""
        if view not in views:
            self.drop(f"view {view_label or view} is not {'/'.join(views)}", **where)
            return False
        if laterality not in LATERALITIES:
            self.drop(f"laterality {laterality} is not L/R", **where)
            return False
        return True

    def note(self, what: str, n: int = 1) -> None:
        """Count a fix that keeps the data (e.g. 'boxes clipped to the image')."""
        if n:
            self.notes[what] += n

    def dropped_frame(self) -> pd.DataFrame:
        """All drops (columns ``DROPPED_COLUMNS``), in file order if ``in_file_order``."""
        records = self._records
        if self.in_file_order:  # stable: equal keys keep the order of recording
            records = sorted(records, key=operator.itemgetter(5, 6, 7))
        n = len(DROPPED_COLUMNS)
        frame = pd.DataFrame([r[:n] for r in records], columns=list(DROPPED_COLUMNS))
        frame["source_row"] = frame["source_row"].astype("Int64")
        return frame

    def summary(self, dropped: pd.DataFrame, n_images: int) -> str:
        parts = [f"{self.loader}: {n_images} images kept"]
        if len(dropped):
            counts = Counter(zip(dropped["level"], dropped["reason"], strict=True))
            items = "; ".join(
                f"{n} {level}{'s' if n > 1 else ''}: {reason}"
                for (level, reason), n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
            )
            parts.append(f"dropped {len(dropped)} ({items})")
        if self.notes:
            parts.append("; ".join(f"{n} {what}" for what, n in sorted(self.notes.items())))
        parts.append("details in df.attrs['dropped'] and df.attrs['notes']")
        return "; ".join(parts)

    def finish(
        self,
        rows: list[dict],
        *,
        int_columns: Sequence[str] = (),
        bool_columns: Sequence[str] = (),
    ) -> pd.DataFrame:
        """Validated manifest from ``rows``; attaches the report and warns once if needed.

        Optional columns named in ``int_columns`` / ``bool_columns`` become nullable
        ``Int64`` / ``boolean`` columns.
        """
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
        dropped = self.dropped_frame()
        out.attrs["dropped"] = dropped
        out.attrs["notes"] = dict(self.notes)
        if len(dropped) or self.notes:
            warnings.warn(self.summary(dropped, len(out)), AdapterWarning, stacklevel=3)
        return out


# --------------------------------------------------------------------------- boxes, headers
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
    group: int | None = None,
    **extra: Any,
) -> dict | None:
    """A finding dict with its box clipped to the image (``None`` and a dropped entry if empty).

    ``box`` is (xmin, ymin, xmax, ymax) in pixels. Where the image size is unknown the box is
    clipped to ``[0, 65535]`` (``boxes.MAX_COORDINATE``), the largest possible image; a box
    reaching beyond it is dropped. Boxes changed by clipping are counted in the report notes as
    'boxes clipped to the image'. Optional ``extra`` keys whose value is ``None`` or an empty
    string are left out of the finding.
    """
    extra = {key: value for key, value in extra.items() if value is not None and value != ""}
    where = {
        "level": "finding",
        "source_file": source_file,
        "source_row": source_row,
        "image_id": image_id,
        "group": group,
    }
    xmin, ymin, xmax, ymax = (float(v) for v in box)
    if any(math.isnan(v) for v in (xmin, ymin, xmax, ymax)):
        report.drop(f"{label} finding without box coordinates", **where)
        return None
    if any(math.isinf(v) for v in (xmin, ymin, xmax, ymax)):
        report.drop(f"{label} box has an infinite coordinate", **where)
        return None
    if rows is None or cols is None:
        if not (xmin < xmax and ymin < ymax):
            report.drop(f"{label} box is empty", **where)
            return None
        if max(xmax, ymax) > MAX_COORDINATE:
            report.drop(
                f"{label} box reaches beyond {MAX_COORDINATE:g} px (image size unknown)", **where
            )
            return None
    clipped = clip_box(
        xmin,
        ymin,
        xmax,
        ymax,
        MAX_COORDINATE if rows is None else rows,
        MAX_COORDINATE if cols is None else cols,
    )
    if clipped is None:
        report.drop(f"{label} box outside the image after clipping", **where)
        return None
    if clipped != (xmin, ymin, xmax, ymax):
        report.note("boxes clipped to the image")
    return make_finding(label, *clipped, malignant=malignant, **extra)


def header_info(path: str | os.PathLike) -> dict:
    """Rows, cols, pixel spacing (mm, NaN if absent) and manufacturer from a DICOM header.

    Raises :class:`~mammo_helpers.io.DicomError` naming the file for a missing, unreadable or
    truncated file, or a header without positive integer Rows and Columns.
    """
    ds = read_dicom_header(path)
    size = []
    for keyword in ("Rows", "Columns"):
        value = ds.get(keyword)
        try:
            number = int(value)
        except (TypeError, ValueError):
            number = 0
        if number <= 0:
            raise DicomError(
                f"{path}: header has no valid {keyword} ({value!r}); truncated or not an image"
            )
        size.append(number)
    spacing = pixel_spacing_mm(ds)
    return {
        "rows": size[0],
        "cols": size[1],
        "pixel_spacing_mm": math.nan if spacing is None else spacing,
        "vendor": clean(ds.get("Manufacturer")) or "unknown",
    }
