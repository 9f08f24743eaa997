"""What a chapter measured: figures, metrics and one paper-vs-measured table, in ``OUT_DIR``.

A chapter makes one :class:`Recorder` after its parameters::

    rec = mh.results.Recorder(OUT_DIR, chapter="00_data_and_preprocessing", seed=SEED)
    rec.savefig(fig, "power_spectrum")        # OUT_DIR/power_spectrum.png
    rec.log(beta_dm=3.15, beta_dbt=3.00)       # metrics
    rec.compare()                              # the paper-vs-measured table (shown, saved)
    rec.write()                                # OUT_DIR/metrics.json, written atomically

The targets live in one sourced table per chapter, ``mammo_helpers/targets/<chapter>.csv``
(columns ``name, description, reference, low, high, source, note``): ``name`` is the metric
it applies to, ``reference`` the paper's or literature's value as written there, ``low`` /
``high`` the band the measured value should fall in (a number, the name of another metric,
or empty for an open side) and ``source`` the key(s) of ``book/references.bib``. Used by
every chapter (00-05).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import time
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mammo_helpers.paths import atomic_write, display_path, project_path

TARGET_COLUMNS = ("name", "description", "reference", "low", "high", "source", "note")
METRICS_NAME = "metrics.json"
COMPARISON_NAME = "paper_vs_measured.csv"
STATUSES = ("within", "below", "above", "not measured", "reference only")


@dataclass(frozen=True)
class Target:
    """One row of a chapter's targets table (see the module docstring)."""

    name: str
    description: str
    reference: str
    low: float | str | None
    high: float | str | None
    source: str
    note: str = ""


def is_metric_name(text: str) -> bool:
    """A metric name: identifiers joined by dots (``finetuned_accuracy``, ``per_class_auc.D``)."""
    return all(part.isidentifier() for part in text.split("."))


def _bound(text: str, where: str) -> float | str | None:
    text = text.strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        if not is_metric_name(text):
            raise ValueError(f"{where}: {text!r} is neither a number nor a metric name") from None
        return text
    if not math.isfinite(value):
        raise ValueError(f"{where}: bound {text!r} is not finite")
    return value


def parse_targets(text: str, origin: str = "targets") -> list[Target]:
    """Targets from CSV text with the columns of :data:`TARGET_COLUMNS`."""
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames is None or tuple(reader.fieldnames) != TARGET_COLUMNS:
        raise ValueError(
            f"{origin}: the header must be {','.join(TARGET_COLUMNS)}, got {reader.fieldnames}"
        )
    targets, seen = [], set()
    for line, row in enumerate(reader, start=2):
        where = f"{origin}, line {line}"
        name = (row["name"] or "").strip()
        if not is_metric_name(name):
            raise ValueError(f"{where}: name {name!r} is not a metric name")
        if name in seen:
            raise ValueError(f"{where}: target {name!r} appears twice")
        if not (row["source"] or "").strip():
            raise ValueError(f"{where}: target {name!r} has no source")
        seen.add(name)
        targets.append(
            Target(
                name=name,
                description=row["description"].strip(),
                reference=row["reference"].strip(),
                low=_bound(row["low"] or "", where),
                high=_bound(row["high"] or "", where),
                source=row["source"].strip(),
                note=(row["note"] or "").strip(),
            )
        )
    return targets


def load_targets(chapter: str) -> list[Target]:
    """The targets table shipped with the package for ``chapter`` (its notebook stem)."""
    resource = resources.files("mammo_helpers").joinpath("targets", f"{chapter}.csv")
    if not resource.is_file():
        raise FileNotFoundError(f"no targets table for chapter {chapter!r} ({resource})")
    return parse_targets(resource.read_text(encoding="utf-8"), f"targets/{chapter}.csv")


