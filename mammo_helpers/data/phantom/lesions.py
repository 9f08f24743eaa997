"""Lesions of the phantom: masses, calcification clusters, architectural distortion, asymmetry.

A lesion is sampled once per breast in physical units (position given as depth from the
nipple plus a relative lateral position per view, size in mm, morphology) and rendered in
each view as a path-length map (mm of lesion material along each ray) plus an exact mask.
Malignancy follows published positive predictive values (PPV) of the morphology, so the
image carries the cues a reader would use:

- mass margins: Liberman L et al. The Breast Imaging Reporting and Data System: positive
  predictive value of mammographic features and final assessment categories. AJR
  171:35 (1998) - spiculated 81 %;
- calcification morphology: Choi WJ et al. Calcifications with suspicious morphology at
  mammography: should they all be considered with the same clinical significance? Eur
  Radiol (2021), doi:10.1007/s00330-020-07215-8 - amorphous 6.4-9.1 %, coarse heterogeneous 16.1-22.1 %, fine
  pleomorphic 44.7-78.8 %, fine linear branching 78.6-85.1 %; punctate: benign-appearing
  (BI-RADS 2-3, <= 2 %);
- architectural distortion: Bahl M et al. Architectural distortion on mammography:
  correlation with pathologic outcomes and predictors of malignancy. AJR 205:1339 (2015) -
  67.0 % at screening, 83.1 % at diagnostic mammography.

Sizes and attenuation ratios are calibration constants (:mod:`.calibration`). Used by the
generator (chapter 00) and so by chapters 02-05.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from . import calibration as cal

LESION_KINDS = ("mass", "calcification", "architectural_distortion", "asymmetry")

MASS_SHAPES = ("round", "oval", "lobular", "irregular")
MASS_MARGINS = ("circumscribed", "obscured", "microlobulated", "indistinct", "spiculated")
CALC_MORPHOLOGIES = (
    "punctate",
    "amorphous",
    "coarse_heterogeneous",
    "fine_pleomorphic",
    "fine_linear",
)
ASYMMETRY_TYPES = ("one_view", "focal", "global")

# P(malignant | margin) for a mass of the margin's usual shape mix (Liberman 1998 for the
# spiculated margin; the others are modelling choices ordered as in BI-RADS)
_P_MALIGNANT_MARGIN = {
    "circumscribed": 0.03,
    "obscured": 0.15,
    "microlobulated": 0.5,
    "indistinct": 0.55,
    "spiculated": 0.81,
}
# shape mix of a mass: spiculated masses are mostly irregular, the others of every shape
_SHAPE_MIX = {
    False: dict(zip(MASS_SHAPES, (0.2, 0.35, 0.15, 0.3), strict=True)),
    True: {"irregular": 0.8, "round": 0.2},
}
# an irregular mass is this many times as likely malignant as another of the same margin
_IRREGULAR_RISK = 1.3


def p_malignant_mass(margin: str, shape: str) -> float:
    """P(malignant) of a mass: its margin's PPV, raised for an irregular shape and lowered
    for the others so that the margin's PPV over its shape mix stays the published one."""
    mix = _SHAPE_MIX[margin == "spiculated"]
    mean_risk = sum(p * (_IRREGULAR_RISK if s == "irregular" else 1.0) for s, p in mix.items())
    risk = _IRREGULAR_RISK if shape == "irregular" else 1.0
    return _P_MALIGNANT_MARGIN[margin] * risk / mean_risk


# P(malignant | calcification morphology), inside the ranges of Choi et al. 2021
_P_MALIGNANT_CALC = {
    "punctate": 0.02,
    "amorphous": 0.08,
    "coarse_heterogeneous": 0.2,
    "fine_pleomorphic": 0.55,
    "fine_linear": 0.8,
}
# asymmetries: modelling choices (one-view and global asymmetries are mostly benign)
_P_MALIGNANT_ASYM = {"one_view": 0.02, "focal": 0.1, "global": 0.03}
# architectural distortion: between Bahl 2015's screening (0.67) and all-comers (0.745) PPV
P_MALIGNANT_DISTORTION = 0.7


