"""How hard is a cohort for a CNN: a small CNN on lesion patches and on whole images.

Chapter 00 runs it on the synthetic cohort before chapters 01-05 train on it: lesion-centred
vs normal patches cut at a fixed physical size (``size_mm``, resampled to ``px``), and whole
breasts (cropped to the breast, flipped to the left, resized to ``size_hw``) with or without
a lesion. Everything is split by patient; AUCs come with patient-bootstrap intervals
(:mod:`mammo_helpers.metrics`) and per lesion kind (that kind's positives vs all negatives).
Trained runs are cached in the model cache (:mod:`mammo_helpers.cache`).

The search model at the end says what a detector that tells one location from another with
a given AUC becomes over a whole image of many locations: its image AUC (:func:`search_auc`,
chapter 00) and its Pointing Game (:func:`pointing_hit_rate`, chapter 02).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage

from mammo_helpers import boxes as mhb
from mammo_helpers import devices, io, metrics, training
from mammo_helpers import preprocess as pp
from mammo_helpers.cache import data_digest, weights_digest

__all__ = [
    "Labels",
    "Samples",
    "image_labels",
    "image_scores",
    "Trained",
    "evaluate",
    "effective_locations",
    "hard_negatives",
    "launch_training",
    "learning_curve",
    "location_auc_needed",
    "lesion_patches",
    "pointing_auc_needed",
    "pointing_hit_rate",
    "pointing_locations",
    "pointing_search",
    "predict",
    "search_auc",
    "small_cnn",
    "train_cached",
    "train_job",
    "train_cnn",
    "whole_images",
]

NORMAL = "normal"
#: How the per-location logits of :func:`small_cnn` become one score per image.
POOLS = ("avg", "max")


@dataclass(frozen=True)
class Labels:
    """Per sample: ``y`` (1 = lesion), the lesion ``kind`` (``'normal'`` for negatives) and
    the ``patient_id`` (what the bootstrap resamples)."""

    y: np.ndarray
    kind: np.ndarray
    patient_id: np.ndarray

    def __len__(self) -> int:
        return len(self.y)


@dataclass(frozen=True)
class Samples(Labels):
    """Labels with their images ``x`` (N, H, W) float32 in [0, 1]."""

    x: np.ndarray = None

    def take(self, rows) -> Samples:
        """The samples at ``rows`` (a boolean mask or integer index)."""
        return Samples(self.y[rows], self.kind[rows], self.patient_id[rows], self.x[rows])

    def of_patients(self, patients) -> Samples:
        """The samples of the given patients."""
        return self.take(np.isin(self.patient_id, np.asarray(list(patients), dtype=object)))

    def plus(self, other: Samples) -> Samples:
        """These samples followed by ``other``'s (e.g. training patches and mined negatives)."""
        if self.x.shape[1:] != other.x.shape[1:]:
            raise ValueError(
                f"cannot join samples of {self.x.shape[1:]} and {other.x.shape[1:]} px"
            )
        fields = ("y", "kind", "patient_id", "x")
        return Samples(*(np.concatenate([getattr(self, f), getattr(other, f)]) for f in fields))

    def resized(self, size_hw) -> Samples:
        """The same samples with every image resized (area interpolation) to ``size_hw``."""
        x = np.stack([pp.resize(img, size_hw) for img in self.x]).astype(np.float32)
        return Samples(self.y, self.kind, self.patient_id, x)


def image_labels(manifest: pd.DataFrame) -> Labels:
    """One label per image: 1 if it has a finding, ``kind`` = its first finding's label."""
    findings = manifest["findings"].tolist()
    return Labels(
        np.array([int(len(f) > 0) for f in findings], dtype=np.int64),
        np.array([f[0]["label"] if f else NORMAL for f in findings], dtype=object),
        manifest["patient_id"].astype(str).to_numpy(dtype=object),
    )


def _breast(row) -> tuple[np.ndarray, np.ndarray]:
    """The stored image as [0, 1] (breast 0.5-99.5 percentiles) and its breast mask."""
    img = io.read_dicom(row.path).pixels
    mask = pp.otsu_breast_mask(img)
    return pp.scale_to_unit(img, mask=mask, low_pct=0.5, high_pct=99.5), mask


def _spacing(row) -> float:
    spacing = float(row.pixel_spacing_mm)
    if not (math.isfinite(spacing) and spacing > 0):
        raise ValueError(f"image {row.image_id!r} has no pixel spacing: patches need mm")
    return spacing


