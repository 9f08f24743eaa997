"""RELAX and CorRELAX on sliding windows, from sums streamed over batches (paper 02, §3.4,
eqs. 2-4; chapters 02 and 03).

For a window X with features h and prediction y = sigmoid(logits), each of n random masks M
gives features h_M and prediction y_M. CorRELAX correlates the feature similarity
S_h = cos(h, h_M) with the prediction similarity S_y = cos(y, y_M) (``r_dist``, eq. 3) and
with each label's masked probability y_M,c (``r_label``, eq. 4). RELAX (Wickstrom et al.)
uses the same passes: importance = sum_k M_k S_h,k / sum_k M_k, uncertainty the same
weighted variance of S_h (relax-xai keeps the unnormalised sum; we divide by sum M_k).

The engine never stores the n outputs of a window: it adds them to per-window sums (float64)
block by block, so any batch split gives the same r, many windows share one forward batch,
nested subsets of the masks (Fig. 7) come for free from the per-block sums, and a window
can stop early once its estimate is stable (``tolerance``). Masks are a seeded bank of
Bernoulli grids (``cells`` x ``cells``, a cell masked with probability ``p``, as the paper
writes it; the authors' code keeps a cell when ``rand > p``, the same law) upsampled
bilinearly to the window (no random shift, as in the authors' code; RELAX shifts). A window
is square (``window`` an int, chapter 02) or ``(height, width)`` (chapter 03 explains whole
non-square images with RELAX).

The model must return ``(features, logits)`` (``mh.models.classifiers``); features of any
shape (B, ...) with at least 2 dimensions are flattened per window.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "CorrelaxResult",
    "MaskBank",
    "check_masks",
    "correlate_sums",
    "correlax",
    "correlax_loop",
    "concat",
    "explain_roi",
    "image_maps",
    "mask_samples",
    "mask_sensitivity",
    "forward_features",
    "window_hw",
]

#: Variance below this fraction of the mean square makes a correlation undefined (a
#: constant input, e.g. a saturated sigmoid); such an r is set to 0 and counted.
UNDEFINED_RELATIVE_VARIANCE = 1e-12


def window_hw(window) -> tuple[int, int]:
    """``(height, width)`` of a window given as an int (square) or a ``(height, width)``
    pair of positive ints; anything else is an error naming WINDOW."""
    pair = window if isinstance(window, tuple | list) else (window, window)
    if len(pair) != 2 or not all(
        isinstance(v, int | np.integer) and not isinstance(v, bool) and v > 0 for v in pair
    ):
        raise ValueError(
            f"WINDOW must be a positive integer or a (height, width) pair of them, got {window!r}"
        )
    return int(pair[0]), int(pair[1])


def check_masks(n_masks, cells, p, window=None) -> tuple[int, int, float]:
    """``(N_MASKS, MASK_CELLS, MASK_P)`` validated: at least 3 masks (a correlation needs
    them), p in (0, 1), a window (an int, or ``(height, width)``) whose sides are multiples
    of the cells."""
    if isinstance(n_masks, bool) or not isinstance(n_masks, int | np.integer) or n_masks < 3:
        raise ValueError(f"N_MASKS must be an integer >= 3, got {n_masks!r}")
    if isinstance(cells, bool) or not isinstance(cells, int | np.integer) or cells < 1:
        raise ValueError(f"MASK_CELLS must be a positive integer, got {cells!r}")
    if isinstance(p, bool) or not isinstance(p, int | float) or not 0 < p < 1:
        raise ValueError(f"MASK_P must be in (0, 1), got {p!r}")
    if window is not None and any(side % cells for side in window_hw(window)):
        shown = f"({window})" if np.ndim(window) == 0 else str(tuple(window))
        raise ValueError(f"WINDOW {shown} must be a multiple of MASK_CELLS ({cells})")
    return int(n_masks), int(cells), float(p)


@dataclass(frozen=True)
class MaskBank:
    """``n`` seeded Bernoulli grids (``cells`` x ``cells``, 1 = kept, a cell masked with
    probability ``p``) and their bilinear upsampling to ``window`` pixels: an int (square)
    or ``(height, width)`` (kept as a tuple; :attr:`hw` is the pair either way)."""

    n: int
    cells: int
    p: float
    window: int | tuple[int, int]
    seed: int = 0
    grids: np.ndarray = field(init=False, repr=False)

    def __post_init__(self):
        n, cells, p = check_masks(self.n, self.cells, self.p, self.window)
        if isinstance(self.window, list):
            object.__setattr__(self, "window", tuple(self.window))
        rng = np.random.default_rng(self.seed)
        grids = (rng.random((n, cells, cells)) >= p).astype(np.float32)
        object.__setattr__(self, "grids", grids)

    @property
    def hw(self) -> tuple[int, int]:
        """The masks' ``(height, width)``."""
        return window_hw(self.window)

    def masks(self, start: int = 0, stop: int | None = None):
        """Masks ``start:stop`` as a float tensor (k, 1, height, width) in [0, 1]."""
        import torch
        import torch.nn.functional as F

        grids = torch.from_numpy(self.grids[start:stop])[:, None]
        return F.interpolate(grids, size=self.hw, mode="bilinear", align_corners=False)


