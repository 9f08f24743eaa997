"""mammo_helpers.metrics: AUC against scikit-learn and a hand case, the patient bootstrap
against scipy's bootstrap and against resampling one row per patient."""

import itertools
import json

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score

import mammo_helpers as mh

metrics = mh.metrics


def _data(n=200, seed=1):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    return y, y * 0.8 + rng.normal(size=n)


def test_auc_hand_case_and_sklearn():
    # pairs (pos, neg): 0.35>0.1, 0.35<0.4, 0.8>0.1, 0.8>0.4 -> 3/4
    assert metrics.roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == 0.75
    assert metrics.roc_auc([0, 1, 0, 1], [0.5, 0.5, 0.2, 0.9]) == 0.875  # a tie counts 1/2
    y, s = _data()
    assert metrics.roc_auc(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-12)


@pytest.mark.parametrize(
    ("y", "s", "match"),
    [
        ([1, 1, 1], [0.1, 0.2, 0.3], "both classes"),
        ([0, 1, 2], [0.1, 0.2, 0.3], "only 0 and 1"),
        ([0, 1], [0.1, np.nan], "non-finite"),
        ([0, 1, 1], [0.1, 0.2], "one length"),
    ],
)
def test_auc_refuses_bad_input(y, s, match):
    with pytest.raises(ValueError, match=match):
        metrics.roc_auc(y, s)


def test_bootstrap_matches_scipy_percentile_interval():
    y, s = _data(150)
    ours = metrics.auc_ci(y, s, n_boot=3000, seed=0)
    ref = stats.bootstrap(
        (y, s),
        metrics.roc_auc,
        paired=True,
        vectorized=False,
        n_resamples=3000,
        method="percentile",
        random_state=0,
    ).confidence_interval
    assert ours.value == pytest.approx(roc_auc_score(y, s))
    assert ours.low == pytest.approx(ref.low, abs=0.01)
    assert ours.high == pytest.approx(ref.high, abs=0.01)


def test_bootstrap_resamples_patients_not_rows():
    """Three identical rows per patient: the interval must equal the one-row-per-patient
    bootstrap (same draws), and be wider than treating the rows as independent."""
    y, s = _data(60, seed=3)
    patients = np.repeat(np.arange(60), 3)
    grouped = metrics.auc_ci(np.repeat(y, 3), np.repeat(s, 3), patients, n_boot=500, seed=7)
    single = metrics.auc_ci(y, s, np.arange(60), n_boot=500, seed=7)
    assert (grouped.low, grouped.high) == pytest.approx((single.low, single.high), abs=1e-12)
    naive = metrics.auc_ci(np.repeat(y, 3), np.repeat(s, 3), n_boot=500, seed=7)
    assert grouped.high - grouped.low > 1.3 * (naive.high - naive.low)


def test_bootstrap_interval_level_seed_and_skips():
    y, s = _data(100)
    wide = metrics.auc_ci(y, s, n_boot=800, level=0.95, seed=2)
    narrow = metrics.auc_ci(y, s, n_boot=800, level=0.5, seed=2)
    assert wide.low < narrow.low < wide.value < narrow.high < wide.high
    assert metrics.auc_ci(y, s, n_boot=800, seed=2) == wide
    tiny = metrics.auc_ci([0, 1, 0, 1], [0.1, 0.9, 0.2, 0.8], n_boot=200, seed=0)
    assert 0 < tiny.skipped < 200  # one-class resamples are skipped and counted
    assert str(tiny).startswith("1.000 [")


@pytest.mark.parametrize(("kw", "match"), [({"n_boot": 0}, "n_boot"), ({"level": 1.0}, "level")])
def test_bootstrap_refuses_bad_settings(kw, match):
    with pytest.raises(ValueError, match=match):
        metrics.auc_ci([0, 1], [0.1, 0.2], **kw)


def test_groups_must_align():
    with pytest.raises(ValueError, match="one entry per sample"):
        metrics.auc_ci([0, 1, 1], [0.1, 0.2, 0.3], ["a", "b"])


def test_bootstrap_replays_by_hand():
    """Same draws as a by-hand bootstrap (rows resampled with numpy's generator, sklearn's
    AUC, one-class resamples skipped): identical interval, level and skip count."""
    y, s = _data(12, seed=4)
    est = metrics.auc_ci(y, s, n_boot=300, level=0.8, seed=5)
    rng = np.random.default_rng(5)
    values, skipped = [], 0
    for _ in range(300):
        pick = rng.integers(0, 12, 12)
        if len(set(y[pick])) < 2:
            skipped += 1
            continue
        values.append(roc_auc_score(y[pick], s[pick]))
    assert (est.low, est.high) == pytest.approx(tuple(np.quantile(values, [0.1, 0.9])), abs=1e-12)
    assert (est.level, est.n_boot, est.skipped) == (0.8, 300, skipped)


def test_bootstrap_with_every_resample_undefined_keeps_the_value():
    y, s = [0, 1], [0.2, 0.7]
    seed = next(k for k in range(100) if metrics.auc_ci(y, s, n_boot=1, seed=k).skipped == 1)
    est = metrics.auc_ci(y, s, n_boot=1, seed=seed)
    assert est.value == 1.0 and np.isnan(est.low) and np.isnan(est.high) and est.skipped == 1


def test_auc_with_a_single_positive():
    assert metrics.roc_auc([0, 0, 1], [0.1, 0.3, 0.2]) == 0.5


# ------------------------------------------------------------------- several classes
def _multiclass(n=300, k=4, seed=2):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k))
    logits[np.arange(n), y] += 1.0
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return y, probs, np.array([f"p{i // 3}" for i in range(n)])


def test_one_vs_rest_and_macro_auc_match_sklearn():
    from sklearn.preprocessing import label_binarize

    y, probs, _ = _multiclass()
    per_class = metrics.one_vs_rest_auc(y, probs)
    onehot = label_binarize(y, classes=range(4))
    assert per_class == pytest.approx(roc_auc_score(onehot, probs, average=None))
    assert metrics.macro_auc(y, probs) == pytest.approx(
        roc_auc_score(y, probs, multi_class="ovr", average="macro")
    )


def test_one_vs_rest_auc_hand_case():
    """Three samples of classes 0, 1, 2: class 0's score ranks it above one of the two others."""
    probs = np.array([[0.5, 0.3, 0.2], [0.6, 0.3, 0.1], [0.1, 0.1, 0.8]])
    assert metrics.one_vs_rest_auc([0, 1, 2], probs).tolist() == [0.5, 0.75, 1.0]


