"""Tests for mammo_helpers.data.adapters.embed on the committed EMBED fixture."""

from __future__ import annotations

import re
import shutil
from pathlib import Path, PurePosixPath

import pandas as pd
import pytest

from mammo_helpers.data.adapters import AdapterWarning, load_embed
from mammo_helpers.data.adapters.embed import _split_paths, finding_labels, parse_roi_coords
from mammo_helpers.data.manifest import validate_manifest
from mammo_helpers.io import read_dicom

ROOT = Path(__file__).parent / "fixtures" / "datasets" / "embed"
SOP = "1.2.826.0.1.3680043.8.498.{}".format
P1, P2, P3, P5 = "10000001", "10000002", "10000003", "10000005"
A1, A2, A3, A5 = (f"500000000000000{n}" for n in (1, 2, 3, 5))


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
        f["malignant"],
        f.get("subtype"),
    )


@pytest.fixture(scope="module")
def manifest():
    with pytest.warns(AdapterWarning, match="load_embed: 9 images kept; dropped 5"):
        return load_embed(ROOT)


def test_rows(manifest):
    cols = [
        "patient_id",
        "study_id",
        "image_id",
        "laterality",
        "view",
        "modality",
        "density",
        "age",
        "cancer",
        "birads",
        "vendor",
        "cohort",
    ]
    h = "HOLOGIC, Inc."
    assert _plain(manifest, cols) == [
        (P1, A1, SOP(10001), "L", "CC", "DM", "C", 62.5, 1, 4, h, "cohort_1"),
        (P1, A1, SOP(10002), "L", "MLO", "DM", "C", 62.5, 1, 4, h, "cohort_1"),
        (P1, A1, SOP(10003), "L", "CC", "s2D", "C", 62.5, 1, 4, h, "cohort_1"),  # cview
        (P1, A1, SOP(10004), "R", "CC", "DM", "C", 62.5, None, 1, h, "cohort_1"),
        (P1, A1, SOP(10005), "R", "MLO", "DM", "C", 62.5, None, 1, h, "cohort_1"),
        (P2, A2, SOP(10008), "L", "CC", "DM", "B", 51.0, 1, 4, h, "cohort_1"),
        (P2, A2, SOP(10009), "R", "CC", "DM", "B", 51.0, 0, 4, h, "cohort_1"),
        (P3, A3, SOP(10010), "R", "MLO", "DM", None, 70.0, None, 0, h, "cohort_1"),  # male
        (P5, A5, SOP(10013), "R", "CC", "DM", "A", 45.0, 0, 4, h, "cohort_1"),
    ]


def test_findings(manifest):
    boxes = {
        i: [_box(f) for f in fs]
        for i, fs in zip(manifest["image_id"], manifest["findings"], strict=True)
    }
    # ROI_coords are [ymin, xmin, ymax, xmax]
    assert boxes[SOP(10001)] == [("mass", 5.0, 10.0, 20.0, 30.0, True, "irregular")]
    assert boxes[SOP(10002)] == [
        ("mass", 3.0, 2.0, 13.0, 12.0, True, "irregular"),
        ("mass", 30.0, 40.0, 48.0, 64.0, True, "irregular"),  # clipped to 48 x 64
    ]
    assert boxes[SOP(10003)] == [("mass", 6.0, 11.0, 21.0, 31.0, True, "irregular")]
    assert boxes[SOP(10004)] == [] and boxes[SOP(10005)] == []
    # left image: the side-L distortion row wins over the side-B calcification row
    assert boxes[SOP(10008)] == [("architectural_distortion", 5.0, 5.0, 15.0, 15.0, True, None)]
    # right image: only the side-B row applies
    assert boxes[SOP(10009)] == [("calcification", 10.0, 20.0, 20.0, 30.0, False, None)]
    # side missing applies to both sides; not biopsied -> malignant None
    assert boxes[SOP(10010)] == [("asymmetry", 1.0, 1.0, 9.0, 9.0, None, "focal")]
    assert boxes[SOP(10013)] == []  # ambiguous ROI
    assert manifest["study_description"].iloc[0] == "MG Screening Bilateral w/CAD"
    first = manifest["findings"].iloc[0][0]
    assert first["source_label"] == "massshape=X;massmargin=S" and first["birads"] == "4"


def test_dropped_and_notes(manifest):
    dropped = manifest.attrs["dropped"]
    f = "EMBED_OpenData_metadata.csv"
    assert _plain(dropped, list(dropped.columns)) == [
        ("image", f, 5, SOP(10006), "FinalImageType 3D is not 2D/cview"),
        ("image", f, 6, SOP(10007), "spot compression / magnification view (spot_mag == 1)"),
        ("image", f, 10, SOP(10011), "view XCCL is not CC/MLO"),
        ("image", f, 11, SOP(10012), "exam (acc_anon) not in the clinical table"),
        (
            "finding",
            f,
            12,
            SOP(10013),
            "ROI matches several clinical findings with different labels",
        ),
    ]
    assert manifest.attrs["notes"] == {
        "boxes clipped to the image": 1,
        "images with tissueden 5 (male) given a missing density": 1,
    }


