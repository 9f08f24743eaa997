"""One registry of attribution methods with one call, :func:`explain` (chapter 03; paper 03,
Millan 2023, §3.2.4, compares the first seven through captum).

``explain(method, model, x, target, **params)`` returns an :class:`Explanation`: the map
(H, W) float64, the wall time of the attribution, the number of images the model forwarded
during it, the settings used and extras. Defaults are the paper's settings where it gives
them (IG 200 steps; occlusion window 60 and stride 30 at 1024 px, scaled to the image;
LIME and KernelSHAP 200 samples on 150 SLIC superpixels); the settings of each method are
documented on its ``_<method>`` function and listed in :data:`DEFAULTS`.

The model returns logits (B, K) or the project's ``(features, logits)`` pair
(:class:`mammo_helpers.models.classifiers.CropClassifier`); captum and pytorch-grad-cam get
a logits-only view (:class:`~mammo_helpers.models.classifiers.LogitsOnly`), RELAX and
CorRELAX need the pair.

Maps, channels and signs: a gradient-type method (saliency, integrated gradients,
DeepLIFT, guided Grad-CAM) gives one value per channel and pixel; the map sums them over
the channels. A perturbation method whose features span every channel of a pixel
(occlusion, LIME, KernelSHAP) gives each channel of a pixel the same value, the map is that
value (the channel mean): so on a linear model IG, DeepLIFT, occlusion (1 x 1 window) and
KernelSHAP (per segment) all give sum_c w_c x_c, whatever the number of channels. Signs are
kept as the method gives them (saliency is |gradient|, Grad-CAM is min-max scaled to
[0, 1]).

Forwards per call (images through the model, counted by :func:`count_forwards`; captum
0.9.0): saliency 1; integrated gradients ``n_steps`` (captum's own convergence delta would
add 2, so it is not asked for: :func:`explain` computes the completeness gap from two
forwards outside the count); DeepLIFT 2 (the image and the baseline in one batch); occlusion
:func:`occlusion_forwards` (one unoccluded forward plus one per window position); LIME and
KernelSHAP exactly ``n_samples`` (no extra forward for one image; KernelSHAP's first two
samples are the all-kept and all-removed coalitions, inside ``n_samples``); guided Grad-CAM
2 (Grad-CAM and guided backprop each forward once); Grad-CAM 1; RELAX ``1 + n_masks``;
CorRELAX ``n_windows * (1 + n_masks)``.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from mammo_helpers.xai import relus

__all__ = [
    "DEFAULTS",
    "METHODS",
    "PAPER_METHODS",
    "SUPERPIXEL_METHODS",
    "Explanation",
    "ForwardCount",
    "count_forwards",
    "explain",
    "explain_image",
    "occlusion_forwards",
    "paper_occlusion",
    "superpixels",
]

#: Every method :func:`explain` knows, the paper's seven first, in its order.
METHODS: tuple[str, ...] = (
    "saliency",
    "integrated_gradients",
    "occlusion",
    "guided_gradcam",
    "lime",
    "kernel_shap",
    "deeplift",
    "gradcam",
    "relax",
    "correlax",
)
#: The seven methods of paper 03 (§3.2.4), in its order.
PAPER_METHODS: tuple[str, ...] = METHODS[:7]
#: Methods that switch superpixels on and off (their ``segments`` come from the image).
SUPERPIXEL_METHODS: tuple[str, ...] = ("lime", "kernel_shap")

#: Activations through which captum's guided backprop passes the plain gradient (it only
#: overrides ``nn.ReLU``).
GUIDED_UNSUPPORTED = ("SiLU", "ReLU6", "GELU", "Hardswish")
#: Paper 03's occlusion window and stride (pixels) at its image height.
PAPER_OCCLUSION = {"window": 60, "stride": 30, "height": 1024}


@dataclass(frozen=True)
class Explanation:
    """One attribution: ``map`` (H, W) float64 (see the module docstring for channels and
    signs), ``seconds`` the wall time of the attribution alone (``time.perf_counter``),
    ``forwards`` the images forwarded through the model during it, ``params`` the settings
    used (defaults filled in; JSON-able) and ``info`` extras (numbers such as IG's
    completeness gap; arrays for RELAX's uncertainty and CorRELAX's per-window r)."""

    method: str
    map: np.ndarray = field(repr=False)
    seconds: float
    forwards: int
    params: dict
    info: dict = field(default_factory=dict)


class ForwardCount:
    """The number of images (``n``) a model forwarded inside :func:`count_forwards`."""

    def __init__(self):
        self.n = 0

    def __call__(self, module, args, output):
        batch = args[0] if args else output
        while isinstance(batch, tuple | list):
            batch = batch[0]
        self.n += int(batch.shape[0])


@contextlib.contextmanager
def count_forwards(model):
    """Count the images ``model`` forwards inside the block: a forward hook on ``model``
    adds the batch size of each call (its first positional input, else its output) to the
    yielded :class:`ForwardCount`'s ``n``; the hook is removed on leaving."""
    counter = ForwardCount()
    handle = model.register_forward_hook(counter)
    try:
        yield counter
    finally:
        handle.remove()


