"""Tests for mammo_helpers.run.plan: notebook lookup, the plan of every run, the checks made
before anything runs, and the default folders anchored at the project root."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest

from mammo_helpers.paths import PROJECT_ROOT_ENV, project_root
from mammo_helpers.run import (
    ParameterError,
    RunnerError,
    list_notebooks,
    load_scale,
    plan_runs,
    resolve_notebooks,
)

FIXTURES = Path(__file__).resolve().parent / "fixtures"
NB_DIR = FIXTURES / "notebooks"
SCALE = FIXTURES / "params" / "fixture.yaml"
DEMO = NB_DIR / "params_demo.ipynb"


@pytest.fixture
def project(tmp_path, monkeypatch) -> Path:
    """A project root of its own with two notebooks; the working directory is elsewhere
    and holds decoy ``notebooks/`` and ``params/`` folders."""
    root = tmp_path / "project"
    (root / "params").mkdir(parents=True)
    (root / "notebooks").mkdir()
    shutil.copy(DEMO, root / "notebooks" / "00_demo.ipynb")
    shutil.copy(NB_DIR / "fails.ipynb", root / "notebooks" / "01_fails.ipynb")
    shutil.copy(SCALE, root / "params" / "fixture.yaml")
    cwd = tmp_path / "elsewhere"
    (cwd / "notebooks").mkdir(parents=True)
    (cwd / "params").mkdir()
    shutil.copy(DEMO, cwd / "notebooks" / "00_decoy.ipynb")
    monkeypatch.setenv(PROJECT_ROOT_ENV, str(root))
    monkeypatch.chdir(cwd)
    return root


# ------------------------------------------------------------------- notebook lookup


def test_resolve_notebooks_by_stem_prefix_and_path(tmp_path):
    for name in ("00_alpha", "00_beta", "01_gamma"):
        shutil.copy(DEMO, tmp_path / f"{name}.ipynb")
    (tmp_path / ".hidden.ipynb").write_text("{}")
    assert [p.stem for p in resolve_notebooks([], tmp_path)] == ["00_alpha", "00_beta", "01_gamma"]
    assert resolve_notebooks(["01"], tmp_path) == [tmp_path / "01_gamma.ipynb"]
    assert resolve_notebooks(["00_beta"], tmp_path) == [tmp_path / "00_beta.ipynb"]
    assert resolve_notebooks([str(DEMO)], tmp_path) == [DEMO]
    with pytest.raises(RunnerError, match="'00' matches several notebooks: 00_alpha, 00_beta"):
        resolve_notebooks(["00"], tmp_path)
    with pytest.raises(RunnerError, match="no notebook matches '07'.*01_gamma"):
        resolve_notebooks(["07"], tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunnerError, match="no notebooks in"):
        resolve_notebooks([], tmp_path / "empty")


def test_resolve_notebooks_names_a_missing_folder_or_file(tmp_path):
    with pytest.raises(RunnerError, match=r"notebooks folder \(--notebooks-dir\) not found"):
        resolve_notebooks(["00"], tmp_path / "nope")
    with pytest.raises(RunnerError, match="--notebooks-dir: .*padded with whitespace"):
        resolve_notebooks([], f"{tmp_path} ")
    with pytest.raises(RunnerError, match="notebook .*missing.ipynb.* does not exist"):
        resolve_notebooks([str(tmp_path / "missing.ipynb")], tmp_path / "nope")


def test_notebooks_are_found_in_the_project_root_from_another_working_directory(project):
    assert list_notebooks() == [
        project / "notebooks" / "00_demo.ipynb",
        project / "notebooks" / "01_fails.ipynb",
    ]
    assert resolve_notebooks(["00"]) == [project / "notebooks" / "00_demo.ipynb"]
    with pytest.raises(RunnerError, match="no notebook matches '00_decoy'"):
        resolve_notebooks(["00_decoy"])


# ---------------------------------------------------------------------------- plans


def test_several_notebooks_override_needs_one_declaring_notebook(tmp_path):
    notebooks = [DEMO, NB_DIR / "fails.ipynb"]
    plans = plan_runs(notebooks, load_scale(SCALE), {"EPOCHS": "4"}, results_dir=tmp_path)
    assert plans[0].parameters["EPOCHS"] == 4
    assert "EPOCHS" not in plans[1].parameters
    with pytest.raises(ParameterError, match="no selected notebook declares parameter NOPE"):
        plan_runs(notebooks, load_scale(SCALE), {"NOPE": "1"})


def test_default_folders_hang_off_the_project_root(project):
    (plan,) = plan_runs(resolve_notebooks(["00"]), load_scale("fixture"))
    assert plan.output == project / "book" / "executed" / "00_demo.ipynb"
    assert plan.failed_copy == project / "book" / "executed" / "00_demo.FAILED.ipynb"
    assert plan.out_dir == project / "results" / "00_demo"
    assert plan.parameters["OUT_DIR"] == "results/00_demo"  # relative: no machine paths
    assert plan.project_root == project == project_root()
    assert plan.timeout == 120.0  # the scale file's
    assert not (project / "results").exists() and not (project / "book").exists()


def test_timeout_option_wins_over_the_scale_file_and_is_checked(tmp_path):
    scale = load_scale(SCALE)
    (plan,) = plan_runs([DEMO], scale, results_dir=tmp_path, executed_dir=tmp_path, timeout=9)
    assert plan.timeout == 9.0
    for bad in (math.nan, math.inf, -5, 0):
        with pytest.raises(RunnerError, match=r"timeout \(--timeout\) must be a positive"):
            plan_runs([DEMO], scale, results_dir=tmp_path, timeout=bad)
    with pytest.raises(RunnerError, match="scale file .*: timeout must be a positive"):
        plan_runs([DEMO], {**scale, "timeout": math.nan}, results_dir=tmp_path)


def test_plans_that_would_overwrite_a_notebook_are_refused(tmp_path):
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    shutil.copy(DEMO, notebooks / "params_demo.ipynb")
    with pytest.raises(RunnerError, match="--executed-dir: .* would replace the notebook"):
        plan_runs([notebooks / "params_demo.ipynb"], load_scale(SCALE), executed_dir=notebooks)


def test_plans_that_would_share_products_are_refused(tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(DEMO, other / "params_demo.ipynb")
    scale = load_scale(SCALE)
    with pytest.raises(RunnerError, match="would share the executed copy"):
        plan_runs([DEMO, other / "params_demo.ipynb"], scale, results_dir=tmp_path / "r")
    both = [DEMO, NB_DIR / "fails.ipynb"]
    with pytest.raises(RunnerError, match="params_demo and fails would share the OUT_DIR"):
        plan_runs(both, scale, {"OUT_DIR": str(tmp_path / "same")}, executed_dir=tmp_path)


def test_folders_that_cannot_be_written_are_refused(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    scale = load_scale(SCALE)
    with pytest.raises(RunnerError, match="--results-dir: .* is a file"):
        plan_runs([DEMO], scale, results_dir=blocker)
    with pytest.raises(RunnerError, match="--executed-dir: cannot create .* is a file"):
        plan_runs([DEMO], scale, executed_dir=blocker / "x", results_dir=tmp_path)
    with pytest.raises(RunnerError, match="OUT_DIR of params_demo: cannot create"):
        plan_runs([DEMO], scale, {"OUT_DIR": str(blocker / "out")}, executed_dir=tmp_path)
    (tmp_path / "executed" / "params_demo.ipynb").mkdir(parents=True)
    with pytest.raises(RunnerError, match="--executed-dir: .* is a folder, not a notebook"):
        plan_runs([DEMO], scale, executed_dir=tmp_path / "executed", results_dir=tmp_path)


def test_effective_parameters_include_notebook_defaults(tmp_path):
    (plan,) = plan_runs([DEMO], load_scale(SCALE), results_dir=tmp_path, executed_dir=tmp_path)
    effective = plan.effective()
    assert effective["DATA_SOURCE"] == "phantom"  # notebook default, not injected
    assert effective["EPOCHS"] == 3 and "DATA_SOURCE" not in plan.parameters
