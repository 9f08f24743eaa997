import dataclasses

import numpy as np
import pytest

from mammo_helpers.data.phantom.acquisition import SITES, burn_in_label, encode, expose, present


def test_quantum_noise_variance_equals_the_mean_without_blur():
    site = dataclasses.replace(SITES["site_A"], mtf_sigma_mm=0.0, scatter_fraction=0.0)
    L = np.full((256, 256), 3.0, np.float32)
    breast = np.ones_like(L, bool)
    raw = expose(L, breast, 0.1, site, np.random.default_rng(0))
    n0 = 4000.0
    assert raw.mean() == pytest.approx(n0, rel=0.01)
    electronic = (0.002 * n0) ** 2
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
