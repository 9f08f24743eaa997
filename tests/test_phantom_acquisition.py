import dataclasses

import numpy as np
import pytest

from mammo_helpers.data.phantom.acquisition import (
    SITES,
    burn_in_label,
    encode,
    expose,
    gaussian_blur,
    photons_per_pixel,
    present,
)
from mammo_helpers.data.phantom.calibration import ELECTRONIC_NOISE


def test_quantum_noise_variance_equals_the_mean_without_blur():
    # Poisson: variance = mean photon count, plus the (unblurred) electronic noise variance
    site = dataclasses.replace(SITES["site_A"], mtf_sigma_mm=0.0, scatter_fraction=0.0)
    L = np.full((256, 256), 3.0, np.float32)
    breast = np.ones_like(L, bool)
    raw = expose(L, breast, 0.1, site, np.random.default_rng(0))
    n0 = photons_per_pixel(site, 0.1)
    assert raw.mean() == pytest.approx(n0, rel=0.01)
    electronic = (ELECTRONIC_NOISE * n0) ** 2
    assert raw.var() == pytest.approx(n0 + electronic, rel=0.05)


def test_more_attenuation_gives_fewer_photons_and_a_brighter_display():
    site = SITES["site_C"]
    L = np.full((128, 128), 2.0, np.float32)
    L[40:80, 40:80] = 2.5
    breast = np.ones_like(L, bool)
    rng = np.random.default_rng(1)
    raw = expose(L, breast, 0.2, site, rng)
    assert raw[50:70, 50:70].mean() < raw[:30, :30].mean()
    disp = present(raw, breast, 0.2, site, rng)
    assert disp[50:70, 50:70].mean() > disp[:30, :30].mean()
    assert disp.min() >= 0 and disp.max() <= 1


@pytest.mark.parametrize("name", sorted(SITES))
def test_encoding_respects_bit_depth_and_photometric(name):
    site = SITES[name]
    disp = np.linspace(0, 1, 1000, dtype=np.float32).reshape(10, 100)
    stored, centre, width = encode(disp, site)
    assert stored.dtype == np.uint16 and stored.max() <= 2**site.bits_stored - 1
    bright, dark = int(stored[-1, -1]), int(stored[0, 1])
    if site.photometric == "MONOCHROME1":
        assert bright < dark
    else:
        assert bright > dark
    assert width > 0 and 0 < centre < 2**site.bits_stored


def test_burned_in_label_only_touches_the_corner_away_from_the_chest_wall():
    site = SITES["site_B"]  # MONOCHROME1: the background is stored as the maximum
    stored = np.full((400, 300), 2**site.bits_stored - 1, np.uint16)
    out = burn_in_label(stored, "L CC", site, "L")
    changed = np.argwhere(out != stored)
    assert changed.size and changed[:, 0].max() < 100 and changed[:, 1].min() > 150


@pytest.mark.parametrize("gamma", [0.5, 0.85, 1.25, 2.0])
def test_gamma_shows_a_stretched_value_x_as_x_to_the_one_over_gamma(gamma):
    # no equalisation, no unsharp mask: the display is the log image stretched between its
    # 0.5th and 99.8th percentile, then the gamma curve (hand-computed here)
    site = dataclasses.replace(SITES["site_A"], equalisation=0.0, unsharp_amount=0.0, gamma=gamma)
    raw = np.exp(-np.linspace(1.0, 3.0, 64 * 64)).reshape(64, 64).astype(np.float32)
    breast = np.ones(raw.shape, bool)
    log = -np.log(raw.astype(np.float64))
    lo, hi = np.percentile(log, [0.5, 99.8])
    stretched = np.clip((log - lo) / (hi - lo), 0.0, 1.0)
    disp = present(raw, breast, 0.2, site, np.random.default_rng(0))
    np.testing.assert_allclose(disp, stretched ** (1.0 / gamma), atol=2e-5)


def test_a_gamma_above_one_brightens_the_mid_tones():
    # display convention: gamma 2 shows a quarter-bright stretched value at half brightness
    site = dataclasses.replace(SITES["site_A"], equalisation=0.0, unsharp_amount=0.0)
    raw = np.exp(-np.linspace(0.0, 1.0, 1001)).reshape(1, -1).astype(np.float32)
    breast = np.ones(raw.shape, bool)
    plain = present(raw, breast, 0.2, site, np.random.default_rng(0))
    bright = present(
        raw, breast, 0.2, dataclasses.replace(site, gamma=2.0), np.random.default_rng(0)
    )
    quarter = np.argmin(np.abs(plain - 0.25))
    assert bright[0, quarter] == pytest.approx(0.5, abs=0.01)
    assert np.all(np.diff(bright[0]) >= 0)  # still monotone in attenuation


