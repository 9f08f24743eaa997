"""mammo_helpers.metrics: AUC against scikit-learn and a hand case, the patient bootstrap
against scipy's bootstrap and against resampling one row per patient."""

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
