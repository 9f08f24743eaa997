import numpy as np
import pytest

from mammo_helpers.data.phantom.geometry import BreastGeometry, Canvas, rasterize, sample_geometry


def _plain(view="CC", **kw):
    base = dict(
        view=view,
        depth_mm=100.0,
        half_width_lo_mm=80.0,
        half_width_hi_mm=80.0,
        exponent=2.0,
        nipple_v_mm=0.0,
        thickness_mm=50.0,
        skin_mm=1.0,
        shape_coeffs=(),
    )
    base.update(kw)
    return BreastGeometry(**base)


def test_half_ellipse_area_matches_the_analytic_value():
    maps = rasterize(_plain(), Canvas(240, 192, 0.25))
    area = maps.breast.sum() * 0.25**2
    expected = np.pi * 100 * 80 / 2  # half ellipse; the 4 mm nipple bump adds ~1 %
    assert area == pytest.approx(expected, rel=0.03)


def test_area_in_mm2_does_not_depend_on_pixel_spacing():
    g = _plain()
    a1 = rasterize(g, Canvas(240, 192, 0.2)).breast.sum() * 0.2**2
    a2 = rasterize(g, Canvas(240, 192, 0.5)).breast.sum() * 0.5**2
    assert a1 == pytest.approx(a2, rel=0.01)


def test_thickness_is_full_inside_and_rolls_off_at_the_edge():
    maps = rasterize(_plain(), Canvas(240, 192, 0.5))
    t = maps.thickness
    assert t.max() == pytest.approx(50.0, abs=1e-3)
    centre_row = t.shape[0] // 2
    profile = t[centre_row, :]
    inside = np.flatnonzero(profile > 0)
    assert profile[inside[-1]] < 25.0  # last pixel before the nipple edge is thin
    assert np.all(t[~maps.breast] == 0)
    assert np.all(maps.skin_path <= t + 1e-6)


def test_pectoral_muscle_only_in_mlo_and_in_the_upper_chest_wall_corner():
    rng = np.random.default_rng(0)
    canvas = Canvas(240, 192, 0.5)
    cc = rasterize(
        sample_geometry(rng, "CC", depth_mm=100, half_width_mm=80, thickness_mm=50, canvas=canvas),
        canvas,
    )
    assert not cc.pectoral.any()
    mlo = rasterize(
        sample_geometry(rng, "MLO", depth_mm=100, half_width_mm=80, thickness_mm=50, canvas=canvas),
        canvas,
    )
    rows, cols = np.nonzero(mlo.pectoral)
    assert rows.size > 0
    assert rows.mean() < mlo.breast.shape[0] / 2 and cols.mean() < 40 / 0.5
    assert np.all(mlo.muscle_path[~mlo.pectoral] == 0)


def test_unknown_view_is_rejected():
    with pytest.raises(ValueError, match="view"):
        sample_geometry(
            np.random.default_rng(0),
            "ML",
            depth_mm=100,
            half_width_mm=80,
            thickness_mm=50,
            canvas=Canvas(240, 192, 0.5),
        )


@pytest.mark.parametrize("nipple_v", [-20.0, 0.0, 15.0])
def test_nipple_position_is_the_tip_of_the_drawn_breast(nipple_v):
    canvas = Canvas(240, 192, 0.5)
    maps = rasterize(_plain(nipple_v_mm=nipple_v), canvas)
    rows, cols = np.nonzero(maps.breast)
    tip = cols.max()
    tip_rows = rows[cols == tip]
    r, c = maps.nipple_rc
    assert abs(c - tip) <= 9  # the 4 mm nipple bump sits beyond the depth
    assert tip_rows.min() - 1 <= r <= tip_rows.max() + 1