def forward_features(model, x):
    """``(features (B, D), logits (B, L))`` of ``model`` on ``x``; a model that does not
    return a pair with >= 2-D features is an error
    (:func:`mammo_helpers.models.classifiers.feature_pair`)."""
    from mammo_helpers.models.classifiers import feature_pair

    feats, logits = feature_pair(model(x), len(x))
    return feats.flatten(1), logits


# Columns of the per-block sums: count, then for the pair (S_h, S_y) and for each label
# (S_h, y_c): sum x, sum y, sum x^2, sum y^2, sum xy. Column 1..5 = S_h with S_y.
def _moments(x, y):
    """(B, K) sums of x, y, x^2, y^2, xy over axis 1 for x (B, n), y (B, n, K)."""
    x = x[:, :, None]
    return np.stack(
        [
            np.broadcast_to(x, y.shape).sum(1),
            y.sum(1),
            np.broadcast_to(x * x, y.shape).sum(1),
            (y * y).sum(1),
            (x * y).sum(1),
        ],
        axis=-1,
    )


def correlate_sums(count, moments):
    """Pearson r from streamed sums: ``count`` (broadcastable to ``moments.shape[:-1]``)
    and ``moments`` (..., 5) holding sum x, sum y, sum x^2, sum y^2, sum xy. Returns ``(r, undefined)``: r is 0 where either
    variance vanishes (then ``undefined`` is True)."""
    n = np.asarray(count, dtype=float)
    sx, sy, sxx, syy, sxy = np.moveaxis(np.asarray(moments, dtype=float), -1, 0)
    vx = n * sxx - sx * sx
    vy = n * syy - sy * sy
    tiny_x = vx <= UNDEFINED_RELATIVE_VARIANCE * n * sxx
    tiny_y = vy <= UNDEFINED_RELATIVE_VARIANCE * n * syy
    undefined = tiny_x | tiny_y | (n < 3)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (n * sxy - sx * sy) / np.sqrt(vx * vy)
    return np.where(undefined, 0.0, np.clip(r, -1.0, 1.0)), undefined


@dataclass
class CorrelaxResult:
    """Per-window results (rows in the order of the windows given).

    ``prediction`` (W, L) sigmoid of the unmasked window; ``r_dist`` (W,) = rho(S_h, S_y);
    ``r_label`` (W, L) = rho(S_h, y_M,c); ``undefined_dist`` / ``undefined_label`` where r
    was undefined (set to 0); ``n_masks`` (W,) masks used; ``block_count`` (W, B) and
    ``block_moments`` (W, B, 1 + L, 5) the sums of each block of masks, from which
    :meth:`r_from_blocks` recomputes r for any subset of blocks; ``importance`` /
    ``uncertainty`` (W, h, w) RELAX maps when asked for (h, w the masks' size).
    """

    labels: tuple[str, ...]
    prediction: np.ndarray
    r_dist: np.ndarray
    r_label: np.ndarray
    undefined_dist: np.ndarray
    undefined_label: np.ndarray
    n_masks: np.ndarray
    block_count: np.ndarray
    block_moments: np.ndarray
    importance: np.ndarray | None = None
    uncertainty: np.ndarray | None = None

    def r_from_blocks(self, blocks) -> tuple[np.ndarray, np.ndarray]:
        """``(r_dist (W,), r_label (W, L))`` from the masks of the given block indices."""
        blocks = np.asarray(blocks)
        count = self.block_count[:, blocks].sum(1)
        moments = self.block_moments[:, blocks].sum(1)
        r, _ = correlate_sums(count[:, None], moments)
        return r[:, 0], r[:, 1:]


