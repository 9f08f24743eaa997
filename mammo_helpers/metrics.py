"""Classification metrics with confidence intervals that resample patients.

Images of one patient are not independent (four views, two sides), so every interval here
is a percentile bootstrap over **patients** (groups), not over images. Used by chapter 00's
learnability check and the training chapters 01-05: binary and one-vs-rest AUCs, accuracy,
confusion matrices, per-class recall with Wilson intervals, and the share of errors between
adjacent ordinal classes (BI-RADS density, chapter 01), and the per-label table of a
multi-label classifier (chapter 02).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata

__all__ = [
    "Estimate",
    "accuracy",
    "adjacent_error_share",
    "apply_cutpoints",
    "auc_ci",
    "bootstrap_ci",
    "classification_summary",
    "confusion",
    "f1",
    "f1_thresholds",
    "macro_auc",
    "multilabel_table",
    "one_vs_rest_auc",
    "ordinal_cutpoints",
    "per_class_auc_ci",
    "recall_ci",
    "roc_auc",
    "wilson_ci",
]


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its percentile-bootstrap interval.

    ``skipped`` counts the resamples on which the statistic was undefined (e.g. one class
    only); they are left out of the interval, never counted as a value.
    """

    value: float
    low: float
    high: float
    level: float = 0.95
    n_boot: int = 0
    skipped: int = 0

    def __str__(self) -> str:
        return f"{self.value:.3f} [{self.low:.3f}, {self.high:.3f}]"


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
    (e.g. a single class) is skipped and counted."""
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
    skipped = n_boot - len(values)
    if not values:
        return Estimate(value, math.nan, math.nan, level, n_boot, skipped)
    low, high = np.quantile(values, [(1 - level) / 2, (1 + level) / 2])
    return Estimate(value, float(low), float(high), level, n_boot, skipped)


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
