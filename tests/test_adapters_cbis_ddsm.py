"""Tests for mammo_helpers.data.adapters.cbis_ddsm on the committed CBIS-DDSM fixture."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import pandas as pd
import pytest

from mammo_helpers.data.adapters import AdapterWarning, load_cbis_ddsm
from mammo_helpers.data.manifest import validate_manifest
from mammo_helpers.io import read_dicom

ROOT = Path(__file__).parent / "fixtures" / "datasets" / "cbis_ddsm"
MASS_CC = "Mass-Training_P_00001_LEFT_CC"
MASS_MLO = "Mass-Training_P_00001_LEFT_MLO"
MASS_TEST = "Mass-Test_P_00017_RIGHT_MLO"
CALC_TRAIN = "Calc-Training_P_00005_RIGHT_CC"
CALC_TCIA = "Calc-Test_P_00038_LEFT_CC"


def _plain(df: pd.DataFrame, cols: list[str]) -> list[tuple]:
    return [
        tuple(None if pd.isna(v) else v for v in row)
        for row in df[cols].astype(object).itertuples(index=False)
    ]


def _box(f: dict) -> tuple:
    return (f["label"], f["xmin"], f["ymin"], f["xmax"], f["ymax"], f["malignant"])


@pytest.fixture(scope="module")
def manifest():
    with pytest.warns(AdapterWarning, match="load_cbis_ddsm: 5 images kept"):
        return load_cbis_ddsm(ROOT)


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
        "split",
        "abnormality",
        "vendor",
        "source",
    ]
    assert _plain(manifest, cols) == [
        (
            "P_00001",
            "P_00001",
            MASS_CC,
            "L",
            "CC",
            "C",
            64,
            48,
            1,
            "train",
            "mass",
            "DDSM",
            "cbis_ddsm",
        ),
        (
            "P_00001",
            "P_00001",
            MASS_MLO,
            "L",
            "MLO",
            "C",
            64,
            48,
            1,
            "train",
            "mass",
            "DDSM",
            "cbis_ddsm",
        ),
        (
            "P_00017",
            "P_00017",
            MASS_TEST,
            "R",
            "MLO",
            "B",
            64,
            48,
            0,
            "test",
            "mass",
            "DDSM",
            "cbis_ddsm",
        ),
        (
            "P_00005",
            "P_00005",
            CALC_TRAIN,
            "R",
            "CC",
            "C",
            64,
            48,
            1,
            "train",
            "calc",
            "DDSM",
            "cbis_ddsm",
        ),
        (
            "P_00038",
            "P_00038",
            CALC_TCIA,
            "L",
            "CC",
            "B",
            64,
            48,
            0,
            "test",
            "calc",
            "DDSM",
            "cbis_ddsm",
        ),
    ]


def test_findings_from_masks(manifest):
    by_id = dict(zip(manifest["image_id"], manifest["findings"], strict=True))
    # abnormality 1 has swapped crop/ROI columns (and a newline in the path): the mask is
    # still found by size; its box is the bounding box of the nonzero pixels
    assert [_box(f) for f in by_id[MASS_CC]] == [
        ("mass", 5.0, 10.0, 25.0, 30.0, True),
        ("mass", 30.0, 40.0, 41.0, 52.0, False),
    ]
    first = by_id[MASS_CC][0]
    assert first["subtype"] == "irregular-architectural_distortion/spiculated"
    assert first["birads"] == "4" and first["source_label"] == "mass"
    mask_path = Path(first["mask_path"])
    assert mask_path.name == "000000.dcm" and mask_path.parts[-4] == f"{MASS_CC}_1"
    assert by_id[MASS_MLO] == []  # ROI files missing: finding dropped, image kept (cancer=1)
    assert by_id[MASS_TEST] == []  # mask of another size: dropped
    assert [_box(f) for f in by_id[CALC_TRAIN]] == [("calcification", 0.0, 0.0, 7.0, 4.0, True)]
    assert by_id[CALC_TRAIN][0]["subtype"] == "amorphous/clustered"
    # TCIA download layout: found by series folder name; distribution missing -> type only
    tcia = by_id[CALC_TCIA]
    assert [_box(f) for f in tcia] == [("calcification", 12.0, 20.0, 14.0, 21.0, False)]
    assert tcia[0]["subtype"] == "pleomorphic"
    assert tcia[0]["mask_path"].endswith("1.000000-ROI mask images-37045/1-2.dcm")


def test_dropped(manifest):
    dropped = manifest.attrs["dropped"]
    assert _plain(dropped, list(dropped.columns)) == [
        ("finding", "mass_case_description_train_set.csv", 2, MASS_MLO, "ROI mask file not found"),
        (
            "finding",
            "mass_case_description_test_set.csv",
            0,
            MASS_TEST,
            "no binary ROI mask with the full image size",
        ),
        (
            "image",
            "calc_case_description_train_set.csv",
            1,
            "Calc-Training_P_00009_LEFT_MLO",
            "full image file not found",
        ),
    ]
    assert manifest.attrs["notes"] == {}


def test_paths_resolved_in_both_layouts(manifest):
    paths = dict(zip(manifest["image_id"], manifest["path"], strict=True))
    assert paths[MASS_CC].startswith(str(ROOT.absolute() / MASS_CC))
    assert paths[CALC_TCIA] == str(
        ROOT.absolute()
        / "CBIS-DDSM"
        / CALC_TCIA
        / "08-29-2017-DDSM-NA-96009"
        / "1.000000-full mammogram images-63992"
        / "1-1.dcm"
    )
    image = read_dicom(paths[CALC_TCIA])
    assert image.pixels.shape == (64, 48)
    mask = read_dicom(manifest["findings"].iloc[0][0]["mask_path"], require_mg=False)
    assert sorted(set(mask.pixels.ravel().tolist())) == [0.0, 255.0]


def test_manifest_is_valid(manifest):
    pd.testing.assert_frame_equal(validate_manifest(manifest), manifest)


def test_subset_of_csvs():
    with warnings.catch_warnings():
        warnings.simplefilter("error", AdapterWarning)  # nothing dropped: no warning
        df = load_cbis_ddsm(ROOT, abnormalities=("calc",), splits=("test",))
    assert list(df["image_id"]) == [CALC_TCIA]
    assert df.attrs["dropped"].empty
    with pytest.raises(ValueError, match="abnormalities"):
        load_cbis_ddsm(ROOT, abnormalities=("cyst",))


def test_density_spelling_accepted_in_either_file(tmp_path):
    root = tmp_path / "cbis"
    shutil.copytree(ROOT, root)
    csv = root / "calc_case_description_train_set.csv"
    csv.write_text(csv.read_text().replace("breast density", "breast_density", 1))
    with pytest.warns(AdapterWarning):
        df = load_cbis_ddsm(root)
    assert df.set_index("image_id").loc[CALC_TRAIN, "density"] == "C"


def test_missing_csv(tmp_path):
    root = tmp_path / "cbis"
    shutil.copytree(ROOT, root)
    (root / "calc_case_description_test_set.csv").unlink()
    with pytest.raises(FileNotFoundError, match="calc_case_description_test_set.csv"):
        load_cbis_ddsm(root)


def test_renamed_column(tmp_path):
    root = tmp_path / "cbis"
    shutil.copytree(ROOT, root)
    csv = root / "mass_case_description_train_set.csv"
    csv.write_text(csv.read_text().replace("breast_density", "density", 1))
    with pytest.raises(
        ValueError,
        match=r'column "breast_density" not found in .*mass_case_description_train_set.csv; '
        r"columns are patient_id, density, ",
    ):
        load_cbis_ddsm(root)


def test_unreadable_dicoms(tmp_path):
    root = tmp_path / "cbis"
    shutil.copytree(ROOT, root)
    full = next((root / CALC_TRAIN).rglob("*.dcm"))
    full.write_bytes(b"not a dicom")
    mask = next((root / f"{MASS_CC}_2").rglob("000000.dcm"))
    mask.write_bytes(b"")
    with pytest.warns(AdapterWarning):
        df = load_cbis_ddsm(root)
    assert CALC_TRAIN not in set(df["image_id"])
    assert len(df.set_index("image_id").loc[MASS_CC, "findings"]) == 1
    reasons = set(df.attrs["dropped"]["reason"])
    assert "unreadable full image DICOM (DicomError)" in reasons
    assert "unreadable ROI DICOM file" in reasons


# --------------------------------------------------------------------------- bad input
MASS_TRAIN = "mass_case_description_train_set.csv"


def _copy(tmp_path) -> Path:
    root = tmp_path / "cbis"
    shutil.copytree(ROOT, root)
    return root


def _edit(root: Path, csv: str, edits: dict) -> Path:
    """Replace cells of ``csv`` under ``root`` ({(row, column): text})."""
    table = pd.read_csv(root / csv, dtype=str, keep_default_na=False)
    for (row, col), value in edits.items():
        table.loc[row, col] = value
    table.to_csv(root / csv, index=False, lineterminator="\n")
    return root


def _truncate(path: Path, size: int = 600) -> None:
    """Cut a DICOM inside its header: pydicom reads it without Rows/Columns."""
    path.write_bytes(path.read_bytes()[:size])


def _values(df: pd.DataFrame) -> list[tuple]:
    dropped = df.attrs["dropped"]
    return _plain(dropped[dropped["level"] == "value"], list(dropped.columns))


def _load(root) -> pd.DataFrame:
    with pytest.warns(AdapterWarning):
        return load_cbis_ddsm(root)


def test_truncated_full_image_header_drops_that_image(tmp_path):
    root = _copy(tmp_path)
    _truncate(next((root / CALC_TRAIN).rglob("*.dcm")))
    df = _load(root)
    assert CALC_TRAIN not in set(df["image_id"]) and len(df) == 4
    dropped = df.attrs["dropped"]
    mine = dropped[dropped["image_id"] == CALC_TRAIN]
    assert _plain(mine, list(dropped.columns)) == [
        (
            "image",
            "calc_case_description_train_set.csv",
            0,
            CALC_TRAIN,
            "unreadable full image DICOM (DicomError)",
        )
    ]


def test_truncated_mask_header_drops_that_finding(tmp_path):
    root = _copy(tmp_path)
    _truncate(next((root / f"{MASS_CC}_2").rglob("000000.dcm")))
    df = _load(root)
    assert [_box(f) for f in df.set_index("image_id").loc[MASS_CC, "findings"]] == [
        ("mass", 5.0, 10.0, 25.0, 30.0, True)
    ]
    dropped = df.attrs["dropped"]
    assert _plain(dropped.iloc[:1], list(dropped.columns)) == [
        ("finding", MASS_TRAIN, 1, MASS_CC, "unreadable ROI DICOM file")
    ]


def test_density_outside_1_to_4_is_set_to_missing(tmp_path):
    df = _load(_edit(_copy(tmp_path), MASS_TRAIN, {(0, "breast_density"): "0"}))
    assert pd.isna(df.set_index("image_id").loc[MASS_CC, "density"])
    assert _values(df) == [
        ("value", MASS_TRAIN, 0, MASS_CC, "breast_density '0' is not 1-4: set to missing")
    ]
    assert df.attrs["notes"] == {"breast_density values set to missing": 1}


def test_unknown_pathology_leaves_malignant_and_cancer_missing(tmp_path):
    df = _load(_edit(_copy(tmp_path), MASS_TRAIN, {(0, "pathology"): "UNPROVEN"}))
    row = df.set_index("image_id").loc[MASS_CC]
    assert [f["malignant"] for f in row["findings"]] == [None, False] and pd.isna(row["cancer"])
    assert _values(df) == [
        (
            "value",
            MASS_TRAIN,
            0,
            MASS_CC,
            "pathology 'UNPROVEN' is not MALIGNANT/BENIGN/BENIGN_WITHOUT_CALLBACK: set to missing",
        )
    ]


def test_unreadable_assessment_leaves_the_finding_without_birads(tmp_path):
    df = _load(_edit(_copy(tmp_path), MASS_TRAIN, {(1, "assessment"): "4?"}))
    findings = df.set_index("image_id").loc[MASS_CC, "findings"]
    assert findings[0]["birads"] == "4" and "birads" not in findings[1]
    assert _values(df) == [
        ("value", MASS_TRAIN, 1, MASS_CC, "assessment '4?' is not BI-RADS 0-5: set to missing")
    ]


def test_missing_patient_id_drops_the_image(tmp_path):
    df = _load(_edit(_copy(tmp_path), MASS_TRAIN, {(2, "patient_id"): ""}))
    assert MASS_MLO not in set(df["image_id"]) and "None" not in set(df["patient_id"])
    dropped = df.attrs["dropped"]
    assert _plain(dropped.iloc[:1], list(dropped.columns)) == [
        ("image", MASS_TRAIN, 2, MASS_MLO, "missing patient_id")
    ]
