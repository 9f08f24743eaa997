"""Tests for mammo_helpers.runner (the papermill runner behind ``mammo-run``).

Uses the tiny notebooks in tests/fixtures/notebooks and the scale files in
tests/fixtures/params; four short notebook executions in total.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mammo_helpers import runner
from mammo_helpers.runner import (
    Declared,
    NotebookFailed,
    ParameterError,
    RunnerError,
    RunResult,
    check_type,
    load_scale,
    main,
    parse_cli_value,
    resolve_notebooks,
    resolve_parameters,
    run_notebook,
    write_summary,
)

FIXTURES = Path(__file__).resolve().parent / "fixtures"
NB_DIR = FIXTURES / "notebooks"
SCALE = FIXTURES / "params" / "fixture.yaml"
DEMO = NB_DIR / "params_demo.ipynb"


def _cli(tmp_path: Path, *args: str) -> list[str]:
    return [
        "--params",
        str(SCALE),
        "--notebooks-dir",
        str(NB_DIR),
        "--executed-dir",
        str(tmp_path / "executed"),
        "--results-dir",
        str(tmp_path / "results"),
        "--quiet",
        *args,
    ]


def _summary(tmp_path: Path) -> dict:
    return json.loads((tmp_path / "results" / "run_summary.json").read_text())["notebooks"]


# ----------------------------------------------------------------------- scale files


def test_load_named_scales_from_the_repository():
    for name in ("smoke", "default", "paper"):
        scale = load_scale(name)
        assert scale["name"] == name
        assert {"SEED", "DATA_SOURCE", "DATA_DIR", "EPOCHS", "DEVICE"} <= set(scale["common"])


def test_load_scale_from_path_reads_sections_and_timeout():
    scale = load_scale(SCALE)
    assert scale["name"] == "fixture"
    assert scale["timeout"] == 120.0
    assert scale["common"]["SEED"] == 7
    assert scale["params_demo"] == {"EPOCHS": 3, "SIZES": [4, 8, 16]}


def test_unknown_scale_names_the_known_ones():
    with pytest.raises(RunnerError, match="unknown scale 'huge'.*smoke, default, paper"):
        load_scale("huge")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("common:\n  OUT_DIR: /x\n", "sets OUT_DIR, which the runner sets"),
        ("common: [1, 2]\n", "section 'common' must be a mapping"),
        ("- a\n- b\n", "top level must be a mapping"),
        ("timeout: -3\n", "'timeout' must be a positive number"),
        ("common:\n  1abc: 2\n", "is not a parameter name"),
        ("common: {SEED: [\n", "invalid YAML"),
    ],
)
def test_bad_scale_files_are_rejected_with_the_file_named(tmp_path, text, message):
    path = tmp_path / "broken.yaml"
    path.write_text(text)
    with pytest.raises(RunnerError, match=message) as err:
        load_scale(path)
    assert "broken.yaml" in str(err.value)


# ------------------------------------------------------------------ parameter merging


def test_merge_order_defaults_common_section_override(tmp_path):
    scale = load_scale(SCALE)
    params, origins = resolve_parameters(DEMO, scale, results_dir=tmp_path)
    assert params["SEED"] == 7 and origins["SEED"] == "common"
    assert params["EPOCHS"] == 3 and origins["EPOCHS"] == "params_demo"  # section > common
    assert params["SIZES"] == [4, 8, 16]
    assert params["LR"] == 1.0 and isinstance(params["LR"], float)  # int accepted for float
    assert "N_PATIENTS" not in params  # common key the notebook does not declare: skipped
    assert "DATA_SOURCE" not in params  # not in the scale file: the notebook default stays
    assert params["OUT_DIR"] == str((tmp_path / "params_demo").resolve())
    assert params["SCALE"] == "fixture" and origins["SCALE"] == "runner"

    params, origins = resolve_parameters(
        DEMO, scale, {"EPOCHS": "5", "OUT_DIR": "rel/out"}, results_dir=tmp_path
    )
    assert params["EPOCHS"] == 5 and origins["EPOCHS"] == "override"  # override > section
    assert params["OUT_DIR"] == str(Path("rel/out").resolve())  # made absolute


def test_undeclared_override_names_it_and_lists_declared():
    with pytest.raises(ParameterError) as err:
        resolve_parameters(DEMO, load_scale(SCALE), {"EPOCS": "3"})
    message = str(err.value)
    assert "EPOCS" in message
    for declared in ("SEED", "OUT_DIR", "DATA_SOURCE", "EPOCHS", "SIZES"):
        assert declared in message


def test_undeclared_key_in_a_stem_section_is_an_error():
    with pytest.raises(ParameterError, match="does not declare parameter EPOCS") as err:
        resolve_parameters(DEMO, load_scale(FIXTURES / "params" / "undeclared.yaml"))
    assert "undeclared.yaml" in str(err.value)


def test_type_error_from_override_and_from_scale_file():
    with pytest.raises(ParameterError, match='parameter EPOCHS expects int, got str "x"'):
        resolve_parameters(DEMO, load_scale(SCALE), {"EPOCHS": "x"})
    with pytest.raises(ParameterError, match='parameter EPOCHS expects int, got str "three"') as e:
        resolve_parameters(DEMO, load_scale(FIXTURES / "params" / "bad_type.yaml"))
    assert "bad_type.yaml" in str(e.value)


def test_several_notebooks_override_needs_one_declaring_notebook(tmp_path):
    notebooks = [DEMO, NB_DIR / "fails.ipynb"]
    plans = runner.plan_runs(notebooks, load_scale(SCALE), {"EPOCHS": "4"}, results_dir=tmp_path)
    assert plans[0].parameters["EPOCHS"] == 4
    assert "EPOCHS" not in plans[1].parameters
    with pytest.raises(ParameterError, match="no selected notebook declares parameter NOPE"):
        runner.plan_runs(notebooks, load_scale(SCALE), {"NOPE": "1"})


# ------------------------------------------------------------------------ type checks

INT = Declared("EPOCHS", "3")
FLOAT = Declared("LR", "0.5")
STR = Declared("DATA_SOURCE", '"phantom"')
BOOL = Declared("USE_AUGMENT", "False")
LIST = Declared("SIZES", "[8, 16]")
NONE = Declared("DATA_DIR", "None")
OPTIONAL = Declared("N_PATIENTS", "40", annotation="int | None")
OPAQUE = Declared("ROOT", "Path('x')")


@pytest.mark.parametrize(
    ("declared", "value", "ok"),
    [
        (INT, 3, True),
        (INT, True, False),  # bool is not an int parameter
        (INT, 2.5, False),
        (INT, None, False),
        (FLOAT, 2, True),
        (FLOAT, False, False),
        (STR, "vindr", True),
        (STR, 3, False),
        (BOOL, True, True),
        (BOOL, 1, False),
        (LIST, [1], True),
        (LIST, (1, 2), True),
        (LIST, "1,2", False),
        (NONE, "/data", True),  # None default: anything goes
        (NONE, None, True),
        (OPTIONAL, None, True),
        (OPTIONAL, 12, True),
        (OPTIONAL, "12", False),
        (OPAQUE, object, True),  # non-literal default without annotation: unchecked
    ],
)
def test_check_type_table(declared, value, ok):
    if ok:
        check_type(declared, value)
    else:
        with pytest.raises(ParameterError, match=f"parameter {declared.name} expects"):
            check_type(declared, value)


@given(st.integers(min_value=-(10**12), max_value=10**12))
def test_ints_become_floats_for_float_parameters(value):
    out = check_type(FLOAT, value)
    assert isinstance(out, float) and out == value


@given(st.text(min_size=1, max_size=20).filter(lambda s: s.strip() == s and s.strip()))
def test_cli_text_is_kept_verbatim_for_string_parameters(text):
    assert parse_cli_value(text, STR) == text


@pytest.mark.parametrize(
    ("declared", "text", "value"),
    [
        (INT, "3", 3),
        (FLOAT, "1e-3", 1e-3),
        (BOOL, "true", True),
        (LIST, "[1, 2]", [1, 2]),
        (NONE, "null", None),
        (STR, "3", "3"),
        (Declared("TAG", '"x"', annotation="str | None"), "null", None),
    ],
)
def test_parse_cli_value(declared, text, value):
    assert parse_cli_value(text, declared) == value


@pytest.mark.parametrize(
    ("annotation", "types"),
    [
        ("int", (int,)),
        ("int | None", (int, type(None))),
        ("Optional[float]", (float, type(None))),
        ("list[int]", (list,)),
        ("np.ndarray", None),
    ],
)
def test_annotation_types(annotation, types):
    assert Declared("X", "1", annotation=annotation).expected_types == types


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
    with pytest.raises(RunnerError, match="no notebooks in"):
        resolve_notebooks([], tmp_path / "empty")


# --------------------------------------------------------------------------- summary


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


# ------------------------------------------------------------------------ executions


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

    nb = nbformat.read(out, as_version=4)
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and "vindr" in injected[0].source
    entry = _summary(tmp_path)["params_demo"]
    assert entry["status"] == "ok"
    assert entry["parameters"]["EPOCHS"] == 3
    assert entry["parameters"]["DATA_SOURCE"] == "vindr"
    assert "DATA_SOURCE" in entry["injected"] and "DATA_DIR" not in entry["injected"]


def test_failing_notebook_reports_cell_and_keeps_partial_copy(tmp_path, capfd):
    stale = tmp_path / "results" / "fails" / "metrics.json"
    stale.parent.mkdir(parents=True)
    stale.write_text("{}")
    # params_demo comes after the failure and must not run without --keep-going
    code = main(_cli(tmp_path, "fails", "params_demo"))
    err = capfd.readouterr().err
    assert code == 1
    assert "fails.ipynb FAILED" in err
    assert "cell 3" in err
    assert 'raise ValueError("boom from cell three")' in err
    assert "ValueError: boom from cell three" in err
    assert not stale.exists()  # a stale metrics.json cannot pass for this run's

    executed = tmp_path / "executed"
    assert not (executed / "params_demo.ipynb").exists()
    for path in (executed / "fails.ipynb", executed / "fails.FAILED.ipynb"):
        nb = nbformat.read(path, as_version=4)
        code_cells = [
            c
            for c in nb.cells
            if c.cell_type == "code" and "injected-parameters" not in c.metadata.get("tags", [])
        ]
        params_cell, second, third, fourth = code_cells
        assert params_cell.execution_count is not None
        assert "cell two ran 42" in "".join(o.get("text", "") for o in second.outputs)
        assert any(o.get("ename") == "ValueError" for o in third.outputs)
        assert fourth.execution_count is None
    entry = _summary(tmp_path)["fails"]
    assert entry["status"] == "failed"
    assert entry["error"]["cell"] == 3 and entry["error"]["ename"] == "ValueError"


def test_run_notebook_raises_notebook_failed(tmp_path, monkeypatch):
    """The API wrapper turns a failed run into NotebookFailed (execution itself is covered
    by the CLI tests; here ``execute`` is replaced to save a kernel start)."""

    def fake_execute(plan, quiet=False):
        error = {"cell": 3, "source_line": "raise X", "ename": "ValueError", "evalue": "boom"}
        return RunResult(plan.stem, plan.notebook, plan.output, "failed", 0.5, {}, error=error)

    monkeypatch.setattr(runner, "execute", fake_execute)
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
    assert _summary(tmp_path)["fails"]["status"] == "failed"


def _alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_timeout_kills_kernel_and_keep_going_runs_the_rest(tmp_path, capfd):
    code = main(_cli(tmp_path, "--timeout", "6", "--keep-going", "sleeps", "params_demo"))
    err = capfd.readouterr().err
    assert code == 1
    assert "sleeps.ipynb FAILED" in err and "cell 3" in err
    assert "TimeoutError: stopped by mammo-run after the 6 s timeout" in err
    assert "1 of 2 notebook(s) failed: sleeps (timeout)" in err

    pid = int((tmp_path / "results" / "sleeps" / "kernel.pid").read_text())
    assert not _alive(pid), f"kernel {pid} still running after the timeout"

    nb = nbformat.read(tmp_path / "executed" / "sleeps.FAILED.ipynb", as_version=4)
    sleeping = next(c for c in nb.cells if "time.sleep" in c.source)
    assert [o.get("ename") for o in sleeping.outputs] == ["TimeoutError"]
    summary = _summary(tmp_path)
    assert summary["sleeps"]["status"] == "timeout"
    assert summary["params_demo"]["status"] == "ok"  # --keep-going ran it


def test_list_shows_values_and_origins_without_running(tmp_path):
    env = dict(os.environ)
    proc = subprocess.run(
        [sys.executable, "-m", "mammo_helpers.runner", "--list", *_cli(tmp_path, "params")],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "params_demo" in out
    assert "EPOCHS      = 3  [params_demo]" in out
    assert "SEED        = 7  [common]" in out
    assert "OUT_DIR" in out and "[runner]" in out
    assert 'DATA_SOURCE = "phantom"  [notebook default]' in out
    assert not (tmp_path / "executed").exists()


def test_cli_reports_configuration_errors_with_exit_code_2(tmp_path, capsys):
    assert main(_cli(tmp_path, "params_demo", "-p", "EPOCHS", "x")) == 2
    assert 'parameter EPOCHS expects int, got str "x"' in capsys.readouterr().err
    assert main(_cli(tmp_path, "params_demo", "-p", "NOPE", "1")) == 2
    assert "does not declare parameter NOPE" in capsys.readouterr().err
    assert not (tmp_path / "executed").exists()


def test_common_value_replaced_by_the_stem_section_is_not_type_checked(tmp_path):
    # paper.yaml sets N_PATIENTS: null for real data in common; a notebook that needs an int
    # gets it from its own section, so the common null must not be an error
    path = tmp_path / "scale.yaml"
    path.write_text("common:\n  EPOCHS: null\nparams_demo:\n  EPOCHS: 4\n")
    params, origins = resolve_parameters(DEMO, load_scale(path), results_dir=tmp_path)
    assert params["EPOCHS"] == 4 and origins["EPOCHS"] == "params_demo"
    path.write_text("common:\n  EPOCHS: null\n")
    with pytest.raises(ParameterError, match="EPOCHS expects int"):
        resolve_parameters(DEMO, load_scale(path), results_dir=tmp_path)
