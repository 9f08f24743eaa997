"""Multi-label crop classifiers that return their pooled features with the logits
(chapters 02 and 03).

Paper 02 (CorRELAX, §3.3) classifies mammogram crops with an EfficientNetV2-S whose
classification layer is replaced by a small head (:func:`paper_head`); its explainer
compares the pooled feature vector ``h`` (the head's input) of masked and unmasked crops,
so a :class:`CropClassifier` returns ``(features, logits)``; the sigmoid is applied by the
caller. :func:`build_classifier` builds one from a backbone name:

* ``"small_cnn"``: a small CNN for 64 px crops, fast on a CPU (:func:`conv_blocks`,
  3x3 conv / batch norm / ReLU / max-pool blocks, then global average pooling);
* a timm model name (``"efficientnetv2_s"``, ``"resnet18"``, ``"mobilenetv3_small_100"``,
  ...; ``"timm:<name>"`` forces timm);
* a torchvision EfficientNet (``"efficientnet_v2_s"``, the paper's, 1280-d features;
  ``"torchvision:<name>"`` forces torchvision where timm has the same name, e.g.
  ``"efficientnet_b0"``).

Weights are always random (``pretrained=False`` / ``weights=None``): nothing is
downloaded. :func:`check_feature_model` checks the ``(features, logits)`` contract.
"""

from __future__ import annotations

import difflib
import numbers
from collections import OrderedDict

import torch
from torch import nn

__all__ = [
    "SMALL_CNN",
    "CropClassifier",
    "LogitsOnly",
    "build_classifier",
    "check_feature_model",
    "feature_pair",
    "conv_blocks",
    "paper_head",
]

SMALL_CNN = "small_cnn"
#: The small CNN's defaults: channels 32, 64, 128 (feature_dim 128); a stride-2 first
#: convolution takes a 64 px crop to 16 px after the first block. About 3,000 64 px
#: windows/s in eval mode on 2 CPU threads (batch 256, channels-last; half that without).
SMALL_CNN_DEFAULTS = {"width": 32, "blocks": 3, "stem_stride": 2}
_PREFIXES = ("timm:", "torchvision:")


