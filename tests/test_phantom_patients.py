"""Patients: deterministic draws whose population matches published breast statistics."""

import numpy as np
import pytest
from scipy import stats

from mammo_helpers.data.phantom import PhantomConfig, sample_patient

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
