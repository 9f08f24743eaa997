import numpy as np
import pytest
from scipy import stats

from mammo_helpers.data.phantom.lesions import LESION_KINDS, render_lesion, sample_lesion


def test_spiculated_masses_are_malignant_at_the_published_rate():
    rng = np.random.default_rng(0)
    spic = [
        m for m in (sample_lesion(rng, "mass") for _ in range(3000)) if m.subtype == "spiculated"
    ]
    k = sum(m.malignant for m in spic)
    # PPV of a spiculated margin: 81 % (Liberman 1998), x1.3 for an irregular shape (capped
    # at 0.95); spiculated masses are irregular 80 % of the time
    expected = 0.8 * min(0.81 * 1.3, 0.95) + 0.2 * 0.81
    assert stats.binomtest(k, len(spic), expected).pvalue > 1e-4
    circ = [
        m for m in (sample_lesion(rng, "mass") for _ in range(3000)) if m.subtype == "circumscribed"
    ]
    assert sum(m.malignant for m in circ) / len(circ) < 0.1


def test_round_circumscribed_mass_mask_has_the_disk_area():
    rng = np.random.default_rng(3)
    les = sample_lesion(rng, "mass")
    les.subtype = "circumscribed"
    les.size_mm = 10.0
    les.params.update(shape="round", elongation=1.0, harmonics=[0.0] * 8, n_spicules=0)
    out = render_lesion(les, (100, 100), 0.1, (200, 200))
    area = out.mask.sum() * 0.01
    assert area == pytest.approx(np.pi * 25, rel=0.03)
    assert out.path_mm.max() == pytest.approx(10.0, rel=0.05)  # a sphere's central chord
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


def test_unknown_kind_names_the_known_ones():
    with pytest.raises(ValueError, match="mass"):
        sample_lesion(np.random.default_rng(0), "cyst")
    assert set(LESION_KINDS) == {"mass", "calcification", "architectural_distortion", "asymmetry"}
