"""Models of the chapters: ``clip`` (BiomedCLIP by hub id, a ``local-dir:`` folder or an
offline stand-in; chapter 01), ``clip_training`` (pre-training, fine-tuning and the
cross-entropy baseline; chapter 01), ``classifiers`` (crop classifiers returning features
and logits; chapters 02, 03), ``crop_training`` (their training recipe; chapter 02),
``image_training`` (cross-entropy training of patch and whole-image classifiers; chapter 03),
``multiview`` and ``task_training`` (paper 04's density and findings models and their
recipes), ``detection`` (a Faster R-CNN lesion detector), ``fusion`` (paper 04's patient
score and feature fusion; all chapter 04), ``end2end`` (paper 05's End2End-style
classifier and its two-stage fine-tuning; chapter 05) and ``losses`` (the papers' losses). Submodules
load on first attribute access (``mh.models.clip``), so importing the package does not
import torch."""

from __future__ import annotations

from mammo_helpers._lazy import lazy_attributes

__getattr__, __dir__, __all__ = lazy_attributes(
    __name__,
    {
        "classifiers",
        "clip",
        "clip_training",
        "crop_training",
        "detection",
        "end2end",
        "fusion",
        "image_training",
        "losses",
        "multiview",
        "task_training",
    },
)
