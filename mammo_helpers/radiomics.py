"""Handcrafted radiomic features of a mammogram and the radiomics + CNN-score classifier.

Chapter 05 reproduces Sánchez Fuentes & Monsalve Durán (2025, §4.5): per patient, 4 views x
34 handcrafted features (the paper computes them with Pertuz's OpenBreast toolbox: intensity
distribution, texture, morphology of the breast and of the dense tissue) + 4 CNN scores (one
per view) + age = 141 attributes, classified by ``StandardScaler -> PCA ->
GradientBoostingClassifier`` tuned by a grid search (the paper's Table 1). This module is an
open re-implementation of such a feature set, not OpenBreast itself.

Conventions. Every feature is computed inside the breast ``mask`` on the image min-max scaled
to [0, 1] by the breast's own minimum and maximum (so the features do not depend on the
detector's gain or offset). Texture matrices use the scaled image quantised to ``LEVELS`` = 32
grey levels (``min(floor(32 x), 31)``). The 34 features, by family (``FEATURE_NAMES``):

* ``int_`` (11), intensities inside the mask: mean, population standard deviation (ddof 0),
  skewness and excess kurtosis (``scipy.stats``, biased), Shannon entropy in bits of a
  64-bin histogram over [0, 1], the 5th/25th/50th/75th/95th percentiles (numpy's linear
  interpolation) and the balance ``(p95 - mean) / (mean - p05)`` (a robust asymmetry measure
  of the mammographic texture literature; it replaces an IQR that would be ``p75 - p25``).
* ``glcm_`` (6), grey-level co-occurrence (``skimage.feature.graycomatrix``; symmetric,
  distances 1 and 3 px, angles 0, 45, 90, 135 degrees, each matrix normalised, properties
  averaged over the 8 matrices): contrast, dissimilarity, homogeneity, energy, correlation
  and entropy in bits (entropy rather than ASM, which is energy squared). Pixel pairs with a
  pixel outside the mask are left out.
* ``glrlm_`` (5), grey-level run lengths (written here: no library has them) along rows and
  columns inside the mask, averaged over the two directions: short- and long-run emphasis,
  grey-level and run-length non-uniformity normalised by the squared number of runs, and the
  run percentage (runs / mask pixels).
* ``wav_`` (3), Haar wavelet (``pywt.wavedec2``, 3 levels, periodisation): the share of the
  breast's intensity energy (scaled image minus its in-breast mean, zero outside the mask) in
  the detail bands (H + V + D) of level 1 (finest), 2 and 3.
* ``sharp_gradient`` (1): mean Sobel gradient magnitude (``scipy.ndimage.sobel`` / 8, so in
  scaled-intensity units per pixel) over the mask pixels whose 3x3 neighbourhood is inside
  the mask (the breast's skin line and the image border are left out).
* ``fractal_dimension`` (1): box-counting dimension of the dense-tissue mask (below), boxes
  of 2, 4, 8, ... px up to a quarter of the image's shorter side (the same scales for every
  image of a given size; 1-px boxes are left out, they only count pixels).
* ``breast_`` (4), the breast mask as one region (``skimage.measure.regionprops``): area
  fraction of the image, eccentricity, solidity and extent.
* ``dense_`` (3), the dense tissue = breast pixels above the Otsu threshold
  (``skimage.filters.threshold_otsu``) of the scaled in-breast intensities: its share of the
  breast area, its mean scaled intensity over the breast's, and its number of 8-connected
  components per 1000 breast pixels.

Features depend on the pixel size (runs, gradients, wavelet levels, component counts): compute
them at one resolution for a whole cohort. A feature that comes out non-finite (a constant
breast, a mask too thin for a 3x3 neighbourhood, no dense tissue) is an error naming the image
and the features, never a silent fill.
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import pywt
from scipy import ndimage, stats
from skimage.feature import graycomatrix, graycoprops
from skimage.filters import threshold_otsu
from skimage.measure import regionprops

from mammo_helpers.vocab import FOUR_VIEWS

__all__ = [
    "COARSE_GRID",
    "FEATURE_NAMES",
    "PAPER_BEST",
    "PAPER_GRID",
    "feature_table",
    "fit_radiomics",
    "image_features",
    "patient_vectors",
    "radiomics_pipeline",
]

#: Grey levels of the texture matrices (GLCM, GLRLM).
LEVELS = 32
#: Bins of the intensity histogram behind ``int_entropy``.
HIST_BINS = 64
#: GLCM pixel-pair offsets: distances (px) and angles (radians).
GLCM_DISTANCES = (1, 3)
GLCM_ANGLES = (0.0, np.pi / 4, np.pi / 2, 3 * np.pi / 4)
#: Haar decomposition levels of the ``wav_`` features.
WAVELET_LEVELS = 3

_INTENSITY = ("mean", "std", "skewness", "kurtosis", "entropy")
_PERCENTILES = (5, 25, 50, 75, 95)
_GLCM = ("contrast", "dissimilarity", "homogeneity", "energy", "correlation", "entropy")
_GLRLM = ("sre", "lre", "gln", "rln", "rp")

FEATURE_NAMES: tuple[str, ...] = (
    *(f"int_{n}" for n in _INTENSITY),
    *(f"int_p{p:02d}" for p in _PERCENTILES),
    "int_balance",
    *(f"glcm_{n}" for n in _GLCM),
    *(f"glrlm_{n}" for n in _GLRLM),
    *(f"wav_energy_l{k}" for k in range(1, WAVELET_LEVELS + 1)),
    "sharp_gradient",
    "fractal_dimension",
    "breast_area_frac",
    "breast_eccentricity",
    "breast_solidity",
    "breast_extent",
    "dense_area_frac",
    "dense_mean_intensity_ratio",
    "dense_n_components",
)

#: The paper's Table 1 ranges as a grid (3 values each: 729 combinations x folds; hours on a CPU).
PAPER_GRID: dict[str, list] = {
    "pca__n_components": [10, 20, 30],
    "gbm__learning_rate": [0.05, 0.1, 0.2],
    "gbm__max_depth": [2, 3, 4],
    "gbm__min_samples_leaf": [1, 10, 20],
    "gbm__n_estimators": [200, 1000, 10000],
    "gbm__subsample": [0.6, 0.8, 1.0],
}
#: A small subset of ``PAPER_GRID`` for the CPU default runs (8 combinations).
COARSE_GRID: dict[str, list] = {
    "pca__n_components": [10, 20],
    "gbm__learning_rate": [0.05, 0.2],
    "gbm__max_depth": [2],
    "gbm__min_samples_leaf": [5, 20],
    "gbm__n_estimators": [200],
    "gbm__subsample": [0.8],
}
#: The hyperparameters the paper selected (its random_state is 42).
PAPER_BEST: dict[str, float | int] = {
    "pca__n_components": 20,
    "gbm__learning_rate": 0.05,
    "gbm__max_depth": 2,
    "gbm__min_samples_leaf": 20,
    "gbm__n_estimators": 200,
    "gbm__subsample": 0.8,
}


# --------------------------------------------------------------------------- one image


def _validated(img, mask, where: str) -> tuple[np.ndarray, np.ndarray]:
    """``(float image, boolean mask)`` or ``ValueError`` naming ``where`` and the problem."""
    x = np.asarray(img)
    if x.ndim != 2:
        raise ValueError(f"{where}: image must be 2-D (rows, cols), got shape {x.shape}")
    if x.dtype.kind not in "biuf":
        raise ValueError(f"{where}: image must be numeric, got dtype {x.dtype}")
    x = x.astype(np.float64)
    if not np.isfinite(x).all():
        r, c = np.argwhere(~np.isfinite(x))[0]
        n_bad = int((~np.isfinite(x)).sum())
        raise ValueError(f"{where}: {n_bad} non-finite pixel(s), the first at (row {r}, col {c})")
    m = np.ones(x.shape, bool) if mask is None else np.asarray(mask)
    if m.shape != x.shape:
        raise ValueError(f"{where}: mask has shape {m.shape}, the image {x.shape}")
    if m.dtype.kind != "b" and not np.isin(m, (0, 1)).all():
        raise ValueError(f"{where}: mask must be boolean (or 0/1), got dtype {m.dtype}")
    m = m.astype(bool)
    if not m.any():
        raise ValueError(f"{where}: the breast mask is empty")
    return x, m


def _scaled(x: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``x`` min-max scaled to [0, 1] by the in-mask extremes, 0 outside the mask (all 0 when
    the breast is constant). Chapter 05, through :func:`image_features`."""
    lo, hi = x[mask].min(), x[mask].max()
    s = (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)
    return np.where(mask, s, 0.0)


