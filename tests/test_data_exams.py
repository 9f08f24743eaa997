"""Tests for mammo_helpers.data.exams: four-view exams, their targets, the case-level split
and Table II of paper 04 (Wimmer et al.)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from mammo_helpers import vocab
from mammo_helpers.data import exams as ex
from mammo_helpers.data.manifest import ManifestError, make_finding, manifest_row, validate_manifest
from mammo_helpers.data.splits import check_no_leakage

VIEWS_SHUFFLED = (("R", "MLO"), ("L", "CC"), ("R", "CC"), ("L", "MLO"))


def mass(malignant=False, label="mass"):
    return make_finding(label, 10, 10, 20, 20, malignant)


def calc(malignant=False):
    return make_finding("calcification", 30, 30, 35, 35, malignant)


def study_rows(pid, sid, density="B", findings=None, views=VIEWS_SHUFFLED):
    """Manifest rows of one study; ``findings`` maps (laterality, view) to a finding list."""
    findings = findings or {}
    return [
        manifest_row(
            patient_id=pid,
            study_id=sid,
            image_id=f"{sid}_{side}_{view}",
            path=f"{sid}_{side}_{view}.dcm",
            laterality=side,
            view=view,
            site="site_A",
            density=density,
            findings=findings.get((side, view), []),
        )
        for side, view in views
    ]


def make_manifest(*studies, seed=0) -> pd.DataFrame:
    rows = [row for study in studies for row in study]
    df = pd.DataFrame(rows).sample(frac=1.0, random_state=seed).reset_index(drop=True)
    return validate_manifest(df)


@pytest.fixture(scope="module")
def hand():
    """Five studies of four patients covering every target combination."""
    return make_manifest(
        study_rows("p1", "s1", "A"),  # normal
        study_rows("p2", "s2", "B", {("L", "CC"): [mass()], ("L", "MLO"): [mass()]}),
        study_rows(
            "p3",
            "s3",
            "C",
            {("R", "CC"): [mass(), calc(True)], ("L", "MLO"): [calc(False)]},
        ),
        study_rows("p4", "s4", "D", {("R", "MLO"): [calc(True)]}),
        study_rows("p4", "s5", None, {("L", "CC"): [mass(True, "architectural_distortion")]}),
    )


# --------------------------------------------------------------------------- vocabulary
def test_lesion_classes_and_families():
    assert vocab.LESION_CLASSES == (
        "benign_calcification",
        "malignant_calcification",
        "benign_mass",
        "malignant_mass",
    )
    assert vocab.LESION_FAMILIES == {
        "mass": "mass",
        "calcification": "calcification",
        "architectural_distortion": "mass",
        "asymmetry": "mass",
    }
    assert set(vocab.LESION_FAMILIES) <= set(vocab.FINDING_LABELS)
    for label in ("lymph_node", "skin_thickening", "retraction"):
        assert label not in vocab.LESION_FAMILIES


@pytest.mark.parametrize(
    ("label", "malignant", "expected"),
    [
        ("mass", False, "benign_mass"),
        ("mass", True, "malignant_mass"),
        ("calcification", False, "benign_calcification"),
        ("calcification", True, "malignant_calcification"),
        ("architectural_distortion", True, "malignant_mass"),
        ("asymmetry", False, "benign_mass"),
    ],
)
def test_lesion_class_hand_cases(label, malignant, expected):
    assert ex.lesion_class(make_finding(label, 0, 0, 1, 1, malignant)) == expected
    assert ex.lesion_class({"label": label, "malignant": np.bool_(malignant)}) == expected


def test_lesion_class_errors_name_where_and_label():
    with pytest.raises(ValueError) as info:
        ex.lesion_class(make_finding("lymph_node", 0, 0, 1, 1, False), "image 'p1_L_CC'")
    msg = str(info.value)
    assert msg.startswith("image 'p1_L_CC': unknown lesion class 'lymph_node'"), msg
    assert "known: mass, calcification, architectural_distortion, asymmetry" in msg
    with pytest.raises(ValueError, match=r"^image 'x': finding 'calcification' has pathology "):
        ex.lesion_class(make_finding("calcification", 0, 0, 1, 1, None), "image 'x'")
    with pytest.raises(ValueError, match="pathology unknown"):
        ex.lesion_class({"label": "mass", "malignant": None})
    with pytest.raises(ValueError, match=r"malignant=1 is not True/False"):
        ex.lesion_class({"label": "mass", "malignant": 1})


def test_dense_superclass():
    assert ex.FATTY_DENSITIES == ("A", "B") and ex.DENSE_DENSITIES == ("C", "D")
    assert [ex.dense_superclass(d) for d in "ABCD"] == [0.0, 0.0, 1.0, 1.0]
    for missing in (None, math.nan, pd.NA, np.nan):
        assert math.isnan(ex.dense_superclass(missing))
    for bad in ("a", "E", 2):
        with pytest.raises(ValueError, match="density must be one of A, B, C, D"):
            ex.dense_superclass(bad)


# --------------------------------------------------------------------------- exam table
def test_views_come_out_in_four_views_order(hand):
    table = ex.exam_table(hand)
    assert ex.VIEW_COLUMNS == ("image_L_CC", "image_L_MLO", "image_R_CC", "image_R_MLO")
    assert list(table.columns[:6]) == ["patient_id", "study_id", *ex.VIEW_COLUMNS]
    assert table.index.equals(pd.RangeIndex(5))
    assert table["study_id"].tolist() == ["s1", "s2", "s3", "s4", "s5"]
    for row in table.itertuples():
        ids = [getattr(row, c) for c in ex.VIEW_COLUMNS]
        assert ids == [f"{row.study_id}_{side}_{view}" for side, view in vocab.FOUR_VIEWS]
    # the image ids are those of the manifest rows of that laterality and view
    where = hand.set_index("image_id")
    for col, (side, view) in zip(ex.VIEW_COLUMNS, vocab.FOUR_VIEWS, strict=True):
        assert (where.loc[table[col], "laterality"] == side).all()
        assert (where.loc[table[col], "view"] == view).all()
    long = ex.exam_images(table)
    assert list(long.columns) == ["study_id", "patient_id", "laterality", "view", "image_id"]
    assert len(long) == 20
    assert list(zip(long.laterality[:4], long.view[:4], strict=True)) == list(vocab.FOUR_VIEWS)
    assert long.image_id[4:8].tolist() == table.loc[1, list(ex.VIEW_COLUMNS)].tolist()
    assert (where.loc[long.image_id, "laterality"].to_numpy() == long.laterality).all()
    assert (where.loc[long.image_id, "view"].to_numpy() == long.view).all()


def test_targets_on_hand_cases(hand):
    table = ex.exam_table(hand).set_index("study_id")
    assert table["density"].tolist()[:4] == ["A", "B", "C", "D"]
    assert pd.isna(table.loc["s5", "density"])
    np.testing.assert_array_equal(table["dense"], [0.0, 0.0, 1.0, 1.0, np.nan])
    assert table["lesion"].tolist() == [0, 1, 1, 1, 1]
    assert table["malignant"].tolist() == [0, 0, 1, 1, 1]
    assert table["lesion_type"].tolist() == [
        "normal",
        "mass",
        "mass+calcification",  # benign mass + malignant calcification
        "calcification",
        "mass",  # architectural distortion is a mass (CBIS-DDSM)
    ]
    assert table["pathology"].tolist() == [
        "normal",
        "benign",
        "malignant",
        "malignant",
        "malignant",
    ]
    assert table["n_findings"].tolist() == [0, 2, 3, 1, 1]
    assert table["site"].eq("site_A").all() and "split" not in table.columns
    for col in ("lesion", "malignant", "n_findings"):
        assert table[col].dtype == np.int64
    assert table["dense"].dtype == np.float64


def test_other_views_are_ignored(hand):
    extra = study_rows(
        "p1",
        "s1",
        "D",
        {("L", "ML"): [make_finding("lymph_node", 0, 0, 1, 1)]},
        views=[("L", "ML")],
    )
    extra[0]["image_id"] = "s1_L_ML"
    with_ml = validate_manifest(pd.concat([hand, pd.DataFrame(extra)], ignore_index=True))
    pd.testing.assert_frame_equal(ex.exam_table(with_ml), ex.exam_table(hand))


def test_image_lesion_classes_pair_with_finding_order(hand):
    classes = ex.image_lesion_classes(hand)
    assert classes.index.name == "image_id" and len(classes) == len(hand)
    assert classes["s3_R_CC"] == ["benign_mass", "malignant_calcification"]
    assert classes["s3_L_MLO"] == ["benign_calcification"]
    assert classes["s5_L_CC"] == ["malignant_mass"]
    assert classes["s1_L_CC"] == []
    assert set(c for cell in classes for c in cell) <= set(vocab.LESION_CLASSES)


def test_missing_view_names_the_study_unless_dropped(hand):
    broken = hand[hand.image_id != "s2_R_MLO"]
    with pytest.raises(
        ManifestError, match=r"study 's2' \(patient 'p2'\) is missing view\(s\) R-MLO"
    ):
        ex.exam_table(broken)
    out = ex.exam_table(broken, drop_incomplete=True)
    assert out["study_id"].tolist() == ["s1", "s3", "s4", "s5"]
    assert out.attrs["dropped_incomplete"] == 1
    assert ex.exam_table(hand).attrs["dropped_incomplete"] == 0
    none_left = ex.exam_table(hand[hand.view == "CC"], drop_incomplete=True)
    assert none_left.empty and none_left.attrs["dropped_incomplete"] == 5
    assert list(none_left.columns) == list(ex.exam_table(hand).columns)


def test_duplicated_view_names_view_and_both_images(hand):
    dup = study_rows("p1", "s1", "A", views=[("L", "CC")])
    dup[0]["image_id"] = "s1_L_CC_copy"
    df = validate_manifest(pd.concat([hand, pd.DataFrame(dup)], ignore_index=True))
    with pytest.raises(ManifestError) as info:
        ex.exam_table(df)
    msg = str(info.value)
    assert "study 's1' (patient 'p1') has 2 L-CC images: 's1_L_CC', 's1_L_CC_copy'" in msg


def test_study_shared_by_two_patients_is_refused(hand):
    df = hand.copy()
    df.loc[df.image_id == "s3_L_CC", "patient_id"] = "p9"
    with pytest.raises(ManifestError, match=r"exam 's3' mixes patients 'p3', 'p9'"):
        ex.exam_table(df)


def test_views_disagreeing_on_density_site_or_split(hand):
    df = hand.copy()
    df.loc[df.image_id == "s2_R_CC", "density"] = "D"
    with pytest.raises(ManifestError, match=r"study 's2' .*disagree on density \('B', 'D'\)"):
        ex.exam_table(df)
    # a view without density takes the others'
    df.loc[df.image_id == "s2_R_CC", "density"] = None
    assert ex.exam_table(df).loc[1, "density"] == "B"
    split = np.where(hand.study_id == "s4", "test", "train")
    table = ex.exam_table(hand.assign(split=split))
    assert table["split"].tolist() == ["train", "train", "train", "test", "train"]
    split[(hand.image_id == "s4_L_CC").to_numpy()] = "train"
    with pytest.raises(
        ManifestError, match=r"study 's4' \(patient 'p4'\).*split \('test', 'train'\)"
    ):
        ex.exam_table(hand.assign(split=split))


@pytest.mark.parametrize(
    ("finding", "pattern"),
    [
        (make_finding("lymph_node", 0, 0, 1, 1, False), r"image 's2_L_CC'.*'lymph_node'"),
        (make_finding("mass", 0, 0, 1, 1, None), r"image 's2_L_CC'.*'mass'.*pathology unknown"),
    ],
)
def test_findings_without_a_lesion_class_name_the_image(hand, finding, pattern):
    df = hand.copy()
    pos = int(np.flatnonzero(df.image_id == "s2_L_CC")[0])
    df.at[df.index[pos], "findings"] = [finding]
    with pytest.raises(ValueError, match=pattern):
        ex.exam_table(df)
    with pytest.raises(ValueError, match=pattern):
        ex.image_lesion_classes(df)


def test_missing_columns_are_named():
    with pytest.raises(ValueError, match=r"exam_table: column\(s\) 'findings' missing"):
        ex.exam_table(pd.DataFrame(columns=["patient_id", "study_id", "image_id", "laterality",
                                            "view", "density"]))  # fmt: skip
    with pytest.raises(ValueError, match=r"split_exams: column\(s\) 'patient_id'.*exam_table"):
        ex.split_exams(pd.DataFrame({"x": [1]}))


# --------------------------------------------------------------------------- targets
def test_require_targets_name_the_missing_class(hand):
    table = ex.exam_table(hand)
    ex.require_lesion_target(table)
    ex.require_malignancy_target(table)
    lesions = table[table.lesion == 1]
    with pytest.raises(ValueError) as info:
        ex.require_lesion_target(lesions, "cbis_ddsm")
    msg = str(info.value)
    assert "the lesion target needs normal exams (no finding in any of the four views)" in msg
    assert "this data (cbis_ddsm) has none" in msg and "original DDSM normals" in msg
    lesions.attrs["source"] = "vindr"
    with pytest.raises(ValueError, match=r"this data \(vindr\) has none.*phantom"):
        ex.require_lesion_target(lesions)
    with pytest.raises(ValueError, match="needs lesion exams"):
        ex.require_lesion_target(table[table.lesion == 0])
    with pytest.raises(ValueError, match="needs malignant exams"):
        ex.require_malignancy_target(table[table.malignant == 0])
    with pytest.raises(ValueError, match="without a malignant finding"):
        ex.require_malignancy_target(table[table.malignant == 1])
    empty = ex.exam_table(hand[hand.view == "CC"], drop_incomplete=True)
    with pytest.raises(ValueError, match=r"5 studies without all four views were dropped"):
        ex.require_lesion_target(empty)


# --------------------------------------------------------------------------- split
def random_manifest(n_patients: int = 170, seed: int = 0) -> pd.DataFrame:
    """~200 exams: a fifth of the patients have two studies (same findings, density drawn
    anew); densities, lesion types and pathologies drawn."""
    rng = np.random.default_rng(seed)
    studies = []
    for p in range(n_patients):
        kind = rng.choice(["normal", "mass", "calc", "both"], p=[0.35, 0.3, 0.25, 0.1])
        bad = bool(rng.random() < 0.45)
        for s in range(1 + int(rng.random() < 0.2)):  # a second study: same findings
            found = {
                "normal": {},
                "mass": {("L", "CC"): [mass(bad)]},
                "calc": {("R", "MLO"): [calc(bad)]},
                "both": {("L", "MLO"): [mass(False), calc(bad)]},
            }[kind]
            density = rng.choice(["A", "B", "C", "D"], p=[0.15, 0.35, 0.3, 0.2])
            studies.append(study_rows(f"P{p:03d}", f"P{p:03d}-S{s}", str(density), found))
    return make_manifest(*studies, seed=seed)


@pytest.fixture(scope="module")
def big() -> pd.DataFrame:
    table = ex.exam_table(random_manifest())
    table.index = table.index + 1000  # split_exams must align to any index
    return table


def per_patient(exams, split):
    return split.groupby(exams["patient_id"]).agg(lambda s: set(s))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_split_exams_fractions_groups_and_strata(big, seed):
    assert 190 <= len(big) <= 230 and big["patient_id"].nunique() == 170
    split = ex.split_exams(big, seed=seed)
    assert split.index.equals(big.index) and split.name == "split"
    assert set(split) == {"train", "val", "test"}
    assert (per_patient(big, split).map(len) == 1).all()
    check_no_leakage(pd.DataFrame({"patient_id": big.patient_id, "split": split}))
    shares = split.value_counts(normalize=True)
    assert shares["test"] == pytest.approx(0.2, abs=0.04)
    assert shares["val"] == pytest.approx(0.12, abs=0.04)
    overall = big["pathology"].value_counts(normalize=True)
    for name, tolerance in (("train", 0.05), ("val", 0.1), ("test", 0.05)):
        part = big.loc[split == name, "pathology"].value_counts(normalize=True)
        diff = (part.reindex(overall.index, fill_value=0) - overall).abs().max()
        # stratified: test ~0.02 off over seeds 0-7; unstratified test parts ~0.1 (max 0.18)
        assert diff < tolerance, (name, part, overall)


def test_split_exams_seed_determinism_and_row_order(big):
    a = ex.split_exams(big, seed=3)
    pd.testing.assert_series_equal(a, ex.split_exams(big, seed=3))
    assert not a.equals(ex.split_exams(big, seed=4))
    shuffled = big.sample(frac=1.0, random_state=2)
    pd.testing.assert_series_equal(ex.split_exams(shuffled, seed=3).loc[big.index], a)


def test_split_strata_on_big_cohort(big):
    strata = ex.split_strata(big, 9)
    assert (strata.groupby(big["patient_id"]).nunique() == 1).all()  # a patient: one stratum
    patients = pd.Series(strata.to_numpy(), index=big["patient_id"]).groupby(level=0).first()
    assert patients.value_counts().min() >= 9
    assert strata.str.startswith("0:dense=").any() and strata.index.equals(big.index)


def strata_of(rows, min_patients):
    """Stratum per patient of exams given as (patient, dense, lesion_type, pathology)."""
    exams = pd.DataFrame(rows, columns=["patient_id", "dense", "lesion_type", "pathology"])
    strata = ex.split_strata(exams, min_patients)
    assert (strata.groupby(exams["patient_id"]).nunique() == 1).all()
    return dict(zip(exams["patient_id"], strata, strict=True))


def test_split_strata_fall_back_to_coarser_keys():
    rows = [(f"n{i}", 0.0, "normal", "normal") for i in range(4)]  # full stratum kept
    rows += [("d1", 1.0, "normal", "normal"), ("d2", 1.0, "normal", "normal")]
    rows += [("u1", np.nan, "normal", "normal")]  # with d1, d2: lesion type x pathology
    rows += [("b1", 0.0, "mass", "benign"), ("b2", 0.0, "mass", "benign")]
    rows += [("b3", 1.0, "calcification", "benign")]  # with b1, b2: pathology only
    rows += [(f"m{i}", 1.0, "mass", "malignant") for i in range(3)]
    rows += [("m9", 0.0, "calcification", "malignant")]  # alone: joins a malignant stratum
    rows += [("two", 0.0, "normal", "normal"), ("two", 0.0, "normal", "normal")]
    rows += [("two", 1.0, "mass", "benign")]  # the most frequent key of its exams
    got = strata_of(rows, 3)
    assert got["n0"] == got["two"] == "0:dense=0|normal|normal"
    assert got["d1"] == got["u1"] == "1:normal|normal"
    assert got["b1"] == got["b3"] == "2:benign"
    assert got["m0"] == got["m9"] == "0:dense=1|mass|malignant"
    # pathologies too rare for any stratum: one "rare" stratum, or the largest if too small
    few = rows[:6] + [("x1", 0.0, "mass", "malignant"), ("x2", 1.0, "calcification", "malignant")]
    got = strata_of(few, 3)
    assert got["x1"] == got["x2"] == got["d1"] == "0:dense=0|normal|normal"
    assert strata_of(few, 2)["x1"] == "2:malignant"
    got = strata_of(few + [("y1", 0.0, "mass", "benign")], 3)
    assert got["x1"] == got["x2"] == got["y1"] == "rare"


def test_split_exams_honours_an_official_train_test_split(big):
    rng = np.random.default_rng(5)
    patients = big["patient_id"].unique()
    official = dict(
        zip(patients, rng.choice(["train", "test"], len(patients), p=[0.75, 0.25]), strict=True)
    )
    given = big.assign(split=big["patient_id"].map(official))
    split = ex.split_exams(given, seed=0)
    assert (split[given.split == "test"] == "test").all()
    assert set(split[given.split == "train"]) == {"train", "val"}
    share = (split[given.split == "train"] == "val").mean()
    assert share == pytest.approx(0.12, abs=0.04)
    assert (per_patient(given, split).map(len) == 1).all()
    assert not split.equals(ex.split_exams(given, seed=1))
    # exams without an official split (added normals) go to train/test first, a patient's
    # unlabelled exam joins its labelled one
    extra = given["patient_id"].isin(patients[:40]) & (given["lesion"] == 0)
    partial = given.assign(split=given["split"].where(~extra, None))
    out = ex.split_exams(partial, seed=0)
    assert (out[partial.split == "test"] == "test").all()
    assert (per_patient(partial, out).map(len) == 1).all()
    assert set(out[extra]) <= {"train", "val", "test"} and len(set(out[extra])) >= 2


def test_split_exams_refuses_bad_official_splits(big):
    bad = big.assign(split="train")
    bad.loc[bad.index[3], "split"] = "val"
    with pytest.raises(ValueError, match=r"study .* has split 'val'.*only hold 'train' and 'test'"):
        ex.split_exams(bad)
    twins = big[big.patient_id.duplicated(keep=False)]
    leak = big.assign(split="train")
    leak.loc[twins.index[0], "split"] = "test"
    with pytest.raises(ValueError, match=repr(twins.patient_id.iloc[0])):
        ex.split_exams(leak)
    with pytest.raises(ValueError, match=r"^split_exams: test=1\.0 must be in \[0, 1\)"):
        ex.split_exams(big, test=1.0)
    with pytest.raises(ValueError, match=r"^split_exams: seed must be an integer"):
        ex.split_exams(big, seed=-1)


# --------------------------------------------------------------------------- Table II
def test_table2_counts_on_hand_cases(hand):
    table = ex.exam_table(hand)  # s1..s5
    split = pd.Series(["train", "train", "val", "test", "test"], index=table.index)
    t2 = ex.table2(table, split)
    assert t2.index.equals(ex.PAPER_TABLE2.index) and list(t2.columns) == list(ex.PAPER_TABLE2)
    expected = {
        ("Density", "a"): (1, 0, 0),
        ("Density", "b"): (1, 0, 0),
        ("Density", "c"): (0, 1, 0),
        ("Density", "d"): (0, 0, 1),  # s5 has no density: in no density row
        ("Lesion", "normal"): (1, 0, 0),
        ("Lesion", "mass"): (1, 1, 1),  # s3 (mass + calcification) in both rows
        ("Lesion", "calcification"): (0, 1, 1),
        ("Pathology", "normal"): (1, 0, 0),
        ("Pathology", "benign"): (1, 0, 0),
        ("Pathology", "malignant"): (0, 1, 2),
    }
    for row, counts in expected.items():
        assert tuple(t2.loc[row, ["Train", "Validation", "Test"]]) == counts, row
        assert t2.loc[row, "Total"] == sum(counts)
    pd.testing.assert_frame_equal(ex.table2(table.assign(split=split), "split"), t2)
    with pytest.raises(ValueError, match=r"split values \['dev'\]"):
        ex.table2(table, split.replace("val", "dev"))
    with pytest.raises(ValueError, match="aligned"):
        ex.table2(table, split.reset_index(drop=True).set_axis(range(1, 6)))


def test_paper_table2_is_the_papers():
    t = ex.PAPER_TABLE2
    assert t["Total"].tolist() == [297, 851, 668, 438, 693, 877, 731, 693, 819, 742]
    assert t.loc[("Density", "a"), "Train"] == 207 and t.loc[("Lesion", "mass"), "Test"] == 201
    # density and pathology rows add up to the 1511 / 290 / 453 cases (2254 in all)
    for group in ("Density", "Pathology"):
        sums = t.loc[group].sum()
        assert sums.tolist() == [1511, 290, 453, 2254]
    # lesion rows count cases with a mass and a calcification twice
    assert t.loc["Lesion", "Train"].sum() == 1549


# --------------------------------------------------------------------------- phantom
@pytest.fixture(scope="module")
def phantom(tmp_path_factory):
    from mammo_helpers.data import load_source

    return load_source(
        "phantom", n_patients=3, seed=0, resolution_scale=8.0, modalities=("DM",),
        cache_dir=tmp_path_factory.mktemp("phantom"), workers=1, progress=False,
    )  # fmt: skip


def test_phantom_manifest_gives_exams(phantom):
    """The real phantom manifest (12 images of 3 patients; 6 patients take ~20 s on a busy
    machine) makes three complete exams."""
    df = phantom
    assert len(df) == 12
    table = ex.exam_table(df)
    assert len(table) == df[["patient_id", "study_id"]].drop_duplicates().shape[0] == 3
    assert table.attrs["source"] == "phantom" and table.attrs["dropped_incomplete"] == 0
    assert table[list(ex.VIEW_COLUMNS)].notna().all().all()
    long = ex.exam_images(table)
    got = df.set_index("image_id").loc[long.image_id, ["laterality", "view"]]
    assert (got.to_numpy() == long[["laterality", "view"]].to_numpy()).all()
    found = [[f for cell in df.findings[df.study_id == s] for f in cell] for s in table.study_id]
    assert table["n_findings"].tolist() == [len(f) for f in found]
    assert table["lesion"].tolist() == [int(len(f) > 0) for f in found]
    assert table["malignant"].tolist() == [int(any(x["malignant"] for x in f)) for f in found]
    assert set(table["pathology"]) <= set(ex.PATHOLOGIES)
    assert set(table["lesion_type"]) <= set(ex.LESION_TYPES)


def test_lesion_class_index_leaves_zero_for_the_background():
    indices = {
        ("calcification", False): 1,
        ("calcification", True): 2,
        ("mass", False): 3,
        ("mass", True): 4,
        ("asymmetry", True): 4,
    }
    for (label, malignant), index in indices.items():
        assert ex.lesion_class_index(make_finding(label, 0, 0, 1, 1, malignant)) == index
    with pytest.raises(ValueError, match="^image 'q': unknown lesion class 'lymph_node'"):
        ex.lesion_class_index(make_finding("lymph_node", 0, 0, 1, 1, True), "image 'q'")
