"""Losses of the papers (chapter 01: the class-weighted contrastive loss; chapter 02: the
multi-label sigmoid focal loss)."""

from __future__ import annotations

import numbers
from math import inf

import numpy as np

__all__ = ["ALPHA_ON", "class_weights", "focal_loss", "weighted_contrastive_loss"]

#: Where :func:`focal_loss` puts ``alpha``: ``"t"`` weights positives by alpha and negatives
#: by 1 - alpha (Lin et al.; torchvision), ``"both"`` multiplies both terms (paper 02, eq. 1).
ALPHA_ON = ("t", "both")
REDUCTIONS = ("none", "mean", "sum")


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


def _focal_settings(alpha, gamma, reduction: str, alpha_on: str) -> float | None:
    """Check :func:`focal_loss`'s settings; ``alpha`` as a float, or None for no weighting."""
    if alpha_on not in ALPHA_ON:
        raise ValueError(
            f"focal_loss: alpha_on must be one of {', '.join(ALPHA_ON)}, got {alpha_on!r}"
        )
    if reduction not in REDUCTIONS:
        raise ValueError(
            f"focal_loss: reduction must be one of {', '.join(REDUCTIONS)}, got {reduction!r}"
        )
    if isinstance(gamma, bool) or not isinstance(gamma, numbers.Real) or not 0 <= gamma < inf:
        raise ValueError(f"focal_loss: gamma must be a finite number >= 0, got {gamma!r}")
    if alpha is None or (not isinstance(alpha, bool) and alpha == -1):
        return None
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not 0 <= alpha <= 1:
        raise ValueError(
            f"focal_loss: alpha must be in [0, 1], or None (or torchvision's -1) for no "
            f"weighting; got {alpha!r}"
        )
    return float(alpha)


def focal_loss(
    logits,
    targets,
    *,
    alpha: float | None = 0.95,
    gamma: float = 2.5,
    reduction: str = "mean",
    alpha_on: str = "t",
):
    """Multi-label sigmoid focal loss (Lin et al. 2017; paper 02, §3.3 and eq. 1).

    ``logits`` and ``targets`` have the same shape, e.g. (B, n_labels); every element is
    its own binary problem with ``p = sigmoid(logit)``. ``targets`` lie in [0, 1] (0/1
    labels, or soft ones); they are cast to the logits' dtype. ``reduction`` is ``"none"``
    (per element), ``"mean"`` (over all elements) or ``"sum"``.

    * ``alpha_on="t"`` (default): ``alpha_t * (1 - p_t)**gamma * BCE`` with
      ``p_t = p y + (1 - p)(1 - y)`` and ``alpha_t = alpha y + (1 - alpha)(1 - y)``: the
      form of Lin et al., of the paper's text and of the authors' code; the same numbers as
      ``torchvision.ops.sigmoid_focal_loss``.
    * ``alpha_on="both"``: eq. 1 as printed, ``-alpha [y (1-p)**gamma log p +
      (1-y) p**gamma log(1-p)]``: alpha multiplies both terms, so it only rescales the
      loss (for 0/1 targets this is ``alpha`` times the unweighted ``"t"`` loss).

    ``alpha=None`` switches the weighting off (torchvision's ``alpha=-1`` is accepted with
    the same meaning; any other value outside [0, 1] is refused). With ``gamma=0`` and
    ``alpha=None`` this is ``binary_cross_entropy_with_logits``. Defaults are the paper's
    values (alpha 0.95, gamma 2.5); the authors' code trained with alpha 0.8, gamma 2.

    Computed from log-sigmoids (no ``log(sigmoid)``): ``(1 - p_t)**gamma`` is
    ``exp(gamma * log(1 - p_t))``, so loss and gradients stay finite for saturated logits
    and any ``gamma >= 0`` (torchvision's ``(1 - p_t)**gamma`` has NaN gradients where
    ``p_t`` rounds to 1 and ``gamma < 1``).
    """
    import torch
    import torch.nn.functional as F

    alpha = _focal_settings(alpha, gamma, reduction, alpha_on)
    if not torch.is_tensor(logits) or not logits.is_floating_point():
        got = logits.dtype if torch.is_tensor(logits) else type(logits).__name__
        raise ValueError(f"focal_loss: logits must be a floating-point tensor, got {got}")
    targets = torch.as_tensor(targets, dtype=logits.dtype, device=logits.device)
    if targets.shape != logits.shape:
        raise ValueError(
            f"focal_loss: targets shape {tuple(targets.shape)} differs from logits shape "
            f"{tuple(logits.shape)}"
        )
    if not bool(((targets >= 0) & (targets <= 1)).all()):
        raise ValueError("focal_loss: targets must lie in [0, 1]")
    log_p, log_q = F.logsigmoid(logits), F.logsigmoid(-logits)  # log p, log(1 - p)
    if alpha_on == "t":
        ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
        # 1 - p_t = p (1 - y) + (1 - p) y, summed in log space
        log_miss = torch.logaddexp(log_p + torch.log1p(-targets), log_q + torch.log(targets))
        loss = ce * torch.exp(gamma * log_miss)
        if alpha is not None:
            loss = (alpha * targets + (1 - alpha) * (1 - targets)) * loss
    else:
        positive = targets * torch.exp(gamma * log_q) * log_p
        negative = (1 - targets) * torch.exp(gamma * log_p) * log_q
        loss = -(positive + negative) * (1.0 if alpha is None else alpha)
    if reduction == "mean":
        return loss.mean()
    return loss.sum() if reduction == "sum" else loss
