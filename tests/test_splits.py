"""Tests for mammo_helpers.data.splits (patient-grouped stratified splits, leakage check)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.model_selection import StratifiedGroupKFold

from mammo_helpers.data.splits import (
    LeakageError,
    _fold_fraction,
    assign_split_column,
    check_no_leakage,
    longitudinal_patients,
    patient_kfold,
    patient_strata,
    sample_patients,
    train_val_test_split,
    undersample_to_mix,
)


def cohort(n_patients: int = 400, positive: float = 0.15, seed: int = 0) -> pd.DataFrame:
    """Image rows: 1-8 images per patient; positive patients have cancer on some images."""
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(n_patients):
        is_pos = rng.random() < positive
        n_img = int(rng.integers(1, 9))
        pos_img = rng.integers(0, n_img) if is_pos else -1
        density = rng.choice(["A", "B", "C", "D", None], p=[0.1, 0.3, 0.35, 0.2, 0.05])
        for i in range(n_img):
            rows.append(
                {
                    "patient_id": f"P{p:04d}",
                    "image_id": f"P{p:04d}_{i}",
                    "cancer": int(i == pos_img),
                    "density": density,
                }
            )
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def big() -> pd.DataFrame:
    return cohort()


def patient_positive(df: pd.DataFrame) -> pd.Series:
    return df.groupby("patient_id")["cancer"].max()


# --------------------------------------------------------------------------- strata
def test_patient_strata_max_mode_and_missing():
    df = pd.DataFrame(
        {
            "patient_id": ["a", "a", "b", "b", "b", "c", "c", "d"],
            "cancer": pd.array([0, 1, 0, 0, pd.NA, pd.NA, pd.NA, 0], dtype="Int64"),
            "density": ["C", "B", "D", "D", "A", None, "B", None],
            "flag": [True, False, False, False, False, False, False, False],
        }
    )
    assert patient_strata(df, "cancer").to_dict() == {
        "a": "1",
        "b": "0",
        "c": "<missing>",
        "d": "0",
    }
    # mode; the tie in 'a' (B vs C) goes to the smallest value
    assert patient_strata(df, "density").to_dict() == {
        "a": "B",
        "b": "D",
        "c": "B",
        "d": "<missing>",
    }
    assert patient_strata(df, "flag").to_dict() == {"a": "1", "b": "0", "c": "0", "d": "0"}
    assert set(patient_strata(df, None)) == {"all"}


# --------------------------------------------------------------------------- k-fold
def test_kfold_covers_each_patient_exactly_once(big):
    fold = patient_kfold(big, n_splits=5, stratify="cancer", seed=0)
    assert fold.shape == (len(big),) and set(np.unique(fold)) == {0, 1, 2, 3, 4}
    per_patient = pd.Series(fold).groupby(big["patient_id"].to_numpy()).nunique()
    assert (per_patient == 1).all() and len(per_patient) == big["patient_id"].nunique()
    images = np.bincount(fold)
    assert images.min() > 0.8 * len(big) / 5 and images.max() < 1.2 * len(big) / 5


def test_kfold_is_sklearn_stratified_group_kfold_and_ignores_row_order(big):
    fold = patient_kfold(big, n_splits=5, stratify="cancer", seed=7)
    shuffled = big.sample(frac=1.0, random_state=1)
    # independent reference: sklearn directly on the shuffled rows, y = patient max
    y = shuffled.groupby("patient_id")["cancer"].transform("max").to_numpy()
    cv = StratifiedGroupKFold(n_splits=5, shuffle=True, random_state=7)
    ref = np.empty(len(shuffled), dtype=int)
    for i, (_, test_idx) in enumerate(cv.split(shuffled, y, groups=shuffled["patient_id"])):
        ref[test_idx] = i
    ours = dict(zip(big["patient_id"], fold, strict=True))
    theirs = dict(zip(shuffled["patient_id"], ref, strict=True))
    assert ours == theirs
    # and the class proportion per fold matches what sklearn produced
    pos = patient_positive(big)
    ours_rate = pd.Series(ours).groupby(level=0).first().groupby(pos).value_counts()
    theirs_rate = pd.Series(theirs).groupby(level=0).first().groupby(pos).value_counts()
    pd.testing.assert_series_equal(ours_rate, theirs_rate)


def test_kfold_stratification_keeps_positive_rate(big):
    pos = patient_positive(big)
    overall = pos.mean()
    for seed in (0, 1, 2):
        fold = patient_kfold(big, n_splits=5, seed=seed)
        by_patient = pd.Series(fold, index=big["patient_id"]).groupby(level=0).first()
        rates = pos.groupby(by_patient).mean()
        # stratified: ~0.01 off; unstratified folds of this cohort are 0.04-0.07 off
        assert (rates - overall).abs().max() < 0.02, rates


def test_kfold_seed_determinism(big):
    a = patient_kfold(big, seed=3)
    assert np.array_equal(a, patient_kfold(big, seed=3))
    assert not np.array_equal(a, patient_kfold(big, seed=4))


def test_kfold_stratify_density_with_missing_stratum(big):
    fold = patient_kfold(big, n_splits=4, stratify="density", seed=0)
    strata = patient_strata(big, "density")
    by_patient = pd.Series(fold, index=big["patient_id"]).groupby(level=0).first()
    table = pd.crosstab(strata, by_patient)
    assert "<missing>" in table.index
    # each stratum is spread over the folds: counts differ by at most a few patients
    assert (table.max(axis=1) - table.min(axis=1)).max() <= 3, table


def test_kfold_errors(big):
    small = big[big["patient_id"].isin(["P0000", "P0001", "P0002"])]
    with pytest.raises(ValueError, match=r"3 patient\(s\), but n_splits=5 needs at least 5"):
        patient_kfold(small, n_splits=5, stratify=None)
    positives = patient_positive(big)
    keep = list(positives[positives == 0].index) + list(positives[positives == 1].index[:2])
    few = big[big["patient_id"].isin(keep)]
    with pytest.raises(ValueError) as info:
        patient_kfold(few, n_splits=5)
    msg = str(info.value)
    assert "cannot stratify by 'cancer'" in msg and "'1': 2" in msg, msg
    assert f"'0': {len(keep) - 2}" in msg and "n_splits=5" in msg, msg
    with pytest.raises(ValueError, match="'birads'"):
        patient_kfold(big, stratify="birads")
    with pytest.raises(ValueError, match="n_splits must be an integer >= 2"):
        patient_kfold(big, n_splits=1)
    with pytest.raises(ValueError, match="has no patient_id"):
        patient_kfold(big.assign(patient_id=[None] + list(big["patient_id"][1:])))


# --------------------------------------------------------------------------- train/val/test
def split_by_patient(df: pd.DataFrame, split: pd.Series) -> pd.Series:
    return split.groupby(df["patient_id"]).agg(lambda s: set(s))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_train_val_test_fractions_and_stratification(big, seed):
    split = train_val_test_split(big, val=0.1, test=0.2, seed=seed)
    assert split.index.equals(big.index) and split.name == "split"
    per = split_by_patient(big, split)
    assert (per.map(len) == 1).all()
    label = per.map(lambda s: next(iter(s)))
    shares = label.value_counts(normalize=True)
    assert shares["test"] == pytest.approx(0.2, abs=0.03)
    assert shares["val"] == pytest.approx(0.1, abs=0.03)
    pos = patient_positive(big)
    rates = pos.groupby(label).mean()
    # stratified: ~0.01 off; unstratified splits of this cohort are up to 0.13 off
    assert (rates - pos.mean()).abs().max() < 0.02, rates


@pytest.mark.parametrize(("val", "test"), [(0.2, 0.4), (0.0, 0.3), (0.15, 0.0), (0.05, 0.05)])
def test_other_fractions(big, val, test):
    split = train_val_test_split(big, val=val, test=test, seed=1)
    label = split_by_patient(big, split).map(lambda s: next(iter(s)))
    shares = label.value_counts(normalize=True)
    assert shares.get("test", 0.0) == pytest.approx(test, abs=0.03)
    assert shares.get("val", 0.0) == pytest.approx(val, abs=0.03)


def test_train_val_test_seed_determinism(big):
    a = train_val_test_split(big, seed=5)
    pd.testing.assert_series_equal(a, train_val_test_split(big, seed=5))
    assert not a.equals(train_val_test_split(big, seed=6))


def test_train_val_test_errors(big):
    with pytest.raises(ValueError, match=r"test=1\.0 must be in \[0, 1\)"):
        train_val_test_split(big, test=1.0)
    with pytest.raises(ValueError, match=r"val \+ test = 0"):
        train_val_test_split(big, val=0, test=0)
    positives = patient_positive(big)
    keep = list(positives[positives == 0].index[:50]) + list(positives[positives == 1].index[:2])
    with pytest.raises(ValueError) as info:
        train_val_test_split(big[big["patient_id"].isin(keep)])
    msg = str(info.value)
    assert "cannot stratify by 'cancer'" in msg and "'1': 2" in msg and "train/val/test" in msg


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"seed": -1}, r"seed must be an integer in \[0, 2\*\*32\)"),
        ({"seed": 1.5}, "seed must be an integer"),
        ({"seed": True}, "seed must be an integer"),
        ({"val": float("nan")}, r"val=nan must be in \[0, 1\)"),
        ({"test": "0.2"}, "test must be a number"),
    ],
)
def test_bad_seeds_and_fractions_are_named_before_sklearn_sees_them(big, kwargs, pattern):
    with pytest.raises(ValueError, match="^train_val_test_split: " + pattern):
        train_val_test_split(big, **kwargs)
    if "seed" in kwargs:
        with pytest.raises(ValueError, match="^patient_kfold: " + pattern):
            patient_kfold(big, **kwargs)


def test_fractions_summing_to_one_and_missing_columns_are_refused(big):
    with pytest.raises(ValueError, match=r"val \+ test = 1\.0 must be in \(0, 1\)"):
        train_val_test_split(big, val=0.5, test=0.5)
    with pytest.raises(ValueError, match=r"^train_val_test_split: column\(s\) 'nope' not in"):
        train_val_test_split(big, stratify="nope")


@pytest.mark.parametrize(
    ("fraction", "expected"),
    [
        (0.2, (1, 5)),
        (0.3, (3, 10)),
        (0.6, (3, 5)),
        (0.01, (1, 100)),
        (0.02, (1, 50)),
        (0.04, (1, 20)),
    ],
)
def test_fold_fraction_hand_cases(fraction, expected):
    """m of k folds closest to the fraction with k <= 20; where that is 0, one of 1/fraction."""
    assert _fold_fraction(fraction) == expected


@pytest.mark.parametrize(
    ("column", "values", "pattern"),
    [
        ("cancer", 0, "cannot stratify by 'cancer': it is '0' for every patient"),
        ("density", None, "cannot stratify by 'density': it has no value for any patient"),
    ],
)
def test_stratifying_on_one_class_is_refused_not_silently_ignored(big, column, values, pattern):
    flat = big.assign(**{column: values})
    with pytest.raises(ValueError, match=pattern):
        train_val_test_split(flat, stratify=column)
    with pytest.raises(ValueError, match=pattern):
        patient_kfold(flat, stratify=column)
    assert set(train_val_test_split(flat, stratify=None)) == {"train", "val", "test"}


def test_sample_patients_keeps_whole_patients_and_ignores_row_order(big):
    few = sample_patients(big, 30, seed=4)
    assert few.patient_id.nunique() == 30
    sizes = big.groupby("patient_id").size()
    assert (few.groupby("patient_id").size() == sizes[few.patient_id.unique()]).all()
    shuffled = big.sample(frac=1.0, random_state=1)
    assert set(sample_patients(shuffled, 30, seed=4).patient_id) == set(few.patient_id)
    assert set(sample_patients(big, 30, seed=5).patient_id) != set(few.patient_id)
    assert sample_patients(big, 10**6) is big
    for bad in (0, 2.5, True):
        with pytest.raises(ValueError, match="N_PATIENTS"):
            sample_patients(big, bad)


def test_assign_split_column(big):
    before = big.copy()
    out = assign_split_column(big, stratify="density", seed=2)
    pd.testing.assert_frame_equal(big, before)
    pd.testing.assert_series_equal(
        out["split"], train_val_test_split(big, stratify="density", seed=2)
    )
    check_no_leakage(out)
    other = assign_split_column(big, val=0, test=0.5, stratify=None, split_col="part")
    assert set(other["part"]) == {"train", "test"}


@st.composite
def small_cohorts(draw):
    n = draw(st.integers(1, 30))
    images = draw(st.lists(st.integers(1, 5), min_size=n, max_size=n))
    labels = draw(st.lists(st.sampled_from([0, 1, None]), min_size=n, max_size=n))
    ids = draw(st.permutations([f"p{i}" for i in range(n)]))
    rows = [
        {"patient_id": pid, "cancer": lab}
        for pid, k, lab in zip(ids, images, labels, strict=True)
        for _ in range(k)
    ]
    df = pd.DataFrame(rows)
    df["cancer"] = df["cancer"].astype("Int64")
    return df.sample(frac=1.0, random_state=draw(st.integers(0, 100))).reset_index(drop=True)


@settings(max_examples=40, deadline=None)
@given(df=small_cohorts(), seed=st.integers(0, 2**16))
def test_random_cohorts_never_leak(df, seed):
    strata = patient_strata(df, "cancer")  # "0", "1", "<missing>" per patient
    counts = strata.value_counts()
    try:
        split = train_val_test_split(df, seed=seed)
    except ValueError as exc:
        # refusing is allowed only for tiny cohorts, classes too small for 3 splits, or a
        # single class (stratifying on it would silently not stratify)
        assert len(strata) < 10 or counts.min() < 3 or len(counts) < 2, exc
        assert "train_val_test_split" in str(exc)
    else:
        assert (split_by_patient(df, split).map(len) == 1).all()
        assert set(split) == {"train", "val", "test"}
    try:
        fold = patient_kfold(df, n_splits=3, seed=seed)
    except ValueError as exc:
        assert counts.min() < 3 or len(counts) < 2, exc
    else:
        assert (pd.Series(fold).groupby(df["patient_id"]).nunique() == 1).all()
        assert set(fold) == {0, 1, 2}


# --------------------------------------------------------------------------- leakage
def test_check_no_leakage_names_patients():
    df = pd.DataFrame(
        {
            "patient_id": ["a", "a", "b", "b", "c", "c", "d"],
            "split": ["train", "test", "val", "val", "train", "val", None],
        }
    )
    with pytest.raises(LeakageError) as info:
        check_no_leakage(df)
    msg = str(info.value)
    assert isinstance(info.value, ValueError)
    assert "2 patient_id value(s)" in msg
    assert "'a' in test, train" in msg and "'c' in train, val" in msg and "'b'" not in msg
    check_no_leakage(df[df["patient_id"].isin(["b", "d"])])
    many = pd.DataFrame(
        {"patient_id": [f"x{i}" for i in range(12)] * 2, "split": ["a"] * 12 + ["b"] * 12}
    )
    with pytest.raises(LeakageError, match=r"\(and 2 more\)"):
        check_no_leakage(many)
    with pytest.raises(ValueError, match="'fold'"):
        check_no_leakage(df, split_col="fold")


# --------------------------------------------------------------------------- paper 01
def test_longitudinal_patients_have_several_exams():
    df = pd.DataFrame(
        {
            "patient_id": ["a", "a", "a", "b", "b", "c", "c"],
            "study_id": ["s1", "s1", "s2", "t1", "t1", "u1", "u2"],
        }
    )
    assert longitudinal_patients(df) == ["a", "c"]


def test_always_train_patients_get_fold_minus_one_and_the_rest_is_unchanged(big):
    keep = sorted(big.patient_id.unique())[::7]
    fold = patient_kfold(big, n_splits=5, stratify="cancer", seed=2, always_train=keep)
    fixed = big.patient_id.isin(keep).to_numpy()
    assert (fold[fixed] == -1).all() and (fold[~fixed] >= 0).all()
    rest = big[~fixed]
    assert np.array_equal(fold[~fixed], patient_kfold(rest, n_splits=5, stratify="cancer", seed=2))
    assert np.array_equal(patient_kfold(big, seed=2, always_train=[]), patient_kfold(big, seed=2))


@pytest.mark.parametrize(
    "always, match", [(["nobody"], r"unknown patient\(s\) \['nobody'\]"), ("P0001", "collection")]
)
def test_always_train_refuses_unknown_patients(big, always, match):
    with pytest.raises(ValueError, match=match):
        patient_kfold(big, always_train=always)


def _density_images(counts, seed=0):
    rows = [
        {"patient_id": f"P{i // 4}", "density": d}
        for i, d in enumerate(
            np.random.default_rng(seed).permutation(
                [d for d, n in counts.items() for _ in range(n)]
            )
        )
    ]
    return pd.DataFrame(rows)


def test_undersampling_follows_the_mix_and_keeps_the_limiting_class_whole():
    df = _density_images({"A": 500, "B": 1000, "C": 900, "D": 200, None: 30})
    paper = {"A": 4000, "B": 6000, "C": 6000, "D": 3000}
    out = undersample_to_mix(df, "density", paper, seed=1)
    # scale = min(500/4000, 1000/6000, 900/6000, 200/3000) = 1/15: every D image is kept
    assert out.density.value_counts().to_dict() == {"A": 267, "B": 400, "C": 400, "D": 200}
    assert out.index.isin(df.index).all() and out.index.is_monotonic_increasing
    assert out.attrs["undersampling"]["before"] == {"A": 500, "B": 1000, "C": 900, "D": 200}
    again = undersample_to_mix(df, "density", paper, seed=1)
    assert again.index.equals(out.index)
    assert not undersample_to_mix(df, "density", paper, seed=2).index.equals(out.index)


@pytest.mark.parametrize(
    "mix, match",
    [
        ({"A": 4, "E": 1}, r"no image of class\(es\) \['E'\]"),
        ({"A": 0, "B": 1}, r"mix\['A'\] must be an integer >= 1, got 0"),
        ({"A": 2.5, "B": 1}, "must be an integer"),
    ],
)
def test_undersampling_refuses_impossible_mixes(mix, match):
    with pytest.raises(ValueError, match=match):
        undersample_to_mix(_density_images({"A": 10, "B": 10}), "density", mix)


def test_require_classes_per_fold_names_the_fold_part_and_class():
    from mammo_helpers.data.splits import require_classes_per_fold

    classes = ["A", "B", "C"]
    y = np.array([0, 1, 2, 0, 1, 2, 0])
    require_classes_per_fold(y, np.array([0, 0, 0, 1, 1, 1, -1]), classes)
    with pytest.raises(
        ValueError, match=r"fold 1: the validation part has no image of class\(es\) \['C'\]"
    ):
        require_classes_per_fold(y[:6].tolist() + [2], np.array([0, 0, 0, 1, 1, 0, -1]), classes)
    with pytest.raises(
        ValueError, match=r"fold 0: the training part has no image of class\(es\) \['C'\]"
    ):
        require_classes_per_fold(np.array([0, 1, 2, 0, 1]), np.array([1, 1, 0, 0, 0]), classes)
    with pytest.raises(ValueError, match="3 labels for 2"):
        require_classes_per_fold(y[:3], np.array([0, 1]), classes)
