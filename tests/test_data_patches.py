"""mammo_helpers.data.patches: paper 04's pre-training patches (chapter 04)."""

from __future__ import annotations

import numpy as np
import pytest

from mammo_helpers.data import patches


def _overlap_share(box, patch):
    bx0, by0, bx1, by1 = box
    x0, y0, x1, y1 = patch
    inter = max(0, min(bx1, x1) - max(bx0, x0)) * max(0, min(by1, y1) - max(by0, y0))
    return inter / min((bx1 - bx0) * (by1 - by0), (x1 - x0) * (y1 - y0))


@pytest.mark.parametrize(
    "box", [(40, 50, 52, 60), (30, 30, 110, 100), (0, 0, 10, 8), (110, 118, 120, 128)]
)
def test_lesion_patches_hold_over_90_percent_of_the_lesion_and_stay_inside(box):
    rng = np.random.default_rng(0)
    out = patches.lesion_patch_boxes(box, (128, 120), 32, 5, rng)
    assert len(out) == 5  # a corner lesion allows few placements, and 1,000 tries find them
    for p in out:
        x0, y0, x1, y1 = p
        assert x1 - x0 == 32 and y1 - y0 == 32 and x0 >= 0 and y0 >= 0
        assert x1 <= 120 and y1 <= 128
        assert _overlap_share(box, p) > 0.9
    corner = box[0] == 0 or box[2] == 120  # the border leaves one placement
    assert (len(set(out)) == 1) == corner  # elsewhere placed at random, not on the centre


def test_lesion_patches_vary_with_the_generator_and_repeat_with_the_seed():
    a = patches.lesion_patch_boxes((40, 40, 50, 50), (128, 128), 32, 5, np.random.default_rng(1))
    b = patches.lesion_patch_boxes((40, 40, 50, 50), (128, 128), 32, 5, np.random.default_rng(1))
    c = patches.lesion_patch_boxes((40, 40, 50, 50), (128, 128), 32, 5, np.random.default_rng(2))
    assert a == b and a != c


def test_normal_patches_lie_over_90_percent_in_the_breast():
    breast = np.zeros((100, 80), bool)
    breast[20:90, :50] = True
    out = patches.normal_patch_boxes(breast, 24, 5, np.random.default_rng(0))
    assert len(out) == 5
    for x0, y0, x1, y1 in out:
        assert breast[y0:y1, x0:x1].mean() > 0.9
    assert (
        patches.normal_patch_boxes(np.zeros((100, 80), bool), 24, 5, np.random.default_rng(0)) == []
    )


def test_cut_and_bad_arguments():
    img = np.arange(100.0).reshape(10, 10)
    got = patches.cut(img, [(1, 2, 4, 5)])
    np.testing.assert_array_equal(got[0], img[2:5, 1:4])
    with pytest.raises(ValueError, match="size must be a positive integer"):
        patches.lesion_patch_boxes((1, 1, 2, 2), (10, 10), 0, 1, np.random.default_rng(0))
    with pytest.raises(ValueError, match="does not fit"):
        patches.normal_patch_boxes(np.ones((10, 10), bool), 11, 1, np.random.default_rng(0))
    with pytest.raises(ValueError, match="min_overlap"):
        patches.lesion_patch_boxes(
            (1, 1, 2, 2), (10, 10), 4, 1, np.random.default_rng(0), min_overlap=1.5
        )


def test_training_patches_labels_counts_and_positions():
    rng = np.random.default_rng(0)
    images = rng.normal(size=(3, 64, 48)).astype(np.float32)
    breasts = np.zeros((3, 64, 48), bool)
    breasts[:, :, :40] = True
    boxes = [np.array([[10.0, 10.0, 18.0, 18.0], [30.0, 40.0, 36.0, 46.0]]), [], np.zeros((0, 4))]
    x, y = patches.training_patches(images, breasts, boxes, 16, n=3, seed=4)
    assert x.shape == (12, 1, 16, 16) and x.dtype == np.float32
    assert y.tolist() == [1] * 6 + [0] * 6  # image 0's two lesions, then images 1 and 2
    # every patch is a window of its image; lesion patches cover > 90 % of their box
    again, _ = patches.training_patches(images, breasts, boxes, 16, n=3, seed=4)
    np.testing.assert_array_equal(x, again)
    other, _ = patches.training_patches(images, breasts, boxes, 16, n=3, seed=5)
    assert not np.array_equal(x, other)
    only_second, y2 = patches.training_patches(images, breasts, boxes, 16, index=[1], n=2, seed=0)
    assert y2.tolist() == [0, 0]
    windows = np.lib.stride_tricks.sliding_window_view(images[1], (16, 16))
    for patch in only_second[:, 0]:
        hits = np.argwhere((windows == patch).all(axis=(2, 3)))
        assert len(hits) == 1
        top, left = hits[0]
        assert breasts[1, top : top + 16, left : left + 16].mean() > 0.9


def test_training_patches_without_any_fit_is_an_error():
    images = np.zeros((1, 8, 8), np.float32)
    with pytest.raises(ValueError, match="does not fit"):
        patches.training_patches(images, np.ones((1, 8, 8), bool), [[]], 16)
    with pytest.raises(ValueError, match="no patch of 4 px"):
        patches.training_patches(images, np.zeros((1, 8, 8), bool), [[]], 4)


def test_training_patches_carry_each_boxs_class():
    rng = np.random.default_rng(1)
    images = rng.normal(size=(2, 64, 64)).astype(np.float32)
    breasts = np.ones((2, 64, 64), bool)
    boxes = [np.array([[10.0, 10.0, 18.0, 18.0], [40.0, 40.0, 48.0, 48.0]]), []]
    _, y = patches.training_patches(images, breasts, boxes, 16, labels=[[4, 2], []], n=2)
    assert y.tolist() == [4, 4, 2, 2, 0, 0]
    x3, y3, src = patches.training_patches(
        images, breasts, boxes, 16, labels=[[4, 2], []], n=2, index=[1, 0], return_index=True
    )
    assert src.tolist() == [1, 1, 0, 0, 0, 0] and y3.tolist() == [0, 0, 4, 4, 2, 2]
    for patch, i in zip(x3[:, 0], src, strict=True):  # each patch is a window of its image
        windows = np.lib.stride_tricks.sliding_window_view(images[i], (16, 16))
        assert (windows == patch).all(axis=(2, 3)).any()
    with pytest.raises(ValueError, match="image 0 needs one label >= 1 per box"):
        patches.training_patches(images, breasts, boxes, 16, labels=[[4], []])
    with pytest.raises(ValueError, match="image 0 needs one label >= 1 per box"):
        patches.training_patches(images, breasts, boxes, 16, labels=[[0, 1], []])
