"""Procedural synthetic mammography cohort (a digital phantom) and its realism validation.

Modules: :mod:`.config` (PhantomConfig), :mod:`.patients` (sample_patient, patient_exams),
:mod:`.generator` (render_view, in named stages), :mod:`.geometry`, :mod:`.tissue`,
:mod:`.lesions`, :mod:`.acquisition` (sites and vendor processing), :mod:`.density` (true
percent density, reader category), :mod:`.physics` (attenuation coefficients), :mod:`.artefacts` (clips, implants, paddle edges),
:mod:`.calibration` (tuned constants with their targets) and the :mod:`.validation`
subpackage (realism estimators and checks; loaded on first use as ``phantom.validation``).
Used by chapter 00 and, through the cohort, by every chapter.
"""

import importlib

from . import calibration
from .acquisition import SITES, SiteProfile
from .artefacts import ARTEFACTS
from .calibration import calibration_table
from .config import PhantomConfig
from .density import DENSITY_CLASSES, density_from_pd
from .generator import RenderedImage, lesion_centre_px, render_view
from .lesions import LESION_KINDS
from .patients import PatientSpec, patient_exams, sample_patient

__all__ = [
    "ARTEFACTS",
    "DENSITY_CLASSES",
    "LESION_KINDS",
    "SITES",
    "PatientSpec",
    "PhantomConfig",
    "RenderedImage",
    "SiteProfile",
    "calibration",
    "calibration_table",
    "density_from_pd",
    "lesion_centre_px",
    "patient_exams",
    "render_view",
    "sample_patient",
    "validation",
]


def __getattr__(name: str):
    if name == "validation":  # the checks pull in scipy.stats, sklearn: only when used
        module = importlib.import_module(f"{__name__}.validation")
        globals()[name] = module
        return module
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
