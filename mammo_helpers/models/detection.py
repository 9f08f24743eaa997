"""Paper 04's localisation model ``L``: a torchvision Faster R-CNN on a timm backbone
(chapter 04; Wimmer et al., §II-B.3, §II-C.2, §III-A.3).

The paper fine-tunes a COCO-pretrained Faster R-CNN with an InceptionV2 feature extractor
on 2700 x 1200 views for four lesion classes (:data:`LESION_CLASSES`) and feeds the fusion
models the 1024-d representation of each detection (``feat_L^{v,k}``). Here, on a CPU and
without downloads:

* :func:`build_detector` builds torchvision's ``FasterRCNN`` on a timm model cut at its
  stride-8 feature map (default ``mobilenetv2_050``: 16 channels, a 320 x 256 input gives a
  40 x 32 map), one anchor size tuple, a 7 x 7 ``MultiScaleRoIAlign`` and the default box
  head (``TwoMLPHead``) with a 1024-d representation. Weights are random
  (``pretrained=False``); :func:`load_backbone` copies a patch classifier's backbone
  weights instead of COCO's. Images are grayscale in [0, 1], normalised with mean 0.5 and
  std 0.25, and not resized (``min_size=None``): the model sees the pixels it is given.
* :func:`train_detector` trains it through :func:`mammo_helpers.training.fit` with the
  paper's augmentations (horizontal flips with their boxes, box jitter of ratio 0.005)
  and its SGD (momentum 0.9, lr 1e-4), or Adam for short runs.
* :func:`detect` returns boxes, scores and labels per image; :func:`roi_features` the
  1024-d box-head representation of given boxes (``feat_L``), and :func:`background_box`
  the box whose features stand in for missing detections (see there).
* :func:`detector_state` / :func:`load_detector` save and load a checkpoint that records
  its class count and build settings, and refuse one made for other classes or another
  backbone.

Boxes are ``(xmin, ymin, xmax, ymax)`` in pixels (:mod:`mammo_helpers.boxes`); labels run
from 1 to ``n_classes`` (0 is torchvision's background).
"""

from __future__ import annotations

import contextlib
import numbers
import sys
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from mammo_helpers import boxes as bx
from mammo_helpers import devices, training
from mammo_helpers.vocab import LESION_CLASSES as _LESION_CLASSES

__all__ = [
    "CHECKPOINT_KIND",
    "LESION_CLASSES",
    "DetectionData",
    "TimmBackbone",
    "background_box",
    "batches",
    "build_detector",
    "cached",
    "detect",
    "detection_loss",
    "detector_state",
    "flush_denormal",
    "load_backbone",
    "load_detector",
    "n_classes_of",
    "roi_features",
    "train_detector",
]

#: Paper 04's four lesion classes (§II-B.3; ``vocab.LESION_CLASSES``): labels 1 to 4 in this
#: order.
LESION_CLASSES = _LESION_CLASSES
CHECKPOINT_KIND = "mammo_helpers.detection.faster_rcnn/1"
#: Grayscale inputs in [0, 1] are normalised to about [-2, 2].
IMAGE_MEAN, IMAGE_STD = 0.5, 0.25
#: Anchor sizes (px) for lesions of 8 to 64 px at 320 x 256: every such lesion is within a
#: factor 1.5 of an anchor side; three aspect ratios each (12 anchors per position).
ANCHOR_SIZES = ((12, 24, 48, 96),)
ASPECT_RATIOS = ((0.5, 1.0, 2.0),)
REPRESENTATION_SIZE = 1024
OPTIMISERS = ("sgd", "adam")
SCHEDULES = ("constant", "cosine")
#: Build settings that shape the weights: a checkpoint loads only into the same ones.
_STRUCTURE = ("backbone", "in_chans", "reduction", "anchor_sizes", "aspect_ratios")
_STRUCTURE += ("representation_size", "roi_output_size")


