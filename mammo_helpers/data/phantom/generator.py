"""Images of the synthetic cohort (the digital phantom): one view of one patient.

:func:`render_view` draws one view as stored DICOM pixel values with its findings, exact
lesion masks and ground truth, in named stages:

1. :func:`view_setup` - the view's random stream, breast outline and pixel grid;
2. :func:`gland_fractions` - the glandular tissue (DM projection, DBT slab and blur) on the
   output grid, pulled in around architectural distortions;
3. :func:`attenuation_columns` - Beer-Lambert line integrals through skin, muscle and tissue;
4. :func:`insert_lesions` - each lesion's extra line integral and its finding;
5. :func:`modality_image` - DM, DBT central slice or synthesized 2-D from those columns;
6. acquisition (:mod:`.acquisition`) - exposure, noise, vendor processing, encoding;
7. :func:`to_image_frame` - right breasts mirrored, burned-in labels, boxes from masks.

Everything is a deterministic function of (config, patient, view, modality), so any image
can be regenerated on its own. Used by chapter 00 via :mod:`mammo_helpers.data.cohort`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from mammo_helpers.vocab import MODALITIES, check_laterality, check_view

from . import acquisition as acq
from . import calibration as cal
from .artefacts import add_artefacts, check_artefacts
from .config import PhantomConfig
from .density import percent_density_true
from .geometry import BreastGeometry, Canvas, GeometryMaps, rasterize, sample_geometry
from .lesions import Lesion, lesion_centre_mm, render_lesion
from .patients import PatientSpec, patient_rng
from .physics import MU_GLAND, MU_MUSCLE, MU_SKIN, tissue_attenuation
from .tissue import glandular_maps, to_output_grid

_MODALITY_STREAM = {"DM": 0, "s2D": 1, "DBT": 2}
_ARTEFACT_STREAM = 50  # + view code: where artefacts go
_REPEAT_STREAM = 60  # + view code, exam: a repeat exam's exposure


def _view_code(laterality: str, view: str) -> int:
    """0-3 for LCC, LMLO, RCC, RMLO."""
    return (laterality == "R") * 2 + (view == "MLO")


@dataclass
class RenderedImage:
    """One view: stored pixels, DICOM settings, findings with exact masks, ground truth.

    Each finding is a dict with label, box (xmin, ymin, xmax, ymax in pixels), malignant,
    subtype, size_mm, lesion_id (the same lesion in the breast's other view), contrast (mean
    added line integral inside the mask, log units, before noise; 0 for asymmetries, which
    are drawn through the tissue model) and mask (bool array).
    """

    stored: np.ndarray  # uint16 stored values
    photometric: str
    bits_stored: int
    window_center: float
    window_width: float
    voi_lut_function: str
    spacing_mm: float
    laterality: str
    view: str
    modality: str
    findings: list  # dicts with label, box, malignant, subtype and "mask" (bool array)
    breast_mask: np.ndarray
    pectoral_mask: np.ndarray
    truth: dict  # pd_true, vgf, thickness_mm, beta3d, nipple_depth_mm, density_latent
    display: np.ndarray  # processed image in [0, 1] (before encoding), bright = dense
    log_raw: np.ndarray | None = None  # -log(raw detector signal), for realism checks
    extra: dict = field(default_factory=dict)


@dataclass
class GlandFractions:
    """Projected glandular fractions of one view on the output grid (breast frame)."""

    dm: np.ndarray  # full projection (DM)
    slab: np.ndarray | None  # in-focus DBT slab (DBT and s2D only)
    tomo: np.ndarray | None  # tomosynthesis-blurred projection (DBT and s2D only)
    vgf_realised: float

    def warped(self, centre_rc, radius_px: float, amount: float) -> GlandFractions:
        """The same fractions pulled towards ``centre_rc`` (an architectural distortion)."""

        def warp(a):
            return None if a is None else _warp_towards(a, centre_rc, radius_px, amount)

        return GlandFractions(warp(self.dm), warp(self.slab), warp(self.tomo), self.vgf_realised)


@dataclass
class AttenuationColumns:
    """Line integrals of the breast without lesions, and the attenuation they came from."""

    tissue_path: np.ndarray  # path through fat/gland (thickness minus skin), mm
    mu_dm: np.ndarray
    line_dm: np.ndarray
    mu_slab: np.ndarray | None = None
    mu_tomo: np.ndarray | None = None
    line_dbt: np.ndarray | None = None


def _warp_towards(img: np.ndarray, centre_rc, radius_px: float, amount: float) -> np.ndarray:
    """Pull tissue towards a point (architectural distortion)."""
    rows, cols = img.shape
    yy, xx = np.mgrid[0:rows, 0:cols].astype(np.float32)
    dy, dx = yy - centre_rc[0], xx - centre_rc[1]
    r = np.sqrt(dx**2 + dy**2)
    k = 1.0 + amount * np.exp(-((r / radius_px) ** 2))
    return cv2.remap(
        img,
        centre_rc[1] + dx * k,
        centre_rc[0] + dy * k,
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REFLECT,
    )


def _check_modality(modality) -> str:
    if modality not in MODALITIES:
        raise ValueError(f"modality must be one of {', '.join(MODALITIES)}; got {modality!r}")
    return modality


def view_setup(
    config: PhantomConfig, patient: PatientSpec, laterality: str, view: str, modality: str
) -> tuple[np.random.Generator, BreastGeometry, Canvas]:
    """Random stream and breast geometry of one view (the first draws of its stream)."""
    site = acq.SITES[patient.site]
    canvas = Canvas(*config.canvas_mm, config.spacing_for(site))
    key = (patient.index, 1 + _view_code(laterality, view))
    rng = patient_rng(config, *key, _MODALITY_STREAM[modality])
    geom = sample_geometry(
        rng,
        view,
        depth_mm=patient.depth_mm[laterality],
        half_width_mm=patient.half_width_mm[laterality],
        thickness_mm=patient.thickness_mm[laterality],
        canvas=canvas,
    )
    return rng, geom, canvas


def _centre_px(lesion: Lesion, geom: BreastGeometry, canvas: Canvas) -> tuple[float, float]:
    """(row, col) of a lesion's centre in the breast frame (chest wall at column 0)."""
    u, v = lesion_centre_mm(lesion, geom)
    return (v + canvas.height_mm / 2) / canvas.spacing_mm - 0.5, u / canvas.spacing_mm - 0.5