# ---------------------------------------------------------------- small checks


def _positive_int(value, name: str, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{where}: {name} must be a positive integer, got {value!r}")
    return int(value)


def _pair(value, name: str, where: str) -> tuple[int, int]:
    """An int or an (h, w) pair of positive ints as (h, w)."""
    pair = value if isinstance(value, tuple | list) else (value, value)
    if len(pair) != 2:
        raise ValueError(f"{where}: {name} must be an integer or (h, w), got {value!r}")
    return tuple(_positive_int(v, name, where) for v in pair)


def _seed(value, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(f"{where}: seed must be an integer, got {value!r}")
    return int(value)


def _bank(call, n_masks, cells, p, window, seed):
    """The method's :class:`~mammo_helpers.xai.relax.MaskBank`, errors naming the method."""
    from mammo_helpers.xai import relax

    try:
        return relax.MaskBank(n_masks, cells, p, window, seed=_seed(seed, call.method))
    except ValueError as exc:
        raise ValueError(f"{call.method}: {exc}") from exc


# ---------------------------------------------------------------- occlusion counts


def paper_occlusion(height: int) -> tuple[int, int]:
    """``(window, stride)`` of paper 03's occlusion (window 60, stride 30 at 1024 px)
    scaled to an image ``height``: ``max(1, round(60 h / 1024))``, ``max(1, round(30 h /
    1024))``."""
    height = _positive_int(height, "height", "paper_occlusion")
    scale = height / PAPER_OCCLUSION["height"]
    return (
        max(1, round(PAPER_OCCLUSION["window"] * scale)),
        max(1, round(PAPER_OCCLUSION["stride"] * scale)),
    )


def occlusion_forwards(hw, window, stride) -> int:
    """The images captum's ``Occlusion`` forwards on one image of size ``hw`` (H, W) with a
    ``window`` and ``stride`` (ints or (h, w)) spanning all channels: one unoccluded
    forward plus one per window position, prod over H, W of (ceil((D - w) / s) + 1)."""
    hw = _pair(hw, "hw", "occlusion_forwards")
    window = _pair(window, "window", "occlusion_forwards")
    stride = _pair(stride, "stride", "occlusion_forwards")
    if any(w > d for w, d in zip(window, hw, strict=True)):
        raise ValueError(f"occlusion_forwards: window {window} is larger than the image {hw}")
    return math.prod(-(-(d - w) // s) + 1 for d, w, s in zip(hw, window, stride, strict=True)) + 1


# ---------------------------------------------------------------- superpixels


def superpixels(image, n_segments: int = 150, compactness: float = 0.1) -> np.ndarray:
    """SLIC superpixels (``skimage.segmentation.slic`` on a grey image, ``channel_axis=None``)
    of ``image`` (H, W), labelled 0..K-1 without gaps: paper 03's LIME and KernelSHAP
    feature mask (150 segments). SLIC is deterministic (no seed). A constant image (nothing
    to segment: SLIC would return a plain grid) or fewer than 2 segments is an error."""
    from skimage.segmentation import slic

    if isinstance(n_segments, bool) or not isinstance(n_segments, int | np.integer):
        raise ValueError(f"superpixels: n_segments must be an integer >= 2, got {n_segments!r}")
    if n_segments < 2:
        raise ValueError(f"superpixels: n_segments must be an integer >= 2, got {n_segments}")
    image = np.asarray(image, dtype=float)
    if image.ndim != 2:
        raise ValueError(f"superpixels: image must be grey (H, W), got shape {image.shape}")
    if not np.isfinite(image).all():
        raise ValueError("superpixels: image has NaN or infinite values")
    if np.ptp(image) == 0:
        raise ValueError("superpixels: the image is constant, SLIC has nothing to segment")
    labels = slic(
        image,
        n_segments=int(n_segments),
        compactness=compactness,
        channel_axis=None,
        start_label=0,
    )
    _, labels = np.unique(labels, return_inverse=True)
    labels = labels.reshape(image.shape)
    if labels.max() < 1:
        raise ValueError(
            f"superpixels: SLIC gave {labels.max() + 1} segment for n_segments={n_segments}"
        )
    return labels


# ---------------------------------------------------------------- CorRELAX in context


@functools.cache
def _in_context_class():
    from torch import nn

    class _InContext(nn.Module):
        """``model`` seen through one window: ``forward(windows)`` (B, C, h, w) pastes
        each window into a copy of ``image`` (1, C, H, W) with its top-left corner at
        (``y0``, ``x0``) (the part inside the image; the corner may be negative) and returns
        the model's ``(features, logits)`` on the whole images. With ``binary`` = a class
        index of a 2-logit model, the logits become the single logit
        ``logit[binary] - logit[other]``, whose sigmoid is that class's softmax
        probability."""

        def __init__(self, model, image, y0: int, x0: int, binary: int | None = None):
            super().__init__()
            self.model, self.image = model, image
            self.y0, self.x0, self.binary = int(y0), int(x0), binary

        def forward(self, windows):
            from mammo_helpers.models.classifiers import feature_pair

            h, w = windows.shape[-2:]
            big_h, big_w = self.image.shape[-2:]
            ys, ye = max(self.y0, 0), min(self.y0 + h, big_h)
            xs, xe = max(self.x0, 0), min(self.x0 + w, big_w)
            images = self.image.expand(len(windows), -1, -1, -1).clone()
            images[:, :, ys:ye, xs:xe] = windows[
                :, :, ys - self.y0 : ye - self.y0, xs - self.x0 : xe - self.x0
            ]
            features, logits = feature_pair(self.model(images), len(windows))
            if self.binary is not None:
                logits = logits[:, [self.binary]] - logits[:, [1 - self.binary]]
            return features, logits

    _InContext.__module__, _InContext.__qualname__ = __name__, "_InContext"  # pickles by name
    return _InContext


def __getattr__(name: str):
    """The lazily built module classes, so models holding them pickle."""
    if name == "_InContext":
        return _in_context_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# ---------------------------------------------------------------- the call


@dataclass
class _Call:
    """What every method gets: the method's name (for messages), the user's ``model``, its
    logits-only ``view``, the image ``x`` (1, C, H, W), ``target``, the model's output
    ``out`` on x and its ``logits`` (1, K)."""

    method: str
    model: object
    view: object
    x: object
    target: int
    out: object
    logits: object

    @property
    def hw(self) -> tuple[int, int]:
        return tuple(self.x.shape[-2:])

    def grad_input(self):
        """A copy of x that requires gradients (captum warns otherwise)."""
        return self.x.detach().clone().requires_grad_(True)

    def require_pair(self) -> None:
        """Raise, naming the method, unless the model returns ``(features, logits)``."""
        from mammo_helpers.models.classifiers import feature_pair

        try:
            feature_pair(self.out, 1)
        except ValueError as exc:
            raise ValueError(f"{self.method} needs the (features, logits) model: {exc}") from exc


@dataclass
class _Plan:
    """A method ready to run: ``run()`` gives the attribution (timed and counted),
    ``channels`` how the map is made of it ("sum", "mean" or "none"), ``finish(attr)``
    extras computed afterwards (outside the count)."""

    run: Callable
    params: dict
    channels: str = "sum"
    info: dict = field(default_factory=dict)
    finish: Callable | None = None


def _input(x, model):
    import torch

    x = torch.as_tensor(np.asarray(x) if not torch.is_tensor(x) else x).detach()
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4 or x.shape[0] != 1:
        raise ValueError(f"explain: x must be (C, H, W) or (1, C, H, W), got {tuple(x.shape)}")
    param = next(model.parameters(), None)
    dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
    x = x.to(dtype=dtype, device=None if param is None else param.device)
    if not torch.isfinite(x).all():
        raise ValueError("explain: x has NaN or infinite values")
    return x.clone()


def _call(method, model, x, target) -> _Call:
    import torch

    from mammo_helpers.models.classifiers import LogitsOnly, feature_pair

    if model.training:
        raise ValueError("explain: the model is in training mode; call model.eval() first")
    x = _input(x, model)
    with torch.no_grad():
        out = model(x)
    pair = not torch.is_tensor(out)
    try:
        logits = feature_pair(out, 1)[1] if pair else out
    except ValueError as exc:
        raise ValueError(f"explain: the model returns neither logits nor a pair: {exc}") from exc
    if logits.ndim != 2 or logits.shape[0] != 1:
        raise ValueError(f"explain: model must return logits (1, K), got {tuple(logits.shape)}")
    k = logits.shape[1]
    if isinstance(target, bool) or not isinstance(target, int | np.integer) or not 0 <= target < k:
        raise ValueError(f"explain: target must be a class index in 0..{k - 1}, got {target!r}")
    view = LogitsOnly(model).eval() if pair else model
    return _Call(method, model, view, x, int(target), out, logits.detach())


def _target_logit(call, x) -> float:
    import torch

    with torch.no_grad():
        return float(call.view(x)[0, call.target].double())


def _completeness(call) -> Callable:
    """``finish`` giving |sum(attr) - (F(x) - F(0))| / |F(x) - F(0)| (NaN when F(x) = F(0)),
    F the target logit, from two forwards outside the count."""
    import torch

    gain = _target_logit(call, call.x) - _target_logit(call, torch.zeros_like(call.x))

    def finish(attr) -> dict:
        total = float(attr.detach().double().sum())
        gap = abs(total - gain) / abs(gain) if gain != 0 else math.nan
        return {"completeness_gap": gap, "output_gain": gain}

    return finish


def _layer(call, layer):
    """``(module, name)`` of the layer: default the last Conv2d; a name or a module of the
    model, anything else an error."""
    from mammo_helpers.xai.gradcam import last_conv_layer

    named = dict(call.model.named_modules())
    if layer is None:
        try:
            layer = last_conv_layer(call.model)
        except ValueError as exc:
            raise ValueError(f"{call.method}: {exc}") from exc
    if isinstance(layer, str):
        if layer not in named:
            raise ValueError(f"{call.method}: the model has no layer named {layer!r}")
        return named[layer], layer
    for name, module in named.items():
        if module is layer:
            return module, name
    raise ValueError(f"{call.method}: layer {type(layer).__name__} is not a module of the model")


# ---------------------------------------------------------------- the methods


def _saliency(call, abs: bool = True) -> _Plan:
    """captum ``Saliency`` with ``abs=True``: |d logit_target / d x| (vanilla saliency, as
    in the paper), summed over channels."""
    from captum.attr import Saliency

    def run():
        return Saliency(call.view).attribute(call.grad_input(), target=call.target, abs=bool(abs))

    return _Plan(run, {"abs": bool(abs)})


def _integrated_gradients(
    call, n_steps: int = 200, internal_batch_size: int = 50, method: str = "gausslegendre"
) -> _Plan:
    """captum ``IntegratedGradients`` from a zero baseline, ``n_steps=200`` (the paper's),
    ``internal_batch_size=50``, captum's default ``method`` (Gauss-Legendre). ``info``:
    ``completeness_gap`` = |sum(attr) - (F(x) - F(0))| / |F(x) - F(0)| with F the target
    logit (F(x), F(0) from two forwards outside the count and the timing; captum's own
    delta would cost 2 forwards inside them), and ``output_gain`` F(x) - F(0)."""
    import torch
    from captum.attr import IntegratedGradients

    n_steps = _positive_int(n_steps, "n_steps", call.method)
    internal_batch_size = _positive_int(internal_batch_size, "internal_batch_size", call.method)

    def run():
        return IntegratedGradients(call.view).attribute(
            call.grad_input(),
            baselines=torch.zeros_like(call.x),
            target=call.target,
            n_steps=n_steps,
            internal_batch_size=internal_batch_size,
            method=method,
        )

    params = {"n_steps": n_steps, "internal_batch_size": internal_batch_size, "method": method}
    return _Plan(run, params, finish=_completeness(call))


def _deeplift(call) -> _Plan:
    """captum ``DeepLift`` (rescale rule) from a zero baseline; :func:`~mammo_helpers.xai.
    relus.check_relus` first (``relus.untie_relus`` fixes a model that reuses its ReLUs). ``info`` holds the same
    ``completeness_gap`` as integrated gradients (DeepLIFT sums to F(x) - F(0) as well)."""
    import torch
    from captum.attr import DeepLift

    try:
        relus.check_relus(call.model, call.x)
    except ValueError as exc:
        raise ValueError(f"deeplift: {exc}") from exc

    def run():
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Setting forward, backward hooks")
            return DeepLift(call.view).attribute(
                call.grad_input(), baselines=torch.zeros_like(call.x), target=call.target
            )

    return _Plan(run, {}, finish=_completeness(call))


def _occlusion(call, window=None, stride=None, perturbations_per_eval: int = 64) -> _Plan:
    """captum ``Occlusion`` with a ``window`` x ``window`` patch of zeros over all channels
    moved by ``stride`` (ints or (h, w); default :func:`paper_occlusion` of the image
    height, the paper's 60 / 30 px at 1024 px), ``perturbations_per_eval=64``. The window
    must fit the image and the stride be at most the window (captum's rule)."""
    from captum.attr import Occlusion

    default_window, default_stride = paper_occlusion(call.hw[0])
    window = _pair(default_window if window is None else window, "window", call.method)
    stride = _pair(default_stride if stride is None else stride, "stride", call.method)
    per_eval = _positive_int(perturbations_per_eval, "perturbations_per_eval", call.method)
    if any(w > d for w, d in zip(window, call.hw, strict=True)):
        raise ValueError(f"occlusion: window {window} is larger than the image {call.hw}")
    if any(s > w for s, w in zip(stride, window, strict=True)):
        raise ValueError(f"occlusion: stride {stride} is larger than the window {window}")
    c = call.x.shape[1]

    def run():
        return Occlusion(call.view).attribute(
            call.x,
            sliding_window_shapes=(c, *window),
            strides=(c, *stride),
            baselines=0,
            target=call.target,
            perturbations_per_eval=per_eval,
        )

    params = {"window": list(window), "stride": list(stride), "perturbations_per_eval": per_eval}
    return _Plan(run, params, channels="mean")


def _segments(call, segments, n_segments, compactness):
    """The feature mask (1, C, H, W) long and its number of segments."""
    import torch

    if segments is None:
        image = call.x[0].mean(0).detach().cpu().double().numpy()
        labels = superpixels(image, n_segments, compactness)
    else:
        labels = np.asarray(segments)
        if labels.shape != call.hw:
            raise ValueError(
                f"{call.method}: segments must be shaped like the image {call.hw}, "
                f"got {labels.shape}"
            )
        _, labels = np.unique(labels, return_inverse=True)
        labels = labels.reshape(call.hw)
    mask = torch.from_numpy(labels.astype(np.int64)).to(call.x.device)
    return mask[None, None].expand_as(call.x), int(labels.max()) + 1


def _surrogate(
    call,
    cls,
    n_samples: int = 200,
    perturbations_per_eval: int = 32,
    segments=None,
    n_segments: int = 150,
    compactness: float = 0.1,
    seed: int = 0,
) -> _Plan:
    """captum ``Lime`` (default Lasso and exponential cosine similarity) or ``KernelShap``
    on ``segments`` (H, W) labels, default :func:`superpixels` of the channel mean
    (``n_segments=150`` as in the paper, ``compactness=0.1``), removed segments set to 0,
    ``n_samples=200`` (the paper's), ``perturbations_per_eval=32``; sampling seeded with
    ``seed`` (torch's generator, restored after). ``info``: ``segments`` (number used) and
    ``all_zero`` (LIME's Lasso can zero every coefficient)."""
    import sklearn.linear_model  # noqa: F401  (captum imports it on first use: not timed)
    import torch

    n_samples = _positive_int(n_samples, "n_samples", call.method)
    per_eval = _positive_int(perturbations_per_eval, "perturbations_per_eval", call.method)
    seed = _seed(seed, call.method)
    mask, count = _segments(call, segments, n_segments, compactness)

    def run():
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            return cls(call.view).attribute(
                call.x,
                target=call.target,
                n_samples=n_samples,
                perturbations_per_eval=per_eval,
                baselines=0,
                feature_mask=mask,
            )

    given = segments is not None
    params = {
        "n_samples": n_samples,
        "perturbations_per_eval": per_eval,
        "segments": "given" if given else "superpixels",
        "n_segments": None if given else int(n_segments),
        "compactness": None if given else float(compactness),
        "seed": int(seed),
    }

    def finish(attr) -> dict:
        return {"all_zero": bool((attr == 0).all())}

    return _Plan(run, params, channels="mean", info={"segments": count}, finish=finish)


def _lime(call, **params) -> _Plan:
    """LIME: see :func:`_surrogate`."""
    from captum.attr import Lime

    return _surrogate(call, Lime, **params)


def _kernel_shap(call, **params) -> _Plan:
    """KernelSHAP: see :func:`_surrogate`."""
    from captum.attr import KernelShap

    return _surrogate(call, KernelShap, **params)


def _guided_gradcam(call, layer=None) -> _Plan:
    """captum ``GuidedGradCam(model, layer)`` (default the last Conv2d). Guided backprop only
    overrides ``nn.ReLU``: a model with SiLU, ReLU6, GELU or Hardswish modules gets a
    warning that those pass the plain gradient."""
    from captum.attr import GuidedGradCam

    module, name = _layer(call, layer)
    found = sorted({type(m).__name__ for m in call.model.modules()} & set(GUIDED_UNSUPPORTED))
    if found:
        warnings.warn(
            f"guided_gradcam: captum's guided backprop only overrides nn.ReLU; the model's "
            f"{', '.join(found)} pass the plain gradient",
            stacklevel=3,
        )

    def run():
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Setting backward hooks on ReLU")
            return GuidedGradCam(call.view, module).attribute(call.grad_input(), target=call.target)

    return _Plan(run, {"layer": name})


def _gradcam(call, layer=None) -> _Plan:
    """Grad-CAM through :func:`mammo_helpers.xai.gradcam.gradcam` (pytorch-grad-cam,
    min-max scaled to [0, 1]) on ``layer`` (default the last Conv2d)."""
    import pytorch_grad_cam  # noqa: F401  (imported here, not inside the timed call)

    from mammo_helpers.xai.gradcam import gradcam

    module, name = _layer(call, layer)
    images = call.x.detach().cpu().numpy()

    def run():
        return gradcam(call.view, images, module, [call.target])

    return _Plan(run, {"layer": name}, channels="none")


def _relax(
    call, n_masks: int = 256, cells: int = 8, p: float = 0.5, seed: int = 0, batch_size: int = 64
) -> _Plan:
    """RELAX (Wickstrom et al.) of the whole image through
    :func:`mammo_helpers.xai.relax.correlax` (``relax=True``): ``n_masks=256`` masks of
    ``cells`` x ``cells`` = 8 x 8 cells, each masked with ``p=0.5``, upsampled to the image
    (H and W multiples of ``cells``), seeded by ``seed``, ``batch_size=64`` masked images
    per forward (lower it for large images). The map is the importance
    sum_k M_k S_h,k / sum_k M_k; RELAX explains the features, so ``target`` is checked but
    unused. ``info["uncertainty"]`` is RELAX's uncertainty map. Needs the
    ``(features, logits)`` model."""
    from mammo_helpers.xai import relax

    call.require_pair()
    cells = _positive_int(cells, "cells", call.method)
    batch_size = _positive_int(batch_size, "batch_size", call.method)
    if any(side % cells for side in call.hw):
        raise ValueError(
            f"relax: the image's height and width {call.hw} must be multiples of cells ({cells})"
        )
    bank = _bank(call, n_masks, cells, p, call.hw, seed)
    result = {}

    def run():
        result["r"] = relax.correlax(call.model, call.x, bank, relax=True, batch_size=batch_size)
        return result["r"].importance[0]

    def finish(attr) -> dict:
        return {"uncertainty": result["r"].uncertainty[0]}

    params = {"n_masks": bank.n, "cells": cells, "p": bank.p, "seed": bank.seed}
    params["batch_size"] = batch_size
    return _Plan(run, params, channels="none", finish=finish)


def _correlax(
    call,
    window: int = 64,
    stride: int = 32,
    n_masks: int = 64,
    cells: int = 8,
    p: float = 0.5,
    seed: int = 0,
    batch_size: int = 64,
    breast=None,
) -> _Plan:
    """CorRELAX in context, an adaptation of paper 02's CorRELAX to whole images: windows
    of ``window=64`` px every ``stride=32`` px (``mh.xai.windows.window_grid`` on
    ``breast``, default the whole image); at each window the ``n_masks=64`` masks
    (``cells=8``, ``p=0.5``, ``seed=0``) are applied inside that window only, the rest of
    the image intact, and the whole image is forwarded (:func:`_in_context_class`); the
    window's value is r = Pearson(S_h, y_target) with S_h the cosine similarity of the
    whole image's features masked vs unmasked and y_target the target's probability
    (sigmoid of its logit; for a 2-logit model the softmax probability, through the single
    logit ``logit_target - logit_other``). Window values become the map through
    ``maps_from_windows`` (IoU kernel). ``info``: ``r`` per window, ``centres``,
    ``undefined`` (r set to 0). Needs the ``(features, logits)`` model; ``batch_size=64``
    whole images per forward (lower it for large images)."""
    from mammo_helpers.xai import relax
    from mammo_helpers.xai import windows as win

    call.require_pair()
    try:
        window, stride = win.check_window(window, stride)
    except ValueError as exc:
        raise ValueError(f"correlax: {exc}") from exc
    batch_size = _positive_int(batch_size, "batch_size", call.method)
    given = breast is not None
    breast = np.asarray(breast, dtype=bool) if given else np.ones(call.hw, bool)
    if breast.shape != call.hw:
        raise ValueError(f"correlax: breast must be shaped {call.hw}, got {breast.shape}")
    grid = win.window_grid(breast, window, stride, name="correlax's image")
    bank = _bank(call, n_masks, cells, p, window, seed)
    binary = call.target if call.logits.shape[1] == 2 else None
    image = call.x.detach()
    padded = win.pad_roi(np.moveaxis(image[0].cpu().numpy(), 0, -1), window)
    cuts = np.moveaxis(win.extract_windows(padded, grid), -1, 1)
    half, cls = window // 2, _in_context_class()
    info: dict = {"centres": grid.centres}

    def run():
        import torch

        r, undefined = [], []
        for (y, x), cut in zip(grid.centres, cuts, strict=True):
            wrapper = cls(call.model, image, y - half, x - half, binary)
            windows = torch.from_numpy(np.ascontiguousarray(cut))[None].to(image)
            res = relax.correlax(wrapper, windows, bank, labels=(), batch_size=batch_size)
            column = 0 if binary is not None else call.target
            r.append(res.r_label[0, column])
            undefined.append(bool(res.undefined_label[0, column]))
        info.update(r=np.array(r), undefined=int(sum(undefined)))
        return win.maps_from_windows(info["r"], grid)

    params = {"window": window, "stride": stride, "n_masks": bank.n, "cells": bank.cells}
    params |= {"p": bank.p, "seed": bank.seed, "batch_size": batch_size}
    params["breast"] = "given" if given else "all"
    return _Plan(run, params, channels="none", info=info)


_PLANS = {
    "saliency": _saliency,
    "integrated_gradients": _integrated_gradients,
    "occlusion": _occlusion,
    "guided_gradcam": _guided_gradcam,
    "lime": _lime,
    "kernel_shap": _kernel_shap,
    "deeplift": _deeplift,
    "gradcam": _gradcam,
    "relax": _relax,
    "correlax": _correlax,
}
#: Each method's settings and their defaults (None: computed from the image).
DEFAULTS: dict[str, dict] = {}


def _accepted(method: str) -> dict:
    plan = _PLANS[method]
    if method in ("lime", "kernel_shap"):
        plan = _surrogate
    skip = {"call", "cls", "params"}
    return {
        name: p.default
        for name, p in inspect.signature(plan).parameters.items()
        if name not in skip
    }


def _to_map(attr, channels: str, hw, method: str) -> np.ndarray:
    import torch

    a = attr.detach().cpu().double().numpy() if torch.is_tensor(attr) else np.asarray(attr, float)
    a = a[0] if a.ndim == 4 or (a.ndim == 3 and channels == "none") else a
    if channels == "sum":
        a = a.sum(0)
    elif channels == "mean":
        a = a.mean(0)
    a = np.asarray(a, dtype=np.float64)
    if a.shape != tuple(hw):
        raise ValueError(f"{method}: the map is shaped {a.shape}, not like the image {hw}")
    if not np.isfinite(a).all():
        raise ValueError(f"{method}: the map has NaN or infinite values")
    return a


def explain(method: str, model, x, target: int, **params) -> Explanation:
    """The ``method`` (one of :data:`METHODS`) attribution map of ``model`` (eval mode;
    logits or ``(features, logits)``) on ``x`` ((C, H, W) or (1, C, H, W), tensor or array)
    for class ``target``, with the method's ``params`` (defaults: :data:`DEFAULTS`, paper 03's
    settings, documented on each ``_<method>`` function). Only the attribution itself is
    timed and counted; checks, the completeness forwards and map making are not. The first
    call of a method in a process also pays one-off costs (autograd and hook set-up, about
    0.1-0.4 s on CPU): time a second call when comparing methods."""
    if method not in _PLANS:
        raise ValueError(f"explain: unknown method {method!r}; use one of {', '.join(METHODS)}")
    unknown = sorted(set(params) - set(DEFAULTS[method]))
    if unknown:
        raise ValueError(
            f"explain: {method} has no parameter {', '.join(unknown)}; "
            f"its parameters: {', '.join(DEFAULTS[method]) or 'none'}"
        )
    call = _call(method, model, x, target)
    plan = _PLANS[method](call, **params)
    with count_forwards(model) as counter:
        start = time.perf_counter()
        attr = plan.run()
        seconds = time.perf_counter() - start
    info = dict(plan.info)
    if plan.finish is not None:
        info.update(plan.finish(attr))
    saliency_map = _to_map(attr, plan.channels, call.hw, method)
    return Explanation(method, saliency_map, seconds, counter.n, plan.params, info)


DEFAULTS.update({method: _accepted(method) for method in METHODS})


def explain_image(payload, *, model, methods, params, n_segments: int, target: int = 1) -> dict:
    """Every method's explanation of one image, as one per-image task (``mh.tasks.run_tasks``
    runs it serially or on a Dask cluster): ``payload`` is ``(image (C, H, W) float32, grey
    (H, W) in [0, 1])``; the superpixel methods get :func:`superpixels` of the grey image.
    Returns ``{method: (map float32, seconds, forwards, info)}``, ``info`` reduced to plain
    numbers. Chapter 03."""
    import torch

    image, grey = payload
    x = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))[None]
    segments = None
    if any(m in SUPERPIXEL_METHODS for m in methods):
        segments = superpixels(grey, n_segments)
    out = {}
    for method in methods:
        extra = {"segments": segments} if method in SUPERPIXEL_METHODS else {}
        e = explain(method, model, x, target, **params.get(method, {}), **extra)
        info = {k: v for k, v in e.info.items() if isinstance(v, bool | int | float)}
        out[method] = (e.map.astype(np.float32), e.seconds, e.forwards, info)
    return out
