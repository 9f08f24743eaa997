"""Objects in the beam that are not breast tissue, for robustness figures (chapter 01).

Screening images carry things a density model should ignore: the edge of the compression
paddle, metal clips and skin markers, breast implants, and burned-in text. Each is drawn
here as an extra Beer-Lambert line integral on the breast-frame attenuation image (chest
wall at column 0), before exposure, so the detector noise, the vendor processing and the
encoding treat it like anything else in the beam. Burned-in text is written on the stored
pixels by :func:`~mammo_helpers.data.phantom.acquisition.burn_in_label`.

The attenuation values are rough (mammographic energies, about 20 keV): silicone about
three times glandular tissue, a titanium clip opaque, a paddle's plastic lip seen edge-on
about like a centimetre of tissue. They are meant to look like the objects, not to be
dosimetry. ``render_view(..., artefacts=("implant", ...))`` and
:func:`~mammo_helpers.data.cohort.rerender` draw them.
"""

from __future__ import annotations

import numpy as np

from .physics import MU_FAT

#: The objects :func:`add_artefacts` can draw (``"text"`` is burned into the stored pixels).
ARTEFACTS = ("paddle_edge", "clip", "implant", "text")

MU_SILICONE = 0.25  # 1/mm, silicone gel near 20 keV (about 3x glandular tissue)
CLIP_LINE_INTEGRAL = 6.0  # a 0.5 mm titanium clip: effectively opaque
PADDLE_LINE_INTEGRAL = 0.8  # the paddle's plastic lip seen edge-on (about 10 mm of PMMA)
IMPLANT_MAX_MM = 30.0  # thickest silicone path through the implant


def check_artefacts(artefacts) -> tuple[str, ...]:
    """``artefacts`` as a tuple of names from :data:`ARTEFACTS`; anything else is refused."""
    if isinstance(artefacts, str):
        artefacts = (artefacts,)
    artefacts = tuple(artefacts)
    unknown = [a for a in artefacts if a not in ARTEFACTS]
    if unknown:
        raise ValueError(f"unknown artefact(s) {unknown}; known: {', '.join(ARTEFACTS)}")
    return artefacts


def _extent(breast: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    rows = np.flatnonzero(breast.any(axis=1))
    cols = np.flatnonzero(breast.any(axis=0))
    return rows, cols


def implant(shape, breast, spacing_mm: float, rng: np.random.Generator) -> np.ndarray:
    """Extra line integral of a silicone implant behind the gland: an ellipse near the
    chest wall whose path length falls like a half-ellipsoid from ``IMPLANT_MAX_MM``."""
    rows, cols = _extent(breast)
    depth, height = cols[-1] + 1, rows[-1] - rows[0] + 1
    centre = (rows[0] + height * rng.uniform(0.4, 0.6), depth * rng.uniform(0.15, 0.25))
    semi = (height * rng.uniform(0.25, 0.32), depth * rng.uniform(0.3, 0.4))
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float32)
    r2 = ((yy - centre[0]) / semi[0]) ** 2 + ((xx - centre[1]) / semi[1]) ** 2
    path = IMPLANT_MAX_MM * np.sqrt(np.clip(1.0 - r2, 0.0, None))
    return (path * (MU_SILICONE - MU_FAT)).astype(np.float32)


def clip(shape, breast, spacing_mm: float, rng: np.random.Generator) -> np.ndarray:
    """Extra line integral of a biopsy clip: a 1 x 4 mm opaque bar, randomly turned,
    somewhere well inside the breast."""
    inside = np.argwhere(breast)
    rows, cols = _extent(breast)
    deep = inside[inside[:, 1] < 0.7 * (cols[-1] + 1)]
    r, c = (deep if len(deep) else inside)[rng.integers(len(deep) or len(inside))]
    angle = rng.uniform(0, np.pi)
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float32)
    along = (xx - c) * np.cos(angle) + (yy - r) * np.sin(angle)
    across = -(xx - c) * np.sin(angle) + (yy - r) * np.cos(angle)
    half_len, half_w = 2.0 / spacing_mm, max(0.5 / spacing_mm, 0.75)
    bar = (np.abs(along) <= half_len) & (np.abs(across) <= half_w)
    return (bar * CLIP_LINE_INTEGRAL).astype(np.float32)


def paddle_edge(shape, breast, spacing_mm: float, rng: np.random.Generator) -> np.ndarray:
    """Extra line integral of the compression paddle's lip: a 2 mm band parallel to the
    chest wall, 10 to 25 % of the breast's depth from it, across the whole breast."""
    _, cols = _extent(breast)
    col = int(round((cols[-1] + 1) * rng.uniform(0.10, 0.25)))
    half = max(int(round(1.0 / spacing_mm)), 1)
    out = np.zeros(shape, dtype=np.float32)
    out[:, max(col - half, 0) : col + half + 1] = PADDLE_LINE_INTEGRAL
    return out * breast


_DRAW = {"paddle_edge": paddle_edge, "clip": clip, "implant": implant}


def add_artefacts(line, breast, spacing_mm: float, artefacts, rng: np.random.Generator):
    """``line`` (breast frame) with the line integrals of ``artefacts`` added, in the order
    of :data:`ARTEFACTS`; ``"text"`` is skipped here (it is burned into stored pixels)."""
    artefacts = check_artefacts(artefacts)
    out = np.asarray(line, dtype=np.float32).copy()
    if not breast.any():
        return out
    for name in ARTEFACTS:
        if name in artefacts and name in _DRAW:
            out += _DRAW[name](out.shape, breast, spacing_mm, rng)
    return out
