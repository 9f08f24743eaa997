"""Does a map point at the finding? The Pointing Game, its random-pointer baseline and the
pixel AUC of a map against a lesion mask. Chapters 02 (CorRELAX, Mellado et al. 2025,
§3.5 and Table 4) and 03.

A *map* is a 2-D float array shaped like the breast ROI image, ``(height, width)``. Boxes
follow :mod:`mammo_helpers.boxes`: ``(xmin, ymin, xmax, ymax)``, x = column, pixel
``(r, c)`` covering ``[c, c+1) x [r, r+1)``. A pixel is *inside* a box when its centre
``(c + 0.5, r + 0.5)`` is, borders included; an integer box ``(x0, y0, x1, y1)`` grown by
``t`` pixels therefore holds exactly ``map[y0-t:y1+t, x0-t:x1+t]`` (clipped to the image).

Pointing Game (paper eq. 11): for each image and each ground-truth label present in it,
the pointed pixel is the argmax of that label's map (ties: the first in row-major order,
``np.argmax``). It is a hit when the pixel lies inside *any* of that label's boxes grown by
``tolerance_px`` on each side (the paper: the 48 px stride) and the map value there passes
the hit rule: ``>= 0.25`` or ``>= 0.5`` for prediction maps, ``> CORR_HIT`` for correlation
maps. Several boxes of one label in an image are one decision. The chapter collects one
record ``{"image", "label", "hit"[, "chance"]}`` per (image, label) with
:func:`pointing_hit` (and :func:`random_hit_chance`), then :func:`pointing_game` gives the
per-label table and :func:`pointing_summary` the JSON-ready numbers.

Pixel metrics against an exact lesion mask, inside the breast (chapter 03):
:func:`pointing_fraction` (the Pointing Game with ties shared), :func:`relevance_mass` and
:func:`rank_accuracy` (Arras et al. 2022, CLEVR-XAI: "relevance mass accuracy" and
"relevance rank accuracy") and :func:`pixel_auc`, all four from :func:`pixel_metrics`.
:func:`chance_levels` gives their values for a map unrelated to the lesion and
:func:`reference_maps` control maps that are not explanations (noise, the image's
intensity, its edges): an explanation method should beat both.
"""

from __future__ import annotations

import math
from numbers import Real

import numpy as np

from mammo_helpers.boxes import as_boxes, as_hw
from mammo_helpers.metrics import roc_auc, wilson_ci

__all__ = [
    "CORR_HIT",
    "PAPER_TOLERANCE_PX",
    "PRED_THRESHOLDS",
    "box_mask",
    "chance_levels",
    "check_map",
    "image_records",
    "pixel_auc",
    "pixel_metrics",
    "pointing_fraction",
    "pointing_game",
    "pointing_hit",
    "pointing_summary",
    "random_hit_chance",
    "rank_accuracy",
    "reference_maps",
    "relevance_mass",
]

#: Tolerance of the paper: the sliding-window stride, in pixels.
PAPER_TOLERANCE_PX = 48
#: Hit thresholds of the prediction maps (value ``>=`` threshold).
PRED_THRESHOLDS = (0.25, 0.5)
#: A correlation map hits when its value is strictly above this (the paper's "positive
#: correlation", with a small margin so that noise around 0 does not count).
CORR_HIT = 0.05

RECORD_COLUMNS = ("image", "label", "hit")


# ------------------------------------------------------------------ input checks
def _finite_real(value, name: str, minimum: float | None = None) -> float:
    ok = isinstance(value, Real) and not isinstance(value, bool | np.bool_)
    if not (ok and math.isfinite(value)) or (minimum is not None and value < minimum):
        bound = "" if minimum is None else f" >= {minimum:g}"
        raise ValueError(f"{name} must be a finite number{bound}, got {value!r}")
    return float(value)


def _as_map(map2d, name: str) -> np.ndarray:
    m = np.asarray(map2d, dtype=np.float64)
    if m.ndim != 2 or 0 in m.shape:
        raise ValueError(f"{name} must be a non-empty 2-D array, got shape {m.shape}")
    bad = int((~np.isfinite(m)).sum())
    if bad:
        raise ValueError(f"{name} holds {bad} non-finite values")
    return m