def test_photon_count_scales_with_pixel_area_and_dose_and_sets_the_noise():
    site = dataclasses.replace(SITES["site_C"], mtf_sigma_mm=0.0, scatter_fraction=0.0)
    n_fine = photons_per_pixel(site, 0.1)
    assert photons_per_pixel(site, 0.2) == pytest.approx(4 * n_fine)
    assert photons_per_pixel(site, 0.1, dose=0.5) == pytest.approx(n_fine / 2)
    raw = expose(np.full((256, 256), 2.0, np.float32), np.ones((256, 256), bool), 0.1, site,
                 np.random.default_rng(3), dose=0.5)  # fmt: skip
    assert raw.mean() == pytest.approx(n_fine / 2, rel=0.01)
    relative_noise = raw.std() / raw.mean()
    assert relative_noise == pytest.approx(1 / np.sqrt(n_fine / 2), rel=0.06)  # Poisson


def test_scatter_adds_to_the_primary_inside_the_breast_only():
    """With scatter the breast gets more photons (primary + scatter), the air does not."""
    site = dataclasses.replace(SITES["site_A"], mtf_sigma_mm=0.0)
    no_scatter = dataclasses.replace(site, scatter_fraction=0.0)
    L = np.full((200, 200), 3.0, np.float32)
    breast = np.zeros_like(L, bool)
    breast[:, :120] = True
    L[~breast] = 0.0
    with_s, without = (
        expose(L, breast, 0.5, s, np.random.default_rng(0)) for s in (site, no_scatter)
    )
    centre = (slice(80, 120), slice(40, 80))
    ratio = with_s[centre].mean() / without[centre].mean()
    assert 1 + 0.8 * site.scatter_fraction < ratio < 1 + 1.01 * site.scatter_fraction
    assert with_s[:, 190:].mean() == pytest.approx(without[:, 190:].mean(), rel=0.01)


@pytest.mark.parametrize("name", sorted(SITES))
def test_burned_in_label_is_written_at_the_brightest_display_value(name):
    site = SITES[name]
    stored = np.full((400, 300), 1000, np.uint16)
    out = burn_in_label(stored, "R MLO", site, "R")
    ink = out[out != stored]
    expected = 0 if site.photometric == "MONOCHROME1" else 2**site.bits_stored - 1
    assert ink.size and (ink == expected).all()


@pytest.mark.parametrize("name", sorted(SITES))
def test_every_site_presents_a_display_image_where_attenuation_is_bright(name):
    """Each site's processing (film curve, equalisation, unsharp masking) keeps the order:
    the more attenuating half of a breast is shown brighter."""
    site = SITES[name]
    L = np.full((160, 160), 2.0, np.float32)
    L[:, 80:] = 2.6
    breast = np.ones_like(L, bool)
    rng = np.random.default_rng(3)
    disp = present(expose(L, breast, 0.3, site, rng), breast, 0.3, site, rng)
    assert np.isfinite(disp).all() and 0 <= disp.min() and disp.max() <= 1
    assert disp[:, 100:140].mean() > disp[:, 20:60].mean() + 0.1


def test_equalisation_shrinks_a_thickness_fall_off_against_local_detail():
    """Peripheral equalisation subtracts the low-pass image: a smooth ramp in attenuation
    (the breast thinning towards the skin) shrinks against a small detail on it, which the
    final stretch then shows with more contrast."""
    site = dataclasses.replace(SITES["site_A"], unsharp_amount=0.0, gamma=1.0)
    flat = dataclasses.replace(site, equalisation=0.0)
    L = np.tile(np.linspace(1.0, 3.0, 240, dtype=np.float32), (120, 1))
    L[55:65, 115:125] += 0.3  # a 5 mm detail in the middle of the ramp
    breast = np.ones_like(L, bool)
    detail = []
    for s in (site, flat):
        raw = expose(L, breast, 0.5, s, np.random.default_rng(4))
        disp = present(raw, breast, 0.5, s, np.random.default_rng(4))
        around = np.r_[disp[55:65, 100:110].ravel(), disp[55:65, 130:140].ravel()]
        detail.append(disp[57:63, 117:123].mean() - around.mean())
    assert detail[0] > 1.5 * detail[1] > 0


