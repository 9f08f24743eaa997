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


def test_recall_of_one_class_with_its_wilson_interval():
    y = np.array(list("DDDDDAB"))
    pred = np.array(list("DDDCBAB"))
    est = metrics.recall_ci(y, pred, "D")
    assert est.value == 0.6 and (est.low, est.high) == pytest.approx(_wilson(3, 5))
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
    lower = metrics.multilabel_table(y, p, ("mass", "calcification"), threshold=0.3, n_boot=20)
    assert lower.loc["mass", "recall"] == 1.0
    with pytest.raises(ValueError, match="1 label names for 2 columns"):
        metrics.multilabel_table(y, p, ("mass",))


def test_f1_thresholds_maximise_f1_and_feed_the_table():
    rng = np.random.default_rng(3)
    y = (rng.random((300, 2)) < [0.3, 0.0]).astype(int)
    p = np.clip(0.3 * y + 0.6 * rng.random((300, 2)), 0, 1)
    cuts = metrics.f1_thresholds(y, p, ("mass", "none"))
    assert cuts["none"] == 0.5
    best = max(metrics.f1(y[:, 0], p[:, 0] >= c) for c in np.unique(p[:, 0]))  # brute force
    assert metrics.f1(y[:, 0], p[:, 0] >= cuts["mass"]) == pytest.approx(best)
    table = metrics.multilabel_table(y, p, ("mass", "none"), threshold=cuts, n_boot=10)
    assert table.loc["mass", "f1"] == pytest.approx(best)
    with pytest.raises(ValueError, match="no value for label"):
        metrics.multilabel_table(y, p, ("mass", "none"), threshold={"mass": 0.5})
