"""Tests for mammo_helpers.data.casecontrol: chapter 05's age-matched case-control cohort
(Sánchez Fuentes & Monsalve Durán 2025) and its pair-preserving, age-stratified split."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from mammo_helpers.data import casecontrol as cc
from mammo_helpers.data.manifest import ManifestError, manifest_row, validate_manifest
from mammo_helpers.data.splits import LeakageError
from mammo_helpers.vocab import FOUR_VIEWS

POSITIVE_VIEWS = (("L", "CC"), ("L", "MLO"))  # a case's malignant finding shows in both


# --------------------------------------------------------------------------- builders
def image_rows(pid, age, case, *, study=None, views=FOUR_VIEWS, positive=POSITIVE_VIEWS):
    """Manifest rows (only the columns the module reads) of one patient's study."""
    study = study or f"{pid}_s"
    return [
        {
            "patient_id": pid,
            "study_id": study,
            "image_id": f"{study}_{side}_{view}",
            "laterality": side,
            "view": view,
            "age": age,
            "cancer": int(case and (side, view) in positive),
        }
        for side, view in views
    ]


def make_manifest(*patients, seed=0) -> pd.DataFrame:
    """Rows of ``patients`` ((pid, age, case) or lists of rows) in shuffled order, with a
    non-default index so that alignment to ``manifest.index`` is tested."""
    rows = []
    for p in patients:
        rows += image_rows(*p) if isinstance(p, tuple) else p
    df = pd.DataFrame(rows)
    df["cancer"] = df["cancer"].astype("Int64")
    df = df.sample(frac=1.0, random_state=seed)
    df.index = [f"row{i}" for i in range(len(df))][::-1]
    return df


def cohort(n_cases, n_controls, seed=0, low=40.0, high=80.0):
    """(pid, age, case) of random patients: cases 'a000'..., controls 'c000'..."""
    rng = np.random.default_rng(seed)
    cases = [(f"a{i:03d}", float(rng.uniform(low, high)), 1) for i in range(n_cases)]
    controls = [(f"c{i:03d}", float(rng.uniform(low, high)), 0) for i in range(n_controls)]
    return cases + controls


def patients_frame(ages: dict, cases: set) -> pd.DataFrame:
    out = pd.DataFrame(
        {"age": [float(a) for a in ages.values()], "case": [int(p in cases) for p in ages]},
        index=pd.Index(list(ages), name="patient_id"),
    )
    return out


def make_pairs(n_pairs, seed=0, low=40.0, high=80.0) -> pd.DataFrame:
    """A pairs table of ``n_pairs`` pairs whose members differ by < 1 year of age."""
    rng = np.random.default_rng(seed)
    age = rng.uniform(low, high, n_pairs)
    rows = []
    for i, a in enumerate(age):
        rows.append((f"a{i:03d}", a, 1, f"pair_{i:03d}", "case"))
        rows.append((f"c{i:03d}", a + rng.uniform(-1, 1), 0, f"pair_{i:03d}", "control"))
    out = pd.DataFrame(rows, columns=["patient_id", "age", "case", "pair_id", "role"])
    return out.set_index("patient_id")


def pair_splits(pairs, split) -> pd.Series:
    """The set of splits of each pair, computed here (not by the module)."""
    return split.groupby(pairs["pair_id"]).agg(lambda s: frozenset(s))


# --------------------------------------------------------------------------- patient_table
def test_patient_table_flags_cases_and_counts_positive_images():
    df = make_manifest(
        ("p2", 61.0, 0),
        ("p1", 55.0, 1),
        image_rows("p3", 70.0, 1, positive=(("R", "MLO"),)),
    )
    table = cc.patient_table(df)
    assert list(table.index) == ["p1", "p2", "p3"]
    assert table.index.name == "patient_id"
    assert table["case"].tolist() == [1, 0, 1]
    assert table["n_positive_images"].tolist() == [2, 0, 1]
    assert table["age"].tolist() == [55.0, 61.0, 70.0]
    assert table["study_id"].tolist() == ["p1_s", "p2_s", "p3_s"]