def test_one_vs_rest_auc_names_an_absent_class_and_bad_shapes():
    y, probs, _ = _multiclass(40)
    with pytest.raises(ValueError, match="class 3: AUC needs both classes; y_true has 0 positives"):
        metrics.one_vs_rest_auc(np.where(y == 3, 0, y), probs)
    with pytest.raises(ValueError, match="probs must be"):
        metrics.one_vs_rest_auc(y, probs[:, 0])
    with pytest.raises(ValueError, match="outside 0..3"):
        metrics.one_vs_rest_auc(y + 1, probs)
    with pytest.raises(ValueError, match="y_true has 39 samples, probs 40"):
        metrics.one_vs_rest_auc(y[:-1], probs)
    with pytest.raises(ValueError, match="integer class indices"):
        metrics.one_vs_rest_auc(y.astype(float), probs)


def test_per_class_auc_ci_resamples_patients_for_each_class_and_the_macro():
    y, probs, patients = _multiclass()
    table = metrics.per_class_auc_ci(y, probs, patients, classes="ABCD", n_boot=200, seed=4)
    assert table["class"].tolist() == ["A", "B", "C", "D", "macro"]
    assert table.auc.tolist()[:4] == pytest.approx(metrics.one_vs_rest_auc(y, probs).tolist())
    assert table.auc.iloc[-1] == pytest.approx(metrics.macro_auc(y, probs))
    assert table.samples.tolist() == [*np.bincount(y).tolist(), len(y)]
    est = metrics.bootstrap_ci(
        lambda yy, pp: roc_auc_score(yy == 2, pp[:, 2]), y, probs, patients, n_boot=200, seed=4
    )
    assert (table.low[2], table.high[2]) == pytest.approx((est.low, est.high))
    assert (table.low < table.auc).all() and (table.auc < table.high).all()
    with pytest.raises(ValueError, match="3 class names for 4 columns"):
        metrics.per_class_auc_ci(y, probs, classes="ABC")


def test_accuracy_and_confusion_match_sklearn():
    from sklearn.metrics import accuracy_score, confusion_matrix

    y = np.array(list("AABBCCDDAB"))
    pred = np.array(list("ABBBCDDCAA"))
    assert metrics.accuracy(y, pred) == accuracy_score(y, pred) == 0.6
    table = metrics.confusion(y, pred, "ABCD")
    assert table.to_numpy().tolist() == confusion_matrix(y, pred, labels=list("ABCD")).tolist()
    assert table.loc["A", "B"] == 1 and table.loc["B", "A"] == 1 and table.loc["C", "D"] == 1
    assert table.index.name == "true" and table.columns.name == "predicted"
    with pytest.raises(ValueError, match=r"values \['E'\] are not among the labels"):
        metrics.confusion(y, np.where(pred == "D", "E", pred), "ABCD")
    with pytest.raises(ValueError, match="one non-zero length"):
        metrics.accuracy(y, pred[:-1])


def _wilson(k, n, z=1.959963984540054):
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


@pytest.mark.parametrize("k, n", [(0, 10), (3, 10), (10, 10), (45, 60), (1, 1)])
def test_wilson_interval_matches_the_formula(k, n):
    est = metrics.wilson_ci(k, n)
    assert est.value == k / n
    assert (est.low, est.high) == pytest.approx(_wilson(k, n), abs=1e-12)


@pytest.mark.parametrize(
    "k, n, match",
    [(3, 0, "n > 0"), (5, 4, "got 5 of 4"), (-1, 4, "successes must be"), (2.0, 4, "successes")],
)
def test_wilson_refuses_impossible_counts(k, n, match):
    with pytest.raises(ValueError, match=match):
        metrics.wilson_ci(k, n)


@pytest.mark.parametrize("level", [0.0, 1.0, 1.5])
def test_wilson_refuses_a_level_outside_0_1(level):
    with pytest.raises(ValueError, match=r"level must be in \(0, 1\)"):
        metrics.wilson_ci(3, 10, level)


def test_recall_of_one_class_with_its_wilson_interval():
    y = np.array(list("DDDDDAB"))
    pred = np.array(list("DDDCBAB"))
    est = metrics.recall_ci(y, pred, "D")
    assert est.value == 0.6 and (est.low, est.high) == pytest.approx(_wilson(3, 5))
    ninety = metrics.recall_ci(y, pred, "D", level=0.9)  # z = 1.645: a narrower interval
    assert (ninety.low, ninety.high) == pytest.approx(_wilson(3, 5, stats.norm.ppf(0.95)))
    assert ninety.level == 0.9 and est.low < ninety.low < ninety.high < est.high
    with pytest.raises(ValueError, match="no sample of class 'C'"):
        metrics.recall_ci(y, pred, "C")


def test_adjacent_error_share_hand_case():
    y = list("ABCDAD")
    pred = list("BBDAAC")  # errors: A->B (1 step), C->D (1), D->A (3), D->C (1)
    assert metrics.adjacent_error_share(y, pred, "ABCD") == 0.75
    assert np.isnan(metrics.adjacent_error_share(list("AB"), list("AB"), "ABCD"))
    with pytest.raises(ValueError, match=r"values \['E'\] are not in the order"):
        metrics.adjacent_error_share(["E"], ["A"], "ABCD")


def _best_monotone_accuracy(score, y, k):
    """Brute force: every way to give increasing classes to the sorted distinct scores."""
    values = np.unique(score)
    best = 0
    for cuts in itertools.combinations_with_replacement(range(len(values) + 1), k - 1):
        cls = np.searchsorted(np.asarray(cuts), np.arange(len(values)), side="right")
        pred = cls[np.searchsorted(values, score)]
        best = max(best, int((pred == y).sum()))
    return best


@pytest.mark.parametrize("seed", range(6))
def test_ordinal_cutpoints_reach_the_best_monotone_accuracy(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, 14)
    score = np.round(y + rng.normal(0, 1.2, 14), 1)  # noisy, with ties
    cuts = metrics.ordinal_cutpoints(score, y, 4)
    pred = metrics.apply_cutpoints(score, cuts)
    assert np.all(np.diff(cuts) >= 0) and len(cuts) == 3
    assert int((pred == y).sum()) == _best_monotone_accuracy(score, y, 4)


def test_ordinal_cutpoints_on_a_hand_case():
    score = [1, 2, 3, 10, 11, 20, 21, 30]
    y = [0, 0, 0, 1, 1, 2, 2, 3]
    cuts = metrics.ordinal_cutpoints(score, y, 4)
    np.testing.assert_allclose(cuts, [6.5, 15.5, 25.5])
    assert metrics.apply_cutpoints([0, 6.5, 7, 16, 100], cuts).tolist() == [0, 0, 1, 2, 3]
    with pytest.raises(ValueError, match="finite"):
        metrics.ordinal_cutpoints([1.0, np.nan], [0, 1], 2)