@dataclass
class Lesion:
    """One lesion of one breast, in physical units shared by its views."""

    kind: str
    malignant: bool
    subtype: str  # margin / calcification morphology / asymmetry type
    nipple_depth_frac: float  # posterior distance from the nipple / breast depth (CC and MLO)
    lateral: dict  # view -> relative position in [-1, 1] across the breast at that depth
    size_mm: float  # mass diameter, cluster extent, distortion radius, asymmetry diameter
    params: dict = field(default_factory=dict)
    views: tuple[str, ...] = ("CC", "MLO")

    @property
    def label(self) -> str:
        return "asymmetry" if self.kind == "asymmetry" else self.kind


def _sample_mass(rng: np.random.Generator):
    margin = str(rng.choice(MASS_MARGINS, p=[0.3, 0.15, 0.1, 0.2, 0.25]))
    shapes = _SHAPE_MIX[margin == "spiculated"]
    shape = str(rng.choice(list(shapes), p=list(shapes.values())))
    median, log_sd, low, high = cal.MASS_DIAMETER_MM
    size = float(np.clip(rng.lognormal(np.log(median), log_sd), low, high))
    malignant = bool(rng.random() < min(p_malignant_mass(margin, shape), 0.95))
    n_harm = 8
    rough = {"round": 0.03, "oval": 0.05, "lobular": 0.12, "irregular": 0.2}[shape]
    amps = rng.normal(0.0, rough, n_harm) / np.arange(2, 2 + n_harm) ** 0.8
    params = dict(
        shape=shape,
        elongation=float(rng.uniform(1.0, 1.6) if shape != "round" else rng.uniform(1, 1.1)),
        orientation=float(rng.uniform(0, np.pi)),
        harmonics=amps.tolist(),
        phases=rng.uniform(0, 2 * np.pi, n_harm).tolist(),
        density_ratio=float(rng.uniform(*cal.MASS_ATTENUATION_RATIO)),  # mu_mass / mu_gland
        n_spicules=int(rng.integers(8, 25)) if margin == "spiculated" else 0,
        spicule_seed=int(rng.integers(2**31)),
        occult_view=(
            str(rng.choice(["CC", "MLO"])) if rng.random() < cal.MASS_OCCULT_FRACTION else None
        ),
    )
    return malignant, margin, size, params, ("CC", "MLO")


def _sample_calcification(rng: np.random.Generator):
    morph = str(rng.choice(CALC_MORPHOLOGIES, p=[0.25, 0.2, 0.15, 0.25, 0.15]))
    malignant = bool(rng.random() < _P_MALIGNANT_CALC[morph])
    distribution = (
        "linear"
        if morph == "fine_linear"
        else str(rng.choice(["grouped", "segmental"], p=[0.8, 0.2]))
    )
    median, log_sd, low, high = cal.CALC_CLUSTER_MM
    size = float(np.clip(rng.lognormal(np.log(median), log_sd), low, high))
    n = int(rng.integers(5, 25))
    params = dict(
        distribution=distribution,
        n_calcs=n,
        seed=int(rng.integers(2**31)),
        mu_ratio=float(rng.uniform(*cal.CALC_ATTENUATION_RATIO)),  # mu_calc / mu_gland
    )
    return malignant, morph, size, params, ("CC", "MLO")


def _sample_distortion(rng: np.random.Generator):
    malignant = bool(rng.random() < P_MALIGNANT_DISTORTION)
    size = float(rng.uniform(14.0, 30.0))
    params = dict(
        n_lines=int(rng.integers(10, 22)),
        warp=float(rng.uniform(*cal.DISTORTION_WARP)),
        seed=int(rng.integers(2**31)),
    )
    return malignant, "distortion", size, params, ("CC", "MLO")


