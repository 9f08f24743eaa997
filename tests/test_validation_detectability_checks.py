"""Detectability checks: the observer's ROIs and density groups, CNR by density."""

import numpy as np
import pytest

from mammo_helpers.data.phantom import PhantomConfig
from mammo_helpers.data.phantom.validation import (
    contrast_check,
    observer_check,
)

CFG = PhantomConfig(seed=0, spacing_mm=0.4)


@pytest.fixture(scope="module")
def observed():
    return observer_check(CFG, n_per_class=16, diameter_mm=(12.0, 15.0), roi_mm=24.0, n_bootstrap=0)


def test_observer_sees_large_masses_in_rois_inside_the_breast(observed):
    rois = observed.rois
    assert len(rois) == 32 and rois.present.sum() == 16
    assert observed.result.n_signal == 16 and observed.result.n_background == 16
    assert observed.result.auc > 0.75  # 12-15 mm masses are clearly visible to the observer
    assert observed.skipped > 0  # some lesion sites cross the skin line or the muscle


def test_each_density_group_is_scored_on_its_own_breasts(observed):
    rois = observed.rois
    assert set(observed.by_density) == {"fatty", "dense"}
    fatty = rois.density.isin(["A", "B"])
    # the groups differ in size here, so a swap of the groups would show in the counts
    assert (fatty & rois.present).sum() != (~fatty & rois.present).sum()
    for name, result in observed.by_density.items():
        mine = fatty if name == "fatty" else ~fatty
        assert result.n_signal == (mine & rois.present).sum(), name
        assert result.n_background == (mine & ~rois.present).sum(), name


def test_observer_refuses_rois_that_never_fit_and_mixed_spacings():
    with pytest.raises(ValueError, match="roi_mm"):
        observer_check(CFG, n_per_class=2, roi_mm=400.0, n_bootstrap=0)
    with pytest.raises(ValueError, match="roi_mm"):
        observer_check(CFG, n_per_class=2, roi_mm=float("nan"), n_bootstrap=0)
    with pytest.raises(ValueError, match="spacing_mm"):
        observer_check(PhantomConfig(seed=0), n_per_class=2)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"n_per_class": 3}, "n_per_class"),
        ({"per_image": 0}, "per_image"),
        ({"diameter_mm": (9.0, 5.0)}, "diameter_mm"),
        ({"diameter_mm": (float("nan"), 5.0)}, "diameter_mm"),
    ],
)
def test_bad_check_settings_are_named_before_anything_is_drawn(kwargs, name):
    with pytest.raises(ValueError, match=name):
        observer_check(CFG, **kwargs)
    if kwargs.get("n_per_class") != 3:  # 3 patients per class suffice for the CNR check
        with pytest.raises(ValueError, match=name):
            contrast_check(CFG, **kwargs)


def test_contrast_check_measures_masses_in_every_density_class():
    res = contrast_check(CFG, n_per_class=1, diameter_mm=(8.0, 10.0))
    assert set(res.table.density) == set("ABCD")
    assert list(res.median_cnr.index) == list("ABCD")
    assert (res.table.background_std > 0).all()
    assert res.table.contrast.median() > 0  # a mass attenuates more than what it replaces
    assert res.monotone == bool(np.all(np.diff(res.median_cnr.to_numpy()) < 0))
