"""Realism checks for mammograms (real or synthetic): how close is the phantom to real images?

Used by notebook 00 (data): the synthetic cohort is compared with published target values
(``notes/phantom.md`` section 2). Every function is generic: it takes plain 2-D arrays,
boolean masks and, where physical units matter, the pixel spacing in mm.

* :func:`power_spectrum_beta` - anatomical-noise exponent beta of P(f) ~ 1/f**beta
  (targets: DM about 2.8-3.3, Burgess 2001; Chen, Abbey & Boone 2012; fit range 0.2-0.7 /mm
  as in Cockmartin 2013).
* :func:`percent_density` - an automatic area percent-density estimate. It is a simple
  *proxy* for LIBRA (Keller et al., Med Phys 39:4903, 2012), not LIBRA: no fuzzy c-means and
  no SVM, only Otsu or k-means on smoothed, normalised intensities inside the breast.
* :func:`contrast_to_noise` - lesion CNR against an annulus R..2R around the lesion.
* :func:`channelized_hotelling` / :func:`npwe_observer` - model-observer AUC and d' for
  signal-present vs signal-absent ROIs (with :func:`extract_rois`,
  :func:`sample_background_centers`, :func:`laguerre_gauss_channels`).
* :func:`noise_variance_fit` - local variance against local mean (quantum-noise linearity).

Random choices (ROI placement, train/test split, bootstrap) take ``rng``: ``None`` means a
fixed seed 0, so results are reproducible by default; pass an int or a
``numpy.random.Generator`` to change it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage, special, stats
from scipy.signal.windows import hann

__all__ = [
    "BetaResult",
    "CNRResult",
    "NoiseFitResult",
    "ObserverResult",
    "channelized_hotelling",
    "contrast_to_noise",
    "extract_rois",
    "laguerre_gauss_channels",
    "noise_variance_fit",
    "npwe_observer",
    "percent_density",
    "power_spectrum_beta",
    "sample_background_centers",
]


def _as_rng(rng) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(0 if rng is None else rng)


def _window_counts(mask: np.ndarray, size: int) -> np.ndarray:
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


def _check_image_mask(image, mask, name: str = "image"):
    image = np.asarray(image, dtype=np.float64)
    if image.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array, got shape {image.shape}")
    if mask is None:
        mask = np.ones(image.shape, dtype=bool)
    else:
        mask = np.asarray(mask).astype(bool)
        if mask.shape != image.shape:
            raise ValueError(
                f"mask for {name} has shape {mask.shape}, but the image has shape {image.shape}"
            )
    return image, mask


# ----------------------------------------------------------------------------------------
# Power-spectrum exponent beta
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BetaResult:
    """Result of :func:`power_spectrum_beta`.

    ``beta`` is the exponent of P(f) ~ 1/f**beta (positive for anatomical noise), with a
    jackknife (leave-one-ROI-out) standard error ``beta_se`` (NaN for a single ROI).
    ``freqs`` (cycles/mm) and ``psd`` (radially averaged, intensity**2 * mm**2) are for plotting
    only; the fit uses every 2-D frequency bin in ``f_range``. ``intercept`` is log10 P at
    f = 1 /mm of the fitted line, so the line is ``10**intercept * f**-beta`` (:meth:`fit_line`).
    ``roi_px`` is the ROI side per image and ``roi_corners`` an (n_rois, 3) integer array of
    (image index, top row, left column) for drawing the ROIs.
    """

    beta: float
    beta_se: float
    n_rois: int
    freqs: np.ndarray
    psd: np.ndarray
    intercept: float
    f_range: tuple[float, float]
    roi_px: tuple[int, ...]
    n_rois_per_image: tuple[int, ...]
    roi_corners: np.ndarray

    def fit_line(self, f) -> np.ndarray:
        """Fitted power law evaluated at frequencies ``f`` (cycles/mm)."""
        return 10.0**self.intercept * np.asarray(f, dtype=float) ** (-self.beta)


def _place_rois(valid: np.ndarray, size: int, n_max: int, rng: np.random.Generator):
    """Top-left corners of non-overlapping ROIs on the densest regular tiling of ``valid``.

    ``valid[r, c]`` says an ROI with top-left corner (r, c) is allowed. Every grid offset
    (oy, ox) of a lattice with pitch ``size`` is scored by how many of its tiles are valid;
    one of the best offsets is picked at random and, if it has more than ``n_max`` tiles, a
    random subset is kept.
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


