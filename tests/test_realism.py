"""Tests for mammo_helpers.realism against independent references.

References: Gaussian random fields with a known power law (generated here), two-phase images
with a known dense fraction, white-noise detection tasks whose ideal-observer d' is known in
closed form, hand-computed CNR and a hand Mann-Whitney AUC, Poisson-like noise with a known
variance line.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import ndimage, stats
from skimage.filters import threshold_otsu

from mammo_helpers.realism import (
    _otsu_split_of_clusters,
    _window_counts,
    channelized_hotelling,
    contrast_to_noise,
    extract_rois,
    laguerre_gauss_channels,
    noise_variance_fit,
    npwe_observer,
    percent_density,
    power_spectrum_beta,
    sample_background_centers,
    volumetric_percent_density,
)

# ----------------------------------------------------------------------------- beta


@functools.cache
def _white(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, n))


def power_law_field(n: int, beta: float, spacing: float, seed: int) -> np.ndarray:
    """Gaussian random field with 2-D power spectrum P(f) ~ f**-beta (white noise filtered)."""
    f = np.fft.fftfreq(n, d=spacing)
    fr = np.hypot(f[:, None], f[None, :])
    fr[0, 0] = np.inf  # no DC
    return np.real(np.fft.ifft2(np.fft.fft2(_white(n, seed)) * fr ** (-beta / 2)))


# ROI = 25.6 mm -> 256 px at 0.1 mm, 128 px at 0.2 mm; 3 images of 3x3 tiles = 27 ROIs
FIELD_PX = {0.1: 768, 0.2: 384}


@pytest.mark.parametrize("spacing", [0.1, 0.2])
@pytest.mark.parametrize("beta", [2.0, 2.5, 3.0, 3.5])
def test_beta_recovered_on_power_law_fields(beta, spacing):
    n = FIELD_PX[spacing]
    images = [power_law_field(n, beta, spacing, seed) for seed in range(3)]
    res = power_spectrum_beta(images, None, spacing, exclude_border_mm=0.0, rng=1)
    assert res.n_rois == 27
    assert abs(res.beta - beta) <= 0.15, res.beta
    assert 0 < res.beta_se < 0.15
    # plot data: radial PSD falls with frequency roughly like the fit
    sel = (res.freqs >= 0.2) & (res.freqs <= 0.7)
    ratio = res.psd[sel] / res.fit_line(res.freqs[sel])
    assert np.all((ratio > 0.5) & (ratio < 2.0))


def test_white_noise_beta_zero_and_psd_in_physical_units():
    sigma, spacing = 2.0, 0.1
    images = [sigma * _white(768, seed) for seed in (7, 8, 9)]
    masks = [np.ones_like(images[0], bool)] * 3
    res = power_spectrum_beta(images, masks, spacing, exclude_border_mm=0, rng=0)
    assert res.n_rois == 27
    assert abs(res.beta) < 0.15
    # NPS of white noise = sigma**2 * dx * dy (mm**2), independent of the ROI size
    expected = sigma**2 * spacing**2
    assert np.median(res.psd) == pytest.approx(expected, rel=0.05)
    assert res.fit_line(0.45) == pytest.approx(expected, rel=0.1)  # mid fit range


def test_hann_window_suppresses_leakage_from_curved_trend():
    """A smooth non-planar trend (like thickness fall-off) left after plane removal leaks
    into the fit range without a window; with the Hann window white noise stays at ~0."""
    yy, xx = np.mgrid[0:768, 0:768]
    bowl = 1e-4 * ((yy - 300) ** 2 + (xx - 400) ** 2)  # ~1.6 sigma across one ROI
    images = [_white(768, seed) + bowl for seed in (7, 8, 9)]
    res = power_spectrum_beta(images, None, 0.1, exclude_border_mm=0)
    assert abs(res.beta) < 0.1


def test_beta_mixed_spacings_and_offsets_and_tilt():
    beta = 3.0
    a = power_law_field(768, beta, 0.1, 11)
    b = power_law_field(384, beta, 0.2, 12)
    yy, xx = np.mgrid[0:384, 0:384]
    b_tilted = 1000.0 + b + 0.05 * xx - 0.03 * yy  # offset + plane removed per ROI
    res = power_spectrum_beta([a, b_tilted], [None, None], [0.1, 0.2], exclude_border_mm=0)
    assert res.n_rois_per_image == (9, 9)
    assert res.roi_px == (256, 128)
    assert abs(res.beta - beta) <= 0.15
    plain = power_spectrum_beta([a, b], [None, None], [0.1, 0.2], exclude_border_mm=0)
    assert res.beta == pytest.approx(plain.beta, abs=1e-6)


def test_beta_rois_inside_eroded_disk_and_disjoint():
    n, spacing, border = 1200, 0.1, 10.0
    img = power_law_field(n, 3.0, spacing, 3)
    yy, xx = np.mgrid[0:n, 0:n]
    radius, centre = 590.0, 600
    mask = np.hypot(yy - centre, xx - centre) <= radius
    res = power_spectrum_beta(img, mask, spacing, exclude_border_mm=border, max_rois_per_image=16)
    assert 4 <= res.n_rois <= 16
    corners = res.roi_corners[:, 1:]
    size = res.roi_px[0]
    limit = radius - border / spacing + 1.0  # +1 px for the pixel-grid discretisation
    for r, c in corners:
        for rr, cc in [(r, c), (r + size - 1, c), (r, c + size - 1), (r + size - 1, c + size - 1)]:
            assert np.hypot(rr - centre, cc - centre) <= limit
    for i in range(len(corners)):
        for j in range(i + 1, len(corners)):
            dr, dc = np.abs(corners[i] - corners[j])
            assert dr >= size or dc >= size  # no overlap
    assert abs(res.beta - 3.0) < 0.25  # fewer ROIs than the main test


def test_beta_small_mask_raises_with_mm_and_px():
    img = _white(400, 1)
    mask = np.zeros_like(img, bool)
    mask[100:300, 100:300] = True  # 20 mm, smaller than the ROI plus borders
    with pytest.raises(ValueError, match=r"25\.6 mm ROI \(256 px\).*200x200 px = 20\.0x20\.0 mm"):
        power_spectrum_beta(img, mask, 0.1)


def test_beta_deterministic_for_seeded_rng():
    images = [power_law_field(768, 2.5, 0.1, s) for s in range(2)]
    kw = dict(spacing_mm=0.1, exclude_border_mm=0, max_rois_per_image=4)
    r1 = power_spectrum_beta(images, None, rng=5, **kw)
    r2 = power_spectrum_beta(images, None, rng=np.random.default_rng(5), **kw)
    r3 = power_spectrum_beta(images, None, rng=6, **kw)
    assert r1.beta == r2.beta and np.array_equal(r1.psd, r2.psd)
    assert np.array_equal(r1.roi_corners, r2.roi_corners)
    assert not np.array_equal(r1.roi_corners, r3.roi_corners)  # subset of 9 tiles differs


def test_beta_bad_inputs():
    with pytest.raises(ValueError, match="2 images but 1 masks"):
        power_spectrum_beta([_white(300, 0)] * 2, [None], 0.1)
    with pytest.raises(ValueError, match="spacing_mm"):
        power_spectrum_beta(_white(300, 0), None, -0.1)
    with pytest.raises(ValueError, match="2 images but 3 spacing_mm"):
        power_spectrum_beta([_white(300, 0)] * 2, None, [0.1, 0.1, 0.1])


@settings(max_examples=40, deadline=None)
@given(
    arrays(bool, st.tuples(st.integers(1, 12), st.integers(1, 12))),
    st.integers(1, 5),
)
def test_window_counts_brute_force(mask, size):
    got = _window_counts(mask, size)
    h, w = mask.shape
    assert got.shape == (max(h - size + 1, 0), max(w - size + 1, 0))
    for r in range(got.shape[0]):
        for c in range(got.shape[1]):
            assert got[r, c] == mask[r : r + size, c : c + size].sum()


# ----------------------------------------------------------------------------- density


def two_phase_image(frac: float, seed: int, n: int = 160):
    """Bright blobs (known area fraction of an elliptical breast) + soft edges + smooth
    background + noise. Returns image, breast mask, true percent density."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:n, 0:n]
    mask = ((yy - n / 2) / (0.48 * n)) ** 2 + (xx / (0.9 * n)) ** 2 <= 1
    g = ndimage.gaussian_filter(rng.standard_normal((n, n)), 4)
    dense = g > np.quantile(g[mask], 1 - frac)
    background = 0.15 * xx / n + 0.075 * np.sin(3 * yy / n + rng.uniform(0, 6))
    blobs = ndimage.gaussian_filter(dense.astype(float), 1.5)
    img = background + 0.6 * blobs + 0.3 * rng.standard_normal((n, n))
    img[~mask] = 0.0
    return img, mask, 100.0 * dense[mask].mean()


