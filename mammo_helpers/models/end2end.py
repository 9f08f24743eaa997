"""Paper 05's End2End-style whole-image classifier and its two-stage fine-tuning (chapter 05).

The model (Sánchez Fuentes & Monsalve Durán 2025, Fig. 2; Shen et al. 2019's End2End): a
convolutional ``backbone`` (VGG16 in the paper) that keeps a spatial feature map, two top
blocks ``block1`` and ``block2`` of Conv(3x3)-BatchNorm-ReLU-Dropout-MaxPool(2), global
average pooling and a dense ``head`` (two logits: non-malignant, malignant). As in
End2End, the backbone is first trained as a patch classifier (backbone, pooling, dense) on
patches of five classes (``PATCH_CLASSES``: background, benign or malignant calcification
or mass) and then copied into the whole-image model.

Fine-tuning on the target domain (§4.4, Table 6) runs in two stages: stage 1 trains only
the parts a configuration names (``FREEZE_CONFIGS``: Config1 = block 2 and the head,
Config2 = blocks 1 and 2 and the head; also the head alone, beyond the paper), stage 2 the
whole network, each with Adam (the paper's "weight decay" as Adam's L2 term), early
stopping on the validation loss, learning-rate reduction on plateau and the best epoch's
weights kept. Frozen parts also keep their batch-norm statistics (Keras' behaviour for
non-trainable layers).
"""

from __future__ import annotations

import math
import numbers
import os
import sys
from dataclasses import asdict, dataclass

import torch
from torch import nn

from mammo_helpers import devices, training
from mammo_helpers.models import classifiers, image_training, multiview, task_training
from mammo_helpers.vocab import LESION_CLASSES

__all__ = [
    "AUGMENT",
    "End2End",
    "FREEZE_CONFIGS",
    "PAPER_STAGES",
    "PATCH_CLASSES",
    "PatchClassifier",
    "Stage",
    "build_end2end",
    "build_patch_classifier",
    "cached",
    "fine_tune",
    "freeze",
    "load_checkpoint",
    "set_dropout",
    "evaluate_patches",
    "probabilities",
    "train_patch_classifier",
    "train_stage",
]

#: End2End's patch classes (Shen et al. 2019): background, then ``vocab.LESION_CLASSES``
#: (class index = ``mh.data.exams.lesion_class_index``).
PATCH_CLASSES: tuple[str, ...] = ("background", *LESION_CLASSES)
#: The model's parts, input to output.
PARTS: tuple[str, ...] = ("backbone", "block1", "block2", "head")
#: What stage 1 trains in each configuration (§5.4; ``head_only`` is beyond the paper).
FREEZE_CONFIGS: dict[str, tuple[str, ...]] = {
    "head_only": ("head",),
    "config1": ("block2", "head"),
    "config2": ("block1", "block2", "head"),
    "all": PARTS,
}
#: Table 7's augmentations: rotation +-10 degrees, shifts +-5 %, zoom +-10 %, horizontal
#: flip (keyword arguments of :func:`mammo_helpers.models.task_training.augment`).
AUGMENT: dict = {
    "hflip": True,
    "vflip": False,
    "degrees": 10.0,
    "translate": 0.05,
    "zoom": 0.1,
    "crop": None,
}


def _vgg16():
    import torchvision

    return torchvision.models.vgg16(weights=None).features, 512


def _vgg_small(width: int):
    return nn.Sequential(*classifiers.conv_blocks(width, 4, in_chans=3)), width * 8


def _timm_features(name: str):
    import timm

    net = timm.create_model(name, pretrained=False, features_only=True, out_indices=(-1,))
    return _LastMap(net), net.feature_info.channels()[-1]


class _LastMap(nn.Module):
    """A timm ``features_only`` model returning its last feature map alone."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(x)[-1]


def make_backbone(name: str, width: int = 16) -> tuple[nn.Module, int]:
    """``(module, channels)``: a backbone that keeps a spatial map. ``"vgg16"`` (the paper's;
    torchvision's layers, no downloaded weights), ``"vgg_small"`` (VGG-style, four blocks of
    ``width``, 2 ``width``, 4 ``width``, 8 ``width`` channels: the default scale's) or a timm
    model name (its last feature map)."""
    if name == "vgg16":
        return _vgg16()
    if name == "vgg_small":
        return _vgg_small(classifiers._positive_int(width, "width", "make_backbone"))
    try:
        return _timm_features(name)
    except RuntimeError as err:  # timm: unknown model
        raise ValueError(
            f"BACKBONE {name!r} is not 'vgg16', 'vgg_small' or a timm model name ({err})"
        ) from None


def top_block(c_in: int, c_out: int, dropout: float) -> nn.Sequential:
    """Conv(3x3) -> BatchNorm -> ReLU -> Dropout -> MaxPool(2) (paper 05 Fig. 2)."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(),
        nn.Dropout(dropout),
        nn.MaxPool2d(2),
    )