def test_the_display_stretch_is_set_by_the_breast_not_the_air_around_it():
    """The 0.5-99.8 percentile stretch reads breast pixels only: the breast fills [0, 1]
    even when bright air (many photons) surrounds it."""
    site = SITES["site_C"]
    L = np.full((160, 160), 0.0, np.float32)
    L[:, :90] = np.linspace(2.0, 3.0, 90, dtype=np.float32)
    breast = L > 0
    rng = np.random.default_rng(6)
    disp = present(expose(L, breast, 0.3, site, rng), breast, 0.3, site, rng)
    assert np.percentile(disp[breast], 1) < 0.05 and np.percentile(disp[breast], 99) > 0.9


@pytest.mark.parametrize("name", sorted(SITES))
def test_white_is_stored_near_the_top_of_the_bit_depth(name):
    site = SITES[name]
    stored, centre, width = encode(np.array([[0.0, 0.5, 1.0]], np.float32), site)
    top = 2**site.bits_stored - 1
    white = int(stored[0, 2]) if site.photometric == "MONOCHROME2" else top - int(stored[0, 2])
    assert white >= 0.95 * top
    assert centre == top / 2  # the VOI window is centred on the stored range
    if site.voi_lut_function == "LINEAR":  # and spans it (a sigmoid LUT compresses the ends)
        assert width == top


def test_electronic_noise_adds_its_own_variance_on_top_of_the_quantum_noise():
    # one million pixels: the variance is known to about 0.15 %, the electronic part is 1.6 %
    site = dataclasses.replace(SITES["site_A"], mtf_sigma_mm=0.0, scatter_fraction=0.0)
    L = np.full((1024, 1024), 3.0, np.float32)
    raw = expose(L, np.ones_like(L, bool), 0.1, site, np.random.default_rng(5))
    n0 = photons_per_pixel(site, 0.1)
    assert (ELECTRONIC_NOISE * n0) ** 2 > 0.01 * n0  # large enough to be seen here
    assert raw.var(dtype=np.float64) == pytest.approx(n0 + (ELECTRONIC_NOISE * n0) ** 2, rel=0.005)


@pytest.mark.parametrize("name", sorted(SITES))
def test_an_exposure_without_breast_is_shown_black(name):
    raw = np.random.default_rng(6).uniform(100, 200, (64, 64)).astype(np.float32)
    disp = present(raw, np.zeros_like(raw, bool), 0.2, SITES[name], np.random.default_rng(7))
    assert disp.shape == raw.shape and np.all(disp == 0)


@pytest.mark.parametrize("sigma", [0.3, 0.8, 3.0, 20.0, 40.0])
def test_gaussian_blur_matches_scipy_on_a_random_image(sigma):
    # wide kernels run on a decimated copy: a smooth image keeps that within 1 % of the range
    from scipy import ndimage

    rng = np.random.default_rng(8)
    img = rng.random((400, 300)).astype(np.float32)
    if sigma > 12:
        img = ndimage.gaussian_filter(img, 6.0).astype(np.float32)
    expected = ndimage.gaussian_filter(img.astype(np.float64), sigma, mode="reflect")
    got = gaussian_blur(img, sigma)
    inner = (slice(60, -60), slice(60, -60)) if sigma > 12 else (slice(None), slice(None))
    tol = 0.01 * np.ptp(img) if sigma > 12 else 2e-3
    np.testing.assert_allclose(got[inner], expected[inner], atol=tol)
    assert gaussian_blur(img, 0.01) is img  # below a twentieth of a pixel: unchanged


@pytest.mark.parametrize("rows", [300, 900, 2400])
def test_a_burned_in_label_is_a_few_percent_of_the_image_height_in_thin_strokes(rows):
    stored = np.zeros((rows, rows * 3 // 4), np.uint16)
    ink = burn_in_label(stored, "L CC", SITES["site_A"], "L") != stored
    r, c = np.nonzero(ink)
    height, width = np.ptp(r) + 1, np.ptp(c) + 1
    assert 0.01 < height / rows < 0.05, height / rows
    fill = ink.sum() / (height * width)  # share of the label's box that is ink
    assert 0.2 < fill < 0.6, fill
    if rows >= 900:  # strokes thicken with the letters (2 px per 900 rows), not thin out
        assert fill > 0.33, fill
