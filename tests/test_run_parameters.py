"""Tests for mammo_helpers.run.parameters: declared parameters, type checks, the merge and
the ``OUT_DIR`` the runner injects (relative to the project root when inside it)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mammo_helpers.paths import PROJECT_ROOT_ENV, project_path, project_root
from mammo_helpers.run import (
    Declared,
    ParameterError,
    RunnerError,
    check_type,
    declared_parameters,
    load_scale,
    out_dir_parameter,
    parse_cli_value,
    resolve_parameters,
)

FIXTURES = Path(__file__).resolve().parent / "fixtures"
NB_DIR = FIXTURES / "notebooks"
SCALE = FIXTURES / "params" / "fixture.yaml"
DEMO = NB_DIR / "params_demo.ipynb"


@pytest.fixture
def project(tmp_path, monkeypatch) -> Path:
    """A project root of its own (``$MAMMO_PROJECT_ROOT``); the working directory is
    elsewhere."""
    root = tmp_path / "project"
    for sub in ("params", "notebooks"):
        (root / sub).mkdir(parents=True)
    monkeypatch.setenv(PROJECT_ROOT_ENV, str(root))
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    return root


# ------------------------------------------------------------------ parameter merging


def test_merge_order_defaults_common_section_override(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # outside the project root: OUT_DIR stays absolute
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


def test_declared_parameters_of_the_fixture_and_an_unreadable_notebook(tmp_path):
    declared = declared_parameters(DEMO)
    assert list(declared) == [
        "SEED", "OUT_DIR", "DATA_SOURCE", "DATA_DIR", "SCALE", "EPOCHS", "LR",
        "USE_AUGMENT", "SIZES",
    ]  # fmt: skip
    assert declared["LR"].default == 0.5 and declared["DATA_DIR"].default is None
    broken = tmp_path / "broken.ipynb"
    broken.write_text("{not json")
    with pytest.raises(RunnerError, match="cannot read notebook .*broken.ipynb"):
        declared_parameters(broken)


# ------------------------------------------------------------------ OUT_DIR injection


def test_out_dir_is_injected_relative_to_the_project_root_when_inside_it(project):
    scale = load_scale(SCALE)
    params, origins = resolve_parameters(DEMO, scale)  # default: <project>/results
    assert params["OUT_DIR"] == "results/params_demo" and origins["OUT_DIR"] == "runner"
    assert project_path(params["OUT_DIR"]) == project / "results" / "params_demo"

    params, _ = resolve_parameters(DEMO, scale, results_dir=project / "build" / "res")
    assert params["OUT_DIR"] == "build/res/params_demo"

    outside = project.parent / "outside"
    params, _ = resolve_parameters(DEMO, scale, results_dir=outside)
    assert params["OUT_DIR"] == str(outside / "params_demo")  # absolute outside the root

    # an override is read from the working directory, then injected the same way
    params, origins = resolve_parameters(DEMO, scale, {"OUT_DIR": "rel/out"})
    assert params["OUT_DIR"] == str(project.parent / "elsewhere" / "rel" / "out")
    params, _ = resolve_parameters(DEMO, scale, {"OUT_DIR": str(project / "mine")})
    assert params["OUT_DIR"] == "mine" and project_path("mine") == project / "mine"


@given(
    st.lists(st.from_regex(r"[A-Za-z0-9_.-]{1,8}", fullmatch=True), min_size=1, max_size=4),
    st.booleans(),
)
def test_out_dir_parameter_round_trips_through_project_path(parts, inside):
    parts = [p for p in parts if p not in (".", "..")] or ["x"]
    root = project_root()
    base = root if inside else Path("/nonexistent-root-for-test")
    folder = base.joinpath(*parts)
    injected = out_dir_parameter(folder)
    assert Path(injected).is_absolute() is not inside
    assert project_path(injected) == folder
    assert str(root) not in injected  # never the build machine's folder when inside


@pytest.mark.parametrize("value", ["", "   ", " padded", None])
def test_empty_or_padded_out_dir_override_is_refused(value):
    with pytest.raises(RunnerError, match="OUT_DIR"):
        resolve_parameters(DEMO, load_scale(SCALE), {"OUT_DIR": value})


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
