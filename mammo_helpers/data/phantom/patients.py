"""The patients of the synthetic cohort: what a patient's four views share.

:func:`sample_patient` draws the site, modality, age, latent density class, glandular
fraction, breast size and thickness of each breast, and its lesions in physical
coordinates. It is a deterministic function of (config, patient index), so any patient can
be drawn again on its own. Used by the generator and the cohort builder (chapter 00).
"""

from __future__ import annotations

import dataclasses
import numbers
from dataclasses import dataclass

import numpy as np

from mammo_helpers.vocab import LATERALITIES, MODALITIES

from . import calibration as cal
from .acquisition import SITES
from .config import PhantomConfig
from .density import DENSITY_CLASSES
from .lesions import LESION_KINDS, Lesion, sample_lesion

# Standardisation of the log glandular fraction for the thickness and depth models: a
# patient at the population's typical fraction (20 %) has z = 0, one log-sd of 0.7 gives 1.
_LOG_VGF_CENTRE = np.log(0.2)
_LOG_VGF_SCALE = 0.7


@dataclass
class PatientSpec:
    """The patient-level draws shared by a patient's views (per-breast values by laterality)."""

    index: int
    patient_id: str
    study_id: str
    site: str
    modality: str
    age: float
    density_latent: str  # category the glandular fraction was drawn from
    vgf: dict  # laterality -> volumetric glandular fraction
    thickness_mm: dict
    depth_mm: dict
    half_width_mm: dict
    beta3d: dict
    lesions: dict  # laterality -> list[Lesion]
    reader_offset: float = 0.0  # this exam's reader bias in PD points
    exam: int = 0  # 0 = the first exam; 1 = the screening exam a year later


def patient_rng(config: PhantomConfig, *keys: int) -> np.random.Generator:
    """The random stream keyed by the config's seed and ``keys`` (patient, view, ...)."""
    return np.random.default_rng([config.seed, *keys])


def _choose_modality(config: PhantomConfig, mix: dict, rng: np.random.Generator) -> str:
    if config.modality_mix is not None:
        mix = dict(zip(MODALITIES, config.modality_mix, strict=True))
        mix = {m: p for m, p in mix.items() if p > 0}
    if config.modalities:
        mix = {m: p for m, p in mix.items() if m in config.modalities} or {
            m: 1.0 for m in config.modalities
        }
    mods = list(mix)
    pm = np.asarray([mix[m] for m in mods], float)
    return mods[int(rng.choice(len(mods), p=pm / pm.sum()))]


def _thickness(z: float, rng: np.random.Generator) -> float:
    """Compressed thickness (mm) correlated with the standardised log glandular fraction."""
    corr = cal.THICKNESS_GLAND_CORR
    residual = (1 - corr**2) ** 0.5
    value = (
        cal.THICKNESS_MEAN_MM
        + corr * cal.THICKNESS_SD_MM * z
        + residual * cal.THICKNESS_SD_MM * rng.normal()
    )
    return float(np.clip(value, 30, 90))


def _breast_lesions(config: PhantomConfig, rng: np.random.Generator) -> list[Lesion]:
    found: list[Lesion] = []
    if rng.random() < config.lesion_prevalence:
        n = 1 + int(rng.random() < 0.15)
        p = np.asarray(config.lesion_mix, float)
        for _ in range(n):
            kind = LESION_KINDS[int(rng.choice(len(LESION_KINDS), p=p / p.sum()))]
            found.append(sample_lesion(rng, kind))
    return found


def sample_patient(config: PhantomConfig, index: int) -> PatientSpec:
    """Draw the patient-level parameters of patient ``index`` (an integer >= 0)."""
    if isinstance(index, bool) or not isinstance(index, numbers.Integral) or index < 0:
        raise ValueError(f"patient index must be an integer >= 0, got {index!r}")
    index = int(index)
    rng = patient_rng(config, index, 0)
    w = np.asarray(config.site_weights, float)
    site = SITES[config.sites[int(rng.choice(len(config.sites), p=w / w.sum()))]]
    modality = _choose_modality(config, site.modality_mix, rng)
    cat = int(rng.choice(4, p=np.asarray(site.density_prior) / sum(site.density_prior)))
    age = float(np.clip(rng.normal(site.age_mean, 9.0) - 3.0 * (cat - 1.5), 40, 80))
    base = np.log(cal.VGF_MEDIAN[cat]) + rng.normal(0.0, cal.VGF_LOG_SD)
    z = (base - _LOG_VGF_CENTRE) / _LOG_VGF_SCALE
    thickness = _thickness(z, rng)
    depth = float(np.clip(100 - 12 * z + 18 * rng.normal(), 60, 150))
    half_width = float(np.clip(depth * rng.uniform(0.75, 1.0), 45, 105))
    vgf, thick, dep, hw, beta, lesions = {}, {}, {}, {}, {}, {}
    for lat in LATERALITIES:
        vgf[lat] = float(np.clip(np.exp(base + rng.normal(0, 0.08)), 0.02, 0.8))
        thick[lat] = float(np.clip(thickness + rng.normal(0, 2), 30, 90))
        dep[lat] = float(np.clip(depth + rng.normal(0, 3), 60, 150))
        hw[lat] = float(np.clip(half_width + rng.normal(0, 3), 45, 105))
        beta[lat] = float(rng.uniform(*cal.BETA3D_RANGE))
        lesions[lat] = _breast_lesions(config, rng)
    return PatientSpec(
        index=index,
        patient_id=f"P{config.seed:03d}-{index:05d}",
        study_id=f"S{config.seed:03d}-{index:05d}",
        site=site.name,
        modality=modality,
        age=round(age, 1),
        density_latent=DENSITY_CLASSES[cat],
        vgf=vgf,
        thickness_mm=thick,
        depth_mm=dep,
        half_width_mm=hw,
        beta3d=beta,
        lesions=lesions,
        reader_offset=float(rng.normal(0.0, config.reader_noise_pd)),
    )


#: A year of involution: the glandular fraction of a repeat exam is this times the first
#: exam's. An assumption of the phantom (longitudinal studies report volumetric density
#: falling by a few percent a year at screening ages), stated in chapter 01.
VGF_YEARLY_FACTOR = 0.95


def repeat_exam(config: PhantomConfig, patient: PatientSpec) -> PatientSpec:
    """``patient``'s screening exam a year later: the same breasts, tissue structure and
    lesions, one year older, glandular fraction times :data:`VGF_YEARLY_FACTOR`, its own
    reader bias and (when drawn) its own noise. The study id ends in ``-Y1``."""
    rng = patient_rng(config, patient.index, 0, 1)
    return dataclasses.replace(
        patient,
        study_id=f"{patient.study_id}-Y1",
        exam=1,
        age=round(patient.age + 1.0, 1),
        vgf={lat: v * VGF_YEARLY_FACTOR for lat, v in patient.vgf.items()},
        reader_offset=float(rng.normal(0.0, config.reader_noise_pd)),
    )


def patient_exams(config: PhantomConfig, index: int) -> list[PatientSpec]:
    """The exams of patient ``index``: the first, and a repeat a year later for a share
    ``config.repeat_share`` of patients (drawn on its own stream, so the first exams are
    the same whatever the share). Chapter 01 keeps such longitudinal patients in training."""
    first = sample_patient(config, index)
    if patient_rng(config, index, 0, 2).random() < config.repeat_share:
        return [first, repeat_exam(config, first)]
    return [first]