def test_paths_valid_and_readable(manifest):
    pd.testing.assert_frame_equal(validate_manifest(manifest), manifest)
    expected = ROOT.absolute() / "images" / "cohort_1" / P1 / A1 / f"{SOP(10001)}.dcm"
    assert manifest["path"].iloc[0] == str(expected)
    assert read_dicom(manifest["path"].iloc[0]).pixels.shape == (64, 48)


def test_layout_without_images_folder(tmp_path):
    root = tmp_path / "embed"
    shutil.copytree(ROOT, root)
    (root / "images" / "cohort_1").rename(root / "cohort_1")
    (root / "images").rmdir()
    for name in ("EMBED_OpenData_clinical.csv", "EMBED_OpenData_metadata.csv"):
        (root / "tables" / name).rename(root / name)
    with pytest.warns(AdapterWarning):
        df = load_embed(root, require_files=True)
    assert len(df) == 9
    assert df["path"].iloc[0] == str(root.absolute() / "cohort_1" / P1 / A1 / f"{SOP(10001)}.dcm")


def test_parse_roi_coords():
    assert parse_roi_coords("[[10, 5, 30, 20]]") == [(10.0, 5.0, 30.0, 20.0)]
    assert parse_roi_coords("((1, 2, 3, 4), (5, 6, 7, 8))") == [(1, 2, 3, 4), (5, 6, 7, 8)]
    assert parse_roi_coords("[[[2678, 16, 2931, 313]]]") == [(2678, 16, 2931, 313)]
    assert parse_roi_coords("[]") == [] and parse_roi_coords(None) == []
    with pytest.raises(ValueError, match="groups of 4"):
        parse_roi_coords("[[1, 2, 3]]")


def test_finding_labels():
    row = {"massshape": "Q", "massmargin": None, "massdens": None, "calcfind": "P"}
    assert finding_labels(row) == [
        ("architectural_distortion", "questioned", "massshape=Q"),
        ("calcification", None, "calcfind=P"),
    ]
    assert finding_labels({"massdens": "+"}) == [("mass", None, "massdens=+")]
    assert finding_labels({"massshape": "B"}) == [("asymmetry", "global", "massshape=B")]
    assert finding_labels({}) == []


def test_missing_csv(tmp_path):
    root = tmp_path / "embed"
    shutil.copytree(ROOT, root)
    (root / "tables" / "EMBED_OpenData_metadata.csv").unlink()
    with pytest.raises(FileNotFoundError, match="EMBED_OpenData_metadata.csv"):
        load_embed(root)


def test_renamed_column(tmp_path):
    root = tmp_path / "embed"
    shutil.copytree(ROOT, root)
    csv = root / "tables" / "EMBED_OpenData_clinical.csv"
    csv.write_text(csv.read_text().replace("tissueden", "density", 1))
    with pytest.raises(ValueError, match=r'column "tissueden" not found in .*clinical.csv'):
        load_embed(root)


# --------------------------------------------------------------------------- bad cells
CLIN, META = "EMBED_OpenData_clinical.csv", "EMBED_OpenData_metadata.csv"


def _edited(tmp_path, edits: dict, csv: str) -> Path:
    """A copy of the fixture with some cells of ``csv`` replaced ({(row, column): text})."""
    root = tmp_path / "embed"
    if not root.exists():
        shutil.copytree(ROOT, root)
    path = root / "tables" / csv
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    for (row, col), value in edits.items():
        table.loc[row, col] = value
    table.to_csv(path, index=False, lineterminator="\n")
    return root


def _values(df: pd.DataFrame) -> list[tuple]:
    dropped = df.attrs["dropped"]
    return _plain(dropped[dropped["level"] == "value"], list(dropped.columns))


def _load(root) -> pd.DataFrame:
    with pytest.warns(AdapterWarning):
        return load_embed(root)


def test_unknown_tissueden_is_reported_and_the_exams_next_value_used(tmp_path):
    df = _load(_edited(tmp_path, {(0, "tissueden"): "7"}, CLIN))
    assert set(df.loc[df["study_id"] == A1, "density"]) == {"C"}  # from clinical row 1
    assert _values(df) == [("value", CLIN, 0, None, "tissueden '7' is not 1-5: set to missing")]


def test_unknown_path_severity_is_set_to_missing(tmp_path):
    df = _load(_edited(tmp_path, {(0, "path_severity"): "x"}, CLIN))
    left = df[(df["study_id"] == A1) & (df["laterality"] == "L")]
    assert left["cancer"].isna().all()
    assert all(f["malignant"] is None for fs in left["findings"] for f in fs)
    assert _values(df) == [("value", CLIN, 0, None, "path_severity 'x' is not 0-6: set to missing")]


