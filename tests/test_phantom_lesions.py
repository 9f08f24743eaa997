"""Lesions: malignancy rates against published PPVs, masks and paths against geometry."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from mammo_helpers.data.phantom import calibration as cal
from mammo_helpers.data.phantom.lesions import (
    LESION_KINDS,
    Lesion,
    lesion_centre_mm,
    p_malignant_mass,
    render_lesion,
    sample_lesion,
)
from mammo_helpers.vocab import FINDING_LABELS


def _rate_within(k: int, n: int, low: float, high: float, alpha: float = 1e-3) -> bool:
    """k of n is not significantly below ``low`` nor above ``high`` (one-sided binomial)."""
    below = stats.binomtest(k, n, low, alternative="less").pvalue < alpha
    above = stats.binomtest(k, n, high, alternative="greater").pvalue < alpha
    return not below and not above


def test_distortions_are_malignant_at_the_published_rate():
    # Bahl et al. AJR 2015: PPV of architectural distortion 67.0 % at screening, 83.1 % at
    # diagnostic mammography (74.5 % overall, 275 of 369)
    rng = np.random.default_rng(0)
    lesions = [sample_lesion(rng, "architectural_distortion") for _ in range(1500)]
    k = sum(les.malignant for les in lesions)
    assert _rate_within(k, len(lesions), 0.670, 0.831), k / len(lesions)


def test_spiculated_masses_are_malignant_at_the_published_rate():
    # Liberman et al. AJR 1998: PPV of a spiculated margin 81 % (whatever the mass's shape)
    rng = np.random.default_rng(2)
    masses = [sample_lesion(rng, "mass") for _ in range(4000)]
    spiculated = [m for m in masses if m.subtype == "spiculated"]
    k = sum(m.malignant for m in spiculated)
    assert len(spiculated) > 800
    assert stats.binomtest(k, len(spiculated), 0.81).pvalue > 1e-3, k / len(spiculated)
    # within a margin, an irregular shape is the more suspicious one
    for margin in ("circumscribed", "indistinct", "spiculated"):
        assert p_malignant_mass(margin, "irregular") > p_malignant_mass(margin, "round")


# Choi et al. Eur Radiol 2021 (two cohorts, 1076 women): reader-averaged PPV by morphology;
# punctate calcifications are benign-appearing (BI-RADS 3: at most 2 % malignant)
CALC_PPV = {
    "punctate": (0.0, 0.02),
    "amorphous": (0.064, 0.091),
    "coarse_heterogeneous": (0.161, 0.221),
    "fine_pleomorphic": (0.447, 0.788),
    "fine_linear": (0.786, 0.851),
}


def test_calcifications_are_malignant_at_the_published_rates_of_their_morphology():
    rng = np.random.default_rng(1)
    lesions = [sample_lesion(rng, "calcification") for _ in range(5000)]
    for morph, (low, high) in CALC_PPV.items():
        group = [les for les in lesions if les.subtype == morph]
        k = sum(les.malignant for les in group)
        assert len(group) > 400
        assert _rate_within(k, len(group), max(low, 1e-9), high), (morph, k / len(group))


def test_round_circumscribed_mass_mask_has_the_disk_area():
    rng = np.random.default_rng(3)
    les = sample_lesion(rng, "mass")
    les.subtype = "circumscribed"
    les.size_mm = 10.0
    les.params.update(shape="round", elongation=1.0, harmonics=[0.0] * 8, n_spicules=0)
    out = render_lesion(les, (100, 100), 0.1, (200, 200))
    area = out.mask.sum() * 0.01
    assert area == pytest.approx(np.pi * 25, rel=0.03)
    # a sphere: chord 2 sqrt(R^2 - r^2), so the volume under the path map is 4/3 pi R^3
    assert out.path_mm.max() == pytest.approx(10.0, rel=0.05)
    assert out.path_mm.sum() * 0.01 == pytest.approx(4 / 3 * np.pi * 5**3, rel=0.03)
    assert np.all(out.path_mm[~out.mask] == 0)


@pytest.mark.parametrize("centre", [(150, 150), (110, 190)])
def test_calcification_mask_covers_every_calcification(centre):
    rng = np.random.default_rng(5)
    les = sample_lesion(rng, "calcification")
    out = render_lesion(les, centre, 0.1, (300, 300))
    peaks = out.path_mm > 0.2 * out.path_mm.max()
    assert peaks.any()
    assert out.mask[peaks].mean() > 0.98


def test_one_view_asymmetry_is_in_one_view_only():
    rng = np.random.default_rng(1)
    seen = set()
    for _ in range(200):
        les = sample_lesion(rng, "asymmetry")
        if les.subtype == "one_view":
            assert len(les.views) == 1
        else:
            assert les.views == ("CC", "MLO")
        seen.add(les.subtype)
    assert seen == {"one_view", "focal", "global"}


def test_every_lesion_label_is_a_manifest_finding_label_and_unknown_kinds_are_named():
    rng = np.random.default_rng(0)
    assert {sample_lesion(rng, kind).label for kind in LESION_KINDS} <= set(FINDING_LABELS)
    with pytest.raises(ValueError, match="mass"):
        sample_lesion(rng, "cyst")


def test_global_asymmetries_are_larger_than_focal_ones_and_one_view_ones_have_one_view():
    """BI-RADS: a global asymmetry spans at least a quadrant, a focal one less; a one-view
    asymmetry is seen in one projection only."""
    rng = np.random.default_rng(11)
    drawn = [sample_lesion(rng, "asymmetry") for _ in range(400)]
    size = {sub: [a.size_mm for a in drawn if a.subtype == sub] for sub in ("focal", "global")}
    assert min(size["global"]) > max(size["focal"])
    for a in drawn:
        assert len(a.views) == (1 if a.subtype == "one_view" else 2)


@pytest.mark.parametrize("kind", LESION_KINDS)
def test_every_lesion_is_seen_in_standard_views(kind):
    from mammo_helpers.vocab import VIEWS

    rng = np.random.default_rng(5)
    for _ in range(50):
        lesion = sample_lesion(rng, kind)
        assert lesion.views and set(lesion.views) <= set(VIEWS), lesion.views


def test_unknown_kinds_are_named():
    import dataclasses

    lesion = dataclasses.replace(sample_lesion(np.random.default_rng(0), "mass"), kind="cyst")
    with pytest.raises(ValueError, match="unknown lesion kind 'cyst'"):
        render_lesion(lesion, (50, 50), 0.2, (100, 100))
    with pytest.raises(ValueError, match="unknown lesion kind 'cyst'; expected one of"):
        sample_lesion(np.random.default_rng(0), "cyst")


@pytest.mark.parametrize("spacing", [0.1, 0.4])
def test_asymmetry_region_is_a_disc_of_its_diameter_at_any_spacing(spacing):
    les = sample_lesion(np.random.default_rng(2), "asymmetry")
    les.size_mm = 30.0
    shape = (int(80 / spacing), int(80 / spacing))
    out = render_lesion(les, (shape[0] // 2, shape[1] // 2), spacing, shape)
    assert out.mask.sum() * spacing**2 == pytest.approx(np.pi * 15**2, rel=0.03)
    assert not out.path_mm.any()  # drawn through the tissue model, not as lesion material


@pytest.mark.parametrize("seed", range(6))
def test_a_calcification_cluster_stays_within_its_extent(seed):
    les = sample_lesion(np.random.default_rng(seed), "calcification")
    spacing = 0.1
    out = render_lesion(les, (200, 200), spacing, (400, 400))
    rows, cols = np.nonzero(out.path_mm > 0.05 * out.path_mm.max())
    reach = np.hypot(rows - 200, cols - 200).max() * spacing
    assert reach <= les.size_mm / 2 * np.sqrt(2) + 1.5, (les.params["distribution"], reach)


@pytest.mark.parametrize("seed", range(4))
def test_distortion_strands_reach_most_of_its_radius(seed):
    les = sample_lesion(np.random.default_rng(seed), "architectural_distortion")
    spacing = 0.2
    out = render_lesion(les, (150, 150), spacing, (300, 300))
    rows, cols = np.nonzero(out.path_mm > 0)
    reach = np.hypot(rows - 150, cols - 150).max() * spacing
    assert 0.6 * les.size_mm / 2 <= reach <= les.size_mm / 2 + 2 * spacing + 1.0


def _mass(subtype="circumscribed", size_mm=10.0, **params):
    """A round mass with no harmonics, spicules or elongation unless given."""
    base = dict(
        shape="round",
        elongation=1.0,
        orientation=0.0,
        harmonics=[0.0] * 8,
        phases=[0.0] * 8,
        density_ratio=1.1,
        n_spicules=0,
        spicule_seed=0,
        occult_view=None,
    )
    base.update(params)
    return Lesion("mass", False, subtype, 0.5, {"CC": 0.0, "MLO": 0.0}, size_mm, base)


def _outline_radius(mask, centre, spacing, angles):
    """The mask's radius (mm) from ``centre`` along each angle (x right, y down)."""
    out = []
    for a in angles:
        r = np.arange(0, min(mask.shape) / 2 - 1, 0.25)
        rows = np.round(centre[0] + r * np.sin(a)).astype(int)
        cols = np.round(centre[1] + r * np.cos(a)).astype(int)
        inside = mask[rows, cols]
        out.append(r[np.argmin(inside)] * spacing if not inside.all() else np.inf)
    return np.array(out)


