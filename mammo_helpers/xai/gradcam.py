"""Grad-CAM (Selvaraju et al. 2017) through pytorch-grad-cam, for CNNs and for ViTs whose
token sequence is reshaped to the patch grid, and two numbers that say where a map looks:
its mass inside a mask (the breast) and its rank correlation with a reference map (the
phantom's true dense tissue). Chapter 01 (density classes on BiomedCLIP's ViT); later
chapters compare other attribution methods on the same footing.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "gradcam",
    "last_conv_layer",
    "mass_inside",
    "rank_correlation",
    "vit_target_layer",
    "vit_tokens_to_map",
]


def vit_tokens_to_map(tokens, prefix_tokens: int = 1, grid_hw: tuple[int, int] | None = None):
    """ViT activations (B, T, C) -> (B, C, h, w): the ``prefix_tokens`` (CLS, registers)
    dropped and the patch tokens laid out row by row on the patch grid (square unless
    ``grid_hw`` is given), as Grad-CAM needs a spatial map."""
    patches = tokens[:, prefix_tokens:, :]
    n = patches.shape[1]
    if grid_hw is None:
        side = math.isqrt(n)
        if side * side != n:
            raise ValueError(f"{n} patch tokens are not a square grid; pass grid_hw")
        grid_hw = (side, side)
    h, w = grid_hw
    if h * w != n:
        raise ValueError(f"grid_hw {grid_hw} holds {h * w} tokens, the ViT gave {n}")
    return patches.reshape(patches.shape[0], h, w, patches.shape[2]).permute(0, 3, 1, 2)


def vit_target_layer(model):
    """The layer Grad-CAM reads in an open_clip timm-ViT image tower (BiomedCLIP and the
    stand-in): the first norm of the last transformer block (notes: anchors A3)."""
    visual = getattr(model, "visual", model)
    trunk = getattr(visual, "trunk", visual)
    if not hasattr(trunk, "blocks"):
        raise ValueError(f"{type(trunk).__name__} has no transformer blocks: not a timm ViT")
    return trunk.blocks[-1].norm1


def last_conv_layer(model):
    """The last ``Conv2d`` of a CNN (Grad-CAM's usual target layer; chapter 02)."""
    from torch import nn

    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise ValueError(f"{type(model).__name__} has no Conv2d layer for Grad-CAM")
    return convs[-1]


def gradcam(model, images, target_layer, classes, *, reshape=None) -> np.ndarray:
    """Grad-CAM maps (N, H, W) in [0, 1] at the input size, for class ``classes[i]`` of
    image ``i`` (pytorch-grad-cam's ``GradCAM``, each map min-max scaled). ``reshape`` turns
    the layer's output into (N, C, h, w) (:func:`vit_tokens_to_map` for a ViT)."""
    import torch
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    from mammo_helpers import devices

    x = torch.as_tensor(np.asarray(images, dtype=np.float32)).to(devices.model_device(model))
    classes = [int(c) for c in np.atleast_1d(classes)]
    if len(classes) != len(x):
        raise ValueError(f"{len(classes)} classes for {len(x)} images")
    with GradCAM(model=model, target_layers=[target_layer], reshape_transform=reshape) as cam:
        return cam(input_tensor=x, targets=[ClassifierOutputTarget(c) for c in classes])


def mass_inside(cam, mask) -> float:
    """The share of a non-negative map's total inside ``mask`` (NaN for an all-zero map)."""
    cam, mask = np.asarray(cam, dtype=float), np.asarray(mask, dtype=bool)
    if cam.shape != mask.shape:
        raise ValueError(f"map {cam.shape} and mask {mask.shape} differ in shape")
    if (cam < 0).any():
        raise ValueError("mass_inside needs a non-negative map")
    total = cam.sum()
    return float(cam[mask].sum() / total) if total > 0 else math.nan


def rank_correlation(cam, reference, mask=None) -> float:
    """Spearman's rank correlation of two maps over the pixels of ``mask`` (all if None)."""
    from scipy.stats import spearmanr

    cam, reference = np.asarray(cam, dtype=float), np.asarray(reference, dtype=float)
    if cam.shape != reference.shape:
        raise ValueError(f"maps {cam.shape} and {reference.shape} differ in shape")
    keep = np.ones(cam.shape, bool) if mask is None else np.asarray(mask, dtype=bool)
    return float(spearmanr(cam[keep], reference[keep]).statistic)
