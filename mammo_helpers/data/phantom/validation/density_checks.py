"""Realism check of density: automatic percent density from the image against the truth.

Two estimators on the image alone: the Volpara-like physics estimate on the raw (log)
image with the compressed thickness from the DICOM header
(:mod:`.volumetric_density`), and the LIBRA-like k-means proxy on the processed
(presentation) image (:mod:`.percent_density`). Target: the physics estimate follows the
truth (Pearson and Spearman r >= 0.9; Deep-LIBRA reached Spearman 0.90 against an expert,
Maghsoudi OH et al. Med Image Anal 73:102138, 2021). Used by chapter 00.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from mammo_helpers.preprocess import otsu_breast_mask

from ..acquisition import SITES
from ..config import PhantomConfig
from ..generator import render_view
from ..patients import sample_patient
from ._arrays import check_number
from ._renders import FIRST_PATIENT
from .percent_density import percent_density
from .volumetric_density import volumetric_percent_density


@dataclass(frozen=True)
class DensityCheck:
    """Result of :func:`density_check`.

    ``table`` has one row per image: patient, view, site, density_latent, pd_true (the
    generator's area percent density), pd_est (physics estimate on the raw image) and
    pd_kmeans (k-means proxy on the processed image). ``pearson_r`` / ``spearman_r`` compare
    pd_est with pd_true, ``pearson_r_kmeans`` pd_kmeans with pd_true.
    """

    table: pd.DataFrame
    pearson_r: float
    spearman_r: float
    pearson_r_kmeans: float


def _estimates(im, site) -> dict:
    """Both automatic estimates of one rendered DM image."""
    # skin line from the raw image (air vs tissue), where it is sharpest
    raw_mask = otsu_breast_mask(im.log_raw)
    mask = otsu_breast_mask(im.display)
    vol = volumetric_percent_density(
        im.log_raw,
        raw_mask,
        im.truth["thickness_mm"],
        im.spacing_mm,
        scatter_gain=1.0 + site.scatter_fraction,
        exclude=im.pectoral_mask,
    )
    kmeans = percent_density(im.display, mask, method="kmeans", exclude=im.pectoral_mask)
    return {"pd_est": vol.area_percent, "pd_kmeans": kmeans}


def density_check(config: PhantomConfig, n_patients: int = 24) -> DensityCheck:
    """Automatic percent density of the L-CC and R-MLO DM views of ``n_patients`` patients
    against the generator's ground truth (see :class:`DensityCheck`).

    The compressed thickness is the generator's (real systems record it in the DICOM
    header) and the pectoral muscle is excluded with the generator's muscle mask.
    """
    check_number("n_patients", n_patients, low=2, integer=True)
    rows = []
    for i in range(n_patients):
        patient = sample_patient(config, FIRST_PATIENT["density"] + i)
        site = SITES[patient.site]
        for lat, view in (("L", "CC"), ("R", "MLO")):
            im = render_view(config, patient, lat, view, modality="DM", keep_log_raw=True)
            rows.append(
                {
                    "patient": i,
                    "view": view,
                    "site": patient.site,
                    "density_latent": patient.density_latent,
                    "pd_true": im.truth["pd_true"],
                    **_estimates(im, site),
                }
            )
    table = pd.DataFrame(rows)
    return DensityCheck(
        table=table,
        pearson_r=float(np.corrcoef(table.pd_true, table.pd_est)[0, 1]),
        spearman_r=float(stats.spearmanr(table.pd_true, table.pd_est).statistic),
        pearson_r_kmeans=float(np.corrcoef(table.pd_true, table.pd_kmeans)[0, 1]),
    )