def _positive_int(value, name: str, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{where}: {name} must be an integer >= 1, got {value!r}")
    return int(value)


def conv_blocks(width: int, blocks: int, *, in_chans: int = 1, stride: int = 1) -> list:
    """The layers of ``blocks`` x (3x3 conv without bias, batch norm, ReLU, 2x2 max-pool),
    channels ``width``, ``2 width``, ``4 width``, ...; the first convolution reads
    ``in_chans`` channels with stride ``stride``. A flat list (callers add their own
    layers and wrap it in one ``nn.Sequential``); each ReLU is its own, not in place
    (captum's DeepLIFT needs both). Used by :func:`build_classifier` and
    :func:`mammo_helpers.learnability.small_cnn`."""
    width = _positive_int(width, "width", "conv_blocks")
    in_chans = _positive_int(in_chans, "in_chans", "conv_blocks")
    stride = _positive_int(stride, "stride", "conv_blocks")
    if isinstance(blocks, bool) or not isinstance(blocks, numbers.Integral) or blocks < 0:
        raise ValueError(f"conv_blocks: blocks must be an integer >= 0, got {blocks!r}")
    layers, c_in = [], in_chans
    for i in range(blocks):
        c_out = width * 2**i
        conv = nn.Conv2d(c_in, c_out, 3, stride=stride if i == 0 else 1, padding=1, bias=False)
        layers += [conv, nn.BatchNorm2d(c_out), nn.ReLU(), nn.MaxPool2d(2)]
        c_in = c_out
    return layers


def paper_head(in_features: int, n_labels: int, hidden: int = 512, dropout: float = 0.5):
    """Paper 02's classification head: Dropout(``dropout``) -> Linear(in_features,
    ``hidden``) -> ReLU -> Linear(hidden, n_labels) without bias (as in the authors'
    code); logits, no sigmoid."""
    in_features = _positive_int(in_features, "in_features", "paper_head")
    n_labels = _positive_int(n_labels, "n_labels", "paper_head")
    hidden = _positive_int(hidden, "hidden", "paper_head")
    if isinstance(dropout, bool) or not isinstance(dropout, numbers.Real) or not 0 <= dropout < 1:
        raise ValueError(f"paper_head: dropout must be in [0, 1), got {dropout!r}")
    return nn.Sequential(
        nn.Dropout(float(dropout)),
        nn.Linear(in_features, hidden),
        nn.ReLU(),
        nn.Linear(hidden, n_labels, bias=False),
    )


def _labels(labels) -> tuple[str, ...]:
    if isinstance(labels, str) or not hasattr(labels, "__iter__"):
        raise ValueError(f"labels must be a sequence of label names, got {labels!r}")
    labels = tuple(labels)
    if not labels or not all(isinstance(name, str) and name for name in labels):
        raise ValueError(f"labels must be one or more non-empty strings, got {labels!r}")
    repeated = sorted({name for name in labels if labels.count(name) > 1})
    if repeated:
        raise ValueError(f"labels must be unique; repeated: {repeated}")
    return labels


class CropClassifier(nn.Module):
    """``backbone`` (images -> pooled features (B, feature_dim)) followed by ``head``
    (default :func:`paper_head`), one logit per name of ``labels``.

    ``forward(x)`` returns the tuple ``(features, logits)``: ``features`` (B, feature_dim)
    is exactly the head's input (before its dropout), what CorRELAX compares by cosine
    similarity; ``logits`` (B, n_labels), apply a sigmoid for probabilities.
    ``labels`` (a tuple) names the outputs, so a caller can refuse a label the model was
    not trained on (:meth:`label_index`). ``settings`` holds the arguments of
    :func:`build_classifier` when it built the model (to build it again)."""

    def __init__(self, backbone: nn.Module, feature_dim: int, labels, *, head=None):
        super().__init__()
        self.labels = _labels(labels)
        self.n_labels = len(self.labels)
        self.feature_dim = _positive_int(feature_dim, "feature_dim", "CropClassifier")
        self.backbone = backbone
        self.head = paper_head(self.feature_dim, self.n_labels) if head is None else head
        self.settings: dict = {}
        if head is not None:
            self._check_head()

    def _check_head(self) -> None:
        was_training = self.head.training
        try:
            with torch.no_grad():
                out = self.head.eval()(torch.zeros(2, self.feature_dim))
        except RuntimeError as exc:
            raise ValueError(
                f"CropClassifier: head does not take features of size feature_dim="
                f"{self.feature_dim}: {exc}"
            ) from exc
        finally:
            self.head.train(was_training)
        if tuple(out.shape) != (2, self.n_labels):
            raise ValueError(
                f"CropClassifier: labels has {self.n_labels} names but the head gives "
                f"{tuple(out.shape[1:])} outputs per sample"
            )

    def forward(self, x):
        features = self.backbone(x)
        return features, self.head(features)

    def label_index(self, label: str) -> int:
        """The logit column of ``label``; a label absent from ``labels`` raises ValueError."""
        if label not in self.labels:
            raise ValueError(
                f"label {label!r} is not one the model was trained on: {', '.join(self.labels)}"
            )
        return self.labels.index(label)

    def extra_repr(self) -> str:
        return f"feature_dim={self.feature_dim}, labels={self.labels}"


def _torchvision_efficientnets() -> list[str]:
    import torchvision

    names = torchvision.models.list_models(module=torchvision.models)
    return [name for name in names if name.startswith("efficientnet_")]


def _resolve(backbone: str) -> tuple[str, str]:
    """``(library, model name)`` of a backbone name: "small_cnn", "timm" or "torchvision"."""
    if not isinstance(backbone, str) or not backbone:
        raise ValueError(f"backbone must be a model name (a string), got {backbone!r}")
    if backbone == SMALL_CNN:
        return SMALL_CNN, backbone
    import timm

    library, name = "", backbone
    if backbone.startswith(_PREFIXES):
        library, name = backbone.split(":", 1)
    tv = _torchvision_efficientnets()
    if library in ("", "timm") and timm.is_model(name):
        return "timm", name
    if library in ("", "torchvision") and name in tv:
        return "torchvision", name
    close = difflib.get_close_matches(name, [SMALL_CNN, *tv, *timm.list_models()], 4)
    raise ValueError(
        f"backbone {backbone!r} is unknown: use 'small_cnn', a timm model name or a "
        f"torchvision EfficientNet ({', '.join(tv)})"
        + (f"; close names: {', '.join(close)}" if close else "")
    )


def _small_cnn(in_chans: int, width: int, blocks: int, stem_stride: int):
    blocks = _positive_int(blocks, "blocks", "build_classifier")
    layers = conv_blocks(width, blocks, in_chans=in_chans, stride=stem_stride)
    net = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(1))
    return net, width * 2 ** (blocks - 1)