def test_the_first_harmonic_of_a_mass_outline_is_two_fold():
    # harmonics[0] is cos(2 theta): two opposite bulges (order 1 would only shift the mass)
    les = _mass(size_mm=12.0, harmonics=[0.25] + [0.0] * 7)
    out = render_lesion(les, (150, 150), 0.1, (300, 300))
    angles = np.linspace(0, 2 * np.pi, 72, endpoint=False)
    r = _outline_radius(out.mask, (150, 150), 0.1, angles)
    spectrum = np.abs(np.fft.rfft(r - r.mean()))
    assert np.argmax(spectrum) == 2, spectrum.round(2)[:5]
    assert r.max() == pytest.approx(6.0 * 1.25, abs=0.2)
    assert r.min() == pytest.approx(6.0 * 0.75, abs=0.2)


def test_a_microlobulated_margin_undulates_the_outline_a_little():
    plain = render_lesion(_mass("circumscribed", 12.0), (150, 150), 0.05, (300, 300)).mask
    lobed = render_lesion(_mass("microlobulated", 12.0), (150, 150), 0.05, (300, 300)).mask
    changed = (plain != lobed).sum()
    assert 0 < changed < 0.05 * plain.sum()
    angles = np.linspace(0, 2 * np.pi, 360, endpoint=False)
    r = _outline_radius(lobed, (150, 150), 0.05, angles)
    spectrum = np.abs(np.fft.rfft(r - r.mean()))
    assert spectrum[11:18].max() > 5 * np.median(spectrum[1:60])