def _dropout(value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value < 1:
        raise ValueError(f"dropout must be in [0, 1), got {value!r}")
    return float(value)


class End2End(nn.Module):
    """backbone -> block1 -> block2 -> global average pooling -> dense (see the module
    docstring). ``forward(x)`` takes (B, 3, H, W) and returns ``(pooled features, logits)``
    like the other models of the package. ``frozen`` names the parts that stay in eval mode
    while training (set by :func:`freeze`)."""

    def __init__(self, backbone: nn.Module, channels: int, top: tuple[int, int], dropout: float):
        super().__init__()
        dropout = _dropout(dropout)
        self.backbone = backbone
        self.block1 = top_block(channels, top[0], dropout)
        self.block2 = top_block(top[0], top[1], dropout)
        self.head = nn.Linear(top[1], 2)
        self.frozen: tuple[str, ...] = ()

    def forward(self, x):
        pooled = self.block2(self.block1(self.backbone(x))).mean((2, 3))
        return pooled, self.head(pooled)

    def train(self, mode: bool = True):
        super().train(mode)
        for part in self.frozen if mode else ():
            getattr(self, part).eval()
        return self


class PatchClassifier(nn.Module):
    """End2End's first step: the backbone, global average pooling and a dense layer over
    ``n_classes`` patch classes; ``forward`` returns ``(pooled, logits)``."""

    def __init__(self, backbone: nn.Module, channels: int, n_classes: int = len(PATCH_CLASSES)):
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(channels, n_classes)

    def forward(self, x):
        pooled = self.backbone(x).mean((2, 3))
        return pooled, self.head(pooled)


def build_patch_classifier(
    backbone: str = "vgg_small", *, width: int = 16, n_classes: int = len(PATCH_CLASSES), seed=0
):
    """A :class:`PatchClassifier` on :func:`make_backbone`'s ``backbone`` (seeded init)."""
    torch.manual_seed(seed)
    n_classes = classifiers._positive_int(n_classes, "n_classes", "build_patch_classifier")
    return PatchClassifier(*make_backbone(backbone, width), n_classes)


def probabilities(model, x, batch_size: int = 128):
    """Softmax probabilities (N, classes) of a model returning ``(features, logits)``, in eval
    mode, on the model's device (the patch classifier's five classes; chapter 05)."""

    def step(m, b):
        return torch.softmax(m(b)[1].double(), 1)

    return devices.predict_batches(model, x, step, batch_size=batch_size)


def evaluate_patches(model, x, y) -> dict:
    """A patch classifier on ``(x, y)`` (classes ``PATCH_CLASSES``): ``val_loss`` (mean
    cross-entropy), ``val_auc`` (lesion against background: 1 - P(background)) and
    ``val_malignant_auc`` (malignant against benign lesions: P(malignant calcification) +
    P(malignant mass)); an AUC whose classes are absent is NaN. Chapter 05."""
    import numpy as np

    from mammo_helpers.metrics import roc_auc

    y = np.asarray(y, dtype=int)
    p = probabilities(model, x)
    loss = float(-np.mean(np.log(np.clip(p[np.arange(len(y)), y], 1e-12, 1.0))))
    lesion = y > 0
    five = p.shape[1] == len(PATCH_CLASSES)
    malignant_classes = [i for i, c in enumerate(PATCH_CLASSES) if c.startswith("malignant")]
    malignant = np.isin(y, malignant_classes) if five else np.zeros(len(y), bool)
    p_malignant = p[:, malignant_classes].sum(1) if five else np.zeros(len(y))

    def auc(truth, score):
        return roc_auc(truth, score) if 0 < truth.sum() < len(truth) else float("nan")

    return {"val_loss": loss, "val_auc": auc(lesion, 1 - p[:, 0]),
            "val_malignant_auc": auc(malignant[lesion], p_malignant[lesion])}  # fmt: skip


def train_patch_classifier(
    model: PatchClassifier, train_xy, val_xy, *, epochs: int, lr: float = 1e-3,
    batch_size: int = 64, augment_kw: dict | None = None, stop_patience: int = 5, seed: int = 0,
    progress: bool = False, desc: str = "patch classifier", precision: str = "fp32",
) -> training.History:  # fmt: skip
    """End2End's patch classifier trained in place with Adam at ``lr``: cross-entropy over
    the model's classes, early stopping on the validation loss (``stop_patience``), the best
    epoch's weights kept; ``augment_kw`` as in :func:`task_training.augment`; ``precision``
    as in :func:`~mammo_helpers.training.fit`. Chapter 05."""
    torch.manual_seed(seed)
    n_classes = model.head.out_features
    batches = task_training.batches(*train_xy, batch_size=batch_size, seed=seed,
                                    augment_kw=augment_kw, n_classes=n_classes)  # fmt: skip
    x_val, y_val = val_xy
    return training.fit(
        model, batches, image_training.ce_loss, torch.optim.Adam(model.parameters(), lr=lr),
        epochs=epochs, validate=lambda m: evaluate_patches(m, x_val, y_val),
        stopper=training.EarlyStopping("val_loss", patience=stop_patience),
        progress=progress, precision=precision, desc=desc,
    )  # fmt: skip


def build_end2end(
    backbone: str = "vgg_small",
    *,
    width: int = 16,
    top: tuple[int, int] | None = None,
    dropout: float = 0.2,
    seed: int = 0,
) -> End2End:
    """An :class:`End2End` model; ``top`` gives the two blocks' channels (default: the
    backbone's channels twice, End2End's 512/512 on VGG16). Initialise it from a trained
    patch classifier with ``multiview.copy_backbone(patch_model, model)``."""
    torch.manual_seed(seed)
    net, channels = make_backbone(backbone, width)
    top = (channels, channels) if top is None else tuple(top)
    return End2End(net, channels, top, dropout)


def set_dropout(model: nn.Module, p: float) -> None:
    """Set every dropout layer of ``model`` to ``p`` (Table 6: 0.2 in stage 1, 0.5 in 2)."""
    p = _dropout(p)
    for layer in model.modules():
        if isinstance(layer, nn.Dropout):
            layer.p = p


def freeze(model: End2End, config: str) -> int:
    """Let only the parts ``FREEZE_CONFIGS[config]`` learn; returns the number of trainable
    parameters. An unknown ``config`` is an error naming the choices."""
    if config not in FREEZE_CONFIGS:
        raise ValueError(f"config must be one of {', '.join(FREEZE_CONFIGS)}, got {config!r}")
    learn = FREEZE_CONFIGS[config]
    for part in PARTS:
        for param in getattr(model, part).parameters():
            param.requires_grad_(part in learn)
    model.frozen = tuple(p for p in PARTS if p not in learn)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


@dataclass(frozen=True)
class Stage:
    """One training stage of Table 6: Adam at ``lr`` with ``weight_decay``, dropout,
    at most ``epochs`` epochs, learning rate times ``plateau_factor`` after
    ``plateau_patience`` epochs without a lower validation loss, early stopping after
    ``stop_patience`` (Keras' ReduceLROnPlateau factor 0.1 is assumed: the paper gives none).
    """

    lr: float
    weight_decay: float
    dropout: float
    epochs: int
    plateau_patience: int = 2
    stop_patience: int = 3
    plateau_factor: float = 0.1

    def __post_init__(self):
        for name in ("lr", "weight_decay", "plateau_factor"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or value < 0:
                raise ValueError(f"Stage.{name} must be a number >= 0, got {value!r}")
            if not math.isfinite(value):
                raise ValueError(f"Stage.{name} must be finite, got {value!r}")
        _dropout(self.dropout)
        for name in ("epochs", "plateau_patience", "stop_patience"):
            classifiers._positive_int(getattr(self, name), name, "Stage")

    def scaled(self, epochs: int) -> Stage:
        """The same stage with another epoch budget (the default scale's)."""
        return Stage(**(asdict(self) | {"epochs": epochs}))


#: Table 6: stage 1 (the configuration's parts) and stage 2 (the whole network).
PAPER_STAGES: tuple[Stage, Stage] = (
    Stage(lr=2e-4, weight_decay=1e-4, dropout=0.2, epochs=50),
    Stage(lr=2e-7, weight_decay=1.5e-3, dropout=0.5, epochs=30),
)


def train_stage(
    model: End2End,
    stage: Stage,
    train_xy,
    val_xy,
    *,
    batch_size: int = 16,
    augment_kw: dict | None = AUGMENT,
    seed: int = 0,
    progress: bool = False,
    precision: str = "fp32",
    desc: str = "stage",
) -> training.History:
    """Train the model's trainable parameters for one :class:`Stage` (in place; the best
    epoch by validation loss is kept); ``precision``: ``PRECISION``, as in ``training.fit``.
    Chapter 05."""
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("train_stage: nothing to train (every part is frozen)")
    set_dropout(model, stage.dropout)
    torch.manual_seed(seed)
    opt = torch.optim.Adam(params, lr=stage.lr, weight_decay=stage.weight_decay)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
        opt, mode="min", factor=stage.plateau_factor, patience=stage.plateau_patience
    )
    x_val, y_val = val_xy
    batches = task_training.batches(
        *train_xy, batch_size=batch_size, seed=seed, augment_kw=augment_kw
    )
    return training.fit(
        model,
        batches,
        image_training.ce_loss,
        opt,
        epochs=stage.epochs,
        scheduler=sched,
        validate=lambda m: image_training.evaluate(m, x_val, y_val),
        stopper=training.EarlyStopping("val_loss", patience=stage.stop_patience),
        plateau_monitor="val_loss",
        progress=progress,
        precision=precision,
        desc=desc,
    )


def fine_tune(
    model: End2End, config: str, train_xy, val_xy, stages=PAPER_STAGES, **kw
) -> list[training.History]:
    """§4.4's transfer learning: stage 1 trains ``FREEZE_CONFIGS[config]``, stage 2 (when
    given) the whole network; ``kw`` go to :func:`train_stage`. Returns one history per
    stage. Chapter 05."""
    histories = []
    for k, stage in enumerate(stages):
        freeze(model, config if k == 0 else "all")
        desc = f"{config} stage {k + 1}"
        histories.append(train_stage(model, stage, train_xy, val_xy, desc=desc, **kw))
    freeze(model, "all")
    return histories


def load_checkpoint(model: nn.Module, path: str | os.PathLike) -> int:
    """Load a state dict saved with ``torch.save(model.state_dict(), path)`` (e.g. a source
    model trained elsewhere) into ``model``. A file of another architecture is an error that
    names the file and the first tensors that differ; nothing is loaded then. Returns the
    number of tensors loaded. Chapter 05 (``SOURCE_CHECKPOINT``)."""
    state = torch.load(os.fspath(path), map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise ValueError(f"{os.fspath(path)}: not a state dict (got {type(state).__name__})")
    mine = model.state_dict()
    missing = sorted(set(mine) - set(state))
    extra = sorted(set(state) - set(mine))
    shapes = [k for k in mine if k in state and tuple(state[k].shape) != tuple(mine[k].shape)]
    if missing or extra or shapes:
        parts = [f"missing {missing[:3]}" if missing else "", f"unexpected {extra[:3]}" if extra
                 else "", f"shape differs for {shapes[:3]}" if shapes else ""]  # fmt: skip
        raise ValueError(
            f"{os.fspath(path)} holds another architecture than the model "
            f"({'; '.join(p for p in parts if p)})"
        )
    model.load_state_dict(state)
    return len(state)


def cached(model, name: str, settings: dict, run, *, cache_dir=None):
    """:func:`~mammo_helpers.training.cached_fit` keyed by ``settings`` and the code of this
    module and the training code it calls. ``(history, hit)``; ``run`` may return a list of
    histories (one per stage), stored as one with a ``stage`` column."""
    code = [classifiers, multiview, image_training, task_training, sys.modules[__name__]]

    def train():
        out = run()
        if isinstance(out, training.History):
            return out
        merged = training.History()
        for k, history in enumerate(out):
            merged.rows += [row | {"stage": k + 1} for row in history.rows]
        return merged

    return training.cached_fit(model, name, settings, train, code=code, cache_dir=cache_dir)