class _Accumulator:
    """Per-window sums of one call, block by block."""

    def __init__(self, n_windows, n_blocks, n_labels, pixels: int, relax: bool):
        self.count = np.zeros((n_windows, n_blocks))
        self.moments = np.zeros((n_windows, n_blocks, 1 + n_labels, 5))
        self.relax = relax
        if relax:
            self.weight = np.zeros((n_windows, pixels))
            self.first = np.zeros_like(self.weight)
            self.second = np.zeros_like(self.weight)

    def add(self, rows, block, s_h, s_y, probs, masks):
        """Add the outputs of masks (k, h*w) on windows ``rows``: s_h, s_y (R, k), probs
        (R, k, L)."""
        y = np.concatenate([s_y[:, :, None], probs], axis=2)
        self.count[rows, block] += s_h.shape[1]
        self.moments[rows, block] += _moments(s_h, y)
        if self.relax:
            self.weight[rows] += masks.sum(0)[None]
            self.first[rows] += s_h @ masks
            self.second[rows] += (s_h * s_h) @ masks


def _cosine_gap(a, b):
    """1 - cos(a, b) along the last axis, in float64, computed as half the squared
    distance of the unit vectors (exact where 1 - cos is tiny, unlike 1 - cos itself)."""
    import torch.nn.functional as F

    a, b = F.normalize(a.double(), dim=-1), F.normalize(b.double(), dim=-1)
    return 0.5 * ((a - b) ** 2).sum(-1)


def _masked_outputs(model, windows, masks, unmasked_feats, unmasked_probs):
    """For windows (R, C, h, w) under masks (k, 1, h, w), in one forward pass: S_h - 1,
    S_y - 1 (R, k) and y_M - y (R, k, L). Every variable is shifted by its unmasked value,
    which leaves r unchanged and keeps the streamed sums accurate when S_y is within 1e-5
    of 1 (a confident model)."""
    import torch

    r, k = windows.shape[0], masks.shape[0]
    x = (windows[:, None] * masks[None]).flatten(0, 1)
    feats, logits = forward_features(model, x)
    probs = torch.sigmoid(logits).reshape(r, k, -1)
    s_h = -_cosine_gap(feats.reshape(r, k, -1), unmasked_feats[:, None])
    s_y = -_cosine_gap(probs, unmasked_probs[:, None])
    shifted = probs.double() - unmasked_probs[:, None].double()
    return [t.cpu().numpy() for t in (s_h, s_y, shifted)]


