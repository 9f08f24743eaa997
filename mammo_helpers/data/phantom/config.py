"""The settings of a synthetic cohort: :class:`PhantomConfig`, checked when it is made.

The same config gives the same pixels (every random draw is keyed by the seed, the patient
and the view). A bad value is refused here, with the field's name, rather than deep inside
numpy. Used by the generator and the cohort builder (chapter 00) and by every chapter that
runs on the phantom.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

from mammo_helpers.vocab import MODALITIES

from .acquisition import SITES, SiteProfile
from .calibration import READER_NOISE_PD
from .lesions import LESION_KINDS


def _where(name: str) -> str:
    return f"PhantomConfig.{name}"


def _is_real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _number(name: str, value, *, low: float, low_ok: bool, high: float | None = None) -> None:
    """``value`` must be a finite real number above ``low`` (or equal if ``low_ok``)."""
    if not _is_real(value) or not math.isfinite(value):
        raise ValueError(f"{_where(name)} must be a finite number, got {value!r}")
    if value < low or (value == low and not low_ok) or (high is not None and value > high):
        bound = f"{'>=' if low_ok else '>'} {low:g}" + (f" and <= {high:g}" if high else "")
        raise ValueError(f"{_where(name)} must be {bound}, got {value!r}")


def _weights(name: str, values, n: int, what: str) -> None:
    """One finite, non-negative weight per ``what``, not all zero."""
    if isinstance(values, str) or not hasattr(values, "__len__") or len(values) != n:
        raise ValueError(f"{_where(name)} must hold one weight per {what} ({n}), got {values!r}")
    for value in values:
        if not _is_real(value) or not math.isfinite(value) or value < 0:
            raise ValueError(
                f"{_where(name)} must hold finite weights >= 0, got {value!r} in {values!r}"
            )
    if sum(values) <= 0:
        raise ValueError(f"{_where(name)} must not be all zero, got {values!r}")


@dataclass(frozen=True)
class PhantomConfig:
    """Everything that defines a synthetic cohort; the same config gives the same pixels.

    ``seed`` is a non-negative integer. The output pixel spacing is ``spacing_mm`` if given,
    else each site's native spacing times ``resolution_scale``. ``site_weights`` (one per
    site) and ``lesion_mix`` (one per kind of ``LESION_KINDS``) are relative weights.
    ``lesion_prevalence`` is P(a breast has at least one lesion); ``reader_noise_pd`` the
    reader's bias (standard deviation, percent-density points); ``dose`` scales the photon
    count (1 = the calibrated dose); ``canvas_mm`` is the detector field (rows, cols) in mm;
    ``modalities`` restricts the studies to some of DM / s2D / DBT; ``repeat_share`` is
    the share of patients screened again a year later (a second study); ``modality_mix``
    (one weight per modality of ``MODALITIES``) replaces every site's own mix. Bad values raise
    ``ValueError`` naming the field.
    """

    seed: int = 0
    resolution_scale: float = 4.0  # output spacing = site spacing x this (1.0 = native)
    spacing_mm: float | None = None  # one spacing for every site (overrides the scale)
    sites: tuple[str, ...] = ("site_A", "site_B", "site_C", "site_D")
    site_weights: tuple[float, ...] = (0.35, 0.25, 0.25, 0.15)
    lesion_prevalence: float = 0.35  # P(a breast has at least one lesion): enriched cohort
    lesion_mix: tuple[float, ...] = (0.45, 0.25, 0.1, 0.2)  # LESION_KINDS order
    reader_noise_pd: float = READER_NOISE_PD  # reader variability in percent-density points
    dose: float = 1.0
    canvas_mm: tuple[float, float] = (240.0, 192.0)
    modalities: tuple[str, ...] | None = None  # restrict studies to these modalities
    repeat_share: float = 0.0  # share of patients with a second exam a year later
    modality_mix: tuple[float, ...] | None = None  # MODALITIES order; None: each site's own

    def __post_init__(self):
        self._check_seed()
        self._check_sites()
        _number("resolution_scale", self.resolution_scale, low=0.0, low_ok=False)
        if self.spacing_mm is not None:
            _number("spacing_mm", self.spacing_mm, low=0.0, low_ok=False)
        _number("lesion_prevalence", self.lesion_prevalence, low=0.0, low_ok=True, high=1.0)
        _weights("lesion_mix", self.lesion_mix, len(LESION_KINDS), "lesion kind")
        _number("reader_noise_pd", self.reader_noise_pd, low=0.0, low_ok=True)
        _number("dose", self.dose, low=0.0, low_ok=False)
        _number("repeat_share", self.repeat_share, low=0.0, low_ok=True, high=1.0)
        if self.modality_mix is not None:
            _weights("modality_mix", self.modality_mix, len(MODALITIES), "modality")
            object.__setattr__(self, "modality_mix", tuple(float(w) for w in self.modality_mix))
        self._check_canvas()
        self._check_modalities()

    def _check_seed(self) -> None:
        seed = self.seed
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
            raise ValueError(f"{_where('seed')} must be an integer >= 0, got {seed!r}")
        object.__setattr__(self, "seed", int(seed))  # numpy integers -> int (JSON cache key)

    def _check_sites(self) -> None:
        if isinstance(self.sites, str) or not self.sites:
            raise ValueError(f"{_where('sites')} must be a non-empty tuple of site names")
        for s in self.sites:
            if s not in SITES:
                raise ValueError(
                    f"{_where('sites')}: unknown site {s!r}; known sites: {sorted(SITES)}"
                )
        _weights("site_weights", self.site_weights, len(self.sites), "site")

    def _check_canvas(self) -> None:
        canvas = self.canvas_mm
        if isinstance(canvas, str) or not hasattr(canvas, "__len__") or len(canvas) != 2:
            raise ValueError(f"{_where('canvas_mm')} must be (rows_mm, cols_mm), got {canvas!r}")
        for value, low in zip(canvas, MIN_CANVAS_MM, strict=True):
            if not _is_real(value) or not math.isfinite(value) or value < low:
                raise ValueError(
                    f"{_where('canvas_mm')} must be finite and at least {MIN_CANVAS_MM} mm "
                    f"(rows, cols), got {canvas!r}"
                )

    def _check_modalities(self) -> None:
        mods = self.modalities
        if mods is None:
            return
        if isinstance(mods, str) or not mods or any(m not in MODALITIES for m in mods):
            raise ValueError(
                f"{_where('modalities')} must be None or a non-empty tuple of "
                f"{', '.join(MODALITIES)}; got {mods!r}"
            )

    def spacing_for(self, site: SiteProfile) -> float:
        """Output pixel spacing (mm) of images from ``site``."""
        if self.spacing_mm is not None:
            return float(self.spacing_mm)
        return round(site.spacing_mm * self.resolution_scale, 4)


#: Smallest detector field (rows, cols in mm): the smallest common detector side (18 cm) along
#: the chest wall, and room for the deepest breast the phantom draws (164 mm with the nipple).
MIN_CANVAS_MM = (180.0, 170.0)
