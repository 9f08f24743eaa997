"""render_view and its stages: determinism, geometry of findings, physics of each modality."""

import numpy as np
import pytest

from mammo_helpers.data.phantom import (
    SITES,
    PhantomConfig,
    lesion_centre_px,
    patient_exams,
    render_view,
    sample_patient,
)
from mammo_helpers.data.phantom import generator as gen
from mammo_helpers.data.phantom.geometry import GeometryMaps, rasterize
from mammo_helpers.data.phantom.lesions import sample_lesion
from mammo_helpers.data.phantom.physics import MU_FAT, MU_GLAND, MU_MUSCLE, MU_SKIN
from mammo_helpers.data.phantom.validation import power_spectrum_beta

CFG = PhantomConfig(seed=7, resolution_scale=12.0, lesion_prevalence=1.0)


def test_same_seed_same_pixels_other_seed_other_pixels():
    p = sample_patient(CFG, 0)
    a = render_view(CFG, p, "L", "CC")
    b = render_view(CFG, sample_patient(CFG, 0), "L", "CC")
    assert np.array_equal(a.stored, b.stored)
    other = PhantomConfig(seed=8, resolution_scale=12.0, lesion_prevalence=1.0)
    c = render_view(other, sample_patient(other, 0), "L", "CC")
    assert a.stored.shape != c.stored.shape or not np.array_equal(a.stored, c.stored)


def test_right_breast_sits_on_the_right_and_boxes_contain_their_masks():
    for i in range(2):
        p = sample_patient(CFG, i)
        for lat in "LR":
            im = render_view(CFG, p, lat, "MLO")
            cols = np.flatnonzero(im.breast_mask.any(axis=0))
            width = im.breast_mask.shape[1]
            if lat == "L":
                assert cols[0] == 0
            else:
                assert cols[-1] == width - 1
            for f in im.findings:
                rr, cc = np.nonzero(f["mask"])
                assert f["xmin"] == cc.min() and f["xmax"] == cc.max() + 1
                assert f["ymin"] == rr.min() and f["ymax"] == rr.max() + 1
                assert f["lesion_id"].startswith(lat)


def test_a_mass_is_drawn_where_lesion_centre_px_says_in_both_lateralities():
    config = PhantomConfig(seed=3, resolution_scale=8.0, lesion_mix=(1, 0, 0, 0))
    p = sample_patient(config, 0)
    lesion = sample_lesion(np.random.default_rng(2), "mass")
    lesion.size_mm, lesion.params["occult_view"], lesion.params["n_spicules"] = 10.0, None, 0
    lesion.nipple_depth_frac, lesion.lateral = 0.5, {"CC": 0.0, "MLO": 0.1}
    for lat in "LR":
        p.lesions = {"L": [], "R": [], lat: [lesion]}
        im = render_view(config, p, lat, "CC", modality="DM")
        (finding,) = im.findings
        row, col = lesion_centre_px(config, p, lesion, lat, "CC", "DM")
        rr, cc = np.nonzero(finding["mask"])
        assert rr.mean() == pytest.approx(row, abs=2.0)
        assert cc.mean() == pytest.approx(col, abs=2.0)


def test_masses_are_harder_to_see_in_dense_breasts():
    # the same mass in the same breast: its signal falls as glandular tissue replaces fat
    cfg = PhantomConfig(
        seed=1, resolution_scale=10.0, lesion_prevalence=1.0, lesion_mix=(1.0, 0.0, 0.0, 0.0)
    )
    compared = 0
    for i in range(3):
        p = sample_patient(cfg, i)
        signals = []
        for vgf in (0.05, 0.3, 0.6):
            p.vgf = {"L": vgf, "R": vgf}
            im = render_view(cfg, p, "L", "CC", modality="DM")
            signals.append(np.mean([f["contrast"] for f in im.findings]) if im.findings else None)
        if None in signals:
            continue
        assert signals[0] > signals[1] > signals[2] > 0
        compared += 1
    assert compared >= 2


