"""PhantomConfig refuses bad settings with the field's name, and keeps good ones as given."""

import dataclasses
import json

import numpy as np
import pytest

from mammo_helpers.data.phantom import PhantomConfig
from mammo_helpers.data.phantom.config import MIN_CANVAS_MM


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"seed": -1}, "seed"),
        ({"seed": 1.0}, "seed"),
        ({"seed": 1.5}, "seed"),
        ({"seed": True}, "seed"),
        ({"seed": np.float64(3.0)}, "seed"),
        ({"seed": "0"}, "seed"),
        ({"resolution_scale": 0}, "resolution_scale"),
        ({"resolution_scale": -2.0}, "resolution_scale"),
        ({"resolution_scale": float("nan")}, "resolution_scale"),
        ({"resolution_scale": float("inf")}, "resolution_scale"),
        ({"spacing_mm": float("nan")}, "spacing_mm"),
        ({"spacing_mm": 0.0}, "spacing_mm"),
        ({"site_weights": (0.5, -0.1, 0.3, 0.3)}, "site_weights"),
        ({"site_weights": (0.0, 0.0, 0.0, 0.0)}, "site_weights"),
        ({"site_weights": (0.5, float("nan"), 0.3, 0.2)}, "site_weights"),
        ({"site_weights": (1.0,)}, "site_weights"),
        ({"sites": ("nowhere",), "site_weights": (1.0,)}, "sites"),
        ({"sites": (), "site_weights": ()}, "sites"),
        ({"lesion_prevalence": float("nan")}, "lesion_prevalence"),
        ({"lesion_prevalence": 1.5}, "lesion_prevalence"),
        ({"lesion_mix": (1.0, 0.0, 0.0)}, "lesion_mix"),
        ({"lesion_mix": (0.0, 0.0, 0.0, 0.0)}, "lesion_mix"),
        ({"lesion_mix": (1.0, -1.0, 0.5, 0.5)}, "lesion_mix"),
        ({"reader_noise_pd": -1.0}, "reader_noise_pd"),
        ({"reader_noise_pd": float("nan")}, "reader_noise_pd"),
        ({"dose": 0.0}, "dose"),
        ({"dose": -1.0}, "dose"),
        ({"dose": float("nan")}, "dose"),
        ({"canvas_mm": (240.0,)}, "canvas_mm"),
        ({"canvas_mm": (240.0, float("nan"))}, "canvas_mm"),
        ({"canvas_mm": (0.0, 192.0)}, "canvas_mm"),
        ({"canvas_mm": (50.0, 50.0)}, "canvas_mm"),
        ({"modalities": ("MRI",)}, "modalities"),
        ({"modalities": ()}, "modalities"),
        ({"modalities": "DM"}, "modalities"),
        ({"repeat_share": -0.1}, "repeat_share"),
        ({"repeat_share": 1.01}, "repeat_share"),
        ({"repeat_share": float("nan")}, "repeat_share"),
        ({"modality_mix": (1.0, 1.0)}, "modality_mix"),
        ({"modality_mix": (0.0, 0.0, 0.0)}, "modality_mix"),
        ({"modality_mix": (0.5, -0.5, 1.0)}, "modality_mix"),
    ],
)
def test_bad_settings_are_refused_naming_the_field(changes, field):
    with pytest.raises(ValueError, match=rf"PhantomConfig\.{field}\b"):
        PhantomConfig(**changes)


def test_numpy_integer_seed_becomes_an_int_so_the_cache_key_can_be_written():
    config = PhantomConfig(seed=np.int64(7))
    assert type(config.seed) is int and config.seed == 7
    json.dumps(dataclasses.asdict(config))  # the cohort's cache key is this JSON


def test_good_settings_are_kept_as_given():
    config = PhantomConfig(
        seed=3,
        spacing_mm=0.25,
        sites=("site_C",),
        site_weights=(1,),
        lesion_prevalence=0.0,
        lesion_mix=(0, 1, 0, 0),
        dose=0.5,
        canvas_mm=MIN_CANVAS_MM,
        modalities=("DM", "DBT"),
    )
    assert config.spacing_mm == 0.25 and config.site_weights == (1,)
    assert PhantomConfig() == PhantomConfig(seed=0)


def test_spacing_is_the_override_or_the_scaled_native_pitch():
    from mammo_helpers.data.phantom import SITES

    site = SITES["site_C"]  # 0.085 mm native
    assert PhantomConfig(resolution_scale=2.0).spacing_for(site) == pytest.approx(0.17)
    assert PhantomConfig(spacing_mm=0.3).spacing_for(site) == 0.3


def test_the_smallest_allowed_canvas_renders_every_site_and_view():
    from mammo_helpers.data.phantom import render_view, sample_patient

    config = PhantomConfig(seed=1, spacing_mm=1.0, canvas_mm=MIN_CANVAS_MM, lesion_prevalence=1)
    for index in range(6):
        patient = sample_patient(config, index)
        for lat, view in (("L", "CC"), ("R", "MLO")):
            image = render_view(config, patient, lat, view)
            assert image.breast_mask.any()


def test_a_bad_modality_is_refused_with_the_allowed_ones_listed():
    with pytest.raises(ValueError, match=r"DM, s2D, DBT; got \('MRI',\)"):
        PhantomConfig(modalities=("MRI",))


def test_a_bound_message_states_only_the_bounds_that_exist():
    with pytest.raises(ValueError, match=r"dose must be > 0, got -1.0$"):
        PhantomConfig(dose=-1.0)
    with pytest.raises(ValueError, match=r"repeat_share must be >= 0 and <= 1, got 1.5$"):
        PhantomConfig(repeat_share=1.5)