def _detrend_plane(roi: np.ndarray) -> np.ndarray:
    n0, n1 = roi.shape
    yy, xx = np.mgrid[0:n0, 0:n1]
    a = np.column_stack([np.ones(roi.size), yy.ravel(), xx.ravel()])
    coef, *_ = np.linalg.lstsq(a, roi.ravel(), rcond=None)
    return roi - (a @ coef).reshape(roi.shape)


def _within_group_slope(xs: list[np.ndarray], ys: list[np.ndarray]) -> float:
    """Least-squares slope common to all groups, with a free intercept per group."""
    sxy = sxx = 0.0
    for x, y in zip(xs, ys, strict=True):
        xc = x - x.mean()
        sxy += float(xc @ (y - y.mean()))
        sxx += float(xc @ xc)
    return sxy / sxx


def power_spectrum_beta(
    images,
    masks,
    spacing_mm,
    *,
    roi_mm: float = 25.6,
    f_range: tuple[float, float] = (0.2, 0.7),
    max_rois_per_image: int = 16,
    exclude_border_mm: float = 10.0,
    rng=None,
) -> BetaResult:
    """Estimate the anatomical-noise exponent beta of P(f) ~ K / f**beta.

    Method (Burgess 2001; Chen, Abbey & Boone 2012; SPIE 2015 NPS-method study):

    1. square ROIs of ``roi_mm`` (rounded to an even number of pixels) are tiled without
       overlap on the regular grid (offset chosen to fit the most tiles, ties broken by
       ``rng``) fully inside the mask eroded by ``exclude_border_mm`` (the skin band;
       pass a mask that already excludes the pectoral muscle). Only mask edges inside the
       image count as a border: a mask touching the image edge (chest wall) is not eroded
       there. At most ``max_rois_per_image`` ROIs per image (a random subset of the tiles);
    2. each ROI: subtract its best-fit plane (mean and tilt), apply a 2-D periodic Hann
       window, |FFT|**2 normalised to physical units (intensity**2 mm**2);
    3. periodograms are averaged over all ROIs of the same pixel grid (same ROI size and
       spacing);
    4. log P is regressed on log f over *all* 2-D frequency bins with f in ``f_range``
       (cycles/mm) - no radial averaging. Grids with different spacing share the slope and
       get their own intercept. ``beta = -slope``.

    ``images`` is one 2-D array or a list; ``masks`` the matching boolean mask(s) (``None`` =
    whole image); ``spacing_mm`` a scalar or one value per image. Raises ``ValueError`` when
    no ROI fits, naming the ROI size in mm and px and the mask sizes.
    """
    if isinstance(images, np.ndarray) and images.ndim == 2:
        images = [images]
        masks = [masks]
    images = list(images)
    n_img = len(images)
    if n_img == 0:
        raise ValueError("power_spectrum_beta: 'images' is empty")
    if masks is None:
        masks = [None] * n_img
    elif isinstance(masks, np.ndarray) and masks.ndim == 2:
        masks = [masks]
    masks = list(masks)
    if len(masks) != n_img:
        raise ValueError(f"got {n_img} images but {len(masks)} masks")
    spacings = np.asarray(spacing_mm, dtype=float).ravel()
    if spacings.size == 1:
        spacings = np.repeat(spacings, n_img)
    if spacings.size != n_img:
        raise ValueError(f"got {n_img} images but {spacings.size} spacing_mm values")
    if np.any(~np.isfinite(spacings)) or np.any(spacings <= 0):
        raise ValueError(f"spacing_mm must be finite and > 0, got {spacing_mm!r}")
    f_lo, f_hi = map(float, f_range)
    if not 0 < f_lo < f_hi:
        raise ValueError(f"f_range must satisfy 0 < low < high, got {f_range!r}")
    if max_rois_per_image < 1:
        raise ValueError("max_rois_per_image must be >= 1")
    gen = _as_rng(rng)

    # group -> list of per-ROI periodograms, keyed by (roi_px, spacing)
    groups: dict[tuple[int, float], list[np.ndarray]] = {}
    per_image: list[int] = []
    roi_px_list: list[int] = []
    sizes_txt: list[str] = []
    all_corners: list[tuple[int, int, int]] = []
    for i, (img, msk, sp) in enumerate(zip(images, masks, spacings, strict=True)):
        img, msk = _check_image_mask(img, msk, name=f"image {i}")
        n = max(2, 2 * int(round(roi_mm / sp / 2.0)))
        roi_px_list.append(n)
        finite = np.isfinite(img)
        msk = msk & finite
        if exclude_border_mm > 0:
            inner = ndimage.distance_transform_edt(msk) * sp > exclude_border_mm
        else:
            inner = msk
        valid = _window_counts(inner, n) == n * n
        corners = _place_rois(valid, n, max_rois_per_image, gen)
        per_image.append(len(corners))
        rows = np.flatnonzero(msk.any(1))
        cols = np.flatnonzero(msk.any(0))
        bb = (rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1) if rows.size else (0, 0)
        sizes_txt.append(
            f"image {i}: mask bounding box {bb[0]}x{bb[1]} px = "
            f"{bb[0] * sp:.1f}x{bb[1] * sp:.1f} mm at {sp:g} mm/px"
        )
        all_corners.extend((i, r, c) for r, c in corners)
        if not corners:
            continue
        win = np.outer(hann(n, sym=False), hann(n, sym=False))
        norm = sp * sp / (n * n * float(np.mean(win**2)))
        bucket = groups.setdefault((n, float(sp)), [])
        for r, c in corners:
            roi = _detrend_plane(img[r : r + n, c : c + n])
            bucket.append(np.abs(np.fft.fft2(roi * win)) ** 2 * norm)

    n_rois = sum(per_image)
    if n_rois == 0:
        raise ValueError(
            f"no {roi_mm:g} mm ROI ({', '.join(sorted({f'{p} px' for p in roi_px_list}))}) fits "
            f"inside the mask after excluding a {exclude_border_mm:g} mm border; "
            + "; ".join(sizes_txt[:5])
            + (f"; ... ({len(sizes_txt)} images)" if len(sizes_txt) > 5 else "")
        )

    # 2-D bins in the fit range, per group
    xs, per_roi, means, grids = [], [], [], []
    for (n, sp), psds in groups.items():
        fx = np.fft.fftfreq(n, d=sp)
        f2d = np.hypot(fx[:, None], fx[None, :])
        sel = (f2d >= f_lo) & (f2d <= f_hi)
        if not sel.any():
            raise ValueError(
                f"f_range {f_range} contains no frequency bin for a {n} px ROI at {sp:g} mm "
                f"(resolution {1 / (n * sp):.3g} /mm, Nyquist {0.5 / sp:.3g} /mm)"
            )
        stack = np.stack(psds)
        xs.append(np.log(f2d[sel]))
        per_roi.append(stack[:, sel])
        means.append(stack.mean(0))
        grids.append((n, sp, f2d))

    ys = [np.log(p.mean(0)) for p in per_roi]
    slope = _within_group_slope(xs, ys)
    beta = -slope
    # intercept: ROI-weighted mean over groups of (mean y - slope * mean x), as log10
    w = np.array([p.shape[0] for p in per_roi], dtype=float)
    ints = np.array([y.mean() - slope * x.mean() for x, y in zip(xs, ys, strict=True)])
    intercept = float(np.sum(w * ints) / w.sum() / np.log(10.0))

    # jackknife over ROIs
    if n_rois >= 2:
        jk = []
        sums = [p.sum(0) for p in per_roi]
        for g, p in enumerate(per_roi):
            k = p.shape[0]
            for j in range(k):
                xs_j, ys_j = [], []
                for h in range(len(per_roi)):
                    if h != g:
                        xs_j.append(xs[h])
                        ys_j.append(ys[h])
                    elif k > 1:
                        xs_j.append(xs[h])
                        ys_j.append(np.log((sums[h] - p[j]) / (k - 1)))
                jk.append(-_within_group_slope(xs_j, ys_j))
        jk = np.asarray(jk)
        beta_se = float(np.sqrt((n_rois - 1) / n_rois * np.sum((jk - jk.mean()) ** 2)))
    else:
        beta_se = float("nan")

    # radial average for plotting on common bins of width 1/roi_mm
    df = 1.0 / roi_mm
    f_max = min(0.5 / sp for _, sp, _ in grids)
    k_max = int(np.floor(f_max / df))
    centres = df * np.arange(1, k_max + 1)
    acc = np.zeros(k_max)
    wts = np.zeros(k_max)
    for (_, _, f2d), mean_psd, p in zip(grids, means, per_roi, strict=True):
        k = np.rint(f2d / df).astype(int).ravel()
        ok = (k >= 1) & (k <= k_max)
        tot = np.bincount(k[ok] - 1, weights=mean_psd.ravel()[ok], minlength=k_max)
        cnt = np.bincount(k[ok] - 1, minlength=k_max)
        has = cnt > 0
        acc[has] += p.shape[0] * tot[has] / cnt[has]
        wts[has] += p.shape[0]
    keep = wts > 0
    return BetaResult(
        beta=float(beta),
        beta_se=beta_se,
        n_rois=int(n_rois),
        freqs=centres[keep],
        psd=acc[keep] / wts[keep],
        intercept=intercept,
        f_range=(f_lo, f_hi),
        roi_px=tuple(roi_px_list),
        n_rois_per_image=tuple(per_image),
        roi_corners=np.asarray(all_corners, dtype=int).reshape(-1, 3),
    )