def lesion_centre_px(config, patient, lesion, laterality, view, modality=None):
    """(row, col) where ``lesion`` would be drawn in this view (image frame)."""
    modality = _check_modality(modality or patient.modality)
    _, geom, canvas = view_setup(config, patient, laterality, view, modality)
    row, col = _centre_px(lesion, geom, canvas)
    if laterality == "R":
        col = canvas.shape[1] - 1 - col
    return row, col


def gland_fractions(
    geom: BreastGeometry,
    canvas: Canvas,
    patient: PatientSpec,
    laterality: str,
    lesions: list[Lesion],
    rng: np.random.Generator,
    *,
    need_dbt: bool,
    dbt_half_angle_deg: float,
) -> GlandFractions:
    """Glandular fractions on the output grid; asymmetries raise the glandular envelope."""
    asym = []
    for les in lesions:
        if les.kind == "asymmetry":
            u, v = lesion_centre_mm(les, geom)
            asym.append((u, v, les.size_mm / 2.5, les.params["boost"]))
    tissue = glandular_maps(
        geom,
        canvas,
        vgf=patient.vgf[laterality],
        beta3d=patient.beta3d[laterality],
        rng=rng,
        asymmetry=asym,
        need_dbt=need_dbt,
        dbt_half_angle_deg=dbt_half_angle_deg,
    )
    coarse_inside = rasterize(geom, tissue.coarse).breast
    shape = canvas.shape

    def on_grid(frac):
        return to_output_grid(frac, coarse_inside, shape)

    return GlandFractions(
        dm=on_grid(tissue.dm_fraction),
        slab=on_grid(tissue.slab_fraction) if need_dbt else None,
        tomo=on_grid(tissue.tomo_fraction) if need_dbt else None,
        vgf_realised=tissue.vgf_realised,
    )


