"""Tests for mammo_helpers.run.options: option checks made before anything is removed."""

from __future__ import annotations

import math
import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mammo_helpers.run.options import (
    RunnerError,
    check_input_dir,
    check_output_dir,
    check_path_text,
    check_timeout,
    describe_value,
)


@pytest.mark.parametrize(
    ("value", "seconds"), [(None, None), (5, 5.0), (0.25, 0.25), (3600, 3600.0)]
)
def test_check_timeout_accepts_positive_finite_seconds(value, seconds):
    out = check_timeout(value, "--timeout")
    assert out == seconds and (out is None or isinstance(out, float))


@pytest.mark.parametrize(
    "value", [math.nan, math.inf, -math.inf, -5, -0.001, 0, 0.0, True, False, "10", [10]]
)
def test_check_timeout_rejects_everything_else_naming_the_option(value):
    with pytest.raises(RunnerError, match=r"^--timeout must be a positive number of seconds"):
        check_timeout(value, "--timeout")


@given(st.floats(allow_nan=True, allow_infinity=True))
def test_check_timeout_never_lets_a_non_limit_through(value):
    try:
        out = check_timeout(value, "timeout")
    except RunnerError:
        assert not (math.isfinite(value) and value > 0)
    else:
        assert math.isfinite(out) and out > 0 and out == value


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no folder given"),
        ("   ", "no folder given"),
        (" results", "padded"),
        ("x\t", "padded"),
    ],
)
def test_check_path_text_refuses_empty_or_padded_paths(text, message):
    with pytest.raises(RunnerError, match=f"--results-dir: .*{message}"):
        check_path_text(text, "--results-dir")


def test_check_path_text_expands_the_home_folder():
    assert str(check_path_text("~/x", "opt")) == os.path.expanduser("~/x")


def test_check_output_dir_accepts_new_folders_without_creating_them(tmp_path):
    target = tmp_path / "a" / "b"
    assert check_output_dir(target, "--results-dir") == target
    assert not (tmp_path / "a").exists()
    assert check_output_dir(tmp_path, "--results-dir") == tmp_path


def test_check_output_dir_refuses_files_on_the_way(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(RunnerError, match="--executed-dir: .*file.* is a file, not a folder"):
        check_output_dir(blocker, "--executed-dir")
    with pytest.raises(RunnerError, match="--executed-dir: cannot create .* is a file"):
        check_output_dir(blocker / "sub" / "dir", "--executed-dir")


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_check_output_dir_refuses_read_only_folders(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(RunnerError, match="--results-dir: cannot write to .*locked"):
            check_output_dir(locked / "results", "--results-dir")
    finally:
        locked.chmod(0o700)


def test_check_input_dir_names_the_option_and_shows_whitespace(tmp_path):
    assert check_input_dir(tmp_path, "notebooks", "--notebooks-dir") == tmp_path
    with pytest.raises(RunnerError, match=r"notebooks folder \(--notebooks-dir\) not found"):
        check_input_dir(tmp_path / "nope", "notebooks", "--notebooks-dir")
    with pytest.raises(RunnerError, match="--notebooks-dir: .*padded with whitespace"):
        check_input_dir(f"{tmp_path} ", "notebooks", "--notebooks-dir")
    (tmp_path / "f").write_text("")
    with pytest.raises(RunnerError, match="is a file, not a folder"):
        check_input_dir(tmp_path / "f", "notebooks", "--notebooks-dir")


def test_describe_value():
    assert describe_value(None) == "None"
    assert describe_value("x") == 'str "x"'
    assert describe_value(3) == "int 3"
    assert describe_value(math.nan) == "float nan"