def test_classification_summary_matches_scikit_learn_and_bootstraps_patients():
    from sklearn.metrics import accuracy_score

    rng = np.random.default_rng(4)
    y = rng.integers(0, 4, 120)
    probs = rng.dirichlet(np.ones(4), 120) + np.eye(4)[y] * 0.4
    probs /= probs.sum(1, keepdims=True)
    groups = np.repeat(np.arange(60), 2)
    out = metrics.classification_summary(y, probs, groups, classes=list("ABCD"), n_boot=200)
    assert out["accuracy"] == pytest.approx(accuracy_score(y, probs.argmax(1)))
    assert out["macro_auc"] == pytest.approx(roc_auc_score(y, probs, multi_class="ovr"))
    for k, c in enumerate("ABCD"):
        assert out["per_class_auc"][c] == pytest.approx(roc_auc_score(y == k, probs[:, k]))
        low, high = out["per_class_auc_ci"][c]
        assert low <= out["per_class_auc"][c] <= high
        assert out["per_class_accuracy"][c] == pytest.approx((probs.argmax(1)[y == k] == k).mean())
        assert out["counts"][c] == (y == k).sum()
    assert out["macro_auc_classes"] == list("ABCD") and out["n_images"] == 120
    same = metrics.classification_summary(y, probs, groups, classes=list("ABCD"), n_boot=200)
    assert same == out  # seeded
    one = metrics.classification_summary(y, probs, np.zeros(120), classes=list("ABCD"), n_boot=50)
    assert one["accuracy_ci"] == [out["accuracy"]] * 2  # one patient: every resample is all
    # every image twice: resampling the pairs (patients) gives the width of the 120 distinct
    # images; resampling the 240 rows as if independent pretends to know more
    twice_y, twice_p = np.repeat(y, 2), np.repeat(probs, 2, axis=0)
    kw = dict(classes=list("ABCD"), n_boot=400)
    pairs = metrics.classification_summary(twice_y, twice_p, np.repeat(np.arange(120), 2), **kw)
    rows = metrics.classification_summary(twice_y, twice_p, **kw)
    assert np.diff(pairs["macro_auc_ci"])[0] > 1.2 * np.diff(rows["macro_auc_ci"])[0]


def test_classification_summary_leaves_absent_classes_undefined_not_nan():
    y = np.array([2, 2, 1, 1, 2, 1])
    probs = np.tile([0.1, 0.3, 0.5, 0.1], (6, 1)) + np.eye(4)[y] * 0.2
    out = metrics.classification_summary(y, probs, classes=list("ABCD"), n_boot=50)
    assert out["per_class_auc"]["A"] is None and out["per_class_auc_ci"]["D"] is None
    assert out["per_class_accuracy"]["A"] is None and out["counts"]["A"] == 0
    assert out["macro_auc_classes"] == ["B", "C"]
    expected = np.mean([roc_auc_score(y == k, probs[:, k]) for k in (1, 2)])
    assert out["macro_auc"] == pytest.approx(expected)
    json.dumps(out, allow_nan=False)  # nothing undefined is written as NaN
    one = metrics.classification_summary(np.array([1, 1]), probs[:2], classes=list("ABCD"))
    assert one["macro_auc"] is None and one["macro_auc_classes"] == []


# ------------------------------------------------------------------- multi-label table
def test_multilabel_table_equals_sklearn_per_label():
    from sklearn.metrics import precision_recall_fscore_support, roc_auc_score

    rng = np.random.default_rng(0)
    y = (rng.random((200, 3)) < [0.5, 0.2, 0.05]).astype(int)
    p = np.clip(0.35 * y + rng.random((200, 3)) * 0.7, 0, 1)
    table = metrics.multilabel_table(y, p, ("a", "b", "c"), n_boot=50)
    pred = (p >= 0.5).astype(int)
    prec, rec, f, sup = precision_recall_fscore_support(y, pred, zero_division=0)
    assert np.allclose(table["precision"], prec) and np.allclose(table["recall"], rec)
    assert np.allclose(table["f1"], f) and table["support"].tolist() == sup.tolist()
    assert np.allclose(table["accuracy"], (pred == y).mean(0))
    assert table.loc["b", "auc"] == pytest.approx(roc_auc_score(y[:, 1], p[:, 1]))
    assert (table["f1_low"] <= table["f1"]).all() and (table["f1"] <= table["f1_high"]).all()


def test_multilabel_table_hand_case_threshold_and_empty_label():
    y = np.array([[1, 0], [1, 0], [0, 0], [0, 0]])
    p = np.array([[0.9, 0.1], [0.4, 0.2], [0.6, 0.3], [0.1, 0.0]])
    table = metrics.multilabel_table(y, p, ("mass", "calcification"), n_boot=20)
    # mass: predicted rows 0 and 2 -> TP 1, FP 1, FN 1: precision = recall = F1 = 1/2
    assert table.loc["mass", ["precision", "recall", "f1"]].tolist() == [0.5, 0.5, 0.5]
    assert table.loc["mass", "accuracy"] == 0.5
    assert np.isnan(table.loc["calcification", "f1"]) and table.loc["calcification", "support"] == 0
    # the label without positives fills the same columns with NaN (no column of its own)
    columns = ["support", "accuracy", "precision", "recall", "f1", "f1_low", "f1_high", "auc"]
    assert table.columns.tolist() == columns
    empty = table.loc["calcification", ["recall", "f1", "f1_low", "f1_high", "auc"]]
    assert empty.isna().all() and table.loc["calcification", "accuracy"] == 1.0
    lower = metrics.multilabel_table(y, p, ("mass", "calcification"), threshold=0.3, n_boot=20)
    assert lower.loc["mass", "recall"] == 1.0
    with pytest.raises(ValueError, match="1 label names for 2 columns"):
        metrics.multilabel_table(y, p, ("mass",))
    with pytest.raises(ValueError, match=r"y_true must be multi-hot \(0/1\)"):
        metrics.multilabel_table(y * 2, p, ("mass", "calcification"))


