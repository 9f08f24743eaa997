"""Sliding windows over a breast ROI and the IoU kernel that turns per-window values into
maps (paper 02, §3.5, eqs. 5-10; chapters 02 and 03).

The ROI is zero-padded by half a window on every side, so a window is centred on every
``stride``-th pixel of the ROI, starting at (0, 0). Windows without any breast pixel are
skipped: their values are 0 in every map. Per-window values live on the *centre grid*
(one cell per window centre); :func:`smooth` weighs each centre with its neighbours by the
IoU of their windows (the kernel sums to 1), and :func:`to_image` places the centre values
at the centre pixels and interpolates bilinearly between them, giving a map shaped like
the ROI.

Departure of the authors' code (``dmelladoc/CodigoTesis``, ``WindowOps.create_kernel``):
their kernel offsets are ``arange(-w/2, w/2 + 1, stride)``, which at w 256 / stride 48 is
6 x 6 with no centre cell; ``kernel_offsets(..., style="authors")`` reproduces it for
comparison, the default follows the paper's text (offsets ``k * stride``, ``|k * stride|
<= w/2``, centre included).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "WindowGrid",
    "check_window",
    "extract_windows",
    "iou_kernel",
    "kernel_offsets",
    "maps_from_windows",
    "pad_roi",
    "random_windows",
    "smooth",
    "stitch",
    "to_image",
    "window_grid",
    "window_probabilities",
]


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def check_window(window, stride) -> tuple[int, int]:
    """``(WINDOW, STRIDE)`` as ints; a stride <= 0 or larger than the window is an error
    (the maps would have holes between windows)."""
    window = _positive_int(window, "WINDOW")
    if isinstance(stride, bool) or not isinstance(stride, int | np.integer):
        raise ValueError(f"STRIDE must be an integer, got {stride!r}")
    if not 0 < stride <= window:
        raise ValueError(f"STRIDE must be in 1..WINDOW ({window}), got {stride}")
    return window, int(stride)


def kernel_offsets(window: int, stride: int, style: str = "paper") -> np.ndarray:
    """Offsets (pixels) of the neighbouring window centres the kernel covers along one axis:
    ``k * stride`` with ``|k * stride| <= window / 2`` (``style="paper"``), or the authors'
    ``arange(-window // 2, window // 2 + 1, stride)`` (``style="authors"``)."""
    window, stride = check_window(window, stride)
    half = window // 2
    if style == "paper":
        k = half // stride
        return np.arange(-k, k + 1) * stride
    if style == "authors":
        return np.arange(-half, half + 1, stride)
    raise ValueError(f"style must be 'paper' or 'authors', got {style!r}")


def iou_kernel(window: int, stride: int, *, normalise: bool = True, style: str = "paper"):
    """The IoU kernel (eqs. 5-10): the IoU of a ``window`` x ``window`` square with the same
    square shifted by each pair of :func:`kernel_offsets`, scaled to sum 1 unless
    ``normalise=False`` (then the centre is 1 and, at w 256 / s 48, the neighbours are
    0.6842, 0.4545 along an axis and 0.4927, 0.3403, 0.2427 off it)."""
    offsets = np.abs(kernel_offsets(window, stride, style)).astype(float)
    side = window - offsets  # overlap of two intervals of length `window` shifted by offset
    inter = side[:, None] * side[None, :]
    iou = inter / (2.0 * window * window - inter)
    return iou / iou.sum() if normalise else iou


@dataclass(frozen=True)
class WindowGrid:
    """Where the windows of one ROI sit: centres ``ys`` x ``xs`` (ROI pixels, every
    ``stride``), ``keep[i, j]`` True when the window centred at ``(ys[i], xs[j])`` holds
    breast. ``centres`` lists the kept windows' ``(y, x)`` in row-major order, the order of
    every per-window array."""

    roi_hw: tuple[int, int]
    window: int
    stride: int
    ys: np.ndarray
    xs: np.ndarray
    keep: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        return self.keep.shape

    @property
    def centres(self) -> np.ndarray:
        rows, cols = np.nonzero(self.keep)
        return np.stack([self.ys[rows], self.xs[cols]], axis=1)

    @property
    def n_windows(self) -> int:
        return int(self.keep.sum())

    def scatter(self, values) -> np.ndarray:
        """Per-window values ``(n_windows, ...)`` onto the centre grid ``(..., ny, nx)``;
        skipped windows get 0."""
        values = np.asarray(values, dtype=float)
        if values.shape[0] != self.n_windows:
            raise ValueError(
                f"expected one value per kept window ({self.n_windows}), got {values.shape[0]}"
            )
        out = np.zeros(values.shape[1:] + self.shape)
        out[..., self.keep] = np.moveaxis(values, 0, -1)
        return out


def window_grid(breast_mask, window: int, stride: int, *, name: str = "image") -> WindowGrid:
    """The windows of a ROI whose breast pixels are ``breast_mask`` (H, W) bool; a window
    is kept when it holds at least one breast pixel. An image without breast is an error
    naming ``name``."""
    window, stride = check_window(window, stride)
    mask = np.asarray(breast_mask, dtype=bool)
    if mask.ndim != 2:
        raise ValueError(f"breast mask of {name} must be 2-D, got shape {mask.shape}")
    if not mask.any():
        raise ValueError(f"{name} has no breast pixel: nothing to explain")
    h, w = mask.shape
    ys, xs = np.arange(0, h, stride), np.arange(0, w, stride)
    padded = pad_roi(mask.astype(np.int64), window)
    integral = np.pad(padded.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    y0, x0 = ys[:, None], xs[None, :]  # window top-left in the padded frame
    inside = (
        integral[y0 + window, x0 + window]
        - integral[y0, x0 + window]
        - integral[y0 + window, x0]
        + integral[y0, x0]
    )
    return WindowGrid((h, w), window, stride, ys, xs, inside > 0)


def pad_roi(roi, window: int) -> np.ndarray:
    """The ROI (H, W[, C]) zero-padded by ``window // 2`` before and ``window - window // 2``
    after each spatial axis, so the window centred at ROI pixel (y, x) starts at padded
    pixel (y, x)."""
    roi = np.asarray(roi)
    half = window // 2
    pad = [(half, window - half), (half, window - half)] + [(0, 0)] * (roi.ndim - 2)
    return np.pad(roi, pad)


def extract_windows(padded, grid: WindowGrid, index=None) -> np.ndarray:
    """Windows ``index`` (default all kept, in ``grid.centres`` order) cut from the padded
    ROI ``padded`` (:func:`pad_roi`), shaped (n, window, window[, C])."""
    centres = grid.centres if index is None else grid.centres[np.asarray(index)]
    w = grid.window
    return np.stack([padded[y : y + w, x : x + w] for y, x in centres])


def smooth(grid_values, kernel) -> np.ndarray:
    """Each centre-grid value replaced by the kernel-weighted sum over its neighbours
    (zero beyond the grid); ``grid_values`` is (ny, nx) or (..., ny, nx)."""
    from scipy.ndimage import correlate

    values = np.asarray(grid_values, dtype=float)
    weights = np.asarray(kernel, dtype=float).reshape((1,) * (values.ndim - 2) + kernel.shape)
    return correlate(values, weights, mode="constant", cval=0.0)


def to_image(grid_values, grid: WindowGrid) -> np.ndarray:
    """Centre-grid values (..., ny, nx) as maps shaped like the ROI (..., H, W): each value
    at its centre pixel, bilinear in between, constant beyond the last centre."""
    from scipy.ndimage import map_coordinates

    values = np.asarray(grid_values, dtype=float)
    h, w = grid.roi_hw
    rows = np.arange(h, dtype=float) / grid.stride
    cols = np.arange(w, dtype=float) / grid.stride
    coords = np.stack(np.meshgrid(rows, cols, indexing="ij"))
    flat = values.reshape((-1,) + values.shape[-2:])
    out = [map_coordinates(v, coords, order=1, mode="nearest") for v in flat]
    return np.stack(out).reshape(values.shape[:-2] + (h, w))


def maps_from_windows(values, grid: WindowGrid, kernel=None) -> np.ndarray:
    """Per-window values (n_windows, ...) -> smoothed ROI maps (..., H, W): scatter on the
    centre grid, :func:`smooth` with ``kernel`` (default: the paper's IoU kernel of the
    grid's window and stride), :func:`to_image`."""
    if kernel is None:
        kernel = iou_kernel(grid.window, grid.stride)
    return to_image(smooth(grid.scatter(values), kernel), grid)


def stitch(window_maps, grid: WindowGrid) -> np.ndarray:
    """Per-window pixel maps (n_windows, window, window) averaged where windows overlap,
    cropped to the ROI (H, W); pixels no kept window covers are 0 (RELAX maps)."""
    maps = np.asarray(window_maps, dtype=float)
    if maps.shape != (grid.n_windows, grid.window, grid.window):
        raise ValueError(
            f"expected window maps shaped {(grid.n_windows, grid.window, grid.window)}, "
            f"got {maps.shape}"
        )
    h, w = grid.roi_hw
    total = np.zeros((h + grid.window, w + grid.window))
    count = np.zeros_like(total)
    for (y, x), m in zip(grid.centres, maps, strict=True):
        total[y : y + grid.window, x : x + grid.window] += m
        count[y : y + grid.window, x : x + grid.window] += 1
    half = grid.window // 2
    mean = np.divide(total, count, out=np.zeros_like(total), where=count > 0)
    return mean[half : half + h, half : half + w]


def window_probabilities(model, roi, grid: WindowGrid, *, batch_size: int = 256) -> np.ndarray:
    """Sigmoid outputs (n_windows, L) of a ``(features, logits)`` model on every kept
    window of the ROI ``roi`` (H, W, C), ``batch_size`` windows at a time, on the model's
    device: the values of the prediction maps (chapters 02, 03)."""
    import torch

    roi = np.asarray(roi, dtype=np.float32)
    if roi.ndim != 3 or roi.shape[:2] != tuple(grid.roi_hw):
        raise ValueError(f"roi must be (H, W, C) with (H, W) = {grid.roi_hw}, got {roi.shape}")
    from mammo_helpers import devices

    padded = pad_roi(roi, grid.window)
    device = devices.model_device(model)
    model.eval()
    out = []
    with torch.inference_mode():
        for start in range(0, grid.n_windows, batch_size):
            index = np.arange(start, min(start + batch_size, grid.n_windows))
            cut = np.moveaxis(extract_windows(padded, grid, index), -1, 1)
            _, logits = model(torch.from_numpy(np.ascontiguousarray(cut)).to(device))
            out.append(devices.to_numpy(torch.sigmoid(logits)))
    return np.concatenate(out)


def random_windows(images, breasts, window: int, stride: int, n: int, *, seed: int = 0):
    """``n`` windows (n, window, window, C) drawn without replacement (seeded) from all kept
    windows of the ROIs ``images`` (H, W, C) with breast masks ``breasts`` (chapter 02's
    Fig. 7 and benchmark); fewer when fewer exist."""
    grids = [window_grid(b, window, stride) for b in breasts]
    pool = [(i, k) for i, g in enumerate(grids) for k in range(g.n_windows)]
    rng = np.random.default_rng(seed)
    picked = rng.choice(len(pool), size=min(n, len(pool)), replace=False)
    out = []
    for i, k in (pool[p] for p in picked):
        out.append(extract_windows(pad_roi(images[i], window), grids[i], [k])[0])
    return np.stack(out)