@pytest.mark.parametrize("method", ["otsu", "kmeans"])
def test_percent_density_tracks_truth(method):
    truth, est = [], []
    for i, frac in enumerate(np.linspace(0.05, 0.80, 20)):
        img, mask, pd_true = two_phase_image(frac, seed=i)
        truth.append(pd_true)
        est.append(percent_density(img, mask, method=method))
    truth, est = np.array(truth), np.array(est)
    assert np.all((est >= 0) & (est <= 100))
    assert stats.pearsonr(truth, est).statistic >= 0.95
    assert np.median(np.abs(est - truth)) < 8.0


def test_percent_density_exclude_and_edge_cases():
    rng = np.random.default_rng(0)
    img = 0.05 * rng.standard_normal((100, 120))
    img[:, :60] += 1.0  # left half dense
    mask = np.ones(img.shape, bool)
    assert percent_density(img, mask) == pytest.approx(50.0, abs=2)
    pect = np.zeros_like(mask)
    pect[:, :30] = True  # remove a quarter of the width, all dense
    assert percent_density(img, mask, exclude=pect) == pytest.approx(100 / 3, abs=2)
    assert percent_density(np.ones((20, 20)), np.ones((20, 20), bool)) == 0.0
    with pytest.raises(ValueError, match="method"):
        percent_density(img, mask, method="fcm")
    with pytest.raises(ValueError, match="no pixel"):
        percent_density(img, np.zeros_like(mask))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(0, 255), min_size=2, max_size=6, unique=True),
    st.lists(st.integers(1, 50), min_size=6, max_size=6),
)
def test_cluster_split_matches_otsu_on_quantised_values(levels, counts):
    """The split of k-means centres equals skimage's Otsu threshold of the quantised image."""
    centres = np.sort(np.array(levels, dtype=float))
    counts = np.array(counts[: len(centres)], dtype=float)
    k = _otsu_split_of_clusters(centres, counts)
    values = np.repeat(centres, counts.astype(int)).astype(np.uint8)
    k_ref = int(np.sum(centres <= threshold_otsu(values)))  # integer bins: exact levels

    def between_class_variance(split):
        lab = np.repeat(np.arange(len(centres)) >= split, counts.astype(int))
        v = values.astype(float)
        return v.var() - sum(v[lab == c].var() * np.mean(lab == c) for c in (False, True))

    assert 1 <= k <= len(centres) - 1
    assert between_class_variance(k) == pytest.approx(between_class_variance(k_ref), rel=1e-9)


