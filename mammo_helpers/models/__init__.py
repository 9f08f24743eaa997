"""Models of the chapters: ``clip`` (BiomedCLIP by hub id, a ``local-dir:`` folder or an
offline stand-in; chapter 01) and ``losses`` (the papers' losses). Submodules load on first
attribute access (``mh.models.clip``), so importing the package does not import torch."""

from __future__ import annotations

import importlib

_SUBMODULES = {"clip", "losses"}
__all__ = sorted(_SUBMODULES)


def __getattr__(name: str):
    if name in _SUBMODULES:
        module = importlib.import_module(f"{__name__}.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return __all__
