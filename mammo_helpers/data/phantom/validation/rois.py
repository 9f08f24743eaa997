"""Square regions of interest (ROIs): where they fit inside a mask, and cutting them out.

:func:`window_counts` counts mask pixels in every window (a summed-area table),
:func:`tile_rois` places non-overlapping ROIs on a regular grid inside a mask (the power
spectrum), :func:`extract_rois` cuts ROIs around given centres (the model observers). Used
by the realism checks of chapter 00.
"""

from __future__ import annotations

import numpy as np


def window_counts(mask: np.ndarray, size: int) -> np.ndarray:
    """Number of True pixels in every ``size`` x ``size`` window, indexed by its top-left corner.

    Shape ``(H - size + 1, W - size + 1)`` (empty if the window does not fit).
    """
    m = np.asarray(mask, dtype=np.int64)
    h, w = m.shape
    if size > h or size > w:
        return np.zeros((max(h - size + 1, 0), max(w - size + 1, 0)), dtype=np.int64)
    c = np.zeros((h + 1, w + 1), dtype=np.int64)
    c[1:, 1:] = m.cumsum(0).cumsum(1)
    return c[size:, size:] - c[:-size, size:] - c[size:, :-size] + c[:-size, :-size]


def tile_rois(valid: np.ndarray, size: int, n_max: int, rng: np.random.Generator):
    """Top-left corners of non-overlapping ROIs on the densest regular tiling of ``valid``.

    ``valid[r, c]`` says an ROI with top-left corner (r, c) is allowed. Every grid offset
    (oy, ox) of a lattice with pitch ``size`` is scored by how many of its tiles are valid;
    one of the best offsets is picked at random and, if it has more than ``n_max`` tiles, a
    random subset is kept. Returns a list of (row, col).
    """
    h, w = valid.shape
    if h == 0 or w == 0 or not valid.any():
        return []
    ph, pw = -(-h // size) * size, -(-w // size) * size
    padded = np.zeros((ph, pw), dtype=bool)
    padded[:h, :w] = valid
    per_offset = padded.reshape(ph // size, size, pw // size, size).sum(axis=(0, 2))
    best = np.flatnonzero(per_offset == per_offset.max())
    oy, ox = np.unravel_index(best[rng.integers(best.size)], per_offset.shape)
    rr, cc = np.nonzero(valid[oy::size, ox::size])
    corners = np.column_stack([oy + rr * size, ox + cc * size])
    if len(corners) > n_max:
        corners = corners[np.sort(rng.choice(len(corners), n_max, replace=False))]
    return [(int(r), int(c)) for r, c in corners]


def extract_rois(image, centers_rc, size: int) -> np.ndarray:
    """Square ROIs of ``size`` px centred on ``centers_rc`` ((N, 2) row, col), shape (N, s, s).

    The centre pixel sits at index ``size // 2`` of the ROI (the convention used by
    :func:`~.observers.laguerre_gauss_channels`). Raises ``ValueError`` naming the first
    ROI that leaves the image.
    """
    img = np.asarray(image)
    if img.ndim != 2:
        raise ValueError(f"image must be 2-D, got shape {img.shape}")
    centers = np.asarray(centers_rc, dtype=int).reshape(-1, 2)
    size = int(size)
    h = size // 2
    out = np.empty((len(centers), size, size), dtype=img.dtype)
    for i, (r, c) in enumerate(centers):
        r0, c0 = r - h, c - h
        if r0 < 0 or c0 < 0 or r0 + size > img.shape[0] or c0 + size > img.shape[1]:
            raise ValueError(
                f"ROI {i} centred at (row {r}, col {c}) with size {size} px leaves the "
                f"{img.shape[0]}x{img.shape[1]} image"
            )
        out[i] = img[r0 : r0 + size, c0 : c0 + size]
    return out
