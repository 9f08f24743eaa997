"""X-ray acquisition and vendor processing of the phantom: the sites/vendors that act as domains.

Beer-Lambert attenuation, scatter, detector blur and quantum + electronic noise give a raw
("FOR PROCESSING") image; each site then applies its own presentation processing (log,
peripheral equalisation, unsharp masking, gamma), bit depth, photometric interpretation,
VOI LUT function and optional burned-in labels. Different sites therefore differ in the
ways real vendors do (pixel pitch, bit depth, MONOCHROME1/2, LINEAR/SIGMOID VOI, processing
strength), which is what chapter 05 (domain shift) relies on. The tuned constants (photon
count, electronic noise, scatter) live in :mod:`.calibration`.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .calibration import ELECTRONIC_NOISE, N0_PHOTONS, SCATTER_FRACTION, SCATTER_RANGE_MM

#: Pixel side (mm) at which N0_PHOTONS is given; the count scales with the pixel area.
REFERENCE_PIXEL_MM = 0.1
#: Direct exposure outside the breast, as a multiple of the median breast pixel's photons.
DIRECT_EXPOSURE_CAP = 40.0


@dataclass(frozen=True)
class SiteProfile:
    """Acquisition and processing settings of one site (a vendor-like domain)."""

    name: str
    vendor: str
    spacing_mm: float  # native pixel spacing
    bits_stored: int
    photometric: str  # MONOCHROME1 / MONOCHROME2
    presentation_intent: str  # FOR PRESENTATION / FOR PROCESSING
    voi_lut_function: str  # LINEAR / SIGMOID
    density_prior: tuple[float, float, float, float]  # P(A), P(B), P(C), P(D)
    modality_mix: dict  # modality -> probability, per study
    noise_scale: float = 1.0
    mtf_sigma_mm: float = 0.07
    scatter_fraction: float = SCATTER_FRACTION
    equalisation: float = 0.5  # strength of peripheral (thickness) equalisation
    unsharp_amount: float = 0.6
    unsharp_sigma_mm: float = 2.0
    gamma: float = 1.0  # display = x ** (1 / gamma): gamma > 1 brightens the mid-tones
    burned_in_text: bool = False
    dbt_half_angle_deg: float = 7.5
    film: bool = False  # digitised-film look (H&D curve + grain), CBIS-DDSM-like
    age_mean: float = 58.0


SITES: dict[str, SiteProfile] = {
    "site_A": SiteProfile(
        name="site_A",
        vendor="VendorH",  # Hologic-like: 70 um, tomosynthesis centre
        spacing_mm=0.07,
        bits_stored=12,
        photometric="MONOCHROME2",
        presentation_intent="FOR PRESENTATION",
        voi_lut_function="LINEAR",
        density_prior=(0.10, 0.43, 0.41, 0.06),
        modality_mix={"DM": 0.5, "s2D": 0.3, "DBT": 0.2},
        unsharp_amount=0.8,
        dbt_half_angle_deg=7.5,
    ),
    "site_B": SiteProfile(
        name="site_B",
        vendor="VendorG",  # GE-like: 100 um, MONOCHROME1, sigmoid VOI, burned-in labels
        spacing_mm=0.10,
        bits_stored=14,
        photometric="MONOCHROME1",
        presentation_intent="FOR PRESENTATION",
        voi_lut_function="SIGMOID",
        density_prior=(0.02, 0.12, 0.72, 0.14),  # Asian-like prior (VinDr)
        modality_mix={"DM": 1.0},
        noise_scale=1.4,
        mtf_sigma_mm=0.1,
        equalisation=0.6,
        unsharp_amount=0.7,
        unsharp_sigma_mm=3.0,
        gamma=0.85,
        burned_in_text=True,
        age_mean=52.0,
    ),
    "site_C": SiteProfile(
        name="site_C",
        vendor="VendorS",  # Siemens-like: 85 um, wide-angle DBT
        spacing_mm=0.085,
        bits_stored=12,
        photometric="MONOCHROME2",
        presentation_intent="FOR PRESENTATION",
        voi_lut_function="LINEAR",
        density_prior=(0.25, 0.25, 0.25, 0.25),
        modality_mix={"DM": 0.7, "DBT": 0.3},
        noise_scale=0.8,
        equalisation=0.3,
        unsharp_amount=0.4,
        gamma=1.25,
        dbt_half_angle_deg=25.0,
    ),
    "site_D": SiteProfile(
        name="site_D",
        vendor="FilmDigitiser",  # CBIS-DDSM-like scanned film
        spacing_mm=0.05,
        bits_stored=16,
        photometric="MONOCHROME2",
        presentation_intent="FOR PRESENTATION",
        voi_lut_function="LINEAR",
        density_prior=(0.12, 0.38, 0.35, 0.15),
        modality_mix={"DM": 1.0},
        noise_scale=1.0,
        mtf_sigma_mm=0.08,
        equalisation=0.0,
        unsharp_amount=0.0,
        gamma=1.0,
        burned_in_text=True,
        film=True,
        age_mean=60.0,
    ),
}


def gaussian_blur(img: np.ndarray, sigma_px: float) -> np.ndarray:
    """Gaussian blur; wide kernels are applied on a decimated copy (same result, 20x faster)."""
    if sigma_px <= 0.05:
        return img
    if sigma_px > 12:
        factor = int(sigma_px // 4)
        rows, cols = img.shape
        small = cv2.resize(
            img, (max(cols // factor, 1), max(rows // factor, 1)), interpolation=cv2.INTER_AREA
        )
        small = cv2.GaussianBlur(small, (0, 0), sigma_px / factor, borderType=cv2.BORDER_REFLECT)
        return cv2.resize(small, (cols, rows), interpolation=cv2.INTER_LINEAR)
    return cv2.GaussianBlur(img, (0, 0), sigmaX=float(sigma_px), borderType=cv2.BORDER_REFLECT)


def photons_per_pixel(site: SiteProfile, spacing_mm: float, dose: float = 1.0) -> float:
    """Photons the median breast pixel receives: ``N0_PHOTONS`` per 0.1 mm pixel, scaled by
    the pixel area and ``dose``, divided by the site's ``noise_scale**2``."""
    area = (spacing_mm / REFERENCE_PIXEL_MM) ** 2
    return N0_PHOTONS * area * dose / site.noise_scale**2


