"""Breast outline, compressed-thickness profile, skin and pectoral muscle of the phantom.

Everything is in millimetres in a view-independent frame: ``u`` is the distance from the
chest wall towards the nipple and ``v`` the position along the chest wall (negative =
superior in MLO, medial/lateral in CC). :func:`rasterize` turns a geometry into maps on any
pixel grid, so one breast can be drawn at 0.1 mm or 0.5 mm. Used by the generator
(chapter 00) and therefore by every chapter that runs on the synthetic cohort.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Canvas:
    """The detector field in mm (rows x cols) and the pixel spacing it is drawn at."""

    height_mm: float
    width_mm: float
    spacing_mm: float

    @property
    def shape(self) -> tuple[int, int]:
        return (
            int(round(self.height_mm / self.spacing_mm)),
            int(round(self.width_mm / self.spacing_mm)),
        )

    def with_spacing(self, spacing_mm: float) -> Canvas:
        return Canvas(self.height_mm, self.width_mm, spacing_mm)


@dataclass(frozen=True)
class BreastGeometry:
    """Shape parameters of one compressed breast in one view."""

    view: str  # "CC" or "MLO"
    depth_mm: float  # chest wall to nipple
    half_width_lo_mm: float  # half-width at the chest wall, below/medial of the nipple line
    half_width_hi_mm: float  # above/lateral (MLO: reaches the axilla)
    exponent: float  # superellipse exponent (2 = ellipse)
    nipple_v_mm: float  # v of the nipple (0 = canvas centre)
    thickness_mm: float  # compressed thickness
    skin_mm: float
    shape_coeffs: tuple[float, ...]  # small Fourier perturbation of the outline
    pectoral_top_mm: float = 0.0  # MLO: muscle width at the top edge (0 = no muscle)
    pectoral_tip_v_mm: float = 0.0  # MLO: v where the muscle's anterior edge meets the chest wall
    pectoral_sagitta_mm: float = 0.0  # convexity of the anterior edge

    def half_width(self, u: np.ndarray, upper: np.ndarray) -> np.ndarray:
        """Outline half-width at depth ``u`` for the upper (v < nipple) or lower side."""
        frac = np.clip(u / self.depth_mm, 0.0, 1.0)
        w0 = np.where(upper, self.half_width_hi_mm, self.half_width_lo_mm)
        base = (1.0 - frac**self.exponent) ** (1.0 / self.exponent)
        theta = np.pi * frac
        pert = np.ones_like(frac)
        for k, c in enumerate(self.shape_coeffs, start=1):
            pert = pert + c * np.sin(k * theta)
        return w0 * base * pert


def sample_geometry(
    rng: np.random.Generator,
    view: str,
    *,
    depth_mm: float,
    half_width_mm: float,
    thickness_mm: float,
    canvas: Canvas,
) -> BreastGeometry:
    """Draw a plausible outline for ``view`` around patient-level size parameters."""
    skin = float(rng.uniform(0.8, 1.6))
    coeffs = tuple(float(c) for c in rng.normal(0.0, [0.03, 0.02, 0.01]))
    exponent = float(rng.uniform(1.9, 2.6))
    top = -canvas.height_mm / 2
    if view == "CC":
        nipple_v = float(rng.normal(0.0, 8.0))
        return BreastGeometry(
            view="CC",
            depth_mm=depth_mm,
            half_width_lo_mm=half_width_mm * float(rng.uniform(0.92, 1.08)),
            half_width_hi_mm=half_width_mm * float(rng.uniform(0.92, 1.08)),
            exponent=exponent,
            nipple_v_mm=nipple_v,
            thickness_mm=thickness_mm,
            skin_mm=skin,
            shape_coeffs=coeffs,
        )
    if view != "MLO":
        raise ValueError(f"view must be 'CC' or 'MLO', got {view!r}")
    depth = depth_mm + float(rng.uniform(0.0, 10.0))  # PNL-MLO up to 1 cm longer than CC
    nipple_v = float(rng.uniform(0.05, 0.2)) * canvas.height_mm
    hi = nipple_v - top - float(rng.uniform(0.0, 6.0))  # reaches (almost) the top edge: axilla
    lo = half_width_mm * float(rng.uniform(0.95, 1.1))
    lo = min(lo, canvas.height_mm / 2 - nipple_v - 4.0)
    # pectoral: anterior edge from (top, a_top) to the chest wall near the nipple line
    tip = nipple_v + float(rng.normal(0.0, 8.0))
    return BreastGeometry(
        view="MLO",
        depth_mm=depth,
        half_width_lo_mm=lo,
        half_width_hi_mm=hi,
        exponent=exponent,
        nipple_v_mm=nipple_v,
        thickness_mm=thickness_mm,
        skin_mm=skin,
        shape_coeffs=coeffs,
        pectoral_top_mm=float(rng.uniform(25.0, 70.0)),
        pectoral_tip_v_mm=tip,
        pectoral_sagitta_mm=float(rng.uniform(2.0, 6.0)),
    )


@dataclass
class GeometryMaps:
    """Per-pixel maps of one view (all in mm except masks)."""

    breast: np.ndarray  # bool, breast (including muscle) inside the skin line
    pectoral: np.ndarray  # bool
    thickness: np.ndarray  # compressed thickness with peripheral roll-off
    skin_path: np.ndarray  # path length through skin
    muscle_path: np.ndarray  # path length through pectoral muscle
    u: np.ndarray  # distance from chest wall (1-D, per column in breast frame)
    v: np.ndarray  # position along the chest wall (1-D, per row)
    nipple_rc: tuple[float, float]  # nipple (row, col) in pixels, image frame


def uv_grid(canvas: Canvas) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates: ``u`` per column (breast frame) and ``v`` per row."""
    rows, cols = canvas.shape
    s = canvas.spacing_mm
    u = (np.arange(cols) + 0.5) * s
    v = (np.arange(rows) + 0.5) * s - canvas.height_mm / 2
    return u, v


