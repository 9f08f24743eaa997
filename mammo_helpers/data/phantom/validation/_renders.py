"""Images rendered for the realism checks: which views, lesion-free patients, test masses.

Each check draws its patients from its own block of patient indices (so the checks do not
share patients with each other or with a cohort of fewer than 10,000 patients). Used by the
checks of chapter 00.
"""

from __future__ import annotations

import numpy as np

from ..acquisition import SITES
from ..config import PhantomConfig
from ..generator import RenderedImage, lesion_centre_px, render_view
from ..lesions import Lesion, sample_lesion
from ..patients import PatientSpec, sample_patient

#: First patient index of each check's block.
FIRST_PATIENT = {
    "beta": 10_000,
    "density": 20_000,
    "observer": 30_000,
    "speed": 40_000,
    "noise": 50_000,
    "contrast": 60_000,
}
_CYCLE = (("L", "CC"), ("R", "MLO"), ("R", "CC"), ("L", "MLO"))


def check_views(n_images: int) -> list[tuple[str, str]]:
    """(laterality, view) of ``n_images`` images, cycling L-CC, R-MLO, R-CC, L-MLO."""
    return [_CYCLE[i % 4] for i in range(n_images)]


def lesion_free(config: PhantomConfig, index: int) -> PatientSpec:
    """Patient ``index`` with every lesion removed."""
    patient = sample_patient(config, index)
    patient.lesions = {"L": [], "R": []}
    return patient


def render_lesion_free(config, check: str, n_images: int, modality: str) -> list[RenderedImage]:
    """``n_images`` lesion-free views (raw image kept) from ``check``'s block of patients."""
    first = FIRST_PATIENT[check]
    return [
        render_view(
            config, lesion_free(config, first + i), lat, view, keep_log_raw=True, modality=modality
        )
        for i, (lat, view) in enumerate(check_views(n_images))
    ]


def single_spacing(config: PhantomConfig, check: str) -> float:
    """The one pixel spacing of every image ``config`` draws, or ``ValueError``."""
    spacings = {config.spacing_for(SITES[s]) for s in config.sites}
    if len(spacings) != 1:
        raise ValueError(
            f"{check} needs one pixel spacing for every image, but the config's sites give "
            f"{sorted(spacings)} mm: set PhantomConfig.spacing_mm"
        )
    return spacings.pop()


def probe_mass(gen: np.random.Generator, diameter_mm: tuple[float, float]) -> Lesion:
    """A mass of ``diameter_mm``, circumscribed or indistinct, no spicules, in both views."""
    lesion = sample_lesion(gen, "mass")
    lesion.size_mm = float(gen.uniform(*diameter_mm))
    lesion.subtype = "circumscribed" if gen.random() < 0.5 else "indistinct"
    lesion.params["n_spicules"] = 0
    lesion.params["occult_view"] = None
    return lesion


def mass_sites(config, patient, lat, view, modality, gen, *, per_image, diameter_mm, roi_mm):
    """Up to ``per_image`` test masses whose centres lie more than ``roi_mm`` apart.

    Returns the masses and their centres (row, col) in the image frame; tries
    ``4 * per_image`` candidates.
    """
    spacing = config.spacing_for(SITES[patient.site])
    lesions, centres = [], []
    for _ in range(4 * per_image):
        lesion = probe_mass(gen, diameter_mm)
        centre = lesion_centre_px(config, patient, lesion, lat, view, modality)
        if all(np.hypot(centre[0] - c[0], centre[1] - c[1]) * spacing > roi_mm for c in centres):
            lesions.append(lesion)
            centres.append(centre)
        if len(lesions) == per_image:
            break
    return lesions, centres
