"""Anatomical-noise exponent beta of a mammogram's power spectrum, P(f) ~ K / f**beta.

Real mammograms have beta about 2.8-3.3 (Burgess AE, Jacobson FL, Judy PF. Med Phys
28:419, 2001; Chen L, Abbey CK, Boone JM. Med Phys 39:1435, 2012), fitted over 0.2-0.7
cycles/mm (Cockmartin L et al., IWDM 2012, LNCS 7361). :func:`power_spectrum_beta` works on
plain 2-D arrays with masks and pixel spacings, in five stages: ROIs tiled inside the
masks, Hann-windowed periodograms per ROI, a log-log fit over every 2-D frequency bin, a
leave-one-ROI-out jackknife standard error and a radial average for plotting. Used by
:func:`~.spectrum_checks.beta_check` (chapter 00).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage
from scipy.signal.windows import hann

from ._arrays import as_rng, check_image_mask, check_number, detrend_plane
from .rois import tile_rois, window_counts


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


@dataclass
class _Spectra:
    """Periodograms of all ROIs, grouped by pixel grid (ROI side in px, spacing in mm)."""

    groups: dict = field(default_factory=dict)  # (roi_px, spacing) -> list of 2-D arrays
    per_image: list = field(default_factory=list)  # number of ROIs per image
    roi_px: list = field(default_factory=list)  # ROI side per image
    corners: list = field(default_factory=list)  # (image, row, col) per ROI
    mask_sizes: list = field(default_factory=list)  # text per image, for error messages


@dataclass
class _FitData:
    """Per grid: log f of the bins in the fit range and each ROI's power there."""

    xs: list  # log f of the selected 2-D bins
    per_roi: list  # (n_rois, n_bins) power per ROI
    means: list  # mean periodogram (whole 2-D grid)
    grids: list  # (roi_px, spacing, |f| of the 2-D grid)


# ------------------------------------------------------------------ stage 0: inputs


def _as_inputs(images, masks, spacing_mm):
    """Lists of images and masks and one spacing per image, checked."""
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
    return images, masks, spacings


def _check_settings(roi_mm, f_range, max_rois_per_image, exclude_border_mm):
    f_lo, f_hi = map(float, f_range)
    if not 0 < f_lo < f_hi < np.inf:
        raise ValueError(f"f_range must satisfy 0 < low < high, got {f_range!r}")
    check_number("roi_mm", roi_mm, low=0, low_open=True)
    check_number("exclude_border_mm", exclude_border_mm, low=0)
    check_number("max_rois_per_image", max_rois_per_image, low=1, integer=True)
    return f_lo, f_hi


def roi_side_px(roi_mm: float, spacing_mm: float) -> int:
    """ROI side in pixels: ``roi_mm`` at ``spacing_mm``, rounded to an even number (>= 2)."""
    return max(2, 2 * int(round(roi_mm / spacing_mm / 2.0)))


# -------------------------------------------------------------- stage 1: ROI placement


def _mask_size_text(i: int, mask: np.ndarray, sp: float) -> str:
    rows = np.flatnonzero(mask.any(1))
    cols = np.flatnonzero(mask.any(0))
    bb = (rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1) if rows.size else (0, 0)
    return (
        f"image {i}: mask bounding box {bb[0]}x{bb[1]} px = "
        f"{bb[0] * sp:.1f}x{bb[1] * sp:.1f} mm at {sp:g} mm/px"
    )


def _roi_corners(mask, n, sp, exclude_border_mm, max_rois, gen):
    """Corners of up to ``max_rois`` n-px ROIs inside ``mask`` eroded by the border."""
    if exclude_border_mm > 0:
        inner = ndimage.distance_transform_edt(mask) * sp > exclude_border_mm
    else:
        inner = mask
    valid = window_counts(inner, n) == n * n
    return tile_rois(valid, n, max_rois, gen)


# ------------------------------------------------------------- stage 2: periodograms


def hann_periodograms(image: np.ndarray, corners, n: int, spacing_mm: float) -> list[np.ndarray]:
    """|FFT|**2 of each plane-detrended, Hann-windowed n-px ROI, in intensity**2 * mm**2."""
    win = np.outer(hann(n, sym=False), hann(n, sym=False))
    norm = spacing_mm * spacing_mm / (n * n * float(np.mean(win**2)))
    out = []
    for r, c in corners:
        roi = detrend_plane(image[r : r + n, c : c + n])
        out.append(np.abs(np.fft.fft2(roi * win)) ** 2 * norm)
    return out