def check_map(map2d, roi_hw, name: str) -> np.ndarray:
    """``map2d`` as a float64 array after checking it is 2-D, shaped ``roi_hw`` (height,
    width) and finite; else ``ValueError`` naming it (e.g. "mass prediction map of image
    X")."""
    h, w = as_hw(roi_hw, "roi_hw")
    m = np.asarray(map2d, dtype=np.float64)
    if m.shape != (h, w):
        raise ValueError(f"{name} has shape {m.shape}, its ROI is {(h, w)} (height, width)")
    return _as_map(m, name)


def _as_mask(mask, shape: tuple[int, int], name: str, map_name: str) -> np.ndarray:
    m = np.asarray(mask)
    if m.shape != shape:
        raise ValueError(f"{name} has shape {m.shape}, {map_name} {shape}")
    if m.dtype != bool and not np.isin(m, (0, 1)).all():
        raise ValueError(f"{name} must hold only 0/1 or booleans")
    return m.astype(bool)


def _label_boxes(boxes, image_hw: tuple[int, int], name: str) -> np.ndarray:
    """The boxes of one label in one image, checked: at least one, not inverted, and each
    touching the image (a box outside it usually means x and y were swapped)."""
    b = as_boxes(boxes, f"boxes of {name}")
    if not len(b):
        raise ValueError(f"boxes of {name}: a label present in an image needs at least one box")
    if ((b[:, 2] < b[:, 0]) | (b[:, 3] < b[:, 1])).any():
        raise ValueError(f"boxes of {name} need xmin <= xmax and ymin <= ymax, got {b.tolist()}")
    h, w = image_hw
    outside = (b[:, 0] > w) | (b[:, 2] < 0) | (b[:, 1] > h) | (b[:, 3] < 0)
    if outside.any():
        raise ValueError(
            f"boxes of {name}: {b[outside].tolist()} lie outside the {h} x {w} image "
            "(x is the column, y the row)"
        )
    return b


def _grown(boxes: np.ndarray, tolerance_px, image_hw: tuple[int, int]) -> np.ndarray:
    """Boxes grown by ``tolerance_px`` on each side and clipped to the image."""
    t = _finite_real(tolerance_px, "tolerance_px", minimum=0)
    h, w = image_hw
    out = boxes + np.array([-t, -t, t, t])
    out[:, [0, 2]] = np.clip(out[:, [0, 2]], 0.0, w)
    out[:, [1, 3]] = np.clip(out[:, [1, 3]], 0.0, h)
    return out


def _inside(boxes: np.ndarray, rows, cols) -> np.ndarray:
    """Whether the centres of pixels ``(rows, cols)`` lie in any box (borders inside);
    ``rows`` and ``cols`` broadcast against each other."""
    y, x = np.asarray(rows) + 0.5, np.asarray(cols) + 0.5
    hit = np.zeros(np.broadcast(y, x).shape, dtype=bool)
    for x0, y0, x1, y1 in boxes:
        hit |= (x0 <= x) & (x <= x1) & (y0 <= y) & (y <= y1)
    return hit


# ----------------------------------------------------------------- one decision
def box_mask(boxes, image_hw, *, tolerance_px: float = 0.0) -> np.ndarray:
    """Boolean ``(height, width)`` mask of the pixels inside the union of ``boxes`` grown
    by ``tolerance_px``: the pixels at which the Pointing Game counts a hit (value rule
    aside). Also a lesion mask for :func:`pixel_auc` when only boxes are annotated."""
    hw = as_hw(image_hw, "image_hw")
    b = _grown(_label_boxes(boxes, hw, "box_mask"), tolerance_px, hw)
    return _inside(b, np.arange(hw[0])[:, None], np.arange(hw[1])[None, :])


def pointing_hit(
    map2d,
    boxes,
    *,
    tolerance_px: float,
    min_value: float | None = None,
    above: float | None = None,
    name: str = "map2d",
) -> bool:
    """One (image, label) decision: is the argmax of ``map2d`` (first in row-major order on
    ties) inside any of ``boxes`` grown by ``tolerance_px``, with a value ``>= min_value``
    (prediction maps) or ``> above`` (correlation maps, :data:`CORR_HIT`)? Give at most one
    of the two rules; with neither, only the location counts. ``name`` is used in errors."""
    if min_value is not None and above is not None:
        raise ValueError("give min_value (>=) or above (>), not both")
    m = _as_map(map2d, name)
    b = _grown(_label_boxes(boxes, m.shape, name), tolerance_px, m.shape)
    r, c = np.unravel_index(int(np.argmax(m)), m.shape)
    value = m[r, c]
    if min_value is not None and not value >= _finite_real(min_value, "min_value"):
        return False
    if above is not None and not value > _finite_real(above, "above"):
        return False
    return bool(_inside(b, r, c))