def test_patient_table_ignores_other_views_and_accepts_a_validated_manifest():
    extra = image_rows("p2", 61.0, 1, views=(("L", "ML"),), positive=(("L", "ML"),))
    rows = image_rows("p1", 55.0, 1) + image_rows("p2", 61.0, 0) + extra
    full = [
        manifest_row(**r, path=f"{r['image_id']}.dcm", site="site_A", findings=[]) for r in rows
    ]
    df = validate_manifest(pd.DataFrame(full))
    table = cc.patient_table(df)
    assert table["case"].tolist() == [1, 0]  # p2's positive ML image is not a four-view image
    assert table["n_positive_images"].tolist() == [2, 0]


def test_patient_table_missing_view_names_the_study_and_patient():
    views = [v for v in FOUR_VIEWS if v != ("R", "MLO")]
    df = make_manifest(("p1", 50.0, 1), image_rows("p2", 52.0, 0, views=views))
    with pytest.raises(ManifestError, match=r"study 'p2_s' \(patient 'p2'\).*R-MLO"):
        cc.patient_table(df)


def test_patient_table_duplicated_view_names_the_study():
    dup = image_rows("p2", 52.0, 0, views=(("L", "CC"),))
    dup[0]["image_id"] = "copy_of_L_CC"
    df = make_manifest(("p1", 50.0, 1), image_rows("p2", 52.0, 0) + dup)
    with pytest.raises(ManifestError, match=r"study 'p2_s'.*2 L-CC images"):
        cc.patient_table(df)


def test_patient_table_two_studies_name_the_patient():
    rows = image_rows("p2", 52.0, 0, study="s_2019") + image_rows("p2", 52.0, 0, study="s_2021")
    df = make_manifest(("p1", 50.0, 1), rows)
    with pytest.raises(ValueError, match=r"patient 'p2' has 2 studies \('s_2019', 's_2021'\)"):
        cc.patient_table(df)


def test_patient_table_missing_or_disagreeing_age_names_the_patient():
    df = make_manifest(("p1", 50.0, 1), ("p2", float("nan"), 0))
    with pytest.raises(ValueError, match=r"patient 'p2' has no age"):
        cc.patient_table(df)
    rows = image_rows("p2", 52.0, 0)
    rows[3]["age"] = 53.0
    with pytest.raises(ValueError, match=r"patient 'p2' has different ages.*52 to 53"):
        cc.patient_table(make_manifest(("p1", 50.0, 1), rows))
    rows[3]["age"] = float("nan")  # a missing age beside a known one is ignored
    assert cc.patient_table(make_manifest(("p1", 50.0, 1), rows)).at["p2", "age"] == 52.0


def test_patient_table_missing_cancer_label_names_patient_and_image():
    df = make_manifest(("p1", 50.0, 1), ("p2", 52.0, 0))
    df.loc[df["image_id"] == "p2_s_R_CC", "cancer"] = pd.NA
    with pytest.raises(ValueError, match=r"patient 'p2' has image 'p2_s_R_CC' with cancer=<NA>"):
        cc.patient_table(df)


# --------------------------------------------------------------------------- match_controls
def pairs_of(matched) -> dict:
    """{case: control} of a match_controls result."""
    out = {}
    for _, members in matched.groupby("pair_id"):
        roles = dict(zip(members["role"], members.index, strict=True))
        out[roles["case"]] = roles["control"]
    return out


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_match_controls_takes_the_nearest_control(seed):
    patients = patients_frame(
        {"k50": 50, "k60": 60, "c49": 49, "c61": 61, "c80": 80}, {"k50", "k60"}
    )
    matched = cc.match_controls(patients, seed=seed)
    assert pairs_of(matched) == {"k50": "c49", "k60": "c61"}
    assert "c80" not in matched.index
    assert matched.attrs["unused_controls"] == 1
    assert matched.attrs["unmatched"] == []
    assert matched["pair_id"].tolist() == ["pair_000", "pair_000", "pair_001", "pair_001"]
    assert matched["role"].tolist() == ["case", "control", "case", "control"]
    assert matched.loc["c49", "age"] == 49.0  # the patients' columns are kept
    cc.check_pairs(matched)