def test_line_integrals_follow_beer_lambert_through_skin_muscle_and_tissue():
    shape = (3, 4)
    t = np.full(shape, 50.0, np.float32)
    skin = np.full(shape, 2.0, np.float32)
    muscle = np.zeros(shape, np.float32)
    muscle[0] = 10.0
    maps = GeometryMaps(np.ones(shape, bool), muscle > 0, t, skin, muscle, None, None, (0, 0))
    frac = np.full(shape, 0.25, np.float32)
    cols = gen.attenuation_columns(gen.GlandFractions(frac, None, None, 0.25), maps)
    mu = MU_FAT + 0.25 * (MU_GLAND - MU_FAT)
    # 48 mm of tissue and 2 mm of skin; in row 0, 10 mm of the tissue is muscle instead
    assert cols.line_dm[1, 0] == pytest.approx(48 * mu + 2 * MU_SKIN, rel=1e-6)
    assert cols.line_dm[0, 0] == pytest.approx(38 * mu + 10 * MU_MUSCLE + 2 * MU_SKIN, rel=1e-6)


def _columns(spacing=0.4, index=10_000, lat="L", view="CC"):
    """Lesion-free attenuation columns of one breast with its DBT slab (a DBT stream)."""
    config = PhantomConfig(seed=0, spacing_mm=spacing)
    p = sample_patient(config, index)
    p.lesions = {"L": [], "R": []}
    rng, geom, canvas = gen.view_setup(config, p, lat, view, "DBT")
    maps = rasterize(geom, canvas)
    fractions = gen.gland_fractions(
        geom, canvas, p, lat, [], rng, need_dbt=True,
        dbt_half_angle_deg=SITES[p.site].dbt_half_angle_deg,
    )  # fmt: skip
    return gen.attenuation_columns(fractions, maps), maps


def test_dbt_reconstruction_amplifies_fine_detail_like_a_ramp_filter():
    # filtered back-projection's ramp filter passes broad structure and amplifies fine
    # detail; measure the slice's gain on a broad (50 mm) and a fine (2 mm) sinusoid
    spacing, n = 0.2, 1000
    x = np.arange(n) * spacing
    gains = {}
    for period in (50.0, 2.0):
        wave = np.tile(np.sin(2 * np.pi * x / period), (64, 1)).astype(np.float32)
        cols = gen.AttenuationColumns(None, None, wave, line_dbt=wave)
        out = gen.modality_image(cols, "DBT", spacing, np.ones(wave.shape, bool))
        centre = slice(n // 4, 3 * n // 4)
        gains[period] = out[32, centre].std() / wave[32, centre].std()
    assert gains[50.0] == pytest.approx(1.0, abs=0.1)
    assert gains[2.0] > 1.5


def test_synthesized_2d_keeps_the_texture_of_dm():
    # s2D replaces DM in screening: its power-spectrum exponent stays within two standard
    # deviations (2 x 0.23) of the between-women spread of DM beta (Chen et al. 2012)
    images = {"DM": [], "s2D": []}
    masks = []
    for i, (lat, view) in enumerate([("L", "CC"), ("R", "MLO"), ("R", "CC")]):
        cols, maps = _columns(index=10_000 + i, lat=lat, view=view)
        for modality in images:
            images[modality].append(gen.modality_image(cols, modality, 0.4, maps.breast))
        masks.append(maps.breast & ~maps.pectoral)
    beta = {m: power_spectrum_beta(v, masks, 0.4, rng=0).beta for m, v in images.items()}
    assert abs(beta["s2D"] - beta["DM"]) < 2 * 0.23, beta


@pytest.mark.parametrize(
    ("args", "message"),
    [(("L", "ML"), "view"), (("B", "CC"), "laterality")],
)
def test_bad_view_laterality_and_modality_are_named(args, message):
    p = sample_patient(CFG, 0)
    with pytest.raises(ValueError, match=message):
        render_view(CFG, p, *args)
    with pytest.raises(ValueError, match="modality"):
        render_view(CFG, p, "L", "CC", modality="MRI")


def test_a_repeat_exam_has_the_same_breast_less_gland_and_its_own_noise():
    cfg = PhantomConfig(seed=7, resolution_scale=12.0, repeat_share=1.0)
    first, later = patient_exams(cfg, 1)
    a = render_view(cfg, first, "R", "MLO")
    b = render_view(cfg, later, "R", "MLO")
    np.testing.assert_array_equal(a.breast_mask, b.breast_mask)
    assert b.truth["pd_true"] < a.truth["pd_true"]
    assert b.truth["vgf"] < a.truth["vgf"]
    assert not np.array_equal(a.stored, b.stored)
    assert np.corrcoef(a.display.ravel(), b.display.ravel())[0, 1] > 0.95  # same structure
    again = render_view(cfg, later, "R", "MLO")
    np.testing.assert_array_equal(b.stored, again.stored)