def _quantised(s: np.ndarray, levels: int = LEVELS) -> np.ndarray:
    """Grey level ``min(floor(levels * s), levels - 1)`` of a [0, 1] image (integers)."""
    return np.minimum((s * levels).astype(np.int64), levels - 1)


def _intensity_features(v: np.ndarray) -> dict[str, float]:
    """The ``int_`` features of the scaled in-mask values ``v`` (chapter 05)."""
    hist, _ = np.histogram(v, bins=HIST_BINS, range=(0.0, 1.0))
    pct = np.percentile(v, _PERCENTILES)
    mean = v.mean()
    out = {
        "int_mean": mean,
        "int_std": v.std(),
        "int_skewness": stats.skew(v),
        "int_kurtosis": stats.kurtosis(v),
        "int_entropy": stats.entropy(hist, base=2),
    }
    out.update({f"int_p{p:02d}": q for p, q in zip(_PERCENTILES, pct, strict=True)})
    out["int_balance"] = (pct[-1] - mean) / (mean - pct[0])
    return out


def _glcm_features(
    q: np.ndarray,
    mask: np.ndarray,
    distances: Sequence[int] = GLCM_DISTANCES,
    angles: Sequence[float] = GLCM_ANGLES,
    levels: int = LEVELS,
) -> dict[str, float]:
    """The ``glcm_`` features of grey levels ``q`` inside ``mask``, averaged over the matrices
    of ``distances`` x ``angles``. Outside pixels get an extra level whose row and column are
    dropped before normalising. An empty matrix makes every feature NaN; a matrix with one
    grey level makes the correlation NaN (undefined, skimage would say 1). Chapter 05."""
    img = np.where(mask, q, levels).astype(np.uint8)
    counts = graycomatrix(img, list(distances), list(angles), levels=levels + 1, symmetric=True)
    p = counts[:levels, :levels].astype(np.float64)
    sums = p.sum(axis=(0, 1))
    if (sums == 0).any():
        return {f"glcm_{n}": np.nan for n in _GLCM}
    p /= sums
    out = {f"glcm_{n}": graycoprops(p, n).mean() for n in _GLCM if n != "entropy"}
    out["glcm_entropy"] = graycoprops(p, "entropy").mean() / np.log(2)
    i = np.arange(levels)[:, None, None]
    marginal = p.sum(axis=1)
    variance = (marginal * i**2).sum(axis=0) - (marginal * i).sum(axis=0) ** 2
    if (variance < 1e-12).any():
        out["glcm_correlation"] = np.nan
    return out


