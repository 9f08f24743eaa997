"""Generation speed of the phantom: rendered images per second in one process (chapter 00)."""

from __future__ import annotations

import time

from ..config import PhantomConfig
from ..generator import render_view
from ..patients import sample_patient
from ._arrays import check_number
from ._renders import FIRST_PATIENT, check_views


def speed_check(config: PhantomConfig, n_images: int = 8) -> float:
    """Images per second for rendering alone (one process, patients drawn beforehand)."""
    check_number("n_images", n_images, low=1, integer=True)
    patients = [sample_patient(config, FIRST_PATIENT["speed"] + i) for i in range(n_images)]
    start = time.perf_counter()
    for p, (lat, view) in zip(patients, check_views(n_images), strict=True):
        render_view(config, p, lat, view)
    return n_images / (time.perf_counter() - start)
