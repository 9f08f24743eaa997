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


def test_patient_table_columns_and_dtypes():
    """Exactly the documented columns; the case flag and the counts are integers."""
    table = cc.patient_table(make_manifest(("p1", 55.0, 1), ("p2", 61.0, 0)))
    assert list(table.columns) == ["age", "case", "n_positive_images", "study_id"]
    assert table["case"].dtype == "int64"
    assert table["n_positive_images"].dtype == "int64"


def test_patient_table_cancer_label_other_than_0_or_1_names_patient_and_image():
    df = make_manifest(("p1", 50.0, 1), ("p2", 52.0, 0))
    df.loc[df["image_id"] == "p2_s_R_CC", "cancer"] = 2
    with pytest.raises(ValueError, match=r"patient 'p2' has image 'p2_s_R_CC' with cancer=\S*2"):
        cc.patient_table(df)


def test_patient_table_errors_report_the_named_patients_own_values():
    """With two bad patients, the one named (the smallest id, not the first row) comes
    with its own studies / ages, whatever the row order."""
    rows = [r for i in range(3) for r in image_rows("p3", 60.0, 0, study=f"s3_{i}")]
    rows += image_rows("p2", 52.0, 0, study="s_2019") + image_rows("p2", 52.0, 0, study="s_2021")
    df = pd.DataFrame(rows + image_rows("p1", 50.0, 1))  # p3's rows first
    with pytest.raises(ValueError, match=r"patient 'p2' has 2 studies \('s_2019', 's_2021'\)"):
        cc.patient_table(df)
    p3, p2 = image_rows("p3", 60.0, 0), image_rows("p2", 52.0, 0)
    p3[0]["age"], p2[0]["age"] = 65.0, 53.0
    df = pd.DataFrame(p3 + p2 + image_rows("p1", 50.0, 1))
    with pytest.raises(ValueError, match=r"patient 'p2' has different ages.*\(52 to 53\)"):
        cc.patient_table(df)


def test_patient_table_error_counts_the_bad_patients():
    df = make_manifest(("p1", 50.0, 1), ("p3", float("nan"), 0), ("p2", float("nan"), 0))
    with pytest.raises(ValueError, match=r"patient 'p2' has no age \(2 patients"):
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


def test_match_controls_drop_unmatched_goes_on_with_the_other_cases():
    """An unmatched case visited early does not stop the matching of the later cases."""
    patients = patients_frame(
        {"k50": 50, "k60": 60, "k90": 90, "c51": 51, "c61": 61}, {"k50", "k60", "k90"}
    )
    for seed in range(10):
        matched = cc.match_controls(patients, seed=seed, drop_unmatched=True)
        assert pairs_of(matched) == {"k50": "c51", "k60": "c61"}, seed
        assert matched.attrs["unmatched"] == ["k90"]
        assert matched.attrs["unused_controls"] == 0


def test_match_controls_accepts_a_zero_gap_for_exact_age_matches():
    patients = patients_frame({"k": 50, "c": 50}, {"k"})
    assert pairs_of(cc.match_controls(patients, max_age_gap=0)) == {"k": "c"}
    with pytest.raises(ValueError, match="case 'k'"):
        cc.match_controls(patients_frame({"k": 50, "c": 50.5}, {"k"}), max_age_gap=0)


def test_match_controls_records_the_caliper_and_adds_str_columns():
    matched = cc.match_controls(patients_frame({"k": 50, "c": 52}, {"k"}), max_age_gap=3)
    assert matched.attrs["max_age_gap"] == 3.0
    assert matched["pair_id"].dtype == "str"  # plain str, like the patient ids
    assert matched["role"].dtype == "str"


def test_match_controls_default_seed_is_0():
    ids = cohort(30, 45, seed=3)
    patients = patients_frame({p: a for p, a, _ in ids}, {p for p, _, c in ids if c})
    default = cc.match_controls(patients, max_age_gap=10)
    pd.testing.assert_frame_equal(default, cc.match_controls(patients, max_age_gap=10, seed=0))
    assert not default.equals(cc.match_controls(patients, max_age_gap=10, seed=1))


