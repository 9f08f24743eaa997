"""Artefacts in the beam: where each object goes, how it attenuates, and bad names refused."""

import numpy as np
import pytest

from mammo_helpers.data.phantom import ARTEFACTS, PhantomConfig, render_view, sample_patient
from mammo_helpers.data.phantom import artefacts as art
from mammo_helpers.data.phantom.physics import MU_FAT

SHAPE = (200, 160)


def _breast():
    """A half-disc breast: chest wall at column 0, 120 px deep."""
    yy, xx = np.mgrid[0 : SHAPE[0], 0 : SHAPE[1]]
    return ((yy - 100) / 90.0) ** 2 + (xx / 120.0) ** 2 <= 1.0


def test_the_implant_is_a_half_ellipsoid_of_silicone_near_the_chest_wall():
    breast = _breast()
    extra = art.implant(SHAPE, breast, 0.5, np.random.default_rng(0))
    peak = np.unravel_index(np.argmax(extra), SHAPE)
    assert extra.max() == pytest.approx(art.IMPLANT_MAX_MM * (art.MU_SILICONE - MU_FAT), rel=0.02)
    assert peak[1] < 0.3 * 120  # its centre is near the chest wall
    assert 0.4 * 180 <= peak[0] - 10 <= 0.6 * 180 + 2  # at mid height of the breast
    assert (extra >= 0).all() and (extra > 0).mean() > 0.05


def test_the_clip_is_an_opaque_bar_four_mm_long_inside_the_breast():
    breast = _breast()
    for seed in range(5):
        extra = art.clip(SHAPE, breast, 0.5, np.random.default_rng(seed))
        bar = extra > 0
        assert set(np.unique(extra)) == {0.0, np.float32(art.CLIP_LINE_INTEGRAL)}
        assert breast[bar].mean() > 0.9
        rr, cc = np.nonzero(bar)
        length_px = np.hypot(rr.max() - rr.min(), cc.max() - cc.min())
        assert 4.0 / 0.5 - 1 <= length_px <= np.hypot(8 + 2, 2 + 2) + 1  # 4 mm x 1 mm at 0.5 mm


def test_the_paddle_edge_is_a_band_parallel_to_the_chest_wall_inside_the_breast():
    breast = _breast()
    extra = art.paddle_edge(SHAPE, breast, 0.5, np.random.default_rng(1))
    cols = np.flatnonzero(extra.any(axis=0))
    assert len(cols) == 2 * round(1.0 / 0.5) + 1  # 2 mm wide at 0.5 mm, centre included
    assert 0.10 * 120 - 3 <= cols.mean() <= 0.25 * 120 + 3
    assert not extra[~breast].any()
    assert np.allclose(extra[breast & (extra > 0)], art.PADDLE_LINE_INTEGRAL)


def test_add_artefacts_sums_the_requested_objects_and_refuses_unknown_names():
    breast = _breast()
    line = np.full(SHAPE, 2.0, np.float32) * breast
    same = art.add_artefacts(line, breast, 0.5, (), np.random.default_rng(0))
    np.testing.assert_array_equal(same, line)
    text_only = art.add_artefacts(line, breast, 0.5, ("text",), np.random.default_rng(0))
    np.testing.assert_array_equal(text_only, line)
    both = art.add_artefacts(line, breast, 0.5, ("clip", "implant"), np.random.default_rng(0))
    assert (both >= line).all() and both.max() > line.max() + art.CLIP_LINE_INTEGRAL - 0.01
    assert art.check_artefacts("clip") == ("clip",)
    with pytest.raises(ValueError, match="'pacemaker'"):
        art.check_artefacts(("clip", "pacemaker"))
    assert set(ARTEFACTS) == {"paddle_edge", "clip", "implant", "text"}


def test_rendered_artefacts_brighten_the_image_and_text_is_burned_in_everywhere():
    cfg = PhantomConfig(seed=2, resolution_scale=12.0, sites=("site_A",), site_weights=(1.0,))
    patient = sample_patient(cfg, 0)
    plain = render_view(cfg, patient, "L", "CC")
    again = render_view(cfg, patient, "L", "CC", artefacts=())
    np.testing.assert_array_equal(plain.stored, again.stored)
    raw = render_view(cfg, patient, "L", "CC", keep_log_raw=True).log_raw
    implant = render_view(cfg, patient, "L", "CC", artefacts=("implant",), keep_log_raw=True)
    breast = plain.breast_mask
    near_wall = breast & (np.arange(breast.shape[1]) < 0.15 * breast.any(axis=0).sum())
    far = breast & (np.arange(breast.shape[1]) > 0.8 * breast.any(axis=0).sum())
    gain = implant.log_raw - raw  # attenuation added, in log units (AEC shifts it all)
    base = np.median(gain[far])  # no implant there: only the exposure changed
    assert np.percentile(gain[near_wall], 90) - base > 3.0
    assert np.percentile(np.abs(gain[far] - base), 90) < 0.05
    assert implant.display[near_wall].max() == 1.0  # the implant is shown white
    text = render_view(cfg, patient, "L", "CC", artefacts=("text",))
    changed = text.stored != plain.stored
    assert changed.any() and not (changed & breast).any()  # the label sits outside the breast
    with pytest.raises(ValueError, match="unknown artefact"):
        render_view(cfg, patient, "L", "CC", artefacts=("tattoo",))