def _glrlm(q: np.ndarray, mask: np.ndarray, levels: int = LEVELS) -> np.ndarray:
    """Grey-level run-length matrix of the rows of ``q`` inside ``mask``: ``R[g, n - 1]`` =
    number of maximal runs of ``n`` consecutive in-mask pixels of level ``g``. Pass the
    transposes for the column runs. Chapter 05, through :func:`image_features`."""
    lab = np.pad(np.where(mask, q, -1), ((0, 0), (1, 1)), constant_values=-1).ravel()
    change = lab[1:] != lab[:-1]
    starts = np.flatnonzero(change & (lab[1:] >= 0)) + 1
    ends = np.flatnonzero(change & (lab[:-1] >= 0)) + 1
    r = np.zeros((levels, q.shape[1]), np.int64)
    np.add.at(r, (lab[starts], ends - starts - 1), 1)
    return r


def _run_features(r: np.ndarray, n_pixels: int) -> np.ndarray:
    """SRE, LRE, normalised GLN and RLN, run percentage of one run-length matrix ``r``."""
    n = np.arange(1, r.shape[1] + 1, dtype=np.float64)
    runs = r.sum()
    return np.array(
        [
            (r / n**2).sum() / runs,
            (r * n**2).sum() / runs,
            (r.sum(axis=1) ** 2).sum() / runs**2,
            (r.sum(axis=0) ** 2).sum() / runs**2,
            runs / n_pixels,
        ]
    )