def _positive_int(value, name: str, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{where}: {name} must be an integer >= 1, got {value!r}")
    return int(value)


def _nested(value, name: str, kind: type) -> tuple:
    """``((a, b, ...),)`` from one tuple of numbers or a 1-tuple of such tuples."""
    try:
        inner = value[0] if len(value) == 1 and not isinstance(value[0], numbers.Number) else value
        out = tuple(kind(v) for v in inner)
    except (TypeError, ValueError, IndexError) as exc:
        raise ValueError(f"build_detector: {name} must be numbers, got {value!r}") from exc
    if not out or any(v <= 0 for v in out):
        raise ValueError(f"build_detector: {name} must be positive numbers, got {value!r}")
    return (out,)


@contextlib.contextmanager
def flush_denormal():
    """Denormal floats flushed to zero inside the block (``torch.set_flush_denormal``),
    the previous setting restored after. Without it, Faster R-CNN training on a CPU slowed
    down 3-4x within a few epochs (13 -> 3.6 images/s over 6 epochs on the 96 px toy task,
    the same losses): the box head's backward matrix products, by the profile, meet
    denormal numbers, which CPUs compute with very slowly."""
    was = bool((torch.tensor([1e-39], dtype=torch.float32) * 1.0).item() == 0.0)
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(was)


# --------------------------------------------------------------------------- backbone


class TimmBackbone(nn.Module):
    """A timm model created with ``features_only=True`` at the level of stride
    ``reduction`` (default 8), returning ``OrderedDict({"0": feature map})`` as torchvision's
    detectors expect, with ``out_channels``.

    timm's EfficientNet / MobileNet feature models run all their blocks even when only an
    early level is asked for; the blocks after that level are removed here (the same
    output, less work). ``channels_last`` runs the backbone in channels-last memory
    format (whole-detector training about 1.3x faster on a CPU; the feature map is
    returned in the usual layout). ``trainable_layers`` counts the feature levels up to
    this one from the end (``None``: all of them train; for ``mobilenetv2_050`` at stride 8
    the levels are stem + block 0, block 1, block 2); the weights of the others are frozen
    and their batch norms stay in eval mode."""

    def __init__(
        self,
        name: str,
        *,
        in_chans: int = 1,
        reduction: int = 8,
        trainable_layers: int | None = None,
        channels_last: bool = True,
    ):
        import timm

        super().__init__()
        if not isinstance(name, str) or not timm.is_model(name):
            raise ValueError(f"backbone {name!r} is not a timm model name")
        probe = timm.create_model(name, pretrained=False, features_only=True, in_chans=in_chans)
        reductions = list(probe.feature_info.reduction())
        if reduction not in reductions:
            raise ValueError(
                f"backbone {name!r} has feature levels of stride {reductions}, not {reduction}"
            )
        level = reductions.index(reduction)
        level_modules = list(probe.feature_info.module_name())[: level + 1]
        del probe
        body = timm.create_model(
            name, pretrained=False, features_only=True, in_chans=in_chans, out_indices=(level,)
        )
        stage_idx = getattr(body, "_stage_out_idx", None)
        if isinstance(getattr(body, "blocks", None), nn.Sequential) and stage_idx:
            body.blocks = body.blocks[: max(stage_idx)]  # block i outputs stage i + 1
        self.body = body
        self.name = name
        self.reduction = int(reduction)
        self.out_channels = int(body.feature_info.channels()[-1])
        self.n_levels = level + 1
        self._levels = _module_levels(body, level_modules)
        if trainable_layers is not None:
            if isinstance(trainable_layers, bool) or not isinstance(
                trainable_layers, numbers.Integral
            ):
                raise ValueError(
                    f"trainable_layers must be an integer or None, got {trainable_layers!r}"
                )
            if not 0 <= trainable_layers <= self.n_levels:
                raise ValueError(
                    f"trainable_layers must be in 0..{self.n_levels} for {name!r} at stride "
                    f"{reduction}, got {trainable_layers}"
                )
        self.trainable_layers = trainable_layers
        self.channels_last = bool(channels_last)
        if self.channels_last:
            self.body.to(memory_format=torch.channels_last)
        self._frozen = set()
        if trainable_layers is not None:
            first = self.n_levels - int(trainable_layers)
            self._frozen = {m for m, lvl in self._levels.items() if lvl < first}
            for module_name, module in body.named_modules():
                if module_name in self._frozen:
                    for p in module.parameters(recurse=False):
                        p.requires_grad_(False)

    def forward(self, x):
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        fmap = self.body(x)[-1]
        return OrderedDict([("0", fmap.contiguous())])

    def train(self, mode: bool = True):
        super().train(mode)
        if mode and self._frozen:
            for module_name, module in self.body.named_modules():
                if module_name in self._frozen and isinstance(
                    module, nn.modules.batchnorm._BatchNorm
                ):
                    module.eval()
        return self

    def extra_repr(self) -> str:
        return f"name={self.name!r}, reduction={self.reduction}, out_channels={self.out_channels}"


def _module_levels(body: nn.Module, level_modules: list[str]) -> dict[str, int]:
    """The feature level (0 = stride 2 ...) of every module of ``body``, in forward order:
    a level ends with the module timm names as its output (``blocks.2``, ``layer2``...)."""
    levels, level, inside_end = {}, 0, False
    last = len(level_modules) - 1
    for name, _ in body.named_modules():
        if not name:
            continue
        end = level_modules[min(level, last)]
        is_end = name == end or name.startswith(end + ".")
        if inside_end and not is_end and level < last:
            level, inside_end = level + 1, False
            end = level_modules[level]
            is_end = name == end or name.startswith(end + ".")
        inside_end = inside_end or is_end
        levels[name] = min(level, last)
    return levels


def _no_resize_transform(image_mean, image_std):
    """torchvision's detection transform without its resize: it normalises the images
    and pads them to a multiple of 32 into one batch; boxes are not rescaled."""
    from torchvision.models.detection.transform import GeneralizedRCNNTransform

    class NoResizeTransform(GeneralizedRCNNTransform):
        def resize(self, image, target=None):
            return image, target

        def __repr__(self):
            head, _ = super().__repr__().split("Resize(", 1)
            return head + "no resize; padded to a multiple of 32\n)"

    return NoResizeTransform(1, 1, image_mean, image_std)


def build_detector(
    n_classes: int = 4,
    *,
    backbone: str = "mobilenetv2_050",
    in_chans: int = 1,
    reduction: int = 8,
    min_size: int | None = None,
    max_size: int | None = None,
    anchor_sizes=ANCHOR_SIZES,
    aspect_ratios=ASPECT_RATIOS,
    trainable_layers: int | None = None,
    representation_size: int = REPRESENTATION_SIZE,
    roi_output_size: int = 7,
    rpn_batch_size_per_image: int = 128,
    rpn_pre_nms_top_n_train: int = 600,
    rpn_post_nms_top_n_train: int = 300,
    rpn_pre_nms_top_n_test: int = 300,
    rpn_post_nms_top_n_test: int = 100,
    box_batch_size_per_image: int = 128,
    box_detections_per_img: int = 20,
    box_score_thresh: float = 0.05,
    image_mean: float = IMAGE_MEAN,
    image_std: float = IMAGE_STD,
    channels_last: bool = True,
    seed: int | None = None,
):
    """A torchvision ``FasterRCNN`` with ``n_classes + 1`` classes (0 = background) on the
    timm ``backbone``'s stride-``reduction`` feature map (:class:`TimmBackbone`), random
    weights.

    ``min_size=None`` and ``max_size=None`` (default): images are not resized, only
    normalised (``(x - image_mean) / image_std`` per channel; 0.5 and 0.25 for [0, 1]
    grayscale) and padded to a multiple of 32. Given both, torchvision's resize applies:
    the short side goes to ``min_size`` unless the long side would then exceed
    ``max_size`` (for 320 x 256 inputs, ``min_size=256, max_size=320`` is a no-op resize).

    One anchor generator level with ``anchor_sizes`` x ``aspect_ratios`` per position,
    ``MultiScaleRoIAlign(["0"], roi_output_size, 2)``, the box head ``TwoMLPHead`` with
    ``representation_size`` (1024, the paper's ``feat_L``) and modest sampling sizes for
    CPU speed (RPN: 128 anchors per image, 600 -> 300 proposals in training, 300 -> 100 in
    evaluation; 128 RoIs per image for the box head; at most ``box_detections_per_img``
    detections). ``seed`` initialises the weights from its own generator. The arguments
    are kept in ``model.settings`` (for :func:`detector_state`)."""
    from torchvision.models.detection import FasterRCNN
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
    from torchvision.ops import MultiScaleRoIAlign

    n_classes = _positive_int(n_classes, "n_classes", "build_detector")
    in_chans = _positive_int(in_chans, "in_chans", "build_detector")
    representation_size = _positive_int(
        representation_size, "representation_size", "build_detector"
    )
    roi_output_size = _positive_int(roi_output_size, "roi_output_size", "build_detector")
    if (min_size is None) != (max_size is None):
        raise ValueError("build_detector: give both min_size and max_size, or neither (no resize)")
    anchor_sizes = _nested(anchor_sizes, "anchor_sizes", int)
    aspect_ratios = _nested(aspect_ratios, "aspect_ratios", float)
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)):
        raise ValueError(f"build_detector: seed must be an integer or None, got {seed!r}")
    mean, std = [float(image_mean)] * in_chans, [float(image_std)] * in_chans
    with torch.random.fork_rng(devices=[], enabled=seed is not None):
        if seed is not None:
            torch.manual_seed(seed)
        body = TimmBackbone(
            backbone,
            in_chans=in_chans,
            reduction=reduction,
            trainable_layers=trainable_layers,
            channels_last=channels_last,
        )
        box_head = TwoMLPHead(body.out_channels * roi_output_size**2, representation_size)
        model = FasterRCNN(
            body,
            num_classes=None,
            min_size=min_size or 1,
            max_size=max_size or 1,
            image_mean=mean,
            image_std=std,
            rpn_anchor_generator=AnchorGenerator(anchor_sizes, aspect_ratios),
            box_roi_pool=MultiScaleRoIAlign(["0"], roi_output_size, 2),
            box_head=box_head,
            box_predictor=FastRCNNPredictor(representation_size, n_classes + 1),
            rpn_batch_size_per_image=rpn_batch_size_per_image,
            rpn_pre_nms_top_n_train=rpn_pre_nms_top_n_train,
            rpn_post_nms_top_n_train=rpn_post_nms_top_n_train,
            rpn_pre_nms_top_n_test=rpn_pre_nms_top_n_test,
            rpn_post_nms_top_n_test=rpn_post_nms_top_n_test,
            box_batch_size_per_image=box_batch_size_per_image,
            box_detections_per_img=box_detections_per_img,
            box_score_thresh=box_score_thresh,
        )
    if min_size is None:
        model.transform = _no_resize_transform(mean, std)
    model.settings = {
        "backbone": backbone,
        "in_chans": in_chans,
        "reduction": int(reduction),
        "min_size": min_size,
        "max_size": max_size,
        "anchor_sizes": [list(a) for a in anchor_sizes],
        "aspect_ratios": [list(a) for a in aspect_ratios],
        "trainable_layers": trainable_layers,
        "representation_size": representation_size,
        "roi_output_size": roi_output_size,
        "rpn_batch_size_per_image": rpn_batch_size_per_image,
        "rpn_pre_nms_top_n_train": rpn_pre_nms_top_n_train,
        "rpn_post_nms_top_n_train": rpn_post_nms_top_n_train,
        "rpn_pre_nms_top_n_test": rpn_pre_nms_top_n_test,
        "rpn_post_nms_top_n_test": rpn_post_nms_top_n_test,
        "box_batch_size_per_image": box_batch_size_per_image,
        "box_detections_per_img": box_detections_per_img,
        "box_score_thresh": float(box_score_thresh),
        "image_mean": float(image_mean),
        "image_std": float(image_std),
        "channels_last": bool(channels_last),
        "seed": seed,
    }
    return model