def _torchvision(name: str, in_chans: int):
    import torchvision

    model = torchvision.models.get_model(name, weights=None)
    if in_chans != 3:
        first = model.features[0][0]
        model.features[0][0] = nn.Conv2d(
            in_chans, first.out_channels, first.kernel_size, first.stride, first.padding, bias=False
        )
    feature_dim = model.classifier[-1].in_features
    layers = OrderedDict(features=model.features, avgpool=model.avgpool, flatten=nn.Flatten(1))
    return nn.Sequential(layers), feature_dim


def _timm(name: str, in_chans: int):
    import timm

    model = timm.create_model(name, pretrained=False, num_classes=0, in_chans=in_chans)
    # the pooled output's size: some models (MobileNetV3) add a layer after num_features
    return model, getattr(model, "head_hidden_size", None) or model.num_features


def build_classifier(
    backbone: str,
    labels,
    *,
    in_chans: int = 3,
    width: int | None = None,
    blocks: int | None = None,
    stem_stride: int | None = None,
    hidden: int = 512,
    dropout: float = 0.5,
    channels_last: bool = True,
    seed: int | None = None,
) -> CropClassifier:
    """A :class:`CropClassifier` with random weights: the ``backbone`` (see the module
    docstring) reading ``in_chans`` channels (paper 02: 3, its CLAHE fusion), then
    :func:`paper_head` (``hidden`` units, ``dropout``) with one logit per name of ``labels``.

    ``width``, ``blocks`` and ``stem_stride`` shape the ``"small_cnn"`` only (defaults 32,
    3 and 2: channels 32-64-128, feature_dim 128; about 0.16 M weights with the head).
    ``channels_last`` stores the backbone's convolution weights channels-last, which makes
    CPU inference faster. ``seed`` initialises the weights from its own generator (the
    global torch seed is left alone); the same seed builds the same weights. In-place
    activations of timm and torchvision backbones are switched off (captum's DeepLIFT and
    backward hooks need them out of place)."""
    labels = _labels(labels)
    in_chans = _positive_int(in_chans, "in_chans", "build_classifier")
    library, name = _resolve(backbone)
    shape = {"width": width, "blocks": blocks, "stem_stride": stem_stride}
    if library != SMALL_CNN:
        given = [key for key, value in shape.items() if value is not None]
        if given:
            raise ValueError(
                f"build_classifier: {', '.join(given)} apply to backbone='small_cnn' only, "
                f"not to backbone={backbone!r}"
            )
    else:
        shape = {k: SMALL_CNN_DEFAULTS[k] if v is None else v for k, v in shape.items()}
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)):
        raise ValueError(f"build_classifier: seed must be an integer or None, got {seed!r}")
    with torch.random.fork_rng(devices=[], enabled=seed is not None):
        if seed is not None:
            torch.manual_seed(seed)
        if library == SMALL_CNN:
            net, feature_dim = _small_cnn(in_chans, **shape)
        elif library == "torchvision":
            net, feature_dim = _torchvision(name, in_chans)
        else:
            net, feature_dim = _timm(name, in_chans)
        head = paper_head(feature_dim, len(labels), hidden, dropout)
    for module in net.modules():
        if getattr(module, "inplace", False) is True:
            module.inplace = False
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    model = CropClassifier(net, feature_dim, labels, head=head)
    model.settings = {"backbone": backbone, "labels": list(labels), "in_chans": in_chans}
    model.settings |= shape if library == SMALL_CNN else {}
    model.settings |= {"hidden": hidden, "dropout": dropout, "channels_last": channels_last}
    model.settings |= {"seed": seed}
    return model