def random_hit_chance(breast_mask, boxes, *, tolerance_px: float, name: str = "image") -> float:
    """Exact probability that a pixel drawn uniformly from ``breast_mask`` lies inside
    ``boxes`` grown by ``tolerance_px`` (breast pixels in the union / breast pixels): the
    expected Pointing Game hit of a random pointer for one (image, label), value rule
    ignored. ``name`` is used in errors, e.g. "image X has no breast" for an empty mask."""
    mask = np.asarray(breast_mask)
    if mask.ndim != 2:
        raise ValueError(f"breast_mask of {name} must be 2-D, got shape {mask.shape}")
    mask = _as_mask(mask, mask.shape, f"breast_mask of {name}", name)
    n_breast = int(mask.sum())
    if not n_breast:
        raise ValueError(f"{name} has no breast (empty breast_mask)")
    b = _grown(_label_boxes(boxes, mask.shape, name), tolerance_px, mask.shape)
    rows, cols = np.nonzero(mask)
    return int(_inside(b, rows, cols).sum()) / n_breast


def _breast_pixels(map2d, lesion_mask, breast_mask, name: str):
    """The map's values and the lesion flags of the breast pixels (every pixel without a
    breast mask), checked: shapes, a finite map, a non-empty breast."""
    m = _as_map(map2d, name)
    lesion = _as_mask(lesion_mask, m.shape, "lesion_mask", name)
    keep = np.ones(m.shape, bool)
    if breast_mask is not None:
        keep = _as_mask(breast_mask, m.shape, "breast_mask", name)
        if not keep.any():
            raise ValueError(f"breast_mask of {name} is empty: no pixel to score")
    return m[keep], lesion[keep]


def pixel_auc(map2d, lesion_mask, breast_mask=None, *, name: str = "map2d") -> float:
    """ROC AUC of the map's pixel values against ``lesion_mask`` (positives), over the
    pixels of ``breast_mask`` when given (lesion pixels outside it are dropped); the
    Mann-Whitney value scikit-learn's ``roc_auc_score`` gives. NaN when the pixels kept
    hold no lesion or only lesion (the AUC is undefined); ``ValueError`` for shapes that
    differ, a non-finite map or an empty breast mask."""
    values, y = _breast_pixels(map2d, lesion_mask, breast_mask, name)
    if y.all() or not y.any():
        return math.nan
    return roc_auc(y.astype(int), values)


# ---------------------------------------------------- pixel metrics (chapter 03)
def _pixel_inputs(map2d, lesion_mask, breast_mask, name: str) -> tuple[np.ndarray, np.ndarray]:
    """The map's values and the lesion flags of the breast pixels (all pixels without a
    breast mask), checked: shapes, finite map, a breast, a lesion inside it."""
    values, lesion = _breast_pixels(map2d, lesion_mask, breast_mask, name)
    if not lesion.any():
        raise ValueError(f"lesion_mask of {name} has no pixel inside the breast")
    return values, lesion


def pointing_fraction(map2d, lesion_mask, breast_mask=None, *, name: str = "map2d") -> float:
    """The Pointing Game against a lesion mask with ties shared: the share of the breast
    pixels at the map's maximum (exact equality) that lie in the lesion. A single argmax
    gives 0 or 1; a constant map gives the lesion's share of the breast."""
    values, lesion = _pixel_inputs(map2d, lesion_mask, breast_mask, name)
    return float(lesion[values == values.max()].mean())


def relevance_mass(map2d, lesion_mask, breast_mask=None, *, name: str = "map2d") -> float:
    """Relevance mass accuracy (Arras et al. 2022, CLEVR-XAI): positive relevance inside
    the lesion / positive relevance in the breast, negative values clipped to 0. NaN when
    the breast holds no positive relevance (callers count those)."""
    values, lesion = _pixel_inputs(map2d, lesion_mask, breast_mask, name)
    positive = np.clip(values, 0.0, None)
    inside, outside = positive[lesion].sum(), positive[~lesion].sum()
    total = inside + outside  # summed in two parts so that the ratio never exceeds 1
    return float(inside / total) if total > 0 else math.nan