def _roll_off(distance: np.ndarray, full: np.ndarray | float, band: float) -> np.ndarray:
    """Semicircular thickness loss within ``band`` mm of the outline (Pavan et al.)."""
    x = np.clip(distance / band, 0.0, 1.0)
    return full * np.sqrt(np.clip(1.0 - (1.0 - x) ** 2, 0.0, 1.0))


def rasterize(geom: BreastGeometry, canvas: Canvas) -> GeometryMaps:
    """Draw the breast on ``canvas`` in the breast frame (chest wall at column 0)."""
    u, v = uv_grid(canvas)
    uu = u[None, :]
    vv = v[:, None]
    upper = vv < geom.nipple_v_mm
    hw = np.where(upper, geom.half_width(u, True)[None, :], geom.half_width(u, False)[None, :])
    breast = (uu <= geom.depth_mm) & (np.abs(vv - geom.nipple_v_mm) <= hw)
    # nipple bump: 4 mm long, ~5 mm radius
    nip = ((uu - geom.depth_mm) ** 2 / 4.0**2 + (vv - geom.nipple_v_mm) ** 2 / 5.0**2) <= 1.0
    breast = breast | nip
    s = canvas.spacing_mm
    mask8 = breast.astype(np.uint8)
    # the chest wall is not an edge: pad it so the distance transform ignores it
    padded = np.pad(mask8, ((0, 0), (1, 0)), constant_values=1)
    dist = cv2.distanceTransform(padded, cv2.DIST_L2, 5)[:, 1:] * s
    band = geom.thickness_mm / 2
    thickness = np.where(breast, _roll_off(dist, geom.thickness_mm, band), 0.0)
    inner_full = max(geom.thickness_mm - 2 * geom.skin_mm, 1.0)
    inner = np.where(
        dist > geom.skin_mm,
        _roll_off(dist - geom.skin_mm, inner_full, max(band - geom.skin_mm, 1.0)),
        0.0,
    )
    skin_path = np.clip(thickness - inner, 0.0, None) * breast

    pectoral = np.zeros_like(breast)
    muscle_path = np.zeros_like(thickness)
    if geom.pectoral_top_mm > 0:
        top = -canvas.height_mm / 2
        span = geom.pectoral_tip_v_mm - top
        frac = np.clip((vv - top) / span, 0.0, 1.0)  # 0 at top edge, 1 at tip
        edge = geom.pectoral_top_mm * (1.0 - frac) + geom.pectoral_sagitta_mm * np.sin(np.pi * frac)
        edge = np.where(vv <= geom.pectoral_tip_v_mm, edge, -1.0)
        pectoral = (uu < edge) & breast
        # muscle thickness grows from 0 at its anterior edge to ~half the breast at the wall
        depth_in = np.clip(edge - uu, 0.0, None)
        muscle_path = np.where(
            pectoral, np.minimum(thickness * 0.85, depth_in * 1.5 + 4.0), 0.0
        ).astype(np.float32)
    nipple_rc = (
        (geom.nipple_v_mm + canvas.height_mm / 2) / s - 0.5,
        geom.depth_mm / s - 0.5,
    )
    return GeometryMaps(
        breast=breast,
        pectoral=pectoral,
        thickness=thickness.astype(np.float32),
        skin_path=skin_path.astype(np.float32),
        muscle_path=muscle_path,
        u=u,
        v=v,
        nipple_rc=nipple_rc,
    )