def _sample_asymmetry(rng: np.random.Generator):
    sub = str(rng.choice(ASYMMETRY_TYPES, p=[0.3, 0.55, 0.15]))
    malignant = bool(rng.random() < _P_MALIGNANT_ASYM[sub])
    size = float(rng.uniform(50.0, 80.0) if sub == "global" else rng.uniform(18.0, 40.0))
    views = (str(rng.choice(["CC", "MLO"])),) if sub == "one_view" else ("CC", "MLO")
    params = dict(boost=float(rng.uniform(*cal.ASYMMETRY_BOOST)))
    return malignant, sub, size, params, views


_SAMPLERS = {
    "mass": _sample_mass,
    "calcification": _sample_calcification,
    "architectural_distortion": _sample_distortion,
    "asymmetry": _sample_asymmetry,
}


def sample_lesion(rng: np.random.Generator, kind: str) -> Lesion:
    """Draw position, then morphology, size, malignancy and views of a lesion of ``kind``."""
    draw = _SAMPLERS.get(kind)
    if draw is None:
        raise ValueError(f"unknown lesion kind {kind!r}; expected one of {LESION_KINDS}")
    depth_frac = float(rng.uniform(0.2, 0.85))
    lateral = {"CC": float(rng.uniform(-0.6, 0.6)), "MLO": float(rng.uniform(-0.5, 0.6))}
    malignant, subtype, size, params, views = draw(rng)
    return Lesion(kind, malignant, subtype, depth_frac, lateral, size, params, views)


def lesion_centre_mm(lesion: Lesion, geom) -> tuple[float, float]:
    """(u, v) of the lesion centre in the view's breast frame."""
    u = geom.depth_mm * (1.0 - lesion.nipple_depth_frac)
    upper = lesion.lateral[geom.view] < 0
    hw = float(geom.half_width(np.array([u]), np.array([upper]))[0])
    if geom.view == "MLO" and upper:
        hw = min(hw, geom.half_width_lo_mm * 1.2)
    v = geom.nipple_v_mm + lesion.lateral[geom.view] * hw
    return u, v


@dataclass
class RenderedLesion:
    """One lesion drawn on a pixel grid (how it changes attenuation: see the generator)."""

    path_mm: np.ndarray  # path length of lesion material (mm), full image grid
    mask: np.ndarray  # bool, exact lesion extent on the image grid
    mu_ratio: float  # attenuation of the material relative to glandular tissue
    blur_mm: float  # margin blur (indistinct / obscured margins)


def _disk_grid(centre_rc, radius_px, shape):
    r0 = max(int(centre_rc[0] - radius_px) - 2, 0)
    r1 = min(int(centre_rc[0] + radius_px) + 3, shape[0])
    c0 = max(int(centre_rc[1] - radius_px) - 2, 0)
    c1 = min(int(centre_rc[1] + radius_px) + 3, shape[1])
    rr, cc = np.mgrid[r0:r1, c0:c1].astype(np.float32)
    return (slice(r0, r1), slice(c0, c1)), rr, cc


def _spicules(p: dict, shape, origin, radius: float, s: float) -> np.ndarray:
    """Spicules of a mass: straight lines of 1.2-2.6 radii from its centre (pixel grid)."""
    srng = np.random.default_rng(p["spicule_seed"])
    canvas = np.zeros(shape, dtype=np.float32)
    for _ in range(p["n_spicules"]):
        phi = srng.uniform(0, 2 * np.pi)
        length = radius * srng.uniform(1.2, 2.6) / s
        width = max(srng.uniform(0.3, 0.9) / s, 1.0)
        end = origin + length * np.array([np.cos(phi), np.sin(phi)])
        cv2.line(
            canvas,
            tuple(int(x) for x in origin),
            tuple(int(x) for x in end),
            float(srng.uniform(0.6, 1.4)),
            thickness=int(round(width)),
            lineType=cv2.LINE_AA,
        )
    return canvas


