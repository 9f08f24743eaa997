"""contrast_to_noise against a hand computation."""

from __future__ import annotations

import numpy as np
import pytest

from mammo_helpers.data.phantom.validation.cnr import contrast_to_noise


def test_cnr_flat_disk_matches_hand_value():
    rng = np.random.default_rng(3)
    n, contrast, sigma, rad = 160, 5.0, 2.0, 12
    yy, xx = np.mgrid[0:n, 0:n]
    lesion = np.hypot(yy - 70, xx - 90) <= rad
    img = 100.0 + contrast * lesion + sigma * rng.standard_normal((n, n))
    res = contrast_to_noise(img, lesion)
    # hand computation: annulus between R and 2R from the centroid, R = sqrt(area / pi)
    r_eq = np.sqrt(lesion.sum() / np.pi)
    d = np.hypot(yy - 70, xx - 90)
    ann = (d >= r_eq) & (d <= 2 * r_eq) & ~lesion
    hand = (img[lesion].mean() - img[ann].mean()) / img[ann].std(ddof=1)
    assert float(res) == pytest.approx(hand, rel=1e-12)
    assert res.cnr == pytest.approx(contrast / sigma, abs=0.2)
    assert res.radius_px == pytest.approx(rad, abs=0.5)
    assert np.array_equal(res.background_mask, ann)

    breast = xx < 100  # clip the annulus
    clipped = contrast_to_noise(img, lesion, breast_mask=breast)
    assert 0 < clipped.n_background < res.n_background
    assert not np.any(clipped.background_mask & ~breast)
    with pytest.raises(ValueError, match="empty"):
        contrast_to_noise(img, np.zeros_like(lesion))