def test_multilabel_table_label_in_every_image_has_no_auc_but_its_other_numbers():
    from sklearn.metrics import f1_score, precision_score, recall_score

    y = np.array([[1, 1], [0, 1], [1, 1], [0, 1], [0, 1]])
    p = np.array([[0.8, 0.9], [0.3, 0.2], [0.4, 0.7], [0.6, 0.6], [0.1, 0.4]])
    table = metrics.multilabel_table(y, p, ("mass", "benign"), n_boot=20)
    pred = (p[:, 1] >= 0.5).astype(int)
    assert table.loc["benign", "support"] == 5 and np.isnan(table.loc["benign", "auc"])
    assert table.loc["benign", "recall"] == recall_score(y[:, 1], pred) == 0.6
    assert table.loc["benign", "precision"] == precision_score(y[:, 1], pred) == 1.0
    assert table.loc["benign", "f1"] == pytest.approx(f1_score(y[:, 1], pred))
    assert table.loc["mass", "auc"] == pytest.approx(roc_auc_score(y[:, 0], p[:, 0]))


def test_multilabel_table_f1_interval_replays_a_patient_bootstrap_by_hand():
    """Defaults (1000 resamples, seed 0): the same draws of whole patients (two rows each)
    as numpy's generator gives, F1 = 2 TP / (2 TP + FP + FN) by hand, percentile interval."""
    rng = np.random.default_rng(14)
    y = (rng.random((80, 1)) < 0.4).astype(int)
    p = np.clip(0.3 * y + 0.7 * rng.random((80, 1)), 0, 1)
    patients = np.repeat(np.arange(40), 2)
    table = metrics.multilabel_table(y, p, ("mass",), patients)
    yk, pk = y[:, 0], (p[:, 0] >= 0.5).astype(int)

    def by_hand(n_boot, seed):
        draw = np.random.default_rng(seed)
        values = []
        for _ in range(n_boot):
            rows = (2 * draw.integers(0, 40, 40)[:, None] + [0, 1]).ravel()
            tp = int((yk[rows] & pk[rows]).sum())
            wrong = int((yk[rows] != pk[rows]).sum())
            values.append(2 * tp / (2 * tp + wrong) if tp + wrong else 0.0)
        return tuple(np.quantile(values, [0.025, 0.975]))

    expected = by_hand(1000, 0)
    assert (table.loc["mass", "f1_low"], table.loc["mass", "f1_high"]) == pytest.approx(
        expected, abs=1e-12
    )
    # this data tells the settings apart: one resample more, or another seed, moves a bound
    assert by_hand(1001, 0) != pytest.approx(expected, abs=1e-9)
    assert by_hand(1000, 1) != pytest.approx(expected, abs=1e-9)


def test_f1_is_scikit_learns_with_0_when_nothing_is_predicted_or_present():
    from sklearn.metrics import f1_score

    assert metrics.f1([0, 0, 0], [0, 0, 0]) == f1_score([0, 0, 0], [0, 0, 0], zero_division=0)
    assert metrics.f1([0, 0, 0], [0, 0, 0]) == 0.0  # nothing predicted, nothing present
    assert metrics.f1([1, 0, 0], [0, 0, 0]) == 0.0  # nothing predicted
    assert metrics.f1([1, 1, 0, 0], [1, 0, 1, 0]) == 0.5  # TP 1, FP 1, FN 1
    assert metrics.binary_summary([0, 0], [0.1, 0.2])["f1"] == 0.0


def test_f1_thresholds_maximise_f1_and_feed_the_table():
    rng = np.random.default_rng(3)
    y = (rng.random((300, 2)) < [0.3, 0.0]).astype(int)
    p = np.clip(0.3 * y + 0.6 * rng.random((300, 2)), 0, 1)
    cuts = metrics.f1_thresholds(y, p, ("mass", "none"))
    assert cuts["none"] == 0.5
    assert metrics.f1_thresholds(y[:, ::-1], p[:, ::-1], ("none", "mass")) == cuts  # any order
    best = max(metrics.f1(y[:, 0], p[:, 0] >= c) for c in np.unique(p[:, 0]))  # brute force
    assert metrics.f1(y[:, 0], p[:, 0] >= cuts["mass"]) == pytest.approx(best)
    table = metrics.multilabel_table(y, p, ("mass", "none"), threshold=cuts, n_boot=10)
    assert table.loc["mass", "f1"] == pytest.approx(best)
    with pytest.raises(ValueError, match="no value for label"):
        metrics.multilabel_table(y, p, ("mass", "none"), threshold={"mass": 0.5})


# ------------------------------------------------------------------- chapter 04: binary
def test_auprc_equals_sklearn_average_precision_and_a_hand_case():
    from sklearn.metrics import average_precision_score

    rng = np.random.default_rng(5)
    for n, decimals in ((300, 1), (57, 6)):  # with many ties and almost none
        y = rng.integers(0, 2, n)
        s = np.round(0.6 * y + rng.random(n), decimals)
        assert metrics.auprc(y, s) == pytest.approx(average_precision_score(y, s), abs=1e-12)
    # descending: 0.9 (+) P=1 R=1/2; 0.8 (-); 0.7 (+) P=2/3 R=1 -> 1/2 * 1 + 1/2 * 2/3 = 5/6
    assert metrics.auprc([1, 0, 1, 0], [0.9, 0.8, 0.7, 0.1]) == pytest.approx(5 / 6)
    assert metrics.auprc([1, 0], [0.5, 0.5]) == 0.5  # a tie is one threshold: P = 1/2 at R = 1
    assert np.isnan(metrics.auprc([1, 1], [0.2, 0.3])) and np.isnan(metrics.auprc([0], [0.2]))
    with pytest.raises(ValueError, match="only 0 and 1"):
        metrics.auprc([0, 2], [0.1, 0.2])


@pytest.mark.parametrize("threshold", [0.5, 0.3, 0.8])
def test_binary_summary_equals_sklearn(threshold):
    from sklearn.metrics import (
        accuracy_score,
        average_precision_score,
        confusion_matrix,
        f1_score,
        recall_score,
    )

    rng = np.random.default_rng(6)
    y = rng.integers(0, 2, 250)
    s = np.round(np.clip(0.3 * y + 0.7 * rng.random(250), 0, 1), 2)  # some scores on the cut
    out = metrics.binary_summary(y, s, threshold)
    pred = (s >= threshold).astype(int)
    tn, fp, fn, tp = confusion_matrix(y, pred).ravel()
    assert set(out) == {"auc", "auprc", "tpr", "tnr", "f1", "accuracy"}
    assert out["tpr"] == pytest.approx(recall_score(y, pred))
    assert out["tnr"] == pytest.approx(tn / (tn + fp))
    assert out["f1"] == pytest.approx(f1_score(y, pred))
    assert out["accuracy"] == pytest.approx(accuracy_score(y, pred))
    assert out["auc"] == pytest.approx(roc_auc_score(y, s))
    assert out["auprc"] == pytest.approx(average_precision_score(y, s))


