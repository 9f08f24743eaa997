"""mammo_helpers.xai.windows: the IoU kernel against hand values and a raster IoU, the
window grid against a brute-force scan, one-hot reconstruction of the maps, scipy's
convolution as the reference for the smoothing."""

import numpy as np
import pytest
from scipy.signal import convolve2d

import mammo_helpers as mh

win = mh.xai.windows


def test_kernel_hand_values_at_window_256_stride_48():
    k = win.iou_kernel(256, 48, normalise=False)
    assert k.shape == (5, 5)
    # centre, one step along an axis, two steps, one diagonal, (2, 1), (2, 2)
    got = [k[2, 2], k[2, 3], k[2, 4], k[3, 3], k[4, 3], k[4, 4]]
    assert np.round(got, 4).tolist() == [1.0, 0.6842, 0.4545, 0.4927, 0.3403, 0.2427]
    assert np.allclose(k, k.T) and np.allclose(k, k[::-1, ::-1])


def test_normalised_kernel_sums_to_one():
    k = win.iou_kernel(64, 16)
    assert k.sum() == pytest.approx(1.0)
    assert k.shape == (5, 5) and k.argmax() == 12


def _raster_iou(window, dy, dx):
    canvas = np.zeros((3 * window, 3 * window), bool)
    a, b = canvas.copy(), canvas.copy()
    a[window : 2 * window, window : 2 * window] = True
    b[window + dy : 2 * window + dy, window + dx : 2 * window + dx] = True
    return (a & b).sum() / (a | b).sum()


@pytest.mark.parametrize("window, stride", [(32, 8), (40, 12), (24, 24), (17, 5)])
def test_kernel_equals_the_iou_of_rasterised_squares(window, stride):
    k = win.iou_kernel(window, stride, normalise=False)
    offsets = win.kernel_offsets(window, stride)
    for i, dy in enumerate(offsets):
        for j, dx in enumerate(offsets):
            assert k[i, j] == pytest.approx(_raster_iou(window, dy, dx), abs=1e-12)


def test_kernel_offsets_cover_half_a_window():
    assert win.kernel_offsets(256, 48).tolist() == [-96, -48, 0, 48, 96]
    assert win.kernel_offsets(64, 32).tolist() == [-32, 0, 32]


def test_authors_kernel_is_six_by_six_without_a_centre():
    offsets = win.kernel_offsets(256, 48, style="authors")
    assert offsets.tolist() == [-128, -80, -32, 16, 64, 112]
    assert win.iou_kernel(256, 48, style="authors").shape == (6, 6)
    with pytest.raises(ValueError, match="style"):
        win.kernel_offsets(256, 48, style="other")


@pytest.mark.parametrize("stride", [0, -4, 65, 2.5, True])
def test_bad_stride_is_named(stride):
    with pytest.raises(ValueError, match="STRIDE"):
        win.check_window(64, stride)


@pytest.mark.parametrize("window", [0, -8, 3.0])
def test_bad_window_is_named(window):
    with pytest.raises(ValueError, match="WINDOW"):
        win.check_window(window, 1)


def _mask(h=70, w=45, seed=0):
    rng = np.random.default_rng(seed)
    mask = np.zeros((h, w), bool)
    mask[10:50, 5:30] = True
    mask[rng.random((h, w)) < 0.01] = True
    return mask


def test_grid_keeps_exactly_the_windows_holding_breast():
    mask = _mask()
    grid = win.window_grid(mask, 16, 6)
    assert grid.ys.tolist() == list(range(0, 70, 6)) and grid.xs.tolist() == list(range(0, 45, 6))
    for i, y in enumerate(grid.ys):
        for j, x in enumerate(grid.xs):
            rows = slice(max(y - 8, 0), y + 8)
            cols = slice(max(x - 8, 0), x + 8)
            assert grid.keep[i, j] == mask[rows, cols].any(), (y, x)
    assert grid.n_windows == len(grid.centres) == grid.keep.sum()


def test_grid_of_an_image_without_breast_names_it():
    with pytest.raises(ValueError, match="P7-L-CC has no breast"):
        win.window_grid(np.zeros((20, 30), bool), 8, 4, name="P7-L-CC")


def test_extracted_window_is_centred_on_its_centre_with_zero_padding():
    rng = np.random.default_rng(1)
    roi = rng.random((23, 31, 3))
    mask = np.ones((23, 31), bool)
    grid = win.window_grid(mask, 10, 7)
    padded = win.pad_roi(roi, 10)
    cut = win.extract_windows(padded, grid)
    for (y, x), window in zip(grid.centres, cut, strict=True):
        expected = np.zeros((10, 10, 3))
        for dy in range(10):
            for dx in range(10):
                yy, xx = y - 5 + dy, x - 5 + dx
                if 0 <= yy < 23 and 0 <= xx < 31:
                    expected[dy, dx] = roi[yy, xx]
        assert np.array_equal(window, expected), (y, x)