# ----------------------------------------------------------------------------- CNR


def test_cnr_flat_disk_matches_hand_value():
    rng = np.random.default_rng(3)
    n, contrast, sigma, rad = 160, 5.0, 2.0, 12
    yy, xx = np.mgrid[0:n, 0:n]
    lesion = np.hypot(yy - 70, xx - 90) <= rad
    img = 100.0 + contrast * lesion + sigma * rng.standard_normal((n, n))
    res = contrast_to_noise(img, lesion)
    # hand computation: annulus between R and 2R from the centroid, R = sqrt(area / pi)
    r_eq = np.sqrt(lesion.sum() / np.pi)
    d = np.hypot(yy - 70, xx - 90)
    ann = (d >= r_eq) & (d <= 2 * r_eq) & ~lesion
    hand = (img[lesion].mean() - img[ann].mean()) / img[ann].std(ddof=1)
    assert float(res) == pytest.approx(hand, rel=1e-12)
    assert res.cnr == pytest.approx(contrast / sigma, abs=0.2)
    assert res.radius_px == pytest.approx(rad, abs=0.5)
    assert np.array_equal(res.background_mask, ann)

    breast = xx < 100  # clip the annulus
    clipped = contrast_to_noise(img, lesion, breast_mask=breast)
    assert 0 < clipped.n_background < res.n_background
    assert not np.any(clipped.background_mask & ~breast)
    with pytest.raises(ValueError, match="empty"):
        contrast_to_noise(img, np.zeros_like(lesion))