def expose(
    line_integral: np.ndarray,
    breast: np.ndarray,
    spacing_mm: float,
    site: SiteProfile,
    rng: np.random.Generator,
    *,
    dose: float = 1.0,
) -> np.ndarray:
    """Raw detector signal (photons per pixel, float32) with scatter, blur and noise.

    Automatic exposure control scales the air kerma so that the median breast pixel gets
    ``N0 * dose / noise_scale**2`` photons, ``N0`` = ``calibration.N0_PHOTONS`` per 0.1 mm
    pixel (quantum noise about 1.6 % there at dose 1). Scatter is produced inside the breast
    only; quantum noise is blurred by the detector MTF, electronic noise is not.
    """
    ref = float(np.median(line_integral[breast])) if breast.any() else 0.0
    n0 = photons_per_pixel(site, spacing_mm, dose)
    primary = n0 * np.exp(-(line_integral - ref)).astype(np.float32)
    primary = np.minimum(primary, n0 * DIRECT_EXPOSURE_CAP)  # direct exposure outside
    # the direct beam in air around the breast adds no scatter
    scatter = site.scatter_fraction * gaussian_blur(primary * breast, SCATTER_RANGE_MM / spacing_mm)
    signal = primary + scatter
    noisy = signal + rng.standard_normal(signal.shape, dtype=np.float32) * np.sqrt(signal)
    noisy = gaussian_blur(noisy, site.mtf_sigma_mm / spacing_mm)
    noisy += rng.standard_normal(signal.shape, dtype=np.float32) * (ELECTRONIC_NOISE * n0)
    return np.clip(noisy, 1.0, None).astype(np.float32)


def present(
    raw: np.ndarray,
    breast: np.ndarray,
    spacing_mm: float,
    site: SiteProfile,
    rng: np.random.Generator,
) -> np.ndarray:
    """Vendor processing to a display image in [0, 1], bright = attenuating, background 0.

    Log transform (or an H&D film curve), peripheral equalisation, unsharp masking, a linear
    stretch between the 0.5th and 99.8th percentile of the breast, then the site's gamma:
    a stretched value ``x`` is shown as ``x ** (1 / gamma)``.
    """
    logimg = -np.log(raw)
    inside = breast if breast.any() else np.ones_like(breast)
    if site.film:
        # H&D characteristic curve (optical density is a sigmoid of log exposure) + grain
        lo, hi = np.percentile(logimg[inside], [1, 99])
        x = (logimg - (lo + hi) / 2) / max(hi - lo, 1e-6)
        img = 1.0 / (1.0 + np.exp(-4.0 * x))
        grain = gaussian_blur(rng.standard_normal(raw.shape).astype(np.float32), 0.04 / spacing_mm)
        img = img + 0.01 * grain
    else:
        img = logimg
        if site.equalisation > 0:
            w = inside.astype(np.float32)
            sig = 12.0 / spacing_mm
            low = gaussian_blur(img * w, sig) / np.maximum(gaussian_blur(w, sig), 1e-3)
            centre = float(np.median(img[inside]))
            img = img - site.equalisation * (low - centre) * w
        if site.unsharp_amount > 0:
            img = img + site.unsharp_amount * (
                img - gaussian_blur(img, site.unsharp_sigma_mm / spacing_mm)
            )
    lo, hi = np.percentile(img[inside], [0.5, 99.8])
    img = np.clip((img - lo) / max(hi - lo, 1e-6), 0.0, 1.0)
    img = img ** (1.0 / site.gamma)
    # background: no tissue -> black (minimum attenuation)
    edge = cv2.dilate(breast.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    img = np.where(edge, img, 0.0)
    return img.astype(np.float32)


def encode(display: np.ndarray, site: SiteProfile) -> tuple[np.ndarray, float, float]:
    """Stored values (uint16 within ``bits_stored``) plus the VOI window centre and width."""
    top = 2**site.bits_stored - 1
    lo = 0.02 * top
    stored = lo + display * (top - lo) * 0.97
    stored = np.where(display > 0, stored, 0.0)
    if site.photometric == "MONOCHROME1":
        stored = top - stored
    stored = np.clip(np.rint(stored), 0, top).astype(np.uint16)
    centre = top / 2
    width = top * 1.0 if site.voi_lut_function == "LINEAR" else top * 0.6
    return stored, float(centre), float(width)


def burn_in_label(stored: np.ndarray, text: str, site: SiteProfile, laterality: str) -> np.ndarray:
    """Write a laterality/view marker into the corner opposite the chest wall."""
    out = stored.copy()
    rows, cols = out.shape
    value = 0 if site.photometric == "MONOCHROME1" else 2**site.bits_stored - 1
    scale = max(rows / 900.0, 0.4)
    thick = max(int(round(2 * scale)), 1)
    (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
    margin = int(0.03 * cols)
    x = cols - tw - margin if laterality == "L" else margin
    y = int(0.04 * rows) + th
    ink = np.zeros(out.shape, dtype=np.uint8)  # OpenCV draws text on 8-bit images only
    cv2.putText(ink, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, 255, thick, cv2.LINE_AA)
    out[ink > 127] = value
    return out
