"""Tests for mammo_helpers.data.adapters.vindr on the committed VinDr-Mammo fixture."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from mammo_helpers.data.adapters import AdapterWarning, load_vindr
from mammo_helpers.data.adapters.vindr import parse_categories
from mammo_helpers.data.manifest import validate_manifest
from mammo_helpers.io import read_dicom

ROOT = Path(__file__).parent / "fixtures" / "datasets" / "vindr"
S1, S2 = "b0a1c2d3e4f5061728394a5b6c7d8e9f", "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
IMG = {n: f"a1{'0' * 29}{n}" for n in range(1, 5)} | {
    5: f"a2{'0' * 29}1",
    6: f"a2{'0' * 29}2",
}


def _plain(df: pd.DataFrame, cols: list[str]) -> list[tuple]:
    return [
        tuple(None if pd.isna(v) else v for v in row)
        for row in df[cols].astype(object).itertuples(index=False)
    ]


@pytest.fixture(scope="module")
def manifest():
    with pytest.warns(AdapterWarning, match="load_vindr: 6 images kept") as record:
        df = load_vindr(ROOT)
    assert len([w for w in record if issubclass(w.category, AdapterWarning)]) == 1
    return df


def test_rows(manifest):
    cols = [
        "patient_id",
        "study_id",
        "image_id",
        "laterality",
        "view",
        "density",
        "rows",
        "cols",
        "cancer",
        "birads",
        "split",
        "source",
        "modality",
    ]
    assert _plain(manifest, cols) == [
        (S1, S1, IMG[1], "L", "CC", "C", 64, 48, None, 4, "train", "vindr", "DM"),
        (S1, S1, IMG[2], "L", "MLO", "C", 64, 48, None, 4, "train", "vindr", "DM"),
        (S1, S1, IMG[3], "R", "CC", "C", 64, 48, None, 1, "train", "vindr", "DM"),
        (S1, S1, IMG[4], "R", "MLO", "C", 64, 48, None, 1, "train", "vindr", "DM"),
        (S2, S2, IMG[5], "L", "CC", "B", 64, 48, None, 4, "test", "vindr", "DM"),
        (S2, S2, IMG[6], "R", "CC", "B", 64, 48, None, 2, "test", "vindr", "DM"),
    ]
    assert manifest["birads"].dtype == "Int64"
    assert manifest["path"].iloc[0] == str(ROOT.absolute() / "images" / S1 / f"{IMG[1]}.dicom")


def test_findings(manifest):
    by_id = dict(zip(manifest["image_id"], manifest["findings"], strict=True))
    base = {"malignant": None}
    assert by_id[IMG[1]] == [
        {
            "label": "mass",
            "xmin": 10.5,
            "ymin": 12.0,
            "xmax": 30.25,
            "ymax": 40.0,
            **base,
            "source_label": "Mass",
            "birads": "4",
        },
        # one multi-label row -> one finding per category, box clipped to 48 x 64
        {
            "label": "calcification",
            "xmin": 20.0,
            "ymin": 30.0,
            "xmax": 48.0,
            "ymax": 64.0,
            **base,
            "source_label": "Suspicious Calcification",
            "birads": "4",
        },
        {
            "label": "mass",
            "xmin": 20.0,
            "ymin": 30.0,
            "xmax": 48.0,
            "ymax": 64.0,
            **base,
            "source_label": "Mass",
            "birads": "4",
        },
    ]
    assert by_id[IMG[2]] == [
        {
            "label": "asymmetry",
            "xmin": 0.0,
            "ymin": 2.0,
            "xmax": 15.0,
            "ymax": 20.0,
            **base,
            "source_label": "Focal Asymmetry",
            "subtype": "focal",
            "birads": "3",
        },
        {
            "label": "retraction",
            "xmin": 40.0,
            "ymin": 50.0,
            "xmax": 47.0,
            "ymax": 60.0,
            **base,
            "source_label": "Nipple Retraction",
            "subtype": "nipple",
        },
    ]
    assert by_id[IMG[3]] == []  # 'No Finding'
    assert by_id[IMG[4]] == []  # box entirely outside the image: dropped
    assert [(f["label"], f.get("subtype")) for f in by_id[IMG[5]]] == [
        ("asymmetry", "global"),
        ("architectural_distortion", None),
    ]
    assert [f["label"] for f in by_id[IMG[6]]] == ["lymph_node"]


def test_dropped_and_notes(manifest):
    dropped = manifest.attrs["dropped"]
    assert _plain(dropped, list(dropped.columns)) == [
        (
            "finding",
            "finding_annotations.csv",
            5,
            IMG[4],
            "skin_thickening box outside the image after clipping",
        ),
        (
            "row",
            "finding_annotations.csv",
            8,
            "ffff" + "0" * 28,
            "finding row for an image not kept from the breast-level CSV",
        ),
    ]
    assert manifest.attrs["notes"] == {"boxes clipped to the image": 3}


def test_manifest_is_valid_and_images_readable(manifest):
    again = validate_manifest(manifest)
    pd.testing.assert_frame_equal(again, manifest)
    image = read_dicom(manifest["path"].iloc[1])
    assert image.pixels.shape == (64, 48)
    assert image.laterality == "L" and image.view == "MLO"


def test_require_files_drops_missing_dicom():
    with pytest.warns(AdapterWarning):
        df = load_vindr(ROOT, require_files=True)
    assert IMG[6] not in set(df["image_id"])
    dropped = df.attrs["dropped"]
    mine = dropped[dropped["image_id"] == IMG[6]]
    assert list(zip(mine["level"], mine["reason"], strict=True)) == [
        ("image", "image file not found"),
        ("row", "finding row for an image not kept from the breast-level CSV"),
    ]


def test_parse_categories():
    assert parse_categories("['Suspicious Calcification', 'Mass']") == [
        "Suspicious Calcification",
        "Mass",
    ]
    assert parse_categories("'Mass'") == ["Mass"]
    assert parse_categories(None) == []


def test_missing_csv(tmp_path):
    shutil.copytree(ROOT, tmp_path / "vindr")
    (tmp_path / "vindr" / "finding_annotations.csv").unlink()
    with pytest.raises(FileNotFoundError, match="finding_annotations.csv"):
        load_vindr(tmp_path / "vindr")
    with pytest.raises(FileNotFoundError, match="VinDr-Mammo root folder"):
        load_vindr(tmp_path / "nowhere")


def test_renamed_column(tmp_path):
    root = tmp_path / "vindr"
    shutil.copytree(ROOT, root)
    csv = root / "breast-level_annotations.csv"
    csv.write_text(csv.read_text().replace("breast_density", "density", 1))
    with pytest.raises(ValueError, match=r'column "breast_density" not found in .*breast-level'):
        load_vindr(root)


# --------------------------------------------------------------------------- bad cells
BREAST, FINDING = "breast-level_annotations.csv", "finding_annotations.csv"


def _edited(tmp_path, edits: dict, csv: str = BREAST) -> Path:
    """A copy of the fixture with some cells of ``csv`` replaced ({(row, column): text})."""
    root = tmp_path / "vindr"
    shutil.copytree(ROOT, root)
    table = pd.read_csv(root / csv, dtype=str, keep_default_na=False)
    for (row, col), value in edits.items():
        table.loc[row, col] = value
    table.to_csv(root / csv, index=False, lineterminator="\n")
    return root


def _values(df: pd.DataFrame) -> list[tuple]:
    dropped = df.attrs["dropped"]
    return _plain(dropped[dropped["level"] == "value"], list(dropped.columns))


def _load(root) -> pd.DataFrame:
    with pytest.warns(AdapterWarning):
        return load_vindr(root)


def test_unknown_density_cell_is_set_to_missing_with_its_row(tmp_path):
    df = _load(_edited(tmp_path, {(1, "breast_density"): "DENSITY E"}))
    assert len(df) == 6
    row = df.set_index("image_id").loc[IMG[2]]
    assert pd.isna(row["density"]) and row["birads"] == 4 and len(row["findings"]) == 2
    assert _values(df) == [
        (
            "value",
            BREAST,
            1,
            IMG[2],
            "breast_density 'DENSITY E' is not DENSITY A-D: set to missing",
        )
    ]
    assert df.attrs["notes"]["breast_density values set to missing"] == 1
    assert df["density"].notna().sum() == 5


def test_negative_height_is_set_to_missing_and_boxes_keep_to_the_width(tmp_path):
    df = _load(_edited(tmp_path, {(0, "height"): "-64"}))
    row = df.set_index("image_id").loc[IMG[1]]
    assert pd.isna(row["rows"]) and row["cols"] == 48
    # the multi-label box (20, 30, 52.5, 70): x clipped to the width, y kept (height unknown)
    assert [(f["xmax"], f["ymax"]) for f in row["findings"]] == [(30.25, 40), (48, 70), (48, 70)]
    assert _values(df) == [
        ("value", BREAST, 0, IMG[1], "height '-64' is not a positive integer: set to missing")
    ]


def test_non_numeric_width_is_set_to_missing(tmp_path):
    df = _load(_edited(tmp_path, {(4, "width"): "48px"}))
    assert pd.isna(df.set_index("image_id").loc[IMG[5], "cols"])
    assert _values(df) == [
        ("value", BREAST, 4, IMG[5], "width '48px' is not a positive integer: set to missing")
    ]


def test_box_is_clipped_at_zero_when_the_image_size_is_unknown(tmp_path):
    # image 2's box starts at x = -5; with no height and width it is clipped to [0, 65535]
    df = _load(_edited(tmp_path, {(1, "height"): "", (1, "width"): ""}))
    findings = df.set_index("image_id").loc[IMG[2], "findings"]
    assert [(f["xmin"], f["xmax"]) for f in findings] == [(0.0, 15.0), (40.0, 47.0)]
    assert df.attrs["notes"]["boxes clipped to the image"] == 3
    assert _values(df) == []  # blank cells are missing values, not bad ones


def test_unreadable_breast_birads_is_set_to_missing(tmp_path):
    df = _load(_edited(tmp_path, {(2, "breast_birads"): "BI-RADS X"}))
    assert pd.isna(df.set_index("image_id").loc[IMG[3], "birads"])
    assert _values(df) == [
        ("value", BREAST, 2, IMG[3], "breast_birads 'BI-RADS X' is not BI-RADS 0-6: set to missing")
    ]


def test_unreadable_finding_birads_leaves_the_finding_without_birads(tmp_path):
    df = _load(_edited(tmp_path, {(0, "finding_birads"): "BI-RADS 4x"}, FINDING))
    first = df.set_index("image_id").loc[IMG[1], "findings"][0]
    assert first["label"] == "mass" and "birads" not in first
    assert _values(df) == [
        (
            "value",
            FINDING,
            0,
            IMG[1],
            "finding_birads 'BI-RADS 4x' is not BI-RADS 0-6: set to missing",
        )
    ]


def test_non_numeric_box_coordinate_drops_that_finding_naming_the_column(tmp_path):
    df = _load(_edited(tmp_path, {(1, "ymax"): "7O"}, FINDING))
    assert [f["label"] for f in df.set_index("image_id").loc[IMG[1], "findings"]] == ["mass"]
    dropped = df.attrs["dropped"]
    mine = _plain(dropped[dropped["source_row"] == 1], list(dropped.columns))
    assert mine == [
        ("finding", FINDING, 1, IMG[1], "calcification finding: ymax '7O' is not a number"),
        ("finding", FINDING, 1, IMG[1], "mass finding: ymax '7O' is not a number"),
    ]


def test_categories_that_are_not_a_list_drop_the_row(tmp_path):
    df = _load(_edited(tmp_path, {(0, "finding_categories"): "5"}, FINDING))
    dropped = df.attrs["dropped"]
    assert _plain(dropped.iloc[:1], list(dropped.columns)) == [
        ("row", FINDING, 0, IMG[1], "unparseable finding_categories")
    ]
    assert len(df.set_index("image_id").loc[IMG[1], "findings"]) == 2
