"""Classification metrics with confidence intervals that resample patients.

Images of one patient are not independent (four views, two sides), so every interval here
is a percentile bootstrap over **patients** (groups), not over images. Used by chapter 00's
learnability check and the training chapters 01-05: binary and one-vs-rest AUCs, accuracy,
confusion matrices, per-class recall with Wilson intervals, and the share of errors between
adjacent ordinal classes (BI-RADS density, chapter 01), and the per-label table of a
multi-label classifier (chapter 02). Chapter 04 adds the area under the precision-recall
curve, a binary summary and threshold table, paired model comparisons (a paired bootstrap
of the AUC difference and Wilcoxon signed-rank tests) and FROC curves of a lesion detector.
Chapter 05 adds the G-mean-optimal threshold, sensitivity and specificity at a fixed
threshold with patient-bootstrap intervals, and the relative drop of a metric in percent.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from numbers import Real

import numpy as np
from scipy.stats import rankdata

from .boxes import as_boxes, box_iou

__all__ = [
    "Estimate",
    "accuracy",
    "adjacent_error_share",
    "apply_cutpoints",
    "auc_ci",
    "auprc",
    "binary_summary",
    "bootstrap_ci",
    "classification_summary",
    "confusion",
    "f1",
    "f1_thresholds",
    "fp_images",
    "froc",
    "gmean_threshold",
    "macro_auc",
    "multilabel_table",
    "one_vs_rest_auc",
    "operating_point",
    "ordinal_cutpoints",
    "paired_auc_delta",
    "per_class_auc_ci",
    "percent_drop",
    "recall_ci",
    "roc_auc",
    "threshold_table",
    "tpr_at_fpi",
    "wilcoxon_p",
    "wilcoxon_table",
    "wilson_ci",
]


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its percentile-bootstrap interval.

    ``skipped`` counts the resamples on which the statistic was undefined (e.g. one class
    only); they are left out of the interval, never counted as a value. ``p`` is a
    two-sided bootstrap p-value where one was computed (:func:`paired_auc_delta`), else None.
    """

    value: float
    low: float
    high: float
    level: float = 0.95
    n_boot: int = 0
    skipped: int = 0
    p: float | None = None

    def __str__(self) -> str:
        text = f"{self.value:.3f} [{self.low:.3f}, {self.high:.3f}]"
        return text if self.p is None else f"{text} p={self.p:.3g}"


def _binary(y_true, score) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true)
    s = np.asarray(score, dtype=float)
    if y.ndim != 1 or s.shape != y.shape:
        raise ValueError(f"y_true and score must be 1-D of one length, got {y.shape} and {s.shape}")
    if not np.isin(y, (0, 1)).all():
        raise ValueError(f"y_true must hold only 0 and 1, got {sorted(set(y.tolist()))[:5]}")
    if not np.isfinite(s).all():
        raise ValueError(f"score holds {int((~np.isfinite(s)).sum())} non-finite values")
    return y.astype(int), s