# ----------------------------------------------------------------------------- ROIs


def test_extract_rois_matches_slicing_and_checks_bounds():
    img = np.arange(50 * 60).reshape(50, 60)
    rois = extract_rois(img, [(10, 10), (30, 40)], 8)
    assert rois.shape == (2, 8, 8)
    assert np.array_equal(rois[1], img[26:34, 36:44])
    assert rois[0][4, 4] == img[10, 10]  # centre pixel at size // 2
    with pytest.raises(ValueError, match="ROI 1 centred at"):
        extract_rois(img, [(10, 10), (2, 40)], 8)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.integers(3, 9), st.integers(1, 20))
def test_background_centers_inside_mask_and_away_from_avoid(seed, size, n):
    rng = np.random.default_rng(seed)
    mask = ndimage.binary_opening(rng.random((40, 50)) < 0.9, iterations=1)
    avoid = np.zeros_like(mask)
    avoid[rng.integers(0, 40), rng.integers(0, 50)] = True
    ok = _window_counts(mask, size) == size * size
    ok &= _window_counts(avoid, size) == 0
    if ok.sum() < n:
        with pytest.raises(ValueError, match="requested"):
            sample_background_centers(mask, size, n, rng, avoid=avoid)
        return
    centres = sample_background_centers(mask, size, n, rng, avoid=avoid)
    assert centres.shape == (n, 2)
    assert len({tuple(c) for c in centres}) == n
    h = size // 2
    for r, c in centres:
        assert mask[r - h : r - h + size, c - h : c - h + size].all()
        assert not avoid[r - h : r - h + size, c - h : c - h + size].any()


# ----------------------------------------------------------------------------- observers

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
    npw = npwe_observer(sig, bkg, signal=BLOB, rng=0)
    assert abs(cho.auc - auc_ideal) <= 0.04
    assert npw.auc < cho.auc - 0.05


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


def test_npw_observer_ideal_with_known_signal_and_eye_filter_runs():
    d_ideal = 1.0
    sig, bkg = detection_task(d_ideal, 800, seed=21)
    res = npwe_observer(sig, bkg, signal=BLOB, rng=0)
    assert abs(res.auc - stats.norm.cdf(d_ideal / np.sqrt(2))) <= 0.05
    eye = npwe_observer(sig, bkg, signal=BLOB, spacing_mm=0.1, rng=0)
    assert 0.5 < eye.auc <= res.auc + 0.03  # an eye filter cannot beat the ideal template
    with pytest.raises(ValueError, match="signal has shape"):
        npwe_observer(sig, bkg, signal=np.ones((5, 5)))


def test_observer_input_checks():
    sig, bkg = detection_task(1.0, 10, seed=0)
    with pytest.raises(ValueError, match="differ"):
        channelized_hotelling(sig, bkg[:, :16, :16])
    with pytest.raises(ValueError, match="train_fraction"):
        channelized_hotelling(sig, bkg, train_fraction=1.0)
    with pytest.raises(ValueError, match="signal_rois must have shape"):
        channelized_hotelling(sig[0], bkg)


# ----------------------------------------------------------------------------- noise