def attenuation_columns(fractions: GlandFractions, maps: GeometryMaps) -> AttenuationColumns:
    """Beer-Lambert line integrals of the breast, per modality's glandular fraction.

    DBT's is the in-focus slab (weight ``DBT_SLAB_WEIGHT``) plus the blurred rest.
    """
    tissue_t = np.clip(maps.thickness - maps.skin_path, 0.0, None)

    def column(frac):
        mu = tissue_attenuation(frac)
        return mu, tissue_t * mu + maps.skin_path * MU_SKIN + maps.muscle_path * (MU_MUSCLE - mu)

    mu_dm, line_dm = column(fractions.dm)
    cols = AttenuationColumns(tissue_path=tissue_t, mu_dm=mu_dm, line_dm=line_dm)
    if fractions.slab is not None:
        alpha = cal.DBT_SLAB_WEIGHT
        cols.mu_slab, line_slab = column(fractions.slab)
        cols.mu_tomo, line_tomo = column(fractions.tomo)
        cols.line_dbt = alpha * line_slab + (1 - alpha) * line_tomo
    return cols


def _blur(img: np.ndarray, sigma_px: float) -> np.ndarray:
    """Margin blur of a lesion (skipped below a third of a pixel)."""
    return cv2.GaussianBlur(img, (0, 0), sigma_px) if sigma_px > 0.3 else img


def lesion_line_integrals(lesion: Lesion, rendered, cols: AttenuationColumns, geom, spacing):
    """Extra line integral of one lesion in DM and (if simulated) DBT.

    A mass replaces the tissue it sits in; calcifications add to it (tiny volume); the
    strands of an architectural distortion replace the local tissue; an asymmetry has no
    path of its own (it is drawn through the tissue model), so it adds nothing here. In DBT,
    material in focus gains ``depth_gain`` (the slab collects it from the whole thickness).
    """
    alpha, slab_mm = cal.DBT_SLAB_WEIGHT, cal.DBT_SLAB_MM
    need_dbt = cols.line_dbt is not None
    depth_gain = alpha * geom.thickness_mm / slab_mm + 1 - alpha  # in-focus boost of DBT
    path = rendered.path_mm
    mu_les = MU_GLAND * rendered.mu_ratio
    d_dbt = None
    if lesion.kind == "mass":
        sigma = rendered.blur_mm / spacing
        d_dm = _blur(path * (mu_les - cols.mu_dm), sigma)
        if need_dbt:
            in_slab = np.minimum(path, slab_mm) / slab_mm
            d_dbt = alpha * cols.tissue_path * in_slab * (mu_les - cols.mu_slab) + (
                1 - alpha
            ) * path * (mu_les - cols.mu_tomo)
            d_dbt = _blur(d_dbt, sigma)
    elif lesion.kind == "calcification":
        d_dm = path * mu_les
        d_dbt = d_dm * depth_gain if need_dbt else None
    else:  # distortion strands (and asymmetries, whose path is zero)
        d_dm = path * (mu_les - cols.mu_dm)
        d_dbt = path * (mu_les - cols.mu_tomo) * depth_gain if need_dbt else None
    return d_dm, d_dbt


def insert_lesions(
    lesions: list[Lesion],
    centres: list,
    cols: AttenuationColumns,
    maps: GeometryMaps,
    geom: BreastGeometry,
    spacing: float,
    *,
    modality: str,
    view: str,
) -> list[dict]:
    """Add every visible lesion to ``cols`` (in place) and return its findings (breast frame).

    A mass occult in this view and a lesion with fewer than 4 pixels inside the breast are
    left out. A finding's ``signal`` is the mean added line integral inside its mask.
    """
    findings = []
    shape = maps.breast.shape
    for les, centre in zip(lesions, centres, strict=True):
        if les.kind == "mass" and les.params.get("occult_view") == view:
            continue
        rendered = render_lesion(les, centre, spacing, shape)
        mask = rendered.mask & maps.breast
        if mask.sum() < 4:
            continue
        rendered.path_mm = rendered.path_mm * maps.breast
        d_dm, d_dbt = lesion_line_integrals(les, rendered, cols, geom, spacing)
        cols.line_dm = cols.line_dm + d_dm
        if d_dbt is not None:
            cols.line_dbt = cols.line_dbt + d_dbt
        signal = d_dbt if modality == "DBT" else d_dm
        findings.append({"lesion": les, "mask": mask, "signal": float(signal[mask].mean())})
    return findings


