"""Patients: deterministic draws whose population matches published breast statistics."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from mammo_helpers.data.phantom import PhantomConfig, patient_exams, sample_patient
from mammo_helpers.data.phantom.patients import VGF_YEARLY_FACTOR

CFG = PhantomConfig(seed=0)


def test_the_same_index_draws_the_same_patient_and_another_index_another():
    a, b = sample_patient(CFG, 5), sample_patient(CFG, 5)
    assert a == b and a.patient_id == "P000-00005"
    assert sample_patient(CFG, 6) != a
    assert sample_patient(PhantomConfig(seed=1), 5).vgf != a.vgf


def test_compressed_thickness_matches_the_screening_population():
    patients = [sample_patient(CFG, i) for i in range(1500)]
    thickness = np.array([p.thickness_mm["L"] for p in patients])
    vgf = np.array([p.vgf["L"] for p in patients])
    # Yaffe et al. 2009: 5.9 +- 1.6 cm (the phantom clips to 30-90 mm)
    assert thickness.mean() == pytest.approx(59.0, abs=3.0)
    assert 12.0 < thickness.std() < 17.0
    # Moshina et al. 2018: thickness vs percent dense volume, Spearman -0.56 (CC), -0.62 (MLO)
    rho = stats.spearmanr(thickness, vgf).statistic
    assert -0.70 < rho < -0.40, rho


def test_denser_latent_classes_have_more_glandular_tissue_and_both_breasts_agree():
    patients = [sample_patient(CFG, i) for i in range(800)]
    by_class = {c: [p.vgf["L"] for p in patients if p.density_latent == c] for c in "ABCD"}
    medians = [np.median(by_class[c]) for c in "ABCD"]
    assert medians == sorted(medians)
    left = np.array([p.vgf["L"] for p in patients])
    right = np.array([p.vgf["R"] for p in patients])
    assert np.corrcoef(np.log(left), np.log(right))[0, 1] > 0.8


def test_studies_are_restricted_to_the_requested_modalities():
    config = PhantomConfig(seed=0, modalities=("DBT",))
    assert {sample_patient(config, i).modality for i in range(40)} == {"DBT"}


@pytest.mark.parametrize("index", [-1, 1.0, True, "3"])
def test_a_bad_patient_index_is_refused(index):
    with pytest.raises(ValueError, match="patient index"):
        sample_patient(CFG, index)


def test_repeat_exams_go_to_the_requested_share_and_leave_first_exams_alone():
    none = PhantomConfig(seed=0)
    some = PhantomConfig(seed=0, repeat_share=0.3)
    counts = [len(patient_exams(some, i)) for i in range(400)]
    assert all(len(patient_exams(none, i)) == 1 for i in range(50))
    assert all(
        len(patient_exams(PhantomConfig(seed=0, repeat_share=1.0), i)) == 2 for i in range(20)
    )
    share = np.mean(np.asarray(counts) == 2)
    assert stats.binomtest(int(share * 400), 400, 0.3).pvalue > 0.001
    for i in range(20):  # the first exam does not depend on the share
        assert patient_exams(some, i)[0] == sample_patient(none, i)


def test_a_repeat_exam_is_the_same_breast_a_year_older_with_less_gland():
    cfg = PhantomConfig(seed=5, repeat_share=1.0)
    first, later = patient_exams(cfg, 3)
    assert (later.exam, first.exam) == (1, 0)
    assert later.patient_id == first.patient_id and later.index == first.index
    assert later.study_id == first.study_id + "-Y1"
    assert later.age == pytest.approx(first.age + 1.0)
    for lat in "LR":
        assert later.vgf[lat] == pytest.approx(first.vgf[lat] * VGF_YEARLY_FACTOR)
        assert later.thickness_mm[lat] == first.thickness_mm[lat]
        assert later.lesions[lat] == first.lesions[lat]
    assert later.reader_offset != first.reader_offset


def test_a_modality_mix_replaces_every_sites_own_mix():
    cfg = PhantomConfig(seed=1, modality_mix=(0.25, 0.5, 0.25))  # DM, s2D, DBT
    mods = pd.Series([sample_patient(cfg, i).modality for i in range(600)])
    share = mods.value_counts(normalize=True)
    assert share["s2D"] == pytest.approx(0.5, abs=0.06)
    assert share["DM"] == pytest.approx(0.25, abs=0.05) and share["DBT"] == pytest.approx(
        0.25, abs=0.05
    )
    # site B images only DM on its own; with the mix it has s2D too
    site_b = PhantomConfig(seed=1, sites=("site_B",), site_weights=(1.0,), modality_mix=(0, 1, 0))
    assert {sample_patient(site_b, i).modality for i in range(20)} == {"s2D"}
    assert PhantomConfig(seed=1, modality_mix=[1, 2, 1]).modality_mix == (1.0, 2.0, 1.0)


def test_every_thickness_stays_in_the_compressible_range_and_reaches_its_ends():
    # 30-90 mm: the phantom's clip, about the 3rd and 97th percentiles of Yaffe et al. 2009
    patients = [sample_patient(CFG, i) for i in range(3000)]
    both = np.array([[p.thickness_mm["L"], p.thickness_mm["R"]] for p in patients])
    assert both.min() >= 30.0 and both.max() <= 90.0
    assert (both == 30.0).any() and (both == 90.0).any()


def test_each_patient_carries_the_reader_density_class_it_was_drawn_from():
    from mammo_helpers.vocab import DENSITIES

    classes = {sample_patient(CFG, i).density_latent for i in range(400)}
    assert classes == set(DENSITIES)


def test_reader_offsets_spread_by_the_configured_reader_noise():
    for noise in (0.0, 6.0):
        cfg = PhantomConfig(seed=0, reader_noise_pd=noise)
        offsets = np.array([sample_patient(cfg, i).reader_offset for i in range(1500)])
        assert offsets.std() == pytest.approx(noise, abs=0.4)
        assert abs(offsets.mean()) < 0.5


def test_denser_breasts_belong_to_younger_women():
    # density falls with age (Checka et al. 2012: dense breasts in 74 % of women in their
    # forties, 36 % of those in their seventies)
    patients = [sample_patient(CFG, i) for i in range(3000)]
    ages = pd.DataFrame(
        {"age": [p.age for p in patients], "cls": [p.density_latent for p in patients]}
    )
    means = ages.groupby("cls").age.mean().reindex(list("ABCD"))
    assert means.is_monotonic_decreasing, means.round(1).to_dict()
    assert 5.0 < means["A"] - means["D"] < 15.0
