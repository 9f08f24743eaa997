"""Lesions: malignancy rates against published PPVs, masks and paths against geometry."""

import numpy as np
import pytest
from scipy import stats

from mammo_helpers.data.phantom.lesions import (
    LESION_KINDS,
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


def test_calcification_mask_covers_every_calcification():
    rng = np.random.default_rng(5)
    les = sample_lesion(rng, "calcification")
    out = render_lesion(les, (150, 150), 0.1, (300, 300))
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
