"""Patients and images of the synthetic cohort (the digital phantom).

:func:`sample_patient` draws everything that is shared by a patient's four views (site,
age, breast size and thickness, glandular fraction, lesions in physical coordinates);
:func:`render_view` draws one view as stored DICOM pixel values with its findings, exact
lesion masks and ground truth. Both are deterministic functions of (config, patient index),
so any image can be regenerated on its own. Used by notebook 00 via
:mod:`mammo_helpers.data.cohort`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from . import acquisition as acq
from .geometry import Canvas, rasterize, sample_geometry
from .lesions import LESION_KINDS, Lesion, lesion_centre_mm, render_lesion, sample_lesion
from .tissue import glandular_maps, to_output_grid

DENSITY_CLASSES = ("A", "B", "C", "D")
# volumetric glandular fraction per category (VICTRE presets: 5 / 15 / 34 / 60 %)
_VGF_MEDIAN = (0.08, 0.15, 0.32, 0.55)
# reader cut points on area percent density (%), chosen so that the category medians
# fall near the reader-assigned medians 6 / 15 / 51 / 78 % (Acad Radiol 2006)
PD_CUTPOINTS = (8.0, 30.0, 68.0)
DENSE_FRACTION_THRESHOLD = 0.28
DBT_RECON_BOOST = 1.0  # high-frequency boost of the simulated DBT reconstruction  # projected glandular fraction that reads as "dense"


@dataclass(frozen=True)
class PhantomConfig:
    """Everything that defines a synthetic cohort; the same config gives the same pixels."""

    seed: int = 0
    resolution_scale: float = 4.0  # output spacing = site spacing x this (1.0 = native)
    spacing_mm: float | None = None  # one spacing for every site (overrides the scale)
    sites: tuple[str, ...] = ("site_A", "site_B", "site_C", "site_D")
    site_weights: tuple[float, ...] = (0.35, 0.25, 0.25, 0.15)
    lesion_prevalence: float = 0.35  # P(a breast has at least one lesion): enriched cohort
    lesion_mix: tuple[float, ...] = (0.45, 0.25, 0.1, 0.2)  # LESION_KINDS order
    reader_noise_pd: float = 6.0  # reader variability in percent-density points
    dose: float = 1.0
    canvas_mm: tuple[float, float] = (240.0, 192.0)
    modalities: tuple[str, ...] | None = None  # restrict studies to these modalities

    def __post_init__(self):
        if len(self.site_weights) != len(self.sites):
            raise ValueError("site_weights must have one weight per site")
        for s in self.sites:
            if s not in acq.SITES:
                raise ValueError(f"unknown site {s!r}; known sites: {sorted(acq.SITES)}")
        if self.resolution_scale <= 0 or (self.spacing_mm is not None and self.spacing_mm <= 0):
            raise ValueError("resolution_scale and spacing_mm must be positive")
        if not 0 <= self.lesion_prevalence <= 1:
            raise ValueError("lesion_prevalence must be in [0, 1]")

    def spacing_for(self, site: acq.SiteProfile) -> float:
        if self.spacing_mm is not None:
            return float(self.spacing_mm)
        return round(site.spacing_mm * self.resolution_scale, 4)


@dataclass
class PatientSpec:
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


def _rng(config: PhantomConfig, *keys: int) -> np.random.Generator:
    return np.random.default_rng([config.seed, *keys])


def sample_patient(config: PhantomConfig, index: int) -> PatientSpec:
    """Draw the patient-level parameters of patient ``index``."""
    rng = _rng(config, index, 0)
    w = np.asarray(config.site_weights, float)
    site = acq.SITES[config.sites[int(rng.choice(len(config.sites), p=w / w.sum()))]]
    mix = site.modality_mix
    if config.modalities:
        mix = {m: p for m, p in mix.items() if m in config.modalities} or {
            m: 1.0 for m in config.modalities
        }
    mods = list(mix)
    pm = np.asarray([mix[m] for m in mods], float)
    modality = mods[int(rng.choice(len(mods), p=pm / pm.sum()))]
    cat = int(rng.choice(4, p=np.asarray(site.density_prior) / sum(site.density_prior)))
    age = float(np.clip(rng.normal(site.age_mean, 9.0) - 3.0 * (cat - 1.5), 40, 80))
    base = np.log(_VGF_MEDIAN[cat]) + rng.normal(0.0, 0.22)
    z = (base - np.log(0.2)) / 0.7  # standardised log glandular fraction
    thickness = float(np.clip(59 - 0.6 * 16 * z + 0.8 * 16 * rng.normal(), 30, 90))
    depth = float(np.clip(100 - 12 * z + 18 * rng.normal(), 60, 150))
    half_width = float(np.clip(depth * rng.uniform(0.75, 1.0), 45, 105))
    vgf, thick, dep, hw, beta, lesions = {}, {}, {}, {}, {}, {}
    for lat in ("L", "R"):
        vgf[lat] = float(np.clip(np.exp(base + rng.normal(0, 0.08)), 0.02, 0.8))
        thick[lat] = float(np.clip(thickness + rng.normal(0, 2), 30, 90))
        dep[lat] = float(np.clip(depth + rng.normal(0, 3), 60, 150))
        hw[lat] = float(np.clip(half_width + rng.normal(0, 3), 45, 105))
        beta[lat] = float(rng.uniform(3.4, 3.9))
        found: list[Lesion] = []
        if rng.random() < config.lesion_prevalence:
            n = 1 + int(rng.random() < 0.15)
            p = np.asarray(config.lesion_mix, float)
            for _ in range(n):
                kind = LESION_KINDS[int(rng.choice(len(LESION_KINDS), p=p / p.sum()))]
                found.append(sample_lesion(rng, kind))
        lesions[lat] = found
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


@dataclass
class RenderedImage:
    """One view: stored pixels, DICOM settings, findings with exact masks, ground truth."""

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
    truth: dict  # pd_true, vgf, thickness_mm, beta3d, lesion contrasts ...
    display: np.ndarray  # processed image in [0, 1] (before encoding), bright = dense
    log_raw: np.ndarray | None = None  # -log(raw detector signal), for realism checks
    extra: dict = field(default_factory=dict)


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


def percent_density_true(frac: np.ndarray, breast: np.ndarray, pectoral: np.ndarray) -> float:
    """Ground-truth area percent density: share of breast (no muscle) that reads as dense."""
    region = breast & ~pectoral
    if not region.any():
        return 0.0
    return float(100.0 * (frac[region] > DENSE_FRACTION_THRESHOLD).mean())


def density_from_pd(pd: float) -> str:
    return DENSITY_CLASSES[int(np.searchsorted(PD_CUTPOINTS, pd))]


def _view_setup(config, patient, laterality, view, modality):
    """Random stream and breast geometry of one view (the first draws of its stream)."""
    site = acq.SITES[patient.site]
    canvas = Canvas(*config.canvas_mm, config.spacing_for(site))
    key = (patient.index, 1 + (laterality == "R") * 2 + (view == "MLO"))
    rng = _rng(config, *key, {"DM": 0, "s2D": 1, "DBT": 2}[modality])
    geom = sample_geometry(
        rng,
        view,
        depth_mm=patient.depth_mm[laterality],
        half_width_mm=patient.half_width_mm[laterality],
        thickness_mm=patient.thickness_mm[laterality],
        canvas=canvas,
    )
    return rng, geom, canvas


def lesion_centre_px(config, patient, lesion, laterality, view, modality=None):
    """(row, col) where ``lesion`` would be drawn in this view (image frame)."""
    _, geom, canvas = _view_setup(config, patient, laterality, view, modality or patient.modality)
    u, v = lesion_centre_mm(lesion, geom)
    row = (v + canvas.height_mm / 2) / canvas.spacing_mm - 0.5
    col = u / canvas.spacing_mm - 0.5
    if laterality == "R":
        col = canvas.shape[1] - 1 - col
    return row, col


def render_view(
    config: PhantomConfig,
    patient: PatientSpec,
    laterality: str,
    view: str,
    *,
    keep_log_raw: bool = False,
    modality: str | None = None,
) -> RenderedImage:
    """Draw one view of ``patient`` (chest wall at column 0 for L, last column for R)."""
    if laterality not in ("L", "R"):
        raise ValueError(f"laterality must be 'L' or 'R', got {laterality!r}")
    if view not in ("CC", "MLO"):
        raise ValueError(f"view must be 'CC' or 'MLO', got {view!r}")
    modality = modality or patient.modality
    site = acq.SITES[patient.site]
    rng, geom, canvas = _view_setup(config, patient, laterality, view, modality)
    spacing = canvas.spacing_mm
    maps = rasterize(geom, canvas)
    shape = canvas.shape
    lesions = [les for les in patient.lesions[laterality] if view in les.views]
    asym = []
    for les in lesions:
        if les.kind == "asymmetry":
            u, v = lesion_centre_mm(les, geom)
            asym.append((u, v, les.size_mm / 2.5, les.params["boost"]))
    need_dbt = modality in ("DBT", "s2D")
    tissue = glandular_maps(
        geom,
        canvas,
        vgf=patient.vgf[laterality],
        beta3d=patient.beta3d[laterality],
        rng=rng,
        asymmetry=asym,
        need_dbt=need_dbt,
        dbt_half_angle_deg=site.dbt_half_angle_deg,
    )
    coarse_inside = rasterize(geom, tissue.coarse).breast
    f_dm = to_output_grid(tissue.dm_fraction, coarse_inside, shape)
    f_slab = to_output_grid(tissue.slab_fraction, coarse_inside, shape) if need_dbt else None
    f_tomo = to_output_grid(tissue.tomo_fraction, coarse_inside, shape) if need_dbt else None

    centres = {}
    for i, les in enumerate(lesions):
        u, v = lesion_centre_mm(les, geom)
        centres[i] = ((v + canvas.height_mm / 2) / spacing - 0.5, u / spacing - 0.5)
        if les.kind == "architectural_distortion":
            rad = les.size_mm / 2 / spacing
            f_dm = _warp_towards(f_dm, centres[i], rad, les.params["warp"])
            if need_dbt:
                f_slab = _warp_towards(f_slab, centres[i], rad, les.params["warp"])
                f_tomo = _warp_towards(f_tomo, centres[i], rad, les.params["warp"])

    t = maps.thickness
    tissue_t = np.clip(t - maps.skin_path, 0.0, None)
    dmu = acq.MU_GLAND - acq.MU_FAT

    def column(frac):
        mu = acq.MU_FAT + dmu * frac
        return mu, tissue_t * mu + maps.skin_path * acq.MU_SKIN + maps.muscle_path * (
            acq.MU_MUSCLE - mu
        )

    mu_dm, L_dm = column(f_dm)
    alpha, slab_mm = 0.7, 4.0
    if need_dbt:
        mu_slab, L_slab = column(f_slab)
        mu_tomo, L_tomo = column(f_tomo)
        L_dbt = alpha * L_slab + (1 - alpha) * L_tomo

    findings = []
    depth_gain = alpha * geom.thickness_mm / slab_mm + 1 - alpha  # in-focus boost of DBT
    for i, les in enumerate(lesions):
        if les.kind == "mass" and les.params.get("occult_view") == view:
            continue
        rl = render_lesion(les, centres[i], spacing, shape)
        mask = rl.mask & maps.breast
        if mask.sum() < 4:
            continue
        path = rl.path_mm * maps.breast
        mu_les = acq.MU_GLAND * rl.mu_ratio
        d_dbt = None
        if les.kind == "mass":  # replaces the tissue it sits in
            blur = rl.blur_mm / spacing
            d_dm = path * (mu_les - mu_dm)
            d_dm = cv2.GaussianBlur(d_dm, (0, 0), blur) if blur > 0.3 else d_dm
            if need_dbt:
                in_slab = np.minimum(path, slab_mm) / slab_mm
                d_dbt = alpha * tissue_t * in_slab * (mu_les - mu_slab) + (1 - alpha) * path * (
                    mu_les - mu_tomo
                )
                d_dbt = cv2.GaussianBlur(d_dbt, (0, 0), blur) if blur > 0.3 else d_dbt
        elif les.kind == "calcification":  # adds to the tissue (tiny volume)
            d_dm = path * mu_les
            d_dbt = d_dm * depth_gain if need_dbt else None
        else:  # architectural distortion: fibrous strands replacing the local tissue
            mu_strand = acq.MU_GLAND * rl.mu_ratio
            d_dm = path * (mu_strand - mu_dm)
            d_dbt = path * (mu_strand - mu_tomo) * depth_gain if need_dbt else None
        L_dm = L_dm + d_dm
        if d_dbt is not None:
            L_dbt = L_dbt + d_dbt
        # lesion signal: mean added line integral inside the mask (log units, before noise)
        signal = d_dbt if modality == "DBT" else d_dm
        findings.append(
            {
                "lesion": les,
                "lesion_id": f"{laterality}{patient.lesions[laterality].index(les)}",
                "mask": mask,
                "signal": float(signal[mask].mean()),
            }
        )

    if modality == "DM":
        L = L_dm
    elif modality == "DBT":
        # reconstruction filtering (ramp / slice-thickness filters of filtered back-
        # projection) suppresses the low frequencies of overlapping tissue
        L = L_dbt + DBT_RECON_BOOST * (L_dbt - cv2.GaussianBlur(L_dbt, (0, 0), 2.0 / spacing))
    else:  # synthesized 2D: DM plus the in-focus (high-pass) structure of the DBT slab
        hp = L_dbt - cv2.GaussianBlur(L_dbt, (0, 0), 1.0 / spacing)
        L = L_dm + 0.35 * hp
    L = np.where(maps.breast, L, 0.0).astype(np.float32)

    raw = acq.expose(L, maps.breast, spacing, site, rng, dose=config.dose)
    display = acq.present(raw, maps.breast, spacing, site, rng)
    stored, wc, ww = acq.encode(display, site)
    log_raw = -np.log(raw)

    flip = laterality == "R"
    breast = maps.breast[:, ::-1] if flip else maps.breast
    pectoral = maps.pectoral[:, ::-1] if flip else maps.pectoral
    if flip:
        stored = stored[:, ::-1]
        display = display[:, ::-1]
        log_raw = log_raw[:, ::-1]
        f_dm = f_dm[:, ::-1]
    if site.burned_in_text:
        stored = acq.burn_in_label(stored, f"{laterality} {view}", site, laterality)
    out_findings = []
    for f in findings:
        les: Lesion = f["lesion"]
        m = f["mask"][:, ::-1] if flip else f["mask"]
        rr = np.flatnonzero(m.any(axis=1))
        cc = np.flatnonzero(m.any(axis=0))
        out_findings.append(
            {
                "label": les.label,
                "xmin": float(cc[0]),
                "ymin": float(rr[0]),
                "xmax": float(cc[-1] + 1),
                "ymax": float(rr[-1] + 1),
                "malignant": bool(les.malignant),
                "subtype": les.subtype,
                "size_mm": round(les.size_mm, 2),
                "lesion_id": f["lesion_id"],  # the same lesion in the breast's other view
                "contrast": round(f["signal"], 5),
                "mask": np.ascontiguousarray(m),
            }
        )
    pd_true = percent_density_true(f_dm, breast, pectoral)
    truth = {
        "pd_true": pd_true,
        "vgf": tissue.vgf_realised,
        "thickness_mm": geom.thickness_mm,
        "beta3d": patient.beta3d[laterality],
        "nipple_depth_mm": geom.depth_mm,
        "density_latent": patient.density_latent,
    }
    return RenderedImage(
        stored=np.ascontiguousarray(stored),
        photometric=site.photometric,
        bits_stored=site.bits_stored,
        window_center=wc,
        window_width=ww,
        voi_lut_function=site.voi_lut_function,
        spacing_mm=spacing,
        laterality=laterality,
        view=view,
        modality=modality,
        findings=out_findings,
        breast_mask=np.ascontiguousarray(breast),
        pectoral_mask=np.ascontiguousarray(pectoral),
        truth=truth,
        display=np.ascontiguousarray(display),
        log_raw=np.ascontiguousarray(log_raw) if keep_log_raw else None,
        extra={"gland_fraction": np.ascontiguousarray(f_dm)} if keep_log_raw else {},
    )