def test_pectoral_muscle_narrows_from_the_top_of_the_chest_wall_down():
    """The MLO pectoral edge is a wedge: widest at the top of the image, ending above the
    nipple level."""
    g = _plain(
        "MLO",
        pectoral_top_mm=50.0,
        pectoral_tip_v_mm=10.0,
        pectoral_sagitta_mm=3.0,
    )
    maps = rasterize(g, Canvas(240, 192, 0.5))
    widths = maps.pectoral.sum(axis=1)
    rows = np.flatnonzero(widths)
    assert rows.size > 20
    top, bottom = widths[rows[: len(rows) // 4]].mean(), widths[rows[-len(rows) // 4 :]].mean()
    assert top > 2 * bottom


def test_path_lengths_are_never_negative_and_the_muscle_starts_a_few_mm_thick():
    rng = np.random.default_rng(3)
    canvas = Canvas(240, 192, 0.25)
    geom = sample_geometry(
        rng, "MLO", depth_mm=100, half_width_mm=80, thickness_mm=50, canvas=canvas
    )
    maps = rasterize(geom, canvas)
    assert maps.skin_path.min() >= 0 and maps.muscle_path.min() >= 0
    assert np.all(maps.muscle_path[maps.pectoral] > 0)
    # at its anterior edge the muscle is 4 mm thick (then 1.5 mm more per mm towards the wall)
    rows, cols = np.nonzero(maps.pectoral)
    edge = [maps.muscle_path[r, cols[rows == r].max()] for r in np.unique(rows)[5:-5]]
    assert np.median(edge) == pytest.approx(4.0 + 1.5 * 0.125, abs=0.5)


def test_mlo_nipple_line_is_up_to_a_centimetre_longer_and_cc_halves_are_near_symmetric():
    rng = np.random.default_rng(4)
    canvas = Canvas(240, 192, 0.5)
    draw = dict(depth_mm=100, half_width_mm=80, thickness_mm=50, canvas=canvas)
    mlo = [sample_geometry(rng, "MLO", **draw) for _ in range(300)]
    extra = np.array([g.depth_mm - 100 for g in mlo])
    assert extra.min() >= 0 and extra.max() <= 10 and extra.max() > 9
    cc = [sample_geometry(rng, "CC", **draw) for _ in range(300)]
    ratio = np.array([[g.half_width_lo_mm, g.half_width_hi_mm] for g in cc]) / 80
    assert ratio.min() >= 0.92 and ratio.max() <= 1.08


def test_the_muscle_is_as_wide_as_its_top_width_at_the_top_of_the_image():
    geom = _plain(  # the breast reaches the top of the image (the axilla)
        "MLO",
        half_width_hi_mm=130.0,
        pectoral_top_mm=40.0,
        pectoral_tip_v_mm=20.0,
        pectoral_sagitta_mm=4.0,
    )
    maps = rasterize(geom, Canvas(240, 192, 0.5))
    widths = maps.pectoral.sum(axis=1) * 0.5
    assert widths[0] == pytest.approx(40.0, abs=1.0)
    assert widths[: len(widths) // 2].max() <= 40.0 + 4.0 + 1.0  # top width + the sagitta


def test_thickness_rolls_off_as_a_semicircle_towards_the_outline():
    # Pavan et al.: t(d) = T sqrt(1 - (1 - d/b)^2) within b = T/2 of the outline, d the
    # distance to the skin line (scipy's exact distance; the chest wall is not an outline)
    from scipy import ndimage

    maps = rasterize(_plain(), Canvas(240, 192, 0.25))
    padded = np.pad(maps.breast, ((0, 0), (1, 0)), constant_values=True)
    d = ndimage.distance_transform_edt(padded)[:, 1:] * 0.25
    band = (d > 0.5) & (d < 24.5) & maps.breast
    expected = 50.0 * np.sqrt(1 - (1 - d[band] / 25.0) ** 2)
    np.testing.assert_allclose(maps.thickness[band], expected, atol=1.0)
    assert np.all(maps.thickness[maps.breast & (d > 25.5)] == pytest.approx(50.0))