def n_classes_of(model) -> int:
    """The lesion classes of a detector (its predictor's classes minus the background)."""
    return int(model.roi_heads.box_predictor.cls_score.out_features) - 1


def _in_chans_of(model) -> int:
    return len(model.transform.image_mean)


def load_backbone(detector, source, *, prefix: str | None = None) -> int:
    """Copy the weights of a timm model of the same architecture into ``detector``'s
    backbone; returns the number of tensors copied (parameters and batch-norm buffers).

    ``source``: a timm model (e.g. ``timm.create_model("mobilenetv2_050", num_classes=0)``),
    a :class:`~mammo_helpers.models.classifiers.CropClassifier` built on one (a patch
    classifier; its ``backbone.`` prefix is found), or a state dict of either. A detector
    tensor ``conv_stem.weight`` takes the source tensor of the same name, or the only one
    ending in ``.conv_stem.weight`` (``prefix`` forces the prefix, e.g. ``"backbone."``).
    The source's later blocks (past the stride-8 level) and its head are not used. A first
    convolution with another number of input channels (an RGB classifier, a grayscale
    detector) is adapted with timm's ``adapt_input_conv`` (for one channel: the RGB
    kernels summed). Other shape mismatches, a missing tensor, or nothing matching raise
    ``ValueError``. For ``mobilenetv2_050`` at stride 8 all 108 tensors of the backbone
    match: the stem convolution and batch norm and blocks 0-2 (weights, biases, running
    statistics and batch counters); blocks 3-6, ``conv_head`` and the classifier are
    left out."""
    from timm.models import adapt_input_conv

    state = source.state_dict() if isinstance(source, nn.Module) else dict(source)
    target = detector.backbone.body.state_dict()
    if prefix is None:
        prefix = _common_prefix(state, target)
    copied, mismatched, missing = {}, [], []
    for key, value in target.items():
        src = state.get(prefix + key)
        if src is None:
            missing.append(key)
            continue
        if src.shape != value.shape:
            if (
                src.ndim == 4
                and src.shape[0] == value.shape[0]
                and src.shape[2:] == value.shape[2:]
            ):
                src = adapt_input_conv(value.shape[1], src.float()).to(value.dtype)
            else:
                mismatched.append(f"{key}: {tuple(src.shape)} vs {tuple(value.shape)}")
                continue
        copied[key] = src
    if mismatched:
        raise ValueError(
            "load_backbone: the source is not the detector's backbone architecture; shapes "
            f"differ for {len(mismatched)} tensors, e.g. {'; '.join(mismatched[:3])}"
        )
    if not copied:
        raise ValueError(
            f"load_backbone: no tensor of the detector's backbone ({detector.backbone.name}) "
            f"is in the source (e.g. {next(iter(target))!r}); is it the same architecture?"
        )
    if missing:
        raise ValueError(
            f"load_backbone: the source lacks {len(missing)} of the backbone's "
            f"{len(target)} tensors, e.g. {missing[:3]}"
        )
    detector.backbone.body.load_state_dict({**target, **copied})
    return len(copied)