def test_spicules_carry_material_beyond_the_outline_of_a_spiculated_mass():
    les = _mass("spiculated", 10.0, n_spicules=12, spicule_seed=3)
    out = render_lesion(les, (150, 150), 0.1, (300, 300))
    outside = (out.path_mm > 0.05) & ~out.mask
    rows, cols = np.nonzero(outside)
    reach = np.hypot(rows - 150, cols - 150).max() * 0.1
    assert outside.sum() > 50 and reach > 1.1 * 5.0
    assert reach <= 2.6 * 5.0 + 1.0  # spicules radiate from the centre, 1.2-2.6 radii long
    quadrants = {(r < 150, c < 150) for r, c in zip(rows, cols, strict=True)}
    assert len(quadrants) >= 3  # in every direction, not one sector
    plain = render_lesion(_mass("spiculated", 10.0), (150, 150), 0.1, (300, 300))
    assert not ((plain.path_mm > 0.05) & ~plain.mask).any()


def test_only_spiculated_masses_have_spicules():
    rng = np.random.default_rng(5)
    masses = [sample_lesion(rng, "mass") for _ in range(400)]
    for m in masses:
        n = m.params["n_spicules"]
        assert (8 <= n <= 24) if m.subtype == "spiculated" else n == 0, (m.subtype, n)
    assert any(m.subtype == "spiculated" for m in masses)


