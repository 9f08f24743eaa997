"""BiomedCLIP and its offline stand-in, behind one loader (chapter 01; later CLIP chapters).

``load_clip(spec)`` takes one string, the ``CLIP_MODEL`` parameter:

* ``"hf-hub:microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224"`` (:data:`BIOMEDCLIP`):
  the real weights through open_clip, on a machine that reaches the Hugging Face hub.
  Where the hub is unreachable (or ``HF_HUB_OFFLINE`` is set) it fails at once, naming the
  offline choices, instead of waiting on network timeouts.
* ``"local-dir:/path/to/folder"``: a folder in BiomedCLIP's layout (``open_clip_config.json``,
  ``open_clip_model.safetensors`` or ``open_clip_pytorch_model.bin``, the text tower's
  BERT ``config.json``, ``vocab.txt``, ``tokenizer_config.json``). It is only read. The
  config's ``hf_model_name`` / ``hf_tokenizer_name`` are hub ids in the real download;
  they are resolved to the folder itself, so nothing is fetched.
* ``"standin"``: a BiomedCLIP-shaped model built here, untrained: a timm ViT image tower
  with a linear projection and CLS pooling, and a small BERT text tower with a
  vocabulary built from the given texts (``vocab.txt``), an MLP projection and a context
  of 256 tokens; its text tower averages the tokens where BiomedCLIP reads the CLS token
  (see :func:`standin_config`). :func:`save_local_dir` writes any loaded model
  in the ``local-dir:`` layout, so a trained stand-in loads back like the real weights.
"""

from __future__ import annotations

import collections
import json
import os
import re
import socket
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from mammo_helpers.paths import atomic_directory
from mammo_helpers.preprocess.pipelines import CLIP_NORMALISATION

__all__ = [
    "BIOMEDCLIP",
    "STANDIN",
    "Clip",
    "ClipLoadError",
    "build_vocab",
    "check_image_size",
    "contrastive_loss",
    "hub_reachable",
    "load_clip",
    "PromptClassifier",
    "prompt_contrastive_loss",
    "predict_probs",
    "prompt_embeddings",
    "save_local_dir",
    "standin_config",
    "trim_padding",
    "zero_shot_probs",
]

BIOMEDCLIP = "hf-hub:microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224"
STANDIN = "standin"
CONFIG_FILE = "open_clip_config.json"
WEIGHTS_FILES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")
TEXT_FILES = ("config.json", "vocab.txt")
CLIP_MEAN = tuple(CLIP_NORMALISATION["mean"])
CLIP_STD = tuple(CLIP_NORMALISATION["std"])
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
_OFFLINE_CHOICES = (
    "offline choices: 'local-dir:/path/to/folder' (BiomedCLIP's files: open_clip_config.json, "
    "open_clip_pytorch_model.bin, vocab.txt, tokenizer_config.json and the BERT config.json of "
    "its text tower) or 'standin' (a BiomedCLIP-shaped model built and trained here)"
)


class ClipLoadError(RuntimeError):
    """A CLIP model could not be loaded; the message names the spec and the way out."""


@dataclass
class Clip:
    """An open_clip model with its tokenizer and image normalisation."""

    model: Any
    tokenizer: Any
    image_size: int
    source: str
    mean: tuple[float, ...] = CLIP_MEAN
    std: tuple[float, ...] = CLIP_STD
    config: dict = field(default_factory=dict, repr=False)

    def tokenize(self, texts: list[str]):
        """Token ids (N, L) of ``texts``, cut after the last column that is not padding
        (the text tower masks padding, so its output is the same; a batch of 30-token
        reports then costs 30 positions, not the context's 256)."""
        pad = getattr(getattr(self.tokenizer, "tokenizer", None), "pad_token_id", None)
        return trim_padding(self.tokenizer(list(texts)), 0 if pad is None else pad)

    def describe(self) -> str:
        n = sum(p.numel() for p in self.model.parameters())
        return f"{self.source}: {n / 1e6:.1f} M weights, images {self.image_size} px"


def trim_padding(tokens, pad_id: int = 0):
    """``tokens`` (N, L) without the trailing columns that are padding in every row."""
    used = (tokens != pad_id).any(dim=0).nonzero()
    return tokens[:, : int(used.max()) + 1 if len(used) else 1]