def test_unknown_assessment_letter_is_set_to_missing(tmp_path):
    df = _load(_edited(tmp_path, {(0, "asses"): "Z"}, CLIN))
    left = df[(df["study_id"] == A1) & (df["laterality"] == "L")]
    assert left["birads"].isna().all()
    assert all("birads" not in f for fs in left["findings"] for f in fs)
    assert _values(df) == [
        ("value", CLIN, 0, None, "asses 'Z' is not one of A, N, B, P, S, M, K: set to missing")
    ]


def test_unparseable_age_is_reported_and_the_exams_next_value_used(tmp_path):
    df = _load(_edited(tmp_path, {(0, "age_at_study"): "unknown"}, CLIN))
    assert set(df.loc[df["study_id"] == A1, "age"]) == {62.5}  # from clinical row 1
    assert _values(df) == [
        ("value", CLIN, 0, None, "age_at_study 'unknown' is not an age in 0-120: set to missing")
    ]


def test_unknown_side_is_reported_and_links_the_row_to_no_image(tmp_path):
    df = _load(_edited(tmp_path, {(0, "side"): "X"}, CLIN))
    left = df[(df["study_id"] == A1) & (df["laterality"] == "L")]
    assert all(fs == [] for fs in left["findings"])
    assert _values(df) == [
        ("value", CLIN, 0, None, "side 'X' is not L/R/B: ignored (the row applies to no image)")
    ]
    assert df.attrs["notes"]["side values ignored (the row applies to no image)"] == 1


def test_negative_rows_is_set_to_missing_and_boxes_keep_to_the_width(tmp_path):
    df = _load(_edited(tmp_path, {(1, "Rows"): "-64"}, META))
    row = df.set_index("image_id").loc[SOP(10002)]
    assert pd.isna(row["rows"]) and row["cols"] == 48
    assert [_box(f)[1:5] for f in row["findings"]] == [
        (3.0, 2.0, 13.0, 12.0),
        (30.0, 40.0, 48.0, 70.0),
    ]
    assert _values(df) == [
        ("value", META, 1, SOP(10002), "Rows '-64' is not a positive integer: set to missing")
    ]


def test_negative_roi_coordinate_is_clipped_when_the_size_is_unknown(tmp_path):
    edits = {(0, "Rows"): "", (0, "Columns"): "", (0, "ROI_coords"): "[[-4, 5, 30, 20]]"}
    df = _load(_edited(tmp_path, edits, META))
    row = df.set_index("image_id").loc[SOP(10001)]
    assert [_box(f)[1:5] for f in row["findings"]] == [(5.0, 0.0, 20.0, 30.0)]
    assert df.attrs["notes"]["boxes clipped to the image"] == 2


def test_non_numeric_spot_mag_drops_the_image(tmp_path):
    df = _load(_edited(tmp_path, {(0, "spot_mag"): "yes"}, META))
    assert SOP(10001) not in set(df["image_id"])
    dropped = df.attrs["dropped"]
    assert _plain(dropped.iloc[:1], list(dropped.columns)) == [
        ("image", META, 0, SOP(10001), "spot_mag 'yes' is not a number")
    ]


def test_exam_without_empi_is_dropped(tmp_path):
    _edited(tmp_path, {(5, "empi_anon"): "", (6, "empi_anon"): ""}, CLIN)
    df = _load(_edited(tmp_path, {(12, "empi_anon"): ""}, META))
    assert SOP(10013) not in set(df["image_id"]) and "None" not in set(df["patient_id"])
    dropped = df.attrs["dropped"]
    assert _plain(dropped.iloc[-1:], list(dropped.columns)) == [
        ("image", META, 12, SOP(10013), "missing empi_anon")
    ]


def _split_reference(text: str):
    """What the row-by-row adapter did with one anon_dicom_path (PurePosixPath)."""
    parts = PurePosixPath(text).parts
    start = next((i for i, p in enumerate(parts) if re.fullmatch(r"cohort_\d+", p)), None)
    rel = None if start is None else "/".join(parts[start:])
    return PurePosixPath(text).stem or None, None if start is None else parts[start], rel


def test_split_paths_agrees_with_pureposixpath():
    paths = [
        "/mnt/NAS2/mammo/anon_dicom/cohort_1/1/2/1.2.3.dcm",
        "cohort_2/1/2/x.dcm",
        "cohort_2",
        "/a/cohort_12x/cohort_3/f.dcm",
        "/a/xcohort_1/b.dcm",
        "/mnt//NAS2/./cohort_1/1/2/3.dcm",
        "/mnt/NAS2/cohort_1/1/2/",
        "//server/cohort_7/a.b.c.dcm",
        "/a/cohort_\u0661/b.dcm",  # an Arabic-Indic digit: \\d in Python, not in RE2
        "/a/cohort_1/.dcm",
        "/a/cohort_1/name.",
        "/a/cohort_1/new\nline.dcm",
        "no folder at all.dcm",
        "",
        "   ",
    ]
    stem, cohort, rel = _split_paths(pd.Series(paths, dtype="str"))
    got = list(zip(stem, cohort, rel, strict=True))
    assert got == [_split_reference(p.strip()) for p in paths]
