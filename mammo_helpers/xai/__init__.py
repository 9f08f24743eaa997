"""Explanations of the chapters' models and how well they localise findings.

``gradcam`` (Grad-CAM through pytorch-grad-cam, for CNNs and ViTs; chapters 01, 02),
``windows`` (sliding windows over a breast ROI and the IoU kernel that turns per-window
values into maps; chapters 02, 03), ``relax`` (the RELAX / CorRELAX engine; chapters 02, 03),
``localisation`` (Pointing Game, pixel AUC, relevance mass / rank accuracy and their
baselines; chapters 02, 03), ``map_boxes`` (attribution map -> one box -> IoU; chapter 03),
``sanity`` (model-parameter randomisation and map similarity; chapter 03), ``attribution``
(one call for saliency, IG, occlusion, guided Grad-CAM, LIME, KernelSHAP, DeepLIFT,
Grad-CAM, RELAX and CorRELAX, with timing and forward counts; chapter 03), ``relus``
(whether captum's DeepLIFT can run on a model, and a copy on which it can; chapter 03) and
``benchmark`` (the engine's speed against a forward pass and the authors' loop; chapter 02).
Submodules load on first attribute access (``mh.xai.windows``).
"""

from __future__ import annotations

from mammo_helpers._lazy import lazy_attributes

__getattr__, __dir__, __all__ = lazy_attributes(
    __name__,
    {
        "attribution",
        "benchmark",
        "gradcam",
        "localisation",
        "map_boxes",
        "relax",
        "relus",
        "sanity",
        "windows",
    },
)
