"""Fibroglandular tissue of the phantom: a 3-D power-law field thresholded to a glandular
volume fraction, then projected (DM) or reconstructed as a tomosynthesis slab (DBT).

The volume is built on a coarse grid (about 0.5 mm in-plane, 1 mm in depth) and its
projections are brought to the output pixel grid by band-limited (Fourier) interpolation,
which keeps the power spectrum intact in the 0.2-0.7 mm^-1 band where realism is checked.
Used by the generator (chapter 00).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.fft as sfft
from scipy import ndimage

from .calibration import DBT_SLAB_MM, ENVELOPE_WEIGHT, GLAND_PARTIAL_VOLUME, SUBCUTANEOUS_FAT_MM
from .geometry import BreastGeometry, Canvas, rasterize

COARSE_MM = 0.5
DZ_MM = 1.0


def power_law_field(
    shape: tuple[int, ...],
    spacing: tuple[float, ...],
    beta: float,
    rng: np.random.Generator,
    *,
    k0: float = 1.0 / 60.0,
) -> np.ndarray:
    """Zero-mean, unit-variance Gaussian field with power spectrum ``(k^2 + k0^2)^(-beta/2)``.

    ``k`` is in cycles/mm, so the same ``beta`` gives the same texture at any spacing;
    ``k0`` rolls the spectrum off at scales larger than ~``1/k0`` mm.
    """
    freqs = [sfft.fftfreq(n, d) for n, d in zip(shape[:-1], spacing[:-1], strict=True)]
    freqs.append(sfft.rfftfreq(shape[-1], spacing[-1]))
    k2 = np.zeros([f.size for f in freqs], dtype=np.float32)
    for axis, f in enumerate(freqs):
        idx = [None] * len(freqs)
        idx[axis] = slice(None)
        k2 = k2 + (f.astype(np.float32) ** 2)[tuple(idx)]
    amp = (k2 + np.float32(k0**2)) ** np.float32(-beta / 4.0)
    noise = rng.standard_normal(shape, dtype=np.float32)
    spec = sfft.rfftn(noise, workers=-1)
    spec *= amp
    spec.flat[0] = 0.0
    field = sfft.irfftn(spec, s=shape, workers=-1)
    field /= field.std() + 1e-12
    return field.astype(np.float32, copy=False)


@dataclass
class TissueMaps:
    """Glandular content on the coarse grid (fractions of the local thickness)."""

    dm_fraction: np.ndarray  # projected glandular fraction G/t (DM)
    slab_fraction: np.ndarray  # glandular fraction of the in-focus DBT slab
    tomo_fraction: np.ndarray  # tomosynthesis-blurred projected fraction
    vgf_realised: float
    coarse: Canvas


def _envelope_2d(geom, breast, u, v, subcutaneous_mm, asymmetry) -> np.ndarray:
    """In-plane glandular envelope: central / retro-areolar bias, fat under the skin and
    behind the gland, raised where asymmetries sit."""
    edge_dist = ndimage.distance_transform_edt(np.pad(breast, ((0, 0), (1, 0)), constant_values=1))
    edge_dist = edge_dist[:, 1:] * COARSE_MM
    uu = u[None, :]
    vv = v[:, None]
    d = geom.depth_mm
    central = np.exp(
        -(((uu - 0.55 * d) / (0.55 * d)) ** 2)
        - ((vv - geom.nipple_v_mm) / (0.75 * max(geom.half_width_lo_mm, 30.0))) ** 2
    )
    inplane = np.clip(edge_dist / subcutaneous_mm, 0.0, 1.0) * np.clip(uu / 12.0, 0.0, 1.0)
    env2d = central * inplane
    for au, av, radius, boost in asymmetry or []:
        env2d = env2d + boost * np.exp(-((uu - au) ** 2 + (vv - av) ** 2) / (2 * radius**2))
    return env2d


def _threshold(score, inside, vgf, partial_volume) -> np.ndarray:
    """Glandular share of each voxel: ``score`` cut at the quantile leaving ``vgf`` glandular,
    with a linear transition of width ``partial_volume``; zero outside the breast."""
    vals = score[inside]
    if vals.size == 0:
        raise ValueError("breast volume is empty; check the geometry parameters")
    tau = np.quantile(vals, 1.0 - vgf)
    gland = np.clip((score - tau) / partial_volume + 0.5, 0.0, 1.0)
    gland *= inside
    return gland


def _dbt_fractions(gland, z, breast, safe_t, slab_mm, dbt_half_angle_deg):
    """In-focus slab fraction and tomosynthesis-blurred projected fraction of the volume."""
    in_slab = np.abs(z) < slab_mm / 2
    slab = gland[:, :, in_slab].mean(axis=2)
    # shift-and-add along the tube motion (rows): a box blur of width 2|z|tan(theta)
    fy = sfft.rfftfreq(gland.shape[0], COARSE_MM)
    spec = sfft.rfft(gland, axis=0, workers=-1)
    width = 2 * np.abs(z) * np.tan(np.deg2rad(dbt_half_angle_deg))
    spec *= np.sinc(fy[:, None, None] * width[None, None, :]).astype(np.float32)
    blurred = sfft.irfft(spec, n=gland.shape[0], axis=0, workers=-1)
    tomo = np.where(breast, np.clip(blurred.sum(axis=2) * DZ_MM / safe_t, 0.0, 1.0), 0.0)
    return slab, tomo


def glandular_maps(
    geom: BreastGeometry,
    canvas: Canvas,
    *,
    vgf: float,
    beta3d: float,
    rng: np.random.Generator,
    subcutaneous_mm: float = SUBCUTANEOUS_FAT_MM,
    envelope_weight: float = ENVELOPE_WEIGHT,
    slab_mm: float = DBT_SLAB_MM,
    dbt_half_angle_deg: float = 7.5,
    partial_volume: float = GLAND_PARTIAL_VOLUME,
    asymmetry: list[tuple[float, float, float, float]] | None = None,
    need_dbt: bool = False,
) -> TissueMaps:
    """Threshold a 3-D power-law field to ``vgf`` and project it.

    The field plus ``envelope_weight`` times a glandular envelope (central, retro-areolar,
    free of tissue within ``subcutaneous_mm`` of the skin) is thresholded at the quantile
    that leaves ``vgf`` of the volume glandular, with a soft transition of width
    ``partial_volume``. DM is the projected fraction; with ``need_dbt``, DBT adds the
    ``slab_mm`` in-focus slab and the shift-and-add blur of a tube sweep of
    +-``dbt_half_angle_deg``. ``asymmetry`` lists (u, v, radius_mm, boost) regions where the
    glandular envelope is raised (BI-RADS asymmetries). Only the breast's bounding box is
    simulated, on a 0.5 mm x 0.5 mm x 1 mm grid.
    """
    coarse = canvas.with_spacing(COARSE_MM)
    maps = rasterize(geom, coarse)
    rows = np.flatnonzero(maps.breast.any(axis=1))
    cols = np.flatnonzero(maps.breast.any(axis=0))
    r0, r1 = rows[0], rows[-1] + 1
    c1 = cols[-1] + 1
    t = maps.thickness[r0:r1, :c1]
    breast = maps.breast[r0:r1, :c1]
    nz = max(int(np.ceil(geom.thickness_mm / DZ_MM)), 4)
    z = (np.arange(nz) + 0.5) * DZ_MM - geom.thickness_mm / 2

    field = power_law_field((r1 - r0, c1, nz), (COARSE_MM, COARSE_MM, DZ_MM), beta3d, rng)
    env2d = _envelope_2d(geom, breast, maps.u[:c1], maps.v[r0:r1], subcutaneous_mm, asymmetry)
    half_t = t[:, :, None] / 2
    zz = z[None, None, :]
    inside = np.abs(zz) < half_t
    envz = np.clip((half_t - np.abs(zz)) / subcutaneous_mm, 0.0, 1.0)
    score = field + envelope_weight * (env2d[:, :, None] * envz)
    gland = _threshold(score, inside, vgf, partial_volume)

    g_path = gland.sum(axis=2) * DZ_MM
    safe_t = np.maximum(t, 1e-3)
    dm = np.where(breast, np.clip(g_path / safe_t, 0.0, 1.0), 0.0)
    slab, tomo = np.zeros_like(dm), np.zeros_like(dm)
    if need_dbt:
        slab, tomo = _dbt_fractions(gland, z, breast, safe_t, slab_mm, dbt_half_angle_deg)

    def place(a: np.ndarray) -> np.ndarray:
        full = np.zeros(coarse.shape, dtype=np.float32)
        full[r0:r1, :c1] = a
        return full

    return TissueMaps(
        dm_fraction=place(dm),
        slab_fraction=place(slab),
        tomo_fraction=place(tomo),
        vgf_realised=float(gland[inside].mean()),
        coarse=coarse,
    )


def fill_outside(values: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """Copy the nearest inside value to every outside pixel (avoids ringing at the skin line)."""
    if inside.all() or not inside.any():
        return values
    _, (ri, ci) = ndimage.distance_transform_edt(~inside, return_indices=True)
    return values[ri, ci]


def fourier_resize(img: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Band-limited resampling of a 2-D map covering the same field to ``shape``."""
    if img.shape == tuple(shape):
        return img.astype(np.float32, copy=True)
    spec = sfft.fftshift(sfft.fft2(img.astype(np.float32), workers=-1))
    out = np.zeros(shape, dtype=np.complex64)
    src, dst = [], []
    for s_n, t_n in zip(img.shape, shape, strict=True):
        m = min(s_n, t_n)  # keep the DC term at index n // 2 of both centred spectra
        s0 = s_n // 2 - t_n // 2 if m == t_n else 0
        d0 = t_n // 2 - s_n // 2 if m == s_n else 0
        src.append(slice(s0, s0 + m))
        dst.append(slice(d0, d0 + m))
    out[tuple(dst)] = spec[tuple(src)]
    sr, sc = img.shape
    tr, tc = shape
    res = sfft.ifft2(sfft.ifftshift(out), workers=-1).real
    return (res * (tr * tc) / (sr * sc)).astype(np.float32)


def to_output_grid(frac: np.ndarray, coarse_inside: np.ndarray, shape: tuple[int, int]):
    """Fill, upsample and clip a coarse fraction map onto the output grid."""
    filled = fill_outside(frac, coarse_inside)
    return np.clip(fourier_resize(filled, shape), 0.0, 1.0)
