import numpy as np
import pytest

from mammo_helpers.data.phantom.geometry import BreastGeometry, Canvas
from mammo_helpers.data.phantom.tissue import (
    fill_outside,
    fourier_resize,
    glandular_maps,
    power_law_field,
)
from mammo_helpers.data.phantom.validation import power_spectrum_beta


def test_power_law_field_is_standardised_and_deterministic():
    a = power_law_field((32, 32, 8), (0.5, 0.5, 1.0), 3.0, np.random.default_rng(1))
    b = power_law_field((32, 32, 8), (0.5, 0.5, 1.0), 3.0, np.random.default_rng(1))
    assert np.array_equal(a, b)
    assert abs(a.mean()) < 1e-4 and a.std() == pytest.approx(1.0, rel=1e-3)


@pytest.mark.parametrize("beta3", [2.5, 3.0, 3.5])
def test_projection_of_the_3d_field_keeps_its_exponent(beta3):
    # projecting along z keeps the kz=0 plane of the spectrum, so the 2-D exponent = beta3
    field = power_law_field(
        (256, 256, 24), (0.5, 0.5, 1.0), beta3, np.random.default_rng(2), k0=1 / 500
    )
    proj = field.sum(axis=2)
    est = power_spectrum_beta(proj, None, 0.5, roi_mm=32.0, exclude_border_mm=0.0)
    assert est.beta == pytest.approx(beta3, abs=0.3)


def test_fourier_resize_keeps_the_mean_and_a_band_limited_sinusoid():
    n = 64
    x = np.arange(n)
    img = 0.3 + 0.1 * np.cos(2 * np.pi * 3 * x / n)[None, :] * np.ones((n, 1))
    up = fourier_resize(img, (128, 128))
    assert up.mean() == pytest.approx(0.3, abs=1e-5)
    x2 = np.arange(128) / 2  # fine sample k sits at coarse coordinate k / 2 (sample-aligned)
    expected = 0.3 + 0.1 * np.cos(2 * np.pi * 3 * x2 / n)
    assert np.max(np.abs(up[0] - expected)) < 1e-4
    for shape in [(33, 47), (100, 81)]:
        assert fourier_resize(img, shape).mean() == pytest.approx(0.3, abs=1e-4)


def test_fill_outside_copies_nearest_inside_values():
    vals = np.array([[1.0, 2.0, 0.0, 0.0]])
    inside = np.array([[True, True, False, False]])
    assert np.array_equal(fill_outside(vals, inside), [[1.0, 2.0, 2.0, 2.0]])


@pytest.mark.parametrize("vgf", [0.05, 0.3, 0.6])
def test_glandular_fraction_is_realised_and_projects_inside_the_breast(vgf):
    geom = BreastGeometry("CC", 90.0, 70.0, 70.0, 2.0, 0.0, 40.0, 1.0, ())
    maps = glandular_maps(
        geom,
        Canvas(240, 192, 0.5),
        vgf=vgf,
        beta3d=3.0,
        rng=np.random.default_rng(0),
        need_dbt=True,
    )
    assert maps.vgf_realised == pytest.approx(vgf, abs=0.01)
    assert 0 <= maps.dm_fraction.min() and maps.dm_fraction.max() <= 1.0
    assert maps.tomo_fraction.max() <= 1.0
    inside = maps.dm_fraction > 0
    assert maps.dm_fraction[inside].mean() == pytest.approx(vgf, abs=0.08)
    # tomosynthesis blurs along the tube's motion but keeps the projected amount of gland
    assert maps.tomo_fraction[inside].mean() == pytest.approx(
        maps.dm_fraction[inside].mean(), abs=0.03
    )
    assert maps.slab_fraction[inside].mean() == pytest.approx(vgf, abs=0.12)


def _strong_envelope_maps(subcutaneous_mm=4.0):
    geom = BreastGeometry("CC", 90.0, 70.0, 70.0, 2.0, 0.0, 40.0, 1.0, ())
    return geom, glandular_maps(
        geom,
        Canvas(240, 192, 0.5),
        vgf=0.3,
        beta3d=3.0,
        rng=np.random.default_rng(1),
        subcutaneous_mm=subcutaneous_mm,
        envelope_weight=6.0,  # the envelope dominates the random field
        need_dbt=True,
    )


def test_the_gland_keeps_a_fat_layer_under_the_skin():
    from scipy import ndimage

    _, maps = _strong_envelope_maps()
    breast = maps.dm_fraction > 0
    skin = ndimage.distance_transform_edt(np.pad(breast, ((0, 0), (1, 0)), constant_values=1))
    skin = skin[:, 1:] * maps.coarse.spacing_mm  # mm to the skin line (not the chest wall)
    under_skin = maps.dm_fraction[breast & (skin < 2.0)].mean()
    deeper = maps.dm_fraction[breast & (skin > 8.0) & (skin < 16.0)].mean()
    assert under_skin < 0.5 * deeper, (under_skin, deeper)


def test_the_gland_keeps_away_from_the_compression_paddles():
    # fat under the skin at the top and bottom too: the in-focus central slab holds more
    # gland than the whole thickness on average
    _, maps = _strong_envelope_maps()
    inside = maps.dm_fraction > 0.05
    assert maps.slab_fraction[inside].mean() > 1.15 * maps.dm_fraction[inside].mean()


def test_the_glandular_envelope_starts_at_zero_on_the_skin_line():
    from scipy import ndimage

    from mammo_helpers.data.phantom.geometry import rasterize
    from mammo_helpers.data.phantom.tissue import _envelope_2d

    geom = BreastGeometry("CC", 90.0, 70.0, 70.0, 2.0, 0.0, 40.0, 1.0, ())
    maps = rasterize(geom, Canvas(240, 192, 0.5))
    env = _envelope_2d(geom, maps.breast, maps.u, maps.v, 5.0, None)
    skin = ndimage.distance_transform_edt(np.pad(maps.breast, ((0, 0), (1, 0)), constant_values=1))
    skin = skin[:, 1:] * 0.5
    front = maps.breast & (maps.u[None, :] > 60)  # near the nipple: away from the chest wall
    assert env[front & (skin <= 1.0)].mean() < 0.3 * env[front & (skin > 6) & (skin < 10)].mean()
