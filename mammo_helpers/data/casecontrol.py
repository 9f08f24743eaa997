"""Chapter 05's target domain: an age-matched case-control cohort and its pair-preserving,
age-stratified patient split.

Sánchez Fuentes & Monsalve Durán (2025) measure domain shift on a private, retrospective
cohort of 191 cancer cases and 191 controls matched by age, four views per patient (L-CC,
L-MLO, R-CC, R-MLO): 1,528 images, 382 of them positive (a view is positive when it shows
the malignant finding). It was split on patient level 70/10/20 (266/38/78 patients =
1,064/152/312 images), stratified by age, with both members of a matched pair and all their
images in the same subset. This module builds that design from any manifest (the phantom
cohort or a public dataset):

* :func:`patient_table`: one row per patient (age, case flag, positive images) from a
  manifest with one complete four-view study per patient;
* :func:`match_controls`: 1:1 greedy nearest-age matching without replacement, with a
  caliper ``max_age_gap``; :func:`check_pairs`: one case and one control per pair;
* :func:`split_pairs`: train / val / test per patient with pairs as units, stratified by
  quantile bins of the pair's age; the sizes round as the thesis's (191 pairs ->
  133/19/39); :func:`check_pairs_together` raises ``LeakageError`` for a separated pair;
* :func:`image_split`: the patient split carried to the manifest's image rows;
* :func:`split_summary` and :data:`PAPER_SPLIT`: patients, cases, pairs and images per
  split beside the thesis's numbers.

Only the four standard views count (as in :func:`~mammo_helpers.data.exams.exam_table`):
images of other views are ignored by :func:`patient_table` and :func:`split_summary`.
Used by chapter 05 (domain shift).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from mammo_helpers.data import exams as _exams
from mammo_helpers.data import splits as _splits
from mammo_helpers.vocab import FOUR_VIEWS

#: The values of a pairs table's ``role`` column.
ROLES: tuple[str, ...] = ("case", "control")
_MANIFEST_COLUMNS = ["patient_id", "study_id", "image_id", "laterality", "view", "age", "cancer"]
_SUMMARY_ROWS = (*_splits.SPLIT_NAMES, "total")


def _paper_split() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "patients": [266, 38, 78, 382],
            "cases": [133, 19, 39, 191],
            "controls": [133, 19, 39, 191],
            "pairs": [133, 19, 39, 191],
            "images": [1064, 152, 312, 1528],
            "positive_images": pd.array([None, None, None, 382], dtype="Int64"),
        },
        index=pd.Index(list(_SUMMARY_ROWS), name="split"),
    )


#: The thesis's cohort and split (Sánchez Fuentes & Monsalve Durán 2025): patients and
#: images per subset as reported; cases, controls and pairs follow from the matched pairs
#: being kept together; positive images are reported for the whole cohort only (<NA>).
PAPER_SPLIT: pd.DataFrame = _paper_split()


# --------------------------------------------------------------------------- patients
def _first_patients(ids: pd.Index, caller: str, problem: str, hint: str) -> ValueError:
    """A ValueError naming the first of ``ids`` (sorted) and how many there are."""
    ids = sorted(map(str, ids))
    more = f" ({len(ids)} patients in all)" if len(ids) > 1 else ""
    return ValueError(f"{caller}: patient {ids[0]!r} {problem}{more}; {hint}")


def _check_one_study(manifest: pd.DataFrame, ids: pd.Series) -> None:
    studies = manifest["study_id"].astype(str).groupby(ids, sort=True).unique()
    several = studies[studies.map(len) > 1]
    if len(several):
        found = ", ".join(map(repr, sorted(several.iloc[0])))
        raise _first_patients(
            several.index,
            "patient_table",
            f"has {len(several.iloc[0])} studies ({found})",
            "the case-control design takes one four-view study per patient: keep one (e.g. "
            "the exam that showed the cancer, and for a control the exam matching its age)",
        )


def _patient_ages(four: pd.DataFrame, ids: pd.Series) -> pd.Series:
    """The age of each patient (the same on all its images; missing ones are ignored)."""
    ages = pd.to_numeric(four["age"]).astype("float64").groupby(ids, sort=True)
    low, high = ages.min(), ages.max()
    if low.isna().any():
        raise _first_patients(
            low.index[low.isna()], "patient_table", "has no age", "matching by age needs it"
        )
    differ = low != high
    if differ.any():
        first = low.index[differ][0]
        raise _first_patients(
            low.index[differ],
            "patient_table",
            f"has different ages on its images ({low[first]:g} to {high[first]:g})",
            "a patient has one age at its study",
        )
    return low


def _image_cancer(four: pd.DataFrame, ids: pd.Series) -> pd.Series:
    """The 0/1 label of each image; ValueError naming patient and image when missing."""
    cancer = pd.Series(pd.array(four["cancer"], dtype="Float64"), index=four.index)
    bad = cancer.isna() | ~cancer.isin([0, 1])
    if bad.any():
        first = int(np.flatnonzero(bad.to_numpy())[0])
        value = four["cancer"].iloc[first]
        raise ValueError(
            f"patient_table: patient {ids.iloc[first]!r} has image "
            f"{four['image_id'].iloc[first]!r} with cancer={value!r} ({int(bad.sum())} such "
            "image(s)); every image needs a cancer label 0 or 1 (a positive view shows the "
            "malignant finding)"
        )
    return cancer.astype("int64")


def patient_table(manifest: pd.DataFrame) -> pd.DataFrame:
    """One row per patient (index ``patient_id``, sorted): ``age``, ``case`` (1 if any of
    its images has ``cancer == 1``, else 0), ``n_positive_images`` and ``study_id``.

    Every patient needs exactly one study with the four views L-CC, L-MLO, R-CC, R-MLO,
    one age and a cancer label on every four-view image. ``ValueError`` naming the patient
    for a patient with several studies, without age, with ages that disagree (missing
    ages beside a known one are ignored) or an image without a 0/1 label;
    :func:`~mammo_helpers.data.exams.exam_table`'s ``ManifestError`` naming the study and
    patient for a missing or duplicated view. Chapter 05.
    """
    _splits._require_columns(manifest, _MANIFEST_COLUMNS, "patient_table")
    ids = manifest["patient_id"].astype(str)
    _check_one_study(manifest, ids)
    views = manifest[["patient_id", "study_id", "image_id", "laterality", "view"]]
    no_findings = pd.Series([[] for _ in range(len(views))], index=views.index, dtype=object)
    _exams.exam_table(views.assign(density=np.nan, findings=no_findings))
    keep = pd.MultiIndex.from_frame(manifest[["laterality", "view"]]).isin(list(FOUR_VIEWS))
    four, four_ids = manifest.loc[keep], ids.loc[keep]
    ages = _patient_ages(four, four_ids)
    positives = _image_cancer(four, four_ids).groupby(four_ids, sort=True).sum()
    out = pd.DataFrame(
        {
            "age": ages,
            "case": (positives > 0).astype("int64"),
            "n_positive_images": positives.astype("int64"),
            "study_id": four["study_id"].astype(str).groupby(four_ids, sort=True).first(),
        }
    )
    out["study_id"] = out["study_id"].astype("str")
    out.index.name = "patient_id"
    out.attrs = dict(manifest.attrs)
    return out


# --------------------------------------------------------------------------- matching
def _require_table(df: pd.DataFrame, columns, caller: str) -> None:
    """A DataFrame indexed by unique patient ids with ``columns``."""
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"{caller} expects a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(
            f"{caller}: column(s) {', '.join(map(repr, missing))} missing (pass the table of "
            "patient_table / match_controls, indexed by patient_id)"
        )
    dup = df.index[df.index.duplicated()]
    if len(dup):
        raise ValueError(f"{caller}: patient {dup[0]!r} has several rows; one row per patient")


def _ages(patients: pd.DataFrame, caller: str) -> pd.Series:
    """Age (float) per patient; ValueError naming a patient without one."""
    _require_table(patients, ["age"], caller)
    ages = pd.to_numeric(patients["age"]).astype("float64")
    if ages.isna().any():
        hint = "age matching and age strata need it"
        raise _first_patients(ages.index[ages.isna()], caller, "has no age", hint)
    return ages


def _ages_and_cases(patients: pd.DataFrame, caller: str) -> tuple[pd.Series, pd.Series]:
    """Age (float) and case flag (bool) per patient; ValueError naming a bad patient."""
    _require_table(patients, ["age", "case"], caller)
    ages = _ages(patients, caller)
    case = patients["case"]
    bad = case.isna() | ~case.isin([0, 1])
    if bad.any():
        first = patients.index[bad][0]
        raise ValueError(f"{caller}: patient {first!r} has case={case[first]!r}; need 0 or 1")
    return ages, case.astype(bool)


def _check_gap(max_age_gap) -> float:
    ok = isinstance(max_age_gap, int | float | np.integer | np.floating)
    if isinstance(max_age_gap, bool) or not ok or not max_age_gap >= 0:
        raise ValueError(
            f"match_controls: max_age_gap must be a number of years >= 0, got {max_age_gap!r}"
        )
    return float(max_age_gap)


def _no_control(case_id, age: float, gap: np.ndarray, controls: np.ndarray, limit: float):
    """The ValueError for a case without an unused control within ``limit`` years."""
    if np.isinf(gap).all():
        nearest = f"all {len(controls)} controls are taken"
    else:
        j = int(np.argmin(gap))
        nearest = f"the nearest unused control, {controls[j]!r}, is {gap[j]:.2f} years away"
    return ValueError(
        f"match_controls: case {case_id!r} (age {age:g}) has no unused control within "
        f"max_age_gap={limit:g} years: {nearest}; raise max_age_gap, add controls, or pass "
        "drop_unmatched=True"
    )


def _greedy_match(ages, cases, controls, limit, rng, drop_unmatched):
    """{case: control} and the unmatched cases, cases in a random order."""
    control_ages = ages[controls].to_numpy()
    free = np.ones(len(controls), dtype=bool)
    matched, unmatched = {}, []
    for i in rng.permutation(len(cases)):
        gap = np.where(free, np.abs(control_ages - ages[cases[i]]), np.inf)
        j = int(np.argmin(gap))  # the first minimum: equal gaps go to the smallest id
        if not gap[j] <= limit:
            if not drop_unmatched:
                raise _no_control(cases[i], ages[cases[i]], gap, controls, limit)
            unmatched.append(cases[i])
            continue
        free[j] = False
        matched[cases[i]] = controls[j]
    return matched, sorted(unmatched)


def match_controls(
    patients: pd.DataFrame,
    *,
    max_age_gap: float = 5.0,
    seed: int = 0,
    drop_unmatched: bool = False,
) -> pd.DataFrame:
    """1:1 age matching without replacement: the matched cases and their controls.

    Greedy nearest-neighbour matching: the cases (``case == 1``) are visited in a random
    order drawn with ``seed`` (so no age group is served first), each takes the unused
    control (``case == 0``) of nearest age; of equally near controls, the smallest
    patient id. A case whose nearest unused control is more than ``max_age_gap`` years
    away raises ``ValueError`` naming the case and that gap; with ``drop_unmatched=True``
    it is left out and listed in ``attrs["unmatched"]``.

    ``patients`` is :func:`patient_table`'s table (index patient_id, columns ``age`` and
    ``case``). Returns its rows of the matched patients, pair by pair (case first), with
    ``pair_id`` (``pair_000``, ... numbered in the order of the case ids) and ``role``
    (``case``/``control``) added; ``attrs["unused_controls"]`` counts the controls left
    over. Deterministic for a seed and independent of row order. Chapter 05.
    """
    caller = "match_controls"
    rng = np.random.default_rng(_splits._check_seed(seed, caller))
    limit = _check_gap(max_age_gap)
    ages, is_case = _ages_and_cases(patients, caller)
    cases = np.array(sorted(patients.index[is_case.to_numpy()]), dtype=object)
    controls = np.array(sorted(patients.index[~is_case.to_numpy()]), dtype=object)
    for ids, what in ((cases, "case (case == 1)"), (controls, "control (case == 0)")):
        if not len(ids):
            raise ValueError(f"{caller}: no {what} among the {len(patients)} patients")
    matched, unmatched = _greedy_match(ages, cases, controls, limit, rng, drop_unmatched)
    if not matched:
        raise ValueError(
            f"{caller}: none of the {len(cases)} cases has a control within "
            f"max_age_gap={limit:g} years"
        )
    width = max(3, len(str(len(matched) - 1)))
    order = [p for case in sorted(matched) for p in (case, matched[case])]
    out = patients.loc[order].copy()
    out["pair_id"] = pd.array(
        [f"pair_{i:0{width}d}" for i in range(len(matched)) for _ in ROLES], dtype="str"
    )
    out["role"] = pd.array(list(ROLES) * len(matched), dtype="str")
    out.attrs = dict(patients.attrs)
    out.attrs.update(
        unmatched=unmatched, unused_controls=len(controls) - len(matched), max_age_gap=limit
    )
    return out


def check_pairs(pairs: pd.DataFrame) -> None:
    """``ValueError`` naming the pair unless every ``pair_id`` holds exactly one case and
    one control (``role``), no patient is in two rows and, when there is a ``case``
    column, the case has ``case == 1`` and the control ``case == 0``. Chapter 05."""
    caller = "check_pairs"
    _require_table(pairs, ["pair_id", "role"], caller)
    bad = pairs["pair_id"].isna() | ~pairs["role"].isin(ROLES)
    if bad.any():
        first = pairs.index[bad][0]
        raise ValueError(
            f"{caller}: patient {first!r} has pair_id={pairs.at[first, 'pair_id']!r}, "
            f"role={pairs.at[first, 'role']!r}; need a pair id and a role in {ROLES}"
        )
    pair_ids = pairs["pair_id"].astype(str)
    n_cases = (pairs["role"] == "case").groupby(pair_ids, sort=True).sum()
    n_members = pair_ids.value_counts().reindex(n_cases.index)
    wrong = n_cases.index[(n_cases != 1) | (n_members != 2)]
    if len(wrong):
        pair = wrong[0]
        who = pairs[pair_ids == pair]
        listed = ", ".join(f"{p!r} ({r})" for p, r in zip(who.index, who["role"], strict=True))
        raise ValueError(
            f"{caller}: pair {pair!r} has {listed} ({len(wrong)} bad pair(s)); a pair is one "
            "case and one control"
        )
    if "case" in pairs.columns:
        flag = (pairs["role"] == "case").astype(int)
        mismatch = (pairs["case"].astype("Float64") != flag).fillna(True)
        off = pairs.index[mismatch.to_numpy(dtype=bool)]
        if len(off):
            row = pairs.loc[off[0]]
            raise ValueError(
                f"{caller}: pair {row['pair_id']!r}: patient {off[0]!r} is its {row['role']} "
                f"but has case={row['case']!r}"
            )


# --------------------------------------------------------------------------- split
def _pair_ages(pairs: pd.DataFrame) -> pd.Series:
    """Mean age of the two members per pair (index pair_id, sorted)."""
    ages = _ages(pairs, "split_pairs")
    return ages.groupby(pairs["pair_id"].astype(str), sort=True).mean()


def _ceil(x: float) -> int:
    """``ceil`` that ignores float noise (0.1 / 0.8 * 152 is 19, not 20)."""
    return math.ceil(round(x, 9))


def split_sizes(n_pairs: int, val: float, test: float) -> dict[str, int]:
    """Pairs per split: ``ceil(test * n)`` test pairs, then ``ceil(val / (1 - test) * rest)``
    val pairs, the rest train: how scikit-learn's ``train_test_split`` rounds when applied
    twice (test first, then val from the rest). It gives the thesis's 133/19/39 pairs for
    191 (a largest-remainder rounding of 191 x 0.7/0.1/0.2 would give 134/19/38). Chapter
    05."""
    n_test = _ceil(test * n_pairs)
    n_val = _ceil(val / (1 - test) * (n_pairs - n_test))
    return {"train": n_pairs - n_val - n_test, "val": n_val, "test": n_test}


def _n_bins(n_pairs: int, n_age_bins: int, fractions) -> int:
    """At most ``n_age_bins`` bins, each large enough to hold one pair of the smallest
    split on average (``ceil(1 / smallest fraction)`` pairs: 10 for val = 0.1)."""
    smallest = min(f for f in fractions if f > 0)
    return max(1, min(n_age_bins, n_pairs // _ceil(1 / smallest)))


def _age_bins(pair_age: pd.Series, n_bins: int) -> np.ndarray:
    """Quantile bin (0 = youngest) per pair: pairs ranked by age (then pair id) and cut
    into ``n_bins`` groups of equal size (+-1), so tied ages cannot empty a bin."""
    order = np.lexsort((pair_age.index.to_numpy(dtype=str), pair_age.to_numpy()))
    bins = np.empty(len(pair_age), dtype=np.int64)
    bins[order] = np.arange(len(pair_age)) * n_bins // len(pair_age)
    return bins


def _apportion(total: int, sizes: np.ndarray, room: np.ndarray, rng) -> np.ndarray:
    """``total`` spread over the bins in proportion to ``sizes`` by largest remainders
    (ties in random order), at most ``room`` per bin."""
    quota = total * sizes / sizes.sum()
    share = np.minimum(np.floor(np.round(quota, 9)).astype(np.int64), room)
    order = np.lexsort((rng.random(len(sizes)), -(quota - share)))
    while share.sum() < total:
        for b in order:
            if share.sum() < total and share[b] < room[b]:
                share[b] += 1
    return share


def _assign(pair_age: pd.Series, bins: np.ndarray, sizes: dict, rng) -> pd.Series:
    """Split per pair: per bin, shuffled pairs take the bin's test, val, then train share."""
    per_bin = np.bincount(bins)
    test = _apportion(sizes["test"], per_bin, per_bin, rng)
    val = _apportion(sizes["val"], per_bin, per_bin - test, rng)
    out = pd.Series("train", index=pair_age.index, name="split", dtype=object)
    for b in range(len(per_bin)):
        ids = rng.permutation(pair_age.index[bins == b].to_numpy())
        out.loc[ids[: test[b]]] = "test"
        out.loc[ids[test[b] : test[b] + val[b]]] = "val"
    return out