def _render_mass(lesion: Lesion, centre_rc, s: float, shape, path, mask) -> RenderedLesion:
    """A mass: radial shape function, sphere-like chords, optional spicules."""
    p = lesion.params
    radius = lesion.size_mm / 2
    sl, rr, cc = _disk_grid(centre_rc, 3.2 * radius / s, shape)
    dy = (rr - centre_rc[0]) * s
    dx = (cc - centre_rc[1]) * s
    ang = p["orientation"]
    xr = dx * np.cos(ang) + dy * np.sin(ang)
    yr = -dx * np.sin(ang) + dy * np.cos(ang)
    e = p["elongation"]
    rad = np.hypot(xr / np.sqrt(e), yr * np.sqrt(e))
    theta = np.arctan2(yr, xr)
    r_theta = np.ones_like(theta)
    for k, (a, ph) in enumerate(zip(p["harmonics"], p["phases"], strict=True), start=2):
        r_theta = r_theta + a * np.cos(k * theta + ph)
    if lesion.subtype == "microlobulated":  # small undulations of random phase
        for k, ph in zip((11, 13, 17), p["phases"][:3], strict=True):
            r_theta = r_theta + 0.015 * np.cos(k * theta + ph)
    r_theta = radius * np.clip(r_theta, 0.5, 1.6)
    inside = rad < r_theta
    chord = 2.0 * np.sqrt(np.clip(r_theta**2 - rad**2, 0.0, None))
    path[sl] = np.where(inside, chord, 0.0)
    mask[sl] = inside
    if p.get("n_spicules", 0):
        origin = np.array([centre_rc[1] - sl[1].start, centre_rc[0] - sl[0].start])
        canvas = _spicules(p, rr.shape, origin, radius, s)
        taper = np.exp(-np.clip(rad - r_theta, 0, None) / (radius * 0.9))
        path[sl] = np.maximum(path[sl], canvas * taper * radius * 0.25)
    blur = {"circumscribed": 0.0, "obscured": 1.0, "microlobulated": 0.2, "indistinct": 1.2}
    return RenderedLesion(path, mask, p["density_ratio"], blur.get(lesion.subtype, 0.3))


def _render_calcification(lesion: Lesion, centre_rc, s: float, shape, path, mask) -> RenderedLesion:
    """A calcification cluster: ellipsoids with Gaussian footprints; mask = grown hull."""
    p = lesion.params
    crng = np.random.default_rng(p["seed"])
    n = p["n_calcs"]
    extent = lesion.size_mm
    morph = lesion.subtype
    if p["distribution"] == "linear":
        phi = crng.uniform(0, np.pi)
        tpos = crng.uniform(-extent / 2, extent / 2, n)
        off = crng.normal(0, 0.6, n)
        pts = np.stack(
            [tpos * np.sin(phi) + off * np.cos(phi), tpos * np.cos(phi) - off * np.sin(phi)], 1
        )
    else:
        spread = extent / 4 if p["distribution"] == "grouped" else extent / 3
        pts = crng.normal(0, spread, (n, 2))
        pts = np.clip(pts, -extent / 2, extent / 2)
    size_range = {
        "punctate": (0.3, 0.6),
        "amorphous": (0.12, 0.3),
        "coarse_heterogeneous": (0.5, 1.0),
        "fine_pleomorphic": (0.2, 0.5),
        "fine_linear": (0.15, 0.35),
    }[morph]
    sl, rr, cc = _disk_grid(centre_rc, (extent / 2 + 2.0) / s, shape)
    local = np.zeros(rr.shape, dtype=np.float32)
    for py, px in pts:
        d = crng.uniform(*size_range)
        elong = crng.uniform(2.0, 3.5) if morph == "fine_linear" else crng.uniform(1.0, 1.6)
        ang = crng.uniform(0, np.pi)
        dy = (rr - centre_rc[0]) * s - py
        dx = (cc - centre_rc[1]) * s - px
        xr = dx * np.cos(ang) + dy * np.sin(ang)
        yr = -dx * np.sin(ang) + dy * np.cos(ang)
        # pixel-integrated ellipsoid: Gaussian footprint with the sphere's volume
        sig_x = max(d * elong / 2.5, 0.45 * s)
        sig_y = max(d / 2.5, 0.45 * s)
        volume = np.pi / 6 * d**3 * elong
        local += (volume / (2 * np.pi * sig_x * sig_y)) * np.exp(
            -0.5 * ((xr / sig_x) ** 2 + (yr / sig_y) ** 2)
        ).astype(np.float32)
    path[sl] = local
    # cluster extent: convex hull of the calcifications grown by 1 mm
    pix = np.stack([centre_rc[1] + pts[:, 1] / s, centre_rc[0] + pts[:, 0] / s], 1)
    hull = cv2.convexHull(pix.astype(np.float32)).astype(np.int32)
    m8 = np.zeros(shape, dtype=np.uint8)
    cv2.fillConvexPoly(m8, hull, 1)
    grow = max(int(round(1.0 / s)), 1)
    m8 = cv2.dilate(m8, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1,) * 2))
    mask = m8.astype(bool)
    return RenderedLesion(path, mask, p["mu_ratio"], 0.0)


