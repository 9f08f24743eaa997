"""Tests for mammo_helpers.data.adapters (dispatcher, views option, bad CSVs and folders) and its
_common glue."""

from __future__ import annotations

import math
import re
import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mammo_helpers import vocab
from mammo_helpers.data.adapters import LOADERS, AdapterWarning, load_dataset
from mammo_helpers.data.adapters._common import (
    LoadReport,
    boxed_finding,
    clean,
    first_kept,
    joined_paths,
    read_table,
    resolve_views,
    to_float,
    to_int,
)
from mammo_helpers.data.manifest import MANIFEST_COLUMNS, manifest_row

DATASETS = Path(__file__).parent / "fixtures" / "datasets"


@pytest.mark.parametrize("name", sorted(LOADERS))
def test_load_dataset_dispatches(name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AdapterWarning)
        df = load_dataset(name, DATASETS / name)
    assert list(df.columns[: len(MANIFEST_COLUMNS)]) == list(MANIFEST_COLUMNS)
    assert (df["source"] == name).all()
    assert set(df.attrs["dropped"].columns) == {
        "level",
        "source_file",
        "source_row",
        "image_id",
        "reason",
    }


def test_load_dataset_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown dataset 'ddsm'; choose one of vindr"):
        load_dataset("ddsm", tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AdapterWarning)
        assert len(load_dataset("CBIS-DDSM", DATASETS / "cbis_ddsm")) == 5


def test_cell_parsers():
    assert clean("  x ") == "x" and clean(" ") is None and clean(float("nan")) is None
    assert clean(pd.NA) is None and clean(None) is None
    assert to_int("3.0") == 3 and to_int("3.5") is None and to_int("") is None
    assert to_int("abc") is None
    assert to_float("61.0") == 61.0 and math.isnan(to_float(None))