# --------------------------------------------------------------------------- stand-in
def standin_config(
    *,
    vision: str = "vit_tiny_patch16_224",
    image_size: int = 224,
    embed_dim: int = 512,
    text_width: int = 128,
    text_layers: int = 2,
    text_heads: int = 2,
    context_length: int = 256,
    text_pooler: str = "mean_pooler",
) -> dict:
    """The stand-in's open_clip ``model_cfg``: BiomedCLIP's config with smaller towers.

    One departure: the text tower averages its tokens (``"mean_pooler"``) instead of
    reading the CLS token (BiomedCLIP's ``"cls_last_hidden_state_pooler"``, still available
    by ``text_pooler``). A pre-trained BERT's CLS token summarises the sentence; a randomly
    initialised one barely sees the other tokens, and contrastive training from scratch
    then collapses both towers to one embedding. On a two-prompt toy task (two brightness
    classes, batch 16, AdamW 1e-3, 20 epochs) zero-shot accuracy was 1.0 for 5 of 5 seeds
    with mean pooling and 0.5 (chance) for 5 of 5 with the CLS token (2026-12-06)."""
    return {
        "embed_dim": embed_dim,
        "vision_cfg": {
            "timm_model_name": vision,
            "timm_model_pretrained": False,
            "timm_pool": "",
            "timm_proj": "linear",
            "image_size": image_size,
        },
        "text_cfg": {
            "hf_model_name": ".",
            "hf_tokenizer_name": ".",
            "hf_proj_type": "mlp",
            "hf_pooler_type": text_pooler,
            "context_length": context_length,
        },
        "text_tower": {
            "hidden_size": text_width,
            "num_hidden_layers": text_layers,
            "num_attention_heads": text_heads,
            "intermediate_size": 4 * text_width,
        },
    }


def build_vocab(texts, *, min_count: int = 1) -> list[str]:
    """A WordPiece vocabulary for BERT's lower-case tokenizer: the special tokens, the
    lower-case letters, digits and punctuation of ASCII and every other character seen
    (alone and as a ``##`` continuation), and every word seen ``min_count`` times; so any
    ASCII text tokenizes without ``[UNK]``, known words as one token."""
    words = collections.Counter()
    for text in texts:
        words.update(re.findall(r"\w+|[^\w\s]", str(text).lower()))
    ascii_chars = string.ascii_lowercase + string.digits + string.punctuation
    chars = sorted({c for w in words for c in w} | set(ascii_chars))
    kept = sorted(w for w, n in words.items() if n >= min_count and len(w) > 1)
    return [*SPECIAL_TOKENS, *chars, *(f"##{c}" for c in chars), *kept]


def _write_text_tower(folder: Path, tower: dict, vocab: list[str], context_length: int) -> None:
    """BERT ``config.json``, ``vocab.txt`` and ``tokenizer_config.json`` in ``folder``."""
    from transformers import BertConfig

    config = BertConfig(
        vocab_size=len(vocab), max_position_embeddings=context_length, pad_token_id=0, **tower
    )
    config.save_pretrained(folder)
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tokenizer = {"tokenizer_class": "BertTokenizer", "do_lower_case": True}
    tokenizer["model_max_length"] = context_length
    (folder / "tokenizer_config.json").write_text(json.dumps(tokenizer, indent=2))


def _build(model_cfg: dict, folder: Path):
    """An open_clip ``CustomTextCLIP`` from ``model_cfg`` with its text tower in ``folder``."""
    from open_clip.model import CustomTextCLIP

    cfg = json.loads(json.dumps({k: v for k, v in model_cfg.items() if k != "text_tower"}))
    cfg["text_cfg"]["hf_model_name"] = str(folder.resolve())
    cfg["text_cfg"]["hf_tokenizer_name"] = str(folder.resolve())
    cfg["text_cfg"]["hf_model_pretrained"] = False
    model = CustomTextCLIP(**cfg)
    # open_clip does not pass image_size to timm: size the ViT's patch grid here
    model.visual.set_input_size(cfg["vision_cfg"].get("image_size", 224))
    return model


def _tokenizer(folder: Path, context_length: int):
    from open_clip.tokenizer import HFTokenizer

    return HFTokenizer(str(folder.resolve()), context_length=context_length)


def _standin(folder: Path, texts, seed: int, options: dict) -> Clip:
    if texts is None:
        raise ClipLoadError("'standin' needs texts (the report corpus) to build its vocabulary")
    cfg = standin_config(**options)
    folder.mkdir(parents=True, exist_ok=True)
    context = cfg["text_cfg"]["context_length"]
    _write_text_tower(folder, cfg["text_tower"], build_vocab(texts), context)
    torch.manual_seed(seed)
    model = _build(cfg, folder)
    return Clip(
        model, _tokenizer(folder, context), cfg["vision_cfg"]["image_size"], STANDIN, config=cfg
    )


# --------------------------------------------------------------------------- loading
def hub_reachable(host: str = "huggingface.co", timeout: float = 3.0) -> bool:
    """Whether the Hugging Face hub answers (False at once where ``HF_HUB_OFFLINE`` is set)."""
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
        return False
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
    except OSError:
        return False
    return True