def test_smoothing_is_scipys_convolution_with_zero_fill():
    rng = np.random.default_rng(2)
    values = rng.random((9, 13))
    kernel = rng.random((5, 5))
    expected = convolve2d(values, kernel[::-1, ::-1], mode="same", boundary="fill")
    assert np.allclose(win.smooth(values, kernel), expected)
    stacked = win.smooth(np.stack([values, 2 * values]), kernel)
    assert np.allclose(stacked[1], 2 * expected)


def test_one_hot_window_reconstructs_the_kernel_around_its_centre():
    mask = np.ones((60, 80), bool)
    grid = win.window_grid(mask, 20, 10)
    kernel = win.iou_kernel(20, 10)
    one_hot = np.zeros(grid.n_windows)
    target = int(np.flatnonzero((grid.centres == [30, 40]).all(1))[0])
    one_hot[target] = 1.0
    image = win.maps_from_windows(one_hot, grid)
    assert image.shape == (60, 80)
    for i, dy in enumerate((-10, 0, 10)):
        for j, dx in enumerate((-10, 0, 10)):
            assert image[30 + dy, 40 + dx] == pytest.approx(kernel[i, j])
    assert image[30, 45] == pytest.approx((kernel[1, 1] + kernel[1, 2]) / 2)  # bilinear
    assert image[0, 0] == 0 and image[30, 60] == 0  # beyond the kernel's reach


def test_skipped_windows_are_zero_and_constants_stay_constant():
    mask = np.zeros((40, 40), bool)
    mask[:, :8] = True
    grid = win.window_grid(mask, 8, 4)
    grid_values = grid.scatter(np.full(grid.n_windows, 0.7))
    assert set(np.unique(grid_values)) == {0.0, 0.7}
    assert np.allclose(win.to_image(np.full(grid.shape, 0.3), grid), 0.3)
    with pytest.raises(ValueError, match="one value per kept window"):
        grid.scatter(np.zeros(grid.n_windows + 1))


def test_stitch_averages_overlapping_windows():
    mask = np.ones((8, 12), bool)
    grid = win.window_grid(mask, 4, 4)
    maps = np.stack([np.full((4, 4), float(k)) for k in range(grid.n_windows)])
    image = win.stitch(maps, grid)
    assert image.shape == (8, 12)
    # stride == window: every ROI pixel lies in exactly one window, centred at (0,0), (0,4)...
    assert image[0, 0] == 0 and image[0, 2] == 1 and image[3, 3] == grid.shape[1] + 1
    with pytest.raises(ValueError, match="window maps"):
        win.stitch(maps[:-1], grid)


def test_window_probabilities_are_the_models_sigmoid_on_each_window():
    import torch

    class Mean(torch.nn.Module):
        def forward(self, x):
            m = x.mean(dim=(1, 2, 3))
            return x.flatten(1), torch.stack([m, -m], 1)

    rng = np.random.default_rng(0)
    roi = rng.random((20, 14, 3)).astype(np.float32)
    grid = win.window_grid(np.ones((20, 14), bool), 6, 4)
    probs = win.window_probabilities(Mean(), roi, grid, batch_size=5)
    padded = win.pad_roi(roi, 6)
    means = win.extract_windows(padded, grid).mean(axis=(1, 2, 3))
    assert np.allclose(probs[:, 0], 1 / (1 + np.exp(-means)), atol=1e-6)
    with pytest.raises(ValueError, match="roi must be"):
        win.window_probabilities(Mean(), roi[:10], grid)


def test_random_windows_are_seeded_kept_windows():
    rng = np.random.default_rng(0)
    images = [rng.random((20, 16, 3)), rng.random((12, 30, 3))]
    breasts = [np.ones((20, 16), bool), np.zeros((12, 30), bool)]
    breasts[1][:, :5] = True
    got = win.random_windows(images, breasts, 8, 4, 7, seed=1)
    assert got.shape == (7, 8, 8, 3)
    assert np.array_equal(got, win.random_windows(images, breasts, 8, 4, 7, seed=1))
    every = [
        w
        for img, b in zip(images, breasts, strict=True)
        for w in win.extract_windows(win.pad_roi(img, 8), win.window_grid(b, 8, 4))
    ]
    assert all(any(np.array_equal(g, w) for w in every) for g in got)
    assert len(win.random_windows(images, breasts, 8, 4, 10_000)) == len(every)