def test_match_controls_is_without_replacement_and_visits_cases_in_random_order():
    patients = patients_frame({"a": 50, "b": 50.5, "c50": 50, "c54": 54}, {"a", "b"})
    seen = set()
    for seed in range(12):
        pairs = pairs_of(cc.match_controls(patients, seed=seed, max_age_gap=5))
        assert sorted(pairs.values()) == ["c50", "c54"]  # each control used once
        seen.add(pairs["a"])
        with pytest.raises(ValueError, match=r"case '(a|b)'") as err:
            cc.match_controls(patients, seed=seed, max_age_gap=3)
        # the second case finds only c54: 4 years from a, 3.5 years from b
        gap = {"a": "4.00", "b": "3.50"}[re.search(r"case '(\w)'", str(err.value)).group(1)]
        assert f"'c54', is {gap} years away" in str(err.value)
    assert seen == {"c50", "c54"}  # the order depends on the seed


def test_match_controls_equal_gaps_go_to_the_smallest_id():
    patients = patients_frame({"k": 50, "c2": 48, "c1": 52}, {"k"})
    assert pairs_of(cc.match_controls(patients)) == {"k": "c1"}


def test_match_controls_gap_over_the_limit_names_the_case():
    patients = patients_frame({"k1": 50, "k2": 70, "c1": 71, "c2": 72}, {"k1", "k2"})
    with pytest.raises(ValueError, match=r"case 'k1' \(age 50\).*max_age_gap=5.*21.00 years"):
        cc.match_controls(patients)


def test_match_controls_accepts_a_gap_equal_to_the_limit():
    patients = patients_frame({"k": 50, "c": 55}, {"k"})
    assert pairs_of(cc.match_controls(patients, max_age_gap=5)) == {"k": "c"}
    with pytest.raises(ValueError, match="case 'k'"):
        cc.match_controls(patients, max_age_gap=4.99)


def test_match_controls_drop_unmatched_records_the_case():
    patients = patients_frame({"k50": 50, "k90": 90, "c51": 51, "c52": 52}, {"k50", "k90"})
    matched = cc.match_controls(patients, drop_unmatched=True)
    assert pairs_of(matched) == {"k50": "c51"}
    assert matched.attrs["unmatched"] == ["k90"]
    assert matched.attrs["unused_controls"] == 1
    with pytest.raises(ValueError, match="none of the 1 cases"):
        cc.match_controls(patients_frame({"k": 90, "c": 50}, {"k"}), drop_unmatched=True)


def test_match_controls_is_deterministic_and_independent_of_row_order():
    ids = cohort(30, 45, seed=3)
    patients = patients_frame({p: a for p, a, _ in ids}, {p for p, _, c in ids if c})
    first = cc.match_controls(patients, seed=7, max_age_gap=10)
    again = cc.match_controls(patients.sample(frac=1.0, random_state=1), seed=7, max_age_gap=10)
    pd.testing.assert_frame_equal(first, again)
    cc.check_pairs(first)
    assert len(first) == 60
    assert first.attrs["unused_controls"] == 15
    gaps = [abs(patients.at[k, "age"] - patients.at[c, "age"]) for k, c in pairs_of(first).items()]
    assert max(gaps) <= 10


def test_match_controls_rejects_bad_input():
    with pytest.raises(ValueError, match="no case"):
        cc.match_controls(patients_frame({"c1": 50, "c2": 60}, set()))
    with pytest.raises(ValueError, match="no control"):
        cc.match_controls(patients_frame({"k1": 50}, {"k1"}))
    patients = patients_frame({"k": 50, "c": 51}, {"k"})
    for gap in (-1, float("nan"), "5", True):
        with pytest.raises(ValueError, match="max_age_gap"):
            cc.match_controls(patients, max_age_gap=gap)
    with pytest.raises(ValueError, match="seed"):
        cc.match_controls(patients, seed=-1)
    patients.loc["c", "age"] = float("nan")
    with pytest.raises(ValueError, match="patient 'c' has no age"):
        cc.match_controls(patients)


