"""Tests for mammo_helpers.boxes against independent references (masks, torchvision, hand cases)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from torchvision.ops import box_iou as tv_box_iou

from mammo_helpers.boxes import (
    BoxTransform,
    as_boxes,
    as_hw,
    box_area,
    box_iou,
    boxes_from_findings,
    clip_box,
    clip_boxes,
    crop_around,
    crop_boxes,
    flip_boxes,
    mask_box,
    merge_boxes,
    resize_boxes,
    with_boxes,
)
from mammo_helpers.data.manifest import make_finding
from mammo_helpers.preprocess import flip_to_laterality, resize


def bbox_of(mask):
    """Independent reference: end-exclusive box of the True pixels, from np.nonzero."""
    ys, xs = np.nonzero(mask)
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], dtype=float)


# ------------------------------------------------------------------------- conversions
def test_as_boxes_shapes_and_errors():
    assert as_boxes([1, 2, 3, 4]).shape == (1, 4)
    assert as_boxes([]).shape == (0, 4)
    with pytest.raises(ValueError, match=r"shape \(N, 4\)"):
        as_boxes([[1, 2, 3]])
    with pytest.raises(ValueError, match="non-finite"):
        as_boxes([0, 0, math.inf, 1])


def test_findings_round_trip_through_arrays():
    findings = [
        make_finding("mass", 1, 2, 5, 9, True, subtype="x"),
        make_finding("asymmetry", 0, 0, 3, 3),
    ]
    arr = boxes_from_findings(findings)
    np.testing.assert_array_equal(arr, [[1, 2, 5, 9], [0, 0, 3, 3]])
    moved = with_boxes(findings, arr[1:] + 1, kept=[1])
    assert moved == [{**findings[1], "xmin": 1.0, "ymin": 1.0, "xmax": 4.0, "ymax": 4.0}]
    assert findings[1]["xmin"] == 0.0  # the originals are not modified
    with pytest.raises(ValueError, match="kept"):
        with_boxes(findings, arr, kept=[0])


# ------------------------------------------------------------------------- mask -> box
@settings(max_examples=60, deadline=None)
@given(st.data())
def test_mask_box_matches_nonzero(data):
    h, w = data.draw(st.integers(1, 40)), data.draw(st.integers(1, 40))
    mask = np.asarray(data.draw(st.lists(st.booleans(), min_size=h * w, max_size=h * w)))
    mask = mask.reshape(h, w)
    if not mask.any():
        assert mask_box(mask) is None
    else:
        np.testing.assert_array_equal(mask_box(mask), bbox_of(mask))


def test_mask_box_single_pixel_and_errors():
    m = np.zeros((5, 6), bool)
    m[2, 3] = True
    assert mask_box(m) == (3.0, 2.0, 4.0, 3.0)
    with pytest.raises(ValueError, match="2-D"):
        mask_box(np.zeros((2, 2, 2), bool))


# ------------------------------------------------------------------------- IoU
@settings(max_examples=60, deadline=None)
@given(st.data())
def test_box_iou_matches_torchvision(data):
    def draw_boxes(n):
        out = []
        for _ in range(n):
            x0, y0 = data.draw(st.floats(0, 50)), data.draw(st.floats(0, 50))
            out.append(
                [x0, y0, x0 + data.draw(st.floats(0.1, 40)), y0 + data.draw(st.floats(0.1, 40))]
            )
        return np.array(out)

    a, b = draw_boxes(data.draw(st.integers(1, 5))), draw_boxes(data.draw(st.integers(1, 5)))
    expected = tv_box_iou(torch.from_numpy(a), torch.from_numpy(b)).numpy()
    np.testing.assert_allclose(box_iou(a, b), expected, rtol=1e-12, atol=1e-12)


def test_box_iou_hand_cases():
    # two unit squares overlapping by half: 0.5 / 1.5
    assert box_iou([0, 0, 2, 2], [1, 0, 3, 2])[0, 0] == pytest.approx(1 / 3)
    assert box_iou([0, 0, 2, 2], [0, 0, 2, 2])[0, 0] == 1.0
    assert box_iou([0, 0, 1, 1], [5, 5, 6, 6])[0, 0] == 0.0
    assert box_iou([0, 0, 0, 0], [0, 0, 0, 0])[0, 0] == 0.0  # empty boxes: 0, not NaN
    np.testing.assert_array_equal(box_area([[0, 0, 2, 3], [2, 2, 1, 1]]), [6.0, 0.0])


# ------------------------------------------------------------------------- merge
def test_merge_boxes_hand_cases():
    assert merge_boxes(np.zeros((0, 4))) is None
    assert merge_boxes([]) is None
    np.testing.assert_array_equal(merge_boxes([1, 2, 3, 4]), [1.0, 2.0, 3.0, 4.0])
    merged = merge_boxes([[10, 5, 20, 8], [2, 30, 4, 31], [15, 6, 40, 7]])
    assert merged.shape == (4,) and merged.dtype == np.float64
    np.testing.assert_array_equal(merged, [2.0, 5.0, 40.0, 31.0])
    with pytest.raises(ValueError, match=r"shape \(N, 4\)"):
        merge_boxes([[0, 0, 1]])


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_merged_box_is_the_smallest_box_holding_every_box(data):
    boxes = []
    for _ in range(data.draw(st.integers(1, 6))):
        x0, y0 = data.draw(st.floats(-100, 100)), data.draw(st.floats(-100, 100))
        boxes.append([x0, y0, x0 + data.draw(st.floats(0, 50)), y0 + data.draw(st.floats(0, 50))])
    b = np.array(boxes)
    m = merge_boxes(b)
    assert (m[:2] <= b[:, :2]).all() and (m[2:] >= b[:, 2:]).all()  # holds every box
    for side in range(4):  # smallest: every side touches some box
        assert (b[:, side] == m[side]).any()
    # the union box is the bounding box of the union of the rasterised boxes
    ints = np.floor(b - b.min()).astype(int)
    ints[:, 2:] = np.maximum(ints[:, 2:], ints[:, :2] + 1)
    canvas = np.zeros((ints[:, 3].max(), ints[:, 2].max()), bool)
    for x0, y0, x1, y1 in ints:
        canvas[y0:y1, x0:x1] = True
    np.testing.assert_array_equal(merge_boxes(ints), bbox_of(canvas))


# ------------------------------------------------------------------------- clip / crop
coord = st.floats(-500, 1500, allow_nan=False)


@settings(max_examples=60, deadline=None)
@given(coord, coord, coord, coord, st.integers(1, 1000), st.integers(1, 1000))
def test_clip_box_is_the_intersection_with_the_image(a, b, c, d, rows, cols):
    xmin, xmax, ymin, ymax = min(a, b), max(a, b), min(c, d), max(c, d)
    out = clip_box(xmin, ymin, xmax, ymax, rows, cols)
    lo_x, hi_x = max(xmin, 0), min(xmax, cols)
    lo_y, hi_y = max(ymin, 0), min(ymax, rows)
    if hi_x <= lo_x or hi_y <= lo_y:
        assert out is None
    else:
        assert out == (lo_x, lo_y, hi_x, hi_y)
        make_finding("mass", *out)  # a clipped box is always a valid finding
        clipped, kept = clip_boxes([[xmin, ymin, xmax, ymax]], (rows, cols))
        np.testing.assert_array_equal(clipped[0], out)
        assert list(kept) == [0]


def test_clip_box_rejects_bad_input():
    with pytest.raises(ValueError, match="finite"):
        clip_box(0, 0, math.nan, 1, 10, 10)
    with pytest.raises(ValueError, match="rows and cols"):
        clip_box(0, 0, 1, 1, 0, 10)


def test_crop_boxes_hand_computed():
    boxes = [
        [10, 10, 20, 20],  # inside -> shifted
        [0, 0, 8, 8],  # partly outside -> clipped
        [60, 60, 70, 70],  # outside -> dropped
        [45, 30, 60, 50],  # crosses the far corner -> clipped
        [50, 10, 60, 20],  # only touches the right edge -> no area -> dropped
    ]
    out, kept = crop_boxes(boxes, (5, 5, 50, 40))
    np.testing.assert_array_equal(kept, [0, 1, 3])
    np.testing.assert_allclose(out, [[5, 5, 15, 15], [0, 0, 3, 3], [40, 25, 45, 35]])
    out, kept = crop_boxes(np.zeros((0, 4)), (0, 0, 5, 5))
    assert out.shape == (0, 4) and kept.size == 0
    with pytest.raises(ValueError, match="empty"):
        crop_boxes(boxes, (5, 5, 5, 9))


# ------------------------------------------------------------------------- flip / resize
@settings(max_examples=60, deadline=None)
@given(st.data())
def test_flip_boxes_matches_flipped_mask(data):
    h, w = data.draw(st.integers(4, 60)), data.draw(st.integers(4, 60))
    x0 = data.draw(st.integers(0, w - 1))
    x1 = data.draw(st.integers(x0 + 1, w))
    y0 = data.draw(st.integers(0, h - 1))
    y1 = data.draw(st.integers(y0 + 1, h))
    mask = np.zeros((h, w), bool)
    mask[y0:y1, x0:x1] = True
    flipped, was = flip_to_laterality(mask, "R")
    assert was
    np.testing.assert_array_equal(flip_boxes([[x0, y0, x1, y1]], w)[0], bbox_of(flipped))
    with pytest.raises(ValueError, match="width"):
        flip_boxes([[x0, y0, x1, y1]], 0)


@settings(max_examples=80, deadline=None)
@given(st.data(), st.sampled_from(["area", "linear", "nearest"]))
def test_resize_boxes_matches_resized_mask(data, interpolation):
    fh, fw = data.draw(st.integers(16, 120)), data.draw(st.integers(16, 120))
    th, tw = data.draw(st.integers(16, 120)), data.draw(st.integers(16, 120))
    x0 = data.draw(st.integers(0, fw - 2))
    x1 = data.draw(st.integers(x0 + 1, fw))
    y0 = data.draw(st.integers(0, fh - 2))
    y1 = data.draw(st.integers(y0 + 1, fh))
    expected = resize_boxes([[x0, y0, x1, y1]], (fh, fw), (th, tw))[0]
    assume(expected[2] - expected[0] >= 3 and expected[3] - expected[1] >= 3)
    mask = np.zeros((fh, fw), np.float32)
    mask[y0:y1, x0:x1] = 1.0
    out = resize(mask, (th, tw), interpolation=interpolation)
    # pixel-centre nearest sampling puts every edge within half an output pixel
    tol = 0.5 + 1e-9 if interpolation == "nearest" else 1.5
    np.testing.assert_allclose(bbox_of(out >= 0.5), expected, atol=tol)


def test_box_transform_round_trip_and_findings():
    t = BoxTransform((100, 80), crop_box=(10, 20, 70, 90), flip=True, out_hw=(35, 30))
    boxes = np.array([[15.0, 25.0, 40.0, 60.0], [60.5, 80.0, 69.0, 89.5], [0, 0, 5, 5]])
    out, kept = t(boxes)
    np.testing.assert_array_equal(kept, [0, 1])  # the third box lies outside the crop
    # crop -> (5, 5, 30, 40) in a 60x70 (w x h) crop; flip -> (30, 5, 55, 40); scale 0.5
    np.testing.assert_allclose(out[0], [15.0, 2.5, 27.5, 20.0])
    np.testing.assert_allclose(t.inverse(out), boxes[:2])
    findings = [make_finding("mass", *b) for b in boxes]
    moved = t.findings(findings)
    assert len(moved) == 2
    np.testing.assert_allclose(boxes_from_findings(moved), out)


# ------------------------------------------------------------------------- crop around
def test_crop_around_fixed_size_is_centred_and_stays_inside():
    # a 20 mm field at 0.5 mm/px is 40 px, centred on the box centre (50, 60)
    assert crop_around([45, 55, 55, 65], (200, 300), 0.5, size_mm=20) == (30, 40, 70, 80)
    # near the top-left corner it is shifted inside, not shrunk
    assert crop_around([0, 0, 4, 4], (200, 300), 0.5, size_mm=20) == (0, 0, 40, 40)
    # near the bottom-right corner too
    assert crop_around([290, 190, 300, 200], (200, 300), 0.5, size_mm=20) == (260, 160, 300, 200)
    # larger than the image: clipped to it
    assert crop_around([10, 10, 20, 20], (30, 50), 0.5, size_mm=40) == (0, 0, 50, 30)


def test_crop_around_margin_in_mm():
    # 2 mm at 0.25 mm/px = 8 px on every side
    assert crop_around([20, 30, 40, 50], (100, 100), 0.25, margin_mm=2) == (12, 22, 48, 58)
    assert crop_around([20, 30, 40, 50], (100, 100), 0.25) == (20, 30, 40, 50)


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"spacing_mm": 0.0}, "spacing_mm"),
        ({"spacing_mm": math.nan}, "spacing_mm"),
        ({"spacing_mm": 0.5, "size_mm": -1}, "size_mm"),
        ({"spacing_mm": 0.5, "size_mm": 0.0}, "size_mm"),
        ({"spacing_mm": 0.5, "margin_mm": math.inf}, "margin_mm"),
    ],
)
def test_crop_around_rejects_bad_sizes(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        crop_around([0, 0, 5, 5], (50, 50), **kwargs)


# ----------------------------------------------------------- errors name their argument
@pytest.mark.parametrize(
    ("call", "pattern"),
    [
        (lambda: as_hw((5, 0), "image_hw"), r"image_hw .*\(5, 0\)"),
        (lambda: as_hw((0, 5), "image_hw"), "image_hw"),
        (lambda: as_hw("ab", "size_hw"), r"size_hw must be \(height, width\)"),
        (lambda: clip_boxes([[0, 0, 1, 1]], (0, 4)), "image_hw"),
        (lambda: resize_boxes([[0, 0, 1, 1]], (0, 4), (4, 4)), "from_hw"),
        (lambda: resize_boxes([[0, 0, 1, 1]], (4, 4), (4, 0)), "to_hw"),
        (lambda: box_iou([[0, 0, 1]], [[0, 0, 1, 1]]), r"^a\b"),
        (lambda: box_iou([[0, 0, 1, 1]], [[0, 0, 1]]), r"^b\b"),
        (
            lambda: boxes_from_findings([{"xmin": 0, "ymin": 0, "xmax": 1, "ymax": math.nan}]),
            "findings",
        ),
    ],
)
def test_errors_name_the_argument(call, pattern):
    with pytest.raises(ValueError, match=pattern):
        call()


def test_boxes_are_float64_even_from_ints_or_empty():
    assert as_boxes([[1, 2, 3, 4]]).dtype == np.float64
    assert as_boxes([]).dtype == np.float64 and as_boxes([]).shape == (0, 4)


def test_iou_of_empty_boxes_is_zero_without_warnings():
    with np.errstate(all="raise"):
        iou = box_iou([[2, 2, 2, 2], [0, 0, 4, 4]], [[2, 2, 2, 2]])
    assert iou.tolist() == [[0.0], [0.0]]


def test_crop_around_a_point_is_at_least_one_pixel():
    assert crop_around([5, 5, 5, 5], (20, 20), 0.5) == (5, 5, 6, 6)


def test_small_hand_cases_at_the_edges():
    assert box_area([[4, 4, 2, 6], [0, 0, 3, 2]]).tolist() == [0.0, 6.0]  # inverted -> 0
    assert box_area([[4, 4, 6, 2]]).tolist() == [0.0]
    assert flip_boxes([[0, 0, 1, 1]], 1).tolist() == [[0.0, 0.0, 1.0, 1.0]]
    # a 1 px side around x = 5: start 4.5, rounded half to even -> 4
    assert crop_around([5, 5, 5, 5], (20, 20), 0.5, size_mm=0.5) == (4, 4, 5, 5)
    moved = with_boxes(
        [{"label": "mass", "xmin": 0, "ymin": 0, "xmax": 1, "ymax": 1}], [[2, 3, 4, 5]]
    )
    assert moved == [{"label": "mass", "xmin": 2.0, "ymin": 3.0, "xmax": 4.0, "ymax": 5.0}]
    with pytest.raises(ValueError, match="image_hw"):
        crop_around([0, 0, 1, 1], (0, 5), 0.5)