def test_match_controls_rejects_a_bad_case_flag_or_table():
    patients = patients_frame({"k": 50, "c1": 51, "c2": 52}, {"k"})
    patients.loc["c2", "case"] = 2
    with pytest.raises(ValueError, match=r"patient 'c2' has case=\S*2"):
        cc.match_controls(patients)
    with pytest.raises(ValueError, match=r"'case'"):  # names the missing column
        cc.match_controls(patients.drop(columns="case"))
    twice = pd.concat([patients.iloc[:2], patients.iloc[[1]]])
    with pytest.raises(ValueError, match=r"patient 'c1' has several rows"):
        cc.match_controls(twice)
    with pytest.raises(TypeError, match="DataFrame"):
        cc.match_controls(patients.to_dict())


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


def test_check_pairs_names_a_patient_without_a_valid_role_or_case_flag():
    pairs = make_pairs(3)
    wrong_role = pairs.copy()
    wrong_role.loc["c001", "role"] = "ctrl"
    with pytest.raises(ValueError, match=r"patient 'c001' has pair_id='pair_001', role='ctrl'"):
        cc.check_pairs(wrong_role)
    no_flag = pairs.copy()
    no_flag.loc["c002", "case"] = np.nan  # an unknown flag is not a control's 0
    with pytest.raises(ValueError, match=r"patient 'c002' is its control"):
        cc.check_pairs(no_flag)


def test_check_pairs_names_the_first_bad_pair_whatever_the_row_order():
    pairs = make_pairs(4).drop(index=["c001", "c003"]).iloc[::-1]
    with pytest.raises(ValueError, match=r"pair 'pair_001' has 'a001' \(case\) "):
        cc.check_pairs(pairs)


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
    for value in (0, 2.5, True, "4"):
        with pytest.raises(ValueError, match=r"\bn_age_bins\b"):
            cc.split_pairs(pairs, n_age_bins=value)
    with pytest.raises(ValueError, match="'train' split would be empty with 2 pairs"):
        cc.split_pairs(make_pairs(2))
    bad = pairs.drop(index="c003")
    with pytest.raises(ValueError, match="pair 'pair_003'"):
        cc.split_pairs(bad)


def test_apportion_by_largest_remainders_against_hand_computed_cases():
    rng = np.random.default_rng(0)
    # 5 x 13/25 = 2.6 and 5 x 12/25 = 2.4: both floor to 2, the larger remainder (.6) wins
    assert cc._apportion(5, np.array([13, 12]), np.array([13, 12]), rng).tolist() == [3, 2]
    # 2 x 11/21 = 1.05 and 2 x 10/21 = 0.95: the remainder .95 wins, not the larger quota
    assert cc._apportion(2, np.array([11, 10]), np.array([11, 10]), rng).tolist() == [1, 1]
    # quotas 1.2, 1.2, 0.6 with no room in bin 1: its seat goes to the next remainders
    share = cc._apportion(3, np.array([4, 4, 2]), np.array([4, 0, 2]), rng)
    assert share.tolist() == [2, 0, 1]


def test_apportion_gives_the_seats_to_the_largest_exact_remainders():
    """Random cases checked against the definition, in exact integer arithmetic: the
    shares sum to the total, each is its quota's floor or ceiling, and a bin rounded up
    never has a smaller remainder than a bin rounded down."""
    rng = np.random.default_rng(1)
    for _ in range(200):
        sizes = rng.integers(1, 30, int(rng.integers(2, 7)))
        total = int(rng.integers(0, sizes.sum() + 1))
        share = cc._apportion(total, sizes, sizes, rng)
        floor, rest = divmod(total * sizes, sizes.sum())
        assert share.sum() == total
        up = share - floor
        assert set(up.tolist()) <= {0, 1} and (up[rest == 0] == 0).all()
        if up.any() and not up.all():
            assert rest[up == 1].min() >= rest[up == 0].max(), (total, sizes, share)


def test_apportion_breaks_equal_remainders_at_random():
    seen = {
        tuple(cc._apportion(1, np.array([5, 5]), np.array([5, 5]), np.random.default_rng(s)))
        for s in range(20)
    }
    assert seen == {(1, 0), (0, 1)}


