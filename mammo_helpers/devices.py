"""Where a chapter computes, and how: the ``DEVICE``, ``PRECISION`` and ``NUM_WORKERS``
parameters, resolved once per chapter (00-05) and by the paper-scale launchers.

    device = mh.devices.resolve_device(DEVICE)                  # auto, cpu, cuda, cuda:N, mps
    precision = mh.devices.resolve_precision(PRECISION, device) # auto, fp32, bf16, fp16
    model = mh.devices.prepare_model(model, device)             # channels_last for conv nets
    loader = DataLoader(dataset, **mh.devices.loader_options(device, NUM_WORKERS))
    mh.training.fit(..., precision=precision)                   # autocast + grad scaler
    p = mh.devices.predict_batches(model, x, step, batch_size=256)  # NumPy in, NumPy out

Models compute where their weights are: ``fit`` moves every batch, and the package's
predict helpers move every input, to :func:`model_device`; their results come back to the
CPU as NumPy arrays. Asking for a device or a precision the machine does not have fails at
once, naming what it does have.
"""

from __future__ import annotations

import contextlib
import itertools
import numbers
import os

__all__ = [
    "DEVICES",
    "PRECISIONS",
    "autocast",
    "grad_scaler",
    "loader_options",
    "model_device",
    "predict_batches",
    "prepare_model",
    "resolve_device",
    "resolve_precision",
    "to_device",
    "to_numpy",
    "torch_threads",
]

DEVICES = ("auto", "cpu", "cuda", "cuda:N", "mps")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
_DTYPES = {"bf16": "bfloat16", "fp16": "float16"}
#: Loader workers on a GPU machine when NUM_WORKERS is not given (capped by the cores).
GPU_LOADER_WORKERS = 8


def resolve_device(device: str = "auto"):
    """``torch.device`` for the ``DEVICE`` parameter: 'auto', 'cpu', 'cuda', 'cuda:N', 'mps'.

    'auto' takes a CUDA GPU if there is one, else Apple's MPS, else the CPU. Asking for a
    device the machine does not have fails at once, naming what it does have.
    """
    import torch

    if not isinstance(device, str):
        raise ValueError(f"DEVICE must be one of {', '.join(DEVICES)}; got {device!r}")
    text = device.strip().lower()
    has_mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if text == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if has_mps else "cpu")
    if text == "cpu":
        return torch.device("cpu")
    if text == "mps":
        if not has_mps:
            raise RuntimeError(f"DEVICE 'mps' is not available here; {_available()}")
        return torch.device("mps")
    if text == "cuda" or text.startswith("cuda:"):
        index = text.partition(":")[2]
        if index and not index.isdigit():
            raise ValueError(f"DEVICE {device!r}: the GPU index must be a number (cuda:0)")
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0 or (index and int(index) >= count):
            raise RuntimeError(f"DEVICE {device!r} is not available here; {_available()}")
        return torch.device(text)
    raise ValueError(f"DEVICE must be one of {', '.join(DEVICES)}; got {device!r}")


def _available() -> str:
    import torch

    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    choices = ["cpu", "auto"] + [f"cuda:{i}" for i in range(gpus)]
    return f"this machine offers {', '.join(choices)}"


def _bf16_on_cuda() -> bool:
    import torch

    return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())


def resolve_precision(precision: str, device) -> str:
    """'fp32', 'bf16' or 'fp16' for the ``PRECISION`` parameter on ``device``.

    'auto' is bf16 on a GPU that has it, fp16 (with a gradient scaler) on older GPUs and
    fp32 on the CPU and MPS, where mixed precision rarely pays. fp16 needs CUDA.
    """
    text = precision.strip().lower() if isinstance(precision, str) else None
    if text not in PRECISIONS:
        raise ValueError(f"PRECISION must be one of {', '.join(PRECISIONS)}; got {precision!r}")
    kind = getattr(device, "type", str(device))
    if text == "auto":
        if kind != "cuda":
            return "fp32"
        return "bf16" if _bf16_on_cuda() else "fp16"
    if text == "fp16" and kind != "cuda":
        raise ValueError(
            f"PRECISION 'fp16' needs a CUDA device, DEVICE is {kind}; use bf16 or fp32"
        )
    if text == "bf16" and kind == "cuda" and not _bf16_on_cuda():
        raise ValueError("PRECISION 'bf16': this GPU has no bfloat16; use fp16 or fp32")
    return text


def autocast(device, precision: str):
    """A context that runs the forward pass in ``precision`` (a no-op for fp32)."""
    import torch

    if precision == "fp32":
        return contextlib.nullcontext()
    if precision not in _DTYPES:
        raise ValueError(f"PRECISION must be fp32, bf16 or fp16 here; got {precision!r}")
    kind = getattr(device, "type", str(device))
    return torch.autocast(kind, dtype=getattr(torch, _DTYPES[precision]))


