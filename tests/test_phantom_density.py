"""True area percent density and the reader's BI-RADS call from it."""

import numpy as np
import pytest

from mammo_helpers.data.phantom.calibration import DENSE_FRACTION_THRESHOLD
from mammo_helpers.data.phantom.density import density_from_pd, percent_density_true


def test_the_published_median_of_each_reader_category_is_read_as_that_category():
    # Nicholson et al. Acad Radiol 2006: median area PD of 200 exams by reader category
    medians = {"A": 6.0, "B": 14.8, "C": 51.2, "D": 78.4}
    assert {cls: density_from_pd(pd) for cls, pd in medians.items()} == {c: c for c in medians}


def test_the_reader_category_rises_with_percent_density():
    calls = [density_from_pd(pd) for pd in np.linspace(0, 100, 201)]
    assert calls == sorted(calls) and set(calls) == set("ABCD")
    with pytest.raises(ValueError, match="finite"):
        density_from_pd(float("nan"))


def test_true_percent_density_counts_dense_pixels_of_the_breast_without_muscle():
    frac = np.array([[0.9, 0.9, 0.1, 0.1], [0.9, 0.1, 0.1, 0.0]])
    breast = np.array([[1, 1, 1, 1], [1, 1, 1, 0]], bool)
    pectoral = np.array([[1, 0, 0, 0], [0, 0, 0, 0]], bool)
    # region: 6 pixels (breast minus the muscle pixel); dense: (0,1) and (1,0)
    assert percent_density_true(frac, breast, pectoral) == pytest.approx(100 * 2 / 6)
    edge = np.full((2, 4), DENSE_FRACTION_THRESHOLD)
    assert percent_density_true(edge, breast, pectoral) == 0.0  # "exceeds" the threshold
    assert percent_density_true(frac, np.zeros_like(breast), pectoral) == 0.0
