"""Realism checks of the phantom against published values (notes/phantom.md section 2).

Each check renders its own images from a :class:`PhantomConfig` (so it can run at any pixel
spacing) and measures them with the generic metrics of :mod:`mammo_helpers.realism`:
power-spectrum beta of DM and DBT, automatic percent density against the ground truth,
lesion detectability by a channelised Hotelling observer, four-view consistency and
generation speed. Used by notebook 00; the numbers go to its ``metrics.json``.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from mammo_helpers import realism
from mammo_helpers.preprocess import otsu_breast_mask

from .acquisition import SITES
from .generator import PhantomConfig, lesion_centre_px, render_view, sample_patient
from .lesions import sample_lesion


def _views(n_images: int):
    combos = [("L", "CC"), ("R", "MLO"), ("R", "CC"), ("L", "MLO")]
    return [combos[i % 4] for i in range(n_images)]


def beta_check(config: PhantomConfig, n_images: int = 12, modality: str = "DM", rng=0):
    """Power-spectrum beta of the log detector signal (breast minus muscle), one modality."""
    images, masks, spacings = [], [], []
    for i, (lat, view) in enumerate(_views(n_images)):
        patient = sample_patient(config, 10_000 + i)
        patient.lesions = {"L": [], "R": []}
        im = render_view(config, patient, lat, view, keep_log_raw=True, modality=modality)
        images.append(im.log_raw)
        masks.append(im.breast_mask & ~im.pectoral_mask)
        spacings.append(im.spacing_mm)
    return realism.power_spectrum_beta(images, masks, spacings, rng=rng)


def density_check(config: PhantomConfig, n_patients: int = 24):
    """Automatic percent density against the generator's ground truth.

    Two estimators on the image alone: the Volpara-like physics estimate on the raw (log)
    image with the compressed thickness from the DICOM header, and the LIBRA-like k-means
    proxy on the processed (presentation) image.
    """
    rows = []
    for i in range(n_patients):
        patient = sample_patient(config, 20_000 + i)
        site = SITES[patient.site]
        for lat, view in (("L", "CC"), ("R", "MLO")):
            im = render_view(config, patient, lat, view, modality="DM", keep_log_raw=True)
            # skin line from the raw image (air vs tissue), where it is sharpest
            raw_mask = otsu_breast_mask(im.log_raw)
            mask = otsu_breast_mask(im.display)
            vol = realism.volumetric_percent_density(
                im.log_raw,
                raw_mask,
                im.truth["thickness_mm"],
                im.spacing_mm,
                scatter_gain=1.0 + site.scatter_fraction,
                exclude=im.pectoral_mask,
            )
            kmeans = realism.percent_density(
                im.display, mask, method="kmeans", exclude=im.pectoral_mask
            )
            rows.append(
                {
                    "patient": i,
                    "view": view,
                    "site": patient.site,
                    "density_latent": patient.density_latent,
                    "pd_true": im.truth["pd_true"],
                    "pd_est": vol.area_percent,
                    "pd_kmeans": kmeans,
                }
            )
    df = pd.DataFrame(rows)
    r = float(np.corrcoef(df.pd_true, df.pd_est)[0, 1])
    return df, r


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
):
    """Channelised Hotelling AUC for masses of 5-9 mm, lesion-present vs lesion-absent ROIs.

    Masses (circumscribed or indistinct, no spicules) are placed in breasts drawn from the
    cohort's distribution; present and absent ROIs come from different patients at the
    positions a lesion would take, so the observer must find the mass against anatomical
    and quantum noise. Each image carries up to ``per_image`` lesion sites at least
    ``roi_mm`` apart, so one rendering gives several ROIs. ROIs that cross the skin line or the pectoral muscle are skipped (as
    in reader studies, lesions sit inside the breast). Returns the observer result and a
    table of the ROIs used (``present``, ``density``); ``table.attrs['skipped']`` counts
    the skipped ones.
    """
    gen = np.random.default_rng(rng)
    rois = {True: [], False: []}
    records = []
    skipped = 0
    i = 0
    while min(len(rois[True]), len(rois[False])) < n_per_class and i < 8 * n_per_class:
        patient = sample_patient(config, 30_000 + i)
        lat, view = ("L", "CC") if i % 4 < 2 else ("R", "MLO")
        with_lesion = i % 2 == 0
        i += 1
        if len(rois[with_lesion]) >= n_per_class:
            continue
        # several well separated lesion sites per image: more ROIs for the same rendering
        lesions, centres = [], []
        for _ in range(4 * per_image):
            lesion = sample_lesion(gen, "mass")
            lesion.size_mm = float(gen.uniform(*diameter_mm))
            lesion.subtype = "circumscribed" if gen.random() < 0.5 else "indistinct"
            lesion.params["n_spicules"] = 0
            lesion.params["occult_view"] = None
            centre = lesion_centre_px(config, patient, lesion, lat, view, modality)
            spacing = config.spacing_for(SITES[patient.site])
            if all(
                np.hypot(centre[0] - c[0], centre[1] - c[1]) * spacing > roi_mm for c in centres
            ):
                lesions.append(lesion)
                centres.append(centre)
            if len(lesions) == per_image:
                break
        patient.lesions = {"L": [], "R": []}
        if with_lesion:
            patient.lesions[lat] = lesions
        im = render_view(config, patient, lat, view, keep_log_raw=True, modality=modality)
        size = int(round(roi_mm / im.spacing_mm)) // 2 * 2
        tissue = (im.breast_mask & ~im.pectoral_mask).astype(np.float32)
        for centre in centres:
            if len(rois[with_lesion]) >= n_per_class:
                break
            try:
                fits = realism.extract_rois(tissue, [centre], size)[0].min() >= 1
            except ValueError:  # the ROI leaves the image
                fits = False
            if not fits:
                skipped += 1  # crosses the skin line or the muscle: not this detection task
                continue
            rois[with_lesion].append(realism.extract_rois(im.log_raw, [centre], size)[0])
            records.append({"present": with_lesion, "density": patient.density_latent})
    if min(len(rois[True]), len(rois[False])) < 4:
        raise ValueError(
            f"observer_check: only {len(rois[True])} present / {len(rois[False])} absent ROIs "
            f"fit inside the breast ({skipped} skipped); use a smaller roi_mm"
        )
    table = pd.DataFrame(records)
    table.attrs["skipped"] = skipped
    width = 0.8 * float(np.mean(diameter_mm)) / im.spacing_mm
    present, absent = np.stack(rois[True]), np.stack(rois[False])
    result = realism.channelized_hotelling(
        present, absent, width_px=width, rng=rng, n_bootstrap=n_bootstrap
    )
    # the same observer within fatty (A, B) and dense (C, D) breasts
    by_density = {}
    for name, classes in (("fatty (A, B)", "AB"), ("dense (C, D)", "CD")):
        keep = table.density.isin(list(classes)).to_numpy()
        sig = present[keep[table.present.to_numpy()]]
        bkg = absent[keep[~table.present.to_numpy()]]
        if min(len(sig), len(bkg)) >= 6:
            by_density[name] = realism.channelized_hotelling(sig, bkg, width_px=width, rng=rng)
    table.attrs["by_density"] = by_density
    return result, table


def speed_check(config: PhantomConfig, n_images: int = 8) -> float:
    """Images per second for rendering alone (one process)."""
    patients = [sample_patient(config, 40_000 + i) for i in range(n_images)]
    start = time.perf_counter()
    for p, (lat, view) in zip(patients, _views(n_images), strict=True):
        render_view(config, p, lat, view)
    return n_images / (time.perf_counter() - start)


def nipple_distance_mm(image: np.ndarray, box, laterality: str, spacing_mm: float) -> float:
    """Distance from the nipple to a box centre along the chest-wall-to-nipple axis.

    The nipple is the breast pixel farthest from the chest wall (column 0 for a left breast,
    the last column for a right one) in the Otsu breast mask of ``image``.
    """
    mask = otsu_breast_mask(image)
    cols = np.flatnonzero(mask.any(axis=0))
    nipple_col = cols[-1] if laterality == "L" else cols[0]
    centre_col = (box[0] + box[2]) / 2
    return float(abs(nipple_col - centre_col) * spacing_mm)


def four_view_check(manifest: pd.DataFrame) -> pd.DataFrame:
    """Nipple distance of every lesion seen in both views of its breast, measured on the
    stored images (the realism target: CC and MLO agree within 10 mm)."""
    from mammo_helpers.io import read_dicom

    rows = []
    for rec in manifest[manifest.findings.map(len) > 0].itertuples():
        image = read_dicom(rec.path).pixels
        for f in rec.findings:
            box = (f["xmin"], f["ymin"], f["xmax"], f["ymax"])
            rows.append(
                {
                    "patient_id": rec.patient_id,
                    "laterality": rec.laterality,
                    "lesion_id": f.get("lesion_id"),
                    "label": f["label"],
                    "view": rec.view,
                    "distance_mm": nipple_distance_mm(
                        image, box, rec.laterality, rec.pixel_spacing_mm
                    ),
                }
            )
    columns = ["patient_id", "laterality", "lesion_id", "label", "CC", "MLO", "difference_mm"]
    if not rows:
        return pd.DataFrame(columns=columns)
    long = pd.DataFrame(rows)
    wide = long.pivot_table(
        index=["patient_id", "laterality", "lesion_id", "label"],
        columns="view",
        values="distance_mm",
        aggfunc="first",
    ).reset_index()
    if not {"CC", "MLO"} <= set(wide.columns):
        return pd.DataFrame(columns=columns)
    wide = wide.dropna(subset=["CC", "MLO"])
    wide["difference_mm"] = (wide["CC"] - wide["MLO"]).abs()
    wide.columns.name = None
    return wide[columns]