def grad_scaler(device, precision: str):
    """``torch.amp.GradScaler``, enabled only for fp16 (bf16 and fp32 need no loss scaling;
    a disabled scaler passes ``scale``/``step``/``update`` straight through)."""
    import torch

    kind = getattr(device, "type", str(device))
    return torch.amp.GradScaler(kind, enabled=precision == "fp16")


def loader_options(device, num_workers: int | None = None) -> dict:
    """``DataLoader`` keywords for ``device``: pinned memory on CUDA; ``NUM_WORKERS`` loader
    processes (default: none on the CPU, where they compete with torch's threads; up to
    :data:`GPU_LOADER_WORKERS` on a GPU machine, one core left for the main process)."""
    if num_workers is None:
        cores = os.cpu_count() or 1
        on_gpu = getattr(device, "type", str(device)) == "cuda"
        num_workers = min(GPU_LOADER_WORKERS, max(cores - 1, 0)) if on_gpu else 0
    if isinstance(num_workers, bool) or not isinstance(num_workers, numbers.Integral):
        raise ValueError(f"NUM_WORKERS must be an integer >= 0, got {num_workers!r}")
    if num_workers < 0:
        raise ValueError(f"NUM_WORKERS must be an integer >= 0, got {num_workers}")
    options = {
        "num_workers": int(num_workers),
        "pin_memory": getattr(device, "type", str(device)) == "cuda",
        "persistent_workers": num_workers > 0,
    }
    if num_workers > 0:
        options["prefetch_factor"] = 2
    return options


def prepare_model(model, device, *, channels_last: bool | None = None):
    """``model`` on ``device``; convolutional models also in ``channels_last`` memory
    format, by default on CUDA only (faster convolutions on tensor cores). On the CPU it
    is +40-100 % for this project's small CNNs but changes the last bits of every
    convolution, so the book's CPU numbers are computed without it; pass ``True`` to
    have it there. Chapters 01-05."""
    import torch

    model = model.to(device)
    if channels_last is None:
        channels_last = torch.device(device).type == "cuda"
    has_conv = any(isinstance(m, torch.nn.Conv2d) for m in model.modules())
    if channels_last and has_conv:
        model = model.to(memory_format=torch.channels_last)
    return model


def model_device(model):
    """The device of ``model``'s first parameter (or buffer); the CPU for a model with
    neither. Where the package's helpers send a model's inputs (chapters 00-05)."""
    import torch

    for tensor in itertools.chain(model.parameters(), model.buffers()):
        return tensor.device
    return torch.device("cpu")


def to_device(obj, device):
    """``obj`` with every tensor in it on ``device``: a tensor, or tuples (named ones
    included), lists and dicts of them, nested; other values are returned as they are.
    ``fit`` moves each training batch with it."""
    import torch

    if isinstance(obj, torch.Tensor):
        return obj.to(device, non_blocking=obj.device.type == "cpu" and obj.is_pinned())
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        return type(obj)(*(to_device(v, device) for v in obj))
    if isinstance(obj, (tuple, list)):
        return type(obj)(to_device(v, device) for v in obj)
    if isinstance(obj, dict):
        return {k: to_device(v, device) for k, v in obj.items()}
    return obj


def to_numpy(tensor):
    """A tensor as a NumPy array on the CPU (half and bfloat16 as float32, which NumPy
    lacks)."""
    import torch

    tensor = tensor.detach()
    if tensor.dtype in (torch.float16, torch.bfloat16):
        tensor = tensor.float()
    return tensor.cpu().numpy()


def predict_batches(model, x, step, *, batch_size: int):
    """``step(model, batch)`` over ``x`` (N, ...), ``batch_size`` rows at a time, in eval
    and inference mode: each batch a float32 tensor on :func:`model_device`, each result
    (a tensor, or a tuple of tensors) back on the CPU, concatenated along the first axis
    into NumPy arrays (a tuple of them if ``step`` returns tuples). ``None`` for an empty
    ``x``. The predict helpers of chapters 00-05 run through it."""
    import numpy as np
    import torch

    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral):
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size}")
    x = torch.as_tensor(np.ascontiguousarray(x, dtype=np.float32))
    device = model_device(model)
    model.eval()
    parts, as_tuple = [], False
    with torch.inference_mode():
        for start in range(0, len(x), batch_size):
            out = step(model, x[start : start + batch_size].to(device))
            as_tuple = isinstance(out, tuple)
            parts.append([to_numpy(t) for t in (out if as_tuple else (out,))])
    if not parts:
        return None
    columns = tuple(np.concatenate(column) for column in zip(*parts, strict=True))
    return columns if as_tuple else columns[0]


@contextlib.contextmanager
def torch_threads(n: int):
    """Torch's intra-op threads set to ``n`` inside the block, restored afterwards (a Dask
    task's one thread, a benchmark's serial baseline). Chapters 02, 03 and 06."""
    import torch

    before = torch.get_num_threads()
    if before != n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)
