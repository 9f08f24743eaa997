"""Run several notebooks and keep the record: the Python API behind ``mammo-run``.

:func:`run_notebooks` plans every selected notebook (all checks first), runs them in order
(stopping at the first failure unless ``keep_going``) and merges each outcome into
``<results-dir>/run_summary.json`` (status, seconds and parameters of every run; entries
of notebooks not run this time are kept). :func:`run_notebook` runs one and raises
:class:`~mammo_helpers.run.execution.NotebookFailed` if it fails. Used by ``make
notebooks``, the test-suite's smoke run and readers rerunning a chapter (00-05).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mammo_helpers.paths import atomic_write
from mammo_helpers.run import execution
from mammo_helpers.run.execution import NotebookFailed, RunResult
from mammo_helpers.run.plan import RESULTS_DIR, default_dir, plan_runs, resolve_notebooks
from mammo_helpers.run.scales import load_scale

SUMMARY_NAME = "run_summary.json"


def write_summary(
    results: list[RunResult], results_dir: str | os.PathLike | None, scale: dict
) -> Path:
    """Merge these results into ``<results-dir>/run_summary.json`` (atomic write)."""
    path = Path(default_dir(results_dir, RESULTS_DIR)) / SUMMARY_NAME
    summary: dict[str, Any] = {"notebooks": {}}
    if path.exists():
        with contextlib.suppress(ValueError, OSError):
            old = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(old, dict) and isinstance(old.get("notebooks"), dict):
                summary = old
    now = datetime.now(UTC).isoformat(timespec="seconds")
    for result in results:
        entry = result.to_json()
        entry.update(scale=scale.get("name"), params_file=scale.get("path"), finished=now)
        summary["notebooks"][result.stem] = entry
    summary["updated"] = now
    summary["notebooks"] = dict(sorted(summary["notebooks"].items()))
    with atomic_write(path, "w") as fh:
        json.dump(summary, fh, indent=2, default=str)
        fh.write("\n")
    return path


def _say(quiet: bool, message: str) -> None:
    if not quiet:
        print(f"[mammo-run] {message}", file=sys.stderr, flush=True)


def run_notebooks(
    notebooks: list[str | os.PathLike] | None = None,
    scale: str | os.PathLike | dict = "default",
    *,
    notebooks_dir: str | os.PathLike | None = None,
    executed_dir: str | os.PathLike | None = None,
    results_dir: str | os.PathLike | None = None,
    timeout: float | None = None,
    overrides: dict[str, Any] | None = None,
    keep_going: bool = False,
    quiet: bool = False,
) -> list[RunResult]:
    """Run several notebooks (all of ``notebooks_dir`` by default); write the summary.

    The folders default to ``notebooks/``, ``book/executed/`` and ``results/`` of the
    project root. Every notebook, parameter and option is checked before the first one runs
    (:class:`~mammo_helpers.run.options.RunnerError` otherwise, and nothing is removed).
    Stops at the first failure unless ``keep_going``. Returns the results of the notebooks
    that ran; never raises for a failing notebook (check ``result.ok``).
    """
    scale_cfg = scale if isinstance(scale, dict) else load_scale(scale)
    paths = resolve_notebooks([os.fspath(n) for n in notebooks or []], notebooks_dir)
    plans = plan_runs(
        paths,
        scale_cfg,
        overrides,
        executed_dir=executed_dir,
        results_dir=results_dir,
        timeout=timeout,
    )
    results_folder = default_dir(results_dir, RESULTS_DIR)
    results = []
    for plan in plans:
        _say(
            quiet,
            f"{plan.stem}: scale {scale_cfg.get('name')}, output {plan.output}, "
            f"timeout {plan.timeout or 'none'}",
        )
        result = execution.execute(plan, quiet=quiet)
        results.append(result)
        write_summary([result], results_folder, scale_cfg)
        if result.ok:
            _say(quiet, f"{plan.stem}: ok in {result.seconds:.1f} s")
        else:
            print(f"[mammo-run] {result.describe_failure()}", file=sys.stderr, flush=True)
            if not keep_going:
                break
    return results


def run_notebook(
    path: str | os.PathLike,
    scale: str | os.PathLike | dict = "smoke",
    *,
    notebooks_dir: str | os.PathLike | None = None,
    executed_dir: str | os.PathLike | None = None,
    results_dir: str | os.PathLike | None = None,
    timeout: float | None = None,
    overrides: dict[str, Any] | None = None,
    quiet: bool = False,
    **parameters: Any,
) -> Path:
    """Run one notebook (path, stem or prefix) and return the executed copy's path.

    Extra keyword arguments are parameter overrides, e.g.
    ``run_notebook("02", "smoke", EPOCHS=1)``; ``overrides={...}`` does the same for names
    that clash with the options. Raises :class:`NotebookFailed` if the notebook fails.
    """
    merged = {**(overrides or {}), **parameters}
    results = run_notebooks(
        [path],
        scale,
        notebooks_dir=notebooks_dir,
        executed_dir=executed_dir,
        results_dir=results_dir,
        timeout=timeout,
        overrides=merged,
        quiet=quiet,
    )
    result = results[0]
    if not result.ok:
        raise NotebookFailed(result)
    return result.output