def poisson_like_image(a: float, b: float, seed: int, n: int = 256, edges: bool = False):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:n, 0:n]
    mean = 20 + 780 * (xx / n) ** 1.5 + 15 * np.sin(yy / 40)
    if edges:  # a few sharp structures that inflate some tiles' variance
        mean = mean + 300.0 * ((yy % 64) > 56)
    return mean + np.sqrt(a * mean + b) * rng.standard_normal((n, n))


@pytest.mark.parametrize("seed", [0, 1])
def test_noise_variance_fit_recovers_line(seed):
    a, b = 0.5, 100.0
    slope, intercept, r2 = noise_variance_fit(poisson_like_image(a, b, seed))
    assert slope == pytest.approx(a, rel=0.1)
    assert intercept == pytest.approx(b, rel=0.1)
    assert r2 > 0.9


def test_noise_variance_fit_rejects_structured_tiles():
    a, b = 0.5, 100.0
    img = poisson_like_image(a, b, 5, edges=True)
    res = noise_variance_fit(img, np.ones(img.shape, bool))
    assert (~res.used).sum() > 0
    assert res.slope == pytest.approx(a, rel=0.1)
    assert res.intercept == pytest.approx(b, rel=0.1)
    raw = noise_variance_fit(img, reject_sigma=np.inf)
    assert raw.used.all() and abs(raw.intercept - b) > abs(res.intercept - b)
    assert res.means.shape == res.variances.shape == res.used.shape == (256,)
    with pytest.raises(ValueError, match="tiles"):
        noise_variance_fit(img, np.zeros(img.shape, bool))


# ------------------------------------------------------------------ volumetric density


def _raw_breast(fraction_value, *, spacing=0.5, thickness=50.0, rng=0):
    """A half-disc breast with a known dense-fraction map and the semicircular edge."""
    rows, cols = 400, 240
    yy, xx = np.mgrid[0:rows, 0:cols]
    breast = ((yy - rows / 2) ** 2 / (rows / 2.2) ** 2 + xx**2 / (cols * 0.9) ** 2) <= 1
    dist = ndimage.distance_transform_edt(breast) * spacing
    band = thickness / 2
    x = np.clip(dist / band, 0, 1)
    thick = thickness * np.sqrt(np.clip(1 - (1 - x) ** 2, 0, 1))
    gen = np.random.default_rng(rng)
    blobs = ndimage.gaussian_filter(gen.standard_normal((rows, cols)), 8)
    frac = np.where(blobs > np.quantile(blobs[breast], 1 - fraction_value), 0.6, 0.05)
    frac = frac * breast
    mu_f, mu_g = 0.0456, 0.080
    line = thick * (mu_f + (mu_g - mu_f) * frac)
    log_image = np.where(breast, line - 3.0, -10.0)  # arbitrary exposure offset
    truth = 100 * (frac[breast & (dist > 3)] > 0.28).mean()
    return log_image, breast, truth


@pytest.mark.parametrize("share", [0.05, 0.3, 0.7])
def test_volumetric_density_recovers_the_dense_area(share):
    log_image, breast, truth = _raw_breast(share)
    res = volumetric_percent_density(log_image, breast, 50.0, 0.5, smooth_mm=0.0)
    assert res.area_percent == pytest.approx(truth, abs=3.0)
    assert 0 < res.volume_percent < 100
    assert res.region.sum() < breast.sum()  # the skin band is left out


def test_volumetric_density_is_offset_invariant_and_checks_inputs():
    log_image, breast, _ = _raw_breast(0.3)
    a = volumetric_percent_density(log_image, breast, 50.0, 0.5)
    b = volumetric_percent_density(log_image + 1.7, breast, 50.0, 0.5)
    assert a.area_percent == pytest.approx(b.area_percent, abs=1e-9)
    with pytest.raises(ValueError, match="positive"):
        volumetric_percent_density(log_image, breast, 0.0, 0.5)
    with pytest.raises(ValueError, match="shape"):
        volumetric_percent_density(log_image[:-1], breast, 50.0, 0.5)
    with pytest.raises(ValueError, match="too small"):
        volumetric_percent_density(log_image, np.zeros_like(breast), 50.0, 0.5)
