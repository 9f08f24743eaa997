"""Shared fixtures: the session-wide smoke run of every notebook (tests marked
``notebook`` and ``book`` use it).

``MAMMO_TEST_NOTEBOOKS_DIR`` points the smoke run at another folder of notebooks; it is
only meant for developing these tests before the real notebooks exist.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from mammo_helpers.run import SUMMARY_NAME, RunResult, list_notebooks, run_notebooks

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
NOTEBOOKS_DIR_ENV = "MAMMO_TEST_NOTEBOOKS_DIR"


def notebooks_dir() -> Path:
    """The notebooks under test: ``notebooks/`` unless ``MAMMO_TEST_NOTEBOOKS_DIR`` is set."""
    env = os.environ.get(NOTEBOOKS_DIR_ENV)
    return Path(env).resolve() if env else REPO / "notebooks"


def committed_notebooks() -> list[Path]:
    return list_notebooks(notebooks_dir())


@dataclass
class SmokeRun:
    """Where the smoke run put its products, and what it reported."""

    root: Path
    notebooks_dir: Path
    executed_dir: Path
    results_dir: Path
    notebooks: list[Path]
    results: dict[str, RunResult] = field(default_factory=dict)
    summary: dict = field(default_factory=dict)


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory) -> SmokeRun:
    """Run every notebook once per session at the smoke scale (keep going after failures)."""
    folder = notebooks_dir()
    notebooks = list_notebooks(folder)
    if not notebooks:
        pytest.skip(f"no notebooks in {folder}: nothing to execute at the smoke scale")
    root = tmp_path_factory.mktemp("smoke")
    run = SmokeRun(
        root=root,
        notebooks_dir=folder,
        executed_dir=root / "executed",
        results_dir=root / "results",
        notebooks=notebooks,
    )
    results = run_notebooks(
        None,
        REPO / "params" / "smoke.yaml",
        notebooks_dir=folder,
        executed_dir=run.executed_dir,
        results_dir=run.results_dir,
        keep_going=True,
    )
    run.results = {r.stem: r for r in results}
    summary_path = run.results_dir / SUMMARY_NAME
    if summary_path.exists():
        run.summary = json.loads(summary_path.read_text(encoding="utf-8"))
    return run