def _glrlm_features(q: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """The ``glrlm_`` features: row and column run features averaged (chapter 05)."""
    n_pixels = int(mask.sum())
    rows = _run_features(_glrlm(q, mask), n_pixels)
    cols = _run_features(_glrlm(q.T, mask.T), n_pixels)
    return {f"glrlm_{n}": v for n, v in zip(_GLRLM, (rows + cols) / 2, strict=True)}


def _wavelet_energies(x: np.ndarray, levels: int = WAVELET_LEVELS) -> tuple[np.ndarray, float]:
    """``(detail, total)``: sum of squared Haar detail coefficients (H + V + D) per level,
    finest first, and the sum of squares of all coefficients (= of ``x`` by Parseval when
    the sides are multiples of ``2**levels``). Chapter 05, through :func:`image_features`."""
    coeffs = pywt.wavedec2(np.asarray(x, np.float64), "haar", mode="periodization", level=levels)
    detail = np.array([sum(float(np.sum(c**2)) for c in bands) for bands in coeffs[:0:-1]])
    return detail, float(detail.sum() + np.sum(coeffs[0] ** 2))


def _wavelet_features(s: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """The ``wav_`` features: detail energy shares of the mean-removed breast (chapter 05)."""
    x = np.where(mask, s - s[mask].mean(), 0.0)
    detail, total = _wavelet_energies(x)
    return {f"wav_energy_l{k}": e / total for k, e in enumerate(detail, start=1)}


def _sharpness(s: np.ndarray, mask: np.ndarray) -> float:
    """Mean Sobel gradient magnitude / 8 over the mask pixels whose 3x3 neighbourhood is in
    the mask (a ramp of slope ``a`` per px gives ``a``); NaN if there is none. Chapter 05."""
    inner = ndimage.binary_erosion(mask, np.ones((3, 3), bool), border_value=0)
    if not inner.any():
        return np.nan
    magnitude = np.hypot(ndimage.sobel(s, axis=0), ndimage.sobel(s, axis=1)) / 8
    return float(magnitude[inner].mean())


def _box_counting_dimension(binary) -> float:
    """Box-counting dimension of a boolean image: minus the least-squares slope of log(number
    of ``b x b`` boxes of a grid anchored at (0, 0) holding a True pixel) against log b, for
    b = 2, 4, 8, ... up to a quarter of the shorter side. NaN when nothing is True or fewer
    than two box sizes fit. Chapter 05 (``fractal_dimension`` of the dense-tissue mask)."""
    b = np.asarray(binary, bool)
    sizes = [2**k for k in range(1, 32) if 2**k <= min(b.shape) / 4]
    if not b.any() or len(sizes) < 2:
        return np.nan
    counts = []
    for size in sizes:
        h, w = -(-b.shape[0] // size) * size, -(-b.shape[1] // size) * size
        padded = np.zeros((h, w), bool)
        padded[: b.shape[0], : b.shape[1]] = b
        counts.append(padded.reshape(h // size, size, w // size, size).any(axis=(1, 3)).sum())
    return float(-np.polyfit(np.log(sizes), np.log(counts), 1)[0])


def _morphology_features(mask: np.ndarray) -> dict[str, float]:
    """The ``breast_`` features of the whole mask taken as one region (chapter 05)."""
    region = regionprops(mask.astype(np.uint8))[0]
    return {
        "breast_area_frac": mask.mean(),
        "breast_eccentricity": region.eccentricity,
        "breast_solidity": region.solidity,
        "breast_extent": region.extent,
    }


def _dense_mask(s: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Breast pixels above the Otsu threshold of the in-breast scaled intensities."""
    return mask & (s > threshold_otsu(s[mask]))


def _dense_features(s: np.ndarray, mask: np.ndarray, dense: np.ndarray) -> dict[str, float]:
    """The ``dense_`` features; the intensity ratio is NaN without dense tissue (chapter 05)."""
    n_breast = int(mask.sum())
    _, n_components = ndimage.label(dense, structure=np.ones((3, 3), bool))
    ratio = s[dense].mean() / s[mask].mean() if dense.any() else np.nan
    return {
        "dense_area_frac": dense.sum() / n_breast,
        "dense_mean_intensity_ratio": ratio,
        "dense_n_components": 1000.0 * n_components / n_breast,
    }


def image_features(img, mask=None, *, where: str = "") -> dict[str, float]:
    """The 34 radiomic features (``FEATURE_NAMES`` order) of one view (chapter 05).

    ``img``: a 2-D numeric array (any range); ``mask``: the boolean breast mask of the same
    shape (e.g. :func:`mammo_helpers.preprocess.otsu_breast_mask`), ``None`` = the whole
    image is the breast. ``ValueError`` naming ``where`` (an image id or path) for a wrong
    shape, a non-finite pixel (anywhere), an empty mask, or non-finite features (a constant
    breast, no dense tissue, a mask too thin for the texture and gradient features).
    """
    where = where or "image"
    x, m = _validated(img, mask, where)
    s = _scaled(x, m)
    q = _quantised(s)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # NaNs are reported below
        dense = _dense_mask(s, m)
        values = {
            **_intensity_features(s[m]),
            **_glcm_features(q, m),
            **_glrlm_features(q, m),
            **_wavelet_features(s, m),
            "sharp_gradient": _sharpness(s, m),
            "fractal_dimension": _box_counting_dimension(dense),
            **_morphology_features(m),
            **_dense_features(s, m, dense),
        }
    bad = [n for n in FEATURE_NAMES if not np.isfinite(values[n])]
    if bad:
        raise ValueError(
            f"{where}: non-finite radiomic features {', '.join(bad)} (constant image inside "
            f"the mask? empty dense-tissue mask? mask too thin?)"
        )
    return {n: float(values[n]) for n in FEATURE_NAMES}


def feature_table(
    images: Iterable, masks, ids: Iterable, *, progress: bool = False
) -> pd.DataFrame:
    """One row of :func:`image_features` per image, index ``image_id`` = ``ids`` (each id is
    the ``where`` of its errors), columns ``FEATURE_NAMES``. ``masks``: one per image, or
    ``None`` (whole images). Chapter 05."""
    from tqdm.auto import tqdm

    ids = list(ids)
    if len(set(ids)) != len(ids):
        dup = pd.Index(ids)[pd.Index(ids).duplicated()][0]
        raise ValueError(f"feature_table: duplicate image id {dup!r}")
    masks = [None] * len(ids) if masks is None else masks
    rows = []
    items = zip(images, masks, ids, strict=True)
    for img, mask, image_id in tqdm(items, total=len(ids), desc="radiomics", disable=not progress):
        rows.append(image_features(img, mask, where=str(image_id)))
    index = pd.Index(ids, name="image_id")
    return pd.DataFrame(rows, index=index, columns=list(FEATURE_NAMES), dtype=np.float64)


# --------------------------------------------------------------------------- one patient


def _view_label(view) -> str:
    """``'L-CC'`` for ``('L', 'CC')`` or ``'L-CC'``."""
    return view if isinstance(view, str) else f"{view[0]}-{view[1]}"


def _view_image_ids(images: pd.DataFrame, labels: list[str]) -> pd.DataFrame:
    """patient_id x view label -> image_id; ``ValueError`` naming the patient for a missing
    or duplicated view."""
    df = images.assign(_view=images["laterality"].astype(str) + "-" + images["view"].astype(str))
    sel = df[df["_view"].isin(labels)]
    sizes = sel.groupby(["patient_id", "_view"]).size()
    if (sizes > 1).any():
        patient, view = sizes[sizes > 1].index[0]
        raise ValueError(f"patient {patient!r} has {sizes.max()} images of view {view}")
    wide = sel.pivot(index="patient_id", columns="_view", values="image_id")
    wide = wide.reindex(index=pd.unique(df["patient_id"]), columns=labels)
    if wide.isna().any(axis=None):
        patient = wide.index[wide.isna().any(axis=1)][0]
        missing = [v for v in labels if pd.isna(wide.at[patient, v])]
        raise ValueError(f"patient {patient!r} lacks view(s) {', '.join(missing)}")
    return wide


def _patient_ages(images: pd.DataFrame, patients: pd.Index) -> pd.Series:
    """One age per patient; ``ValueError`` naming a patient with no or disagreeing ages."""
    ages = images.groupby("patient_id")["age"].agg(["min", "max"]).reindex(patients)
    bad = ages.index[ages["min"].isna() | (ages["min"] != ages["max"])]
    if len(bad):
        row = ages.loc[bad[0]]
        raise ValueError(
            f"patient {bad[0]!r}: ages {row['min']} .. {row['max']} (missing or disagree)"
        )
    return ages["min"].astype(np.float64)


def _lookup(values: pd.DataFrame | pd.Series, ids: pd.Series, what: str) -> np.ndarray:
    """``values`` at image ids ``ids``; ``ValueError`` naming the first image id missing."""
    missing = ~ids.isin(values.index)
    if not missing.any() and isinstance(values, pd.Series):
        missing = values.reindex(ids).isna().to_numpy()
    if missing.any():
        raise ValueError(f"no {what} for image_id {ids[np.asarray(missing)].iloc[0]!r}")
    return values.reindex(ids).to_numpy(np.float64)


def patient_vectors(
    features: pd.DataFrame, images: pd.DataFrame, scores, *, views=FOUR_VIEWS
) -> pd.DataFrame:
    """The paper's per-patient vector (chapter 05): one row per patient (index
    ``patient_id``), columns ``'{view}__{feature}'`` for each view then feature, then
    ``'{view}__cnn_score'`` per view, then ``age``: 4 x 34 + 4 + 1 = 141 with the default
    views (``vocab.FOUR_VIEWS`` order, labelled ``'L-CC'`` ...).

    ``features``: :func:`feature_table` (index image_id); ``images``: columns image_id,
    patient_id, laterality, view, age (other views are ignored); ``scores``: image_id -> CNN
    score (Series or mapping). ``ValueError`` naming the patient (missing or duplicated view,
    missing or disagreeing ages) or the image id (no features, no score).
    """
    labels = [_view_label(v) for v in views]
    wide = _view_image_ids(images, labels)
    scores = scores if isinstance(scores, pd.Series) else pd.Series(dict(scores), dtype=float)
    feats = features[list(FEATURE_NAMES)]
    blocks, columns = [], []
    for label in labels:
        blocks.append(_lookup(feats, wide[label], "radiomic features"))
        columns += [f"{label}__{n}" for n in FEATURE_NAMES]
    for label in labels:
        blocks.append(_lookup(scores, wide[label], "CNN score")[:, None])
        columns.append(f"{label}__cnn_score")
    blocks.append(_patient_ages(images, wide.index).to_numpy()[:, None])
    index = pd.Index(wide.index, name="patient_id")
    return pd.DataFrame(np.hstack(blocks), index=index, columns=[*columns, "age"])


# --------------------------------------------------------------------------- the classifier


def radiomics_pipeline(seed: int = 42):
    """The paper's classifier (chapter 05): ``scale`` (StandardScaler) -> ``pca`` (PCA) ->
    ``gbm`` (GradientBoostingClassifier), both seeded with ``seed``; sklearn defaults
    otherwise (set them with ``PAPER_BEST`` or a grid)."""
    from sklearn.decomposition import PCA
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    return Pipeline(
        [
            ("scale", StandardScaler()),
            ("pca", PCA(random_state=seed)),
            ("gbm", GradientBoostingClassifier(random_state=seed)),
        ]
    )


def _checked_xy(X, y, groups) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """``X`` as a DataFrame, ``y`` as 0/1 ints, ``groups`` as an array, or ``ValueError``."""
    X = X if isinstance(X, pd.DataFrame) else pd.DataFrame(np.asarray(X, dtype=np.float64))
    values = X.to_numpy(np.float64)
    if not np.isfinite(values).all():
        r, c = np.argwhere(~np.isfinite(values))[0]
        raise ValueError(
            f"X has a non-finite value in column {X.columns[c]!r} at row {X.index[r]!r}"
        )
    y, groups = np.asarray(y), np.asarray(groups)
    if len(y) != len(X) or len(groups) != len(X):
        raise ValueError(f"X has {len(X)} rows, y {len(y)}, groups {len(groups)}")
    if not np.isin(y, (0, 1)).all() or len(np.unique(y)) != 2:
        raise ValueError(f"y must be binary 0/1 with both classes, got values {np.unique(y)}")
    return X, y.astype(np.int64), groups


def _check_groups(y: np.ndarray, groups: np.ndarray, n_splits: int) -> None:
    """Each class must appear in at least ``n_splits`` groups (else a fold lacks it)."""
    for label in (0, 1):
        n_groups = len(np.unique(groups[y == label]))
        if n_groups < n_splits:
            raise ValueError(
                f"class {label} appears in {n_groups} groups, fewer than n_splits={n_splits}"
            )


def _clipped_grid(grid, limit: int):
    """``grid`` (a dict or list of dicts) with integer ``pca__n_components`` values above
    ``limit`` replaced by ``limit`` (duplicates dropped), with a warning naming them."""
    grids = [grid] if isinstance(grid, Mapping) else list(grid)
    out = []
    for g in grids:
        g = {k: list(v) for k, v in g.items()}
        values = g.get("pca__n_components", [])
        too_big = [v for v in values if isinstance(v, numbers.Integral) and v > limit]
        if too_big:
            warnings.warn(
                f"pca__n_components {too_big} exceed min(training-fold size, n_features) = "
                f"{limit}: clipped to {limit}",
                stacklevel=3,
            )
            clipped = [min(v, limit) if isinstance(v, numbers.Integral) else v for v in values]
            g["pca__n_components"] = list(dict.fromkeys(clipped))
        out.append(g)
    return out[0] if isinstance(grid, Mapping) else out


def fit_radiomics(
    X, y, groups, *, grid=COARSE_GRID, n_splits=5, seed=42, n_jobs=1, scheduler="serial"
):
    """Grid search of :func:`radiomics_pipeline` (chapter 05), scored by ROC AUC over
    ``StratifiedGroupKFold(n_splits, shuffle=True, random_state=seed)`` folds of ``groups``
    (e.g. matched case-control pair ids: a pair stays in one fold), refitted on all rows.

    ``X``: patients x attributes (:func:`patient_vectors`), all finite; ``y``: 0/1 with both
    classes, each in at least ``n_splits`` groups. Integer ``pca__n_components`` values above
    the feasible maximum (min(smallest training fold, n_features)) are clipped to it, with a
    warning. The folds are ``search.cv`` (a list of (train, test) index arrays); read
    ``best_params_``, ``best_score_``, ``predict_proba`` from the returned ``GridSearchCV``.
    Any failing fit raises (``error_score='raise'``).

    ``scheduler`` is ``DASK_SCHEDULER``: ``"serial"`` fits here on ``n_jobs`` processes;
    ``"local"``, a scheduler address or a client spread the grid's fits (one per setting
    and fold) over a Dask cluster through joblib's Dask backend, with the same result.
    """
    from sklearn.model_selection import GridSearchCV, StratifiedGroupKFold

    from mammo_helpers import tasks

    X, y, groups = _checked_xy(X, y, groups)
    _check_groups(y, groups, n_splits)
    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    folds = list(splitter.split(X, y, groups))
    limit = min(min(len(train) for train, _ in folds), X.shape[1])
    search = GridSearchCV(
        radiomics_pipeline(seed),
        _clipped_grid(grid, limit),
        scoring="roc_auc",
        cv=folds,
        refit=True,
        n_jobs=n_jobs if tasks.check_scheduler(scheduler) == "serial" else -1,
        error_score="raise",
    )
    if tasks.check_scheduler(scheduler) == "serial":
        return search.fit(X, y)
    import joblib

    with tasks.client(scheduler) as client, joblib.parallel_backend("dask", client=client):
        return search.fit(X, y)