def _collect_spectra(images, masks, spacings, roi_mm, exclude_border_mm, max_rois, gen):
    """Stages 1 and 2 over all images."""
    spectra = _Spectra()
    for i, (img, msk, sp) in enumerate(zip(images, masks, spacings, strict=True)):
        img, msk = check_image_mask(img, msk, name=f"image {i}")
        n = roi_side_px(roi_mm, sp)
        msk = msk & np.isfinite(img)
        corners = _roi_corners(msk, n, sp, exclude_border_mm, max_rois, gen)
        spectra.roi_px.append(n)
        spectra.per_image.append(len(corners))
        spectra.mask_sizes.append(_mask_size_text(i, msk, sp))
        spectra.corners.extend((i, r, c) for r, c in corners)
        if corners:
            bucket = spectra.groups.setdefault((n, float(sp)), [])
            bucket.extend(hann_periodograms(img, corners, n, sp))
    return spectra


def _no_roi_error(spectra: _Spectra, roi_mm, exclude_border_mm) -> ValueError:
    sizes = spectra.mask_sizes
    return ValueError(
        f"no {roi_mm:g} mm ROI ({', '.join(sorted({f'{p} px' for p in spectra.roi_px}))}) fits "
        f"inside the mask after excluding a {exclude_border_mm:g} mm border; "
        + "; ".join(sizes[:5])
        + (f"; ... ({len(sizes)} images)" if len(sizes) > 5 else "")
    )


# --------------------------------------------------------------------- stage 3: fit


def _fit_bins(groups: dict, f_lo: float, f_hi: float) -> _FitData:
    """The 2-D frequency bins of each grid that fall in [f_lo, f_hi]."""
    data = _FitData([], [], [], [])
    for (n, sp), psds in groups.items():
        fx = np.fft.fftfreq(n, d=sp)
        f2d = np.hypot(fx[:, None], fx[None, :])
        sel = (f2d >= f_lo) & (f2d <= f_hi)
        if not sel.any():
            raise ValueError(
                f"f_range ({f_lo:g}, {f_hi:g}) contains no frequency bin for a {n} px ROI at "
                f"{sp:g} mm (resolution {1 / (n * sp):.3g} /mm, Nyquist {0.5 / sp:.3g} /mm)"
            )
        stack = np.stack(psds)
        data.xs.append(np.log(f2d[sel]))
        data.per_roi.append(stack[:, sel])
        data.means.append(stack.mean(0))
        data.grids.append((n, sp, f2d))
    return data


def within_group_slope(xs: list[np.ndarray], ys: list[np.ndarray]) -> float:
    """Least-squares slope common to all groups, with a free intercept per group."""
    sxy = sxx = 0.0
    for x, y in zip(xs, ys, strict=True):
        xc = x - x.mean()
        sxy += float(xc @ (y - y.mean()))
        sxx += float(xc @ xc)
    return sxy / sxx


def _fit_power_law(data: _FitData) -> tuple[float, float]:
    """Slope of log P on log f (shared by the grids) and the log10 intercept at f = 1 /mm."""
    ys = [np.log(p.mean(0)) for p in data.per_roi]
    slope = within_group_slope(data.xs, ys)
    # intercept: ROI-weighted mean over groups of (mean y - slope * mean x), as log10
    w = np.array([p.shape[0] for p in data.per_roi], dtype=float)
    ints = np.array([y.mean() - slope * x.mean() for x, y in zip(data.xs, ys, strict=True)])
    return slope, float(np.sum(w * ints) / w.sum() / np.log(10.0))


# --------------------------------------------------------------- stage 4: jackknife


