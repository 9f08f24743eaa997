"""Procedural synthetic mammography cohort (a digital phantom); see notes in notebook 00."""

from .acquisition import SITES, SiteProfile
from .generator import (
    DENSITY_CLASSES,
    PatientSpec,
    PhantomConfig,
    RenderedImage,
    density_from_pd,
    render_view,
    sample_patient,
)
from .lesions import LESION_KINDS

__all__ = [
    "DENSITY_CLASSES",
    "LESION_KINDS",
    "SITES",
    "PatientSpec",
    "PhantomConfig",
    "RenderedImage",
    "SiteProfile",
    "density_from_pd",
    "render_view",
    "sample_patient",
]