def _render_distortion(lesion: Lesion, centre_rc, s: float, shape, path, mask) -> RenderedLesion:
    """An architectural distortion: thin strands radiating from a point, no mass."""
    p = lesion.params
    drng = np.random.default_rng(p["seed"])
    radius = lesion.size_mm / 2
    sl, rr, cc = _disk_grid(centre_rc, radius / s + 2, shape)
    canvas = np.zeros(rr.shape, dtype=np.float32)
    origin = np.array([centre_rc[1] - sl[1].start, centre_rc[0] - sl[0].start])
    for _ in range(p["n_lines"]):
        phi = drng.uniform(0, 2 * np.pi)
        start = drng.uniform(0.05, 0.25) * radius / s
        length = drng.uniform(0.6, 1.0) * radius / s
        width = max(drng.uniform(0.2, 0.5) / s, 1.0)
        a = origin + start * np.array([np.cos(phi), np.sin(phi)])
        b = origin + length * np.array([np.cos(phi), np.sin(phi)])
        cv2.line(
            canvas,
            tuple(int(x) for x in a),
            tuple(int(x) for x in b),
            float(drng.uniform(0.5, 1.0)),
            thickness=int(round(width)),
            lineType=cv2.LINE_AA,
        )
    path[sl] = canvas * 2.0  # strands are thin sheets: ~2 mm along the beam
    rad = np.hypot((rr - centre_rc[0]) * s, (cc - centre_rc[1]) * s)
    mask[sl] = rad < radius * 0.8
    return RenderedLesion(path, mask, cal.STRAND_ATTENUATION_RATIO, 0.0)


def _render_asymmetry(lesion: Lesion, centre_rc, s: float, shape, path, mask) -> RenderedLesion:
    """An asymmetry: drawn through the tissue model (a raised glandular envelope); here
    only its region, a disc, as the mask."""
    radius = lesion.size_mm / 2
    sl, rr, cc = _disk_grid(centre_rc, radius / s, shape)
    rad = np.hypot((rr - centre_rc[0]) * s, (cc - centre_rc[1]) * s)
    mask[sl] = rad < radius
    return RenderedLesion(path, mask, 1.0, 0.0)


_RENDERERS = {
    "mass": _render_mass,
    "calcification": _render_calcification,
    "architectural_distortion": _render_distortion,
    "asymmetry": _render_asymmetry,
}


def render_lesion(lesion: Lesion, centre_rc, spacing_mm: float, shape) -> RenderedLesion:
    """Draw ``lesion`` around ``centre_rc`` (pixels) on a grid of ``shape``."""
    draw = _RENDERERS.get(lesion.kind)
    if draw is None:
        raise ValueError(f"unknown lesion kind {lesion.kind!r}")
    path = np.zeros(shape, dtype=np.float32)
    mask = np.zeros(shape, dtype=bool)
    return draw(lesion, centre_rc, spacing_mm, shape, path, mask)
