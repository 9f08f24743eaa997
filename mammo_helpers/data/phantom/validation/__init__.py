"""Realism validation of the phantom: how close are its images to real mammograms?

Generic estimators (plain 2-D arrays, boolean masks and, where units matter, the pixel
spacing in mm; they work on real images too):

- :mod:`.power_spectrum` - anatomical-noise exponent beta (:func:`power_spectrum_beta`);
- :mod:`.percent_density` - area percent density, a LIBRA-like proxy (:func:`percent_density`);
- :mod:`.volumetric_density` - Volpara-like physics estimate (:func:`volumetric_percent_density`);
- :mod:`.observers` - channelised Hotelling observer (:func:`channelized_hotelling`);
- :mod:`.cnr` - lesion contrast-to-noise ratio (:func:`contrast_to_noise`);
- :mod:`.noise` - variance against mean of a raw image (:func:`noise_variance_fit`);
- :mod:`.rois` - ROI windows, tiling and extraction.

Checks of the phantom against published targets (each renders its own images from a
:class:`~mammo_helpers.data.phantom.PhantomConfig` and returns a dataclass):
:func:`beta_check`, :func:`density_check`, :func:`observer_check`, :func:`contrast_check`,
:func:`noise_check`, :func:`four_view_check`, :func:`speed_check`.

Random choices (ROI placement, train/test split, bootstrap) take ``rng``: ``None`` means a
fixed seed 0, so results are reproducible by default. Used by chapter 00.
"""

from .cnr import CNRResult, contrast_to_noise
from .density_checks import DensityCheck, density_check
from .detectability_checks import (
    DENSITY_GROUPS,
    ContrastCheck,
    ObserverCheck,
    contrast_check,
    observer_check,
)
from .four_view_checks import FourViewCheck, four_view_check, nipple_distance_mm
from .noise import NoiseFitResult, noise_variance_fit
from .noise_checks import NoiseCheck, noise_check
from .observers import ObserverResult, channelized_hotelling, laguerre_gauss_channels
from .percent_density import percent_density
from .power_spectrum import BetaResult, power_spectrum_beta
from .rois import extract_rois, window_counts
from .spectrum_checks import beta_check
from .speed_checks import speed_check
from .volumetric_density import VolumetricDensity, volumetric_percent_density

__all__ = [
    "DENSITY_GROUPS",
    "BetaResult",
    "CNRResult",
    "ContrastCheck",
    "DensityCheck",
    "FourViewCheck",
    "NoiseCheck",
    "NoiseFitResult",
    "ObserverCheck",
    "ObserverResult",
    "VolumetricDensity",
    "beta_check",
    "channelized_hotelling",
    "contrast_check",
    "contrast_to_noise",
    "density_check",
    "extract_rois",
    "four_view_check",
    "laguerre_gauss_channels",
    "nipple_distance_mm",
    "noise_check",
    "noise_variance_fit",
    "observer_check",
    "percent_density",
    "power_spectrum_beta",
    "speed_check",
    "volumetric_percent_density",
    "window_counts",
]