# --------------------------------------------------------------------------- check_pairs
def test_check_pairs_names_a_bad_pair():
    pairs = make_pairs(3)
    cc.check_pairs(pairs)
    two_cases = pairs.copy()
    two_cases.loc["c001", ["role", "case"]] = ["case", 1]
    with pytest.raises(ValueError, match=r"pair 'pair_001' has 'a001' \(case\), 'c001' \(case\)"):
        cc.check_pairs(two_cases)
    alone = pairs.drop(index="c002")
    with pytest.raises(ValueError, match=r"pair 'pair_002' has 'a002' \(case\) "):
        cc.check_pairs(alone)
    mislabelled = pairs.copy()
    mislabelled.loc["c000", "case"] = 1
    with pytest.raises(ValueError, match=r"pair 'pair_000': patient 'c000' is its control"):
        cc.check_pairs(mislabelled)


# --------------------------------------------------------------------------- split_pairs
def test_split_sizes_round_like_the_thesis():
    assert cc.split_sizes(191, 0.1, 0.2) == {"train": 133, "val": 19, "test": 39}
    assert cc.split_sizes(400, 0.1, 0.2) == {"train": 280, "val": 40, "test": 80}
    assert cc.split_sizes(10, 0.1, 0.2) == {"train": 7, "val": 1, "test": 2}


def test_split_pairs_gives_the_thesis_patient_counts_for_191_pairs():
    pairs = make_pairs(191)
    split = cc.split_pairs(pairs)
    assert split.name == "split"
    assert split.index.equals(pairs.index)
    assert split.value_counts().to_dict() == {"train": 266, "val": 38, "test": 78}
    assert split.attrs["age_bins"] == 4


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_split_pairs_never_separates_a_pair(seed):
    pairs = make_pairs(57, seed=seed)
    split = cc.split_pairs(pairs, seed=seed)
    assert (pair_splits(pairs, split).map(len) == 1).all()
    cases = split[pairs["role"] == "case"].value_counts()
    controls = split[pairs["role"] == "control"].value_counts()
    pd.testing.assert_series_equal(cases, controls)


def test_split_pairs_is_stratified_by_age():
    pairs = make_pairs(400, seed=5)
    split = cc.split_pairs(pairs, seed=11)
    pair_age = pairs.groupby("pair_id")["age"].mean()
    quartile = pd.qcut(pair_age, 4, labels=False)
    per_pair = pairs.groupby("pair_id").apply(lambda g: split[g.index[0]])
    for q in range(4):
        in_q = per_pair[quartile == q]
        counts = in_q.value_counts()
        assert abs(counts["test"] - 0.2 * len(in_q)) <= 1, (q, counts.to_dict())
        assert abs(counts["val"] - 0.1 * len(in_q)) <= 1, (q, counts.to_dict())
    mean_age = pairs["age"].groupby(split).mean()
    assert (mean_age - pairs["age"].mean()).abs().max() < 1.0


def test_split_pairs_is_seeded_and_independent_of_row_order():
    pairs = make_pairs(60, seed=2)
    first = cc.split_pairs(pairs, seed=3)
    shuffled = pairs.sample(frac=1.0, random_state=0)
    pd.testing.assert_series_equal(cc.split_pairs(shuffled, seed=3).loc[pairs.index], first)
    assert not cc.split_pairs(pairs, seed=4).equals(first)


def test_split_pairs_shuffles_pairs_within_an_age_bin():
    pairs = make_pairs(60, seed=2)
    ever_test = set()
    for seed in range(40):
        split = cc.split_pairs(pairs, seed=seed)
        ever_test |= set(pairs.loc[split == "test", "pair_id"])
    assert len(ever_test) == 60  # no pair is kept out of the test split by its id


