"""beta_check on the phantom: DM texture in the published range."""

import pytest

from mammo_helpers.data.phantom import PhantomConfig
from mammo_helpers.data.phantom.validation import beta_check


def test_dm_beta_is_in_the_published_range_within_its_standard_error():
    res = beta_check(PhantomConfig(seed=0, spacing_mm=0.4), 4, "DM")
    assert res.n_rois >= 8 and len(res.n_rois_per_image) == 4
    # Burgess et al. 2001 (about 2.8), Chen et al. 2012 (3.17 CC, 3.30 MLO)
    assert 2.8 - 3 * res.beta_se < res.beta < 3.3 + 3 * res.beta_se, (res.beta, res.beta_se)


def test_beta_check_names_a_bad_modality():
    with pytest.raises(ValueError, match="modality"):
        beta_check(PhantomConfig(seed=0, spacing_mm=0.4), 1, "CT")
    with pytest.raises(ValueError, match="n_images"):
        beta_check(PhantomConfig(seed=0, spacing_mm=0.4), 0)
