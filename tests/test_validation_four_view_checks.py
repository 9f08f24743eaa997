"""four_view_check: nipple distances of the same lesion in CC and MLO."""

import numpy as np
import pandas as pd

from mammo_helpers.data.phantom import PhantomConfig
from mammo_helpers.data.phantom.validation import four_view_check, nipple_distance_mm


def test_nipple_distance_is_measured_from_the_breast_tip():
    img = np.zeros((100, 120))
    img[20:80, :90] = 1.0  # left breast: chest wall at column 0, nipple at column 89
    assert nipple_distance_mm(img, (40, 40, 50, 50), "L", 0.5) == 22.0
    right = img[:, ::-1]  # the same breast as a right one: nipple at column 30
    assert nipple_distance_mm(right, (70, 40, 80, 50), "R", 0.5) == 22.5


def test_four_view_check_pairs_the_same_lesion_in_cc_and_mlo(tmp_path):
    from mammo_helpers.data.cohort import build_cohort

    cohort = build_cohort(
        3,
        PhantomConfig(seed=2, resolution_scale=10.0, lesion_prevalence=1.0),
        cache_dir=tmp_path,
        workers=1,
        progress=False,
    )
    res = four_view_check(cohort.manifest)
    table = res.table
    assert len(table) >= 2 and table.lesion_id.notna().all()
    assert (table.difference_mm == (table.CC - table.MLO).abs()).all()
    assert res.within_10mm == (table.difference_mm <= 10).mean()
    assert res.median_difference_mm == table.difference_mm.median() < 15.0


def test_a_manifest_without_lesions_gives_an_empty_table():
    empty = pd.DataFrame({"findings": [[], []], "path": ["a", "b"]})
    res = four_view_check(empty)
    assert res.table.empty and np.isnan(res.within_10mm) and np.isnan(res.median_difference_mm)
