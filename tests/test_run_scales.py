"""Tests for mammo_helpers.run.scales: scale files, found from the project root."""

from __future__ import annotations

from pathlib import Path

import pytest

from mammo_helpers.paths import PROJECT_ROOT_ENV, project_root
from mammo_helpers.run import RunnerError, load_scale, scale_file

FIXTURES = Path(__file__).resolve().parent / "fixtures"
SCALE = FIXTURES / "params" / "fixture.yaml"


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
    assert load_scale(str(SCALE)) == scale  # text ending in .yaml is a path too


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
        ("timeout: 0\n", "'timeout' must be a positive number"),
        ("timeout: .nan\n", "'timeout' must be a positive number.*not a limit"),
        ("timeout: .inf\n", "'timeout' must be a positive number.*not a limit"),
        ("timeout: true\n", "'timeout' must be a positive number"),
        ("timeout: ten\n", "'timeout' must be a positive number"),
        ("common:\n  1abc: 2\n", "is not a parameter name"),
        ("common: {SEED: [\n", "invalid YAML"),
        ("name: {SEED: 1}\n", "'name' is reserved"),
    ],
)
def test_bad_scale_files_are_rejected_with_the_file_named(tmp_path, text, message):
    path = tmp_path / "broken.yaml"
    path.write_text(text)
    with pytest.raises(RunnerError, match=message) as err:
        load_scale(path)
    assert "broken.yaml" in str(err.value)


def test_a_missing_scale_file_is_named(tmp_path):
    with pytest.raises(RunnerError, match="scale file .*nope.yaml.* does not exist"):
        load_scale(tmp_path / "nope.yaml")
    with pytest.raises(RunnerError, match="is a folder"):
        load_scale(tmp_path)


def test_named_scales_come_from_the_project_root_not_the_working_directory(tmp_path, monkeypatch):
    """A decoy ``params/smoke.yaml`` (and a file called ``smoke``) in the working directory
    is ignored; ``$MAMMO_PROJECT_ROOT`` moves the anchor."""
    decoy = tmp_path / "elsewhere"
    (decoy / "params").mkdir(parents=True)
    (decoy / "notebooks").mkdir()
    (decoy / "params" / "smoke.yaml").write_text("common: {SEED: 99}\n")
    (decoy / "smoke").write_text("common: {SEED: 98}\n")
    monkeypatch.chdir(decoy)
    assert scale_file("smoke") == project_root() / "params" / "smoke.yaml"
    assert load_scale("smoke")["common"]["SEED"] != 99

    other = tmp_path / "project"
    (other / "params").mkdir(parents=True)
    (other / "params" / "tiny.yaml").write_text("timeout: 5\ncommon: {SEED: 3}\n")
    monkeypatch.setenv(PROJECT_ROOT_ENV, str(other))
    scale = load_scale("tiny")
    assert scale["path"] == str(other / "params" / "tiny.yaml")
    assert scale["common"] == {"SEED": 3} and scale["timeout"] == 5.0
    with pytest.raises(RunnerError, match="unknown scale 'smoke'"):
        load_scale("smoke")  # the repository's scales are not consulted either
