"""Tests for mammo_helpers.run.runs: run_notebook / run_notebooks and run_summary.json.

Two short notebook executions: the fixture folders, and a project of its own reached from
another working directory (the default folders and a relative ``OUT_DIR``).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nbformat
import pytest

from mammo_helpers.paths import PROJECT_ROOT_ENV
from mammo_helpers.run import (
    SUMMARY_NAME,
    NotebookFailed,
    RunResult,
    execution,
    run_notebook,
    run_notebooks,
    write_summary,
)

FIXTURES = Path(__file__).resolve().parent / "fixtures"
NB_DIR = FIXTURES / "notebooks"
SCALE = FIXTURES / "params" / "fixture.yaml"
DEMO = NB_DIR / "params_demo.ipynb"


def _summary(results_dir: Path) -> dict:
    return json.loads((results_dir / SUMMARY_NAME).read_text())["notebooks"]


def _injected_cell(path: Path):
    nb = nbformat.read(path, as_version=4)
    cells = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1
    return cells[0]


def test_write_summary_merges_entries(tmp_path):
    scale = {"name": "smoke", "path": "params/smoke.yaml"}

    def result(stem, status):
        return RunResult(stem, Path(f"{stem}.ipynb"), Path(f"out/{stem}.ipynb"), status, 1.5, {})

    write_summary([result("00_a", "ok")], tmp_path, scale)
    write_summary([result("01_b", "failed")], tmp_path, scale)
    write_summary([result("00_a", "timeout")], tmp_path, scale)
    notebooks = json.loads((tmp_path / "run_summary.json").read_text())["notebooks"]
    assert {k: v["status"] for k, v in notebooks.items()} == {"00_a": "timeout", "01_b": "failed"}
    assert notebooks["01_b"]["scale"] == "smoke"


def test_write_summary_starts_afresh_over_a_damaged_summary(tmp_path):
    (tmp_path / SUMMARY_NAME).write_text("{truncated")
    result = RunResult("00_a", Path("a.ipynb"), Path("out/a.ipynb"), "ok", 1.0, {"SEED": 1})
    write_summary([result], tmp_path, {"name": "smoke"})
    entry = _summary(tmp_path)["00_a"]
    assert entry["status"] == "ok" and entry["parameters"] == {"SEED": 1}


def test_run_notebook_injects_parameters_and_writes_metrics(tmp_path):
    out = run_notebook(
        DEMO,
        SCALE,
        executed_dir=tmp_path / "executed",
        results_dir=tmp_path / "results",
        quiet=True,
        DATA_SOURCE="vindr",
        USE_AUGMENT=True,
    )
    assert out == (tmp_path / "executed" / "params_demo.ipynb").resolve()
    metrics = json.loads((tmp_path / "results" / "params_demo" / "metrics.json").read_text())
    assert metrics["OUT_DIR"] == str((tmp_path / "results" / "params_demo").resolve())
    assert metrics["SCALE"] == "fixture"
    assert metrics["SEED"] == 7 and metrics["EPOCHS"] == 3 and metrics["SIZES"] == [4, 8, 16]
    assert metrics["LR"] == 1.0 and metrics["lr_type"] == "float"
    assert metrics["DATA_SOURCE"] == "vindr" and metrics["USE_AUGMENT"] is True
    assert metrics["DATA_DIR"] is None
    assert metrics["cwd"] == str(NB_DIR)  # executed in the notebook's folder

    assert "vindr" in _injected_cell(out).source
    entry = _summary(tmp_path / "results")["params_demo"]
    assert entry["status"] == "ok"
    assert entry["parameters"]["EPOCHS"] == 3
    assert entry["parameters"]["DATA_SOURCE"] == "vindr"
    assert "DATA_SOURCE" in entry["injected"] and "DATA_DIR" not in entry["injected"]


def test_run_notebook_raises_notebook_failed(tmp_path, monkeypatch):
    """The API wrapper turns a failed run into NotebookFailed (execution itself is covered
    by the execution tests; here ``execute`` is replaced to save a kernel start)."""

    def fake_execute(plan, quiet=False):
        error = {"cell": 3, "source_line": "raise X", "ename": "ValueError", "evalue": "boom"}
        return RunResult(plan.stem, plan.notebook, plan.output, "failed", 0.5, {}, error=error)

    monkeypatch.setattr(execution, "execute", fake_execute)
    with pytest.raises(NotebookFailed, match="cell 3") as err:
        run_notebook(
            NB_DIR / "fails.ipynb",
            SCALE,
            executed_dir=tmp_path / "executed",
            results_dir=tmp_path / "results",
            quiet=True,
        )
    assert err.value.result.error["ename"] == "ValueError"
    assert "ValueError: boom" in str(err.value)
    assert _summary(tmp_path / "results")["fails"]["status"] == "failed"


def test_a_run_from_another_directory_uses_the_project_root_and_a_relative_out_dir(
    tmp_path, monkeypatch
):
    """Everything is found from ``$MAMMO_PROJECT_ROOT`` (scale, notebook, output folders),
    nothing lands in the working directory, and the executed notebook (what the book
    shows) holds ``OUT_DIR = "results/params_demo"``, not this machine's folders; the kernel
    resolves it to the same folder the runner prepared."""
    project = tmp_path / "project"
    (project / "params").mkdir(parents=True)
    (project / "notebooks").mkdir()
    shutil.copy(DEMO, project / "notebooks" / "params_demo.ipynb")
    shutil.copy(SCALE, project / "params" / "fixture.yaml")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.setenv(PROJECT_ROOT_ENV, str(project))
    monkeypatch.chdir(elsewhere)

    (result,) = run_notebooks(["params_demo"], "fixture", quiet=True)
    assert result.ok, result.describe_failure()
    assert result.output == project / "book" / "executed" / "params_demo.ipynb"
    metrics = json.loads((project / "results" / "params_demo" / "metrics.json").read_text())
    assert metrics["OUT_DIR"] == "results/params_demo"
    assert metrics["out_dir_resolved"] == str(project / "results" / "params_demo")
    assert metrics["project_root"] == str(project)
    assert metrics["cwd"] == str(project / "notebooks")
    injected = _injected_cell(result.output).source
    assert 'OUT_DIR = "results/params_demo"' in injected
    assert str(tmp_path) not in injected
    assert _summary(project / "results")["params_demo"]["parameters"]["OUT_DIR"] == (
        "results/params_demo"
    )
    assert list(elsewhere.iterdir()) == []
