"""Tests for mammo_helpers.run.cli: the ``mammo-run`` command line.

No notebook is executed here: configuration errors are found before anything runs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from mammo_helpers.paths import PROJECT_ROOT_ENV
from mammo_helpers.run import main

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
NB_DIR = FIXTURES / "notebooks"
SCALE = FIXTURES / "params" / "fixture.yaml"
DEMO = NB_DIR / "params_demo.ipynb"


def _cli(tmp_path: Path, *args: str, notebooks: Path = NB_DIR) -> list[str]:
    return [
        "--params",
        str(SCALE),
        "--notebooks-dir",
        str(notebooks),
        "--executed-dir",
        str(tmp_path / "executed"),
        "--results-dir",
        str(tmp_path / "results"),
        "--quiet",
        *args,
    ]


def test_list_shows_values_and_origins_without_running(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "mammo_helpers.run", "--list", *_cli(tmp_path, "params")],
        capture_output=True,
        text=True,
        env=dict(os.environ),
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


def test_the_entry_point_is_the_run_package():
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert pyproject["project"]["scripts"]["mammo-run"] == "mammo_helpers.run:main"


def test_cli_reports_configuration_errors_with_exit_code_2(tmp_path, capsys):
    assert main(_cli(tmp_path, "params_demo", "-p", "EPOCHS", "x")) == 2
    assert 'parameter EPOCHS expects int, got str "x"' in capsys.readouterr().err
    assert main(_cli(tmp_path, "params_demo", "-p", "NOPE", "1")) == 2
    assert "does not declare parameter NOPE" in capsys.readouterr().err
    assert not (tmp_path / "executed").exists()


def test_a_timeout_that_is_not_a_number_is_an_argparse_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(_cli(tmp_path, "params_demo", "--timeout", "ten"))
    assert exit_info.value.code == 2
    assert "argument --timeout: invalid float value: 'ten'" in capsys.readouterr().err


BAD_OPTIONS = {
    "negative timeout": (["--timeout", "-5"], "--timeout"),
    "zero timeout": (["--timeout", "0"], "--timeout"),
    "nan timeout": (["--timeout", "nan"], "--timeout"),
    "inf timeout": (["--timeout", "inf"], "--timeout"),
    "results dir is a file": (["--results-dir", "{file}"], "--results-dir"),
    "executed dir under a file": (["--executed-dir", "{file}/x"], "--executed-dir"),
    "executed dir = notebooks": (["--executed-dir", "{notebooks}"], "would replace the notebook"),
    "padded notebooks dir": (["--notebooks-dir", "{notebooks} "], "--notebooks-dir"),
    "unknown notebook": (["nope"], "no notebook matches 'nope'"),
    "nan timeout in the scale file": (["--params", "{nan_scale}"], "'timeout'"),
    "empty OUT_DIR": (["-p", "OUT_DIR", ""], "OUT_DIR"),
    "OUT_DIR under a file": (["-p", "OUT_DIR", "{file}/out"], "OUT_DIR"),
    "parameter of the wrong type": (["-p", "EPOCHS", "x"], "EPOCHS"),
}


@pytest.mark.parametrize("case", list(BAD_OPTIONS))
def test_bad_options_are_refused_before_anything_is_removed(tmp_path, capsys, case):
    """``mammo-run --timeout -5`` used to delete the previous executed notebook and
    ``metrics.json`` before failing; every option is now checked first."""
    notebooks = tmp_path / "notebooks"
    shutil.copytree(NB_DIR, notebooks)
    executed = tmp_path / "executed" / "params_demo.ipynb"
    metrics = tmp_path / "results" / "params_demo" / "metrics.json"
    failed_copy = executed.with_name("params_demo.FAILED.ipynb")
    for path, text in ((executed, '{"good": 1}'), (metrics, '{"auc": 0.9}'), (failed_copy, "x")):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (tmp_path / "file").write_text("not a folder")
    (tmp_path / "nan.yaml").write_text("timeout: .nan\ncommon: {SEED: 1}\n")
    before = {p: p.read_bytes() for p in notebooks.iterdir()}

    extra, message = BAD_OPTIONS[case]
    fill = {"file": tmp_path / "file", "notebooks": notebooks, "nan_scale": tmp_path / "nan.yaml"}
    extra = [arg.format(**fill) for arg in extra]
    names = [] if "nope" in extra else ["params_demo"]
    code = main(_cli(tmp_path, *names, *extra, notebooks=notebooks))

    err = capsys.readouterr().err
    assert code == 2, err
    assert message in err and err.startswith("mammo-run: error: ")
    assert executed.read_text() == '{"good": 1}'
    assert metrics.read_text() == '{"auc": 0.9}'
    assert failed_copy.read_text() == "x"
    assert {p: p.read_bytes() for p in notebooks.iterdir()} == before


def test_defaults_are_anchored_at_the_project_root(tmp_path, monkeypatch, capsys):
    project = tmp_path / "project"
    (project / "params").mkdir(parents=True)
    (project / "notebooks").mkdir()
    shutil.copy(DEMO, project / "notebooks" / "00_demo.ipynb")
    shutil.copy(SCALE, project / "params" / "fixture.yaml")
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "notebooks").mkdir(parents=True)
    shutil.copy(DEMO, elsewhere / "notebooks" / "99_decoy.ipynb")
    monkeypatch.setenv(PROJECT_ROOT_ENV, str(project))
    monkeypatch.chdir(elsewhere)

    assert main(["--list", "--scale", "fixture"]) == 0
    out = capsys.readouterr().out
    assert f"scale fixture ({project / 'params' / 'fixture.yaml'})" in out
    assert f"-> {project / 'book' / 'executed' / '00_demo.ipynb'}" in out
    assert "OUT_DIR     = 'results/00_demo'  [runner]" in out
    assert "99_decoy" not in out
    assert sorted(p.name for p in elsewhere.iterdir()) == ["notebooks"]


def test_help_names_the_anchored_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for folder in ("notebooks", "book/executed", "results"):
        assert f"<project root>/{folder}" in out
