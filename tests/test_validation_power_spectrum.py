"""power_spectrum_beta against Gaussian random fields with a known power law, white noise
of known variance, and a brute-force jackknife."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from mammo_helpers.data.phantom.validation.power_spectrum import (
    jackknife_se,
    power_spectrum_beta,
)


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


def _jackknife_by_refitting(images, spacings):
    """Brute force: refit beta without each image (each image holds exactly one ROI)."""
    n = len(images)
    betas = [
        power_spectrum_beta(
            [im for j, im in enumerate(images) if j != i],
            None,
            [sp for j, sp in enumerate(spacings) if j != i],
            exclude_border_mm=0.0,
            max_rois_per_image=1,
        ).beta
        for i in range(n)
    ]
    betas = np.asarray(betas)
    return np.sqrt((n - 1) / n * np.sum((betas - betas.mean()) ** 2))


def test_jackknife_se_equals_refitting_without_each_roi():
    # six one-ROI images on one grid, one on another (left out, that grid drops out)
    images = [power_law_field(256, 3.0, 0.1, s) for s in range(6)]
    images += [power_law_field(128, 3.0, 0.2, 6)]
    spacings = [0.1] * 6 + [0.2]
    res = power_spectrum_beta(images, None, spacings, exclude_border_mm=0.0, max_rois_per_image=1)
    assert res.n_rois == 7 and res.roi_px == (256,) * 6 + (128,)
    assert res.beta_se == pytest.approx(_jackknife_by_refitting(images, spacings), rel=1e-9)


def test_jackknife_se_is_nan_for_one_roi_and_zero_for_identical_rois():
    x = [np.log(np.array([0.2, 0.3, 0.5]))]
    assert np.isnan(jackknife_se(x, [np.ones((1, 3))]))
    identical = np.tile(np.array([[1.0, 0.5, 0.2]]), (5, 1))
    assert jackknife_se(x, [identical]) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"roi_mm": float("nan")}, "roi_mm"),
        ({"roi_mm": 0.0}, "roi_mm"),
        ({"exclude_border_mm": -1.0}, "exclude_border_mm"),
        ({"max_rois_per_image": 0}, "max_rois_per_image"),
        ({"max_rois_per_image": 1.5}, "max_rois_per_image"),
        ({"f_range": (0.7, 0.2)}, "f_range"),
        ({"f_range": (0.2, float("nan"))}, "f_range"),
    ],
)
def test_bad_settings_are_named(kwargs, name):
    with pytest.raises(ValueError, match=name):
        power_spectrum_beta(_white(300, 0), None, 0.1, **kwargs)