def test_split_pairs_shares_each_split_over_the_age_bins_by_largest_remainders():
    """25 pairs, 2 age bins: the 13 youngest and the 12 oldest pairs. 5 test pairs: 2.6 and
    2.4 -> 3 and 2; 3 val pairs: 1.56 and 1.44 -> 2 and 1; for every seed."""
    pairs = make_pairs(25, seed=4)
    pair_age = pairs.groupby("pair_id")["age"].mean().sort_values()
    young = set(pair_age.index[:13])
    for seed in range(5):
        split = cc.split_pairs(pairs, seed=seed)
        assert split.attrs["age_bins"] == 2
        per_pair = split.groupby(pairs["pair_id"]).first()
        counts = per_pair.groupby(per_pair.index.isin(young)).value_counts()
        assert counts[True].to_dict() == {"train": 8, "test": 3, "val": 2}
        assert counts[False].to_dict() == {"train": 9, "test": 2, "val": 1}


def test_split_pairs_sizes_the_age_bins_for_the_smallest_split_even_train():
    """train = 0.1 is the smallest split: bins of >= 10 pairs, so 25 pairs give 2 bins."""
    split = cc.split_pairs(make_pairs(25), val=0.3, test=0.6)
    assert split.attrs["age_bins"] == 2
    assert split.attrs["pairs"] == {"train": 2, "val": 8, "test": 15}


def test_split_pairs_records_the_pairs_per_split_and_returns_str():
    split = cc.split_pairs(make_pairs(191))
    assert split.attrs["pairs"] == {"train": 133, "val": 19, "test": 39}
    assert split.dtype == "str"


def test_split_pairs_default_seed_is_0():
    pairs = make_pairs(60, seed=2)
    pd.testing.assert_series_equal(cc.split_pairs(pairs), cc.split_pairs(pairs, seed=0))
    assert not cc.split_pairs(pairs).equals(cc.split_pairs(pairs, seed=1))


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


def test_check_pairs_together_names_the_first_ten_separated_pairs_by_id():
    pairs = make_pairs(12).iloc[::-1]  # rows in reverse order: the message sorts by pair
    for n_separated, more in ((1, None), (10, None), (11, "and 1 more")):
        split = pd.Series("train", index=pairs.index)
        split[[f"c{i:03d}" for i in range(n_separated)]] = "test"
        with pytest.raises(LeakageError) as err:
            cc.check_pairs_together(pairs, split)
        message = str(err.value)
        assert f"{n_separated} matched pair(s)" in message
        named = re.findall(r"'(pair_\d+)':", message)
        assert named == [f"pair_{i:03d}" for i in range(min(n_separated, 10))]
        if more:
            assert more in message
        else:
            assert "more" not in message


def test_check_pairs_together_rejects_a_bad_split_argument():
    pairs = make_pairs(3)
    split = pd.Series("train", index=pairs.index)
    twice = pd.concat([split, split.iloc[[2]]])
    with pytest.raises(ValueError, match=r"patient 'a001' appears twice"):
        cc.check_pairs_together(pairs, twice)
    with pytest.raises(TypeError, match="Series"):
        cc.check_pairs_together(pairs, split.tolist())


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


def test_image_split_is_each_images_patient_split_as_str():
    df = make_manifest(("p1", 50.0, 1), ("p2", 52.0, 0))
    split = cc.image_split(df, pd.Series({"p1": "test", "p2": "train"}))
    expected = df["patient_id"].map({"p1": "test", "p2": "train"}).astype("str")
    pd.testing.assert_series_equal(split, expected.rename("split"))


def test_image_split_refuses_a_patient_listed_twice():
    df = make_manifest(("p1", 50.0, 1), ("p2", 52.0, 0))
    patient_split = pd.Series(["test", "train", "val"], index=["p1", "p2", "p2"])
    with pytest.raises(ValueError, match=r"patient 'p2' appears twice"):
        cc.image_split(df, patient_split)


# --------------------------------------------------------------------------- summary
def three_pairs():
    """Pairs 0 and 1 in train, pair 2 in test; ages 50/52, 60/61, 70/74."""
    ages = {"a000": 50, "c000": 52, "a001": 60, "c001": 61, "a002": 70, "c002": 74}
    pairs = pd.DataFrame(
        {
            "age": [float(a) for a in ages.values()],
            "case": [1, 0] * 3,
            "pair_id": [f"pair_{i:03d}" for i in range(3) for _ in range(2)],
            "role": ["case", "control"] * 3,
        },
        index=pd.Index(list(ages), name="patient_id"),
    )
    split = pd.Series(["train"] * 4 + ["test"] * 2, index=pairs.index)
    return pairs, split


