"""Explanations of the chapters' models: ``gradcam`` (Grad-CAM through pytorch-grad-cam,
for CNNs and ViTs, and how much of a map falls where it should; chapter 01). Submodules
load on first attribute access (``mh.xai.gradcam``)."""

from __future__ import annotations

import importlib

_SUBMODULES = {"gradcam"}
__all__ = sorted(_SUBMODULES)


def __getattr__(name: str):
    if name in _SUBMODULES:
        module = importlib.import_module(f"{__name__}.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return __all__
