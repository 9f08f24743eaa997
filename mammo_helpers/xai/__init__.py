"""Explanations of the chapters' models: ``gradcam`` (Grad-CAM through pytorch-grad-cam,
for CNNs and ViTs, and how much of a map falls where it should; chapter 01). Submodules
load on first attribute access (``mh.xai.gradcam``)."""

from __future__ import annotations

from mammo_helpers._lazy import lazy_attributes

__getattr__, __dir__, __all__ = lazy_attributes(__name__, {"gradcam"})
