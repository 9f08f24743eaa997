"""One data switch for every chapter: ``load_source(DATA_SOURCE, DATA_DIR, ...)``.

``DATA_SOURCE`` is ``"phantom"`` (the synthetic cohort, generated into and reused from the
cache ``CACHE_DIR``) or a dataset adapter's name (``DATA_DIR`` = the dataset's folder as
distributed, only ever read). Either way the result is a validated manifest with absolute
image paths, so a chapter runs unchanged on both. Used by chapters 00-05 and by
``make data``.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pandas as pd

from mammo_helpers.paths import display_path, existing_dir

from .splits import sample_patients

PHANTOM = "phantom"
#: Every value DATA_SOURCE accepts.
SOURCES: tuple[str, ...] = (PHANTOM, "vindr", "cbis_ddsm", "rsna", "embed", "inbreast")


def _phantom(
    data_dir, n_patients, seed, cache_dir, workers, progress, options: dict
) -> pd.DataFrame:
    from .cohort import build_cohort, check_n_patients, load_cohort, phantom_config

    if data_dir is not None:  # a cohort folder built before (e.g. copied from another machine)
        folder = existing_dir(data_dir, "phantom cohort", "DATA_DIR")
        manifest = load_cohort(folder).manifest
        if n_patients is not None:
            manifest = sample_patients(manifest, n_patients, seed=seed)
        return manifest
    if n_patients is None:
        raise ValueError("N_PATIENTS must be set for the synthetic cohort (DATA_SOURCE='phantom')")
    n_patients = check_n_patients(n_patients, "N_PATIENTS")
    cohort = build_cohort(
        n_patients,
        phantom_config(seed, **options),
        cache_dir=cache_dir,
        workers=workers,
        progress=progress,
    )
    return cohort.manifest


def _dataset(source, data_dir, n_patients, seed, options: dict) -> pd.DataFrame:
    from .adapters import load_dataset

    folder = existing_dir(data_dir, f"{source} dataset", "DATA_DIR")
    manifest = load_dataset(source, folder, **options)
    manifest.attrs["data_dir"] = str(folder)
    if n_patients is not None:
        manifest = sample_patients(manifest, n_patients, seed=seed)
    return manifest


def load_source(
    source: str,
    data_dir: str | os.PathLike | None = None,
    *,
    n_patients: int | None = None,
    seed: int = 0,
    cache_dir: str | os.PathLike | None = None,
    workers: int | None = None,
    progress: bool = True,
    **options: Any,
) -> pd.DataFrame:
    """The manifest of ``source`` (chapters 00-05: the ``DATA_SOURCE`` parameter).

    * ``"phantom"``: the synthetic cohort of ``n_patients`` patients drawn with ``seed``,
      built in (or reused from) ``cache_dir`` (``CACHE_DIR``; default ``$MAMMO_DATA_DIR`` or
      ``~/.cache/mammo_helpers``); ``options`` are phantom settings (``resolution_scale``,
      ``spacing_mm``, ``lesion_prevalence``, ...). With ``data_dir``, an existing cohort
      folder is opened instead (read only).
    * a dataset name (``"vindr"``, ``"cbis_ddsm"``, ``"rsna"``, ``"embed"``,
      ``"inbreast"``): the adapter reads ``data_dir`` (``DATA_DIR``) and writes nothing
      there; ``options`` go to the adapter (e.g. ``views=``). With ``n_patients``, that
      many patients are drawn at random with ``seed`` (all of their images kept).

    The manifest's ``attrs`` record ``source`` (and the adapter's ``dropped`` / ``notes``
    reports, or the phantom's ``cohort_root``).
    """
    key = str(source).strip().lower().replace("-", "_") if isinstance(source, str) else source
    if key not in SOURCES:
        raise ValueError(f"DATA_SOURCE {source!r} is not one of {', '.join(SOURCES)}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"SEED must be an integer >= 0, got {seed!r}")
    if key == PHANTOM:
        manifest = _phantom(data_dir, n_patients, seed, cache_dir, workers, progress, options)
    else:
        if data_dir is None:
            raise ValueError(
                f"DATA_SOURCE {source!r} needs DATA_DIR, the folder holding the dataset as "
                "distributed (nothing is downloaded); e.g. -p DATA_DIR /data/vindr"
            )
        if workers is not None:
            raise TypeError(f"workers is a phantom setting, not an option of the {key} adapter")
        manifest = _dataset(key, data_dir, n_patients, seed, options)
    manifest.attrs["source"] = key
    return manifest


def describe_source(manifest: pd.DataFrame) -> str:
    """One line saying where a manifest from :func:`load_source` came from (for printing)."""
    source = manifest.attrs.get("source", "unknown")
    where = manifest.attrs.get("cohort_root") or manifest.attrs.get("data_dir") or "?"
    n_pat = manifest["patient_id"].nunique()
    return f"{source}: {len(manifest)} images of {n_pat} patients from {display_path(where)}"