def test_binary_summary_hand_case_and_bad_input():
    # score >= threshold is positive: 0.5 counts; TP 2, FN 1, TN 1, FP 1
    out = metrics.binary_summary([1, 1, 1, 0, 0], [0.5, 0.9, 0.2, 0.7, 0.1])
    assert (out["tpr"], out["tnr"], out["accuracy"]) == (2 / 3, 0.5, 0.6)
    assert out["f1"] == pytest.approx(2 / 3)
    one = metrics.binary_summary([1, 1], [0.2, 0.7])
    assert np.isnan(one["auc"]) and np.isnan(one["auprc"]) and np.isnan(one["tnr"])
    assert one["tpr"] == 0.5
    with pytest.raises(ValueError, match="threshold must be a number"):
        metrics.binary_summary([0, 1], [0.1, 0.9], threshold=np.nan)
    with pytest.raises(ValueError, match="empty"):
        metrics.binary_summary([], [])


def test_threshold_table_rows_match_a_manual_loop():
    from sklearn.metrics import confusion_matrix

    y, s = _data(120, seed=8)
    s = 1 / (1 + np.exp(-s))
    cuts = [0.6, 0.7, 0.8]
    table = metrics.threshold_table(y, s, cuts)
    assert table.columns.tolist() == ["threshold", "tpr", "f1", "specificity", "accuracy"]
    assert table["threshold"].tolist() == cuts
    for row, cut in zip(table.itertuples(), cuts, strict=True):
        pred = (s >= cut).astype(int)
        tn, fp, fn, tp = confusion_matrix(y, pred).ravel()
        assert row.tpr == pytest.approx(tp / (tp + fn))
        assert row.specificity == pytest.approx(tn / (tn + fp))
        assert row.accuracy == pytest.approx((tp + tn) / len(y))
        assert row.f1 == pytest.approx(2 * tp / (2 * tp + fp + fn))
    with pytest.raises(ValueError, match="thresholds must be"):
        metrics.threshold_table(y, s, [])
    with pytest.raises(ValueError, match="thresholds must be"):
        metrics.threshold_table(y, s, [0.5, None])  # a missing value, not a TypeError


# ------------------------------------------------------------------- chapter 04: paired tests
def _two_models(n=150, seed=9):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    return y, 1.2 * y + rng.normal(size=n), 0.3 * y + rng.normal(size=n)


def test_paired_auc_delta_of_identical_scores_is_exactly_zero():
    y, a, _ = _two_models()
    est = metrics.paired_auc_delta(y, a, a.copy(), n_boot=300)
    assert (est.value, est.low, est.high, est.p) == (0.0, 0.0, 0.0, 1.0)
    groups = np.arange(len(y)) // 3
    est = metrics.paired_auc_delta(y, a, a.copy(), groups=groups, n_boot=100)
    assert (est.value, est.low, est.high) == (0.0, 0.0, 0.0)


def test_paired_auc_delta_point_estimate_interval_and_p():
    y, a, b = _two_models()
    est = metrics.paired_auc_delta(y, a, b, n_boot=800, seed=1)
    assert est.value == pytest.approx(roc_auc_score(y, a) - roc_auc_score(y, b), abs=1e-12)
    assert 0 < est.low < est.value < est.high and est.p < 0.01
    reverse = metrics.paired_auc_delta(y, b, a, n_boot=800, seed=1)
    assert (reverse.value, reverse.low, reverse.high) == pytest.approx(
        (-est.value, -est.high, -est.low)
    )
    assert reverse.p == est.p and (est.level, est.n_boot) == (0.95, 800)
    assert str(est).endswith(f"p={est.p:.3g}")
    assert metrics.paired_auc_delta(y, a, b, n_boot=800, seed=1) == est  # seed determinism
    assert metrics.paired_auc_delta(y, a, b, n_boot=800, seed=2) != est


@pytest.mark.parametrize("seed", [3, None])
def test_paired_auc_delta_replays_by_hand(seed):
    """The same resampled rows for both scores (one draw per resample), one-class resamples
    skipped, the percentile interval and the doubled share on the other side of 0; the
    seed defaults to 0."""
    rng = np.random.default_rng(10)
    y = np.r_[1, 1, np.zeros(10, int)]  # two positives: some resamples have none
    a, b = y + rng.normal(size=12), 0.5 * y + rng.normal(size=12)
    kw = {} if seed is None else {"seed": seed}
    est = metrics.paired_auc_delta(y, a, b, n_boot=400, level=0.9, **kw)
    draw = np.random.default_rng(0 if seed is None else seed)
    deltas = []
    for _ in range(400):
        pick = draw.integers(0, 12, 12)
        if len(set(y[pick])) < 2:
            continue
        deltas.append(roc_auc_score(y[pick], a[pick]) - roc_auc_score(y[pick], b[pick]))
    deltas = np.array(deltas)
    low, high = np.quantile(deltas, [0.05, 0.95])
    assert (est.low, est.high) == pytest.approx((low, high), abs=1e-12)
    assert est.skipped == 400 - len(deltas) > 0
    exact = np.round(deltas, 12)  # sklearn's trapezoids leave 1e-16 where a delta is 0
    assert est.value < 0 and est.p == pytest.approx(min(1.0, 2 * (exact >= 0).mean()))


def test_paired_auc_delta_resamples_patients_as_whole_clusters():
    """Four identical rows per patient: the interval equals the one-row-per-patient one
    (same draws) and is wider than resampling the rows as if independent."""
    y, a, b = _two_models(60, seed=11)

    def rows(v):
        return np.repeat(v, 4)

    patients = np.repeat(np.arange(60), 4)
    kw = dict(n_boot=400, seed=4)
    grouped = metrics.paired_auc_delta(rows(y), rows(a), rows(b), groups=patients, **kw)
    single = metrics.paired_auc_delta(y, a, b, groups=np.arange(60), **kw)
    assert (grouped.low, grouped.high) == pytest.approx((single.low, single.high), abs=1e-12)
    assert grouped.p == single.p
    naive = metrics.paired_auc_delta(rows(y), rows(a), rows(b), **kw)
    assert grouped.high - grouped.low > 1.5 * (naive.high - naive.low)


