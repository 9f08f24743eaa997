"""Tests for mammo_helpers.data.adapters.rsna on the committed RSNA fixture."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pandas as pd
import pytest

from mammo_helpers.data.adapters import AdapterWarning, load_rsna
from mammo_helpers.data.manifest import validate_manifest
from mammo_helpers.io import read_dicom

ROOT = Path(__file__).parent / "fixtures" / "datasets" / "rsna"


def _plain(df: pd.DataFrame, cols: list[str]) -> list[tuple]:
    return [
        tuple(None if pd.isna(v) else v for v in row)
        for row in df[cols].astype(object).itertuples(index=False)
    ]


@pytest.fixture(scope="module")
def manifest():
    with pytest.warns(AdapterWarning, match="load_rsna: 7 images kept; dropped 2"):
        return load_rsna(ROOT)


def test_rows(manifest):
    cols = [
        "patient_id",
        "study_id",
        "image_id",
        "laterality",
        "view",
        "site",
        "vendor",
        "density",
        "age",
        "cancer",
        "birads",
        "difficult_negative_case",
        "source",
    ]
    assert _plain(manifest, cols) == [
        ("10006", "10006", "462822612", "L", "CC", "2", "29", None, 61.0, 0, None, False, "rsna"),
        ("10006", "10006", "1459541791", "L", "MLO", "2", "29", None, 61.0, 0, None, False, "rsna"),
        ("10006", "10006", "1864590858", "R", "MLO", "2", "29", None, 61.0, 0, None, False, "rsna"),
        ("10006", "10006", "1874946579", "R", "CC", "2", "29", None, 61.0, 0, None, False, "rsna"),
        ("10011", "10011", "220375232", "L", "CC", "1", "49", "C", 55.0, 1, 0, False, "rsna"),
        ("10011", "10011", "270344397", "L", "MLO", "1", "49", "C", 55.0, 1, 0, False, "rsna"),
        ("10011", "10011", "1031443799", "R", "CC", "1", "49", "C", None, 0, 1, True, "rsna"),
    ]
    assert all(f == [] for f in manifest["findings"])
    assert manifest["age"].dtype == "float64" and math.isnan(manifest["age"].iloc[-1])
    assert manifest["rows"].isna().all() and manifest["pixel_spacing_mm"].isna().all()
    # density only for site 1: site-2 images are kept with a missing density
    assert manifest.loc[manifest["site"] == "2", "density"].isna().all()


def test_dropped_views(manifest):
    dropped = manifest.attrs["dropped"]
    assert _plain(dropped, list(dropped.columns)) == [
        ("image", "train.csv", 6, "541722628", "view AT is not CC/MLO"),
        ("image", "train.csv", 8, "1168931475", "view LM is not CC/MLO"),
    ]


def test_valid_and_readable(manifest):
    pd.testing.assert_frame_equal(validate_manifest(manifest), manifest)
    path = manifest["path"].iloc[4]
    assert path == str(ROOT.absolute() / "train_images" / "10011" / "220375232.dcm")
    assert read_dicom(path).pixels.shape == (64, 48)


def test_require_files(tmp_path):
    root = tmp_path / "rsna"
    shutil.copytree(ROOT, root)
    (root / "train_images" / "10006" / "462822612.dcm").unlink()
    with pytest.warns(AdapterWarning, match="image file not found"):
        df = load_rsna(root, require_files=True)
    assert "462822612" not in set(df["image_id"]) and len(df) == 6


def test_missing_csv(tmp_path):
    with pytest.raises(FileNotFoundError, match="train.csv"):
        load_rsna(tmp_path)


def test_renamed_column(tmp_path):
    root = tmp_path / "rsna"
    shutil.copytree(ROOT, root)
    csv = root / "train.csv"
    csv.write_text(csv.read_text().replace("machine_id", "machine", 1))
    with pytest.raises(ValueError, match=r'column "machine_id" not found in .*train.csv'):
        load_rsna(root)


# --------------------------------------------------------------------------- bad cells
def _edited(tmp_path, edits: dict) -> Path:
    """A copy of the fixture with some cells of train.csv replaced ({(row, column): text})."""
    root = tmp_path / "rsna"
    shutil.copytree(ROOT, root)
    table = pd.read_csv(root / "train.csv", dtype=str, keep_default_na=False)
    for (row, col), value in edits.items():
        table.loc[row, col] = value
    table.to_csv(root / "train.csv", index=False, lineterminator="\n")
    return root


def _values(df: pd.DataFrame) -> list[tuple]:
    dropped = df.attrs["dropped"]
    return _plain(dropped[dropped["level"] == "value"], list(dropped.columns))


def _load(root, **kwargs) -> pd.DataFrame:
    with pytest.warns(AdapterWarning):
        return load_rsna(root, **kwargs)


@pytest.mark.parametrize(
    ("column", "cell", "rule"),
    [
        ("cancer", "2", "is not 0/1"),
        ("age", "unknown", "is not an age in 0-120"),
        ("age", "150", "is not an age in 0-120"),
        ("density", "E", "is not A-D"),
        ("BIRADS", "7", "is not BI-RADS 0-6"),
        ("biopsy", "yes", "is not 0/1"),
        ("difficult_negative_case", "maybe", "is not True/False/1/0"),
    ],
)
def test_bad_value_cell_is_set_to_missing_with_row_and_column(tmp_path, column, cell, rule):
    df = _load(_edited(tmp_path, {(4, column): cell}))
    assert len(df) == 7
    target = {"BIRADS": "birads"}.get(column, column)
    assert pd.isna(df.set_index("image_id").loc["220375232", target])
    assert _values(df) == [
        ("value", "train.csv", 4, "220375232", f"{column} {cell!r} {rule}: set to missing")
    ]
    assert df.attrs["notes"] == {f"{column} values set to missing": 1}
    others = df[df["image_id"] != "220375232"]
    assert others[target].notna().any()


def test_bad_cell_of_a_dropped_image_is_not_reported(tmp_path):
    df = _load(_edited(tmp_path, {(6, "cancer"): "2"}))  # row 6 is the AT view
    assert _values(df) == [] and "cancer values set to missing" not in df.attrs["notes"]
