"""mammo_helpers.xai.map_boxes: each step of paper 03's map -> box procedure against an
independent reference (scipy.ndimage morphology, scikit-image's connected components,
torchvision's IoU, direct counts) and the whole chain on hand-built maps."""

import math

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy import ndimage
from skimage.measure import label, regionprops
from torchvision.ops import box_iou as tv_box_iou

import mammo_helpers as mh

mb = mh.xai.map_boxes


def _blob(hw, centre, sigma):
    """A Gaussian bump centred at (row, col)."""
    rows, cols = np.mgrid[: hw[0], : hw[1]]
    return np.exp(-((rows - centre[0]) ** 2 + (cols - centre[1]) ** 2) / (2 * sigma**2))


def _region_boxes(binary, fill_holes=False):
    """Reference: bboxes of the 8-connected components, as (xmin, ymin, xmax, ymax)."""
    if fill_holes:  # background is 4-connected when the foreground is 8-connected
        binary = ndimage.binary_fill_holes(binary)
    props = regionprops(label(binary, connectivity=2))
    boxes = np.array([[p.bbox[1], p.bbox[0], p.bbox[3], p.bbox[2]] for p in props], float)
    boxes = boxes.reshape(-1, 4)
    return boxes[np.lexsort((boxes[:, 2], boxes[:, 3], boxes[:, 0], boxes[:, 1]))]


# ------------------------------------------------------------------ dilation
@settings(max_examples=30, deadline=None)
@given(st.data())
def test_dilate_map_is_a_maximum_filter(data):
    h, w = data.draw(st.integers(1, 30)), data.draw(st.integers(1, 30))
    k = data.draw(st.sampled_from([1, 3, 5, 9]))
    seed = data.draw(st.integers(0, 2**16))
    m = np.random.default_rng(seed).normal(size=(h, w)).astype(np.float32)
    expected = ndimage.maximum_filter(m, size=k, mode="nearest")
    np.testing.assert_array_equal(mb.dilate_map(m, k), expected)


def test_dilate_map_hand_case_and_errors():
    m = np.zeros((12, 12))
    m[5, 6] = 2.0
    out = mb.dilate_map(m)  # 9 x 9: rows 1..9, columns 2..10
    assert out.dtype == np.float64
    expected = np.zeros((12, 12))
    expected[1:10, 2:11] = 2.0
    np.testing.assert_array_equal(out, expected)
    for bad in (4, 0, -3, 2.0, True):
        with pytest.raises(ValueError, match=rf"kernel must be an odd positive integer, got {bad}"):
            mb.dilate_map(m, bad)
    with pytest.raises(ValueError, match="map2d holds 1 non-finite"):
        mb.dilate_map(np.where(m > 0, np.nan, m))


@pytest.mark.parametrize(
    ("kernel", "height", "expected"),
    [(9, 1024, 9), (9, 512, 5), (9, 256, 3), (9, 2048, 19), (9, 100, 1), (9, 455.1, 3), (9, 455.2, 5), (1, 2048, 3),
     (9, 341.33, 3), (3, 1024, 3), (1, 4096, 5)],
)  # fmt: skip
def test_scaled_kernel(kernel, height, expected):
    assert mb.scaled_kernel(kernel, height) == expected
    assert mb.scaled_kernel(kernel, height) % 2 == 1


def test_scaled_kernel_is_the_nearest_odd_size():
    for height in np.linspace(10, 3000, 400):
        target = 9 * height / 1024
        got = mb.scaled_kernel(9, height)
        odd = np.arange(1, 41, 2)
        best = np.min(np.abs(odd - target))
        assert got == 1 or abs(got - target) == pytest.approx(best)
    with pytest.raises(ValueError, match="height must be a finite number > 0"):
        mb.scaled_kernel(9, 0)
    with pytest.raises(ValueError, match="reference must be"):
        mb.scaled_kernel(9, 512, reference=math.nan)


