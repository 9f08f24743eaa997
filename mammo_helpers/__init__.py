"""Helpers for the executable book reproducing five mammography explainable-AI papers.

Import as ``import mammo_helpers as mh``; submodules (``mh.io``, ``mh.preprocess``,
``mh.data``, ``mh.realism``, ...) are loaded lazily on first attribute access, so importing
the package is cheap and has no side effects.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_SUBMODULES = {
    "data",
    "io",
    "paths",
    "plotting",
    "preprocess",
    "realism",
    "run",
}

__all__ = sorted(_SUBMODULES | {"__version__"})


def __getattr__(name: str):
    if name in _SUBMODULES:
        module = importlib.import_module(f"{__name__}.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return __all__
