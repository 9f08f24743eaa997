"""Patches for pre-training paper 04's findings model (Wimmer et al. §III-A.2; chapter 04).

"5 patches per lesion (overlap > 90 % with lesion) and 5 patches from normal images
(overlap > 90 % with breast)": a lesion patch is a square of ``size`` pixels placed at
random so that more than ``min_overlap`` of the lesion's box lies inside it (for a lesion
larger than the patch: so that more than ``min_overlap`` of the patch lies on the lesion);
a normal patch is placed at random so that more than ``min_overlap`` of its pixels lie in
the breast. Placements are drawn uniformly among those allowed (rejection sampling, with a
fixed number of tries); a lesion or image that allows none gives fewer patches, counted.
Patches are cut from the model-input image (the same scale as the findings model sees).
:func:`training_patches` does it for a set of images; chapter 05 uses it for End2End's
patch classifier (the same recipe: Shen et al. also start from lesion and background
patches).
"""

from __future__ import annotations

import numpy as np

from mammo_helpers.boxes import as_boxes, as_hw

__all__ = ["lesion_patch_boxes", "normal_patch_boxes", "cut", "training_patches"]

TRIES = 1000


def _check(size: int, n: int, min_overlap: float) -> None:
    if isinstance(size, bool) or not isinstance(size, int | np.integer) or size < 1:
        raise ValueError(f"size must be a positive integer (pixels), got {size!r}")
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0:
        raise ValueError(f"n must be an integer >= 0, got {n!r}")
    if not 0 <= min_overlap < 1:
        raise ValueError(f"min_overlap must be in [0, 1), got {min_overlap!r}")


def _overlap(box, x0: float, y0: float, size: int) -> float:
    """Intersection area of ``box`` with the patch at (x0, y0), over the smaller of the
    two areas (the lesion's, or the patch's for a lesion larger than the patch)."""
    bx0, by0, bx1, by1 = box
    iw = max(0.0, min(bx1, x0 + size) - max(bx0, x0))
    ih = max(0.0, min(by1, y0 + size) - max(by0, y0))
    smaller = min((bx1 - bx0) * (by1 - by0), float(size * size))
    return iw * ih / smaller if smaller > 0 else 0.0


def lesion_patch_boxes(box, image_hw, size: int, n: int, rng, *, min_overlap=0.9):
    """Up to ``n`` integer patch boxes (x0, y0, x1, y1) of side ``size`` inside the image
    whose overlap with ``box`` exceeds ``min_overlap`` (see the module docstring)."""
    _check(size, n, min_overlap)
    ((bx0, by0, bx1, by1),) = as_boxes(box)
    h, w = as_hw(image_hw, "image_hw")
    if size > min(h, w):
        raise ValueError(f"patch size {size} px does not fit an image of {h} x {w} px")
    # every placement that touches the box, clipped to the image; the overlap test decides
    lo_x, hi_x = max(0, int(np.floor(bx0)) - size), min(w - size, int(np.ceil(bx1)))
    lo_y, hi_y = max(0, int(np.floor(by0)) - size), min(h - size, int(np.ceil(by1)))
    if lo_x > hi_x or lo_y > hi_y:
        return []
    out = []
    for _ in range(TRIES):
        if len(out) == n:
            break
        x0, y0 = int(rng.integers(lo_x, hi_x + 1)), int(rng.integers(lo_y, hi_y + 1))
        if _overlap((bx0, by0, bx1, by1), x0, y0, size) > min_overlap:
            out.append((x0, y0, x0 + size, y0 + size))
    return out


def normal_patch_boxes(breast, size: int, n: int, rng, *, min_overlap=0.9):
    """Up to ``n`` integer patch boxes of side ``size`` with more than ``min_overlap`` of
    their pixels in the boolean ``breast`` mask (H, W)."""
    _check(size, n, min_overlap)
    breast = np.asarray(breast, dtype=bool)
    h, w = breast.shape
    if size > min(h, w):
        raise ValueError(f"patch size {size} px does not fit an image of {h} x {w} px")
    integral = np.pad(breast.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    out = []
    for _ in range(TRIES):
        if len(out) == n:
            break
        x0, y0 = int(rng.integers(0, w - size + 1)), int(rng.integers(0, h - size + 1))
        x1, y1 = x0 + size, y0 + size
        inside = integral[y1, x1] - integral[y0, x1] - integral[y1, x0] + integral[y0, x0]
        if inside / size**2 > min_overlap:
            out.append((x0, y0, x1, y1))
    return out


def cut(image, boxes) -> np.ndarray:
    """The patches of ``image`` (H, W) under integer ``boxes``, stacked (K, size, size)."""
    image = np.asarray(image)
    return (
        np.stack([image[y0:y1, x0:x1] for x0, y0, x1, y1 in boxes])
        if boxes
        else np.zeros((0, 0, 0), image.dtype)
    )


def training_patches(
    images, breasts, boxes, size: int, *, labels=None, index=None, n: int = 5, seed: int = 0,
    return_index: bool = False,
):  # fmt: skip
    """Lesion and normal patches of the images ``index`` (default: all), in that order:
    ``n`` per lesion box of an image with boxes, ``n`` from the breast of an image without
    (label 0). ``images`` (N, H, W), ``breasts`` (N, H, W) boolean masks, ``boxes`` one
    (K, 4) array-like per image in the images' pixels; ``labels`` one sequence of K class
    indices >= 1 per image (End2End's classes, chapter 05), or None: every lesion is 1
    (chapter 04). Returns ``(x, y)``: patches (M, 1, size, size) and labels (M,), and with
    ``return_index`` the image each patch comes from (M,) as a third item."""
    rng = np.random.default_rng(seed)
    index = range(len(images)) if index is None else index
    xs, ys, src = [], [], []
    for i in index:
        image, found = np.asarray(images[i]), as_boxes(boxes[i])
        classes = [1] * len(found) if labels is None else list(labels[i])
        if len(classes) != len(found) or min(classes, default=1) < 1:
            raise ValueError(f"training_patches: image {i} needs one label >= 1 per box")
        if len(found):
            for box, label in zip(found, classes, strict=True):
                cuts = lesion_patch_boxes(box, image.shape, size, n, rng)
                xs.append(cut(image, cuts)), ys.extend([label] * len(cuts))
                src.extend([i] * len(cuts))
        else:
            cuts = normal_patch_boxes(breasts[i], size, n, rng)
            xs.append(cut(image, cuts)), ys.extend([0] * len(cuts)), src.extend([i] * len(cuts))
    xs = [x for x in xs if len(x)]
    if not xs:
        raise ValueError(f"training_patches: no patch of {size} px fits the images given")
    out = (np.concatenate(xs)[:, None], np.asarray(ys, dtype=np.int64))
    return (*out, np.asarray(src, dtype=np.int64)) if return_index else out