# ----------------------------------------------------------------------------------------
# Percent density (LIBRA-like proxy)
# ----------------------------------------------------------------------------------------


def _otsu_split_of_clusters(centres: np.ndarray, counts: np.ndarray) -> int:
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
    img, mask = _check_image_mask(image, breast_mask, name="image")
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

        if n_clusters < 2:
            raise ValueError(f"n_clusters must be >= 2, got {n_clusters}")
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
        k = _otsu_split_of_clusters(centres, sizes)
        dense = labels >= k
    return float(100.0 * dense.mean())


@dataclass(frozen=True)
class VolumetricDensity:
    """Result of :func:`volumetric_percent_density` (percentages 0-100)."""

    area_percent: float  # share of the contact region whose dense fraction exceeds the cut
    volume_percent: float  # mean dense-tissue fraction of the contact region
    fat_reference: float  # log signal taken as pure fat
    region: np.ndarray  # bool mask of the pixels used (contact region minus exclusions)


def volumetric_percent_density(
    log_image,
    breast_mask,
    thickness_mm: float,
    spacing_mm: float,
    *,
    mu_fat: float = 0.0456,
    mu_gland: float = 0.080,
    dense_fraction: float = 0.28,
    fat_percentile: float = 1.0,
    skin_band_mm: float = 3.0,
    scatter_gain: float = 1.0,
    smooth_mm: float = 1.0,
    exclude=None,
) -> VolumetricDensity:
    """Physics-based density from a raw image and the compressed thickness (Volpara-like).

    Follows van Engeland et al. (IEEE TMI 2006) and Highnam et al. (IWDM 2010): in the log
    of a raw ("FOR PROCESSING") image, attenuation in excess of a pure-fat column of the same
    thickness, divided by ``mu_gland - mu_fat``, is the thickness of dense tissue along the
    ray. ``log_image`` is ``-log(raw signal)`` and ``thickness_mm`` the compressed thickness
    (DICOM BodyPartThickness). The breast periphery, which loses contact with the paddles,
    is given a semicircular thickness profile over a band of half the thickness; the fat
    reference is the fattiest column (``fat_percentile``) of the contact region.
    ``scatter_gain`` undoes the contrast lost to scatter (1 + scatter-to-primary ratio, a
    system calibration). The breast minus ``exclude`` (e.g. the pectoral muscle) and minus a
    ``skin_band_mm`` rim is measured; a pixel is dense when its dense fraction exceeds
    ``dense_fraction``.
    """
    log_image = np.asarray(log_image, dtype=float)
    breast = np.asarray(breast_mask, dtype=bool)
    if log_image.shape != breast.shape:
        raise ValueError(
            f"log_image {log_image.shape} and breast_mask {breast.shape} differ in shape"
        )
    if not thickness_mm > 0 or not spacing_mm > 0:
        raise ValueError(
            f"thickness_mm and spacing_mm must be positive, got {thickness_mm}, {spacing_mm}"
        )
    if mu_gland <= mu_fat:
        raise ValueError("mu_gland must exceed mu_fat")
    # distance to the skin line; pixels beyond the array count as inside, so the chest
    # wall (the image edge the breast touches) is not taken for a skin line
    dist = ndimage.distance_transform_edt(breast) * spacing_mm
    band = thickness_mm / 2
    x = np.clip(dist / band, 0.0, 1.0)
    thick = thickness_mm * np.sqrt(np.clip(1.0 - (1.0 - x) ** 2, 0.0, 1.0))
    region = breast & (dist > skin_band_mm)
    if exclude is not None:
        region &= ~np.asarray(exclude, dtype=bool)
    # fat reference from the thickest part (full contact; in a small breast, its core)
    contact = region & (dist >= min(band, 0.8 * float(dist[region].max(initial=0.0))))
    if contact.sum() < 10 or region.sum() < 10:
        raise ValueError(
            f"breast too small to measure: {breast.sum()} px, {region.sum()} px beyond the "
            f"{skin_band_mm} mm skin band, {contact.sum()} px in full contact "
            f"({band:.1f} mm from the skin line)"
        )
    sigma = smooth_mm / spacing_mm
    w = region.astype(float)
    smooth = ndimage.gaussian_filter(log_image * w, sigma) / np.maximum(
        ndimage.gaussian_filter(w, sigma), 1e-6
    )
    fat_ref = float(np.percentile(smooth[contact], fat_percentile))
    excess = (smooth - fat_ref) * scatter_gain + mu_fat * (thickness_mm - thick)
    dense_mm = excess / (mu_gland - mu_fat)
    frac = np.clip(dense_mm / np.maximum(thick, 1e-3), 0.0, 1.0)
    return VolumetricDensity(
        area_percent=float(100.0 * (frac[region] > dense_fraction).mean()),
        volume_percent=float(100.0 * frac[region].mean()),
        fat_reference=fat_ref,
        region=region,
    )


