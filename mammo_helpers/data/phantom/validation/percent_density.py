"""Automatic area percent density from the image alone: a LIBRA-like proxy.

:func:`percent_density` splits the (smoothed, normalised) intensities inside the breast
into fatty and dense by Otsu's threshold or by 1-D k-means with an Otsu split of the
cluster centres. It is a simple *proxy* for LIBRA (Keller BM et al. Estimation of breast
percent density in raw and processed full field digital mammography images via adaptive
fuzzy c-means clustering and support vector machine segmentation. Med Phys 39:4903, 2012):
no fuzzy c-means and no SVM. Chapter 00 shows it on processed images, where vendor
processing removes absolute density, beside the physics estimate of
:mod:`.volumetric_density`; see :func:`~.density_checks.density_check`.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ._arrays import check_image_mask, check_number


def otsu_split_of_clusters(centres: np.ndarray, counts: np.ndarray) -> int:
    """Index k so clusters ``[k:]`` (sorted by centre) are 'dense', by Otsu's criterion.

    Chooses the split of the cluster-quantised intensities that maximises the between-class
    variance w0 * w1 * (mu0 - mu1)**2, weighting each cluster centre by its pixel count.
    """
    best_k, best = 1, -1.0
    tot = counts.sum()
    for k in range(1, len(centres)):
        w0, w1 = counts[:k].sum() / tot, counts[k:].sum() / tot
        if w0 == 0 or w1 == 0:
            continue
        mu0 = np.average(centres[:k], weights=counts[:k])
        mu1 = np.average(centres[k:], weights=counts[k:])
        between = w0 * w1 * (mu0 - mu1) ** 2
        if between > best:
            best_k, best = k, between
    return best_k


def percent_density(
    image,
    breast_mask,
    *,
    method: str = "otsu",
    n_clusters: int = 4,
    exclude=None,
    smooth_sigma: float = 1.0,
    percentiles: tuple[float, float] = (1.0, 99.0),
    random_state: int = 0,
) -> float:
    """Automatic area percent density (0-100) inside ``breast_mask``: a LIBRA-like proxy.

    This is *not* LIBRA (Keller et al., Med Phys 39:4903, 2012; fuzzy c-means + SVM), only a
    simple stand-in for checks and baselines: intensities inside the breast (minus
    ``exclude``, e.g. the pectoral muscle) are smoothed with a mask-aware Gaussian of
    ``smooth_sigma`` px, scaled to [0, 1] between the given robust percentiles and split into
    fatty / dense:

    * ``method='otsu'``: Otsu threshold of the breast intensities;
    * ``method='kmeans'``: 1-D k-means (scikit-learn, ``n_clusters``, 4 k-means++ starts
      seeded by ``random_state``, run on a 512-bin histogram with counts as weights) on the
      intensities; the clusters above the Otsu split of the cluster centres (weighted by
      cluster size) are dense.

    Dense tissue is assumed brighter (the usual display convention). Returns
    100 * dense area / breast area. Known limitation (shared with any Otsu-type rule): with
    few dense pixels and a spread-out fat signal (thickness fall-off near the skin) the split
    lands inside the fat and PD of fatty breasts is overestimated - check it against the
    generator's truth before quoting numbers.
    """
    img, mask = check_image_mask(image, breast_mask, name="image")
    if exclude is not None:
        exclude = np.asarray(exclude).astype(bool)
        if exclude.shape != mask.shape:
            raise ValueError(f"exclude has shape {exclude.shape}, the image {img.shape}")
        mask = mask & ~exclude
    mask = mask & np.isfinite(img)
    if not mask.any():
        raise ValueError("percent_density: breast_mask (minus exclude) has no pixel")
    if method not in ("otsu", "kmeans"):
        raise ValueError(f"method must be 'otsu' or 'kmeans', got {method!r}")
    check_number("smooth_sigma", smooth_sigma, low=0)
    check_number("n_clusters", n_clusters, low=2, integer=True)
    lo_pct, hi_pct = (check_number("percentiles", q, low=0, high=100) for q in percentiles)
    if not lo_pct < hi_pct:
        raise ValueError(f"percentiles must be (low, high) with low < high, got {percentiles!r}")

    if smooth_sigma > 0:
        m = mask.astype(float)
        num = ndimage.gaussian_filter(np.where(mask, img, 0.0), smooth_sigma)
        den = ndimage.gaussian_filter(m, smooth_sigma)
        vals = num[mask] / den[mask]
    else:
        vals = img[mask]
    lo, hi = np.percentile(vals, percentiles)
    if not hi > lo:
        return 0.0
    vals = np.clip((vals - lo) / (hi - lo), 0.0, 1.0)

    if method == "otsu":
        from skimage.filters import threshold_otsu

        dense = vals > threshold_otsu(vals)
    else:
        from sklearn.cluster import KMeans
        from threadpoolctl import threadpool_limits

        # 1-D k-means on a fine histogram (weights = counts): exact enough and fast
        counts, edges = np.histogram(vals, bins=512, range=(0.0, 1.0))
        centres_h = 0.5 * (edges[:-1] + edges[1:])
        nz = counts > 0
        k_eff = min(n_clusters, int(nz.sum()))
        km = KMeans(n_clusters=k_eff, n_init=4, random_state=random_state)
        with threadpool_limits(1):  # tiny problem: threads only add overhead
            km.fit(centres_h[nz].reshape(-1, 1), sample_weight=counts[nz])
        centres = np.sort(km.cluster_centers_.ravel())
        labels = np.argmin(np.abs(vals[:, None] - centres[None, :]), axis=1)
        sizes = np.bincount(labels, minlength=len(centres)).astype(float)
        k = otsu_split_of_clusters(centres, sizes)
        dense = labels >= k
    return float(100.0 * dense.mean())