def _common_prefix(state: dict, target: dict) -> str:
    """The prefix that maps the backbone's keys onto ``state``'s (``""``, ``"backbone."``...)."""
    probe = next((k for k in target if k in state), None)
    if probe is not None:
        return ""
    key = next(iter(target))
    found = sorted({k[: -len(key)] for k in state if k.endswith("." + key)})
    if len(found) > 1:
        raise ValueError(
            f"load_backbone: several sub-models of the source hold {key!r} ({found}); pass prefix="
        )
    return found[0] if found else ""


# ----------------------------------------------------------------------------- data


@dataclass(frozen=True)
class DetectionData:
    """Images ``(N, C, H, W)`` float (in [0, 1]; a numpy array or a tensor) and one target
    per image: ``{"boxes": (k, 4) xyxy pixels, "labels": (k,) ints in 1..n_classes}``;
    ``k = 0`` is allowed (an image without lesion: torchvision trains it as background
    only). Build with :meth:`of`, which checks and converts (float32 / int64 tensors)."""

    images: torch.Tensor
    targets: tuple

    @classmethod
    def of(cls, images, targets, *, n_classes: int | None = None, in_chans: int | None = None):
        x = (
            torch.as_tensor(np.asarray(images, dtype=np.float32))
            if not torch.is_tensor(images)
            else images.detach().float()
        )
        if x.ndim != 4:
            raise ValueError(f"images must be (N, C, H, W), got shape {tuple(x.shape)}")
        if in_chans is not None and x.shape[1] != in_chans:
            raise ValueError(f"images have {x.shape[1]} channels, the detector reads {in_chans}")
        targets = list(targets)
        if len(targets) != len(x):
            raise ValueError(f"{len(x)} images but {len(targets)} targets")
        h, w = x.shape[-2:]
        out = []
        for i, t in enumerate(targets):
            b = bx.as_boxes(t["boxes"], f"targets[{i}]['boxes']")
            labels = np.asarray(t["labels"]).reshape(-1)
            if len(labels) != len(b):
                raise ValueError(f"targets[{i}]: {len(b)} boxes but {len(labels)} labels")
            if len(labels) and not np.issubdtype(labels.dtype, np.integer):
                raise ValueError(f"targets[{i}]: labels must be integers, got {labels.dtype}")
            top = n_classes if n_classes is not None else np.inf
            if len(labels) and (labels.min() < 1 or labels.max() > top):
                raise ValueError(
                    f"targets[{i}]: labels must be in 1..{n_classes or 'n_classes'} "
                    f"(0 is the background), got {sorted(set(labels.tolist()))}"
                )
            if len(b) and ((b[:, 2] <= b[:, 0]) | (b[:, 3] <= b[:, 1])).any():
                raise ValueError(f"targets[{i}]: boxes must have xmax > xmin and ymax > ymin")
            if len(b) and ((b[:, :2] < 0).any() or (b[:, 2] > w).any() or (b[:, 3] > h).any()):
                raise ValueError(f"targets[{i}]: boxes must lie inside the {h} x {w} image")
            out.append(
                {
                    "boxes": torch.as_tensor(b, dtype=torch.float32),
                    "labels": torch.as_tensor(labels.astype(np.int64)),
                }
            )
        return cls(x, tuple(out))

    def __len__(self) -> int:
        return len(self.images)

    def with_lesions(self) -> np.ndarray:
        """Indices of the images with at least one box (the paper trains on these only)."""
        return np.array([i for i, t in enumerate(self.targets) if len(t["boxes"])], dtype=int)