def modality_image(cols: AttenuationColumns, modality: str, spacing: float, breast) -> np.ndarray:
    """Line-integral image of ``modality`` (float32, zero outside the breast).

    DM is the projection. The DBT central slice adds a high-frequency boost
    (``DBT_RECON_BOOST`` below ``DBT_RECON_SIGMA_MM``): the ramp and slice-thickness filters
    of filtered back-projection suppress the low frequencies of overlapping tissue. A
    synthesized 2-D image is DM plus ``S2D_HIGHPASS_WEIGHT`` times the in-focus (high-pass)
    structure of the DBT slab.
    """
    if modality == "DM":
        line = cols.line_dm
    elif modality == "DBT":
        dbt = cols.line_dbt
        low = cv2.GaussianBlur(dbt, (0, 0), cal.DBT_RECON_SIGMA_MM / spacing)
        line = dbt + cal.DBT_RECON_BOOST * (dbt - low)
    else:
        dbt = cols.line_dbt
        highpass = dbt - cv2.GaussianBlur(dbt, (0, 0), cal.S2D_HIGHPASS_SIGMA_MM / spacing)
        line = cols.line_dm + cal.S2D_HIGHPASS_WEIGHT * highpass
    return np.where(breast, line, 0.0).astype(np.float32)


def _finding_record(f: dict, laterality: str, mask: np.ndarray, lesion_index: int) -> dict:
    """A finding as stored: box from its mask (image frame), labels and the mask."""
    les: Lesion = f["lesion"]
    rr = np.flatnonzero(mask.any(axis=1))
    cc = np.flatnonzero(mask.any(axis=0))
    return {
        "label": les.label,
        "xmin": float(cc[0]),
        "ymin": float(rr[0]),
        "xmax": float(cc[-1] + 1),
        "ymax": float(rr[-1] + 1),
        "malignant": bool(les.malignant),
        "subtype": les.subtype,
        "size_mm": round(les.size_mm, 2),
        "lesion_id": f"{laterality}{lesion_index}",  # the same lesion in the other view
        "contrast": round(f["signal"], 5),
        "mask": np.ascontiguousarray(mask),
    }


def to_image_frame(
    images: dict, findings: list, patient, laterality, view, site, *, text: bool = False
) -> list[dict]:
    """Mirror a right breast (``images`` in place), burn in labels, finding records.

    ``images`` maps names to breast-frame arrays (chest wall at column 0); for a right
    breast each is flipped so its chest wall is the last column. Labels are burned in where
    the site does so, or everywhere with ``text``.
    """
    flip = laterality == "R"
    if flip:
        for name in images:
            images[name] = images[name][:, ::-1]
    if site.burned_in_text or text:
        images["stored"] = acq.burn_in_label(
            images["stored"], f"{laterality} {view}", site, laterality
        )
    all_lesions = patient.lesions[laterality]
    return [
        _finding_record(
            f, laterality, f["mask"][:, ::-1] if flip else f["mask"], all_lesions.index(f["lesion"])
        )
        for f in findings
    ]


def _distorted(fractions: GlandFractions, lesions, centres, spacing) -> GlandFractions:
    """Glandular fractions pulled in around every architectural distortion."""
    for les, centre in zip(lesions, centres, strict=True):
        if les.kind == "architectural_distortion":
            radius = les.size_mm / 2 / spacing
            fractions = fractions.warped(centre, radius, les.params["warp"])
    return fractions