def rank_accuracy(map2d, lesion_mask, breast_mask=None, *, name: str = "map2d") -> float:
    """Relevance rank accuracy (Arras et al. 2022): with ``K`` lesion pixels in the breast,
    the share of the ``K`` highest-valued breast pixels that are lesion pixels.

    Ties at the ``K``-th value are shared: the ``s`` places left for the ``n`` pixels tied
    there go to each of them with probability ``s / n`` (the expected value over random
    tie-breaking), so a constant map scores ``K / N_breast``, the chance level."""
    values, lesion = _pixel_inputs(map2d, lesion_mask, breast_mask, name)
    k = int(lesion.sum())
    kth = np.partition(values, values.size - k)[values.size - k]  # K-th largest value
    above, tied = values > kth, values == kth
    places = k - int(above.sum())
    hits = lesion[above].sum() + places * lesion[tied].sum() / tied.sum()
    return float(hits / k)


def chance_levels(lesion_mask, breast_mask=None) -> dict:
    """The expected value of each pixel metric for a map unrelated to the lesion (values
    exchangeable over the breast pixels): ``p`` = lesion pixels in the breast / breast
    pixels for the pointing fraction, relevance mass and rank accuracy; 0.5 for the
    pixel AUC."""
    lesion = np.asarray(lesion_mask)
    if lesion.ndim != 2:
        raise ValueError(f"lesion_mask must be 2-D, got shape {lesion.shape}")
    _, in_lesion = _pixel_inputs(np.zeros(lesion.shape), lesion, breast_mask, "lesion_mask")
    p = float(in_lesion.mean())
    return {"pointing": p, "relevance_mass": p, "rank_accuracy": p, "pixel_auc": 0.5}


def reference_maps(image2d, breast_mask, seed: int = 0) -> dict[str, np.ndarray]:
    """Control maps that are not explanations, 0 outside the breast: ``"noise"`` (uniform
    in [0, 1), seeded), ``"intensity"`` (the image itself) and ``"edges"`` (the Sobel
    magnitude of the image, ``skimage.filters.sobel`` with the breast as its mask, which
    zeroes the pixels next to the breast's outline so that the skin line does not
    dominate)."""
    from skimage.filters import sobel

    image = _as_map(image2d, "image2d")
    breast = _as_mask(breast_mask, image.shape, "breast_mask", "image2d")
    if not breast.any():
        raise ValueError("breast_mask of image2d is empty")
    noise = np.random.default_rng(seed).random(image.shape)
    maps = {"noise": noise, "intensity": image, "edges": sobel(image, mask=breast)}
    return {key: np.where(breast, m, 0.0) for key, m in maps.items()}


def pixel_metrics(map2d, lesion_mask, breast_mask=None, *, name: str = "map2d") -> dict:
    """``pointing`` (:func:`pointing_fraction`), ``relevance_mass``, ``rank_accuracy`` and
    ``pixel_auc`` of one map against one lesion mask, inside the breast."""
    args = (map2d, lesion_mask, breast_mask)
    return {
        "pointing": pointing_fraction(*args, name=name),
        "relevance_mass": relevance_mass(*args, name=name),
        "rank_accuracy": rank_accuracy(*args, name=name),
        "pixel_auc": pixel_auc(*args, name=name),
    }


# ------------------------------------------------------------------- aggregates
def _records(records, labels: list):
    """The records as a DataFrame, checked: columns, hits 0/1, chances in [0, 1], known
    labels, one record per (image, label)."""
    import pandas as pd

    df = pd.DataFrame(records)
    if df.empty:
        df = pd.DataFrame(columns=list(RECORD_COLUMNS))
    missing = [c for c in RECORD_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"records need columns {list(RECORD_COLUMNS)}; missing {missing}")
    if len(set(labels)) != len(labels):
        raise ValueError(f"labels are repeated: {labels}")
    unknown = sorted(set(df["label"]) - set(labels), key=str)
    if unknown:
        raise ValueError(f"records hold labels {unknown} that are not in labels {labels}")
    if not df["hit"].isin([0, 1]).all():  # True/False are 1/0
        raise ValueError("records: hit must be True/False (or 1/0)")
    if "chance" in df.columns:
        chance = pd.to_numeric(df["chance"], errors="coerce")
        if not chance.between(0, 1).all():  # NaN fails too
            raise ValueError("records: chance must be a probability in [0, 1] on every record")
    twice = df[df.duplicated(["image", "label"], keep=False)]
    if len(twice):
        image, label = twice.iloc[0][["image", "label"]]
        raise ValueError(
            f"image {image!r} has {int(((twice.image == image) & (twice.label == label)).sum())}"
            f" records for label {label!r}: several boxes of one label are one decision; "
            "pass them together to pointing_hit"
        )
    return df