def _jitter(b: torch.Tensor, ratio: float, hw, gen) -> torch.Tensor:
    """Each coordinate moved by a uniform draw in ``[-ratio, ratio]`` x the box side
    (width for x, height for y; the TF Object Detection API's ``random_jitter_boxes``),
    clipped to the image; a box that would collapse keeps its coordinates."""
    if not ratio or not len(b):
        return b
    h, w = hw
    side = torch.stack([b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]] * 2, 1)  # w, h, w, h
    out = b + (torch.rand(b.shape, generator=gen) * 2 - 1) * ratio * side
    out[:, 0::2] = out[:, 0::2].clamp(0, w)
    out[:, 1::2] = out[:, 1::2].clamp(0, h)
    ok = (out[:, 2] > out[:, 0]) & (out[:, 3] > out[:, 1])
    return torch.where(ok[:, None], out, b)


def batches(
    data: DetectionData,
    *,
    batch_size: int = 2,
    seed: int = 0,
    hflip: bool = True,
    box_jitter: float = 0.005,
    shuffle: bool = True,
) -> Callable[[int], object]:
    """``batches(epoch)`` for :func:`~mammo_helpers.training.fit`: the images in a seeded
    order (seed, epoch), in batches ``(list of (C, H, W) images, list of targets)``; each
    image mirrored left-right with probability 1/2 (``hflip``; its boxes with it,
    :func:`mammo_helpers.boxes.flip_boxes`) and its boxes jittered by ``box_jitter``."""
    batch_size = _positive_int(batch_size, "batch_size", "batches")
    if not (isinstance(box_jitter, numbers.Real) and 0 <= box_jitter < 0.5):
        raise ValueError(f"box_jitter must be in [0, 0.5), got {box_jitter!r}")
    h, w = data.images.shape[-2:]

    def of_epoch(epoch: int):
        gen = torch.Generator().manual_seed(int(seed) * 10_007 + int(epoch))
        order = torch.randperm(len(data), generator=gen) if shuffle else torch.arange(len(data))
        for start in range(0, len(order), batch_size):
            images, targets = [], []
            for i in order[start : start + batch_size].tolist():
                img, t = data.images[i], data.targets[i]
                b = t["boxes"]
                if hflip and torch.rand(1, generator=gen).item() < 0.5:
                    img = img.flip(-1)
                    b = torch.as_tensor(bx.flip_boxes(b.numpy(), w), dtype=torch.float32)
                b = _jitter(b, float(box_jitter), (h, w), gen)
                images.append(img)
                targets.append({"boxes": b, "labels": t["labels"]})
            yield images, targets

    return of_epoch