def _acquire(line, breast, spacing, site, rng, dose) -> tuple[dict, float, float]:
    """Exposure, vendor processing and encoding: stored, display and -log(raw) images."""
    raw = acq.expose(line, breast, spacing, site, rng, dose=dose)
    display = acq.present(raw, breast, spacing, site, rng)
    stored, wc, ww = acq.encode(display, site)
    return {"stored": stored, "display": display, "log_raw": -np.log(raw)}, wc, ww


def _truth(images: dict, fractions: GlandFractions, geom, patient, laterality) -> dict:
    return {
        "pd_true": percent_density_true(images["gland"], images["breast"], images["pectoral"]),
        "vgf": fractions.vgf_realised,
        "thickness_mm": geom.thickness_mm,
        "beta3d": patient.beta3d[laterality],
        "nipple_depth_mm": geom.depth_mm,
        "density_latent": patient.density_latent,
    }


def render_view(
    config: PhantomConfig,
    patient: PatientSpec,
    laterality: str,
    view: str,
    *,
    keep_log_raw: bool = False,
    modality: str | None = None,
    artefacts=(),
) -> RenderedImage:
    """Draw one view of ``patient`` (chest wall at column 0 for L, last column for R).

    ``modality`` (DM, s2D or DBT) defaults to the patient's; ``keep_log_raw`` also returns
    ``-log`` of the raw detector signal and the projected glandular fraction (for the
    realism checks); ``artefacts`` names objects of
    :data:`~mammo_helpers.data.phantom.artefacts.ARTEFACTS` to put in the beam. A repeat
    exam (``patient.exam`` > 0) has the same breast and tissue structure and its own
    quantum noise. The stages are listed in the module docstring.
    """
    check_laterality(laterality)
    check_view(view)
    modality = _check_modality(modality or patient.modality)
    artefacts = check_artefacts(artefacts)
    site = acq.SITES[patient.site]
    rng, geom, canvas = view_setup(config, patient, laterality, view, modality)
    spacing = canvas.spacing_mm
    maps = rasterize(geom, canvas)
    lesions = [les for les in patient.lesions[laterality] if view in les.views]
    fractions = gland_fractions(
        geom, canvas, patient, laterality, lesions, rng,
        need_dbt=modality in ("DBT", "s2D"), dbt_half_angle_deg=site.dbt_half_angle_deg,
    )  # fmt: skip
    centres = [_centre_px(les, geom, canvas) for les in lesions]
    fractions = _distorted(fractions, lesions, centres, spacing)
    cols = attenuation_columns(fractions, maps)
    found = insert_lesions(
        lesions, centres, cols, maps, geom, spacing, modality=modality, view=view
    )
    line = modality_image(cols, modality, spacing, maps.breast)
    view_code = _view_code(laterality, view)
    if artefacts:
        art_rng = patient_rng(config, patient.index, _ARTEFACT_STREAM + view_code)
        line = add_artefacts(line, maps.breast, spacing, artefacts, art_rng)
    if patient.exam:  # a later exam: same tissue, new exposure
        rng = patient_rng(config, patient.index, _REPEAT_STREAM + view_code, patient.exam)
    images, wc, ww = _acquire(line, maps.breast, spacing, site, rng, config.dose)
    images.update(gland=fractions.dm, breast=maps.breast, pectoral=maps.pectoral)
    findings = to_image_frame(
        images, found, patient, laterality, view, site, text="text" in artefacts
    )
    images = {name: np.ascontiguousarray(a) for name, a in images.items()}
    return RenderedImage(
        stored=images["stored"],
        photometric=site.photometric,
        bits_stored=site.bits_stored,
        window_center=wc,
        window_width=ww,
        voi_lut_function=site.voi_lut_function,
        spacing_mm=spacing,
        laterality=laterality,
        view=view,
        modality=modality,
        findings=findings,
        breast_mask=images["breast"],
        pectoral_mask=images["pectoral"],
        truth=_truth(images, fractions, geom, patient, laterality),
        display=images["display"],
        log_raw=images["log_raw"] if keep_log_raw else None,
        extra={"gland_fraction": images["gland"]} if keep_log_raw else {},
    )