def to_jsonable(value: Any) -> Any:
    """``value`` with numpy scalars/arrays, tuples and paths turned into JSON types; NaN and
    infinities (undefined values) become ``None``, so metrics.json is strict JSON."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, np.bool_ | bool):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating | float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, os.PathLike):
        return display_path(value)
    if value is None or isinstance(value, str | int):
        return value
    raise TypeError(f"{type(value).__name__} {value!r} cannot be stored in metrics.json")


def _status(value: Any, low: float | None, high: float | None) -> str:
    if value is None or not isinstance(value, int | float) or math.isnan(value):
        return "not measured"
    if low is None and high is None:
        return "reference only"
    if low is not None and value < low:
        return "below"
    if high is not None and value > high:
        return "above"
    return "within"


def _band_text(low, high) -> str:
    def show(bound):
        return bound if isinstance(bound, str) else f"{bound:g}"

    if low is None and high is None:
        return ""
    if low is None:
        return f"<= {show(high)}"
    if high is None:
        return f">= {show(low)}"
    return f"{show(low)} - {show(high)}"


def metric_value(metrics: dict, name: str) -> Any:
    """``metrics[name]``, where a dotted name reaches into nested dicts
    (``"per_class_auc.D"`` is ``metrics["per_class_auc"]["D"]``); None when absent."""
    value: Any = metrics
    for part in name.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def compare(targets: list[Target], metrics: dict) -> pd.DataFrame:
    """The paper-vs-measured table: one row per target with the measured value and status.

    A target's name is a metric's name, dotted for a nested value (``per_class_auc.D``).
    A bound that names another metric is replaced by that metric's value (e.g. the DBT
    exponent must stay below the DM one); the table shows both the rule and the number.
    """
    rows = []
    for t in targets:
        value = metric_value(metrics, t.name)
        resolved, missing_reference = [], False
        for bound in (t.low, t.high):
            if isinstance(bound, str):
                bound = metric_value(metrics, bound)
                if not isinstance(bound, int | float):
                    missing_reference, bound = True, None
            resolved.append(bound)
        status = "not measured" if missing_reference else _status(value, *resolved)
        rows.append(
            {
                "target": t.name,
                "what": t.description,
                "paper / literature": t.reference,
                "band": _band_text(t.low, t.high),
                "band (values)": "" if missing_reference else _band_text(*resolved),
                "measured": value if isinstance(value, int | float) else None,
                "status": status,
                "source": t.source,
            }
        )
    return pd.DataFrame(rows)


class Recorder:
    """Figures, metrics and the paper-vs-measured table of one chapter run (chapters 00-05).

    ``out_dir`` is resolved against the project root (``OUT_DIR`` is injected relative to
    it); nothing is written until :meth:`savefig`, :meth:`save_table` or :meth:`write`.
    """

    def __init__(
        self,
        out_dir: str | os.PathLike,
        *,
        chapter: str,
        targets: list[Target] | None = None,
        **context: Any,
    ):
        self.out_dir = project_path(out_dir)
        self.chapter = chapter
        self.targets = load_targets(chapter) if targets is None else list(targets)
        self.metrics: dict[str, Any] = {}
        self.context = to_jsonable(context)
        self.figures: list[str] = []
        self.started = time.time()

    # -- recording
    def log(self, **values: Any) -> None:
        """Record metrics (numbers, strings, nested dicts/lists); later values replace earlier."""
        for name, value in values.items():
            self.metrics[name] = to_jsonable(value)

    def savefig(self, fig, name: str, *, dpi: int | None = None) -> Path:
        """Save ``fig`` as ``OUT_DIR/<name>.png`` (atomically) and return the path."""
        path = self.out_dir / f"{name}.png"
        with atomic_write(path) as fh:
            fig.savefig(fh, format="png", dpi=dpi, bbox_inches="tight")
        if path.name not in self.figures:
            self.figures.append(path.name)
        return path

    def save_table(self, df: pd.DataFrame, name: str) -> Path:
        """Save a table as ``OUT_DIR/<name>.csv`` (atomically)."""
        path = self.out_dir / f"{name}.csv"
        with atomic_write(path, "w") as fh:
            df.to_csv(fh, index=False, lineterminator="\n")
        return path

    # -- the comparison
    def compare(self) -> pd.DataFrame:
        """The paper-vs-measured table of this chapter, saved as ``paper_vs_measured.csv``."""
        table = compare(self.targets, self.metrics)
        self.save_table(table, COMPARISON_NAME.removesuffix(".csv"))
        return table

    def unmet(self) -> list[str]:
        """Targets whose measured value lies outside its band (for the chapter's text)."""
        table = compare(self.targets, self.metrics)
        return table.loc[table.status.isin(["below", "above"]), "target"].tolist()

    # -- the end of a run
    def write(self, provenance: dict | None = None) -> Path:
        """Write ``OUT_DIR/metrics.json`` atomically (metrics, comparison, figures, context)."""
        table = compare(self.targets, self.metrics)
        document = {
            "chapter": self.chapter,
            **self.context,
            "wall_time_s": round(time.time() - self.started, 1),
            "metrics": self.metrics,
            "paper_vs_measured": to_jsonable(
                table.replace({np.nan: None}).to_dict(orient="records")
            ),
            "figures": self.figures,
            "targets": [asdict(t) for t in self.targets],
        }
        if provenance is not None:
            document["provenance"] = to_jsonable(provenance)
        path = self.out_dir / METRICS_NAME
        with atomic_write(path, "w") as fh:
            json.dump(document, fh, indent=2, allow_nan=False)
            fh.write("\n")
        return path