def test_split_pairs_uses_fewer_age_bins_for_few_pairs_and_allows_no_val():
    pairs = make_pairs(25)
    assert cc.split_pairs(pairs).attrs["age_bins"] == 2  # 25 // 10 pairs per bin
    assert cc.split_pairs(pairs, n_age_bins=1).attrs["age_bins"] == 1
    split = cc.split_pairs(pairs, val=0.0, test=0.2)
    assert split.value_counts().to_dict() == {"train": 40, "test": 10}


def test_split_pairs_rejects_bad_parameters():
    pairs = make_pairs(20)
    for value in (-0.1, 1.0, float("nan"), "0.1"):
        with pytest.raises(ValueError, match=r"split_pairs: val"):
            cc.split_pairs(pairs, val=value)
        with pytest.raises(ValueError, match=r"split_pairs: test"):
            cc.split_pairs(pairs, test=value)
    with pytest.raises(ValueError, match=r"val \+ test = 1 must be < 1"):
        cc.split_pairs(pairs, val=0.5, test=0.5)
    with pytest.raises(ValueError, match="n_age_bins"):
        cc.split_pairs(pairs, n_age_bins=0)
    with pytest.raises(ValueError, match="'train' split would be empty with 2 pairs"):
        cc.split_pairs(make_pairs(2))
    bad = pairs.drop(index="c003")
    with pytest.raises(ValueError, match="pair 'pair_003'"):
        cc.split_pairs(bad)


# --------------------------------------------------------------------------- leakage
def test_check_pairs_together_names_a_separated_pair():
    pairs = make_pairs(6)
    split = pd.Series("train", index=pairs.index, name="split")
    cc.check_pairs_together(pairs, split)
    split["c004"] = "test"
    with pytest.raises(LeakageError) as err:
        cc.check_pairs_together(pairs, split)
    message = str(err.value)
    assert "1 matched pair(s)" in message
    assert "'pair_004': 'a004' (case) in 'train', 'c004' (control) in 'test'" in message
    with pytest.raises(LeakageError, match="pair_004"):  # a split column of the pairs table
        cc.check_pairs_together(pairs.assign(given=split), "given")
    with pytest.raises(ValueError, match="patient 'a005' has no split"):
        cc.check_pairs_together(pairs, split.drop(index="a005"))


# --------------------------------------------------------------------------- images
def test_image_split_aligns_to_the_manifest_and_covers_every_image():
    df = make_manifest(("p1", 50.0, 1), ("p2", 52.0, 0), ("p3", 60.0, 1), ("p4", 59.0, 0))
    patient_split = pd.Series({"p1": "test", "p2": "test", "p3": "train", "p4": "train"})
    split = cc.image_split(df, patient_split)
    assert split.index.equals(df.index)
    assert split.name == "split"
    assert (split == df["patient_id"].map(patient_split)).all()
    assert split.groupby(df["patient_id"]).size().tolist() == [4, 4, 4, 4]
    with pytest.raises(ValueError, match="patient 'p4' of the manifest has no split"):
        cc.image_split(df, patient_split.drop(index="p4"))


def test_the_pipeline_reproduces_the_thesis_split_table():
    df = make_manifest(*cohort(191, 191, seed=1))
    patients = cc.patient_table(df)
    assert patients["case"].sum() == 191
    pairs = cc.match_controls(patients, max_age_gap=float("inf"))
    split = cc.split_pairs(pairs)
    summary = cc.split_summary(pairs, split, df)
    columns = ["patients", "cases", "controls", "pairs", "images"]
    pd.testing.assert_frame_equal(summary[columns], cc.PAPER_SPLIT[columns])
    assert summary["positive_images"].tolist() == [266, 38, 78, 382]
    assert summary.at["total", "positive_images"] == cc.PAPER_SPLIT.at["total", "positive_images"]
    mean_age = pairs["age"].groupby(split).mean()
    assert summary.loc[["train", "val", "test"], "mean_age"].tolist() == pytest.approx(
        mean_age.loc[["train", "val", "test"]].tolist()
    )
    images = cc.image_split(df, split)
    assert images.value_counts().to_dict() == {"train": 1064, "val": 152, "test": 312}
    assert "mean_age" in cc.split_summary(pairs, split).columns
