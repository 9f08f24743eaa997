"""The LIBRA-like percent-density proxy on two-phase images with a known dense fraction."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage, stats
from skimage.filters import threshold_otsu

from mammo_helpers.data.phantom.validation.percent_density import (
    otsu_split_of_clusters,
    percent_density,
)


def two_phase_image(frac: float, seed: int, n: int = 160):
    """Bright blobs (known area fraction of an elliptical breast) + soft edges + smooth
    background + noise. Returns image, breast mask, true percent density."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:n, 0:n]
    mask = ((yy - n / 2) / (0.48 * n)) ** 2 + (xx / (0.9 * n)) ** 2 <= 1
    g = ndimage.gaussian_filter(rng.standard_normal((n, n)), 4)
    dense = g > np.quantile(g[mask], 1 - frac)
    background = 0.15 * xx / n + 0.075 * np.sin(3 * yy / n + rng.uniform(0, 6))
    blobs = ndimage.gaussian_filter(dense.astype(float), 1.5)
    img = background + 0.6 * blobs + 0.3 * rng.standard_normal((n, n))
    img[~mask] = 0.0
    return img, mask, 100.0 * dense[mask].mean()


@pytest.mark.parametrize("method", ["otsu", "kmeans"])
def test_percent_density_tracks_truth(method):
    truth, est = [], []
    for i, frac in enumerate(np.linspace(0.05, 0.80, 20)):
        img, mask, pd_true = two_phase_image(frac, seed=i)
        truth.append(pd_true)
        est.append(percent_density(img, mask, method=method))
    truth, est = np.array(truth), np.array(est)
    assert np.all((est >= 0) & (est <= 100))
    assert stats.pearsonr(truth, est).statistic >= 0.95
    assert np.median(np.abs(est - truth)) < 8.0


def test_percent_density_exclude_and_edge_cases():
    rng = np.random.default_rng(0)
    img = 0.05 * rng.standard_normal((100, 120))
    img[:, :60] += 1.0  # left half dense
    mask = np.ones(img.shape, bool)
    assert percent_density(img, mask) == pytest.approx(50.0, abs=2)
    pect = np.zeros_like(mask)
    pect[:, :30] = True  # remove a quarter of the width, all dense
    assert percent_density(img, mask, exclude=pect) == pytest.approx(100 / 3, abs=2)
    assert percent_density(np.ones((20, 20)), np.ones((20, 20), bool)) == 0.0
    with pytest.raises(ValueError, match="method"):
        percent_density(img, mask, method="fcm")
    with pytest.raises(ValueError, match="no pixel"):
        percent_density(img, np.zeros_like(mask))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(0, 255), min_size=2, max_size=6, unique=True),
    st.lists(st.integers(1, 50), min_size=6, max_size=6),
)
def test_cluster_split_matches_otsu_on_quantised_values(levels, counts):
    """The split of k-means centres equals skimage's Otsu threshold of the quantised image."""
    centres = np.sort(np.array(levels, dtype=float))
    counts = np.array(counts[: len(centres)], dtype=float)
    k = otsu_split_of_clusters(centres, counts)
    values = np.repeat(centres, counts.astype(int)).astype(np.uint8)
    k_ref = int(np.sum(centres <= threshold_otsu(values)))  # integer bins: exact levels

    def between_class_variance(split):
        lab = np.repeat(np.arange(len(centres)) >= split, counts.astype(int))
        v = values.astype(float)
        return v.var() - sum(v[lab == c].var() * np.mean(lab == c) for c in (False, True))

    assert 1 <= k <= len(centres) - 1
    assert between_class_variance(k) == pytest.approx(between_class_variance(k_ref), rel=1e-9)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"smooth_sigma": float("nan")}, "smooth_sigma"),
        ({"smooth_sigma": -0.5}, "smooth_sigma"),
        ({"n_clusters": 1, "method": "kmeans"}, "n_clusters"),
        ({"percentiles": (99.0, 1.0)}, "percentiles"),
        ({"percentiles": (1.0, 120.0)}, "percentiles"),
    ],
)
def test_bad_settings_are_named(kwargs, name):
    img, mask, _ = two_phase_image(0.3, seed=0)
    with pytest.raises(ValueError, match=name):
        percent_density(img, mask, **kwargs)