def _patch(img, centre_xy, side: int, px: int) -> np.ndarray:
    """A ``side``-pixel square around ``centre_xy`` (moved inside the image), resized to px."""
    cx, cy = centre_xy
    box = mhb.crop_around((cx, cy, cx, cy), img.shape, 1.0, size_mm=side)  # 1 "mm" = 1 px
    return pp.resize(pp.crop(img, box), (px, px))


def _normal_centres(mask, n: int, margin_px: float, rng) -> list[tuple[float, float]]:
    """``n`` random pixel centres at least ``margin_px`` inside the breast mask."""
    inside = ndimage.distance_transform_edt(mask) >= margin_px
    ys, xs = np.nonzero(inside if inside.any() else mask)
    pick = rng.choice(len(ys), size=n, replace=len(ys) < n)
    return [(float(xs[i]), float(ys[i])) for i in pick]


def _lesion_centres(findings, crops: int, jitter_px: float, rng) -> list:
    """``(label, (x, y))`` per crop: each box centre, then ``crops - 1`` shifted copies."""
    out = []
    for f in findings:
        cx, cy = (f["xmin"] + f["xmax"]) / 2, (f["ymin"] + f["ymax"]) / 2
        out.append((f["label"], (cx, cy)))
        for dx, dy in rng.uniform(-jitter_px, jitter_px, (crops - 1, 2)):
            out.append((f["label"], (cx + dx, cy + dy)))
    return out


def lesion_patches(
    manifest: pd.DataFrame,
    *,
    size_mm: float = 20.0,
    px: int = 64,
    normals_per_image: int = 1,
    crops_per_lesion: int = 1,
    jitter_mm: float = 0.0,
    margin_mm: float = 3.0,
    seed: int = 0,
    progress: bool = False,
) -> Samples:
    """``crops_per_lesion`` patches of ``size_mm`` (resampled to ``px``) around every
    finding, the first centred and the others shifted by up to ``jitter_mm`` in x and y (for
    training), and ``normals_per_image`` patches at random places in the breast of every image
    without a finding (at least ``margin_mm`` from the skin line). Chapter 00."""
    from tqdm.auto import tqdm

    for name, value, low in (
        ("px", px, 8),
        ("normals_per_image", normals_per_image, 0),
        ("crops_per_lesion", crops_per_lesion, 1),
    ):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
            raise ValueError(f"lesion_patches: {name} must be an integer >= {low}, got {value!r}")
    for name, value, positive in (
        ("size_mm", size_mm, True),
        ("jitter_mm", jitter_mm, False),
        ("margin_mm", margin_mm, False),
    ):
        if not (
            isinstance(value, numbers.Real)
            and math.isfinite(value)
            and (value > 0 if positive else value >= 0)
        ):
            raise ValueError(
                f"lesion_patches: {name} must be a finite number {'>' if positive else '>='} 0, got {value!r}"
            )
    rng = np.random.default_rng(seed)
    out = {"x": [], "y": [], "kind": [], "patient_id": []}
    rows = list(manifest.itertuples(index=False))
    for row in tqdm(rows, desc="patches", disable=not progress):
        img, mask = _breast(row)
        spacing = _spacing(row)
        side = max(int(round(size_mm / spacing)), 2)
        found = _lesion_centres(row.findings, crops_per_lesion, jitter_mm / spacing, rng)
        if not found:
            margin = margin_mm / spacing
            found = [(NORMAL, c) for c in _normal_centres(mask, normals_per_image, margin, rng)]
        for kind, centre in found:
            out["x"].append(_patch(img, centre, side, px))
            out["y"].append(int(kind != NORMAL))
            out["kind"].append(kind)
            out["patient_id"].append(str(row.patient_id))
    return _samples(out)


def whole_images(manifest: pd.DataFrame, *, size_hw=(256, 208), progress: bool = False) -> Samples:
    """Each image cropped to the breast, flipped to the left, resized to ``size_hw``
    (height, width); label 1 when it has a finding (``kind`` = its first finding). Chapter 00."""
    from tqdm.auto import tqdm

    size_hw = mhb.as_hw(size_hw, "size_hw")
    images = []
    for row in tqdm(list(manifest.itertuples(index=False)), desc="images", disable=not progress):
        img, mask = _breast(row)
        img, _ = pp.flip_to_laterality(pp.crop(img, pp.breast_box(img, mask=mask)), row.laterality)
        images.append(pp.resize(img, size_hw))
    if not images:
        raise ValueError("no samples: the manifest has no images")
    labels = image_labels(manifest)
    return Samples(labels.y, labels.kind, labels.patient_id, np.stack(images).astype(np.float32))


