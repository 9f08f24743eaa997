import numpy as np
import pytest

from mammo_helpers.data.phantom import PhantomConfig, checks

CFG = PhantomConfig(seed=0, spacing_mm=0.4)


def test_beta_check_gives_a_finite_anatomical_exponent():
    res = checks.beta_check(CFG, 2, "DM")
    assert res.n_rois > 0 and 1.5 < res.beta < 4.0


def test_observer_sees_large_masses_and_skips_rois_outside_the_breast():
    res, table = checks.observer_check(
        CFG, n_per_class=16, diameter_mm=(12.0, 15.0), roi_mm=24.0, n_bootstrap=0
    )
    assert len(table) == 32 and table.present.sum() == 16
    assert set(table.density) <= set("ABCD") and table.attrs["skipped"] >= 0
    assert res.n_signal == 16 and res.n_background == 16
    assert res.auc > 0.75  # 12-15 mm masses are clearly visible to the observer


def test_observer_refuses_rois_that_never_fit():
    with pytest.raises(ValueError, match="roi_mm"):
        checks.observer_check(CFG, n_per_class=2, roi_mm=400.0, n_bootstrap=0)


def test_density_check_and_speed_return_numbers():
    df, r = checks.density_check(PhantomConfig(seed=0, resolution_scale=6.0), 6)
    assert len(df) == 12 and np.isfinite(r)
    assert r > 0.7  # the physics estimate follows the truth even on 12 images
    assert checks.speed_check(PhantomConfig(seed=0, resolution_scale=10.0), 1) > 0


def test_nipple_distance_is_measured_from_the_breast_tip():
    img = np.zeros((100, 120))
    img[20:80, :90] = 1.0  # left breast: chest wall at column 0, nipple at column 89
    assert checks.nipple_distance_mm(img, (40, 40, 50, 50), "L", 0.5) == 22.0
    right = img[:, ::-1]  # the same breast as a right one: nipple at column 30
    assert checks.nipple_distance_mm(right, (70, 40, 80, 50), "R", 0.5) == 22.5


def test_four_view_check_pairs_the_same_lesion_in_cc_and_mlo(tmp_path):
    from mammo_helpers.data.cohort import build_cohort

    cohort = build_cohort(
        3,
        PhantomConfig(seed=2, resolution_scale=10.0, lesion_prevalence=1.0),
        cache_dir=tmp_path,
        workers=1,
        progress=False,
    )
    table = checks.four_view_check(cohort.manifest)
    assert len(table) >= 2
    assert (table.difference_mm >= 0).all()
    assert table.difference_mm.median() < 15.0