def pointing_game(records, *, labels, level: float = 0.95):
    """Per-label Pointing Game table from one record per (image, label) present:
    ``label, hits, support`` (images with the label), ``accuracy`` = hits / support and its
    Wilson interval ``ci_low, ci_high``; with a ``chance`` column (:func:`random_hit_chance`)
    also ``random``, the mean chance = expected accuracy of a random pointer. A label of
    ``labels`` without records has support 0 and NaN values. Rows follow ``labels``."""
    import pandas as pd

    labels = list(labels)
    df = _records(records, labels)
    rows = []
    for label in labels:
        part = df[df["label"] == label]
        hits, support = int(part["hit"].astype(int).sum()), len(part)
        ci = wilson_ci(hits, support, level) if support else None
        row = {"label": label, "hits": hits, "support": support}
        row["accuracy"] = ci.value if ci else math.nan
        row["ci_low"], row["ci_high"] = (ci.low, ci.high) if ci else (math.nan, math.nan)
        if "chance" in df.columns:
            row["random"] = float(part["chance"].astype(float).mean()) if support else math.nan
        rows.append(row)
    return pd.DataFrame(rows)


def _means(total: float, support: int, n_images: int, per_label) -> dict:
    return {
        "support_weighted": total / support if support else None,
        "paper_formula": total / n_images if n_images else None,
        "macro": float(np.mean(per_label)) if len(per_label) else None,
    }


def _value(x) -> float | None:
    return float(x) if math.isfinite(x) else None


def pointing_summary(records, *, labels, level: float = 0.95) -> dict:
    """The Pointing Game as chapter 02 writes it to metrics.json (JSON-ready, None for
    undefined values). ``per_label``: hits, support, accuracy, ci; ``support``: total
    (image, label) pairs; ``n_images``: distinct images with a finding; the means over the
    labels with support: ``support_weighted`` = total hits / total support,
    ``paper_formula`` = total hits / n_images (what the authors' code calls the weighted
    mean: weights support / n_images, which sum to more than 1 when images carry several
    labels) and ``macro`` (unweighted mean of the label accuracies). ``random``: the same
    three means of the random pointer (records with ``chance``), else None."""
    df = _records(records, list(labels))
    table = pointing_game(df, labels=labels, level=level)
    used = table[table["support"] > 0]
    support, n_images = int(used["support"].sum()), int(df["image"].nunique())
    out = {"per_label": {}}
    for row in table.itertuples(index=False):
        entry = {"hits": int(row.hits), "support": int(row.support)}
        entry["accuracy"] = _value(row.accuracy)
        entry["ci"] = [float(row.ci_low), float(row.ci_high)] if row.support else None
        if "random" in table.columns:
            entry["random"] = _value(row.random)
        out["per_label"][row.label] = entry
    out |= {"support": support, "n_images": n_images}
    out |= _means(int(used["hits"].sum()), support, n_images, used["accuracy"].tolist())
    out["random"] = None
    if "random" in table.columns:
        expected = float((used["random"] * used["support"]).sum())
        out["random"] = _means(expected, support, n_images, used["random"].tolist())
    return out


def image_records(
    image: str,
    maps,
    boxes,
    *,
    tolerance_px: float,
    breast_mask=None,
    min_value: float | None = None,
    above: float | None = None,
) -> list[dict]:
    """The Pointing Game records of one image: for each label of ``boxes`` (label -> boxes
    in map pixels) with at least one box, :func:`pointing_hit` on ``maps[label]`` and, with
    a ``breast_mask`` (the ROI's), the random pointer's :func:`random_hit_chance`. A label
    without a map (absent from the model's training) and a map shaped unlike the ROI are
    errors naming them."""
    out = []
    for label, label_boxes in boxes.items():
        if not len(label_boxes):
            continue
        if label not in maps:
            raise ValueError(f"image {image!r}: no map for label {label!r} (not a model output)")
        name = f"{label} map of image {image!r}"
        if breast_mask is not None:  # the map must be shaped like the ROI
            check_map(maps[label], np.shape(breast_mask), name)
        hit = pointing_hit(
            maps[label], label_boxes, tolerance_px=tolerance_px, min_value=min_value,
            above=above, name=name,
        )  # fmt: skip
        record = {"image": image, "label": label, "hit": hit}
        if breast_mask is not None:
            chance = random_hit_chance(breast_mask, label_boxes, tolerance_px=tolerance_px)
            record["chance"] = chance
        out.append(record)
    return out