def _samples(out: dict) -> Samples:
    if not out["y"]:
        raise ValueError("no samples: the manifest has no images")
    return Samples(
        np.asarray(out["y"], dtype=np.int64),
        np.asarray(out["kind"], dtype=object),
        np.asarray(out["patient_id"], dtype=object),
        np.stack(out["x"]).astype(np.float32),
    )


# --------------------------------------------------------------------------- the model
def small_cnn(width: int = 16, blocks: int = 4, pool: str = "avg"):
    """``blocks`` x (3x3 conv, batch norm, ReLU, 2x2 max-pool), channels doubling from
    ``width``; then a 1x1 convolution to one logit per location, pooled over the image by
    ``pool`` ("avg" or "max"). About 0.1 M weights at width 16.

    The logit map is linear in the features, so with ``pool="avg"`` this is a global
    average pool followed by a linear layer; the same weights with ``pool="max"`` score a
    larger image by its most suspicious location (a patch classifier turned into a
    whole-image one, chapters 00 and 04)."""
    from torch import nn

    from mammo_helpers.models.classifiers import conv_blocks

    if pool not in POOLS:
        raise ValueError(f"small_cnn: pool must be one of {', '.join(POOLS)}, got {pool!r}")
    layers = conv_blocks(width, blocks)  # one input channel, stride 1
    c_in = width * 2 ** (blocks - 1) if blocks else 1
    layers += [nn.Dropout(0.2), nn.Conv2d(c_in, 1, 1)]
    layers += [nn.AdaptiveAvgPool2d(1) if pool == "avg" else nn.AdaptiveMaxPool2d(1), nn.Flatten()]
    return nn.Sequential(*layers)


@dataclass(frozen=True)
class Trained:
    """A trained CNN's weights, its per-epoch training loss and the settings it used."""

    state: dict
    loss: list[float]
    settings: dict

    def model(self):
        """The network in eval mode, built once per run and reused by every prediction."""
        return self._net

    @cached_property
    def _net(self):
        net = small_cnn(self.settings["width"], self.settings["blocks"], self.settings["pool"])
        net.load_state_dict(self.state)
        return net.eval()


def _augment(xb, square: bool, gen):
    """Random flips (and 90-degree turns for square patches) of a batch (B, 1, H, W)."""
    import torch

    flips = torch.rand(3, generator=gen)
    if flips[0] < 0.5:
        xb = xb.flip(-1) if square else xb
    if flips[1] < 0.5:
        xb = xb.flip(-2)
    if square and flips[2] < 0.5:
        xb = xb.transpose(-1, -2)
    return xb


def _network(width, blocks, pool: str, init: Trained | None):
    """A fresh :func:`small_cnn`, or one carrying ``init``'s weights (its width and blocks)."""
    if init is None:
        return small_cnn(width or 16, blocks or 4, pool)
    shape = init.settings["width"], init.settings["blocks"]
    if width not in (None, shape[0]) or blocks not in (None, shape[1]):
        raise ValueError(
            f"train_cnn: init has width {shape[0]} and {shape[1]} blocks; "
            f"got width={width!r}, blocks={blocks!r} (leave them out to use init's)"
        )
    net = small_cnn(*shape, pool)
    net.load_state_dict(init.state)
    return net


def _batches(x, y, batch_size: int, gen):
    """One epoch of shuffled mini-batches ``(images, labels)`` with random flips."""
    import torch

    square = x.shape[-1] == x.shape[-2]
    for idx in torch.randperm(len(y), generator=gen).split(batch_size):
        yield _augment(x[idx], square, gen), y[idx]