# ----------------------------------------------------------------------------------------
# Contrast-to-noise ratio
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CNRResult:
    """Result of :func:`contrast_to_noise`; ``float(result)`` is the CNR.

    ``background_mask`` is the annulus actually used (for an overlay plot).
    """

    cnr: float
    contrast: float
    lesion_mean: float
    background_mean: float
    background_std: float
    radius_px: float
    center_rc: tuple[float, float]
    n_lesion: int
    n_background: int
    background_mask: np.ndarray

    def __float__(self) -> float:
        return self.cnr


def contrast_to_noise(
    image,
    lesion_mask,
    *,
    annulus: tuple[float, float] = (1.0, 2.0),
    breast_mask=None,
) -> CNRResult:
    """Lesion CNR = (mean lesion - mean background) / std background (ddof=1).

    The background is the annulus between ``annulus[0] * R`` and ``annulus[1] * R`` from the
    lesion centroid, where R = sqrt(area / pi) is the lesion's equivalent radius; lesion
    pixels are removed from it and it is clipped to ``breast_mask`` if given. Works in
    whatever domain the image is in (raw or log).
    """
    img, les = _check_image_mask(image, lesion_mask, name="image")
    if lesion_mask is None or not les.any():
        raise ValueError("contrast_to_noise: lesion_mask is empty")
    a0, a1 = map(float, annulus)
    if not 0 <= a0 < a1:
        raise ValueError(f"annulus must satisfy 0 <= inner < outer, got {annulus!r}")
    area = int(les.sum())
    radius = float(np.sqrt(area / np.pi))
    rr, cc = np.nonzero(les)
    cy, cx = float(rr.mean()), float(cc.mean())
    yy, xx = np.ogrid[: img.shape[0], : img.shape[1]]
    d = np.hypot(yy - cy, xx - cx)
    bg = (d >= a0 * radius) & (d <= a1 * radius) & ~les
    if breast_mask is not None:
        bm = np.asarray(breast_mask).astype(bool)
        if bm.shape != img.shape:
            raise ValueError(f"breast_mask has shape {bm.shape}, the image {img.shape}")
        bg &= bm
    if bg.sum() < 2:
        raise ValueError(
            f"contrast_to_noise: background annulus {a0:g}R..{a1:g}R (R = {radius:.1f} px) "
            f"has {int(bg.sum())} pixels inside the image/breast mask"
        )
    lm = float(img[les].mean())
    bmean = float(img[bg].mean())
    bstd = float(img[bg].std(ddof=1))
    contrast = lm - bmean
    return CNRResult(
        cnr=contrast / bstd if bstd > 0 else float("inf") * np.sign(contrast),
        contrast=contrast,
        lesion_mean=lm,
        background_mean=bmean,
        background_std=bstd,
        radius_px=radius,
        center_rc=(cy, cx),
        n_lesion=area,
        n_background=int(bg.sum()),
        background_mask=bg,
    )


