"""Helpers for the executable book reproducing five mammography explainable-AI papers.

Import as ``import mammo_helpers as mh``; submodules are loaded lazily on first attribute
access, so importing the package is cheap and has no side effects. Data flows one way:
``mh.data`` (``load_source``: the phantom or a real dataset -> the manifest) ->
``mh.io`` / ``mh.preprocess`` -> models -> ``mh.results`` (metrics, figures, the
paper-vs-measured table). Shared pieces: ``mh.vocab`` (views, lateralities, labels),
``mh.boxes`` (the box module), ``mh.paths`` (project root, cache, atomic writes),
``mh.repro`` (seeds, provenance), ``mh.devices`` (device,
precision, loaders), ``mh.cache`` (trained models), ``mh.metrics``
(AUCs with patient-bootstrap intervals), ``mh.training`` (the training loop; ``mh.distributed`` runs it
under torchrun),
``mh.models`` (CLIP loader, losses), ``mh.xai`` (Grad-CAM and where a map looks),
``mh.tasks`` (per-image explanation jobs on dask, stored per task),
``mh.scaling`` (work, measured speed and projected time at the papers' scale, chapter 06),
``mh.learnability`` (chapter 00's small-CNN check
of the cohort), ``mh.radiomics`` (handcrafted breast features and the radiomic model of
chapter 05), ``mh.timing`` (benchmarks, seconds per stage), ``mh.plotting`` and ``mh.run``
(the papermill runner behind ``mammo-run``).
"""

from __future__ import annotations

from mammo_helpers._lazy import lazy_attributes

__version__ = "0.1.0"

__getattr__, _dir, _names = lazy_attributes(
    __name__,
    {
        "boxes",
        "cache",
        "data",
        "devices",
        "distributed",
        "io",
        "learnability",
        "metrics",
        "models",
        "paths",
        "plotting",
        "preprocess",
        "radiomics",
        "repro",
        "results",
        "run",
        "scaling",
        "tasks",
        "timing",
        "training",
        "vocab",
        "xai",
    },
)
__all__ = sorted([*_names, "__version__"])


def __dir__():
    return __all__
