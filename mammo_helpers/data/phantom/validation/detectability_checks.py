"""Realism checks of lesion detectability: a model observer, and CNR by breast density.

:func:`observer_check` scores a channelised Hotelling observer on lesion-present vs
lesion-absent ROIs of 5-9 mm masses; targets (VICTRE in-silico trial, Badano A et al. JAMA
Netw Open 1:e185474, 2018): DM AUC 0.85-0.92 (computational reader 0.90), DBT higher
(0.96), dense breasts harder than fatty ones. :func:`contrast_check` measures the masses'
contrast-to-noise ratio per density class; target: CNR falls monotonically from A to D
(the masking effect of dense tissue). Used by chapter 00.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from mammo_helpers.vocab import DENSITIES

from ..config import PhantomConfig
from ..generator import render_view
from ..patients import sample_patient
from ._arrays import check_number
from ._renders import FIRST_PATIENT, mass_sites, single_spacing
from .cnr import contrast_to_noise
from .observers import ObserverResult, channelized_hotelling
from .rois import extract_rois

#: The breast-density groups the observer is also scored in: name -> BI-RADS classes.
DENSITY_GROUPS: dict[str, tuple[str, ...]] = {"fatty": ("A", "B"), "dense": ("C", "D")}


@dataclass(frozen=True)
class ObserverCheck:
    """Result of :func:`observer_check`.

    ``result`` is the observer on all ROIs; ``by_density`` the same observer within each
    group of :data:`DENSITY_GROUPS` ("fatty": A, B; "dense": C, D) that has at least 6 ROIs
    per class; ``rois`` one row per ROI used (``present``, ``density`` = the breast's latent
    class); ``skipped`` the number of lesion sites whose ROI crossed the skin line or the
    pectoral muscle.
    """

    result: ObserverResult
    by_density: dict[str, ObserverResult]
    rois: pd.DataFrame
    skipped: int


@dataclass(frozen=True)
class ContrastCheck:
    """Result of :func:`contrast_check`.

    ``table`` has one row per mass: density (latent class), size_mm, cnr, contrast (log
    units) and background_std. ``median_cnr`` is indexed by density class A-D;
    ``monotone`` says whether it falls strictly from A to D; ``skipped`` counts the masses
    whose surroundings crossed the skin line or the muscle.
    """

    table: pd.DataFrame
    median_cnr: pd.Series
    monotone: bool
    skipped: int


@dataclass
class _RoiSet:
    present: list
    absent: list
    records: list
    skipped: int = 0

    def count(self, with_lesion: bool) -> int:
        return len(self.present if with_lesion else self.absent)


def _check_counts(n_per_class, per_image, diameter_mm, *, least: int) -> None:
    check_number("n_per_class", n_per_class, low=least, integer=True)
    check_number("per_image", per_image, low=1, integer=True)
    low, high = (check_number("diameter_mm", d, low=0, low_open=True) for d in diameter_mm)
    if low > high:
        raise ValueError(f"diameter_mm must be (smallest, largest), got {diameter_mm!r}")


def _roi_inside_tissue(tissue: np.ndarray, centre, size: int) -> bool:
    """Whether the ``size`` px ROI at ``centre`` lies inside the image and the tissue."""
    try:
        return extract_rois(tissue, [centre], size)[0].min() >= 1
    except ValueError:  # the ROI leaves the image
        return False


def _collect_rois(config, *, n_per_class, modality, diameter_mm, roi_mm, gen, per_image):
    """Lesion-present and lesion-absent ROIs from alternating patients (L-CC / R-MLO)."""
    rois = _RoiSet([], [], [])
    i = 0
    while min(rois.count(True), rois.count(False)) < n_per_class and i < 8 * n_per_class:
        patient = sample_patient(config, FIRST_PATIENT["observer"] + i)
        lat, view = ("L", "CC") if i % 4 < 2 else ("R", "MLO")
        with_lesion = i % 2 == 0
        i += 1
        if rois.count(with_lesion) >= n_per_class:
            continue
        lesions, centres = mass_sites(
            config, patient, lat, view, modality, gen,
            per_image=per_image, diameter_mm=diameter_mm, roi_mm=roi_mm,
        )  # fmt: skip
        patient.lesions = {"L": [], "R": []}
        if with_lesion:
            patient.lesions[lat] = lesions
        im = render_view(config, patient, lat, view, keep_log_raw=True, modality=modality)
        size = int(round(roi_mm / im.spacing_mm)) // 2 * 2
        tissue = (im.breast_mask & ~im.pectoral_mask).astype(np.float32)
        target = rois.present if with_lesion else rois.absent
        for centre in centres:
            if len(target) >= n_per_class:
                break
            if not _roi_inside_tissue(tissue, centre, size):
                rois.skipped += 1  # crosses the skin line or the muscle: not this task
                continue
            target.append(extract_rois(im.log_raw, [centre], size)[0])
            rois.records.append({"present": with_lesion, "density": patient.density_latent})
    return rois


def _by_density(table, present, absent, width, rng) -> dict[str, ObserverResult]:
    """The observer within each density group with at least 6 ROIs per class."""
    out = {}
    is_present = table.present.to_numpy()
    for name, classes in DENSITY_GROUPS.items():
        keep = table.density.isin(list(classes)).to_numpy()
        sig = present[keep[is_present]]
        bkg = absent[keep[~is_present]]
        if min(len(sig), len(bkg)) >= 6:
            out[name] = channelized_hotelling(sig, bkg, width_px=width, rng=rng)
    return out


def observer_check(
    config: PhantomConfig,
    *,
    n_per_class: int = 60,
    modality: str = "DM",
    diameter_mm: tuple[float, float] = (5.0, 9.0),
    roi_mm: float = 16.0,
    rng=0,
    n_bootstrap: int = 200,
    per_image: int = 3,
) -> ObserverCheck:
    """Channelised Hotelling AUC for masses of 5-9 mm, lesion-present vs lesion-absent ROIs.

    Masses (circumscribed or indistinct, no spicules) are placed in breasts drawn from the
    cohort's distribution; present and absent ROIs come from different patients at the
    positions a lesion would take, so the observer must find the mass against anatomical
    and quantum noise. Each image carries up to ``per_image`` lesion sites at least
    ``roi_mm`` apart, so one rendering gives several ROIs. ROIs that cross the skin line or
    the pectoral muscle are skipped (as in reader studies, lesions sit inside the breast).
    The config must give one pixel spacing (set ``spacing_mm``). Returns
    :class:`ObserverCheck`.
    """
    spacing = single_spacing(config, "observer_check")
    check_number("roi_mm", roi_mm, low=0, high=min(config.canvas_mm), low_open=True)
    _check_counts(n_per_class, per_image, diameter_mm, least=4)
    gen = np.random.default_rng(rng)
    rois = _collect_rois(
        config, n_per_class=n_per_class, modality=modality, diameter_mm=diameter_mm,
        roi_mm=roi_mm, gen=gen, per_image=per_image,
    )  # fmt: skip
    n_present, n_absent = rois.count(True), rois.count(False)
    if min(n_present, n_absent) < 4:
        raise ValueError(
            f"observer_check: only {n_present} present / {n_absent} absent ROIs "
            f"fit inside the breast ({rois.skipped} skipped); use a smaller roi_mm"
        )
    table = pd.DataFrame(rois.records)
    width = 0.8 * float(np.mean(diameter_mm)) / spacing
    present, absent = np.stack(rois.present), np.stack(rois.absent)
    result = channelized_hotelling(
        present, absent, width_px=width, rng=rng, n_bootstrap=n_bootstrap
    )
    return ObserverCheck(
        result=result,
        by_density=_by_density(table, present, absent, width, rng),
        rois=table,
        skipped=rois.skipped,
    )


def _patients_by_density(config: PhantomConfig, n_per_class: int, first: int):
    """Patient indices from ``first`` on, ``n_per_class`` of each latent density class."""
    wanted = {d: [] for d in DENSITIES}
    index = first
    while any(len(v) < n_per_class for v in wanted.values()):
        if index > first + 200 * n_per_class:
            short = {d: len(v) for d, v in wanted.items() if len(v) < n_per_class}
            raise ValueError(
                f"contrast_check: the config's sites give too few patients of some density "
                f"classes ({short} of {n_per_class}); use sites with every class"
            )
        cls = sample_patient(config, index).density_latent
        if len(wanted[cls]) < n_per_class:
            wanted[cls].append(index)
        index += 1
    return wanted


def _mass_rows(im, centres, density: str, roi_mm: float) -> tuple[list[dict], int]:
    """CNR rows of the masses of ``im`` whose ``roi_mm`` square lies inside the tissue."""
    rows, skipped = [], 0
    tissue = im.breast_mask & ~im.pectoral_mask
    size = int(round(roi_mm / im.spacing_mm)) // 2 * 2
    for f in im.findings:
        centre = centres[int(f["lesion_id"][1:])]
        if not _roi_inside_tissue(tissue.astype(np.float32), centre, size):
            skipped += 1
            continue
        cnr = contrast_to_noise(im.log_raw, f["mask"], breast_mask=tissue)
        rows.append(
            {
                "density": density,
                "size_mm": f["size_mm"],
                "cnr": cnr.cnr,
                "contrast": cnr.contrast,
                "background_std": cnr.background_std,
            }
        )
    return rows, skipped


def contrast_check(
    config: PhantomConfig,
    *,
    n_per_class: int = 24,
    modality: str = "DM",
    diameter_mm: tuple[float, float] = (5.0, 9.0),
    roi_mm: float = 20.0,
    per_image: int = 3,
    rng=0,
) -> ContrastCheck:
    """Contrast-to-noise ratio of 5-9 mm masses in breasts of each density class A-D.

    ``n_per_class`` patients of each latent density class get up to ``per_image`` masses
    (circumscribed or indistinct, no spicules, centres more than ``roi_mm`` apart) in one
    view (alternating L-CC / R-MLO). Each mass's CNR is measured on ``-log`` of the raw
    image against the annulus R..2R around it (:func:`~.cnr.contrast_to_noise`); masses
    whose ``roi_mm`` square crosses the skin line or the muscle are skipped. The default
    (24 patients per class, about 70 masses per class) keeps neighbouring classes apart;
    with half as many, C and D were within noise of each other. Returns
    :class:`ContrastCheck`.
    """
    _check_counts(n_per_class, per_image, diameter_mm, least=1)
    check_number("roi_mm", roi_mm, low=0, high=min(config.canvas_mm), low_open=True)
    gen = np.random.default_rng(rng)
    rows, skipped = [], 0
    wanted = _patients_by_density(config, n_per_class, FIRST_PATIENT["contrast"])
    for density, indices in wanted.items():
        for k, index in enumerate(indices):
            patient = sample_patient(config, index)
            lat, view = ("L", "CC") if k % 2 == 0 else ("R", "MLO")
            lesions, centres = mass_sites(
                config, patient, lat, view, modality, gen,
                per_image=per_image, diameter_mm=diameter_mm, roi_mm=roi_mm,
            )  # fmt: skip
            patient.lesions = {"L": [], "R": [], lat: lesions}
            im = render_view(config, patient, lat, view, keep_log_raw=True, modality=modality)
            found, missed = _mass_rows(im, centres, density, roi_mm)
            rows.extend(found)
            skipped += missed
    table = pd.DataFrame(rows, columns=["density", "size_mm", "cnr", "contrast", "background_std"])
    median = table.groupby("density").cnr.median().reindex(list(DENSITIES))
    values = median.to_numpy()
    monotone = bool(np.all(np.isfinite(values)) and np.all(np.diff(values) < 0))
    return ContrastCheck(table=table, median_cnr=median, monotone=monotone, skipped=skipped)
