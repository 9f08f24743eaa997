"""ROI helpers: window counts against brute force, tiling inside a mask, extraction."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from mammo_helpers.data.phantom.validation.rois import extract_rois, tile_rois, window_counts


@settings(max_examples=40, deadline=None)
@given(
    arrays(bool, st.tuples(st.integers(1, 12), st.integers(1, 12))),
    st.integers(1, 5),
)
def test_window_counts_brute_force(mask, size):
    got = window_counts(mask, size)
    h, w = mask.shape
    assert got.shape == (max(h - size + 1, 0), max(w - size + 1, 0))
    for r in range(got.shape[0]):
        for c in range(got.shape[1]):
            assert got[r, c] == mask[r : r + size, c : c + size].sum()


def test_extract_rois_matches_slicing_and_checks_bounds():
    img = np.arange(50 * 60).reshape(50, 60)
    rois = extract_rois(img, [(10, 10), (30, 40)], 8)
    assert rois.shape == (2, 8, 8)
    assert np.array_equal(rois[1], img[26:34, 36:44])
    assert rois[0][4, 4] == img[10, 10]  # centre pixel at size // 2
    with pytest.raises(ValueError, match="ROI 1 centred at"):
        extract_rois(img, [(10, 10), (2, 40)], 8)


@settings(max_examples=30, deadline=None)
@given(arrays(bool, st.tuples(st.integers(1, 30), st.integers(1, 30))), st.integers(1, 6))
def test_tiles_are_valid_disjoint_and_as_many_as_the_best_grid_offset(valid, size):
    corners = tile_rois(valid, size, 10_000, np.random.default_rng(0))
    assert all(valid[r, c] for r, c in corners)
    for i, (r1, c1) in enumerate(corners):
        for r2, c2 in corners[i + 1 :]:
            assert abs(r1 - r2) >= size or abs(c1 - c2) >= size
    best = max(int(valid[oy::size, ox::size].sum()) for oy in range(size) for ox in range(size))
    assert len(corners) == best
    assert len(tile_rois(valid, size, 2, np.random.default_rng(0))) == min(best, 2)
