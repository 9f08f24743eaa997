"""Tests for mammo_helpers.data.adapters.inbreast on the committed INbreast fixture."""

from __future__ import annotations

import plistlib
import shutil
from pathlib import Path

import pandas as pd
import pytest

from mammo_helpers.data.adapters import AdapterWarning, load_inbreast
from mammo_helpers.data.adapters.inbreast import outline_box, parse_points, read_outlines
from mammo_helpers.data.manifest import validate_manifest
from mammo_helpers.io import read_dicom

ROOT = Path(__file__).parent / "fixtures" / "datasets" / "inbreast"
HASH = "6c613a14b80a8591"


def _plain(df: pd.DataFrame, cols: list[str]) -> list[tuple]:
    return [
        tuple(None if pd.isna(v) else v for v in row)
        for row in df[cols].astype(object).itertuples(index=False)
    ]


def _box(f: dict) -> tuple:
    return (
        f["label"],
        f["xmin"],
        f["ymin"],
        f["xmax"],
        f["ymax"],
        f.get("subtype"),
        f["source_label"],
    )


@pytest.fixture(scope="module")
def manifest():
    with pytest.warns(AdapterWarning, match="load_inbreast: 4 images kept; dropped 3"):
        return load_inbreast(ROOT)


def test_rows(manifest):
    cols = [
        "patient_id",
        "study_id",
        "image_id",
        "laterality",
        "view",
        "density",
        "cancer",
        "birads",
        "birads_suspicious",
        "pixel_spacing_mm",
        "rows",
        "cols",
        "vendor",
    ]
    study = f"{HASH}_200908"
    assert _plain(manifest, cols) == [
        (HASH, study, "20586908", "R", "CC", "B", None, "4a", True, 0.07, 64, 48, "SIEMENS"),
        (HASH, study, "20586934", "R", "MLO", "B", None, "4a", True, 0.07, 64, 48, "SIEMENS"),
        (HASH, study, "20586960", "L", "CC", None, None, "1", False, 0.07, 64, 48, "SIEMENS"),
        (HASH, study, "20586986", "L", "MLO", None, None, "1", False, 0.07, 64, 48, "SIEMENS"),
    ]
    assert manifest["birads_suspicious"].dtype == "boolean"


def test_findings(manifest):
    boxes = {
        i: [_box(f) for f in fs]
        for i, fs in zip(manifest["image_id"], manifest["findings"], strict=True)
    }
    assert boxes["20586908"] == [
        ("mass", 10.0, 11.0, 24.5, 26.0, None, "Mass"),
        ("calcification", 27.0, 37.0, 33.0, 43.0, None, "Calcification"),  # dot: +-3 px
        ("calcification", 5.0, 50.0, 12.0, 60.0, "cluster", "Cluster"),
    ]
    assert boxes["20586934"] == [("asymmetry", 2.0, 3.0, 14.0, 18.0, None, "Assymetry")]
    assert boxes["20586960"] == []  # no XML file
    assert boxes["20586986"] == [
        (
            "architectural_distortion",
            40.0,
            55.0,
            48.0,
            64.0,
            "spiculated_region",
            "Spiculated Region",
        ),
    ]
    assert all(f["malignant"] is None for fs in manifest["findings"] for f in fs)
    assert manifest["findings"].iloc[0][0]["birads"] == "4a"


def test_dropped_and_notes(manifest):
    dropped = manifest.attrs["dropped"]
    assert _plain(dropped, list(dropped.columns)) == [
        ("finding", "INbreast.csv", 1, "20586934", "unknown ROI name 'Point 3'"),
        ("image", "INbreast.csv", 4, "24065530", "DICOM file not found"),
        (
            "image",
            "INbreast.csv",
            5,
            "24065584",
            "CSV laterality/view disagree with the DICOM file name",
        ),
    ]
    assert manifest.attrs["notes"] == {
        "boxes clipped to the image": 1,
        "images without an XML outline file (no findings)": 1,
    }


def test_valid_and_readable(manifest):
    pd.testing.assert_frame_equal(validate_manifest(manifest), manifest)
    path = Path(manifest["path"].iloc[1])
    assert path.name == f"20586934_{HASH}_MG_R_ML_ANON.dcm"
    image = read_dicom(path)
    assert image.pixels.shape == (64, 48) and image.pixel_spacing_mm == pytest.approx(0.07)


def test_outline_helpers(tmp_path):
    assert parse_points(["(1.5, 2.000000)", "(3, -4)"]) == [(1.5, 2.0), (3.0, -4.0)]
    with pytest.raises(ValueError, match="not of the form"):
        parse_points(["1, 2"])
    assert outline_box([(10.0, 10.0), (12.0, 10.0)]) == (8.0, 7.0, 14.0, 13.0)
    assert outline_box([(1.0, 5.0), (9.0, 5.0), (4.0, 5.0)]) == (1.0, 4.5, 9.0, 5.5)
    xml = tmp_path / "x.xml"
    xml.write_bytes(plistlib.dumps({"Images": []}))
    assert read_outlines(xml) == []
    rois = read_outlines(ROOT / "AllXML" / "20586934.xml")
    assert [r["name"] for r in rois] == ["Assymetry", "Point 3"]


