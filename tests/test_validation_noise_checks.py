"""noise_check: raw variance linear in the mean, slope = the blur's noise-power gain."""

import dataclasses

import numpy as np
import pytest

from mammo_helpers.data.phantom import PhantomConfig
from mammo_helpers.data.phantom.acquisition import SITES
from mammo_helpers.data.phantom.validation import noise_check
from mammo_helpers.data.phantom.validation.noise_checks import blur_noise_gain, step_wedge


def test_every_site_is_quantum_limited_at_the_check_spacing():
    res = noise_check(PhantomConfig(seed=0, spacing_mm=0.2))
    assert list(res.table.index) == ["site_A", "site_B", "site_C", "site_D"]
    assert res.min_r2 > 0.9
    # Poisson noise blurred by the detector: variance / mean = sum of squared blur weights
    np.testing.assert_allclose(res.table.slope, res.table.expected_slope, rtol=0.05)
    # electronic noise is the intercept (its estimate is uncertain: 25 %)
    np.testing.assert_allclose(res.table.intercept, res.table.expected_intercept, rtol=0.25)


def test_noise_power_gain_of_a_wide_gaussian_blur_is_one_over_four_pi_sigma_squared():
    site = dataclasses.replace(SITES["site_A"], mtf_sigma_mm=0.3)
    # sigma = 3 px: a sampled 2-D Gaussian kernel has sum of squares 1 / (4 pi sigma^2)
    assert blur_noise_gain(site, 0.1) == pytest.approx(1 / (4 * np.pi * 9), rel=0.02)
    assert blur_noise_gain(dataclasses.replace(site, mtf_sigma_mm=0.0), 0.1) == 1.0


def test_the_step_wedge_has_flat_bands_and_interiors_away_from_their_edges():
    line, inner = step_wedge(0.5, n_steps=4, step_mm=20.0, height_mm=30.0, span=1.5)
    assert line.shape == (60, 160)
    assert np.allclose(np.unique(line) - 3.0, [0.0, 0.5, 1.0, 1.5])
    assert not inner[:, :4].any() and inner[10, 5]  # 2 mm = 4 px margin
