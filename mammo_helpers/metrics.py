"""Classification metrics with confidence intervals that resample patients.

Images of one patient are not independent (four views, two sides), so every interval here
is a percentile bootstrap over **patients** (groups), not over images. Used by chapter 00's
learnability check; the training chapters 01-05 extend this module.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata

__all__ = ["Estimate", "bootstrap_ci", "roc_auc", "auc_ci"]


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