def test_missing_csv(tmp_path):
    root = tmp_path / "inbreast"
    shutil.copytree(ROOT, root)
    (root / "INbreast.csv").unlink()
    with pytest.raises(FileNotFoundError, match="INbreast.csv"):
        load_inbreast(root)


def test_renamed_column(tmp_path):
    root = tmp_path / "inbreast"
    shutil.copytree(ROOT, root)
    csv = root / "INbreast.csv"
    csv.write_text(csv.read_text().replace(";ACR;", ";Density;", 1))
    with pytest.raises(ValueError, match=r'column "ACR" not found in .*INbreast.csv'):
        load_inbreast(root)


def test_unreadable_xml_drops_findings_only(tmp_path):
    root = tmp_path / "inbreast"
    shutil.copytree(ROOT, root)
    (root / "AllXML" / "20586908.xml").write_text("<plist><dict><key>Images")
    with pytest.warns(AdapterWarning):
        df = load_inbreast(root)
    assert df.set_index("image_id").loc["20586908", "findings"] == []
    dropped = df.attrs["dropped"]
    assert dropped["reason"].iloc[0].startswith("unreadable XML outline file")


# --------------------------------------------------------------------------- bad input
def _copy(tmp_path, edits: dict | None = None) -> Path:
    """A copy of the fixture with some cells of INbreast.csv replaced ({(row, column): text})."""
    root = tmp_path / "inbreast"
    shutil.copytree(ROOT, root)
    if edits:
        table = pd.read_csv(root / "INbreast.csv", sep=";", dtype=str, keep_default_na=False)
        for (row, col), value in edits.items():
            table.loc[row, col] = value
        table.to_csv(root / "INbreast.csv", sep=";", index=False, lineterminator="\n")
    return root


def _values(df: pd.DataFrame) -> list[tuple]:
    dropped = df.attrs["dropped"]
    return _plain(dropped[dropped["level"] == "value"], list(dropped.columns))


def _load(root) -> pd.DataFrame:
    with pytest.warns(AdapterWarning):
        return load_inbreast(root)


def test_truncated_dicom_header_drops_that_image(tmp_path):
    root = _copy(tmp_path)
    dicom = next((root / "AllDICOMs").glob("20586934_*.dcm"))
    dicom.write_bytes(dicom.read_bytes()[:600])  # cut inside the header: no Rows/Columns
    df = _load(root)
    assert "20586934" not in set(df["image_id"]) and len(df) == 3
    dropped = df.attrs["dropped"]
    assert _plain(dropped.iloc[:1], list(dropped.columns)) == [
        ("image", "INbreast.csv", 1, "20586934", "unreadable DICOM (DicomError)")
    ]


def test_acr_outside_1_to_4_is_set_to_missing(tmp_path):
    df = _load(_copy(tmp_path, {(0, "ACR"): "5"}))
    assert pd.isna(df.set_index("image_id").loc["20586908", "density"])
    assert _values(df) == [
        ("value", "INbreast.csv", 0, "20586908", "ACR '5' is not 1-4: set to missing")
    ]


def test_unknown_birads_is_set_to_missing(tmp_path):
    df = _load(_copy(tmp_path, {(1, "Bi-Rads"): "4d"}))
    row = df.set_index("image_id").loc["20586934"]
    assert pd.isna(row["birads"]) and pd.isna(row["birads_suspicious"])
    assert all("birads" not in f for f in row["findings"])
    assert _values(df) == [
        ("value", "INbreast.csv", 1, "20586934", "Bi-Rads '4d' is not 0-6 or 4a-4c: set to missing")
    ]


def test_repeated_file_name_drops_the_later_row(tmp_path):
    root = _copy(tmp_path)
    csv = root / "INbreast.csv"
    lines = csv.read_text().splitlines()
    csv.write_text("\n".join([*lines, lines[1]]) + "\n")
    df = _load(root)
    assert list(df["image_id"]) == ["20586908", "20586934", "20586960", "20586986"]
    dropped = df.attrs["dropped"]
    assert _plain(dropped.iloc[-1:], list(dropped.columns)) == [
        ("image", "INbreast.csv", 6, "20586908", "duplicate File Name")
    ]


def test_xml_that_is_not_an_roi_plist_drops_its_findings(tmp_path):
    root = _copy(tmp_path)
    (root / "AllXML" / "20586908.xml").write_bytes(plistlib.dumps(["not", "a", "dict"]))
    df = _load(root)
    assert df.set_index("image_id").loc["20586908", "findings"] == []
    assert df.attrs["dropped"]["reason"].iloc[0] == "unreadable XML outline file (ValueError)"
    with pytest.raises(ValueError, match="top level is not a dictionary"):
        read_outlines(root / "AllXML" / "20586908.xml")
    with pytest.raises(ValueError, match="not a list of points"):
        parse_points("(1, 2)")
