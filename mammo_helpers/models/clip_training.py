"""Training CLIP models on image arrays: contrastive pre-training on image-report pairs,
fine-tuning on class prompts (paper 01's weighted contrastive loss), and the practitioner's
baseline, the same image tower with a linear head trained by cross-entropy. Chapter 01.

Every trainer takes preprocessed images (N, 3, S, S) as a numpy array and integer labels,
draws shuffled mini-batches with random left-right flips from a seeded generator, trains
through :func:`mammo_helpers.training.fit` (AdamW, cosine learning rate) and returns the
per-epoch :class:`~mammo_helpers.training.History`. :func:`cached_training` keeps the trained
weights in the model cache, keyed by the settings, a digest of the data (:func:`mammo_helpers.cache.data_digest`)
and this code.
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Callable

import numpy as np
import torch

from mammo_helpers import devices, distributed, training
from mammo_helpers.cache import data_digest
from mammo_helpers.models import clip as clip_mod
from mammo_helpers.models import losses

__all__ = [
    "ImageClassifier",
    "VARIANTS",
    "cached_training",
    "finetune",
    "predict_probs",
    "pretrain",
    "train_classifier",
    "train_variant",
]


def _flip_some(x, gen):
    """Each image of the batch flipped left-right with probability 1/2."""
    flip = torch.rand(len(x), generator=gen) < 0.5
    return torch.where(flip[:, None, None, None], x.flip(-1), x)


def _index_batches(n: int, batch_size: int, gen):
    return torch.randperm(n, generator=gen).split(batch_size)


def _tensors(images, labels):
    x = torch.as_tensor(np.ascontiguousarray(images, dtype=np.float32))
    y = torch.tensor(np.asarray(labels), dtype=torch.int64)
    if x.ndim != 4 or len(x) != len(y):
        raise ValueError(f"images must be (N, C, H, W) with one label each; got {tuple(x.shape)}")
    return x, y


def _train(
    model, x, rest: Callable, loss: Callable, *, epochs, batch_size, lr, seed, progress, desc,
    precision="fp32",
):  # fmt: skip
    """The loop every trainer here shares: seeded shuffled batches ``(flipped images,
    *rest(indices))``, AdamW (weight decay 0.05) with a cosine schedule, through ``fit``."""
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)

    def batches(epoch):
        for idx in _index_batches(len(x), batch_size, gen):
            yield (_flip_some(x[idx], gen), *rest(idx))

    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.05)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    return training.fit(
        model, batches, loss, opt, epochs=epochs, scheduler=sched, progress=progress, desc=desc,
        precision=precision,
    )  # fmt: skip


def pretrain(
    clip,
    images,
    reports,
    *,
    epochs: int = 20,
    batch_size: int = 64,
    lr: float = 5e-4,
    seed: int = 0,
    progress: bool = False,
    precision: str = "fp32",
) -> training.History:
    """Contrastive pre-training on image-report pairs (each report the positive of its own
    image only, as CLIP's loss), both towers trained; ``precision``: ``PRECISION``, as in
    ``training.fit``. Chapter 01: the stand-in's stand-in for BiomedCLIP's PubMed
    pre-training."""
    if len(reports) != len(images):
        raise ValueError(f"{len(images)} images but {len(reports)} reports")
    x, _ = _tensors(images, np.zeros(len(images)))
    tokens = clip.tokenize(list(reports))

    def rest(idx):  # each report is the positive of its own image only
        return clip_mod.trim_padding(tokens[idx]), torch.arange(len(idx))

    return _train(
        clip.model, x, rest, clip_mod.contrastive_loss(), epochs=epochs,
        batch_size=batch_size, lr=lr, seed=seed, progress=progress, desc="pre-training",
        precision=precision,
    )  # fmt: skip


def finetune(
    clip,
    images,
    labels,
    prompts,
    *,
    weighted: bool = True,
    epochs: int = 10,
    batch_size: int = 64,
    lr: float = 1e-4,
    seed: int = 0,
    progress: bool = False,
    precision: str = "fp32",
) -> training.History:
    """Fine-tune both towers on (image, class prompt) pairs with the class-weighted
    contrastive loss (paper 01 §2.2; ``weighted=False``: all classes weight 1)."""
    x, y = _tensors(images, labels)
    prompt_tokens = clip.tokenize(list(prompts))
    weights = torch.as_tensor(losses.class_weights(y.numpy(), len(prompts)), dtype=torch.float32)
    loss = clip_mod.prompt_contrastive_loss(prompt_tokens, weights if weighted else None)
    return _train(
        clip.model, x, lambda idx: (y[idx],), loss, epochs=epochs, batch_size=batch_size,
        lr=lr, seed=seed, progress=progress, desc="fine-tuning",
        precision=precision,
    )  # fmt: skip


class ImageClassifier(torch.nn.Module):
    """The cross-entropy baseline: a copy of a CLIP model's image tower (its projection
    included) followed by a linear layer to ``n_classes`` logits, drawn from ``seed``
    (without a seed, from the global random state: then the head depends on what ran
    before)."""

    def __init__(self, clip, n_classes: int, seed: int | None = None):
        super().__init__()
        self.visual = copy.deepcopy(clip.model.visual)
        device = devices.model_device(self.visual)
        with torch.no_grad():
            probe = torch.zeros(1, 3, clip.image_size, clip.image_size, device=device)
            width = self.visual(probe).shape[-1]
        with torch.random.fork_rng(devices=[], enabled=seed is not None):
            if seed is not None:
                torch.manual_seed(seed)
            self.head = torch.nn.Linear(width, n_classes, device=device)

    def forward(self, images):
        return self.head(self.visual(images))


def train_classifier(
    model,
    images,
    labels,
    *,
    epochs: int = 10,
    batch_size: int = 64,
    lr: float = 1e-4,
    seed: int = 0,
    progress: bool = False,
    precision: str = "fp32",
) -> training.History:
    """Plain (unweighted) cross-entropy training of ``model`` (images -> class logits), with
    the same batches, flips, optimiser and schedule as :func:`finetune`."""
    x, y = _tensors(images, labels)
    ce = torch.nn.CrossEntropyLoss()
    return _train(
        model, x, lambda idx: (y[idx],), lambda m, b: ce(m(b[0]), b[1]), epochs=epochs,
        batch_size=batch_size, lr=lr, seed=seed, progress=progress, desc="cross-entropy",
        precision=precision,
    )  # fmt: skip


#: The trained scorers' probabilities (chapter 01 reads them from here).
predict_probs = clip_mod.predict_probs


def cached_training(
    model, name: str, settings: dict, train: Callable[[], training.History], *, cache_dir=None
) -> tuple[training.History, bool]:
    """:func:`mammo_helpers.training.cached_fit` with this module's code in the key: an edit
    of the CLIP model, the losses, the loop or this module retrains. Returns
    ``(history, hit)``."""
    code = [clip_mod, losses, sys.modules[__name__]]
    return training.cached_fit(model, name, settings, train, code=code, cache_dir=cache_dir)


#: What chapter 01 compares: the paper's class-weighted contrastive fine-tuning, the same
#: without weights, and the image tower with a linear head trained by cross-entropy.
VARIANTS = ("weighted", "unweighted", "crossentropy")


def train_variant(
    clip,
    start_state: dict,
    variant: str,
    images,
    labels,
    prompts,
    *,
    name: str,
    start: dict,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int = 0,
    cache_dir=None,
    progress: bool = False,
    launcher: str = "in-process",
    nproc: int = 1,
    precision: str = "fp32",
) -> tuple[Callable, training.History]:
    """Train one of :data:`VARIANTS` from the weights ``start_state`` (described by the
    JSON-able ``start``, e.g. the pre-training's settings, for the cache key) on ``images``
    and ``labels``, through the model cache under ``name``, in this process or in a
    ``torchrun`` job of ``nproc`` processes (``launcher``; see
    :func:`mammo_helpers.distributed.train_cached`), in ``precision`` (``PRECISION``, part
    of the cache key). Returns ``(probs, history)``:
    ``probs(images)`` gives the trained model's class probabilities (N, K). Chapter 01."""
    if variant not in VARIANTS:
        raise ValueError(f"variant {variant!r} is not one of {', '.join(VARIANTS)}")
    clip.model.load_state_dict(start_state)
    settings = dict(model=clip.config, start=start, variant=variant, epochs=epochs, lr=lr)
    settings |= dict(batch_size=batch_size, seed=seed, data=data_digest(images, labels, prompts))
    common = dict(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, progress=progress)
    common["precision"] = settings["precision"] = precision
    where = dict(launcher=launcher, nproc=nproc, cache_dir=cache_dir)
    if variant == "crossentropy":
        net = ImageClassifier(clip, len(prompts), seed=seed)
        history, _ = distributed.train_cached(
            cached_training, net, name, settings,
            lambda: train_classifier(net, images, labels, **common), **where,
        )  # fmt: skip
        return (lambda x: predict_probs(net, x)), history
    weighted = variant == "weighted"
    history, _ = distributed.train_cached(
        cached_training, clip.model, name, settings,
        lambda: finetune(clip, images, labels, prompts, weighted=weighted, **common), **where,
    )  # fmt: skip
    state = copy.deepcopy(clip.model.state_dict())

    def probs(x):
        clip.model.load_state_dict(state)
        return predict_probs(clip_mod.PromptClassifier(clip, prompts, len(prompts)), x)

    return probs, history