def train_cnn(
    samples: Samples,
    *,
    epochs: int = 30,
    batch_size: int = 64,
    lr: float = 1e-3,
    width: int | None = None,
    blocks: int | None = None,
    pool: str = "avg",
    init: Trained | None = None,
    seed: int = 0,
    progress: bool = False,
    device="cpu",
) -> Trained:
    """Adam + BCE (positives weighted by the class ratio) with random flips, cosine
    learning rate, on ``device`` (``DEVICE``); returns the weights (on the CPU) and the
    loss per epoch. ``width`` and ``blocks`` default to 16 and 4, or to ``init``'s when
    training starts from the weights of another run (e.g. a whole-image model from a patch
    model, ``pool="max"``). Predictions (:func:`predict`) run on the CPU. Chapter 00."""
    import torch

    if len(set(samples.y.tolist())) < 2:
        raise ValueError("train_cnn needs lesion and normal samples in the training set")
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    net = _network(width, blocks, pool, init).to(device)
    x = torch.from_numpy(samples.x).unsqueeze(1)
    y = torch.from_numpy(samples.y).float()
    pos_weight = torch.tensor((y == 0).sum().item() / max((y == 1).sum().item(), 1))
    loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=pos_weight).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=1e-4)
    history = training.fit(
        net,
        lambda epoch: _batches(x, y, batch_size, gen),
        lambda model, batch: loss_fn(model(batch[0]).squeeze(1), batch[1]),
        opt,
        epochs=epochs,
        scheduler=torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs),
        progress=progress,
    )
    settings = {"epochs": epochs, "batch_size": batch_size, "lr": lr, "pool": pool}
    settings |= {"width": net[0].out_channels, "blocks": _blocks(net), "seed": seed}
    settings |= {
        "px": int(x.shape[-1]),
        "init": None if init is None else weights_digest(init.state),
    }
    state = {k: v.detach().cpu() for k, v in net.state_dict().items()}
    return Trained(state, history.column("loss"), settings)


def _blocks(net) -> int:
    from torch import nn

    return sum(isinstance(m, nn.MaxPool2d) for m in net)


def predict(trained: Trained, samples: Samples, batch_size: int = 256) -> np.ndarray:
    """Lesion scores (logits averaged over the flips seen in training)."""
    x = samples.x
    views = [x, x[:, ::-1, :]]
    if x.shape[-1] == x.shape[-2]:
        views += [x[:, :, ::-1], x.transpose(0, 2, 1)]
    return np.mean([_logits(trained, v, batch_size) for v in views], axis=0)