def _from_hub(spec: str) -> Clip:
    import open_clip

    if not hub_reachable():
        raise ClipLoadError(
            f"{spec}: the Hugging Face hub is not reachable here; {_OFFLINE_CHOICES}"
        )
    model, preprocess = open_clip.create_model_from_pretrained(spec)
    size = model.visual.image_size
    return Clip(model, open_clip.get_tokenizer(spec), int(size[0]), spec)


def _check_local_dir(folder: Path, spec: str) -> None:
    if not folder.is_dir():
        raise ClipLoadError(f"{spec}: folder {folder} not found; {_OFFLINE_CHOICES}")
    missing = [name for name in (CONFIG_FILE, *TEXT_FILES) if not (folder / name).is_file()]
    if not any((folder / name).is_file() for name in WEIGHTS_FILES):
        missing.append(" or ".join(WEIGHTS_FILES))
    if missing:
        raise ClipLoadError(
            f"{spec}: {folder} lacks {', '.join(missing)} (BiomedCLIP's layout; config.json is "
            "the BERT config of the text tower, from microsoft/BiomedNLP-BiomedBERT-base-"
            "uncased-abstract for the real weights)"
        )


def _from_local_dir(spec: str) -> Clip:
    import open_clip

    folder = Path(spec.removeprefix("local-dir:")).expanduser()
    _check_local_dir(folder, spec)
    try:
        doc = json.loads((folder / CONFIG_FILE).read_text())
        cfg = doc["model_cfg"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ClipLoadError(
            f"{spec}: {folder / CONFIG_FILE} is not an open_clip config ({exc})"
        ) from None
    model = _build(cfg, folder)
    weights = next(folder / n for n in WEIGHTS_FILES if (folder / n).is_file())
    open_clip.load_checkpoint(model, str(weights), strict=True)
    pre = doc.get("preprocess_cfg", {})
    size = cfg["vision_cfg"].get("image_size", 224)
    context = cfg["text_cfg"].get("context_length", 256)
    return Clip(
        model.eval(),
        _tokenizer(folder, context),
        int(size if isinstance(size, int) else size[0]),
        spec,
        tuple(pre.get("mean", CLIP_MEAN)),
        tuple(pre.get("std", CLIP_STD)),
        config=cfg,
    )


def load_clip(spec: str, *, texts=None, folder=None, seed: int = 0, **standin_options) -> Clip:
    """The model named by ``spec`` (see the module docstring). For ``"standin"``, ``texts``
    build its vocabulary, ``folder`` receives its text-tower files and ``standin_options``
    go to :func:`standin_config`. Chapter 01."""
    if not isinstance(spec, str) or not spec.strip():
        raise ClipLoadError(
            f"CLIP_MODEL must be a non-empty string, got {spec!r}; {_OFFLINE_CHOICES}"
        )
    spec = spec.strip()
    if spec.startswith("hf-hub:"):
        return _from_hub(spec)
    if spec.startswith("local-dir:"):
        return _from_local_dir(spec)
    if spec == STANDIN:
        if folder is None:
            raise ClipLoadError("'standin' needs a folder for its text-tower files")
        return _standin(Path(folder), texts, seed, standin_options)
    raise ClipLoadError(f"CLIP_MODEL {spec!r} is not 'hf-hub:...', 'local-dir:...' or 'standin'")


def save_local_dir(clip: Clip, folder) -> Path:
    """Write ``clip`` in BiomedCLIP's ``local-dir:`` layout, atomically; returns the folder."""
    from safetensors.torch import save_file

    if not clip.config:
        raise ValueError(f"{clip.source}: no open_clip config kept with this model to save")
    source = Path(clip.tokenizer.tokenizer.name_or_path)
    with atomic_directory(folder) as tmp:
        for name in (*TEXT_FILES, "tokenizer_config.json"):
            if (source / name).is_file():
                (tmp / name).write_bytes((source / name).read_bytes())
        cfg = {k: v for k, v in clip.config.items() if k != "text_tower"}
        doc = {"model_cfg": cfg, "preprocess_cfg": {"mean": list(clip.mean), "std": list(clip.std)}}
        (tmp / CONFIG_FILE).write_text(json.dumps(doc, indent=2))
        state = {k: v.contiguous() for k, v in clip.model.state_dict().items()}
        save_file(state, str(tmp / WEIGHTS_FILES[0]))
    return Path(folder)


def check_image_size(clip: Clip, size) -> int:
    """``size`` (the chapter's ``IMAGE_SIZE``) if the image tower takes images of that side;
    otherwise a ``ValueError`` naming both (BiomedCLIP's ViT-B/16 takes 224 px)."""
    if isinstance(size, bool) or not isinstance(size, int | np.integer) or size < 1:
        raise ValueError(f"IMAGE_SIZE must be a positive integer, got {size!r}")
    if int(size) != int(clip.image_size):
        raise ValueError(
            f"IMAGE_SIZE is {size} but the image tower of {clip.source} takes "
            f"{clip.image_size} x {clip.image_size} px images: set IMAGE_SIZE {clip.image_size}"
        )
    return int(size)


# --------------------------------------------------------------------------- zero-shot
def _check_prompts(prompts, n_classes: int | None) -> list[str]:
    if isinstance(prompts, str) or not all(isinstance(p, str) and p.strip() for p in prompts):
        raise ValueError(f"prompts must be a list of non-empty strings, got {prompts!r}")
    prompts = list(prompts)
    if n_classes is not None and len(prompts) != n_classes:
        raise ValueError(f"{len(prompts)} prompts given for {n_classes} classes: {prompts}")
    return prompts


def prompt_embeddings(clip: Clip, prompts, n_classes: int | None = None):
    """The normalised text embeddings of ``prompts`` (one per class), shape (K, d), from
    the text tower in eval mode (no dropout), whatever mode the model is in; the model's
    mode is left as it was. On the model's device."""
    from mammo_helpers import devices

    prompts = _check_prompts(prompts, n_classes)
    tokens = clip.tokenize(prompts).to(devices.model_device(clip.model))
    was_training = clip.model.training
    clip.model.eval()
    try:
        with torch.no_grad():
            return F.normalize(clip.model.encode_text(tokens), dim=-1)
    finally:
        clip.model.train(was_training)


class PromptClassifier(torch.nn.Module):
    """The image tower scored against fixed prompts: ``logits = exp(logit_scale) *
    cos(image, prompt_k)``, (N, K) class scores from images (N, 3, H, W); the prompts'
    embeddings are computed once. Chapter 01: zero-shot classification with the paper's
    four prompts, and the model that Grad-CAM explains per density class."""

    def __init__(self, clip: Clip, prompts, n_classes: int | None = None):
        super().__init__()
        self.clip = clip.model
        self.register_buffer("text", prompt_embeddings(clip, prompts, n_classes))

    def forward(self, images):
        image = F.normalize(self.clip.encode_image(images), dim=-1)
        return self.clip.logit_scale.exp() * image @ self.text.T


def predict_probs(scorer, images, *, batch_size: int = 128) -> np.ndarray:
    """Softmax of ``scorer(images)`` (a module giving class logits, e.g.
    :class:`PromptClassifier`), in batches, in inference mode, on the scorer's device.
    Chapter 01."""
    from mammo_helpers import devices

    out = devices.predict_batches(
        scorer, images, lambda m, b: m(b).softmax(-1), batch_size=batch_size
    )
    if out is None:
        raise ValueError("predict_probs: no images")
    return out


def zero_shot_probs(clip: Clip, images, prompts, *, n_classes=None, batch_size: int = 64):
    """Class probabilities (N, K): the softmax of :class:`PromptClassifier`'s logits, in
    batches, without gradients, on the model's device. Chapter 01."""
    return predict_probs(PromptClassifier(clip, prompts, n_classes), images, batch_size=batch_size)


# --------------------------------------------------------------------------- training
def contrastive_loss(weights=None):
    """A ``loss(model, batch)`` for :func:`mammo_helpers.training.fit`: ``batch`` =
    (images, tokens, labels), both towers encoded and scored by the class-weighted
    contrastive loss with the model's temperature (``weights``: one per class, e.g.
    :func:`mammo_helpers.models.losses.class_weights`). Under ``torchrun`` every rank
    scores the global batch (:func:`mammo_helpers.distributed.gather_batch`), as one
    process would. Chapter 01's pre-training (tokens of the reports) and fine-tuning
    (tokens of each image's class prompt)."""
    from mammo_helpers import distributed
    from mammo_helpers.models.losses import weighted_contrastive_loss

    def loss(model, batch):
        images, tokens, labels = batch
        image, text, scale = model(images, tokens)[:3]  # forward: DDP-safe
        image, text, labels = distributed.gather_batch(image, text, labels)
        return weighted_contrastive_loss(image, text, labels, scale, weights)

    return loss


def prompt_contrastive_loss(prompt_tokens, weights=None):
    """A ``loss(model, batch)`` for fine-tuning on class prompts: ``batch`` = (images,
    labels); each image's text is its class prompt. The same value and gradients as
    :func:`contrastive_loss` with ``tokens = prompt_tokens[labels]``, but the text tower
    encodes the K prompts once per batch instead of one copy per image; under ``torchrun``
    the global batch, as :func:`contrastive_loss`. Chapter 01."""
    from mammo_helpers import distributed
    from mammo_helpers.models.losses import weighted_contrastive_loss

    def loss(model, batch):
        images, labels = batch
        image, prompts, scale = model(images, prompt_tokens.to(images.device))[:3]
        image, labels = distributed.gather_batch(image, labels)
        return weighted_contrastive_loss(image, prompts[labels], labels, scale, weights)

    return loss
