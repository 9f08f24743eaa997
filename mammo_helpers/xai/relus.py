"""Can captum's DeepLIFT run on a model? Its rescale rule hooks activation modules by exact
type, so each must run out of place and be called once per forward pass; torchvision's
ResNet blocks call one ``self.relu`` twice. :func:`check_relus` names the modules that break
this, :func:`untie_relus` returns a copy that computes the same function with one module
per call. Chapter 03 (``mh.xai.attribution``'s ``deeplift`` runs the check first).
"""

from __future__ import annotations

import functools

__all__ = ["DEEPLIFT_NONLINEAR", "check_relus", "untie_relus"]

#: The modules captum's DeepLIFT (0.9.0, ``deep_lift.SUPPORTED_NON_LINEAR``) hooks by exact
#: type: each must be called once per forward and out of place.
DEEPLIFT_NONLINEAR = (
    "ReLU",
    "ELU",
    "LeakyReLU",
    "Sigmoid",
    "Tanh",
    "Softplus",
    "MaxPool1d",
    "MaxPool2d",
    "MaxPool3d",
    "Softmax",
)


@functools.cache
def _nonlinear_types() -> frozenset:
    from torch import nn

    return frozenset(getattr(nn, name) for name in DEEPLIFT_NONLINEAR)


def _nonlinear(module) -> bool:
    """Whether captum's DeepLIFT hooks ``module`` (it matches the exact type)."""
    return type(module) in _nonlinear_types()


def _example(model, example):
    """``example`` as a batch, or zeros (1, C, 64, 64) with C the first convolution's."""
    import torch
    from torch import nn

    if example is not None:
        x = torch.as_tensor(example)
        return x[None] if x.ndim == 3 else x
    conv = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    if conv is None:
        raise ValueError(f"{type(model).__name__} has no Conv2d to size an example: pass one")
    return torch.zeros(1, conv.in_channels, 64, 64).to(conv.weight)


def _call_counts(model, example) -> dict[int, int]:
    """Calls of each DeepLIFT non-linear module (by id) in one eval forward of ``example``
    without gradients (the model's mode is restored)."""
    import torch

    counts: dict[int, int] = {}

    def hook(module, args, output):
        counts[id(module)] = counts.get(id(module), 0) + 1

    handles = [m.register_forward_hook(hook) for m in model.modules() if _nonlinear(m)]
    was_training = model.training
    try:
        with torch.no_grad():
            model.eval()(_example(model, example))
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return counts


def check_relus(model, example=None) -> None:
    """Raise ValueError unless captum's DeepLIFT can run on ``model``: every ReLU (and
    every other module type DeepLIFT hooks, :data:`DEEPLIFT_NONLINEAR`) out of place and
    called at most once in one forward pass of ``example`` (default zeros (1, C, 64, 64));
    the message names the modules and points to :func:`untie_relus`. Calls that do not go
    through a registered module (``F.relu``) are invisible here and to captum alike, which
    then treats them as linear."""
    names = {id(m): name or type(m).__name__ for name, m in model.named_modules()}
    problems = []
    inplace = [names[id(m)] for m in model.modules() if _nonlinear(m) and getattr(m, "inplace", 0)]
    if inplace:
        problems.append(f"{', '.join(inplace)} run in place (inplace=True)")
    reused = {names[k]: n for k, n in _call_counts(model, example).items() if n > 1}
    if reused:
        listed = ", ".join(f"{name} ({n} calls)" for name, n in reused.items())
        problems.append(f"{listed} used more than once in one forward pass")
    if problems:
        raise ValueError(
            f"check_relus: {'; '.join(problems)}. DeepLIFT needs out-of-place activations, "
            "one module per call: use untie_relus(model)"
        )


@functools.cache
def _untied_class():
    from torch import nn

    class _Untied(nn.Module):
        """A module its parent calls ``len(copies)`` times per forward, as that many
        copies: call i of a forward of the model goes to ``copies[i]`` (the counter is
        reset by a pre-hook on the model, and cycles)."""

        def __init__(self, module, calls: int):
            super().__init__()
            import copy

            self.copies = nn.ModuleList(copy.deepcopy(module) for _ in range(calls))
            self.calls = 0

        def forward(self, *args, **kwargs):
            index = self.calls % len(self.copies)
            self.calls += 1
            return self.copies[index](*args, **kwargs)

    _Untied.__module__, _Untied.__qualname__ = __name__, "_Untied"  # pickles by name
    return _Untied


def _reset_untied(model, args) -> None:
    untied = _untied_class()
    for module in model.modules():
        if isinstance(module, untied):
            module.calls = 0


def _replace_children(model, replace) -> int:
    """Set each child ``c`` of every module to ``replace(c)`` where that is not None;
    the number replaced."""
    done = 0
    for parent in list(model.modules()):
        for name, child in list(parent._modules.items()):
            new = None if child is None else replace(child)
            if new is not None:
                parent._modules[name] = new
                done += 1
    return done


def untie_relus(model, example=None):
    """A deep copy of ``model`` on which captum's DeepLIFT runs (:func:`check_relus` passes
    on ``example``, default zeros (1, C, 64, 64)): every ReLU (and other module type of
    :data:`DEEPLIFT_NONLINEAR`) out of place, a module registered at several places copied
    to each, and a module called k > 1 times per forward (torchvision's ResNet blocks call
    ``self.relu`` twice) replaced by k copies taken in turn (these modules hold no weights:
    the state dict is unchanged). The copy computes the same function; ``model`` is left
    alone. A reuse still found afterwards is an error naming the module; calls that do not
    go through a registered module (``F.relu``) cannot be seen, as in :func:`check_relus`."""
    import copy

    untied = copy.deepcopy(model)
    for module in untied.modules():
        if _nonlinear(module) and getattr(module, "inplace", False):
            module.inplace = False
    seen: set[int] = set()

    def fresh_copy(child):
        if not _nonlinear(child):
            return None
        if id(child) in seen:
            return copy.deepcopy(child)
        seen.add(id(child))
        return None

    _replace_children(untied, fresh_copy)
    counts = _call_counts(untied, example)
    cls = _untied_class()

    def split(child):
        calls = counts.get(id(child), 0)
        return cls(child, calls) if _nonlinear(child) and calls > 1 else None

    if _replace_children(untied, split):
        untied.register_forward_pre_hook(_reset_untied)
    try:
        check_relus(untied, example)
    except ValueError as exc:
        raise ValueError(f"untie_relus: could not untie every module: {exc}") from exc
    return untied


def __getattr__(name: str):
    """The lazily built module class, so models holding it pickle."""
    if name == "_Untied":
        return _untied_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
