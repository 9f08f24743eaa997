"""Attenuation coefficients: published values, one definition used by every module."""

import inspect

import pytest

from mammo_helpers.data.phantom import physics
from mammo_helpers.data.phantom.validation import volumetric_percent_density


def test_fat_and_glandular_attenuation_are_johns_and_yaffe_at_20_kev():
    # Johns & Yaffe, Phys Med Biol 1987: 0.456 /cm (fat), 0.80 /cm (fibroglandular)
    assert physics.MU_FAT * 10 == pytest.approx(0.456, rel=0.01)
    assert physics.MU_GLAND * 10 == pytest.approx(0.80, rel=0.01)
    assert physics.MU_FAT < physics.MU_GLAND < physics.MU_MUSCLE < physics.MU_SKIN


@pytest.mark.parametrize("share", [0.0, 0.25, 0.6, 1.0])
def test_a_mixture_attenuates_as_the_volume_weighted_mean_of_fat_and_gland(share):
    expected = (1 - share) * 0.0456 + share * 0.080
    assert physics.tissue_attenuation(share) == pytest.approx(expected, rel=1e-12)


def test_the_density_estimate_inverts_the_same_coefficients():
    params = inspect.signature(volumetric_percent_density).parameters
    assert params["mu_fat"].default == physics.MU_FAT
    assert params["mu_gland"].default == physics.MU_GLAND