def roc_auc(y_true, score) -> float:
    """Area under the ROC curve as the Mann-Whitney statistic (ties count one half): the
    value scikit-learn's ``roc_auc_score`` gives, fast enough for thousands of resamples."""
    y, s = _binary(y_true, score)
    n_pos = int(y.sum())
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError(f"AUC needs both classes; y_true has {n_pos} positives, {n_neg} negatives")
    ranks = rankdata(s)
    return float((ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _group_index(groups, n: int) -> list[np.ndarray]:
    """Row indices of each group (each row its own group when ``groups`` is None)."""
    if groups is None:
        return [np.array([i]) for i in range(n)]
    g = np.asarray(groups)
    if g.shape != (n,):
        raise ValueError(f"groups must have one entry per sample ({n}), got shape {g.shape}")
    _, inverse = np.unique(g, return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    return np.split(order, np.flatnonzero(np.diff(inverse[order])) + 1)


def bootstrap_ci(
    statistic: Callable[[np.ndarray, np.ndarray], float],
    y_true,
    score,
    groups=None,
    *,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> Estimate:
    """``statistic(y, score)`` with a percentile interval from resampling whole ``groups``
    (patients) with replacement. A resample on which the statistic raises ``ValueError``
    (e.g. a single class) is skipped and counted. ``score`` may be 2-D (rows resampled
    together, e.g. two models' scores in :func:`paired_auc_delta`)."""
    value, values = _bootstrap(statistic, y_true, score, groups, n_boot, level, seed)
    return _percentile(value, values, level, n_boot)


def _bootstrap(statistic, y_true, score, groups, n_boot, level, seed):
    """The statistic on the data and on each resample of whole ``groups`` on which it is
    defined: ``(value, resampled values)`` (the engine of :func:`bootstrap_ci`)."""
    y, s = np.asarray(y_true), np.asarray(score)
    if not (isinstance(n_boot, int) and n_boot >= 1):
        raise ValueError(f"n_boot must be an integer >= 1, got {n_boot!r}")
    if not (0 < level < 1):
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    value = statistic(y, s)
    index = _group_index(groups, len(y))
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n_boot):
        pick = np.concatenate([index[i] for i in rng.integers(0, len(index), len(index))])
        try:
            values.append(statistic(y[pick], s[pick]))
        except ValueError:
            continue
    return value, np.asarray(values, dtype=float)


def _percentile(value, values: np.ndarray, level: float, n_boot: int, p=None) -> Estimate:
    skipped = n_boot - len(values)
    if not len(values):
        return Estimate(value, math.nan, math.nan, level, n_boot, skipped, p)
    low, high = np.quantile(values, [(1 - level) / 2, (1 + level) / 2])
    return Estimate(value, float(low), float(high), level, n_boot, skipped, p)


def auc_ci(
    y_true, score, groups=None, *, n_boot: int = 1000, level: float = 0.95, seed: int = 0
) -> Estimate:
    """ROC AUC with a patient-bootstrap interval (``groups`` = patient ids; chapter 00)."""
    return bootstrap_ci(roc_auc, y_true, score, groups, n_boot=n_boot, level=level, seed=seed)


# ------------------------------------------------------------------- several classes
def _labels(y_true, n_classes: int | None = None) -> np.ndarray:
    """Integer class indices 0..K-1 (1-D)."""
    y = np.asarray(y_true)
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"y_true must be 1-D integer class indices, got {y.dtype} {y.shape}")
    if n_classes is not None and len(y) and (y.min() < 0 or y.max() >= n_classes):
        raise ValueError(f"y_true holds class indices outside 0..{n_classes - 1}")
    return y


def _probs(y_true, probs) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(probs, dtype=float)
    if p.ndim != 2 or p.shape[1] < 2:
        raise ValueError(f"probs must be (samples, classes) with >= 2 classes, got {p.shape}")
    y = _labels(y_true, p.shape[1])
    if len(y) != len(p):
        raise ValueError(f"y_true has {len(y)} samples, probs {len(p)}")
    return y, p


def one_vs_rest_auc(y_true, probs) -> np.ndarray:
    """The AUC of each class's score (column of ``probs``) for that class against all the
    others; raises ``ValueError`` naming a class with no sample (or every sample)."""
    y, p = _probs(y_true, probs)
    out = []
    for k in range(p.shape[1]):
        try:
            out.append(roc_auc(y == k, p[:, k]))
        except ValueError as exc:
            raise ValueError(f"class {k}: {exc}") from None
    return np.asarray(out)


def macro_auc(y_true, probs) -> float:
    """The unweighted mean of the one-vs-rest AUCs (scikit-learn's ``multi_class="ovr"``,
    ``average="macro"``)."""
    return float(one_vs_rest_auc(y_true, probs).mean())


def per_class_auc_ci(
    y_true, probs, groups=None, *, classes=None, n_boot: int = 1000, seed: int = 0
):
    """One row per class (one-vs-rest AUC, patient-bootstrap interval, sample count) and a
    last row ``macro``; ``classes`` names the columns of ``probs`` (default 0..K-1)."""
    import pandas as pd

    y, p = _probs(y_true, probs)
    names = list(range(p.shape[1])) if classes is None else list(classes)
    if len(names) != p.shape[1]:
        raise ValueError(f"{len(names)} class names for {p.shape[1]} columns of probs")
    kw = dict(n_boot=n_boot, seed=seed)
    rows = []
    for k, name in enumerate(names):
        est = bootstrap_ci(lambda yy, pp, k=k: roc_auc(yy == k, pp[:, k]), y, p, groups, **kw)
        rows.append({"class": name, **_row(est), "samples": int((y == k).sum())})
    rows.append({"class": "macro", **_row(bootstrap_ci(macro_auc, y, p, groups, **kw))})
    rows[-1]["samples"] = len(y)
    return pd.DataFrame(rows)


def _row(est: Estimate) -> dict:
    return {"auc": est.value, "low": est.low, "high": est.high}


def _outside(allowed, *arrays) -> list:
    """The values of ``arrays`` that are not in ``allowed``, sorted."""
    seen = set().union(*(np.asarray(a).tolist() for a in arrays))
    return sorted(seen - set(allowed), key=str)


def accuracy(y_true, y_pred) -> float:
    """Share of predictions equal to the truth."""
    y, pred = np.asarray(y_true), np.asarray(y_pred)
    if y.shape != pred.shape or y.ndim != 1 or not len(y):
        raise ValueError(
            f"y_true and y_pred must be 1-D of one non-zero length: {y.shape}, {pred.shape}"
        )
    return float((y == pred).mean())


def confusion(y_true, y_pred, labels):
    """Counts with the true class in rows and the predicted class in columns, named by
    ``labels`` (``sklearn.metrics.confusion_matrix`` as a table)."""
    import pandas as pd
    from sklearn.metrics import confusion_matrix

    labels = list(labels)
    unknown = _outside(labels, y_true, y_pred)
    if unknown:
        raise ValueError(f"confusion: values {unknown[:5]} are not among the labels {labels}")
    counts = confusion_matrix(y_true, y_pred, labels=labels)
    return pd.DataFrame(
        counts,
        index=pd.Index(labels, name="true"),
        columns=pd.Index(labels, name="predicted"),
    )


def wilson_ci(successes: int, n: int, level: float = 0.95) -> Estimate:
    """The proportion ``successes / n`` with its Wilson score interval (scipy's
    ``binomtest(...).proportion_ci(method="wilson")``)."""
    from scipy.stats import binomtest

    for name, value in (("successes", successes), ("n", n)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
            raise ValueError(f"wilson_ci: {name} must be an integer >= 0, got {value!r}")
    if n == 0 or successes > n:
        raise ValueError(f"wilson_ci: needs 0 <= successes <= n and n > 0, got {successes} of {n}")
    if not (0 < level < 1):
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    ci = binomtest(int(successes), int(n)).proportion_ci(confidence_level=level, method="wilson")
    return Estimate(successes / n, float(ci.low), float(ci.high), level)


def recall_ci(y_true, y_pred, label, level: float = 0.95) -> Estimate:
    """Recall (sensitivity) of one class with its Wilson interval, e.g. density D."""
    y, pred = np.asarray(y_true), np.asarray(y_pred)
    of_class = y == label
    if not of_class.any():
        raise ValueError(f"recall_ci: no sample of class {label!r} in y_true")
    return wilson_ci(int((pred[of_class] == label).sum()), int(of_class.sum()), level)


def adjacent_error_share(y_true, y_pred, order) -> float:
    """Among the wrong predictions, the share one step away on the ordinal scale ``order``
    (e.g. A < B < C < D); NaN when there is no error. Chapter 01."""
    rank = {label: i for i, label in enumerate(order)}
    y, pred = np.asarray(y_true), np.asarray(y_pred)
    unknown = _outside(rank, y, pred)
    if unknown:
        raise ValueError(
            f"adjacent_error_share: values {unknown[:5]} are not in the order {list(order)}"
        )
    distance = np.abs(np.vectorize(rank.get)(y) - np.vectorize(rank.get)(pred)) if len(y) else y
    wrong = distance > 0
    return float((distance[wrong] == 1).mean()) if wrong.any() else math.nan


def ordinal_cutpoints(score, y_true, n_classes: int) -> np.ndarray:
    """The ``n_classes - 1`` increasing thresholds on a 1-D ``score`` that classify the most
    training samples right when class k is given to scores between cutpoint k-1 and k
    (exact, by dynamic programming over the sorted scores; each cutpoint sits midway
    between two neighbouring scores). Chapter 01: the percent-density baseline, thresholds
    fitted on training images."""
    s = np.asarray(score, dtype=float)
    y = _labels(y_true, n_classes)
    if s.ndim != 1 or len(s) != len(y) or not len(s) or not np.isfinite(s).all():
        raise ValueError("ordinal_cutpoints: score must be 1-D, finite and match y_true")
    order = np.argsort(s, kind="stable")
    s, y = s[order], y[order]
    values = np.unique(s)  # tied scores get one class
    hits = np.zeros((len(values), n_classes))  # hits[i, k]: samples of class k at value i
    np.add.at(hits, (np.searchsorted(values, s), y), 1)
    best = np.empty((n_classes, len(values)))  # best[k, i]: most right up to i, i in class k
    came = np.zeros((n_classes, len(values)), dtype=int)
    best[:, 0] = hits[0]
    for i in range(1, len(values)):
        run = -np.inf
        arg = 0
        for k in range(n_classes):
            if best[k, i - 1] > run:
                run, arg = best[k, i - 1], k
            best[k, i] = run + hits[i, k]
            came[k, i] = arg
    classes = np.empty(len(values), dtype=int)
    classes[-1] = int(np.argmax(best[:, -1]))
    for i in range(len(values) - 1, 0, -1):
        classes[i - 1] = came[classes[i], i]
    cuts = []
    for k in range(n_classes - 1):  # cutpoint k: between the last value of class <= k and the next
        above = np.flatnonzero(classes > k)
        if not len(above):
            cuts.append(values[-1] + 1.0)
        elif above[0] == 0:
            cuts.append(values[0] - 1.0)
        else:
            cuts.append((values[above[0] - 1] + values[above[0]]) / 2)
    return np.asarray(cuts)


def apply_cutpoints(score, cutpoints) -> np.ndarray:
    """Class indices of ``score`` given increasing ``cutpoints`` (see
    :func:`ordinal_cutpoints`): the number of cutpoints below each score."""
    return np.searchsorted(np.asarray(cutpoints, dtype=float), np.asarray(score, float), "left")


def _finite_or_none(value: float) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def _interval(est: Estimate) -> list | None:
    low, high = _finite_or_none(est.low), _finite_or_none(est.high)
    return None if low is None or high is None else [low, high]


def classification_summary(
    y_true, probs, groups=None, *, classes, n_boot: int = 1000, seed: int = 0
) -> dict:
    """One model's numbers on one set, as chapter 01 reports them (JSON-ready): accuracy,
    the one-vs-rest AUC of each class and their macro mean, each with a percentile interval
    from resampling ``groups`` (patients); per-class accuracy (the share of a class's images
    given that class) and counts. A value that is undefined on this set (a class without
    images, e.g. in a small external set) is None; the macro AUC then averages the classes
    that have images, listed in ``macro_auc_classes``."""
    y, p = _probs(y_true, probs)
    if len(classes) != p.shape[1]:
        raise ValueError(f"{len(classes)} class names for {p.shape[1]} columns of probs")
    kw = dict(n_boot=n_boot, seed=seed)
    pred = p.argmax(1)
    acc = bootstrap_ci(lambda yy, pp: accuracy(yy, pp.argmax(1)), y, p, groups, **kw)
    present = [k for k in range(p.shape[1]) if 0 < (y == k).sum() < len(y)]
    out = {"n_images": len(y), "accuracy": acc.value, "accuracy_ci": _interval(acc)}
    out |= {"per_class_auc": {}, "per_class_auc_ci": {}, "per_class_accuracy": {}, "counts": {}}
    for k, name in enumerate(classes):
        est = (
            bootstrap_ci(lambda yy, pp, k=k: roc_auc(yy == k, pp[:, k]), y, p, groups, **kw)
            if k in present
            else None
        )
        out["per_class_auc"][name] = None if est is None else est.value
        out["per_class_auc_ci"][name] = None if est is None else _interval(est)
        n = int((y == k).sum())
        out["per_class_accuracy"][name] = float((pred[y == k] == k).mean()) if n else None
        out["counts"][name] = n

    def macro(yy, pp):
        return float(np.mean([roc_auc(yy == k, pp[:, k]) for k in present]))

    est = bootstrap_ci(macro, y, p, groups, **kw) if present else None
    out["macro_auc"] = None if est is None else est.value
    out["macro_auc_ci"] = None if est is None else _interval(est)
    out["macro_auc_classes"] = [classes[k] for k in present]
    return out


# ------------------------------------------------------------------- multi-label
def _multilabel(y_true, probs, labels) -> tuple[np.ndarray, np.ndarray]:
    y, p = np.asarray(y_true), np.asarray(probs, dtype=float)
    if y.ndim != 2 or p.shape != y.shape:
        raise ValueError(f"y_true and probs must be (N, labels) alike, got {y.shape}, {p.shape}")
    if len(labels) != y.shape[1]:
        raise ValueError(f"{len(labels)} label names for {y.shape[1]} columns")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("y_true must be multi-hot (0/1)")
    if not np.isfinite(p).all():
        raise ValueError(f"probs hold {int((~np.isfinite(p)).sum())} non-finite values")
    return y.astype(int), p


def f1(y_true, y_pred) -> float:
    """F1 of binary labels (scikit-learn's, 0 when nothing is predicted or present)."""
    from sklearn.metrics import f1_score

    return float(f1_score(y_true, y_pred, zero_division=0))


def multilabel_table(
    y_true, probs, labels, groups=None, *, threshold=0.5, n_boot: int = 1000, seed=0
):
    """Per-label accuracy, precision, recall, F1 (with a patient-bootstrap interval), ROC AUC
    and support of a multi-label classifier at ``threshold`` (one number, or one per label
    as a dict, e.g. :func:`f1_thresholds`; paper 02, Table 3; chapters 02, 03). ``y_true``
    (N, L) multi-hot, ``probs`` (N, L). A label without positives gets NaN for recall, F1
    and AUC."""
    import pandas as pd
    from sklearn.metrics import accuracy_score, precision_score, recall_score

    y, p = _multilabel(y_true, probs, labels)
    if isinstance(threshold, dict):
        missing = [name for name in labels if name not in threshold]
        if missing:
            raise ValueError(f"threshold has no value for label(s) {missing}")
        threshold = np.array([threshold[name] for name in labels], dtype=float)
    pred = (p >= threshold).astype(int)
    rows = []
    for k, name in enumerate(labels):
        yk, pk = y[:, k], pred[:, k]
        support = int(yk.sum())
        row = {"label": name, "support": support, "accuracy": accuracy_score(yk, pk)}
        row["precision"] = precision_score(yk, pk, zero_division=0) if pk.any() else math.nan
        if support:
            est = bootstrap_ci(f1, yk, pk, groups, n_boot=n_boot, seed=seed)
            auc = roc_auc(yk, p[:, k]) if support < len(yk) else math.nan
            row |= {"recall": recall_score(yk, pk), "f1": est.value}
            row |= {"f1_low": est.low, "f1_high": est.high, "auc": auc}
        else:
            row |= dict.fromkeys(("recall", "f1", "f1_low", "f1_high", "auc"), math.nan)
        rows.append(row)
    return pd.DataFrame(rows).set_index("label")


def f1_thresholds(y_true, probs, labels) -> dict:
    """Per label, the probability threshold that maximises F1 on (validation) data: the
    midpoint between the score that achieves the best F1 and the next lower score (0.5 for
    a label without positives). Chapter 02 fixes these on validation crops before testing."""
    from sklearn.metrics import precision_recall_curve

    y, p = _multilabel(y_true, probs, labels)
    out = {}
    for k, name in enumerate(labels):
        if not y[:, k].any():
            out[name] = 0.5
            continue
        precision, recall, cuts = precision_recall_curve(y[:, k], p[:, k])
        with np.errstate(invalid="ignore", divide="ignore"):
            f = np.nan_to_num(2 * precision * recall / (precision + recall))[:-1]
        best = int(np.argmax(f))
        lower = p[:, k][p[:, k] < cuts[best]]
        out[name] = float((cuts[best] + lower.max()) / 2) if len(lower) else float(cuts[best])
    return out


# ------------------------------------------------------------------- binary summaries
def auprc(y_true, score) -> float:
    """Area under the precision-recall curve as *average precision*, the definition of
    scikit-learn's ``average_precision_score``: ``sum_n (R_n - R_{n-1}) * P_n`` with the
    distinct scores as thresholds from the highest down (a step function, no trapezoids,
    so no optimistic interpolation between points). NaN when ``y_true`` holds one class
    only. Chapter 04 (paper 04 reports it next to the AUC, §III-B)."""
    y, s = _binary(y_true, score)
    n_pos = int(y.sum())
    if n_pos == 0 or n_pos == len(y):
        return math.nan
    order = np.argsort(-s, kind="stable")
    s, y = s[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]  # last row of each distinct score
    tp = np.cumsum(y)[last]
    precision, recall = tp / (last + 1), tp / n_pos
    return float(np.sum(np.diff(recall, prepend=0.0) * precision))


def _threshold(value, name: str = "threshold") -> float:
    if isinstance(value, bool | np.bool_) or not isinstance(value, Real) or math.isnan(value):
        raise ValueError(f"{name} must be a number, got {value!r}")
    return float(value)


def _at_threshold(y: np.ndarray, s: np.ndarray, threshold: float) -> dict:
    """TPR, TNR, F1 and accuracy of the decision ``score >= threshold`` (NaN for a rate
    whose class is absent)."""
    pred = (s >= threshold).astype(int)
    positive, negative = y == 1, y == 0
    return {
        "tpr": float(pred[positive].mean()) if positive.any() else math.nan,
        "tnr": float((pred[negative] == 0).mean()) if negative.any() else math.nan,
        "f1": f1(y, pred),
        "accuracy": float((pred == y).mean()),
    }


def _nonempty_binary(y_true, score) -> tuple[np.ndarray, np.ndarray]:
    y, s = _binary(y_true, score)
    if not len(y):
        raise ValueError("y_true and score are empty")
    return y, s


def binary_summary(y_true, score, threshold: float = 0.5) -> dict:
    """A binary classifier's numbers as paper 04 reports them (§III-B, Table V): ``auc``,
    ``auprc`` (:func:`auprc`; both NaN with one class only), and at the decision
    ``score >= threshold``: ``tpr`` (sensitivity, recall), ``tnr`` (specificity), ``f1``
    (scikit-learn's, 0 when nothing is predicted positive) and ``accuracy``. Chapter 04."""
    y, s = _nonempty_binary(y_true, score)
    threshold = _threshold(threshold)
    both = 0 < y.sum() < len(y)
    out = {"auc": roc_auc(y, s) if both else math.nan, "auprc": auprc(y, s)}
    return out | _at_threshold(y, s, threshold)


def threshold_table(y_true, score, thresholds):
    """One row per decision threshold with ``threshold``, ``tpr``, ``f1``, ``specificity``
    and ``accuracy`` at ``score >= threshold`` (paper 04, Table VIII: the density models
    at 0.6, 0.7, 0.8). Chapter 04."""
    import pandas as pd

    y, s = _nonempty_binary(y_true, score)
    cuts = np.asarray(thresholds, dtype=float)
    if cuts.ndim != 1 or not len(cuts) or np.isnan(cuts).any():
        raise ValueError(f"thresholds must be a non-empty 1-D list of numbers, got {thresholds!r}")
    rows = []
    for cut in cuts.tolist():
        at = _at_threshold(y, s, cut)
        rows.append(
            {
                "threshold": cut,
                "tpr": at["tpr"],
                "f1": at["f1"],
                "specificity": at["tnr"],
                "accuracy": at["accuracy"],
            }
        )
    return pd.DataFrame(rows)


# ------------------------------------------------------------------- operating points
def _two_classes(y_true, score, where: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        y, s = _nonempty_binary(y_true, score)
    except ValueError as err:
        raise ValueError(f"{where}: {err}") from None
    n_pos = int(y.sum())
    if n_pos in (0, len(y)):
        only = "positives" if n_pos else "negatives"
        raise ValueError(
            f"{where}: a threshold search needs both classes, got only {only} ({len(y)} samples)"
        )
    return y, s


def gmean_threshold(y_true, score, *, where: str = "gmean_threshold") -> float:
    """The threshold ``t`` of the decision ``score >= t`` that maximises the G-mean
    ``sqrt(sensitivity * specificity)`` (paper 05 §4.6: chosen on the validation split, then
    fixed for the test split; chapter 05). Every distinct score is a candidate (scikit-learn's
    ROC curve without dropping collinear points); among equal G-means the highest threshold
    wins. One class only, or non-finite scores: ``ValueError`` naming ``where`` (e.g. the
    model and split)."""
    from sklearn.metrics import roc_curve

    y, s = _two_classes(y_true, score, where)
    fpr, tpr, cuts = roc_curve(y, s, drop_intermediate=False)
    gmean = np.sqrt(tpr * (1.0 - fpr))[1:]  # cuts[0] is +inf (nothing positive)
    best = np.flatnonzero(gmean >= gmean.max() - 1e-12)[0]  # ties up to rounding: highest cut
    return float(cuts[1:][best])


def _rate(label: int):
    """The share of ``label`` samples decided as ``label`` (sensitivity for 1, specificity
    for 0); ``ValueError`` when a resample holds no such sample."""

    def statistic(y: np.ndarray, decided: np.ndarray) -> float:
        mine = y == label
        if not mine.any():
            raise ValueError("no sample of this class")
        return float((decided[mine] == label).mean())

    return statistic


def operating_point(
    y_true,
    score,
    threshold: float,
    groups=None,
    *,
    n_boot: int = 2000,
    seed: int = 0,
    where: str = "operating_point",
) -> dict:
    """Sensitivity, specificity and their G-mean at the decision ``score >= threshold``,
    each rate as an :class:`Estimate` with a percentile bootstrap over ``groups`` (patients),
    as paper 05 reports them beside the AUC (Tables 2-5, 8-9; chapter 05)."""
    y, s = _two_classes(y_true, score, where)
    threshold = _threshold(threshold)
    decided = (s >= threshold).astype(int)
    kw = {"n_boot": n_boot, "seed": seed}
    sens = bootstrap_ci(_rate(1), y, decided, groups, **kw)
    spec = bootstrap_ci(_rate(0), y, decided, groups, **kw)
    gmean = math.sqrt(sens.value * spec.value)
    return {"threshold": threshold, "sensitivity": sens, "specificity": spec, "gmean": gmean}


def percent_drop(reference: float, value: float) -> float:
    """How far ``value`` falls below ``reference``, in percent of ``reference``:
    ``100 * (reference - value) / reference`` (negative for a gain). Paper 05 §6.1 reports
    the out-of-domain AUC drop this way: (0.967 - 0.755) / 0.967 = 21.92 %. Chapter 05."""
    ref, val = _threshold(reference, "reference"), _threshold(value, "value")
    if ref == 0 or not math.isfinite(ref) or not math.isfinite(val):
        raise ValueError(f"percent_drop needs a finite, non-zero reference, got {reference!r}")
    return 100.0 * (ref - val) / ref


# ------------------------------------------------------------------- paired comparisons
def _model_scores(score, name: str, n: int | None = None) -> np.ndarray:
    """A model's scores as a finite 1-D float array (``n`` values if given); a bad input
    raises ``ValueError`` naming the model (or argument)."""
    s = np.asarray(score, dtype=float)
    if s.ndim != 1 or not len(s) or (n is not None and len(s) != n):
        want = "non-empty 1-D" if n is None else f"1-D with {n} values (one per sample)"
        raise ValueError(f"scores of {name} must be {want}, got shape {s.shape}")
    if not np.isfinite(s).all():
        raise ValueError(f"scores of {name} hold {int((~np.isfinite(s)).sum())} NaN/inf values")
    return s


def paired_auc_delta(
    y_true,
    score_a,
    score_b,
    *,
    groups=None,
    n_boot: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> Estimate:
    """``AUC(score_a) - AUC(score_b)`` on the same samples, with a paired percentile
    bootstrap: every resample draws the same rows (or the same whole ``groups``, i.e.
    patients, as :func:`bootstrap_ci` does, which runs it) for both scores, so what the
    two models share cancels out of the interval. Resamples with a single class are
    skipped and counted in ``skipped``, as in :func:`bootstrap_ci`.

    ``p`` is a two-sided bootstrap p-value: the share of resampled differences on the
    other side of 0 from the point estimate (0 itself counts as the other side), doubled
    and capped at 1; ``p = 0`` means no resample crossed 0 (p below ``2 / n_boot``).
    Identical scores give exactly 0 with the interval [0, 0] and ``p = 1``. Chapter 04
    (paper 04 compares the fusion models with the score maximum, Tables V and VII)."""
    a = _model_scores(score_a, "score_a")
    b = _model_scores(score_b, "score_b", len(a))
    y, _ = _binary(y_true, a)

    def delta(yy, ss):
        return roc_auc(yy, ss[:, 0]) - roc_auc(yy, ss[:, 1])

    both = np.column_stack([a, b])
    value, values = _bootstrap(delta, y, both, groups, n_boot, level, seed)
    p = math.nan
    if len(values):
        if value > 0:
            other_side = values <= 0
        elif value < 0:
            other_side = values >= 0
        else:  # no difference: every resample is on "the other side"
            other_side = np.ones(len(values), dtype=bool)
        p = min(1.0, 2 * float(other_side.mean()))
    return _percentile(value, values, level, n_boot, p)


def _paired_scores(score_a, score_b, name_a: str, name_b: str) -> tuple[np.ndarray, np.ndarray]:
    a = _model_scores(score_a, name_a)
    b = _model_scores(score_b, name_b)
    if len(a) != len(b):
        raise ValueError(f"scores of {name_a} and {name_b} differ in length: {len(a)}, {len(b)}")
    return a, b


def wilcoxon_p(score_a, score_b) -> float:
    """Two-sided p of the paired Wilcoxon signed-rank test on the per-sample scores of two
    models (``scipy.stats.wilcoxon`` with its defaults: ``zero_method="wilcox"`` drops zero
    differences, exact distribution for small samples without ties). NaN when every
    difference is zero. Chapter 04 (paper 04, Table VII)."""
    a, b = _paired_scores(score_a, score_b, "score_a", "score_b")
    return _wilcoxon(a, b)


def _wilcoxon(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import wilcoxon

    if np.array_equal(a, b):
        # Every difference is zero, so "wilcox" drops them all and no test is left: scipy
        # 1.17 returns p = 1 with a divide-by-zero warning, older versions raise. The paper
        # prints "∞" on the diagonal of Table VII, where a model meets itself; NaN here.
        return math.nan
    return float(wilcoxon(a, b).pvalue)


def wilcoxon_table(scores: dict):
    """Square table of :func:`wilcoxon_p` between every two models of ``scores`` (model
    name -> per-sample scores, all on the same samples in the same order): rows and columns
    named by the models, symmetric, NaN on the diagonal (paper 04, Table VII) and between
    two models with identical scores. Chapter 04."""
    import pandas as pd

    if not isinstance(scores, dict) or not scores:
        raise ValueError(f"scores must be a non-empty dict of model name -> scores, got {scores!r}")
    names = list(scores)
    arrays = {name: _model_scores(scores[name], repr(name)) for name in names}
    table = pd.DataFrame(math.nan, index=pd.Index(names), columns=pd.Index(names))
    for i, j in itertools.combinations(range(len(names)), 2):
        a, b = _paired_scores(arrays[names[i]], arrays[names[j]], repr(names[i]), repr(names[j]))
        table.iloc[i, j] = table.iloc[j, i] = _wilcoxon(a, b)
    return table


# ------------------------------------------------------------------- FROC (detection)
def _image_boxes(entry, where: str, label, scored: bool):
    """Boxes (and scores) of one image's ``entry`` dict, restricted to ``label``."""
    if not isinstance(entry, Mapping):
        raise ValueError(f"{where} must be a dict with 'boxes', got {type(entry).__name__}")
    keys = ["boxes", "scores"] if scored else ["boxes"]
    keys += [] if label is None else ["labels"]
    missing = [key for key in keys if key not in entry]
    if missing:
        raise ValueError(f"{where} has no {missing}")
    boxes = as_boxes(entry["boxes"], f"{where}['boxes']")
    keep = np.ones(len(boxes), dtype=bool)
    if label is not None:
        labels = np.asarray(entry["labels"], dtype=object).reshape(-1).tolist()
        if len(labels) != len(boxes):
            raise ValueError(f"{where} has {len(boxes)} boxes but {len(labels)} labels")
        keep = np.array([lab == label for lab in labels], dtype=bool).reshape(-1)
    if not scored:
        return boxes[keep]
    scores = np.asarray(entry["scores"], dtype=float)
    if scores.shape != (len(boxes),) or not np.isfinite(scores).all():
        raise ValueError(
            f"{where}['scores'] must hold one finite score per box ({len(boxes)}), "
            f"got shape {scores.shape}"
        )
    return boxes[keep], scores[keep]


def _images(detections, truths, label) -> list:
    """``(detection boxes, scores, truth boxes)`` of each image, restricted to ``label``."""
    if len(detections) != len(truths):
        raise ValueError(f"detections has {len(detections)} images, truths {len(truths)}")
    if not len(truths):
        raise ValueError("detections and truths hold no image")
    out = []
    for i, (det, truth) in enumerate(zip(detections, truths, strict=True)):
        boxes, scores = _image_boxes(det, f"detections[{i}]", label, scored=True)
        out.append((boxes, scores, _image_boxes(truth, f"truths[{i}]", label, scored=False)))
    return out


def _lesion_hits(det: np.ndarray, truth: np.ndarray, iou: float):
    """``(hits, overlap)``: whether each detection hits each lesion (IoU >= ``iou`` or the
    detection's centre inside the lesion box, edges included) and their IoU."""
    overlap = box_iou(det, truth)
    cx, cy = ((det[:, 0] + det[:, 2]) / 2)[:, None], ((det[:, 1] + det[:, 3]) / 2)[:, None]
    inside = (truth[:, 0] <= cx) & (cx <= truth[:, 2]) & (truth[:, 1] <= cy) & (cy <= truth[:, 3])
    return (overlap >= iou) | inside, overlap


def _match_image(det: np.ndarray, scores: np.ndarray, truth: np.ndarray, iou: float):
    """Status of each detection of one image: 1 finds a lesion, 0 hits only lesions found
    before (neither hit nor false positive), -1 false positive."""
    status = np.full(len(det), -1, dtype=int)
    if not len(truth) or not len(det):
        return status
    hits, overlap = _lesion_hits(det, truth, iou)
    found = np.zeros(len(truth), dtype=bool)
    for d in np.argsort(-scores, kind="stable"):  # highest score first; ties in input order
        if not hits[d].any():
            continue
        new = np.flatnonzero(hits[d] & ~found)
        if len(new):
            found[new[np.argmax(overlap[d, new])]] = True  # largest IoU; ties: first lesion
            status[d] = 1
        else:
            status[d] = 0
    return status


def froc(detections, truths, *, label=None, iou: float = 0.2):
    """Free-response ROC curve of a lesion detector: one row per distinct detection score
    (descending) with ``threshold``, ``sensitivity`` (lesions found by the detections
    scoring >= threshold / all lesions; NaN when there is no lesion) and ``fpi`` (their
    false positives / number of images), after a first row at threshold +inf with (0, 0).

    ``detections``: one dict per image with ``"boxes"`` (k, 4) xyxy, ``"scores"`` (k,) and
    ``"labels"`` (k,); ``truths``: one dict per image (same order) with ``"boxes"`` (m, 4)
    and ``"labels"`` (m,). Images without truth (normal images) count in the denominator
    and all their detections are false positives. ``label`` given: only detections and
    lesions of that label count (a detection of that label on a lesion of another label is
    a false positive; lesions of other labels are ignored); ``label=None`` ignores labels.

    Hit rule (paper 04 §IV-A.3, after Ribli et al.): a detection hits a lesion if their
    IoU is >= ``iou`` or the detection box's centre lies inside the lesion box (edges
    included). Matching, per image: detections in descending score order (ties in input
    order); one that hits a lesion not found yet finds it (of several, the one with the
    largest IoU, ties to the first lesion); one that hits only lesions found already is
    neither hit nor false positive; one that hits no lesion is a false positive. As the
    matching runs in score order, a detection's status does not depend on the threshold,
    so the curve is the running count of finds and false positives. Chapter 04."""
    import pandas as pd

    iou = _threshold(iou, "iou")
    if not 0 < iou <= 1:
        raise ValueError(f"iou must be in (0, 1], got {iou}")
    images = _images(detections, truths, label)
    n_lesions = sum(len(truth) for _, _, truth in images)
    scores = np.concatenate([s for _, s, _ in images])
    status = np.concatenate([_match_image(d, s, t, iou) for d, s, t in images])
    order = np.argsort(-scores, kind="stable")
    scores, status = scores[order], status[order]
    last = np.r_[np.flatnonzero(np.diff(scores)), len(scores) - 1].astype(int)
    last = last[last >= 0]  # no detection at all: only the +inf row
    found = np.r_[0, np.cumsum(status == 1)[last]]
    false = np.r_[0, np.cumsum(status == -1)[last]]
    sensitivity = found / n_lesions if n_lesions else np.full(len(found), np.nan)
    return pd.DataFrame(
        {
            "threshold": np.r_[np.inf, scores[last]],
            "sensitivity": sensitivity,
            "fpi": false / len(images),
        }
    )


def tpr_at_fpi(curve, fpi: float = 1.0) -> float:
    """The largest sensitivity of a :func:`froc` curve among its rows with at most ``fpi``
    false positives per image: the curve read as a step function, no interpolation between
    rows (paper 04, Table IV: "TPR @ FPI"). Chapter 04."""
    rate = _threshold(fpi, "fpi")
    if rate < 0:
        raise ValueError(f"fpi must be >= 0, got {fpi!r}")
    missing = {"sensitivity", "fpi"} - set(getattr(curve, "columns", ()))
    if missing:
        raise ValueError(f"curve must be a froc() table; it has no column(s) {sorted(missing)}")
    within = curve["sensitivity"][curve["fpi"] <= rate]
    return float(within.max()) if len(within) else math.nan


def fp_images(detections, threshold: float, *, truths=None, label=None) -> tuple[int, int]:
    """``(false positives, images with any)`` on normal images at ``score >= threshold``:
    the detections there (all false positives, as nothing is to be found) and how many of
    those images have at least one (paper 04 §IV-A.3: "386 false-positive lesions in
    188/420" normal images). Without ``truths`` every image of ``detections`` is taken as
    normal; with ``truths`` (aligned, as in :func:`froc`) only the images without any truth
    box (of any label). ``label``: count only detections of that label. Chapter 04."""
    threshold = _threshold(threshold)
    if truths is None:
        truths = [{"boxes": np.zeros((0, 4))}] * len(detections)
    if len(truths) != len(detections):
        raise ValueError(f"detections has {len(detections)} images, truths {len(truths)}")
    n_false, n_images = 0, 0
    for i, (det, truth) in enumerate(zip(detections, truths, strict=True)):
        if len(_image_boxes(truth, f"truths[{i}]", None, scored=False)):
            continue  # an image with a lesion
        _, scores = _image_boxes(det, f"detections[{i}]", label, scored=True)
        above = int((scores >= threshold).sum())
        n_false += above
        n_images += above > 0
    return n_false, n_images
