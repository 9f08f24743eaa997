"""Shared glue for the dataset adapters (notebook 00 data): CSV checks, dropped-row reports, boxes.

Every adapter builds plain row dicts with :func:`manifest_row`, records what it leaves out in a
:class:`LoadReport` and finishes with :meth:`LoadReport.finish`, which validates the manifest,
attaches ``df.attrs["dropped"]`` (one row per dropped image / finding / source row, with the
reason) and ``df.attrs["notes"]`` (counts of non-dropping fixes such as clipped boxes) and emits
one :class:`AdapterWarning` summarising the counts.
"""

from __future__ import annotations

import math
import os
import warnings
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from mammo_helpers.boxes import clip_box
from mammo_helpers.data.manifest import (
    MANIFEST_COLUMNS,
    make_finding,
    validate_manifest,
)
from mammo_helpers.io import pixel_spacing_mm, read_dicom_header
from mammo_helpers.vocab import LATERALITIES, VIEWS

DENSITY_FROM_INT = {1: "A", 2: "B", 3: "C", 4: "D"}
DROPPED_COLUMNS = ("level", "source_file", "source_row", "image_id", "reason")


class AdapterWarning(UserWarning):
    """Summary of rows an adapter dropped or fixed (one per loader call)."""


def as_root(root: str | os.PathLike, dataset: str) -> Path:
    """``root`` as an absolute path; ``FileNotFoundError`` naming the dataset if it is no folder."""
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
    """Read a metadata CSV as strings and check its columns.

    ``aliases`` maps a required name to accepted alternative spellings (renamed to the required
    name). With ``optional`` given, only the required and optional columns are read (large
    tables such as EMBED's). UTF-8 is tried first, then Latin-1. Raises ``FileNotFoundError``
    naming the file, or ``ValueError`` naming the missing column, the file and the columns it
    does have. Fully empty lines are dropped; the index stays the 0-based data row.
    """
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
    """(0-based data row, row as a dict) pairs; much faster than ``DataFrame.iterrows``."""
    yield from zip((int(i) for i in df.index), df.to_dict("records"), strict=True)


def require_columns(df: pd.DataFrame, required: Iterable[str], path: Path) -> None:
    """``ValueError`` for the first column of ``required`` that ``df`` (read from ``path``) lacks."""
    for col in required:
        if col not in df.columns:
            raise ValueError(
                f'column "{col}" not found in {path}; columns are {", ".join(map(str, df.columns))}'
            )


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
    if math.isnan(number) or number != int(number):
        return None
    return int(number)


class LoadReport:
    """Collects dropped rows (with reasons) and counted fixes while an adapter runs."""

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
        """Record one dropped ``level`` ('image', 'finding' or 'row') and why."""
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
        """True for an L/R CC/MLO image; otherwise record why it is dropped."""
        if view not in VIEWS:
            self.drop(f"view {view_label or view} is not CC/MLO", **where)
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
        frame = pd.DataFrame(self._dropped, columns=list(DROPPED_COLUMNS))
        frame["source_row"] = frame["source_row"].astype("Int64")
        return frame

    def summary(self, n_images: int) -> str:
        parts = [f"{self.loader}: {n_images} images kept"]
        dropped = Counter((d["level"], d["reason"]) for d in self._dropped)
        if dropped:
            items = "; ".join(
                f"{n} {level}{'s' if n > 1 else ''}: {reason}"
                for (level, reason), n in sorted(dropped.items(), key=lambda kv: (-kv[1], kv[0]))
            )
            parts.append(f"dropped {len(self._dropped)} ({items})")
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
    """A finding dict with its box clipped to the image (``None`` and a dropped entry if empty).

    ``box`` is (xmin, ymin, xmax, ymax) in pixels. Boxes changed by clipping are counted in the
    report notes as 'boxes clipped to the image'. Optional ``extra`` keys whose value is
    ``None`` or an empty string are left out of the finding.
    """
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
    """Rows, cols, pixel spacing (mm, NaN if absent) and manufacturer from a DICOM header."""
    ds = read_dicom_header(path)
    spacing = pixel_spacing_mm(ds)
    return {
        "rows": int(ds.Rows),
        "cols": int(ds.Columns),
        "pixel_spacing_mm": math.nan if spacing is None else spacing,
        "vendor": clean(ds.get("Manufacturer")) or "unknown",
    }