# ----------------------------------------------------------------------------------------
# ROI helpers
# ----------------------------------------------------------------------------------------


def extract_rois(image, centers_rc, size: int) -> np.ndarray:
    """Square ROIs of ``size`` px centred on ``centers_rc`` ((N, 2) row, col), shape (N, s, s).

    The centre pixel sits at index ``size // 2`` of the ROI (the convention used by
    :func:`laguerre_gauss_channels`). Raises ``ValueError`` naming the first ROI that leaves
    the image.
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


def sample_background_centers(mask, size: int, n: int, rng=None, avoid=None) -> np.ndarray:
    """``n`` random ROI centres (row, col) whose ``size`` px ROI lies inside ``mask``.

    With ``avoid`` (boolean mask, e.g. lesions), ROIs do not touch any of its pixels. Centres
    are distinct but ROIs may overlap. Raises ``ValueError`` if fewer than ``n`` positions fit.
    """
    m = np.asarray(mask).astype(bool)
    size = int(size)
    ok = _window_counts(m, size) == size * size
    if avoid is not None:
        av = np.asarray(avoid).astype(bool)
        if av.shape != m.shape:
            raise ValueError(f"avoid has shape {av.shape}, the mask {m.shape}")
        ok &= _window_counts(av, size) == 0
    cand = np.flatnonzero(ok)
    if cand.size < n:
        raise ValueError(
            f"only {cand.size} ROI positions of {size} px fit inside the "
            f"{m.shape[0]}x{m.shape[1]} mask ({int(m.sum())} px) away from 'avoid'; "
            f"{n} requested"
        )
    pick = _as_rng(rng).choice(cand, size=n, replace=False)
    r, c = np.unravel_index(np.sort(pick), ok.shape)
    return np.column_stack([r + size // 2, c + size // 2]).astype(int)


# ----------------------------------------------------------------------------------------
# Model observers
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ObserverResult:
    """Result of a model observer.

    ``auc`` on the held-out ROIs, ``auc_ci`` a 95 % percentile bootstrap interval (or None),
    ``d_prime = sqrt(2) * Phi^-1(auc)``, ``template`` the spatial template (size x size) and the
    held-out decision variables ``scores_signal`` / ``scores_background`` (for an ROC plot).
    """

    auc: float
    auc_ci: tuple[float, float] | None
    d_prime: float
    n_signal: int
    n_background: int
    template: np.ndarray
    scores_signal: np.ndarray
    scores_background: np.ndarray


def laguerre_gauss_channels(size: int, n_channels: int = 6, width_px: float | None = None):
    """Rotationally symmetric Laguerre-Gauss channels, shape (n_channels, size * size).

    u_p(r) = exp(-pi r**2 / a**2) L_p(2 pi r**2 / a**2) with a = ``width_px`` (default
    ``size / 4``), centred at pixel (size // 2, size // 2), each scaled to unit L2 norm.
    For a Gaussian signal of standard deviation s, a = s * sqrt(2 pi) ~ 2.5 s makes the first
    channel match it exactly.
    """
    size = int(size)
    if size < 2 or n_channels < 1:
        raise ValueError(f"need size >= 2 and n_channels >= 1, got {size}, {n_channels}")
    a = size / 4.0 if width_px is None else float(width_px)
    if not a > 0:
        raise ValueError(f"width_px must be > 0, got {width_px!r}")
    yy, xx = np.mgrid[0:size, 0:size] - size // 2
    g = 2.0 * np.pi * (xx**2 + yy**2) / a**2
    ch = np.stack([np.exp(-g / 2.0) * special.eval_laguerre(p, g) for p in range(n_channels)])
    ch = ch.reshape(n_channels, -1)
    return ch / np.linalg.norm(ch, axis=1, keepdims=True)


def _as_roi_stack(rois, name: str) -> np.ndarray:
    x = np.asarray(rois, dtype=np.float64)
    if x.ndim != 3 or x.shape[1] != x.shape[2]:
        raise ValueError(f"{name} must have shape (N, size, size), got {x.shape}")
    if x.shape[0] < 4:
        raise ValueError(f"{name} needs at least 4 ROIs, got {x.shape[0]}")
    return x


def _observer_inputs(signal_rois, background_rois, train_fraction: float):
    """Checked ROI stacks of both classes for the observers."""
    s = _as_roi_stack(signal_rois, "signal_rois")
    b = _as_roi_stack(background_rois, "background_rois")
    if s.shape[1:] != b.shape[1:]:
        raise ValueError(f"signal ROIs {s.shape[1:]} and background ROIs {b.shape[1:]} differ")
    if not 0 < train_fraction < 1:
        raise ValueError(f"train_fraction must be in (0, 1), got {train_fraction}")
    return s, b


def _split(n: int, train_fraction: float, rng: np.random.Generator):
    perm = rng.permutation(n)
    k = int(round(train_fraction * n))
    k = min(max(k, 2), n - 2)
    return perm[:k], perm[k:]


def _evaluate(ts, tb, n_bootstrap, rng, template, n_sig, n_bg) -> ObserverResult:
    from sklearn.metrics import roc_auc_score

    def auc_of(s, b):
        y = np.r_[np.ones(s.size), np.zeros(b.size)]
        return float(roc_auc_score(y, np.r_[s, b]))

    auc = auc_of(ts, tb)
    ci = None
    if n_bootstrap > 0:
        boots = [
            auc_of(ts[rng.integers(0, ts.size, ts.size)], tb[rng.integers(0, tb.size, tb.size)])
            for _ in range(int(n_bootstrap))
        ]
        lo, hi = np.percentile(boots, [2.5, 97.5])
        ci = (float(lo), float(hi))
    return ObserverResult(
        auc=auc,
        auc_ci=ci,
        d_prime=float(np.sqrt(2.0) * stats.norm.ppf(auc)),
        n_signal=n_sig,
        n_background=n_bg,
        template=template,
        scores_signal=ts,
        scores_background=tb,
    )


def channelized_hotelling(
    signal_rois,
    background_rois,
    *,
    n_channels: int = 6,
    width_px: float | None = None,
    train_fraction: float = 0.5,
    rng=None,
    n_bootstrap: int = 0,
    ridge: float = 1e-6,
) -> ObserverResult:
    """Channelized Hotelling observer with Laguerre-Gauss channels (signal known exactly,
    centred on the ROI centre pixel ``size // 2``).

    Each class is split at random into a training part (``train_fraction``) and a held-out
    part. Template w = S^-1 (mean_s - mean_b) from the training channel outputs, with S the
    pooled (average of the two classes) channel covariance plus ``ridge * trace(S) / n`` on
    the diagonal. AUC of the held-out decision variables with
    ``sklearn.metrics.roc_auc_score``; ``d' = sqrt(2) Phi^-1(AUC)``; ``n_bootstrap > 0`` adds a
    percentile CI from resampling the held-out ROIs. ``width_px`` defaults to size / 4; set it
    to about 2.5x the signal's Gaussian sigma (or ~ the lesion diameter) for a better match.
    """
    s, b = _observer_inputs(signal_rois, background_rois, train_fraction)
    gen = _as_rng(rng)
    size = s.shape[1]
    u = laguerre_gauss_channels(size, n_channels, width_px)
    vs = s.reshape(len(s), -1) @ u.T
    vb = b.reshape(len(b), -1) @ u.T
    tr_s, te_s = _split(len(s), train_fraction, gen)
    tr_b, te_b = _split(len(b), train_fraction, gen)
    cov = 0.5 * (np.cov(vs[tr_s], rowvar=False) + np.cov(vb[tr_b], rowvar=False))
    cov = np.atleast_2d(cov)
    cov = cov + ridge * np.trace(cov) / n_channels * np.eye(n_channels)
    w = np.linalg.solve(cov, vs[tr_s].mean(0) - vb[tr_b].mean(0))
    template = (w @ u).reshape(size, size)
    return _evaluate(vs[te_s] @ w, vb[te_b] @ w, n_bootstrap, gen, template, len(s), len(b))


def npwe_observer(
    signal_rois,
    background_rois,
    *,
    signal=None,
    spacing_mm: float | None = None,
    viewing_distance_mm: float = 500.0,
    eye_exponent: float = 1.3,
    eye_peak_cpd: float = 4.0,
    train_fraction: float = 0.5,
    rng=None,
    n_bootstrap: int = 0,
) -> ObserverResult:
    """Non-prewhitening observer, with an eye filter (NPWE) when ``spacing_mm`` is given.

    Template = the expected signal ``signal`` (size x size) if given - the usual
    signal-known-exactly set-up - otherwise the mean signal-present minus mean signal-absent
    training ROI (noisy unless there are many ROIs per pixel), filtered twice by
    the eye filter E(rho) = rho**n exp(-c rho**2) (rho in cycles/degree at
    ``viewing_distance_mm``, peak at ``eye_peak_cpd``; Burgess 1994 form). Without
    ``spacing_mm`` it is the plain NPW observer (ideal for white noise). Same split, AUC and
    bootstrap as :func:`channelized_hotelling`.
    """
    s, b = _observer_inputs(signal_rois, background_rois, train_fraction)
    gen = _as_rng(rng)
    tr_s, te_s = _split(len(s), train_fraction, gen)
    tr_b, te_b = _split(len(b), train_fraction, gen)
    if signal is None:
        template = s[tr_s].mean(0) - b[tr_b].mean(0)
    else:
        template = np.asarray(signal, dtype=np.float64)
        if template.shape != s.shape[1:]:
            raise ValueError(f"signal has shape {template.shape}, the ROIs {s.shape[1:]}")
    if spacing_mm is not None:
        size = s.shape[1]
        f = np.fft.fftfreq(size, d=float(spacing_mm))
        rho = np.hypot(f[:, None], f[None, :]) * viewing_distance_mm * np.pi / 180.0
        c = eye_exponent / (2.0 * eye_peak_cpd**2)
        eye = rho**eye_exponent * np.exp(-c * rho**2)
        template = np.real(np.fft.ifft2(np.fft.fft2(template) * eye**2))
    w = template.ravel()
    ts = s[te_s].reshape(len(te_s), -1) @ w
    tb = b[te_b].reshape(len(te_b), -1) @ w
    return _evaluate(ts, tb, n_bootstrap, gen, template, len(s), len(b))


# ----------------------------------------------------------------------------------------
# Quantum-noise linearity
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NoiseFitResult:
    """Result of :func:`noise_variance_fit`: var = slope * mean + intercept.

    Unpacks as ``slope, intercept, r2 = result``. ``means`` / ``variances`` are all blocks,
    ``used`` marks the ones kept by the outlier rejection (for a scatter plot).
    """

    slope: float
    intercept: float
    r2: float
    means: np.ndarray
    variances: np.ndarray
    used: np.ndarray

    def __iter__(self):
        return iter((self.slope, self.intercept, self.r2))


def noise_variance_fit(image, mask=None, *, block: int = 16, reject_sigma: float = 3.0):
    """Fit local variance against local mean over ``block`` x ``block`` tiles inside ``mask``.

    Each tile fully inside the mask has its best-fit plane removed (so smooth gradients do
    not count as noise) and its residual variance computed with ddof = 3. A least-squares
    line var = a * mean + b is fitted robustly: a start line through the median variance of
    ~20 equally populated mean bins, then (twice) tiles whose relative residual var / fit - 1
    lies beyond ``reject_sigma`` robust standard deviations (MAD) - structured tiles such as
    edges - are dropped and the line refitted by least squares on the rest. Linear raw-domain
    quantum noise gives a > 0 and a high r2 (van Schie & Karssemeijer). Returns :class:`NoiseFitResult` (unpacks to ``(slope, intercept, r2)``).
    """
    img, msk = _check_image_mask(image, mask, name="image")
    block = int(block)
    if block < 3:
        raise ValueError(f"block must be >= 3, got {block}")
    nby, nbx = img.shape[0] // block, img.shape[1] // block
    if nby == 0 or nbx == 0:
        raise ValueError(f"block {block} px is larger than the {img.shape} image")
    sl = (slice(0, nby * block), slice(0, nbx * block))
    tiles = img[sl].reshape(nby, block, nbx, block).swapaxes(1, 2).reshape(-1, block, block)
    inside = msk[sl].reshape(nby, block, nbx, block).all(axis=(1, 3)).ravel()
    tiles = tiles[inside & np.isfinite(tiles).all(axis=(1, 2))]
    if len(tiles) < 3:
        raise ValueError(
            f"only {len(tiles)} tiles of {block}x{block} px lie fully inside the mask; need 3"
        )
    yy, xx = np.mgrid[0:block, 0:block]
    a = np.column_stack([np.ones(block * block), yy.ravel(), xx.ravel()])
    flat = tiles.reshape(len(tiles), -1)
    coef, *_ = np.linalg.lstsq(a, flat.T, rcond=None)
    resid = flat - (a @ coef).T
    means = flat.mean(1)
    variances = (resid**2).sum(1) / (block * block - 3)

    def fit(m):
        slope, icpt = np.polyfit(means[m], variances[m], 1)
        return slope, icpt

    # robust start: line through the median variance of ~20 equally populated mean bins
    n_bins = int(min(20, max(3, len(means) // 10)))
    order = np.argsort(means)
    chunks = [c for c in np.array_split(order, n_bins) if c.size]
    if len(chunks) >= 2:
        slope, icpt = np.polyfit(
            [np.median(means[c]) for c in chunks], [np.median(variances[c]) for c in chunks], 1
        )
    else:
        slope, icpt = fit(np.ones(len(means), dtype=bool))
    used = np.ones(len(means), dtype=bool)
    for _ in range(2):  # reject on relative residuals, refit by least squares
        pred = slope * means + icpt
        # relative residuals: a variance estimate's spread grows with the variance itself
        ok = pred > 0
        res = np.full(len(means), np.inf)
        res[ok] = variances[ok] / pred[ok] - 1.0
        fin = np.isfinite(res)
        if fin.sum() < 3:
            break
        med = np.median(res[fin])
        mad = 1.4826 * np.median(np.abs(res[fin] - med))
        keep = np.abs(res - med) <= reject_sigma * mad if mad > 0 else fin
        if keep.sum() < 3:
            break
        used = keep
        slope, icpt = fit(used)
    pred = slope * means[used] + icpt
    ss_res = float(np.sum((variances[used] - pred) ** 2))
    ss_tot = float(np.sum((variances[used] - variances[used].mean()) ** 2))
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else float("nan")
    return NoiseFitResult(
        slope=float(slope),
        intercept=float(icpt),
        r2=float(r2),
        means=means,
        variances=variances,
        used=used,
    )