def detection_loss(model, batch):
    """The sum of torchvision's four Faster R-CNN losses (RPN objectness and box
    regression, box classifier and box regression) for ``(images, targets)``."""
    images, targets = batch
    return sum(model(images, targets).values())


def _optimiser(model, name: str, lr: float, momentum: float, weight_decay: float):
    params = [p for p in model.parameters() if p.requires_grad]
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    raise ValueError(f"optimizer must be one of {OPTIMISERS}, got {name!r}")


def train_detector(
    model,
    images,
    targets,
    *,
    epochs: int,
    lr: float = 1e-4,
    momentum: float = 0.9,
    optimizer: str = "sgd",
    schedule: str = "constant",
    weight_decay: float = 0.0,
    batch_size: int = 2,
    seed: int = 0,
    hflip: bool = True,
    box_jitter: float = 0.005,
    grad_clip: float | None = 10.0,
    progress: bool = False,
    precision: str = "fp32",
    validate: Callable | None = None,
    desc: str = "detector",
) -> training.History:
    """Train ``model`` in place on ``images`` / ``targets`` (see :class:`DetectionData`)
    with :func:`mammo_helpers.training.fit` and :func:`detection_loss`; returns the
    per-epoch history (``loss`` is the summed torchvision loss per image batch);
    ``precision``: ``PRECISION``, as in ``training.fit``.

    The paper (§III-A.3): SGD with momentum 0.9 at lr 1e-4, batch size 2, the default
    augmentations (here: horizontal flips, ``hflip``) and boxes jittered with ratio 0.005
    (``box_jitter``); it trains only on images with at least one lesion, which is the
    caller's choice (:meth:`DetectionData.with_lesions`). ``optimizer="adam"`` (lr about
    1e-3 to 3e-4) learns much faster from random weights in a few epochs. ``schedule``:
    ``"constant"`` (the paper's) or ``"cosine"`` (annealed to 0 over ``epochs``).
    ``grad_clip`` bounds the gradient norm (a guard for random weights; the paper names
    none; ``None`` switches it off).
    ``validate(model) -> dict`` runs after each epoch in eval mode. Denormal numbers are
    flushed to zero while training (:func:`flush_denormal`)."""
    data = DetectionData.of(
        images, targets, n_classes=n_classes_of(model), in_chans=_in_chans_of(model)
    )
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
    epochs = training._check_epochs(epochs)
    torch.manual_seed(seed)  # the RPN / RoI samplers draw from the global generator
    opt = _optimiser(model, optimizer, float(lr), float(momentum), float(weight_decay))
    sched = (
        torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs) if schedule == "cosine" else None
    )
    with flush_denormal():
        return training.fit(
            model,
            batches(data, batch_size=batch_size, seed=seed, hflip=hflip, box_jitter=box_jitter),
            detection_loss,
            opt,
            epochs=epochs,
            scheduler=sched,
            validate=validate,
            grad_clip=grad_clip,
            progress=progress,
            precision=precision,
            desc=desc,
        )