def test_read_table_aliases_and_errors(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a,breast density\n1,2\n,\n")
    df = read_table(
        path, ["a", "breast_density"], what="t", aliases={"breast_density": ["breast density"]}
    )
    assert list(df.columns) == ["a", "breast_density"] and len(df) == 1  # blank line dropped
    with pytest.raises(ValueError, match=r'column "b" not found in .*t.csv; columns are a, '):
        read_table(path, ["a", "b"], what="t")
    with pytest.raises(FileNotFoundError, match="my table not found"):
        read_table(tmp_path / "none.csv", ["a"], what="my table")


def _row(image_id: str, findings: list) -> dict:
    return manifest_row(
        patient_id="p",
        study_id="s",
        image_id=image_id,
        path="x.dcm",
        laterality="L",
        view="CC",
        site="t",
        rows=10,
        cols=8,
        findings=findings,
    )


def test_report_boxes_and_warning():
    report = LoadReport("demo", "load_demo")
    kw = {"rows": 10, "cols": 8, "report": report, "image_id": "i1"}
    inside = boxed_finding("mass", (1, 2, 3, 4), **kw, subtype="round")
    clipped = boxed_finding("mass", (-1, 2, 30, 4), **kw)
    outside = boxed_finding("mass", (20, 2, 30, 4), **kw, source_row=7)
    no_box = boxed_finding("mass", (math.nan, 2, 3, 4), **kw)
    assert inside == {
        "label": "mass",
        "xmin": 1.0,
        "ymin": 2.0,
        "xmax": 3.0,
        "ymax": 4.0,
        "malignant": None,
        "subtype": "round",
    }
    assert (clipped["xmin"], clipped["xmax"]) == (0.0, 8.0)
    assert outside is None and no_box is None
    # size unknown: no clipping, but an empty box is still refused
    unknown = {"rows": None, "cols": None, "report": report, "image_id": "i2"}
    assert boxed_finding("mass", (5, 5, 50, 50), **unknown)["xmax"] == 50.0
    assert boxed_finding("mass", (5, 5, 5, 50), **unknown) is None
    report.drop("bad view", image_id="i3", source_file="f.csv", source_row=3)
    with pytest.warns(AdapterWarning) as record:
        df = report.finish([_row("i1", [inside, clipped])])
    assert len(record) == 1
    message = str(record[0].message)
    assert message.startswith("load_demo: 1 images kept; dropped 4 (")
    assert "1 image: bad view" in message and "1 boxes clipped to the image" in message
    dropped = df.attrs["dropped"]
    assert list(dropped["level"]) == ["finding", "finding", "finding", "image"]
    assert dropped["source_row"].dtype == "Int64" and dropped["source_row"].iloc[0] == 7
    assert df.attrs["notes"] == {"boxes clipped to the image": 1}
    assert df["source"].iloc[0] == "demo"


def test_report_without_problems_is_silent():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        df = LoadReport("demo", "load_demo").finish([_row("a", [])], int_columns=())
    assert df.attrs["dropped"].empty and df.attrs["notes"] == {}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        empty = LoadReport("demo", "load_demo").finish([], int_columns=("birads",))
    assert len(empty) == 0 and "birads" in empty.columns


def test_read_table_optional_columns_and_latin1(tmp_path):
    path = tmp_path / "t.csv"
    path.write_bytes("a;b;c\n1;café;x\n".encode("latin-1"))
    df = read_table(path, ["a"], what="t", sep=";", optional=["c", "missing"])
    assert list(df.columns) == ["a", "c"] and df["c"].iloc[0] == "x"
    assert read_table(path, ["b"], what="t", sep=";")["b"].iloc[0] == "café"


# --------------------------------------------------------------------------- every adapter
#: One metadata CSV of each dataset (relative to its root) and its separator.
CSVS = {
    "vindr": ("finding_annotations.csv", ","),
    "cbis_ddsm": ("calc_case_description_train_set.csv", ","),
    "rsna": ("train.csv", ","),
    "embed": ("tables/EMBED_OpenData_clinical.csv", ","),
    "inbreast": ("INbreast.csv", ";"),
}


def _copy(tmp_path, name: str) -> Path:
    root = tmp_path / name
    shutil.copytree(DATASETS / name, root)
    return root


@pytest.mark.parametrize("name", sorted(CSVS))
def test_zero_byte_csv_is_an_error_naming_the_file(tmp_path, name):
    root = _copy(tmp_path, name)
    csv = root / CSVS[name][0]
    csv.write_bytes(b"")
    with pytest.raises(ValueError, match=rf"{re.escape(csv.name)}' is empty \(0 bytes\)"):
        load_dataset(name, root)


@pytest.mark.parametrize("name", sorted(CSVS))
def test_header_only_csv_is_an_error_naming_the_file(tmp_path, name):
    root = _copy(tmp_path, name)
    csv = root / CSVS[name][0]
    csv.write_text(csv.read_text().splitlines()[0] + "\n\n")
    with pytest.raises(ValueError, match=rf"{re.escape(csv.name)}' has a header but no data rows"):
        load_dataset(name, root)


def test_blank_csv_is_an_error_naming_the_file(tmp_path):
    root = _copy(tmp_path, "rsna")
    (root / "train.csv").write_text("\n \n")
    with pytest.raises(ValueError, match=r"train.csv' has no header line"):
        load_dataset("rsna", root)


@pytest.mark.parametrize("name", sorted(CSVS))
def test_root_with_invisible_whitespace_is_shown(tmp_path, name):
    root = _copy(tmp_path, name)
    with pytest.raises(FileNotFoundError) as info:
        load_dataset(name, f"{root} ")
    message = str(info.value)
    assert repr(f"{root} ") in message and "leading or trailing whitespace" in message


def test_missing_csv_path_is_shown_with_repr(tmp_path):
    root = _copy(tmp_path, "rsna")
    (root / "train.csv").rename(root / "train.csv\u00a0")
    with pytest.raises(FileNotFoundError, match=r"RSNA train.csv not found: '.*train.csv'$"):
        load_dataset("rsna", root)


def test_cbis_csv_dir_with_whitespace_is_shown(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"CBIS-DDSM CSV folder \(csv_dir\) not found"):
        load_dataset("cbis_ddsm", DATASETS / "cbis_ddsm", csv_dir=f"{DATASETS / 'cbis_ddsm'}\t")


def _quiet(name, root, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AdapterWarning)
        return load_dataset(name, root, **kwargs)


def test_views_none_keeps_every_known_view():
    default = _quiet("rsna", DATASETS / "rsna")
    every = _quiet("rsna", DATASETS / "rsna", views=None)
    assert sorted(default["view"].unique()) == ["CC", "MLO"]
    assert sorted(every["view"]) == sorted([*default["view"], "AT", "LM"])
    assert every.attrs["dropped"].empty
    embed = _quiet("embed", DATASETS / "embed", views=vocab.ALL_VIEWS)
    assert "XCCL" in set(embed["view"]) and len(embed) == 10


def test_views_subset_drops_the_others_with_a_reason():
    df = _quiet("vindr", DATASETS / "vindr", views=("CC",))
    assert set(df["view"]) == {"CC"} and len(df) == 4
    reasons = set(df.attrs["dropped"]["reason"])
    assert "view MLO is not CC" in reasons


def test_unknown_view_in_the_data_is_dropped_even_with_views_none(tmp_path):
    root = _copy(tmp_path, "rsna")
    csv = root / "train.csv"
    csv.write_text(csv.read_text().replace(",R,AT,", ",R,QQ,"))
    df = _quiet("rsna", root, views=None)
    assert "541722628" not in set(df["image_id"])
    reason = df.attrs["dropped"].set_index("image_id").loc["541722628", "reason"]
    assert reason == f"view QQ is not {'/'.join(vocab.ALL_VIEWS)}"


@pytest.mark.parametrize("views", [("QQ",), (), "MLO-ish"])
def test_unknown_views_option_is_an_error_naming_it(views):
    with pytest.raises(ValueError, match=r"^views: .* choose from CC, MLO, ML"):
        load_dataset("inbreast", DATASETS / "inbreast", views=views)
    assert resolve_views("CC") == ("CC",) and resolve_views(None) == vocab.ALL_VIEWS


def test_joined_paths_agree_with_pathlib():
    base = Path("/data/vindr/images")
    study = pd.Series(["s1", "s/2", "./s3", "s4/", "/abs", "s6", None, "s 8", "a//b"], dtype="str")
    image = pd.Series(["i1", "i2", "i3", "i4", "i5", ".", "i7", "i8", "i9"], dtype="str")
    got = joined_paths(base, study, image + ".dicom")
    expected = [
        None if s is None else str(base / s / f"{i}.dicom")
        for s, i in zip(study.astype(object).where(study.notna(), None), image, strict=True)
    ]
    assert list(got) == expected


def test_first_kept_is_what_a_loop_over_rows_gives():
    rng = np.random.default_rng(0)
    ids = pd.Series(rng.choice(["a", "b", "c", "d", None], size=200), dtype=object)
    ok = rng.random(200) < 0.5
    kept, duplicate = first_kept(ids, ok)
    seen, want_kept, want_dup = set(), [], []
    for value, good in zip(ids, ok, strict=True):
        dup = value is not None and value in seen
        want_dup.append(dup)
        want_kept.append(bool(good) and value is not None and not dup)
        if want_kept[-1]:
            seen.add(value)
    assert list(kept) == want_kept and list(duplicate) == want_dup
    assert kept.sum() == 4 and duplicate.any()