def pair_images(pairs) -> list:
    """The four-view image rows of each paired patient (cases positive in L-CC, L-MLO)."""
    return [image_rows(p, row.age, row.case) for p, row in pairs.iterrows()]


def test_split_summary_counts_by_hand():
    pairs, split = three_pairs()
    manifest = make_manifest(*pair_images(pairs))
    summary = cc.split_summary(pairs, split, manifest)
    assert summary.index.tolist() == ["train", "test", "total"]  # no val row: no val pair
    assert summary["patients"].tolist() == [4, 2, 6]
    assert summary["cases"].tolist() == [2, 1, 3]
    assert summary["controls"].tolist() == [2, 1, 3]
    assert summary["pairs"].tolist() == [2, 1, 3]
    assert summary["images"].tolist() == [16, 8, 24]
    assert summary["positive_images"].tolist() == [4, 2, 6]  # two positive views per case
    assert summary["mean_age"].tolist() == pytest.approx([55.75, 72.0, 61.1666667])


def test_split_summary_counts_a_separated_pairs_members_where_they_are():
    """A supplied split that separates a pair is summarised as it is (the check is
    check_pairs_together's): the case counts in one split, the control in the other."""
    pairs, split = three_pairs()
    split["c001"] = "val"
    summary = cc.split_summary(pairs, split)
    assert summary.index.tolist() == ["train", "val", "test", "total"]
    assert summary["cases"].tolist() == [2, 0, 1, 3]
    assert summary["controls"].tolist() == [1, 1, 1, 3]
    assert summary["pairs"].tolist() == [2, 1, 1, 3]


def test_split_summary_counts_only_the_pairs_four_view_labelled_positives():
    """Other views and unpaired patients are left out; an image without a label counts
    as an image but not as positive."""
    pairs, split = three_pairs()
    rows = pair_images(pairs)
    rows.append(image_rows("a000", 50.0, 1, views=(("L", "ML"),), positive=(("L", "ML"),)))
    rows.append(image_rows("unpaired", 66.0, 1))
    manifest = make_manifest(*rows)
    manifest.loc[manifest["image_id"] == "a002_s_L_CC", "cancer"] = pd.NA
    summary = cc.split_summary(pairs, split, manifest)
    assert summary["images"].tolist() == [16, 8, 24]
    assert summary["positive_images"].tolist() == [4, 1, 5]


def test_split_summary_without_ages_or_with_a_patient_missing_from_the_manifest():
    pairs, split = three_pairs()
    summary = cc.split_summary(pairs.drop(columns="age"), split)
    assert summary["patients"].tolist() == [4, 2, 6]
    assert summary["mean_age"].isna().all()
    manifest = make_manifest(*[(p, 50.0, 0) for p in pairs.index if p != "c002"])
    with pytest.raises(ValueError, match=r"patient 'c002' has no image in the manifest"):
        cc.split_summary(pairs, split, manifest)


def test_paper_split_holds_the_thesis_numbers():
    """266/38/78 patients (133/19/39 pairs) and 1,064/152/312 images; positive images for
    the whole cohort only. The builder is checked too (mutation testing changes functions,
    not values computed at import)."""
    for paper in (cc.PAPER_SPLIT, cc._paper_split()):
        assert paper.index.name == "split"
        assert list(paper.index) == ["train", "val", "test", "total"]
        assert paper["patients"].tolist() == [266, 38, 78, 382]  # the thesis's table
        assert paper["images"].tolist() == [1064, 152, 312, 1528]
        for column in ("cases", "controls"):
            assert paper[column].tolist() == paper["pairs"].tolist()  # matched 1:1
        assert (paper["patients"] == 2 * paper["pairs"]).all()
        assert (paper["images"] == 4 * paper["patients"]).all()  # four views each
        positives = paper["positive_images"]
        assert positives.dtype == "Int64" and positives.isna().tolist() == [True] * 3 + [False]
        assert positives["total"] == 382  # the thesis's malignant images
        assert (paper.drop(index="total").sum() == paper.loc["total"]).drop("positive_images").all()


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