# --------------------------------------------------------------- binarisation
def test_binarise_strictly_above_the_quantile():
    m = np.arange(20.0).reshape(4, 5)
    b = mb.binarise(m, 0.75)  # np.quantile(0..19, 0.75) = 14.25
    np.testing.assert_array_equal(b, m > 14.25)
    assert b.sum() == 5
    # the quantile over the mask only; pixels outside the mask are False
    mask = np.zeros((4, 5), bool)
    mask[:2] = True  # values 0..9, quantile 0.5 = 4.5
    b = mb.binarise(m, 0.5, mask)
    np.testing.assert_array_equal(np.flatnonzero(b), [5, 6, 7, 8, 9])


def test_binarise_ties_keep_fewer_pixels():
    assert not mb.binarise(np.full((6, 7), 3.0), 0.5).any()  # constant: empty
    sparse = np.zeros((10, 10))
    sparse[0, :3] = [1.0, 2.0, 3.0]  # 97 zeros: the 0.9 quantile is 0
    b = mb.binarise(sparse, 0.9)
    assert b.sum() == 3 < 10  # fewer than 1 - q of the pixels
    top = np.ones((10, 10))
    top[0, 0] = 0.0  # the maximum fills 99 % of the map
    assert not mb.binarise(top, 0.5).any()


@pytest.mark.parametrize("q", [0, 1, -0.1, 1.5, math.nan, "0.5", True])
def test_binarise_refuses_bad_quantiles(q):
    with pytest.raises(ValueError, match=rf"quantile must be in \(0, 1\).*got {q!r}"):
        mb.binarise(np.zeros((3, 3)), q)


def test_binarise_refuses_bad_masks():
    with pytest.raises(ValueError, match="mask is empty"):
        mb.binarise(np.zeros((3, 3)), 0.5, np.zeros((3, 3), bool))
    with pytest.raises(ValueError, match=r"mask has shape \(3, 2\), map2d \(3, 3\)"):
        mb.binarise(np.zeros((3, 3)), 0.5, np.ones((3, 2), bool))


# ---------------------------------------------------------------- opening
@settings(max_examples=40, deadline=None)
@given(st.data())
def test_open_binary_matches_scipy(data):
    h, w = data.draw(st.integers(1, 25)), data.draw(st.integers(1, 25))
    e, d = data.draw(st.sampled_from([1, 3, 5])), data.draw(st.sampled_from([1, 3, 5, 7]))
    seed = data.draw(st.integers(0, 2**16))
    binary = np.random.default_rng(seed).random((h, w)) < data.draw(st.floats(0.1, 0.9))
    # outside the image is foreground for the erosion, background for the dilation
    eroded = ndimage.binary_erosion(binary, np.ones((e, e)), border_value=1)
    expected = ndimage.binary_dilation(eroded, np.ones((d, d)))
    got = mb.open_binary(binary, e, d)
    assert got.dtype == bool
    np.testing.assert_array_equal(got, expected)


def test_open_binary_removes_small_regions_and_checks_kernels():
    b = np.zeros((20, 20), bool)
    b[2:10, 2:10] = True  # 8 x 8 square: survives a 5 x 5 opening unchanged
    b[15, 15] = True  # single pixel: removed
    b[12:14, 2:18] = True  # 2 px thin bar: removed
    out = mb.open_binary(b, 5, 5)
    expected = np.zeros((20, 20), bool)
    expected[2:10, 2:10] = True
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(mb.open_binary(b, 1, 1), b)  # 1 = no-op
    for name, args in {"erode": (4, 3), "dilate": (3, 0)}.items():
        bad = args[0] if name == "erode" else args[1]
        with pytest.raises(ValueError, match=rf"{name} must be an odd positive integer, got {bad}"):
            mb.open_binary(b, *args)
    with pytest.raises(ValueError, match="only 0/1"):
        mb.open_binary(np.full((3, 3), 0.5), 3, 3)
    with pytest.raises(ValueError, match="2-D"):
        mb.open_binary(np.zeros((2, 2, 2), bool), 3, 3)