def _describe(out) -> str:
    if torch.is_tensor(out):
        return f"a tensor of shape {tuple(out.shape)}"
    if isinstance(out, tuple | list):
        parts = [_describe(item) if torch.is_tensor(item) else type(item).__name__ for item in out]
        return f"a {type(out).__name__} of {len(out)}: ({'; '.join(parts)})"
    if isinstance(out, dict):
        return f"a dict with keys {sorted(map(str, out))}"
    return type(out).__name__


def feature_pair(out, batch: int):
    """``out`` of a model run on ``batch`` inputs, checked to be ``(features, logits)`` with
    features (batch, D, ...) and logits (batch, n_labels); raises ValueError naming what
    came instead. The contract CorRELAX relies on (chapters 02, 03)."""
    pair = isinstance(out, tuple | list) and len(out) == 2 and all(map(torch.is_tensor, out))
    if not pair or out[0].ndim < 2 or out[0].shape[0] != batch:
        raise ValueError(
            "model must return (features, logits) with features shaped (batch, D); "
            f"got {_describe(out)} for a batch of {batch}"
        )
    features, logits = out
    if logits.ndim != 2 or logits.shape[0] != batch:
        raise ValueError(
            f"model must return logits shaped (batch, n_labels); got {tuple(logits.shape)} "
            f"for a batch of {batch}"
        )
    return features, logits


def check_feature_model(model, example):
    """Run ``model`` once on ``example`` (a batch (B, C, H, W), or one image (C, H, W)) in
    eval mode without gradients (its mode is restored) and check that it returns
    ``(features, logits)``: features shaped (B, D, ...) with at least 2 dims, logits
    (B, n_labels), and ``n_labels == len(model.labels)`` when the model names its labels.
    Returns the pair; raises ValueError otherwise (:func:`feature_pair`, which CorRELAX
    applies to every batch; chapter 02)."""
    x = torch.as_tensor(example)
    if x.ndim == 3:
        x = x.unsqueeze(0)
    if x.ndim != 4:
        raise ValueError(
            f"check_feature_model: example must be (C, H, W) or (B, C, H, W), got {tuple(x.shape)}"
        )
    x = x if x.is_floating_point() else x.float()
    param = next(model.parameters(), None)
    if param is not None and param.is_floating_point():
        x = x.to(device=param.device, dtype=param.dtype)
    was_training = model.training
    try:
        with torch.no_grad():
            out = model.eval()(x)
    finally:
        model.train(was_training)
    features, logits = feature_pair(out, len(x))
    labels = getattr(model, "labels", None)
    if labels is not None and logits.shape[1] != len(labels):
        raise ValueError(
            f"model names {len(labels)} labels but returns {logits.shape[1]} logits per sample"
        )
    return features, logits


class LogitsOnly(nn.Module):
    """A :class:`CropClassifier` seen as a plain classifier returning its logits, for tools
    that expect one output (pytorch-grad-cam, captum; chapters 02, 03)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(x)[1]
