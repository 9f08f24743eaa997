"""Losses of the papers (chapter 01: the class-weighted contrastive loss)."""

from __future__ import annotations

import numpy as np

__all__ = ["class_weights", "weighted_contrastive_loss"]


def class_weights(labels, n_classes: int) -> np.ndarray:
    """Inverse class frequencies of ``labels`` (indices 0..n_classes-1), normalised to mean
    1 over the classes (paper 01, §2.2). A class with no sample raises ``ValueError``."""
    y = np.asarray(labels)
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"labels must be 1-D integer class indices, got {y.dtype} {y.shape}")
    if len(y) and (y.min() < 0 or y.max() >= n_classes):
        raise ValueError(f"labels hold class indices outside 0..{n_classes - 1}")
    counts = np.bincount(y, minlength=n_classes)
    absent = np.flatnonzero(counts == 0).tolist()
    if absent:
        raise ValueError(f"class(es) {absent} have no sample: their weight is undefined")
    inverse = 1.0 / counts
    return inverse * n_classes / inverse.sum()


def weighted_contrastive_loss(image_emb, text_emb, labels, logit_scale, weights=None):
    """CLIP's symmetric contrastive loss where every image-text pair of the same class is a
    positive (paper 01, §2.2).

    ``image_emb`` and ``text_emb`` are (B, d) embeddings of B pairs (normalised here),
    ``labels`` (B,) their classes, ``logit_scale`` the model's (already exponentiated)
    temperature, ``weights`` one weight per class (default: all 1). For image i, with
    logits ``s * <img_i, txt_j>``, the loss is minus the mean log-softmax over its positives
    j (the texts of its class); the same for each text over the images; each term is
    weighted by its class's weight and averaged with those weights, and the two directions
    are averaged. With unique labels and equal weights this is open_clip's ``ClipLoss``.
    """
    import torch
    import torch.nn.functional as F

    img = F.normalize(image_emb, dim=-1)
    txt = F.normalize(text_emb, dim=-1)
    logits = logit_scale * img @ txt.T
    labels = torch.as_tensor(labels, device=logits.device)
    positive = (labels[:, None] == labels[None, :]).to(logits.dtype)
    w = torch.ones(len(labels), dtype=logits.dtype, device=logits.device)
    if weights is not None:
        w = torch.as_tensor(weights, dtype=logits.dtype, device=logits.device)[labels]

    def direction(lg):
        per = -(F.log_softmax(lg, dim=1) * positive).sum(1) / positive.sum(1)
        return (w * per).sum() / w.sum()

    return (direction(logits) + direction(logits.T)) / 2
