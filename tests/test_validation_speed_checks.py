"""speed_check: images per second of rendering alone."""

import math

import pytest

from mammo_helpers.data.phantom import PhantomConfig
from mammo_helpers.data.phantom.validation import speed_check


def test_speed_is_a_positive_rate_and_a_bad_count_is_refused():
    rate = speed_check(PhantomConfig(seed=0, resolution_scale=10.0), 1)
    assert math.isfinite(rate) and rate > 0
    with pytest.raises(ValueError, match="n_images"):
        speed_check(PhantomConfig(seed=0), 0)