def test_lesion_sizes_follow_their_calibrated_log_normal_laws():
    rng = np.random.default_rng(6)
    for kind, (median, log_sd, low, high) in (
        ("mass", cal.MASS_DIAMETER_MM),
        ("calcification", cal.CALC_CLUSTER_MM),
    ):
        size = np.array([sample_lesion(rng, kind).size_mm for _ in range(3000)])
        assert size.min() >= low and size.max() <= high
        assert np.median(size) == pytest.approx(median, rel=0.05), kind
        q25, q75 = np.log(np.quantile(size, [0.25, 0.75]))
        assert (q75 - q25) / (2 * stats.norm.ppf(0.75)) == pytest.approx(log_sd, rel=0.1), kind


def test_lesions_are_placed_within_their_lateral_ranges():
    rng = np.random.default_rng(7)
    lesions = [sample_lesion(rng, "asymmetry") for _ in range(2000)]
    for view, (low, high) in {"CC": (-0.6, 0.6), "MLO": (-0.5, 0.6)}.items():
        lateral = np.array([les.lateral[view] for les in lesions])
        assert lateral.min() >= low and lateral.max() <= high, view
        assert lateral.min() < low + 0.01 and lateral.max() > high - 0.01, view
    depth = np.array([les.nipple_depth_frac for les in lesions])
    assert depth.min() >= 0.2 and depth.max() <= 0.85


def test_calcification_distributions_follow_their_morphology():
    rng = np.random.default_rng(8)
    calcs = [sample_lesion(rng, "calcification") for _ in range(2000)]
    dist = pd.Series([c.params["distribution"] for c in calcs])
    morph = pd.Series([c.subtype for c in calcs])
    assert set(dist[morph == "fine_linear"]) == {"linear"}
    others = dist[morph != "fine_linear"]
    assert set(others) == {"grouped", "segmental"}
    assert (others == "grouped").mean() == pytest.approx(0.8, abs=0.04)


def _ellipsoid_volume(morph_range, elong_range):
    """E[pi/6 d^3 e] for d and e uniform on their ranges."""
    (a, b), (lo, hi) = morph_range, elong_range
    return np.pi / 6 * (b**4 - a**4) / (4 * (b - a)) * (lo + hi) / 2


def _clusters(morph, distribution, n, seed):
    rng = np.random.default_rng(seed)
    while n:
        les = sample_lesion(rng, "calcification")
        if les.subtype == morph and les.params["distribution"] == distribution:
            n -= 1
            yield les


@pytest.mark.parametrize(
    "morph, distribution, diameter, elongation",
    [
        ("punctate", "grouped", (0.3, 0.6), (1.0, 1.6)),
        ("fine_linear", "linear", (0.15, 0.35), (2.0, 3.5)),
    ],
)
def test_calcium_in_a_cluster_is_the_volume_of_its_calcifications_around_its_centre(
    morph, distribution, diameter, elongation
):
    # ellipsoids of the morphology's diameters and elongations (the renderer's table); path
    # (mm) integrated over the pixel area (mm2) gives mm3 of calcium, whatever the spacing
    per_calc, offsets = [], []
    for k, les in enumerate(_clusters(morph, distribution, 60, seed=9)):
        spacing = (0.05, 0.1)[k % 2]
        out = render_lesion(les, (250, 250), spacing, (500, 500))
        volume = out.path_mm.sum() * spacing**2
        per_calc.append(volume / les.params["n_calcs"])
        rows, cols = np.indices(out.path_mm.shape)
        w = out.path_mm / out.path_mm.sum()
        offsets.append([((rows - 250) * w).sum() * spacing, ((cols - 250) * w).sum() * spacing])
    expected = _ellipsoid_volume(diameter, elongation)
    assert np.mean(per_calc) == pytest.approx(expected, rel=0.1)
    assert np.abs(np.mean(offsets, axis=0)).max() < 0.35  # mm: centred on average


