"""Tests for mammo_helpers.data.manifest (schema, validation, I/O, views)."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mammo_helpers.data.manifest import (
    DENSITIES,
    FINDING_LABELS,
    LATERALITIES,
    MANIFEST_COLUMNS,
    MODALITIES,
    VIEWS,
    ManifestError,
    check_four_views,
    explode_findings,
    load_manifest,
    make_finding,
    require_four_views,
    resolve_paths,
    save_manifest,
    summarize_manifest,
    validate_manifest,
)


def typed(records: list[dict]) -> pd.DataFrame:
    """A manifest with exactly the dtypes validate_manifest promises."""
    df = pd.DataFrame.from_records(records, columns=list(MANIFEST_COLUMNS))
    for col in MANIFEST_COLUMNS[:10]:
        df[col] = df[col].astype("str")
    for col in ("age", "pixel_spacing_mm"):
        df[col] = df[col].astype("float64")
    for col in ("rows", "cols", "cancer"):
        df[col] = df[col].astype("Int64")
    df["findings"] = df["findings"].astype(object)
    return df


def four_view_manifest(n_patients: int = 3) -> pd.DataFrame:
    records = []
    for p in range(n_patients):
        for lat in LATERALITIES:
            for view in VIEWS:
                k = len(records)
                findings = []
                if k % 3 == 0:
                    findings.append(make_finding("mass", 10, 20, 50, 60, malignant=k % 2 == 0))
                if k % 4 == 0:
                    findings.append(
                        make_finding("asymmetry", 0, 0, 200, 100, None, subtype="focal")
                    )
                records.append(
                    {
                        "patient_id": f"P{p}",
                        "study_id": f"S{p}",
                        "image_id": f"I{k}",
                        "path": f"images/P{p}/{lat}_{view}.png",
                        "laterality": lat,
                        "view": view,
                        "modality": "DM",
                        "site": "site1" if p % 2 else "site2",
                        "vendor": "phantom",
                        "density": DENSITIES[p % 4] if p != 1 else None,
                        "age": 40.0 + p if p != 2 else np.nan,
                        "pixel_spacing_mm": 0.1,
                        "rows": 400,
                        "cols": 300,
                        "cancer": int(any(f["malignant"] for f in findings)),
                        "findings": findings,
                    }
                )
    return typed(records)


@pytest.fixture
def manifest() -> pd.DataFrame:
    return four_view_manifest()


# --------------------------------------------------------------------------- validation
def test_constants():
    assert MANIFEST_COLUMNS[:3] == ("patient_id", "study_id", "image_id")
    assert MANIFEST_COLUMNS[-1] == "findings" and len(MANIFEST_COLUMNS) == 16
    assert LATERALITIES == ("L", "R") and VIEWS == ("CC", "MLO")
    assert MODALITIES == ("DM", "s2D", "DBT") and DENSITIES == ("A", "B", "C", "D")
    assert "architectural_distortion" in FINDING_LABELS and len(FINDING_LABELS) == 7


def test_valid_manifest_passes_unchanged(manifest):
    out = validate_manifest(manifest)
    pd.testing.assert_frame_equal(out, manifest)
    assert out["findings"].tolist() == manifest["findings"].tolist()
    assert out is not manifest
    pd.testing.assert_frame_equal(validate_manifest(out), out)


def test_validation_normalises_dtypes_and_copies(manifest):
    loose = manifest.copy()
    for col in MANIFEST_COLUMNS[:10]:
        loose[col] = loose[col].astype(object)
    loose["rows"] = loose["rows"].astype("float64")
    loose["cancer"] = loose["cancer"].astype(bool)
    loose["age"] = loose["age"].astype(object)
    loose["findings"] = [
        [dict(f, xmin=int(f["xmin"]), malignant=np.bool_(bool(f["malignant"]))) for f in cell]
        for cell in manifest["findings"]
    ]
    loose = loose[list(MANIFEST_COLUMNS[::-1])].assign(split="train")
    out = validate_manifest(loose)
    assert list(out.columns) == [*MANIFEST_COLUMNS, "split"]
    assert out["rows"].dtype == "Int64" and out["cancer"].dtype == "Int64"
    assert out["patient_id"].dtype == "str" and out["age"].dtype == "float64"
    first = out["findings"].iloc[0][0]
    assert type(first["xmin"]) is float and first["malignant"] is True
    first["xmin"] = 99.0  # the copy does not share finding dicts with the input
    assert loose["findings"].iloc[0][0]["xmin"] == 10


def test_missing_columns_are_all_listed(manifest):
    with pytest.raises(ManifestError, match="'view', 'cancer'"):
        validate_manifest(manifest.drop(columns=["view", "cancer"]))


def _set(df: pd.DataFrame, row: int, col: str, value) -> pd.DataFrame:
    values = df[col].astype(object).tolist()
    values[row] = value
    df = df.copy()
    df[col] = pd.Series(values, index=df.index, dtype=object)
    return df


@pytest.mark.parametrize(
    ("col", "value", "needles"),
    [
        ("patient_id", None, ["missing or empty"]),
        ("study_id", "  ", ["missing or empty"]),
        ("path", 5, ["expected a string", "int 5"]),
        ("vendor", None, ["'unknown'"]),
        ("site", "", ["missing or empty"]),
        ("laterality", "l", ["'l' is not one of L, R"]),
        ("view", "cc", ["'cc' is not one of CC, MLO, ML"]),
        ("view", None, ["missing value is not one of CC, MLO"]),
        ("modality", "MG", ["'MG' is not one of DM, s2D, DBT"]),
        ("density", "DENSITY C", ["'DENSITY C' is not one of A, B, C, D or missing"]),
        ("age", 130.0, ["130.0 is not an age in [0, 120]"]),
        ("age", "45", ["expected a number", "str '45'"]),
        ("pixel_spacing_mm", 0.0, ["0.0 is not a finite number > 0"]),
        ("pixel_spacing_mm", math.inf, ["inf is not a finite number > 0"]),
        ("rows", 3518.5, ["3518.5 is not a positive integer"]),
        ("cols", -3, ["-3.0 is not a positive integer"]),
        ("cancer", 2, ["2.0 is not 0 or 1"]),
        ("findings", None, ["expected a list of finding dicts"]),
        ("findings", [{"label": "mass"}], ["finding 0", "missing key(s) 'xmin'"]),
        ("findings", ["mass"], ["finding 0", "expected a dict"]),
    ],
)
def test_each_column_error_names_row_image_and_column(manifest, col, value, needles):
    bad = _set(manifest, 5, col, value)
    with pytest.raises(ManifestError) as info:
        validate_manifest(bad)
    msg = str(info.value)
    where = "image_id=missing" if col == "image_id" else "image_id='I5'"
    assert msg.startswith(f"manifest row 5 ({where}), column {col!r}: "), msg
    for needle in needles:
        assert needle in msg, msg


def box(**changes) -> dict:
    finding = {"label": "mass", "xmin": 1.0, "ymin": 2.0, "xmax": 30.0, "ymax": 40.0}
    return {"malignant": None, **finding, **changes}


@pytest.mark.parametrize(
    ("finding", "needles"),
    [
        (box(label="Mass"), ["label 'Mass' is not one of mass, calcification"]),
        (box(xmin=math.nan), ["xmin=nan is not a finite number"]),
        (box(ymax="40"), ["ymax='40' is not a finite number"]),
        (box(xmin=30.0), ["xmin < xmax", "xmin=30.0, xmax=30.0"]),
        (box(ymin=50.0), ["ymin < ymax"]),
        (box(xmax=301.0), ["outside the image", "300 x 400", "clip_box"]),
        (box(ymin=-1.0), ["outside the image", "clip_box"]),
        (box(malignant=1), ["malignant=1 is not True, False or None"]),
        (box(subtype=3), ["subtype=3 is not a string"]),
        (box(extra=np.int64(3)), ["extra=np.int64(3) is not a JSON value"]),
        (box(extra=(1, 2)), ["is not a JSON value"]),
    ],
)
def test_finding_errors_name_the_finding(manifest, finding, needles):
    bad = _set(manifest, 7, "findings", [box(), finding])
    with pytest.raises(ManifestError) as info:
        validate_manifest(bad)
    msg = str(info.value)
    assert msg.startswith("manifest row 7 (image_id='I7'), column 'findings': finding 1: "), msg
    for needle in needles:
        assert needle in msg, msg


def test_box_inside_image_is_checked_only_against_known_size(manifest):
    df = _set(manifest, 7, "findings", [box(xmax=1000.0)])
    df["cols"] = df["cols"].astype("Int64")
    df.loc[7, "cols"] = pd.NA
    out = validate_manifest(df)  # cols unknown: cannot be outside horizontally
    assert out["findings"].iloc[7][0]["xmax"] == 1000.0
    df.loc[7, "rows"] = 39
    with pytest.raises(ManifestError, match=r"\? x 39"):
        validate_manifest(df)


def test_cancer_must_agree_with_malignant_findings(manifest):
    bad = _set(manifest, 2, "findings", [box(malignant=True)])
    bad.loc[2, "cancer"] = 0
    with pytest.raises(ManifestError) as info:
        validate_manifest(bad)
    msg = str(info.value)
    assert "row 2 (image_id='I2'), column 'cancer'" in msg and "malignant=True" in msg
    bad.loc[2, "cancer"] = pd.NA  # unknown cancer status is allowed
    assert validate_manifest(bad)["cancer"].isna().sum() == 1


def test_duplicate_image_id_names_both_rows(manifest):
    bad = _set(manifest, 9, "image_id", "I4")
    with pytest.raises(ManifestError) as info:
        validate_manifest(bad)
    msg = str(info.value)
    assert "manifest row 9 (image_id='I4'), column 'image_id'" in msg
    assert "not unique (also in row 4)" in msg


def test_error_uses_index_label(manifest):
    bad = _set(manifest, 3, "view", "lateral").set_index(pd.Index([f"r{i}" for i in range(12)]))
    with pytest.raises(ManifestError, match=r"manifest row 'r3' \(image_id='I3'\), column 'view'"):
        validate_manifest(bad)


def test_rejects_non_dataframe():
    with pytest.raises(TypeError, match="DataFrame"):
        validate_manifest([{"patient_id": "x"}])


def test_check_files(tmp_path, manifest):
    for rel in manifest["path"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"")
    validate_manifest(manifest, check_files=True, root=tmp_path)
    os.remove(tmp_path / manifest["path"].iloc[6])
    os.remove(tmp_path / manifest["path"].iloc[8])
    with pytest.raises(ManifestError) as info:
        validate_manifest(manifest, check_files=True, root=tmp_path)
    msg = str(info.value)
    assert "row 6 (image_id='I6'), column 'path'" in msg and "(2 missing in all)" in msg
    path = save_manifest(manifest, tmp_path / "m.csv")
    with pytest.raises(ManifestError, match="does not exist"):
        load_manifest(path, check_files=True)  # resolved against the manifest's folder


# --------------------------------------------------------------------------- findings helpers
def test_make_finding():
    f = make_finding("calcification", 1, 2, 3, 4, True, birads="4", source_label="Calc")
    assert f == {
        "label": "calcification",
        "xmin": 1.0,
        "ymin": 2.0,
        "xmax": 3.0,
        "ymax": 4.0,
        "malignant": True,
        "birads": "4",
        "source_label": "Calc",
    }
    with pytest.raises(ValueError, match="label 'Mass' is not one of"):
        make_finding("Mass", 1, 2, 3, 4)
    with pytest.raises(ValueError, match="xmin < xmax"):
        make_finding("mass", 3, 2, 1, 4)


# --------------------------------------------------------------------------- I/O
@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_save_load_round_trip_fixture(tmp_path, manifest, suffix):
    df = manifest.assign(split=pd.Series(["train"] * 6 + ["test"] * 6, dtype="str"))
    path = save_manifest(df, tmp_path / f"sub/manifest{suffix}")
    assert path.exists() and not list(path.parent.glob(".*tmp"))
    back = load_manifest(path)
    pd.testing.assert_frame_equal(back, df)
    assert back["findings"].tolist() == df["findings"].tolist()
    assert back.attrs["manifest_root"] == str(path.parent.resolve())


def test_csv_stores_findings_as_json(tmp_path, manifest):
    path = save_manifest(manifest, tmp_path / "m.csv")
    raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert json.loads(raw["findings"].iloc[0]) == manifest["findings"].iloc[0]
    assert raw["findings"].iloc[1] == "[]"


def test_bad_suffix_and_invalid_manifest(tmp_path, manifest):
    with pytest.raises(ValueError, match=r"unsupported suffix '\.xlsx'"):
        save_manifest(manifest, tmp_path / "m.xlsx")
    with pytest.raises(ValueError, match=r"unsupported suffix '\.json'"):
        load_manifest(tmp_path / "m.json")
    with pytest.raises(ManifestError, match="cannot save manifest to .*bad.csv.*column 'view'"):
        save_manifest(_set(manifest, 0, "view", "mlo"), tmp_path / "bad.csv")
    assert not (tmp_path / "bad.csv").exists()
    with pytest.raises(FileNotFoundError, match="nothere.csv"):
        load_manifest(tmp_path / "nothere.csv")


def test_load_errors_name_file_row_and_column(tmp_path, manifest):
    path = save_manifest(manifest, tmp_path / "m.csv")
    text = path.read_text().replace(",MLO,", ",MLX,", 1)
    path.write_text(text)
    with pytest.raises(ManifestError) as info:
        load_manifest(path)
    msg = str(info.value)
    assert str(path) in msg and "row 1 (image_id='I1'), column 'view': 'MLX'" in msg
    raw = pd.read_csv(tmp_path / "m.csv", dtype=str, keep_default_na=False)
    raw.loc[3, "findings"] = "[{'label': 'mass'}]"
    raw.to_csv(path, index=False)
    with pytest.raises(ManifestError, match=r"m\.csv.*row 3 .*column 'findings': invalid JSON"):
        load_manifest(path)


def test_parquet_keeps_optional_column_dtypes(tmp_path, manifest):
    df = manifest.assign(code=pd.Series(["007"] * 12, dtype="str"), n=pd.array([1] * 12, "Int64"))
    back = load_manifest(save_manifest(df, tmp_path / "m.parquet"))
    pd.testing.assert_frame_equal(back, df)


def test_csv_keeps_na_like_strings(tmp_path, manifest):
    df = manifest.copy()
    df["patient_id"] = df["patient_id"].str.replace("P0", "NA").astype("str")
    df["vendor"] = pd.Series(["None"] * 12, dtype="str")
    df["study_id"] = df["study_id"].str.replace("S1", "007").astype("str")
    back = load_manifest(save_manifest(df, tmp_path / "m.csv"))
    pd.testing.assert_frame_equal(back, df)


tricky = st.sampled_from(["NA", "nan", "None", "007", 'a,"b"', "x\ny", "r\r\nz", " sp ", "ü-é"])
text_id = st.one_of(
    tricky,
    st.text(st.characters(exclude_categories=("Cs", "Cc")), min_size=1, max_size=6).filter(
        lambda s: s.strip() != ""
    ),
)
finite = st.floats(allow_nan=False, allow_infinity=False)


@st.composite
def findings_for(draw, rows, cols):
    out = []
    for _ in range(draw(st.integers(0, 3))):
        w = float(cols) if cols is not None else 5000.0
        h = float(rows) if rows is not None else 5000.0
        x = sorted(draw(st.lists(st.floats(0, w), min_size=2, max_size=2, unique=True)))
        y = sorted(draw(st.lists(st.floats(0, h), min_size=2, max_size=2, unique=True)))
        extra = draw(
            st.dictionaries(
                st.sampled_from(["subtype", "birads", "source_label", "mask_path"]),
                st.one_of(st.none(), text_id),
                max_size=2,
            )
        )
        if draw(st.booleans()):
            extra["points"] = draw(st.lists(st.one_of(st.integers(-5, 5), finite), max_size=3))
        label = draw(st.sampled_from(FINDING_LABELS))
        malignant = draw(st.sampled_from([True, False, None]))
        out.append(make_finding(label, x[0], y[0], x[1], y[1], malignant, **extra))
    return out


@st.composite
def manifests(draw):
    n = draw(st.integers(1, 6))
    image_ids = draw(st.lists(text_id, min_size=n, max_size=n, unique=True))
    records = []
    for image_id in image_ids:
        rows = draw(st.one_of(st.none(), st.integers(1, 4000)))
        cols = draw(st.one_of(st.none(), st.integers(1, 4000)))
        findings = draw(findings_for(rows, cols))
        cancer = draw(st.sampled_from([None, 0, 1]))
        if cancer == 0 and any(f["malignant"] for f in findings):
            cancer = 1
        records.append(
            {
                "patient_id": draw(text_id),
                "study_id": draw(text_id),
                "image_id": image_id,
                "path": draw(text_id),
                "laterality": draw(st.sampled_from(LATERALITIES)),
                "view": draw(st.sampled_from(VIEWS)),
                "modality": draw(st.sampled_from(MODALITIES)),
                "site": draw(text_id),
                "vendor": draw(text_id),
                "density": draw(st.sampled_from((*DENSITIES, None))),
                "age": draw(st.one_of(st.just(math.nan), st.floats(0, 120))),
                "pixel_spacing_mm": draw(
                    st.one_of(st.just(math.nan), st.floats(1e-9, 10, exclude_min=True))
                ),
                "rows": rows,
                "cols": cols,
                "cancer": cancer,
                "findings": findings,
            }
        )
    df = typed(records)
    # optional columns are type-inferred when read from CSV: "007" would come back as 7
    non_numeric = tricky.filter(lambda s: s != "007")
    df["split"] = pd.Series(draw(st.lists(non_numeric, min_size=n, max_size=n)), dtype="str")
    df["fold"] = np.arange(n, dtype=np.int64)
    return df


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(df=manifests())
def test_round_trip_preserves_everything(tmp_path, suffix, df):
    valid = validate_manifest(df)
    pd.testing.assert_frame_equal(valid, df)
    back = load_manifest(save_manifest(valid, tmp_path / f"m{suffix}"))
    pd.testing.assert_frame_equal(back, valid)
    assert back["findings"].tolist() == valid["findings"].tolist()


def test_resolve_paths(tmp_path, manifest):
    df = _set(manifest, 0, "path", str(tmp_path / "abs.png"))
    out = resolve_paths(df, tmp_path / "root")
    assert out["path"].iloc[0] == str(tmp_path / "abs.png")
    assert out["path"].iloc[1] == str(tmp_path / "root" / manifest["path"].iloc[1])
    assert df["path"].iloc[1] == manifest["path"].iloc[1]  # input untouched
    back = load_manifest(save_manifest(manifest, tmp_path / "data" / "m.parquet"))
    assert back["path"].iloc[2] == manifest["path"].iloc[2]  # kept as stored
    resolved = resolve_paths(back, None)
    assert resolved["path"].iloc[2] == str((tmp_path / "data" / back["path"].iloc[2]).resolve())


# --------------------------------------------------------------------------- views
def test_explode_findings_counts(manifest):
    long = explode_findings(manifest)
    n = sum(len(c) for c in manifest["findings"])
    assert len(long) == n == 7  # 4 masses (k % 3 == 0) + 3 asymmetries (k % 4 == 0)
    assert list(long.columns[:11]) == [
        "image_id",
        "patient_id",
        "study_id",
        "laterality",
        "view",
        "label",
        "xmin",
        "ymin",
        "xmax",
        "ymax",
        "malignant",
    ]
    assert list(long.columns[11:]) == ["subtype"]
    assert long["label"].value_counts().to_dict() == {"mass": 4, "asymmetry": 3}
    assert long.loc[long["label"] == "asymmetry", "subtype"].eq("focal").all()
    assert long.loc[long["label"] == "mass", "subtype"].isna().all()
    assert long.groupby("image_id").size().to_dict() == {
        "I0": 2,
        "I3": 1,
        "I4": 1,
        "I6": 1,
        "I8": 1,
        "I9": 1,
    }
    assert long["xmin"].dtype == "float64"
    empty = explode_findings(manifest.assign(findings=[[] for _ in range(12)]))
    assert empty.empty and "malignant" in empty.columns


def test_four_views(manifest):
    assert check_four_views(manifest).empty
    require_four_views(manifest)
    partial = manifest.drop(index=[5, 6])  # P1: L-MLO and R-CC
    missing = check_four_views(partial)
    assert missing.to_dict("records") == [
        {"patient_id": "P1", "study_id": "S1", "laterality": "L", "view": "MLO"},
        {"patient_id": "P1", "study_id": "S1", "laterality": "R", "view": "CC"},
    ]
    with pytest.raises(ManifestError) as info:
        require_four_views(partial)
    msg = str(info.value)
    assert "study 'S1' (patient 'P1') is missing view(s) L-MLO, R-CC" in msg
    assert "1 of 3 studies" in msg


def test_summarize_manifest(manifest):
    summary = summarize_manifest(manifest)
    assert summary["patients"] == 3 and summary["studies"] == 3 and summary["images"] == 12
    assert summary["by_view"] == {"CC": 6, "MLO": 6}
    assert summary["by_modality"] == {"DM": 12, "s2D": 0, "DBT": 0}
    assert summary["by_site"] == {"site1": 4, "site2": 8}
    assert summary["by_density"] == {"A": 4, "B": 0, "C": 4, "D": 0, "missing": 4}
    assert summary["findings_by_label"]["mass"] == 4
    assert summary["findings_by_label"]["asymmetry"] == 3
    assert summary["malignant_findings"] == 2  # masses on images 0 and 6
    assert summary["cancer_positive"] == 2 and summary["cancer_rate"] == pytest.approx(2 / 12)
    json.dumps(summary)  # plain Python, ready for metrics.json