def test_paired_auc_delta_refuses_bad_input():
    y, a, b = _two_models(20)
    with pytest.raises(ValueError, match="score_b must be 1-D with 20 values"):
        metrics.paired_auc_delta(y, a, b[:-1])
    with pytest.raises(ValueError, match="score_a hold 1 NaN"):
        metrics.paired_auc_delta(y, np.r_[np.nan, a[1:]], b)
    with pytest.raises(ValueError, match="both classes"):
        metrics.paired_auc_delta(np.ones(20, int), a, b)
    with pytest.raises(ValueError, match="n_boot"):
        metrics.paired_auc_delta(y, a, b, n_boot=0)


def test_wilcoxon_p_equals_scipy_and_the_exact_small_case():
    rng = np.random.default_rng(12)
    for n in (20, 80):  # exact and normal-approximation regimes of scipy's "auto"
        a, b = rng.random(n), rng.random(n) + 0.1
        assert metrics.wilcoxon_p(a, b) == stats.wilcoxon(a, b).pvalue
    # five positive differences: the two-sided exact p is 2 * P(W+ = 15) = 2 / 2**5
    p = metrics.wilcoxon_p([1, 2, 3, 4, 5], [0, 0, 0, 0, 0])
    assert p == pytest.approx(2 / 32) and p == pytest.approx(0.0625)
    assert np.isnan(metrics.wilcoxon_p([0.1, 0.2, 0.3], [0.1, 0.2, 0.3]))


def test_wilcoxon_table_is_symmetric_with_a_nan_diagonal():
    rng = np.random.default_rng(13)
    base = rng.random(60)
    scores = {"P_score": base, "P_feat": base + rng.normal(0.05, 0.1, 60), "max": rng.random(60)}
    table = metrics.wilcoxon_table(scores)
    names = list(scores)
    assert table.index.tolist() == names and table.columns.tolist() == names
    values = table.to_numpy()
    assert np.isnan(np.diag(values)).all()
    assert np.array_equal(values, values.T, equal_nan=True)
    for i, j in itertools.combinations(names, 2):
        assert table.loc[i, j] == metrics.wilcoxon_p(scores[i], scores[j])


def test_wilcoxon_refuses_unequal_or_nan_scores_naming_the_models():
    a = np.arange(5.0)
    with pytest.raises(ValueError, match="'A' and 'B' differ in length: 5, 4"):
        metrics.wilcoxon_table({"A": a, "B": a[:4]})
    with pytest.raises(ValueError, match="scores of 'B' hold 1 NaN"):
        metrics.wilcoxon_table({"A": a, "B": np.r_[a[:4], np.nan]})
    with pytest.raises(ValueError, match="score_a and score_b differ in length"):
        metrics.wilcoxon_p(a, a[:3])
    with pytest.raises(ValueError, match="non-empty dict"):
        metrics.wilcoxon_table({})


# ------------------------------------------------------------------- chapter 04: FROC
def _det(boxes, scores, labels=None):
    labels = ["mass"] * len(scores) if labels is None else labels
    return {"boxes": np.asarray(boxes, float).reshape(-1, 4), "scores": scores, "labels": labels}


def _truth(boxes, labels=None):
    labels = ["mass"] * len(boxes) if labels is None else labels
    return {"boxes": np.asarray(boxes, float).reshape(-1, 4), "labels": labels}


LESION = [0, 0, 10, 10]


def _rows(curve):
    return [tuple(r) for r in curve[["threshold", "sensitivity", "fpi"]].itertuples(index=False)]


def test_froc_centre_inside_is_a_hit_even_with_a_small_iou():
    """(a): small box inside, big box around, centre on the corner (edges count)."""
    for box in ([4, 4, 6, 6], [-40, -40, 50, 50], [9, 9, 11, 11]):
        assert mh.boxes.box_iou(box, LESION)[0, 0] < 0.2
        curve = metrics.froc([_det([box], [0.7])], [_truth([LESION])])
        assert _rows(curve) == [(np.inf, 0.0, 0.0), (0.7, 1.0, 0.0)], box
    miss = metrics.froc([_det([[10.5, 0, 12.5, 2]], [0.7])], [_truth([LESION])])
    assert _rows(miss)[-1] == (0.7, 0.0, 1.0)  # centre outside, no overlap: false positive


def test_froc_iou_at_least_the_cut_is_a_hit_with_the_centre_outside():
    """(b): IoU 0.25 with the centre (11, 5) outside the lesion; IoU 0.11 is a miss."""
    box = [6, 0, 16, 10]
    assert mh.boxes.box_iou(box, LESION)[0, 0] == pytest.approx(0.25)
    assert _rows(metrics.froc([_det([box], [0.6])], [_truth([LESION])]))[-1] == (0.6, 1.0, 0.0)
    stricter = metrics.froc([_det([box], [0.6])], [_truth([LESION])], iou=0.3)
    assert _rows(stricter)[-1] == (0.6, 0.0, 1.0)
    weak = metrics.froc([_det([[8, 0, 18, 10]], [0.6])], [_truth([LESION])])
    assert _rows(weak)[-1] == (0.6, 0.0, 1.0)


def test_froc_second_detection_of_a_found_lesion_is_neither_hit_nor_false_positive():
    """(c)"""
    det = _det([LESION, [1, 1, 9, 9], [50, 50, 60, 60]], [0.9, 0.8, 0.7])
    curve = metrics.froc([det], [_truth([LESION])])
    assert _rows(curve) == [(np.inf, 0, 0), (0.9, 1, 0), (0.8, 1, 0), (0.7, 1, 1)]


def test_froc_per_label_wrong_class_is_a_false_positive_and_finds_nothing():
    """(d): a calcification detection on a mass."""
    truth = _truth([LESION, [20, 20, 30, 30]], ["mass", "calc"])
    det = _det([LESION], [0.9], ["calc"])
    assert _rows(metrics.froc([det], [truth], label="calc")) == [(np.inf, 0, 0), (0.9, 0, 1)]
    assert _rows(metrics.froc([det], [truth], label="mass")) == [(np.inf, 0, 0)]
    assert _rows(metrics.froc([det], [truth])) == [(np.inf, 0, 0), (0.9, 0.5, 0)]  # agnostic
    ints = metrics.froc([_det([LESION], [0.9], [1])], [_truth([LESION], [1])], label=1)
    assert _rows(ints)[-1] == (0.9, 1, 0)  # integer labels work alike


