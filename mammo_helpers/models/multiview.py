"""Paper 04's image task models (Wimmer et al. §II-B, Figs. 3-5 and 8; chapter 04).

- :func:`density_view_model` (D^v, Fig. 3): a backbone, global average pooling, dropout
  (0.001 in the paper) and a 1x1 convolution to the two density superclasses (fatty, dense).
  On a globally pooled 1x1 map a 1x1 convolution is a linear layer, which is what is used.
- :class:`FourViewDensity` (D, Fig. 4): four D^v branches, one per view in
  ``vocab.FOUR_VIEWS`` order, each initialised from the trained D^v, dropout 0.5, the
  flattened features concatenated (4 x feature_dim) and one dense layer.
- :func:`findings_model` (F, Fig. 5) and its patch model (Fig. 8): a backbone, pooling and
  a head with an extra dense layer and dropout 0.5 (normal vs any lesion). The patch model
  and F share the backbone, so F starts from the patch weights (:func:`copy_backbone`).

Every model returns ``(features, logits)`` like the crop classifiers of chapters 02-03
(:class:`~mammo_helpers.models.classifiers.CropClassifier`), so one training and prediction
code serves them all (:mod:`mammo_helpers.models.task_training`).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from mammo_helpers.models import classifiers
from mammo_helpers.vocab import FOUR_VIEWS

__all__ = [
    "DENSITY_CLASSES",
    "FINDINGS_CLASSES",
    "FourViewDensity",
    "copy_backbone",
    "density_view_model",
    "findings_model",
]

#: The density superclasses of paper 04 (§I-A.1): fatty (BI-RADS a+b) and dense (c+d).
DENSITY_CLASSES = ("fatty", "dense")
#: The findings model's classes (§II-B.2): normal vs an image with any lesion.
FINDINGS_CLASSES = ("normal", "lesion")


def _build(backbone: str, labels, head_of, *, in_chans: int, seed: int, **shape):
    base = classifiers.build_classifier(
        backbone, labels, in_chans=in_chans, seed=seed, channels_last=False, **shape
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed + 1)
        head = head_of(base.feature_dim, len(labels))
    model = classifiers.CropClassifier(base.backbone, base.feature_dim, labels, head=head)
    model.settings = dict(base.settings)
    return model


def density_view_model(
    backbone: str = "small_cnn", *, in_chans: int = 1, dropout: float = 0.001, seed: int = 0,
    **shape,
) -> classifiers.CropClassifier:  # fmt: skip
    """D^v (paper 04 Fig. 3): ``backbone`` -> global average pooling -> Dropout(``dropout``)
    -> 1x1 convolution (a linear layer on the pooled features) -> fatty / dense logits.
    ``shape`` goes to :func:`~mammo_helpers.models.classifiers.build_classifier` (small CNN
    width and blocks). Chapter 04."""

    def head(features: int, n: int):
        return nn.Sequential(nn.Dropout(dropout), nn.Linear(features, n))

    model = _build(backbone, DENSITY_CLASSES, head, in_chans=in_chans, seed=seed, **shape)
    model.settings |= {"head": "dropout_1x1", "dropout": dropout}
    return model


def findings_model(
    backbone: str = "small_cnn", *, in_chans: int = 1, hidden: int = 256, dropout: float = 0.5,
    seed: int = 0, **shape,
) -> classifiers.CropClassifier:  # fmt: skip
    """F and its patch model (paper 04 Figs. 5 and 8): ``backbone`` -> global average
    pooling -> Linear(``hidden``) -> ReLU -> Dropout(``dropout``, 0.5 in the paper) ->
    normal / lesion logits. The paper does not give the dense layer's width. Chapter 04."""

    def head(features: int, n: int):
        return nn.Sequential(
            nn.Linear(features, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, n)
        )

    model = _build(backbone, FINDINGS_CLASSES, head, in_chans=in_chans, seed=seed, **shape)
    model.settings |= {"head": "dense_dropout", "hidden": hidden, "dropout": dropout}
    return model


def copy_backbone(source: nn.Module, target: nn.Module) -> int:
    """Copy ``source.backbone``'s weights into ``target.backbone`` (F from its patch model,
    §III-A.2); the two must have the same architecture. Returns the number of tensors
    copied. Chapter 04."""
    src, dst = source.backbone.state_dict(), target.backbone.state_dict()
    if src.keys() != dst.keys() or any(src[k].shape != dst[k].shape for k in src):
        raise ValueError("copy_backbone: source and target backbones differ in architecture")
    target.backbone.load_state_dict(src)
    return len(src)


class FourViewDensity(nn.Module):
    """D (paper 04 Fig. 4): one branch per view of ``vocab.FOUR_VIEWS`` (L-CC, L-MLO, R-CC,
    R-MLO), each a copy of D^v's backbone and pooling, then Dropout(``dropout``, 0.5 in the
    paper), the four feature vectors concatenated and one dense layer to fatty / dense.

    ``forward(x)`` takes (B, 4, C, H, W) and returns ``(features, logits)``, features
    (B, 4 x feature_dim) in view order (the paper's 4 x 1024 = 4096-d feat_D). Build it from
    a trained D^v with :meth:`from_view_model` (the paper's initialisation) or from an
    untrained one (the ablation without pre-training). Chapter 04."""

    def __init__(self, view_model: classifiers.CropClassifier, *, dropout: float = 0.5):
        super().__init__()
        self.labels = DENSITY_CLASSES
        self.feature_dim = 4 * view_model.feature_dim
        self.branches = nn.ModuleList(copy.deepcopy(view_model.backbone) for _ in FOUR_VIEWS)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(self.feature_dim, len(DENSITY_CLASSES))
        self.settings = {"view_model": dict(view_model.settings), "dropout": dropout}

    @classmethod
    def from_view_model(cls, view_model, *, dropout: float = 0.5, seed: int = 0):
        """D with every branch a copy of ``view_model``'s backbone (its trained weights)
        and a freshly drawn dense layer (``seed``)."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return cls(view_model, dropout=dropout)

    def forward(self, x):
        if x.ndim != 5 or x.shape[1] != len(FOUR_VIEWS):
            raise ValueError(
                f"FourViewDensity takes (batch, 4 views, C, H, W), got {tuple(x.shape)}"
            )
        feats = torch.cat([branch(x[:, i]) for i, branch in enumerate(self.branches)], dim=1)
        return feats, self.head(self.dropout(feats))
