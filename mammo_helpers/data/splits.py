"""Patient-grouped, stratified splits with a built-in leakage check (notebooks 01-05).

Every split keeps all images of a patient together (sklearn ``StratifiedGroupKFold``
grouped by ``patient_id``) and is stratified by a patient-level label:

* numeric/boolean columns (``cancer``): the maximum over the patient's images
  (a patient with any positive image is positive);
* other columns (``density``, ``site``): the most frequent value (ties: smallest value);
* a patient whose values are all missing forms its own ``<missing>`` stratum.

Results depend only on the data and ``seed`` (not on row order).
"""

from __future__ import annotations

import warnings
from fractions import Fraction

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold

MISSING_STRATUM = "<missing>"
SPLIT_NAMES = ("train", "val", "test")


class LeakageError(ValueError):
    """A patient appears in more than one split; the message names the patient(s)."""


def _require_columns(df: pd.DataFrame, columns: list[str], caller: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(
            f"{caller}: column(s) {', '.join(map(repr, missing))} not in the manifest "
            f"(columns: {', '.join(map(str, df.columns))})"
        )
    if df["patient_id"].isna().any():
        pos = int(np.flatnonzero(df["patient_id"].isna().to_numpy())[0])
        raise ValueError(f"{caller}: row {df.index[pos]!r} has no patient_id")


def patient_strata(df: pd.DataFrame, stratify: str | None) -> pd.Series:
    """Patient-level stratum (str) per patient_id, sorted by patient_id.

    Max over images for numeric/boolean columns, mode for categorical ones,
    ``"<missing>"`` when all of a patient's values are missing; ``"all"`` for ``None``.
    """
    patients = pd.Index(df["patient_id"].astype("str").unique()).sort_values()
    if stratify is None:
        return pd.Series("all", index=patients, name="stratum", dtype=object)
    values = df[stratify]
    key = df["patient_id"].astype("str").to_numpy()
    if pd.api.types.is_bool_dtype(values.dtype) or pd.api.types.is_numeric_dtype(values.dtype):
        per = pd.Series(values.to_numpy(dtype="float64", na_value=np.nan)).groupby(key).max()
        per = per.map(lambda v: str(int(v)) if v.is_integer() else repr(v), na_action="ignore")
    else:
        frame = pd.DataFrame({"p": key, "v": values.astype(object).to_numpy()}).dropna()
        frame["v"] = frame["v"].astype(str)
        counts = frame.value_counts().reset_index(name="n")
        counts = counts.sort_values(["p", "n", "v"], ascending=[True, False, True])
        per = counts.drop_duplicates("p").set_index("p")["v"]
    per = per.reindex(patients).astype(object).fillna(MISSING_STRATUM)
    per.name = "stratum"
    return per


def _check_seed(seed, caller: str) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or not 0 <= seed < 2**32:
        raise ValueError(f"{caller}: seed must be an integer in [0, 2**32), got {seed!r}")
    return int(seed)


def _check_fraction(value, name: str, caller: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise ValueError(f"{caller}: {name} must be a number in [0, 1), got {value!r}")
    if not 0 <= value < 1:  # also rejects NaN
        raise ValueError(f"{caller}: {name}={value!r} must be in [0, 1)")
    return float(value)


def sample_patients(df: pd.DataFrame, n_patients: int, *, seed: int = 0) -> pd.DataFrame:
    """The rows of ``n_patients`` patients drawn at random (all their images kept).

    Deterministic for a seed and independent of row order; asking for at least as many
    patients as there are returns ``df`` unchanged. Used by ``load_source`` (N_PATIENTS on a
    real dataset).
    """
    caller = "sample_patients"
    if isinstance(n_patients, bool) or not isinstance(n_patients, int | np.integer):
        raise ValueError(f"{caller}: N_PATIENTS must be an integer >= 1, got {n_patients!r}")
    if n_patients < 1:
        raise ValueError(f"{caller}: N_PATIENTS must be >= 1, got {n_patients}")
    _require_columns(df, ["patient_id"], caller)
    patients = np.sort(df["patient_id"].astype("str").unique())
    if n_patients >= len(patients):
        return df
    rng = np.random.default_rng(_check_seed(seed, caller))
    chosen = set(patients[np.sort(rng.choice(len(patients), n_patients, replace=False))])
    out = df[df["patient_id"].astype("str").isin(chosen)].copy()
    out.attrs = dict(df.attrs)
    return out


def _as_dict(counts: pd.Series) -> dict[str, int]:
    return {str(k): int(v) for k, v in counts.sort_index().items()}


def _check_strata(strata: pd.Series, stratify: str | None, need: int, what: str, caller: str):
    n_patients = len(strata)
    if n_patients < need:
        raise ValueError(f"{caller}: {n_patients} patient(s), but {what} needs at least {need}")
    counts = strata.value_counts()
    if stratify is not None and len(counts) < 2:
        only = counts.index[0]
        why = (
            "has no value for any patient"
            if only == MISSING_STRATUM
            else f"is {only!r} for every patient"
        )
        raise ValueError(
            f"{caller}: cannot stratify by {stratify!r}: it {why}; use stratify=None "
            "or another column"
        )
    small = counts[counts < need]
    if len(small):
        listed = ", ".join(f"{k!r}: {int(v)}" for k, v in small.sort_index().items())
        raise ValueError(
            f"{caller}: cannot stratify by {stratify!r}: class(es) with fewer than {need} "
            f"patients ({what}) would leave a split without them - patients per class "
            f"{listed} (all classes: {_as_dict(counts)}); use fewer "
            "splits, merge rare classes, or stratify=None"
        )


def _folds(df: pd.DataFrame, strata: pd.Series, n_splits: int, seed: int) -> np.ndarray:
    """Fold id per row, via StratifiedGroupKFold on the image rows grouped by patient."""
    key = df["patient_id"].astype("str").to_numpy()
    y = strata.reindex(key).to_numpy(dtype=str)
    order = np.lexsort((np.arange(len(key)), key))  # sorted rows: row order cannot matter
    cv = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    fold = np.full(len(key), -1, dtype=np.int64)
    x_dummy = np.zeros((len(key), 1))
    with warnings.catch_warnings():  # rare classes were checked (or accepted) by the caller
        warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
        for i, (_, test_idx) in enumerate(cv.split(x_dummy, y[order], groups=key[order])):
            fold[order[test_idx]] = i
    return fold


def check_no_leakage(
    df: pd.DataFrame, split_col: str = "split", *, group_col: str = "patient_id"
) -> None:
    """Raise ``LeakageError`` naming every patient found in more than one split.

    Rows whose split is missing are ignored.
    """
    for col in (split_col, group_col):
        if col not in df.columns:
            raise ValueError(f"check_no_leakage: column {col!r} not in the manifest")
    frame = df[[group_col, split_col]].dropna().drop_duplicates()
    n_splits = frame.groupby(group_col, sort=True)[split_col].nunique()
    leaked = n_splits[n_splits > 1].index
    if len(leaked):
        bad = frame[frame[group_col].isin(leaked)]
        where = bad.groupby(group_col, sort=True)[split_col].agg(lambda s: sorted(map(str, s)))
        shown = "; ".join(f"{p!r} in {', '.join(s)}" for p, s in list(where.items())[:10])
        more = f" (and {len(leaked) - 10} more)" if len(leaked) > 10 else ""
        raise LeakageError(
            f"{len(leaked)} {group_col} value(s) appear in more than one {split_col!r} split: "
            f"{shown}{more}"
        )


def longitudinal_patients(df: pd.DataFrame, study_col: str = "study_id") -> list[str]:
    """The patients with more than one exam (distinct ``study_col``), sorted."""
    _require_columns(df, ["patient_id", study_col], "longitudinal_patients")
    studies = df.groupby(df["patient_id"].astype(str))[study_col].nunique()
    return sorted(studies[studies > 1].index)


def patient_kfold(
    df: pd.DataFrame,
    n_splits: int = 5,
    stratify: str | None = "cancer",
    seed: int = 0,
    *,
    always_train=None,
) -> np.ndarray:
    """Fold index (0..n_splits-1) per row, patient-grouped and stratified (notebooks 01-05).

    The patients in ``always_train`` (e.g. :func:`longitudinal_patients`, as paper 01 keeps
    patients with several exams in training) get fold ``-1``: they are in the training set
    of every fold and never validated on. Raises ``ValueError`` when there are fewer patients
    than folds, or a stratum of ``stratify`` has fewer patients than ``n_splits`` (the
    message names class and counts).
    """
    seed = _check_seed(seed, "patient_kfold")
    if isinstance(n_splits, bool) or not isinstance(n_splits, int | np.integer) or n_splits < 2:
        raise ValueError(f"patient_kfold: n_splits must be an integer >= 2, got {n_splits!r}")
    cols = ["patient_id"] + ([stratify] if stratify is not None else [])
    _require_columns(df, cols, "patient_kfold")
    fixed = _always_train(df, always_train)
    rest = df[~fixed]
    strata = patient_strata(rest, stratify)
    _check_strata(strata, stratify, int(n_splits), f"n_splits={n_splits}", "patient_kfold")
    fold = np.full(len(df), -1, dtype=np.int64)
    fold[~fixed] = _folds(rest, strata, int(n_splits), seed)
    empty = sorted(set(range(int(n_splits))) - set(fold.tolist()))
    if empty:
        raise ValueError(f"patient_kfold: fold(s) {empty} came out empty; use fewer splits")
    check_no_leakage(
        pd.DataFrame({"patient_id": df["patient_id"].to_numpy(), "split": fold}), "split"
    )
    return fold


def _always_train(df: pd.DataFrame, patients) -> np.ndarray:
    """Row mask of the patients named in ``patients`` (each must be in ``df``)."""
    if patients is None:
        return np.zeros(len(df), dtype=bool)
    if isinstance(patients, str):
        raise ValueError("patient_kfold: always_train must be a collection of patient ids")
    wanted = {str(p) for p in patients}
    ids = df["patient_id"].astype(str)
    unknown = sorted(wanted - set(ids))
    if unknown:
        raise ValueError(f"patient_kfold: always_train names unknown patient(s) {unknown[:5]}")
    return ids.isin(wanted).to_numpy()


def require_classes_per_fold(labels, folds, classes) -> None:
    """Every fold's validation part (``folds == k``) and training part (``folds != k``)
    holds every class of ``classes`` (``labels`` are indices into it); otherwise a
    ``ValueError`` names the fold, the part and the missing classes. Chapter 01."""
    y, f = np.asarray(labels), np.asarray(folds)
    if y.shape != f.shape:
        raise ValueError(f"{len(y)} labels for {len(f)} fold indices")
    for k in sorted(set(f.tolist()) - {-1}):
        for part, rows in (("validation", f == k), ("training", f != k)):
            absent = [c for i, c in enumerate(classes) if not (y[rows] == i).any()]
            if absent:
                raise ValueError(
                    f"fold {k}: the {part} part has no image of class(es) {absent}; use fewer "
                    "folds or more patients"
                )


def undersample_to_mix(df: pd.DataFrame, column: str, mix: dict, *, seed: int = 0) -> pd.DataFrame:
    """Images drawn at random so that the classes of ``column`` follow the proportions of
    ``mix`` (class -> count, e.g. paper 01's 4,000 A / 6,000 B / 6,000 C / 3,000 D), as
    large as the data allow: the class with the fewest images for its share is kept whole
    (paper 01 keeps every D image) and the others are scaled by the same factor. Rows of
    other classes are dropped. ``attrs["undersampling"]`` has the counts before and after.
    Chapter 01.
    """
    caller = "undersample_to_mix"
    rng = np.random.default_rng(_check_seed(seed, caller))
    _require_columns(df, ["patient_id", column], caller)
    target = {str(k): v for k, v in mix.items()}
    for name, count in target.items():
        if isinstance(count, bool) or not isinstance(count, int | np.integer) or count < 1:
            raise ValueError(f"{caller}: mix[{name!r}] must be an integer >= 1, got {count!r}")
    values = df[column].astype(str).where(df[column].notna(), None)
    have = {k: int((values == k).sum()) for k in target}
    absent = [k for k, n in have.items() if n == 0]
    if absent:
        raise ValueError(f"{caller}: no image of class(es) {absent} in {column!r}; have {have}")
    scale = min(have[k] / target[k] for k in target)
    keep = np.zeros(len(df), dtype=bool)
    for k, count in target.items():
        rows = np.flatnonzero((values == k).to_numpy())
        n = min(len(rows), int(round(count * scale)))
        keep[np.sort(rng.choice(rows, n, replace=False))] = True
    out = df[keep].copy()
    out.attrs = dict(df.attrs)
    after = {k: int((out[column].astype(str) == k).sum()) for k in target}
    out.attrs["undersampling"] = {"column": column, "before": have, "after": after}
    return out


def _fold_fraction(fraction: float, max_k: int = 20) -> tuple[int, int]:
    """(m, k): take m of k folds so that m/k is closest to ``fraction`` (smallest k on ties)."""
    approx = Fraction(fraction).limit_denominator(max_k)
    if approx.numerator == 0:
        approx = Fraction(1, max(round(1 / fraction), 2))
    return approx.numerator, approx.denominator


def train_val_test_split(
    df: pd.DataFrame,
    val: float = 0.1,
    test: float = 0.2,
    stratify: str | None = "cancer",
    seed: int = 0,
) -> pd.Series:
    """'train'/'val'/'test' per row (Series aligned to ``df.index``), grouped by patient.

    The test set is ``m`` of ``k`` StratifiedGroupKFold folds with ``m/k`` closest to
    ``test`` (k <= 20, e.g. 0.2 -> 1 of 5); val is taken the same way from the remaining
    patients. ``val`` or ``test`` may be 0. Fractions are of patients, approximately.
    """
    seed = _check_seed(seed, "train_val_test_split")
    val = _check_fraction(val, "val", "train_val_test_split")
    test = _check_fraction(test, "test", "train_val_test_split")
    if not 0 < val + test < 1:
        raise ValueError(f"train_val_test_split: val + test = {val + test} must be in (0, 1)")
    cols = ["patient_id"] + ([stratify] if stratify is not None else [])
    _require_columns(df, cols, "train_val_test_split")
    strata = patient_strata(df, stratify)
    n_parts = 1 + (val > 0) + (test > 0)
    parts = f"train{'/val' if val else ''}{'/test' if test else ''}"
    _check_strata(strata, stratify, n_parts, parts, "train_val_test_split")

    split = np.full(len(df), "train", dtype=object)
    remaining = np.ones(len(df), dtype=bool)
    for name, fraction in (("test", test), ("val", val / (1 - test))):
        if fraction == 0:
            continue
        m, k = _fold_fraction(fraction)
        sub = df.loc[remaining] if not remaining.all() else df
        sub_strata = strata.loc[sorted(set(sub["patient_id"].astype("str")))]
        # tiny cohorts: sklearn needs k <= patients and k <= the largest class
        k_eff = min(k, int(sub_strata.value_counts().max()))
        if k_eff < 2:
            raise ValueError(f"train_val_test_split: too few patients left for {name}")
        fold = _folds(sub, sub_strata, k_eff, seed)
        chosen = np.flatnonzero(remaining)[fold < max(1, round(m * k_eff / k))]
        split[chosen] = name
        remaining[chosen] = False
    result = pd.Series(split, index=df.index, name="split", dtype="str")
    for name in ("train", "val", "test"):
        wanted = name == "train" or (val if name == "val" else test) > 0
        if wanted and not (result == name).any():
            raise ValueError(f"train_val_test_split: the {name!r} split came out empty")
    check_no_leakage(pd.DataFrame({"patient_id": df["patient_id"].to_numpy(), "split": split}))
    return result


def assign_split_column(
    df: pd.DataFrame,
    val: float = 0.1,
    test: float = 0.2,
    stratify: str | None = "cancer",
    seed: int = 0,
    split_col: str = "split",
) -> pd.DataFrame:
    """Copy of ``df`` with a ``split_col`` column from ``train_val_test_split``."""
    out = df.copy()
    out[split_col] = train_val_test_split(df, val=val, test=test, stratify=stratify, seed=seed)
    return out