def test_froc_normal_images_add_false_positives_and_count_as_images():
    """(e): one image with a found lesion, one normal image with two detections."""
    dets = [_det([LESION], [0.9]), _det([[0, 0, 5, 5], [30, 30, 40, 40]], [0.8, 0.6])]
    truths = [_truth([LESION]), _truth([])]
    curve = metrics.froc(dets, truths)
    assert _rows(curve) == [(np.inf, 0, 0), (0.9, 1, 0), (0.8, 1, 0.5), (0.6, 1, 1)]
    assert metrics.fp_images(dets, 0.7, truths=truths) == (1, 1)
    assert metrics.fp_images(dets, 0.8, truths=truths) == (1, 1)  # score >= threshold counts
    assert metrics.fp_images(dets, 0.6, truths=truths) == (2, 1)
    assert metrics.fp_images(dets, 0.5, truths=truths) == (2, 1)
    assert metrics.fp_images(dets[1:], 0.5) == (2, 1)  # without truths: all images normal
    assert metrics.fp_images(dets, 0.5) == (3, 2)
    assert metrics.fp_images(dets, 0.5, truths=truths, label="calc") == (0, 0)
    no_detection = metrics.froc([_det([], [])] * 2, [_truth([LESION]), _truth([])])
    assert _rows(no_detection) == [(np.inf, 0, 0)]


def test_froc_without_any_lesion_has_nan_sensitivity_and_counts_false_positives():
    dets = [_det([[0, 0, 5, 5], [30, 30, 40, 40]], [0.8, 0.6]), _det([LESION], [0.8])]
    curve = metrics.froc(dets, [_truth([]), _truth([])])
    assert curve["threshold"].tolist() == [np.inf, 0.8, 0.6]
    assert curve["sensitivity"].isna().all() and curve["fpi"].tolist() == [0.0, 1.0, 1.5]
    assert np.isnan(metrics.tpr_at_fpi(curve))
    assert metrics.fp_images(dets, 0.6, truths=[_truth([]), _truth([])]) == (3, 2)


def test_froc_detection_on_two_lesions_finds_the_larger_iou_first():
    """(f): the first detection's centre (10, 5) lies in both lesions, IoU 1/3 with A and
    7/13 with B: it finds B, so the second one, which hits only B, finds nothing new."""
    a, b = LESION, [8, 0, 18, 10]
    det = _det([[5, 0, 15, 10], [14, 0, 18, 10]], [0.9, 0.8])
    curve = metrics.froc([det], [_truth([a, b])])
    assert _rows(curve) == [(np.inf, 0, 0), (0.9, 0.5, 0), (0.8, 0.5, 0)]
    det = _det([[5, 0, 15, 10], [1, 0, 4, 10]], [0.9, 0.8])  # the second hits only A
    assert _rows(metrics.froc([det], [_truth([a, b])]))[-1] == (0.8, 1.0, 0.0)


def test_froc_refuses_bad_input():
    with pytest.raises(ValueError, match="detections has 1 images, truths 2"):
        metrics.froc([_det([LESION], [0.5])], [_truth([]), _truth([])])
    with pytest.raises(ValueError, match=r"detections\[0\] has no \['scores'\]"):
        metrics.froc([{"boxes": [LESION]}], [_truth([])])
    with pytest.raises(ValueError, match=r"truths\[0\] has no \['labels'\]"):
        metrics.froc([_det([LESION], [0.5])], [{"boxes": [LESION]}], label="mass")
    with pytest.raises(ValueError, match=r"detections\[0\]\['scores'\] must hold one"):
        metrics.froc([_det([LESION], [0.5, 0.4])], [_truth([])])
    with pytest.raises(ValueError, match=r"truths\[0\]\['boxes'\] must have shape"):
        metrics.froc([_det([LESION], [0.5])], [{"boxes": [[1, 2, 3]], "labels": ["mass"]}])
    with pytest.raises(ValueError, match="iou must be in"):
        metrics.froc([_det([LESION], [0.5])], [_truth([])], iou=0)
    with pytest.raises(ValueError, match="no image"):
        metrics.froc([], [])
    with pytest.raises(ValueError, match=r"detections\[0\] must be a dict with 'boxes', got list"):
        metrics.froc([[LESION]], [_truth([])])
    with pytest.raises(ValueError, match=r"truths\[1\] must be a dict with 'boxes', got NoneType"):
        metrics.fp_images([_det([], [])] * 2, 0.5, truths=[_truth([]), None])
    with pytest.raises(ValueError, match=r"truths\[0\] has 1 boxes but 2 labels"):
        metrics.froc([_det([LESION], [0.5])], [_truth([LESION], ["mass", "calc"])], label="mass")


def _iou(p, q):
    w = max(0.0, min(p[2], q[2]) - max(p[0], q[0]))
    h = max(0.0, min(p[3], q[3]) - max(p[1], q[1]))
    union = (p[2] - p[0]) * (p[3] - p[1]) + (q[2] - q[0]) * (q[3] - q[1]) - w * h
    return w * h / union


def _by_hand(dets, truths, threshold, label):
    """From scratch at one threshold: lesions found and false positives, greedy by score."""
    found_total, false_total = 0, 0
    for det, truth in zip(dets, truths, strict=True):
        lesions = [
            list(t) for t, lab in zip(truth["boxes"], truth["labels"], strict=True)
            if label is None or lab == label
        ]  # fmt: skip
        kept = [
            (s, list(box)) for box, s, lab in zip(det["boxes"], det["scores"], det["labels"], strict=True)
            if s >= threshold and (label is None or lab == label)
        ]  # fmt: skip
        found = [False] * len(lesions)
        for _, box in sorted(kept, key=lambda item: -item[0]):  # stable: ties in input order
            cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
            hit = [
                _iou(box, t) >= 0.2 or (t[0] <= cx <= t[2] and t[1] <= cy <= t[3]) for t in lesions
            ]
            new = [k for k in range(len(lesions)) if hit[k] and not found[k]]
            if new:
                found[max(new, key=lambda k: (_iou(box, lesions[k]), -k))] = True
            elif not any(hit):
                false_total += 1
        found_total += sum(found)
    return found_total, false_total