def _logits(trained: Trained, images: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """The CNN's logit for each image (N, H, W), no test-time flips, on the CPU (the
    learnability CNNs are small)."""
    out = devices.predict_batches(
        trained.model(), images, lambda m, b: m(b.unsqueeze(1)).squeeze(1), batch_size=batch_size
    )
    return np.zeros(0, np.float32) if out is None else out


def score_map(trained: Trained, img: np.ndarray, stride: int, mask=None) -> np.ndarray:
    """The patch CNN slid over a whole image already at the patches' mm per pixel: the
    logit of the window starting every ``stride`` pixels, NaN where the window's centre is
    outside ``mask`` (the breast; skipped, not computed). Chapter 00."""
    px = trained.settings["px"]
    windows = _windows(img, px)[::stride, ::stride]
    keep = np.ones(windows.shape[:2], dtype=bool)
    if mask is not None:
        rows = np.minimum(np.arange(keep.shape[0]) * stride + px // 2, mask.shape[0] - 1)
        cols = np.minimum(np.arange(keep.shape[1]) * stride + px // 2, mask.shape[1] - 1)
        keep = mask[np.ix_(rows, cols)]
    out = np.full(keep.shape, np.nan, dtype=np.float32)
    if keep.any():
        out[keep] = _logits(trained, windows[keep])
    return out


def image_scores(
    trained: Trained,
    manifest: pd.DataFrame,
    *,
    size_mm: float,
    stride_frac: float = 0.5,
    progress: bool = False,
) -> np.ndarray:
    """Whole-image lesion scores from the patch CNN: each image resampled to the patches'
    mm per pixel, the CNN slid over the breast (stride = ``stride_frac`` of a patch), the
    score = the highest window. Chapter 00."""
    from tqdm.auto import tqdm

    stride = _stride(trained, stride_frac)
    scores = []
    for row in tqdm(list(manifest.itertuples(index=False)), desc="images", disable=not progress):
        scores.append(float(np.nanmax(_slid(trained, row, size_mm, stride)[2])))
    return np.asarray(scores)


def _windows(img: np.ndarray, px: int) -> np.ndarray:
    """Every ``px``-square window of ``img`` (zero-padded at the bottom and right when it
    is smaller than a window): array (rows, cols, px, px), window (i, j) starting at (i, j)."""
    if img.shape[0] < px or img.shape[1] < px:
        img = np.pad(img, ((0, max(px - img.shape[0], 0)), (0, max(px - img.shape[1], 0))))
    return np.lib.stride_tricks.sliding_window_view(img, (px, px))


def _stride(trained: Trained, stride_frac: float) -> int:
    return max(int(round(trained.settings["px"] * stride_frac)), 1)


def _slid(trained: Trained, row, size_mm: float, stride: int):
    """One image resampled to the patches' mm per pixel, that zoom (patch px per stored
    px) and the patch CNN's score map over its breast (:func:`score_map`)."""
    img, mask = _breast(row)
    zoom = _spacing(row) * trained.settings["px"] / size_mm
    hw = (max(int(round(img.shape[0] * zoom)), 1), max(int(round(img.shape[1] * zoom)), 1))
    small, small_mask = pp.resize(img, hw), pp.resize(mask.astype(np.float32), hw) > 0.5
    return small, zoom, score_map(trained, small, stride, small_mask)


def _clear_of(findings, shape, stride: int, px: int, zoom: float) -> np.ndarray:
    """Which windows of a score map of ``shape`` overlap none of the ``findings`` boxes
    (stored pixels; the windows are on the grid resampled by ``zoom``)."""
    starts_r, starts_c = np.arange(shape[0]) * stride, np.arange(shape[1]) * stride
    clear = np.ones(shape, dtype=bool)
    for f in findings:
        rows = (starts_r < f["ymax"] * zoom) & (starts_r + px > f["ymin"] * zoom)
        cols = (starts_c < f["xmax"] * zoom) & (starts_c + px > f["xmin"] * zoom)
        clear &= ~(rows[:, None] & cols[None, :])
    return clear


def hard_negatives(
    trained: Trained,
    manifest: pd.DataFrame,
    *,
    size_mm: float,
    per_image: int = 4,
    stride_frac: float = 0.5,
    progress: bool = False,
) -> Samples:
    """Hard-negative mining: the ``per_image`` windows of every image that the patch CNN
    ``trained`` scores highest among those overlapping none of the image's findings, cut
    as in :func:`image_scores` and labelled normal. Added to the training patches for a
    second round, they teach the CNN the false alarms that decide a whole-image score.
    ``tools/learnability_experiments.py`` (chapter 00's limitations)."""
    from tqdm.auto import tqdm

    if isinstance(per_image, bool) or not isinstance(per_image, numbers.Integral) or per_image < 1:
        raise ValueError(f"hard_negatives: per_image must be an integer >= 1, got {per_image!r}")
    px, stride = trained.settings["px"], _stride(trained, stride_frac)
    out = {"x": [], "y": [], "kind": [], "patient_id": []}
    for row in tqdm(list(manifest.itertuples(index=False)), desc="mining", disable=not progress):
        small, zoom, scores = _slid(trained, row, size_mm, stride)
        clear = _clear_of(row.findings, scores.shape, stride, px, zoom) & np.isfinite(scores)
        ranked = np.argsort(np.where(clear, scores, -np.inf), axis=None)[::-1]
        windows = _windows(small, px)
        top = np.unravel_index(ranked[: min(per_image, int(clear.sum()))], scores.shape)
        for i, j in zip(*top, strict=True):
            out["x"].append(np.array(windows[i * stride, j * stride]))
            out["y"].append(0)
            out["kind"].append(NORMAL)
            out["patient_id"].append(str(row.patient_id))
    if not out["y"]:
        raise ValueError("hard_negatives: no window in the breast clear of every finding")
    return _samples(out)


def evaluate(scores, samples: Labels, *, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """AUC with a patient-bootstrap 95 % interval, overall and per lesion kind (that kind's
    positives vs every negative); one row per group with its sample counts."""
    scores = np.asarray(scores, dtype=float)
    rows = []
    kinds = ["all"] + sorted(set(samples.kind[samples.y == 1].tolist()))
    for kind in kinds:
        keep = (samples.y == 0) | ((samples.kind == kind) if kind != "all" else True)
        est = metrics.auc_ci(
            samples.y[keep], scores[keep], samples.patient_id[keep], n_boot=n_boot, seed=seed
        )
        rows.append(
            {
                "kind": kind,
                "auc": est.value,
                "low": est.low,
                "high": est.high,
                "positives": int(samples.y[keep].sum()),
                "negatives": int((samples.y == 0).sum()),
            }
        )
    return pd.DataFrame(rows)


def _cache_request(samples: Samples, train_kwargs: dict) -> tuple[dict, list]:
    """The model cache's settings and code for training on ``samples``."""
    from mammo_helpers.models.classifiers import conv_blocks

    settings = {"data": data_digest(samples.x, samples.y, samples.kind, samples.patient_id)}
    settings |= {k: v for k, v in train_kwargs.items() if k != "device"}  # not in the key
    if train_kwargs.get("init") is not None:
        settings["init"] = weights_digest(train_kwargs["init"].state)
    code = [small_cnn, conv_blocks, train_cnn, _network, _batches, _augment, training]
    return settings, code


def train_cached(
    samples: Samples,
    *,
    cache_dir=None,
    name: str = "learnability",
    launcher: str = "in-process",
    nproc: int = 1,
    **train_kwargs,
) -> tuple[Trained, bool]:
    """``train_cnn`` through the model cache, keyed by the samples' content, the settings
    and this module's code; ``(trained, hit)``. With ``launcher="torchrun"`` a model that
    is not cached yet is trained by ``nproc`` processes (:func:`launch_training`) and then
    read from the cache. Chapter 00."""
    from mammo_helpers import distributed
    from mammo_helpers.cache import ModelCache

    distributed.check_launcher(launcher)
    settings, code = _cache_request(samples, train_kwargs)
    cache = ModelCache(cache_dir)
    if launcher == "torchrun" and not cache.entry(name, settings, code).model_path.is_file():
        launch_training(samples, nproc=nproc, cache_dir=cache_dir, name=name, **train_kwargs)

    def train() -> dict:
        run = train_cnn(samples, **train_kwargs)
        return {"state": run.state, "loss": run.loss, "settings": run.settings}

    obj, hit = cache.get_or_train(name, settings, train, code=code)
    return Trained(obj["state"], list(obj["loss"]), dict(obj["settings"])), hit


def launch_training(samples: Samples, *, nproc: int, cache_dir=None, name: str, **train_kwargs):
    """Train on ``samples`` under ``torchrun`` with ``nproc`` processes (DDP, gloo on the
    CPU); rank 0 leaves the model in the model cache. The samples (and the ``init``
    weights) go to the ranks through a temporary file in the cache folder. Chapter 00."""
    import pickle
    import tempfile

    from mammo_helpers import distributed
    from mammo_helpers.paths import cache_dir as cache_root

    root = cache_root(cache_dir)
    root.mkdir(parents=True, exist_ok=True)
    device = str(train_kwargs.pop("device", "cpu"))
    with tempfile.TemporaryDirectory(prefix=".torchrun-", dir=root) as tmp:
        path = Path(tmp) / "samples.pkl"
        init = train_kwargs.pop("init", None)
        with open(path, "wb") as fh:
            pickle.dump({"samples": samples, "init": init}, fh)
        settings = {"samples_file": str(path), "cache_dir": str(root), "name": name}
        settings |= {"train_kwargs": train_kwargs | {"device": device}}
        distributed.launch(_JOB, settings, nproc=nproc, device=device.partition(":")[0])


_JOB = "mammo_helpers.learnability:train_job"


def train_job(*, samples_file: str, cache_dir: str, name: str, train_kwargs: dict) -> None:
    """What each ``torchrun`` rank runs for :func:`launch_training` (via
    ``python -m mammo_helpers.distributed``). Chapter 00."""
    import pickle

    from mammo_helpers import distributed

    with open(samples_file, "rb") as fh:
        data = pickle.load(fh)  # written by launch_training a moment ago
    kwargs = dict(train_kwargs) | ({"init": data["init"]} if data["init"] is not None else {})
    if str(kwargs.get("device", "cpu")).startswith("cuda"):  # each rank on its own GPU
        kwargs["device"] = f"cuda:{distributed.context().local_rank}"
    train_cached(data["samples"], cache_dir=cache_dir, name=name, **kwargs)


def learning_curve(
    train: Samples,
    test: Samples,
    patients: list[int],
    *,
    seed: int = 0,
    cache_dir=None,
    n_boot: int = 1000,
    **train_kwargs,
) -> pd.DataFrame:
    """Test AUC (patient-bootstrap interval) after training on the first ``n`` patients of
    one random order of the training patients, for each ``n`` in ``patients``."""
    order = np.random.default_rng(seed).permutation(sorted(set(train.patient_id.tolist())))
    rows = []
    for n in patients:
        if not 0 < n <= len(order):
            raise ValueError(
                f"learning_curve: {n} patients asked, the training set has {len(order)}"
            )
        subset = train.of_patients(order[:n])
        run, _ = train_cached(subset, cache_dir=cache_dir, seed=seed, **train_kwargs)
        est = metrics.auc_ci(test.y, predict(run, test), test.patient_id, n_boot=n_boot, seed=seed)
        rows.append(
            {
                "patients": n,
                "samples": len(subset),
                "lesions": int(subset.y.sum()),
                "auc": est.value,
                "low": est.low,
                "high": est.high,
            }
        )
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- search model
def _check_auc(name: str, value, low: float = 0.5) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not low < value < 1:
        raise ValueError(f"{name} must be a number in ({low:g}, 1), got {value!r}")
    return float(value)


def _check_locations(locations) -> float:
    ok = isinstance(locations, numbers.Real) and not isinstance(locations, bool)
    if not (ok and math.isfinite(locations) and locations >= 1):
        raise ValueError(f"locations must be a finite number >= 1, got {locations!r}")
    return float(locations)


def _score_grid(location_auc: float) -> tuple[float, np.ndarray]:
    """d' of ``location_auc`` under equal-variance Gaussian scores, and the fine grid on
    which the search model's integrals are taken."""
    from scipy.stats import norm

    d = math.sqrt(2.0) * float(norm.ppf(location_auc))
    return d, np.linspace(min(-9.0, d - 9.0), max(9.0, d + 9.0), 40_001)


def search_auc(location_auc: float, locations: float) -> float:
    """Whole-image AUC of a detector that scores ``locations`` independent locations of an
    image and keeps the highest, when a lesion image has the lesion at one of them and the
    detector tells a lesion location from a normal one with ``location_auc``.

    Scores are equal-variance Gaussian (normal N(0, 1), lesion N(d', 1) with
    d' = sqrt(2) * Phi^-1(location_auc)); the image AUC is P(max of a lesion image > max of a
    normal image), integrated on a fine grid. ``locations=1`` returns ``location_auc``; a
    detector at chance stays at 0.5 for any number of locations. Chapter 00."""
    from scipy.special import log_ndtr, ndtr
    from scipy.stats import norm

    auc = _check_auc("location_auc", location_auc, low=0.0)
    k = _check_locations(locations)
    d, t = _score_grid(auc)
    log_rest = (k - 1.0) * log_ndtr(t)  # log Phi(t)^(k-1): the other locations
    normal_pdf = k * norm.pdf(t) * np.exp(log_rest)  # density of a normal image's maximum
    lesion_cdf = ndtr(t - d) * np.exp(log_rest)  # P(a lesion image's maximum <= t)
    return float(np.trapezoid(normal_pdf * (1.0 - lesion_cdf), t))


def pointing_hit_rate(location_auc: float, locations: float) -> float:
    """The Pointing Game under :func:`search_auc`'s model: the probability that the lesion's
    location scores above each of the other ``locations - 1`` (normal) locations of its
    image, so that the map's maximum falls on the lesion. 1 for one location, ``location_auc``
    for two, ``1 / locations`` for a detector at chance. Chapter 02."""
    from scipy.special import log_ndtr
    from scipy.stats import norm

    auc = _check_auc("location_auc", location_auc, low=0.0)
    k = _check_locations(locations)
    d, t = _score_grid(auc)
    return float(np.trapezoid(norm.pdf(t - d) * np.exp((k - 1.0) * log_ndtr(t)), t))


def _check_rate(hit_rate) -> float:
    ok = isinstance(hit_rate, numbers.Real) and not isinstance(hit_rate, bool)
    if not (ok and 0.0 <= hit_rate <= 1.0):
        raise ValueError(f"hit_rate must be a number in [0, 1], got {hit_rate!r}")
    return float(hit_rate)


def pointing_locations(location_auc: float, hit_rate: float) -> float:
    """The number of independent locations for which :func:`pointing_hit_rate` turns
    ``location_auc`` into the measured Pointing Game ``hit_rate``: 1 for a rate of 1,
    infinity for a rate of 0. Chapter 02."""
    auc = _check_auc("location_auc", location_auc, low=0.0)
    rate = _check_rate(hit_rate)
    if rate >= 1.0:
        return 1.0
    if rate <= 0.0:
        return math.inf
    return _locations_for(lambda k: pointing_hit_rate(auc, k), rate)


def pointing_auc_needed(hit_rate: float, locations: float) -> float:
    """The location AUC that :func:`pointing_hit_rate` needs to reach ``hit_rate`` over
    ``locations`` independent locations (its inverse in the first argument); a rate at or
    below chance (``1 / locations``) needs no skill and returns 0.5. Chapter 02."""
    from scipy.optimize import brentq

    rate = _check_rate(hit_rate)
    k = _check_locations(locations)
    if rate >= 1.0 and k > 1.0:
        raise ValueError(f"hit_rate 1 over {k:g} locations needs a perfect detector (AUC 1)")
    if rate <= 1.0 / k:
        return 0.5
    return float(brentq(lambda a: pointing_hit_rate(a, k) - rate, 0.5, 1 - 1e-12, xtol=1e-7))


def _locations_for(value_at, target: float) -> float:
    """The number of locations k >= 1 at which ``value_at(k)``, falling with k from its
    value at k = 1, equals ``target``; infinity when it stays above past 1e7 locations."""
    from scipy.optimize import brentq

    high = 2.0
    while value_at(high) > target:
        if high > 1e7:
            return math.inf
        high *= 4.0
    return float(brentq(lambda k: value_at(k) - target, 1.0, high, xtol=1e-3))


def effective_locations(location_auc: float, image_auc: float) -> float:
    """The number of independent locations for which :func:`search_auc` turns
    ``location_auc`` into the measured ``image_auc``: 1 when the image AUC is not below the
    location AUC, infinity when it is at chance or below, NaN when the location AUC is
    itself at chance or below (no search explains anything then). Chapter 00."""
    location_auc = _check_auc("location_auc", location_auc, low=0.0)
    image_auc = _check_auc("image_auc", image_auc, low=0.0)
    if location_auc <= 0.5:
        return math.nan
    if image_auc >= location_auc:
        return 1.0
    if image_auc <= 0.5:
        return math.inf
    return _locations_for(lambda k: search_auc(location_auc, k), image_auc)


def location_auc_needed(image_auc: float, locations: float) -> float:
    """The location AUC that :func:`search_auc` needs to reach ``image_auc`` over
    ``locations`` independent locations (the inverse of :func:`search_auc` in its first
    argument). Chapter 00."""
    from scipy.optimize import brentq

    image_auc = _check_auc("image_auc", image_auc)
    k = _check_locations(locations)
    return float(brentq(lambda a: search_auc(a, k) - image_auc, 0.5, 1 - 1e-12, xtol=1e-7))


def _defined(auc, rate) -> bool:
    """Whether a label's location AUC and hit rate can enter the search model."""
    values_ok = all(isinstance(v, numbers.Real) and math.isfinite(v) for v in (auc, rate))
    return values_ok and 0.0 < auc < 1.0 and 0.0 < rate < 1.0


def pointing_search(location_aucs, hit_rates, *, target: float) -> tuple[pd.DataFrame, float]:
    """The Pointing Game per label explained by the search model: ``location_aucs`` and
    ``hit_rates`` map each label to its location AUC (e.g. the crop classifier's AUC) and
    its measured hit rate (None or NaN when undefined). Returns a table with, per label,
    ``locations`` (:func:`pointing_locations`), ``predicted`` (the hit rate at the median
    of those locations), ``auc_needed`` (the location AUC that reaches ``target`` there),
    and that median. Labels with an undefined value, an AUC of 0 or 1, or a hit rate of 0
    or 1 explain nothing and are left out of the median; with no label left, the median
    and the predictions are NaN (e.g. a smoke run). Chapter 02."""
    target = _check_rate(target)
    labels = list(location_aucs)
    missing = [label for label in labels if label not in hit_rates]
    if missing:
        raise ValueError(f"pointing_search: no hit rate for label(s) {missing}")
    rows = {}
    for label in labels:
        auc, rate = location_aucs[label], hit_rates[label]
        auc, rate = (math.nan if v is None else float(v) for v in (auc, rate))
        k = pointing_locations(auc, rate) if _defined(auc, rate) else math.nan
        rows[label] = {"location_auc": auc, "hit_rate": rate, "locations": k}
    table = pd.DataFrame.from_dict(rows, orient="index")
    finite = table.locations[np.isfinite(table.locations)]
    k = float(finite.median()) if len(finite) else math.nan
    fit = math.isfinite(k)
    table["predicted"] = [
        pointing_hit_rate(a, k) if fit and 0.0 < a < 1.0 else math.nan for a in table.location_auc
    ]
    table["auc_needed"] = pointing_auc_needed(target, k) if fit else math.nan
    return table, k