# ---------------------------------------------------------------- contours
def _shapes(data, hw):
    """A binary of disjoint filled rectangles and ellipses, with at least a 1 px gap."""
    canvas = np.zeros(hw, bool)
    rows, cols = np.mgrid[: hw[0], : hw[1]]
    for _ in range(data.draw(st.integers(0, 6))):
        r0, c0 = data.draw(st.integers(0, hw[0] - 1)), data.draw(st.integers(0, hw[1] - 1))
        hr, hc = data.draw(st.integers(0, 8)), data.draw(st.integers(0, 8))
        if data.draw(st.booleans()):
            shape = (abs(rows - r0) <= hr) & (abs(cols - c0) <= hc)
        else:
            shape = ((rows - r0) / (hr + 0.5)) ** 2 + ((cols - c0) / (hc + 0.5)) ** 2 <= 1
        if not (ndimage.binary_dilation(shape, np.ones((3, 3))) & canvas).any():
            canvas |= shape
    return canvas


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_contour_boxes_are_the_regionprops_boxes(data):
    hw = (data.draw(st.integers(1, 40)), data.draw(st.integers(1, 40)))
    binary = _shapes(data, hw)
    assume((ndimage.binary_fill_holes(binary) == binary).all())
    np.testing.assert_array_equal(mb.contour_boxes(binary), _region_boxes(binary))


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_contour_boxes_on_random_binaries_are_the_filled_regions(data):
    """Any binary, holes and regions inside holes included: the external contours are
    those of the 8-connected regions once every hole is filled."""
    h, w = data.draw(st.integers(1, 25)), data.draw(st.integers(1, 25))
    seed = data.draw(st.integers(0, 2**16))
    binary = np.random.default_rng(seed).random((h, w)) < data.draw(st.floats(0.05, 0.8))
    expected = _region_boxes(binary, fill_holes=True)
    np.testing.assert_array_equal(mb.contour_boxes(binary), expected)


def test_contour_boxes_hand_cases():
    b = np.zeros((12, 14), bool)
    b[1:9, 1:9] = True
    b[3:7, 3:7] = False  # a ring: columns/rows 1..8
    b[5, 5] = True  # a dot inside the ring's hole: no external contour of its own
    b[10, 10:14] = True  # a bar touching the image's right edge
    b[0, 11] = True  # a single pixel on the top edge
    np.testing.assert_array_equal(
        mb.contour_boxes(b), [[11, 0, 12, 1], [1, 1, 9, 9], [10, 10, 14, 11]]
    )
    assert len(_region_boxes(b)) == 4  # the dot is a region of its own for regionprops
    diagonal = np.eye(4, dtype=bool)  # 8-connected: one region
    np.testing.assert_array_equal(mb.contour_boxes(diagonal), [[0, 0, 4, 4]])
    empty = mb.contour_boxes(np.zeros((5, 5), bool))
    assert empty.shape == (0, 4) and empty.dtype == np.float64
    np.testing.assert_array_equal(mb.contour_boxes(np.ones((3, 5), bool)), [[0, 0, 5, 3]])


# ------------------------------------------------------------------- the chain
def test_one_blob_gives_a_box_on_it():
    hw, truth = (100, 120), [40, 30, 70, 60]  # x 40..70, y 30..60: centre (row 45, col 55)
    m = _blob(hw, (45, 55), 8)
    out = mb.map_box(m, quantile=0.9, erode=3, dilate=3)
    assert isinstance(out, mb.MapBox)
    assert out.binary.sum() <= 0.1 * m.size and out.boxes.shape == (1, 4)
    np.testing.assert_array_equal(out.box, out.boxes[0])
    np.testing.assert_array_equal(out.box, mh.boxes.mask_box(out.opened))
    iou = mb.best_iou(out.box, [truth])
    assert iou > 0.5
    assert iou == pytest.approx(mh.boxes.box_iou(out.box, truth)[0, 0])
    # the box is symmetric about the blob's centre pixel
    x0, y0, x1, y1 = out.box
    assert (x0 + x1) / 2 == 55.5 and (y0 + y1) / 2 == 45.5