def _random_problem(seed, n_images=30):
    rng = np.random.default_rng(seed)
    dets, truths = [], []
    for _ in range(n_images):
        m = rng.choice([0, 0, 1, 2, 3])  # some normal images
        xy = rng.uniform(0, 60, (m, 2))
        lesions = np.c_[xy, xy + rng.uniform(5, 25, (m, 2))]
        k = rng.integers(0, 7)
        near = lesions[rng.integers(0, m, k)] if m else rng.uniform(0, 60, (k, 4))
        jitter = rng.normal(0, 6, (k, 4))
        boxes = np.sort((near + jitter).reshape(k, 2, 2), axis=1).reshape(k, 4)
        boxes = np.c_[np.minimum(boxes[:, :2], boxes[:, 2:] - 1), boxes[:, 2:]]
        dets.append(_det(boxes, np.round(rng.random(k), 1).tolist(), rng.integers(0, 2, k)))
        truths.append(_truth(lesions, rng.integers(0, 2, m)))
    return dets, truths


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("label", [None, 0])
def test_froc_cumulative_curve_equals_recounting_at_every_threshold(seed, label):
    dets, truths = _random_problem(seed)
    curve = metrics.froc(dets, truths, label=label)
    n_lesions = sum(
        sum(label is None or lab == label for lab in t["labels"]) for t in truths
    )  # fmt: skip
    scores = [s for d in dets for s, lab in zip(d["scores"], d["labels"], strict=True)
              if label is None or lab == label]  # fmt: skip
    assert curve["threshold"].tolist() == [np.inf, *sorted(set(scores), reverse=True)]
    assert _rows(curve)[0] == (np.inf, 0.0, 0.0)
    for row in curve.iloc[1:].itertuples():
        found, false = _by_hand(dets, truths, row.threshold, label)
        assert row.sensitivity == pytest.approx(found / n_lesions), row.threshold
        assert row.fpi == pytest.approx(false / len(dets)), row.threshold
    assert (np.diff(curve.sensitivity) >= 0).all() and (np.diff(curve.fpi) >= 0).all()
    assert 0 < curve.sensitivity.iloc[-1] < 1 or label is not None  # the problem has both


def test_tpr_at_fpi_reads_the_curve_as_steps():
    import pandas as pd

    curve = pd.DataFrame(
        {
            "threshold": [np.inf, 0.9, 0.8, 0.7, 0.6],
            "sensitivity": [0.0, 0.5, 0.5, 0.75, 1.0],
            "fpi": [0.0, 0.0, 0.5, 1.0, 1.5],
        }
    )
    assert metrics.tpr_at_fpi(curve) == 0.75  # fpi = 1.0 counts (<=)
    assert metrics.tpr_at_fpi(curve, 0.99) == 0.5  # no interpolation towards 0.75
    assert metrics.tpr_at_fpi(curve, 0.0) == 0.5
    assert metrics.tpr_at_fpi(curve, 10) == 1.0
    with pytest.raises(ValueError, match="fpi must be >= 0"):
        metrics.tpr_at_fpi(curve, -1)
    with pytest.raises(ValueError, match="no column"):
        metrics.tpr_at_fpi(curve.drop(columns="fpi"))
    with pytest.raises(ValueError, match=r"no column\(s\) \['fpi', 'sensitivity'\]"):
        metrics.tpr_at_fpi(curve.to_numpy())  # not a table at all
    assert np.isnan(metrics.tpr_at_fpi(curve.iloc[2:], 0.4))  # no row within the budget


# ------------------------------------------------------------------- operating points
def _brute_gmean(y, s):
    """The G-mean maximum over every distinct score, by a plain loop (highest cut on ties)."""
    best, best_cut = -1.0, None
    for cut in sorted(set(s.tolist()), reverse=True):
        pred = s >= cut
        sens = pred[y == 1].mean()
        spec = (~pred[y == 0]).mean()
        g = np.sqrt(sens * spec)
        if g > best + 1e-15:
            best, best_cut = g, cut
    return best_cut


@pytest.mark.parametrize("seed", range(6))
def test_gmean_threshold_equals_a_brute_force_search(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 80)
    y[:2] = [0, 1]
    s = np.round(y * rng.uniform(0, 1.5) + rng.normal(size=80), 1)  # ties on purpose
    assert mh.metrics.gmean_threshold(y, s) == _brute_gmean(y, s)


def test_gmean_threshold_hand_case_and_bad_input():
    y = np.array([0, 0, 0, 1, 1, 1])
    s = np.array([0.1, 0.2, 0.7, 0.3, 0.8, 0.9])
    # cut 0.3: sens 1, spec 2/3 -> 0.816; cut 0.8: sens 2/3, spec 1 -> 0.816 (tie: higher wins)
    assert mh.metrics.gmean_threshold(y, s) == 0.8
    separable = mh.metrics.gmean_threshold([0, 0, 1, 1], [0.1, 0.2, 0.6, 0.9])
    assert separable == 0.6
    with pytest.raises(ValueError, match="val split.*only positives"):
        mh.metrics.gmean_threshold([1, 1, 1], [0.1, 0.5, 0.9], where="val split")
    with pytest.raises(ValueError, match="only negatives"):
        mh.metrics.gmean_threshold([0, 0], [0.1, 0.5])
    with pytest.raises(ValueError, match="test split: score holds 1 non-finite"):
        mh.metrics.gmean_threshold([0, 1], [0.1, np.nan], where="test split")


def test_operating_point_equals_sklearn_and_resamples_patients():
    from sklearn.metrics import recall_score

    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 120)
    s = y * 0.8 + rng.normal(size=120)
    groups = np.repeat(np.arange(30), 4)
    out = mh.metrics.operating_point(y, s, 0.4, groups, n_boot=300, seed=1)
    pred = (s >= 0.4).astype(int)
    assert out["sensitivity"].value == pytest.approx(recall_score(y, pred, pos_label=1))
    assert out["specificity"].value == pytest.approx(recall_score(y, pred, pos_label=0))
    assert out["gmean"] == pytest.approx(
        np.sqrt(out["sensitivity"].value * out["specificity"].value)
    )
    for key in ("sensitivity", "specificity"):
        est = out[key]
        assert est.low < est.value < est.high
    # resampling 30 patients gives a wider interval than resampling 120 images
    images = mh.metrics.operating_point(y, s, 0.4, None, n_boot=300, seed=1)
    group_width = out["sensitivity"].high - out["sensitivity"].low
    image_width = images["sensitivity"].high - images["sensitivity"].low
    assert group_width != image_width
    with pytest.raises(ValueError, match="threshold must be a number"):
        mh.metrics.operating_point(y, s, None)


def test_percent_drop_reproduces_paper_05():
    # §6.1: INbreast in-domain (Table 2) against the private set (Table 4)
    assert mh.metrics.percent_drop(0.967, 0.755) == pytest.approx(21.92, abs=0.005)
    assert mh.metrics.percent_drop(0.870, 0.666) == pytest.approx(23.45, abs=0.005)
    assert mh.metrics.percent_drop(0.974, 0.790) == pytest.approx(18.89, abs=0.005)
    # §6.3: a gain is a negative drop (Config 2, AUC +7.15 %)
    assert mh.metrics.percent_drop(0.755, 0.809) == pytest.approx(-7.15, abs=0.005)
    with pytest.raises(ValueError, match="non-zero reference"):
        mh.metrics.percent_drop(0.0, 0.5)