# ------------------------------------------------------------------------ inference


def _images(model, images) -> torch.Tensor:
    x = images.detach().float() if torch.is_tensor(images) else None
    if x is None:
        x = torch.as_tensor(np.asarray(images, dtype=np.float32))
    if x.ndim == 3:
        x = x.unsqueeze(0)
    if x.ndim != 4 or x.shape[1] != _in_chans_of(model):
        raise ValueError(
            f"images must be (N, {_in_chans_of(model)}, H, W) for this detector, got "
            f"{tuple(x.shape)}"
        )
    return x.to(devices.model_device(model))


class _EvalMode:
    """Eval mode, restored on exit (with the detector's score threshold / detections)."""

    def __init__(self, model, **roi_settings):
        self.model, self.settings = model, roi_settings

    def __enter__(self):
        self.was_training = self.model.training
        heads = self.model.roi_heads
        self.saved = {k: getattr(heads, k) for k in self.settings}
        for k, v in self.settings.items():
            setattr(heads, k, v)
        self.model.eval()
        return self.model

    def __exit__(self, *exc):
        for k, v in self.saved.items():
            setattr(self.model.roi_heads, k, v)
        self.model.train(self.was_training)


def detect(
    model,
    images,
    *,
    batch_size: int = 8,
    score_threshold: float = 0.0,
    max_detections: int | None = None,
) -> list[dict]:
    """Detections of ``images`` ((N, C, H, W) or one (C, H, W); numpy or tensor, [0, 1]):
    one dict per image with numpy ``"boxes"`` (k, 4) float32 xyxy pixels, ``"scores"`` (k,)
    float32 (descending) and ``"labels"`` (k,) int64 in 1..n_classes. Eval mode without
    gradients; the detector's score threshold is set to ``score_threshold`` and its
    detections per image to ``max_detections`` (default: the model's), then restored.
    torchvision scores each class of each proposal separately (after per-class NMS), so
    one region can appear once per class."""
    x = _images(model, images)
    batch_size = _positive_int(batch_size, "batch_size", "detect")
    roi = {"score_thresh": float(score_threshold)}
    if max_detections is not None:
        roi["detections_per_img"] = _positive_int(max_detections, "max_detections", "detect")
    out = []
    with _EvalMode(model, **roi), torch.inference_mode(), flush_denormal():
        for start in range(0, len(x), batch_size):
            for d in model(list(x[start : start + batch_size])):
                out.append(
                    {
                        "boxes": devices.to_numpy(d["boxes"]).astype(np.float32),
                        "scores": devices.to_numpy(d["scores"]).astype(np.float32),
                        "labels": devices.to_numpy(d["labels"]).astype(np.int64),
                    }
                )
    return out


def background_box(image_hw) -> np.ndarray:
    """The box ``[[0, 0, W, H]]`` (1, 4) covering the whole image.

    The paper fills the fusion input with "background features pooled from the feature
    map" when fewer than ``n`` lesions are detected (§II-C.2) without saying how; here they
    are the :func:`roi_features` of this box: the whole feature map RoI-aligned to 7 x 7
    (a coarse average over the image) through the same box head, so they live in the same
    1024-d space as the detections' features and are the same for every missing slot of
    an image."""
    h, w = bx.as_hw(image_hw, "image_hw")
    return np.array([[0.0, 0.0, float(w), float(h)]])


def roi_features(model, images, boxes_per_image, *, batch_size: int = 8) -> list[np.ndarray]:
    """The box head's representation (``TwoMLPHead`` output, ``representation_size`` = 1024:
    the paper's ``feat_L^{v,k}``) of the given boxes, one ``(k_i, 1024)`` float32 array per
    image (``k_i = 0`` gives ``(0, 1024)``). Boxes are xyxy pixels of the input images (as
    :func:`detect` returns them); RoIAlign on the stride-8 map, in eval mode without
    gradients; deterministic. For detections these are the features of the final
    (regressed) boxes; torchvision's classifier scored the proposal each came from, whose
    features differ a little (the paper's TF implementation does not say which it used)."""
    x = _images(model, images)
    boxes_per_image = list(boxes_per_image)
    if len(boxes_per_image) != len(x):
        raise ValueError(f"{len(x)} images but {len(boxes_per_image)} box arrays")
    b_all = [bx.as_boxes(b, f"boxes_per_image[{i}]") for i, b in enumerate(boxes_per_image)]
    size = model.roi_heads.box_head.fc7.out_features
    out = []
    with _EvalMode(model), torch.inference_mode(), flush_denormal():
        for start in range(0, len(x), batch_size):
            chunk = list(x[start : start + batch_size])
            image_list, _ = model.transform(chunk)
            feats = model.backbone(image_list.tensors)
            props = []
            for img, b, (h, w) in zip(
                chunk, b_all[start : start + batch_size], image_list.image_sizes, strict=True
            ):
                scale = np.array([w / img.shape[-1], h / img.shape[-2]] * 2)
                props.append(torch.as_tensor(b * scale, dtype=torch.float32, device=x.device))
            counts = [len(p) for p in props]
            if sum(counts) == 0:
                out += [np.zeros((0, size), dtype=np.float32) for _ in counts]
                continue
            pooled = model.roi_heads.box_roi_pool(feats, props, image_list.image_sizes)
            rep = devices.to_numpy(model.roi_heads.box_head(pooled)).astype(np.float32)
            out += list(np.split(rep, np.cumsum(counts)[:-1]))
    return out