def test_two_blobs_give_one_merged_box():
    """Two unit peaks on a zero map, dilated 5 x 5 and kept above the 0.9 quantile: two
    5 x 5 squares, which a 3 x 3 opening keeps; the merged box spans both."""
    m = np.zeros((40, 60))
    m[10, 12] = 1.0  # square rows 8..12, columns 10..14
    m[30, 45] = 1.0  # square rows 28..32, columns 43..47
    dilated = mb.dilate_map(m, 5)
    out = mb.map_box(dilated, quantile=0.9, erode=3, dilate=3)
    np.testing.assert_array_equal(out.boxes, [[10, 8, 15, 13], [43, 28, 48, 33]])
    np.testing.assert_array_equal(out.box, [10, 8, 48, 33])
    truths = [[40, 25, 50, 35], [0, 0, 60, 40]]
    assert mb.best_iou(out.box, truths) == pytest.approx(38 * 25 / (60 * 40))
    # a mask leaving out the second peak: one square
    mask = np.zeros((40, 60), bool)
    mask[:, :30] = True
    out = mb.map_box(dilated, quantile=0.9, erode=3, dilate=3, mask=mask)
    np.testing.assert_array_equal(out.box, [10, 8, 15, 13])


def test_no_region_left_means_no_box_and_iou_zero():
    m = np.zeros((30, 30))
    m[10, 10] = 1.0  # one pixel above the quantile: removed by the opening
    out = mb.map_box(m, quantile=0.5, erode=3, dilate=3)
    assert out.binary.sum() == 1 and not out.opened.any()
    assert out.boxes.shape == (0, 4) and out.box is None
    assert mb.best_iou(out.box, [[0, 0, 5, 5]]) == 0.0


# -------------------------------------------------------------------- scores
def _boxes(data, n):
    out = []
    for _ in range(n):
        x0, y0 = data.draw(st.floats(0, 100)), data.draw(st.floats(0, 100))
        out.append([x0, y0, x0 + data.draw(st.floats(0.5, 60)), y0 + data.draw(st.floats(0.5, 60))])
    return np.array(out)


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_best_iou_is_torchvisions_maximum(data):
    box = _boxes(data, 1)
    truths = _boxes(data, data.draw(st.integers(1, 5)))
    expected = tv_box_iou(torch.from_numpy(box), torch.from_numpy(truths)).max().item()
    assert mb.best_iou(box[0], truths) == pytest.approx(expected, abs=1e-12)
    assert 0.0 <= mb.best_iou(box[0], truths) <= 1.0


def test_best_iou_refuses_bad_truth_boxes():
    with pytest.raises(ValueError, match="truth_boxes is empty"):
        mb.best_iou([0, 0, 1, 1], np.zeros((0, 4)))
    with pytest.raises(ValueError, match="truth_boxes is empty"):
        mb.best_iou(None, [])
    with pytest.raises(ValueError, match=r"truth box \[5.0, 0.0, 5.0, 3.0\] needs xmin < xmax"):
        mb.best_iou([0, 0, 1, 1], [[0, 0, 2, 2], [5, 0, 5, 3]])
    with pytest.raises(ValueError, match=r"truth box \[0.0, 4.0, 2.0, 1.0\]"):
        mb.best_iou(None, [[0, 4, 2, 1]])
    with pytest.raises(ValueError, match="box must be one box"):
        mb.best_iou([[0, 0, 1, 1], [0, 0, 2, 2]], [[0, 0, 1, 1]])


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(0, 1), min_size=1, max_size=30),
    st.lists(st.floats(-0.5, 1.5), min_size=1, max_size=8),
)
def test_tpr_at_iou_counts(ious, thresholds):
    got = mb.tpr_at_iou(ious, thresholds)
    expected = [sum(1 for v in ious if v >= t) / len(ious) for t in thresholds]
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-15)


def test_tpr_at_iou_hand_case_and_errors():
    np.testing.assert_array_equal(
        mb.tpr_at_iou([0.0, 0.3, 0.5, 0.7], [0.1, 0.5, 0.9]), [0.75, 0.5, 0.0]
    )
    assert mb.tpr_at_iou([0.5], 0.5).tolist() == [1.0]
    with pytest.raises(ValueError, match="ious is empty"):
        mb.tpr_at_iou([], [0.5])
    with pytest.raises(ValueError, match="non-finite"):
        mb.tpr_at_iou([math.nan], [0.5])


