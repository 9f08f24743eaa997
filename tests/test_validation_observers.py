"""Model observers on white-noise and power-law detection tasks whose ideal d' is known."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from mammo_helpers.data.phantom.validation.observers import (
    channelized_hotelling,
    laguerre_gauss_channels,
)

ROI = 32
_yy, _xx = np.mgrid[0:ROI, 0:ROI] - ROI // 2
BLOB = np.exp(-(_xx**2 + _yy**2) / (2 * 3.0**2))  # Gaussian signal, sigma 3 px


def detection_task(d_ideal: float, n: int, seed: int):
    """White noise (sigma 1) with and without a centred Gaussian blob scaled so that the
    ideal observer's d' = ||s|| / sigma equals ``d_ideal``."""
    rng = np.random.default_rng(seed)
    s = BLOB * d_ideal / np.linalg.norm(BLOB)
    return rng.standard_normal((n, ROI, ROI)) + s, rng.standard_normal((n, ROI, ROI))


@pytest.mark.parametrize("d_ideal", [0.5, 1.0, 2.0])
def test_cho_reaches_ideal_auc_in_white_noise(d_ideal):
    sig, bkg = detection_task(d_ideal, 1500, seed=int(10 * d_ideal))
    res = channelized_hotelling(sig, bkg, rng=0)
    auc_ideal = stats.norm.cdf(d_ideal / np.sqrt(2))
    assert abs(res.auc - auc_ideal) <= 0.04
    assert res.n_signal == res.n_background == 1500
    assert len(res.scores_signal) == len(res.scores_background) == 750
    assert res.d_prime == pytest.approx(np.sqrt(2) * stats.norm.ppf(res.auc))
    # the template looks like the signal
    cos = np.sum(res.template * BLOB) / np.linalg.norm(res.template) / np.linalg.norm(BLOB)
    assert cos > (0.9 if d_ideal >= 1 else 0.6)


def test_cho_prewhitens_correlated_noise():
    """In power-law noise (P ~ f**-3) the ideal d'**2 = sum |S(f)|**2 / P(f); the CHO (which
    uses the channel covariance) gets close to it, the non-prewhitening observer does not."""
    f = np.fft.fftfreq(ROI)
    amp_f = (np.hypot(f[:, None], f[None, :]) + 0.05) ** -1.5  # noise = ifft(fft(white) * A)
    d2_unit = np.sum(np.abs(np.fft.fft2(BLOB)) ** 2 / (ROI * ROI * amp_f**2))
    d_ideal = 2.0
    signal = BLOB * d_ideal / np.sqrt(d2_unit)
    rng = np.random.default_rng(8)

    def noise(n):
        return np.real(np.fft.ifft2(np.fft.fft2(rng.standard_normal((n, ROI, ROI))) * amp_f))

    sig, bkg = noise(1500) + signal, noise(1500)
    auc_ideal = stats.norm.cdf(d_ideal / np.sqrt(2))
    cho = channelized_hotelling(sig, bkg, rng=0)
    assert abs(cho.auc - auc_ideal) <= 0.04
    # the non-prewhitening observer (template = the signal) is worse in correlated noise
    npw_s, npw_b = (
        sig.reshape(len(sig), -1) @ BLOB.ravel(),
        bkg.reshape(len(bkg), -1) @ BLOB.ravel(),
    )
    npw_auc = stats.mannwhitneyu(npw_s, npw_b).statistic / (npw_s.size * npw_b.size)
    assert npw_auc < cho.auc - 0.05


def test_cho_identical_distributions_and_hand_mann_whitney():
    sig, bkg = detection_task(0.0, 400, seed=99)
    res = channelized_hotelling(sig, bkg, rng=1)
    assert abs(res.auc - 0.5) <= 0.07
    s, b = res.scores_signal, res.scores_background
    greater = (s[:, None] > b[None, :]).sum() + 0.5 * (s[:, None] == b[None, :]).sum()
    assert res.auc == pytest.approx(greater / (s.size * b.size), abs=1e-12)
    u = stats.mannwhitneyu(s, b).statistic
    assert res.auc == pytest.approx(u / (s.size * b.size), abs=1e-12)


def test_cho_bootstrap_ci_width_close_to_hanley_mcneil():
    sig, bkg = detection_task(1.0, 600, seed=4)
    res = channelized_hotelling(sig, bkg, rng=2, n_bootstrap=300)
    lo, hi = res.auc_ci
    assert lo < res.auc < hi
    a, m = res.auc, 300  # Hanley & McNeil (1982) standard error, 300 + 300 held out
    q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
    se = np.sqrt((a * (1 - a) + (m - 1) * (q1 - a * a) + (m - 1) * (q2 - a * a)) / (m * m))
    assert 0.6 < (hi - lo) / (2 * 1.96 * se) < 1.5
    assert channelized_hotelling(sig, bkg, rng=2).auc_ci is None


def test_laguerre_gauss_channels_closed_form():
    size, a = 64, 8.0
    u = laguerre_gauss_channels(size, 3, a)
    assert u.shape == (3, size * size)
    yy, xx = np.mgrid[0:size, 0:size] - size // 2
    x = 2 * np.pi * (xx**2 + yy**2) / a**2
    g = np.exp(-x / 2)
    for p, poly in enumerate([np.ones_like(x), 1 - x, 1 - 2 * x + x**2 / 2]):
        ref = (g * poly).ravel()
        assert np.allclose(u[p], ref / np.linalg.norm(ref))
    assert np.allclose(u @ u.T, np.eye(3), atol=1e-3)  # orthonormal when not truncated
    assert laguerre_gauss_channels(32).shape == (6, 32 * 32)  # default width size / 4


def test_observer_input_checks():
    sig, bkg = detection_task(1.0, 10, seed=0)
    with pytest.raises(ValueError, match="differ"):
        channelized_hotelling(sig, bkg[:, :16, :16])
    with pytest.raises(ValueError, match="train_fraction"):
        channelized_hotelling(sig, bkg, train_fraction=1.0)
    with pytest.raises(ValueError, match="signal_rois must have shape"):
        channelized_hotelling(sig[0], bkg)
    with pytest.raises(ValueError, match="ridge"):
        channelized_hotelling(sig, bkg, ridge=float("nan"))
    with pytest.raises(ValueError, match="n_bootstrap"):
        channelized_hotelling(sig, bkg, n_bootstrap=-1)