def _plan(n_windows: int, block: int, batch_size: int) -> int:
    """Windows per forward pass: enough to fill ``batch_size`` masked images."""
    return max(1, min(n_windows, batch_size // block))


def _stable(acc: _Accumulator, rows, done_blocks: int, tolerance: float) -> np.ndarray:
    """Windows whose largest predicted standard error of r, (1 - r^2) / sqrt(n), is below
    ``tolerance``."""
    count = acc.count[rows, :done_blocks].sum(1)
    r, _ = correlate_sums(count[:, None], acc.moments[rows, :done_blocks].sum(1))
    se = (1 - r**2) / np.sqrt(np.maximum(count, 1))[:, None]
    return se.max(1) < tolerance


def _run_blocks(model, windows, bank, acc, state, *, batch_size, tolerance, min_masks):
    """Stream every block of masks over the active windows (all, unless ``tolerance``)."""
    import torch

    feats, probs = state
    block = min(bank.n, batch_size)
    starts = range(0, bank.n, block)
    active = np.arange(windows.shape[0])
    for b, start in enumerate(starts):
        masks = bank.masks(start, start + block)
        flat = masks.flatten(1).double().numpy() if acc.relax else None
        masks = masks.to(windows.device)
        step = _plan(len(active), masks.shape[0], batch_size)
        for i in range(0, len(active), step):
            rows = active[i : i + step]
            idx = torch.from_numpy(rows)
            outs = _masked_outputs(model, windows[idx], masks, feats[idx], probs[idx])
            acc.add(rows, b, *outs, flat)
        done = (b + 1) * block
        if tolerance is not None and done >= min_masks:
            active = active[~_stable(acc, active, b + 1, tolerance)]
            if not len(active):
                break


def _unmasked(model, windows, batch_size: int):
    """Features and logits of the unmasked windows, ``batch_size`` at a time."""
    import torch

    outs = [
        forward_features(model, windows[i : i + batch_size])
        for i in range(0, len(windows), batch_size)
    ]
    return torch.cat([f for f, _ in outs]), torch.cat([lg for _, lg in outs])


def correlax(
    model,
    windows,
    bank: MaskBank,
    *,
    labels: tuple[str, ...] | None = None,
    batch_size: int = 256,
    relax: bool = False,
    tolerance: float | None = None,
    min_masks: int = 128,
) -> CorrelaxResult:
    """CorRELAX (and RELAX with ``relax=True``) of ``model`` on ``windows`` (W, C, h, w)
    float tensor ((h, w) = ``bank.hw``), with the masks of ``bank``, ``batch_size`` masked
    windows per forward pass. ``labels`` names the model's outputs (default ``model.labels``). With
    ``tolerance``, a window stops once every r's predicted standard error
    (1 - r^2) / sqrt(n) is below it (and at least ``min_masks`` were used). Computed on
    the model's device."""
    import torch

    from mammo_helpers import devices

    labels = tuple(labels if labels is not None else getattr(model, "labels", ()))
    h, w = bank.hw
    if windows.ndim != 4 or tuple(windows.shape[-2:]) != (h, w):
        raise ValueError(f"windows must be shaped (W, C, {h}, {w}), got {tuple(windows.shape)}")
    windows = windows.to(devices.model_device(model))
    model.eval()
    with torch.inference_mode():
        feats, logits = _unmasked(model, windows, batch_size)
        if labels and len(labels) != logits.shape[1]:
            raise ValueError(f"{len(labels)} labels for a model with {logits.shape[1]} outputs")
        probs = torch.sigmoid(logits)
        n_blocks = -(-bank.n // min(bank.n, batch_size))
        acc = _Accumulator(len(windows), n_blocks, logits.shape[1], h * w, relax)
        _run_blocks(
            model,
            windows,
            bank,
            acc,
            (feats, probs),
            batch_size=batch_size,
            tolerance=tolerance,
            min_masks=min_masks,
        )
    return _result(acc, labels, probs.double().cpu().numpy(), (h, w))


def _result(acc: _Accumulator, labels, prediction, hw: tuple[int, int]) -> CorrelaxResult:
    count = acc.count.sum(1)
    r, undefined = correlate_sums(count[:, None], acc.moments.sum(1))
    importance = uncertainty = None
    if acc.relax:
        shape = (len(count), *hw)
        weight = np.maximum(acc.weight, 1e-12)
        mean = acc.first / weight  # of S_h - 1
        importance = (1.0 + mean).reshape(shape)
        uncertainty = np.maximum(acc.second / weight - mean**2, 0.0).reshape(shape)
    return CorrelaxResult(
        labels=labels,
        prediction=prediction,
        r_dist=r[:, 0],
        r_label=r[:, 1:],
        undefined_dist=undefined[:, 0],
        undefined_label=undefined[:, 1:],
        n_masks=count.astype(int),
        block_count=acc.count,
        block_moments=acc.moments,
        importance=importance,
        uncertainty=uncertainty,
    )


def correlax_loop(model, windows, bank: MaskBank, *, mask_batch: int = 128):
    """The authors' procedure, kept as the reference the engine is tested and benchmarked
    against: one window at a time, masks in batches of ``mask_batch``, every output kept,
    then ``numpy.corrcoef``. Cosines are taken in float64: in float32 a confident model's
    S_y (within 1e-4 of 1) loses the digits r is made of (errors of ~1e-3). Returns ``(r_dist (W,), r_label (W, L))``; undefined r -> 0."""
    import torch
    import torch.nn.functional as F

    from mammo_helpers import devices

    device = devices.model_device(model)
    model.eval()
    r_dist, r_label = [], []
    with torch.inference_mode():
        for window in windows.to(device):
            h, y = forward_features(model, window[None])
            y = torch.sigmoid(y)
            s_h, s_y, y_m = [], [], []
            for start in range(0, bank.n, mask_batch):
                masked = window[None] * bank.masks(start, start + mask_batch).to(device)
                h_m, logits = forward_features(model, masked)
                y_batch = torch.sigmoid(logits)
                s_h.append(F.cosine_similarity(h.double(), h_m.double()))
                s_y.append(F.cosine_similarity(y.double(), y_batch.double()))
                y_m.append(y_batch)
            s_h, s_y, y_m = (devices.to_numpy(torch.cat(part)) for part in (s_h, s_y, y_m))
            rows = np.vstack([s_h, s_y, y_m.T]).astype(float)
            with np.errstate(invalid="ignore", divide="ignore"):
                r = np.nan_to_num(np.corrcoef(rows)[0, 1:], nan=0.0)
            r_dist.append(r[0])
            r_label.append(r[1:])
    return np.array(r_dist), np.array(r_label)


def concat(results: list[CorrelaxResult]) -> CorrelaxResult:
    """Per-window results of several calls (same labels and mask bank) stacked in order."""
    if not results:
        raise ValueError("concat: no results to stack")
    first = results[0]

    def stack(name):
        parts = [getattr(r, name) for r in results]
        return None if parts[0] is None else np.concatenate(parts)

    names = [f for f in first.__dataclass_fields__ if f != "labels"]
    return CorrelaxResult(labels=first.labels, **{n: stack(n) for n in names})


def explain_roi(
    model,
    roi,
    grid,
    bank: MaskBank,
    *,
    window_chunk: int = 64,
    progress: bool = False,
    **options,
) -> CorrelaxResult:
    """:func:`correlax` over every kept window of ``grid`` (``mh.xai.windows``) on the ROI
    ``roi`` (H, W, C) float in [0, 1], ``window_chunk`` windows at a time (memory), with a
    progress bar if asked. ``options`` go to :func:`correlax`."""
    import torch
    from tqdm.auto import tqdm

    from mammo_helpers.xai import windows as win

    if (grid.window, grid.window) != bank.hw:
        raise ValueError(f"grid windows are {grid.window} px but the masks {bank.window} px")
    padded = win.pad_roi(np.asarray(roi, dtype=np.float32), grid.window)
    chunks = range(0, grid.n_windows, window_chunk)
    results = []
    for start in tqdm(chunks, desc="CorRELAX windows", disable=not progress, leave=False):
        index = np.arange(start, min(start + window_chunk, grid.n_windows))
        cut = win.extract_windows(padded, grid, index)
        windows = torch.from_numpy(np.ascontiguousarray(np.moveaxis(cut, -1, 1)))
        results.append(correlax(model, windows, bank, **options))
    return concat(results)


def image_maps(payload, *, model, bank: MaskBank, stride: int, **options) -> dict:
    """CorRELAX's maps of one image, as one per-image task (``mh.tasks.run_tasks`` runs it
    serially or on a Dask cluster): ``payload`` is ``(roi, breast_mask, image_id)``.

    Returns, on the image grid, the prediction (``pred``), label-correlation (``corr``) and
    distance-correlation (``dist``) maps (L, H, W) and their product (the paper's
    "combination"); with ``relax=True`` in ``options`` RELAX's ``relax`` and
    ``relax_uncertainty`` maps; and ``n_windows`` and the number of ``undefined``
    correlations. ``options`` go to :func:`correlax` (e.g. ``batch_size``). Chapter 02."""
    from mammo_helpers.xai import windows as win

    roi, breast, image_id = payload
    grid = win.window_grid(breast, bank.hw[0], stride, name=image_id)
    res = explain_roi(model, roi, grid, bank, **options)
    maps = {
        "pred": win.maps_from_windows(res.prediction, grid),
        "corr": win.maps_from_windows(res.r_label, grid),
        "dist": win.maps_from_windows(res.r_dist, grid),
        "n_windows": grid.n_windows,
        "undefined": int(res.undefined_label.sum() + res.undefined_dist.sum()),
    }
    maps["product"] = maps["pred"] * maps["corr"]
    if res.importance is not None:
        maps["relax"] = win.stitch(res.importance, grid)
        maps["relax_uncertainty"] = win.stitch(res.uncertainty, grid)
    return maps


def mask_samples(model, window, bank: MaskBank, *, batch_size: int = 256) -> dict:
    """The per-mask values CorRELAX correlates for one window (C, w, w), for figures
    (chapter 02's Fig. 4): ``s_h`` = cos(h, h_M), ``s_y`` = cos(y, y_M) and ``y_m``
    (n, L) the masked sigmoid outputs, plus ``y`` (L,) the unmasked ones. On the model's
    device."""
    import torch

    from mammo_helpers import devices

    window = window.to(devices.model_device(model))
    model.eval()
    parts = []
    with torch.inference_mode():
        feats, logits = forward_features(model, window[None])
        probs = torch.sigmoid(logits)
        for start in range(0, bank.n, batch_size):
            masks = bank.masks(start, start + batch_size).to(window.device)
            parts.append(_masked_outputs(model, window[None], masks, feats, probs))
    s_h, s_y, shifted = (np.concatenate([p[k][0] for p in parts]) for k in range(3))
    y = devices.to_numpy(probs[0].double())
    return {"s_h": 1.0 + s_h, "s_y": 1.0 + s_y, "y_m": shifted + y, "y": y}


def mask_sensitivity(result: CorrelaxResult, counts) -> dict:
    """How r_dist depends on the number of masks (paper 02, §4.3, Fig. 7), from one run
    whose blocks hold equal numbers of masks: for each n in ``counts`` (a multiple of the
    block size), ``nested[n]`` = |r(first n masks) - r(all)| per window (the paper's
    measure; 0 at n = all by construction), ``independent[n]`` = |r(masks 1..n) -
    r(masks n+1..2n)| / sqrt(2) per window where 2n masks exist (the error of one n-mask
    estimate), and ``theory[n]`` = the mean of sqrt(2 / pi) (1 - r^2) / sqrt(n), the
    expected |error| of a correlation from n samples."""
    per_block = result.block_count[:, 0]
    if not (result.block_count[:, :-1] == per_block[:, None]).all():
        raise ValueError("mask_sensitivity needs blocks of one size (a run without tolerance)")
    block, n_blocks = int(per_block[0]), result.block_count.shape[1]
    nested, independent, theory = {}, {}, {}
    for n in counts:
        if n % block or n // block > n_blocks:
            raise ValueError(f"{n} masks is not a multiple of the block ({block}) within the run")
        k = n // block
        r_n, _ = result.r_from_blocks(range(k))
        nested[n] = np.abs(r_n - result.r_dist)
        if 2 * k <= n_blocks:
            r_b, _ = result.r_from_blocks(range(k, 2 * k))
            independent[n] = np.abs(r_n - r_b) / np.sqrt(2)
        theory[n] = float(np.mean(np.sqrt(2 / np.pi) * (1 - result.r_dist**2) / np.sqrt(n)))
    return {"nested": nested, "independent": independent, "theory": theory}