# ------------------------------------------------------------------- the sweep
def _validation_set():
    """Three images, one blob each at a known box; the third blob is faint and small."""
    hw = (60, 80)
    specs = [((20, 30), 5, [22, 12, 38, 28]), ((40, 55), 6, [46, 31, 64, 49]),
             ((30, 20), 2, [16, 26, 24, 34])]  # fmt: skip
    maps = [_blob(hw, c, s) for c, s, _ in specs]
    truths = [[t] for _, _, t in specs]
    return maps, truths


def test_sweep_matches_map_ious_and_counts_missing_boxes():
    maps, truths = _validation_set()
    df = mb.sweep(maps, truths, [0.9, 0.99], [1, 9], [1, 3])
    assert df.columns.tolist() == list(mb.SWEEP_COLUMNS)
    assert len(df) == 8
    assert df[["quantile", "erode", "dilate"]].values.tolist()[:3] == [
        [0.9, 1, 1], [0.9, 1, 3], [0.9, 9, 1]
    ]  # fmt: skip
    for row in df.itertuples():
        ious, no_box = mb.map_ious(
            maps, truths, quantile=row.quantile, erode=row.erode, dilate=row.dilate
        )
        assert row.median_iou == pytest.approx(np.median(ious))
        assert row.mean_iou == pytest.approx(ious.mean())
        assert row.no_box_share == pytest.approx(no_box.mean())
    # the 0.99 quantile keeps a disc of ~48 px (about 8 px across) per map: a 9 x 9
    # erosion leaves no box at all, and no IoU
    none = df.query("quantile == 0.99 and erode == 9")
    assert (none["no_box_share"] == 1).all() and (none["median_iou"] == 0).all()
    assert (df.query("erode == 1")["no_box_share"] == 0).all()


def test_best_setting_order_and_ties():
    import pandas as pd

    df = pd.DataFrame(
        [
            [0.9, 3, 3, 0.5, 0.40, 0.0],
            [0.8, 3, 3, 0.6, 0.45, 0.0],
            [0.7, 5, 3, 0.6, 0.50, 0.0],  # same median, larger mean: chosen
            [0.6, 5, 5, 0.6, 0.50, 0.1],  # full tie with the row above: the earlier row
        ],
        columns=mb.SWEEP_COLUMNS,
    )
    best = mb.best_setting(df)
    assert best == {
        "quantile": 0.7, "erode": 5, "dilate": 3, "median_iou": 0.6, "mean_iou": 0.5,
        "no_box_share": 0.0,
    }  # fmt: skip
    assert isinstance(best["erode"], int) and isinstance(best["quantile"], float)
    with pytest.raises(ValueError, match="missing"):
        mb.best_setting(df.drop(columns="mean_iou"))
    with pytest.raises(ValueError, match="empty"):
        mb.best_setting(df.iloc[:0])


def test_sweep_picks_a_sensible_setting_and_checks_its_input():
    maps, truths = _validation_set()
    df = mb.sweep(maps, truths, [0.5, 0.9, 0.97], [1, 3], [1, 3])
    best = mb.best_setting(df)
    assert best["quantile"] > 0.5 and best["median_iou"] > 0.5
    with pytest.raises(ValueError, match="one entry per image, got 3, 2 and 3"):
        mb.sweep(maps, truths[:2], [0.9], [3], [3])
    with pytest.raises(ValueError, match="quantiles is empty"):
        mb.sweep(maps, truths, [], [3], [3])
    with pytest.raises(ValueError, match="erode must be an odd positive integer, got 2"):
        mb.sweep(maps, truths, [0.9], [2], [3])
    with pytest.raises(ValueError, match="quantile must be in"):
        mb.sweep(maps, truths, [1.0], [3], [3])
    with pytest.raises(ValueError, match="truth_boxes is empty"):
        mb.sweep(maps, [*truths[:2], []], [0.9], [3], [3])
    with pytest.raises(ValueError, match="maps is empty"):
        mb.sweep([], [], [0.9], [3], [3])