def _check_int(value, name: str, caller: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{caller}: {name} must be an integer >= 1, got {value!r}")
    return int(value)


def split_pairs(
    pairs: pd.DataFrame,
    *,
    val: float = 0.1,
    test: float = 0.2,
    n_age_bins: int = 4,
    seed: int = 0,
) -> pd.Series:
    """'train' / 'val' / 'test' per patient (index patient_id, name ``split``) with the
    matched pairs as units: both members of a pair land in the same split.

    Split sizes in pairs by :func:`split_sizes` (191 pairs -> 133/19/39, i.e. the thesis's
    266/38/78 patients). Stratified by age: a pair's age is the mean of its two members;
    pairs ranked by that age (then pair id) are cut into equal-sized quantile bins,
    ``n_age_bins`` of them or fewer when there are too few pairs for each bin to hold one
    pair of the smallest split on average (``n_pairs // ceil(1 / smallest fraction)`` bins,
    at least one). Each split's pairs are spread over the bins in proportion to their size by
    largest remainders, so the overall counts are exact; within a bin the pairs are
    shuffled with ``seed``. ``val`` or ``test`` may be 0 (no such split).

    ``ValueError`` naming ``val``/``test``/``n_age_bins``/``seed`` for a bad value, when
    ``val + test >= 1``, when a split would be empty, and (:func:`check_pairs`) for a bad
    pair. Ends with :func:`check_pairs_together` and ``splits.check_no_leakage`` on pair
    level. Deterministic for a seed and independent of row order. Chapter 05.
    """
    caller = "split_pairs"
    rng = np.random.default_rng(_splits._check_seed(seed, caller))
    val = _splits._check_fraction(val, "val", caller)
    test = _splits._check_fraction(test, "test", caller)
    if not val + test < 1:
        raise ValueError(f"{caller}: val + test = {val + test:g} must be < 1 (train needs pairs)")
    n_age_bins = _check_int(n_age_bins, "n_age_bins", caller)
    check_pairs(pairs)
    pair_age = _pair_ages(pairs)
    sizes = split_sizes(len(pair_age), val, test)
    fractions = {"train": 1 - val - test, "val": val, "test": test}
    empty = [s for s in sizes if fractions[s] > 0 and sizes[s] == 0]
    if empty:
        raise ValueError(
            f"{caller}: the {empty[0]!r} split would be empty with {len(pair_age)} pairs and "
            f"val={val:g}, test={test:g} (pairs per split: {sizes}); use more pairs or other "
            "fractions"
        )
    bins = _age_bins(pair_age, _n_bins(len(pair_age), n_age_bins, fractions.values()))
    per_pair = _assign(pair_age, bins, sizes, rng)
    split = pd.Series(
        pairs["pair_id"].astype(str).map(per_pair).to_numpy(dtype=object),
        index=pairs.index,
        name="split",
        dtype="str",
    )
    check_pairs_together(pairs, split)
    frame = pd.DataFrame({"pair_id": pairs["pair_id"].to_numpy(), "split": split.to_numpy()})
    _splits.check_no_leakage(frame, "split", group_col="pair_id")
    split.attrs = {"age_bins": int(bins.max()) + 1, "pairs": sizes}
    return split


def _split_of(pairs: pd.DataFrame, split, caller: str) -> pd.Series:
    """The split of each patient of ``pairs`` (aligned to its index); ``split`` is a
    Series indexed by patient id or the name of a column of ``pairs``."""
    if isinstance(split, str):
        _require_table(pairs, [split], caller)
        values = pairs[split]
    else:
        if not isinstance(split, pd.Series):
            raise TypeError(f"{caller}: split must be a Series indexed by patient_id or a column")
        if split.index.duplicated().any():
            dup = split.index[split.index.duplicated()][0]
            raise ValueError(f"{caller}: patient {dup!r} appears twice in the split")
        values = split.reindex(pairs.index)
    absent = pairs.index[values.isna().to_numpy()]
    if len(absent):
        raise _first_patients(absent, caller, "has no split", "every paired patient needs one")
    return pd.Series(values.to_numpy(dtype=object), index=pairs.index, name="split")


def check_pairs_together(pairs: pd.DataFrame, split) -> None:
    """``LeakageError`` (``splits.LeakageError``) naming each separated pair, its two
    patients and their splits, when the members of a pair are in different splits.

    ``split``: a Series indexed by patient id (:func:`split_pairs`) or the name of a
    column of ``pairs`` (e.g. a split supplied with the data). ``ValueError`` for a paired
    patient without a split. Chapter 05.
    """
    caller = "check_pairs_together"
    _require_table(pairs, ["pair_id", "role"], caller)
    per = _split_of(pairs, split, caller).astype(str)
    pair_ids = pairs["pair_id"].astype(str)
    n_splits = per.groupby(pair_ids, sort=True).nunique()
    separated = n_splits.index[n_splits > 1]
    if not len(separated):
        return
    shown = []
    for pair in separated[:10]:
        rows = pairs.index[(pair_ids == pair).to_numpy()]
        who = ", ".join(f"{p!r} ({pairs.at[p, 'role']}) in {per[p]!r}" for p in rows)
        shown.append(f"{pair!r}: {who}")
    more = f" (and {len(separated) - 10} more)" if len(separated) > 10 else ""
    raise _splits.LeakageError(
        f"{caller}: {len(separated)} matched pair(s) separated across splits: "
        f"{'; '.join(shown)}{more}; both members of a pair belong to one split"
    )


# --------------------------------------------------------------------------- images
def image_split(manifest: pd.DataFrame, patient_split: pd.Series) -> pd.Series:
    """The split of every image row (Series aligned to ``manifest.index``, name
    ``split``): its patient's entry in ``patient_split`` (indexed by patient id, e.g.
    :func:`split_pairs`). ``ValueError`` naming manifest patients without a split (e.g.
    unused controls: select the paired patients' rows first). Chapter 05."""
    caller = "image_split"
    _splits._require_columns(manifest, ["patient_id"], caller)
    lookup = pd.Series(patient_split.to_numpy(dtype=object), index=patient_split.index.astype(str))
    if lookup.index.duplicated().any():
        dup = lookup.index[lookup.index.duplicated()][0]
        raise ValueError(f"{caller}: patient {dup!r} appears twice in the split")
    ids = manifest["patient_id"].astype(str)
    values = ids.map(lookup.dropna())
    absent = ids[values.isna()].unique()
    if len(absent):
        raise _first_patients(
            absent, caller, "of the manifest has no split", "select the split's patients first"
        )
    return pd.Series(values.to_numpy(dtype=object), index=manifest.index, name="split", dtype="str")


def _image_counts(pairs: pd.DataFrame, manifest: pd.DataFrame) -> pd.DataFrame:
    """Four-view images and positive images per paired patient (index as ``pairs``)."""
    _splits._require_columns(
        manifest, ["patient_id", "laterality", "view", "cancer"], "split_summary"
    )
    keep = pd.MultiIndex.from_frame(manifest[["laterality", "view"]]).isin(list(FOUR_VIEWS))
    four = manifest.loc[keep]
    ids = four["patient_id"].astype(str)
    absent = pairs.index[~pairs.index.astype(str).isin(set(ids))]
    if len(absent):
        raise _first_patients(
            absent,
            "split_summary",
            "has no image in the manifest",
            "pass the manifest the pairs came from",
        )
    positive = (pd.Series(pd.array(four["cancer"], dtype="Float64")) == 1).fillna(False)
    counts = (
        pd.DataFrame({"images": 1, "positive_images": positive.to_numpy(dtype=int)})
        .groupby(ids.to_numpy())
        .sum()
    )
    return counts.reindex(pairs.index.astype(str)).set_axis(pairs.index)


def split_summary(pairs: pd.DataFrame, split, manifest: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per split (train, val, test, then ``total``; index ``split``): ``patients``,
    ``cases``, ``controls``, ``pairs``, ``mean_age`` and, with the ``manifest``, the
    four-view ``images`` and ``positive_images`` (``cancer == 1``) of the paired patients:
    the layout of :data:`PAPER_SPLIT`. ``split`` as for :func:`check_pairs_together`.
    Chapter 05."""
    check_pairs(pairs)
    frame = pd.DataFrame(
        {
            "split": _split_of(pairs, split, "split_summary").astype(str),
            "case": (pairs["role"] == "case").astype(int),
            "pair_id": pairs["pair_id"].astype(str),
            "age": pd.to_numeric(pairs["age"]).astype(float) if "age" in pairs else np.nan,
        },
        index=pairs.index,
    )
    if manifest is not None:
        frame = frame.join(_image_counts(pairs, manifest))
    names = [s for s in _splits.SPLIT_NAMES if (frame["split"] == s).any()]
    names += sorted(set(frame["split"]) - set(names))
    rows = {name: _summary_row(frame[frame["split"] == name]) for name in names}
    rows["total"] = _summary_row(frame)
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.name = "split"
    return out


def _summary_row(frame: pd.DataFrame) -> dict:
    row = {
        "patients": len(frame),
        "cases": int(frame["case"].sum()),
        "controls": int((1 - frame["case"]).sum()),
        "pairs": int(frame["pair_id"].nunique()),
        "mean_age": float(frame["age"].mean()),
    }
    if "images" in frame.columns:
        row["images"] = int(frame["images"].sum())
        row["positive_images"] = int(frame["positive_images"].sum())
    return row