# ----------------------------------------------------------------------- checkpoints


def detector_state(model, n_classes: int, settings: dict | None = None) -> dict:
    """A checkpoint of ``model`` (plain data and tensors, loadable with
    ``torch.load(..., weights_only=True)``): its weights, ``n_classes`` (checked against
    the model's), the build settings (``model.settings``) and the caller's ``settings``
    (data, training recipe...)."""
    n_classes = _positive_int(n_classes, "n_classes", "detector_state")
    if n_classes_of(model) != n_classes:
        raise ValueError(
            f"detector_state: the model has {n_classes_of(model)} lesion classes, not {n_classes}"
        )
    build = getattr(model, "settings", None)
    if not build:
        raise ValueError("detector_state: the model was not made by build_detector (no settings)")
    return {
        "kind": CHECKPOINT_KIND,
        "n_classes": n_classes,
        "build": dict(build),
        "settings": dict(settings or {}),
        "state": {k: v.detach().clone() for k, v in model.state_dict().items()},
    }


def _class_names(n: int, class_names) -> str:
    if class_names is None and n == len(LESION_CLASSES):
        class_names = LESION_CLASSES
    if class_names is None:
        return f"labels 1..{n}"
    return "LESION_CLASSES: " + ", ".join(map(str, class_names))


def load_detector(state: dict, n_classes: int, *, class_names=None, **build_kwargs):
    """The detector of a :func:`detector_state` checkpoint, built again with its build
    settings (``build_kwargs`` may change the ones that do not shape the weights:
    ``min_size``, ``max_size``, sampling sizes, ``box_detections_per_img``...), weights
    loaded, in eval mode.

    Raises ``ValueError`` when the checkpoint was trained for another number of classes
    than ``n_classes`` (naming both, and ``class_names`` / :data:`LESION_CLASSES`), for
    another backbone or input channels than ``build_kwargs`` ask for, or when it is not a
    detector checkpoint."""
    n_classes = _positive_int(n_classes, "n_classes", "load_detector")
    if not isinstance(state, dict) or state.get("kind") != CHECKPOINT_KIND:
        got = state.get("kind") if isinstance(state, dict) else type(state).__name__
        raise ValueError(
            f"not a detector checkpoint of mammo_helpers.models.detection (kind {got!r}, "
            f"expected {CHECKPOINT_KIND!r})"
        )
    if int(state["n_classes"]) != n_classes:
        raise ValueError(
            f"detector checkpoint has {int(state['n_classes'])} lesion classes, this chapter "
            f"needs {n_classes} ({_class_names(n_classes, class_names)}); train the "
            "detector again for these classes"
        )
    build = dict(state["build"])
    clash = [
        f"{k}={build.get(k)!r} (asked: {_plain(v)!r})"
        for k, v in build_kwargs.items()
        if k in _STRUCTURE and _plain(v) != build.get(k)
    ]
    if clash:
        raise ValueError(
            "detector checkpoint was made for another architecture: " + "; ".join(clash)
        )
    build.update(build_kwargs)
    model = build_detector(n_classes, **build)
    try:
        model.load_state_dict(state["state"])
    except RuntimeError as exc:
        raise ValueError(
            f"detector checkpoint does not fit a {build['backbone']!r} detector: "
            f"{str(exc).splitlines()[0]}"
        ) from exc
    return model.eval()


def _plain(value):
    """Tuples as lists (how settings are stored), for comparing with a checkpoint's."""
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def cached(model, name: str, settings: dict, run, *, cache_dir=None):
    """:func:`~mammo_helpers.training.cached_fit` keyed by ``settings`` (add the build
    settings, ``model.settings``) and the code of this module. ``(history, hit)``."""
    code = [sys.modules[__name__]]
    return training.cached_fit(model, name, settings, run, code=code, cache_dir=cache_dir)
