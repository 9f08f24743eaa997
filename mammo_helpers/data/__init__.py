"""The data layer: one switch between the synthetic cohort and real datasets, the manifest
schema, patient-level splits, the cohort cache, the dataset adapters and the phantom.

Every chapter (00-05) gets its images with :func:`load_source` (``mh.data.load_source``).
Submodules load lazily on first attribute access (``mh.data.manifest``, ``mh.data.splits``,
``mh.data.cohort``, ``mh.data.adapters``, ``mh.data.examples``, ``mh.data.phantom``,
``mh.data.reports``), so
importing the package stays cheap and has no side effects.
"""

from __future__ import annotations

import importlib

_SUBMODULES = {
    "adapters",
    "cohort",
    "examples",
    "manifest",
    "phantom",
    "reports",
    "sources",
    "splits",
}
_FROM_SOURCES = {"load_source", "SOURCES"}

__all__ = sorted(_SUBMODULES | _FROM_SOURCES)


def __getattr__(name: str):
    if name in _SUBMODULES:
        module = importlib.import_module(f"{__name__}.{name}")
        globals()[name] = module
        return module
    if name in _FROM_SOURCES:
        value = getattr(importlib.import_module(f"{__name__}.sources"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return __all__
