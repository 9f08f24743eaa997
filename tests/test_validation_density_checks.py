"""density_check: the physics estimate follows the generator's truth."""

import pytest

from mammo_helpers.data.phantom import PhantomConfig
from mammo_helpers.data.phantom.validation import density_check


def test_the_physics_estimate_follows_the_truth_and_the_table_is_complete():
    res = density_check(PhantomConfig(seed=0, resolution_scale=6.0), 5)
    table = res.table
    assert len(table) == 10 and set(table.view) == {"CC", "MLO"}
    assert table[["pd_true", "pd_est", "pd_kmeans"]].apply(lambda c: c.between(0, 100)).all().all()
    assert res.pearson_r > 0.7 and res.spearman_r > 0.6  # even on 10 images
    assert -1 <= res.pearson_r_kmeans <= 1


def test_a_bad_patient_count_is_named():
    with pytest.raises(ValueError, match="n_patients"):
        density_check(PhantomConfig(), 1)