def jackknife_se(xs: list[np.ndarray], per_roi: list[np.ndarray]) -> float:
    """Leave-one-ROI-out jackknife standard error of beta (NaN for a single ROI).

    ``se = sqrt((n - 1) / n * sum_j (beta_(j) - mean beta_(.))**2)`` over the ``n`` ROIs,
    where ``beta_(j)`` is the fit without ROI ``j`` (a grid left with no ROI drops out).
    """
    n_rois = sum(p.shape[0] for p in per_roi)
    if n_rois < 2:
        return float("nan")
    ys = [np.log(p.mean(0)) for p in per_roi]
    sums = [p.sum(0) for p in per_roi]
    jk = []
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
            jk.append(-within_group_slope(xs_j, ys_j))
    jk = np.asarray(jk)
    return float(np.sqrt((n_rois - 1) / n_rois * np.sum((jk - jk.mean()) ** 2)))


# ---------------------------------------------------------- stage 5: radial average


def _radial_average(data: _FitData, roi_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """ROI-weighted radial average of the mean periodograms on bins of width 1/roi_mm."""
    df = 1.0 / roi_mm
    f_max = min(0.5 / sp for _, sp, _ in data.grids)
    k_max = int(np.floor(f_max / df))
    centres = df * np.arange(1, k_max + 1)
    acc = np.zeros(k_max)
    wts = np.zeros(k_max)
    for (_, _, f2d), mean_psd, p in zip(data.grids, data.means, data.per_roi, strict=True):
        k = np.rint(f2d / df).astype(int).ravel()
        ok = (k >= 1) & (k <= k_max)
        tot = np.bincount(k[ok] - 1, weights=mean_psd.ravel()[ok], minlength=k_max)
        cnt = np.bincount(k[ok] - 1, minlength=k_max)
        has = cnt > 0
        acc[has] += p.shape[0] * tot[has] / cnt[has]
        wts[has] += p.shape[0]
    keep = wts > 0
    return centres[keep], acc[keep] / wts[keep]


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

    Method (Burgess 2001; Chen, Abbey & Boone 2012):

    1. square ROIs of ``roi_mm`` (rounded to an even number of pixels) are tiled without
       overlap on the regular grid (offset chosen to fit the most tiles, ties broken by
       ``rng``) fully inside the mask eroded by ``exclude_border_mm`` (the skin band;
       pass a mask that already excludes the pectoral muscle). Only mask edges inside the
       image count as a border: a mask touching the image edge (chest wall) is not eroded
       there. At most ``max_rois_per_image`` ROIs per image (a random subset of the tiles);
    2. each ROI: subtract its best-fit plane (mean and tilt), apply a 2-D periodic Hann
       window, |FFT|**2 normalised to physical units (intensity**2 mm**2);
    3. periodograms are averaged over all ROIs of the same pixel grid (same ROI size and
       spacing); log P is regressed on log f over *all* 2-D frequency bins with f in
       ``f_range`` (cycles/mm) - no radial averaging. Grids with different spacing share
       the slope and get their own intercept. ``beta = -slope``;
    4. standard error by the leave-one-ROI-out jackknife (:func:`jackknife_se`);
    5. a radial average of the periodograms for plotting.

    ``images`` is one 2-D array or a list; ``masks`` the matching boolean mask(s) (``None`` =
    whole image); ``spacing_mm`` a scalar or one value per image. Raises ``ValueError`` when
    no ROI fits, naming the ROI size in mm and px and the mask sizes.
    """
    images, masks, spacings = _as_inputs(images, masks, spacing_mm)
    f_lo, f_hi = _check_settings(roi_mm, f_range, max_rois_per_image, exclude_border_mm)
    gen = as_rng(rng)
    spectra = _collect_spectra(
        images, masks, spacings, roi_mm, exclude_border_mm, max_rois_per_image, gen
    )
    n_rois = sum(spectra.per_image)
    if n_rois == 0:
        raise _no_roi_error(spectra, roi_mm, exclude_border_mm)
    data = _fit_bins(spectra.groups, f_lo, f_hi)
    slope, intercept = _fit_power_law(data)
    freqs, psd = _radial_average(data, roi_mm)
    return BetaResult(
        beta=float(-slope),
        beta_se=jackknife_se(data.xs, data.per_roi),
        n_rois=int(n_rois),
        freqs=freqs,
        psd=psd,
        intercept=intercept,
        f_range=(f_lo, f_hi),
        roi_px=tuple(spectra.roi_px),
        n_rois_per_image=tuple(spectra.per_image),
        roi_corners=np.asarray(spectra.corners, dtype=int).reshape(-1, 3),
    )