def _spread_mm(les, spacing=0.1):
    """Principal standard deviations (mm) of a rendered cluster's calcium."""
    out = render_lesion(les, (250, 250), spacing, (500, 500))
    rows, cols = np.nonzero(out.path_mm > 0.2 * out.path_mm.max())
    return np.sqrt(np.linalg.eigvalsh(np.cov(np.stack([rows, cols]) * spacing)))


def test_linear_clusters_are_lines_and_grouped_ones_are_tighter_than_segmental_ones():
    lines = [_spread_mm(les) for les in _clusters("fine_linear", "linear", 20, seed=12)]
    assert np.median([major / minor for minor, major in lines]) > 3
    for morph in ("punctate", "amorphous"):
        relative = {}
        for dist in ("grouped", "segmental"):
            clusters = list(_clusters(morph, dist, 40, seed=13))
            relative[dist] = np.mean([_spread_mm(c).mean() / c.size_mm for c in clusters])
        assert relative["grouped"] < 0.9 * relative["segmental"], (morph, relative)


def test_a_distortion_region_is_a_disc_of_most_of_its_radius():
    les = sample_lesion(np.random.default_rng(10), "architectural_distortion")
    spacing = 0.2
    out = render_lesion(les, (150, 150), spacing, (300, 300))
    rows, cols = np.nonzero(out.mask)
    radius = 0.8 * les.size_mm / 2
    assert out.mask.sum() * spacing**2 == pytest.approx(np.pi * radius**2, rel=0.05)
    assert np.ptp(rows) == pytest.approx(np.ptp(cols), abs=1)


@pytest.mark.parametrize("view", ["CC", "MLO"])
@pytest.mark.parametrize("lateral", [-0.5, 0.4])
def test_a_lesion_sits_on_the_side_and_at_the_share_of_the_width_its_position_says(view, lateral):
    from mammo_helpers.data.phantom.geometry import BreastGeometry, Canvas, rasterize

    geom = BreastGeometry(view, 100.0, 60.0, 70.0, 2.0, 5.0, 50.0, 1.0, ())  # no MLO cap
    les = sample_lesion(np.random.default_rng(0), "mass")
    les.lateral = {"CC": lateral, "MLO": lateral}
    u, v = lesion_centre_mm(les, geom)
    assert u == pytest.approx(100.0 * (1 - les.nipple_depth_frac))
    upper = lateral < 0  # above the nipple line (smaller v), as rasterize draws it
    canvas = Canvas(240, 192, 0.5)
    breast = rasterize(geom, canvas).breast
    col = int(u / 0.5)
    rows = np.nonzero(breast[:, col])[0]
    edge_v = (rows.min() if upper else rows.max()) * 0.5 - 120.0  # v of the outline there
    share = (v - 5.0) / (edge_v - 5.0)
    assert (v < 5.0) == upper
    assert share == pytest.approx(abs(lateral), abs=0.03)


def test_a_round_mass_stays_nearly_circular_and_an_irregular_one_does_not():
    rng = np.random.default_rng(11)
    masses = [sample_lesion(rng, "mass") for _ in range(1500)]

    def bumpiness(m):
        return np.abs(m.params["harmonics"]).sum()

    by_shape = {
        s: [bumpiness(m) for m in masses if m.params["shape"] == s] for s in ("round", "irregular")
    }
    assert max(by_shape["round"]) < 0.15  # within a few % of a circle
    assert np.median(by_shape["irregular"]) > 3 * np.median(by_shape["round"])


def test_margin_blur_grows_from_sharp_to_ill_defined_margins():
    blur = {}
    for margin in ("circumscribed", "microlobulated", "obscured", "indistinct", "spiculated"):
        blur[margin] = render_lesion(_mass(margin), (60, 60), 0.2, (120, 120)).blur_mm
    assert blur["circumscribed"] == 0.0
    assert blur["circumscribed"] < blur["microlobulated"] < blur["obscured"] < blur["indistinct"]
    assert blur["spiculated"] < blur["obscured"]  # the spicules, not a blur, make the margin
