"""The Volpara-like density estimate on breasts with a known dense-fraction map."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from mammo_helpers.data.phantom.calibration import DENSE_FRACTION_THRESHOLD
from mammo_helpers.data.phantom.physics import MU_FAT, MU_GLAND
from mammo_helpers.data.phantom.validation.volumetric_density import volumetric_percent_density


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
    mu_f, mu_g = MU_FAT, MU_GLAND
    line = thick * (mu_f + (mu_g - mu_f) * frac)
    log_image = np.where(breast, line - 3.0, -10.0)  # arbitrary exposure offset
    truth = 100 * (frac[breast & (dist > 3)] > DENSE_FRACTION_THRESHOLD).mean()
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
    with pytest.raises(ValueError, match="thickness_mm"):
        volumetric_percent_density(log_image, breast, 0.0, 0.5)
    with pytest.raises(ValueError, match="shape"):
        volumetric_percent_density(log_image[:-1], breast, 50.0, 0.5)
    with pytest.raises(ValueError, match="too small"):
        volumetric_percent_density(log_image, np.zeros_like(breast), 50.0, 0.5)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"scatter_gain": float("nan")}, "scatter_gain"),
        ({"dense_fraction": 0.0}, "dense_fraction"),
        ({"fat_percentile": 101.0}, "fat_percentile"),
        ({"skin_band_mm": -1.0}, "skin_band_mm"),
        ({"smooth_mm": float("nan")}, "smooth_mm"),
    ],
)
def test_bad_settings_are_named(kwargs, name):
    log_image, breast, _ = _raw_breast(0.3)
    with pytest.raises(ValueError, match=name):
        volumetric_percent_density(log_image, breast, 50.0, 0.5, **kwargs)
