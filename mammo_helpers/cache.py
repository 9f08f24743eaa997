"""A cache of trained models, like the cohort cache: keyed by the training settings and a hash
of the code that trains them, written atomically, so rebuilding the book after a change of
prose or plots does not retrain anything (and a change of code or settings always does).

    cache = mh.cache.ModelCache(CACHE_DIR)
    state, hit = cache.get_or_train(
        "density_view_model", settings, train_fn, code=[mh.training, my_model_module]
    )

Each entry is a folder ``<cache>/models/<name>-<key>/`` holding ``model.pt`` (whatever
``train_fn`` returned, saved with ``torch.save``; typically a state dict and a history) and
``entry.json`` (the settings, the code hash, how long training took). Used by the chapters
that train (00's learnability check, 01-05).
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import re
import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from mammo_helpers import distributed
from mammo_helpers.paths import atomic_directory, atomic_write, cache_dir, describe_path

MODEL_FILE = "model.pt"
ENTRY_FILE = "entry.json"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def data_digest(*parts) -> str:
    """A short digest of arrays and lists (pixels, labels, texts, ids), in order: the part
    of a cache key that says which data a model was trained on. Chapters 00 and 01."""
    import numpy as np

    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, np.ndarray) and part.dtype != object:
            h.update(str((part.dtype, part.shape)).encode())
            h.update(np.ascontiguousarray(part).tobytes())
        else:  # texts, ids (object arrays hold pointers: hash their values)
            values = part.tolist() if isinstance(part, np.ndarray) else part
            h.update("\x1f".join(map(str, values)).encode())
        h.update(b"\x1e")
    return h.hexdigest()[:16]


def weights_digest(model_or_state) -> str:
    """A short digest of a network's weights (names, shapes and values; a module or its
    ``state_dict``): the model part of a cache or task-store key. Chapters 00, 02, 03."""
    state = model_or_state.state_dict() if hasattr(model_or_state, "state_dict") else model_or_state
    h = hashlib.sha256()
    for name, tensor in state.items():
        h.update(f"{name}{tuple(tensor.shape)}".encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


class CacheWarning(UserWarning):
    """A cached model could not be read and is trained again."""


def code_fingerprint(code: Iterable[Any] = ()) -> str:
    """Hash of the source of modules, classes, functions or files (order matters).

    A module's whole file is hashed, so any edit to the training code changes the key.
    """
    digest = hashlib.sha256()
    for item in code:
        if isinstance(item, str | os.PathLike):
            path = Path(item)
            text = path.read_bytes()
            label = path.name
        elif isinstance(item, ModuleType | type) or callable(item):
            source_file = inspect.getsourcefile(item)
            if isinstance(item, ModuleType) and source_file:
                text = Path(source_file).read_bytes()
            else:
                text = inspect.getsource(item).encode()
            label = getattr(item, "__qualname__", getattr(item, "__name__", repr(item)))
        else:
            raise TypeError(f"code: cannot hash {type(item).__name__} {item!r}")
        digest.update(label.encode())
        digest.update(text)
    return digest.hexdigest()[:12]


def _settings_text(settings: dict) -> str:
    try:
        return json.dumps(settings, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        bad = [k for k, v in settings.items() if not _jsonable(v)]
        raise TypeError(
            f"settings must be JSON values (numbers, strings, lists, dicts); not: {bad or exc}"
        ) from exc


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return False
    return True


@dataclass(frozen=True)
class CacheEntry:
    """Where a model lives in the cache and what it was trained with."""

    name: str
    key: str
    folder: Path
    settings: dict
    code_hash: str

    @property
    def model_path(self) -> Path:
        return self.folder / MODEL_FILE


class ModelCache:
    """Trained models under ``<cache_dir>/models`` (``CACHE_DIR``; default
    ``$MAMMO_DATA_DIR`` or ``~/.cache/mammo_helpers``)."""

    def __init__(self, root: str | os.PathLike | None = None):
        self.root = cache_dir(root) / "models"

    def entry(self, name: str, settings: dict, code: Iterable[Any] = ()) -> CacheEntry:
        """The cache entry for ``name`` trained with ``settings`` by ``code``."""
        if not isinstance(name, str) or not _NAME.match(name):
            raise ValueError(f"model name {name!r} must be letters, digits, '_', '.', '-'")
        if not isinstance(settings, dict):
            raise TypeError(f"settings must be a dict, got {type(settings).__name__}")
        code_hash = code_fingerprint(code)
        payload = f"{name}\n{_settings_text(settings)}\n{code_hash}"
        key = hashlib.sha256(payload.encode()).hexdigest()[:12]
        return CacheEntry(name, key, self.root / f"{name}-{key}", dict(settings), code_hash)

    def load(self, entry: CacheEntry, loader: Callable[[Path], Any] | None = None) -> Any | None:
        """The cached object, or ``None`` if absent (a damaged entry warns and is ``None``)."""
        if not entry.model_path.is_file():
            return None
        loader = loader or _torch_load
        try:
            return loader(entry.model_path)
        except Exception as exc:  # a damaged file: train again rather than fail the chapter
            warnings.warn(
                f"cached model {describe_path(entry.model_path)} cannot be read ({exc}); "
                "training it again",
                CacheWarning,
                stacklevel=3,
            )
            return None

    def save(
        self,
        entry: CacheEntry,
        obj: Any,
        *,
        seconds: float | None = None,
        saver: Callable[[Any, Path], None] | None = None,
    ) -> Path:
        """Store ``obj`` for ``entry`` (all or nothing) and return its folder."""
        saver = saver or _torch_save
        with atomic_directory(entry.folder, replace=True) as tmp:
            saver(obj, tmp / MODEL_FILE)
            record = {
                "name": entry.name,
                "key": entry.key,
                "settings": entry.settings,
                "code_hash": entry.code_hash,
                "train_seconds": None if seconds is None else round(seconds, 2),
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            }
            with atomic_write(tmp / ENTRY_FILE, "w") as fh:
                json.dump(record, fh, indent=2)
        return entry.folder

    def get_or_train(
        self,
        name: str,
        settings: dict,
        train: Callable[[], Any],
        *,
        code: Iterable[Any] = (),
        loader: Callable[[Path], Any] | None = None,
        saver: Callable[[Any, Path], None] | None = None,
    ) -> tuple[Any, bool]:
        """``(object, hit)``: the cached result of ``train()`` for these settings and code,
        or a fresh one (trained now, then cached). ``hit`` says which."""
        entry = self.entry(name, settings, code)
        cached = self.load(entry, loader)
        if cached is not None:
            return cached, True
        start = time.perf_counter()
        obj = train()
        ctx = distributed.context()
        if ctx.is_main:  # under torchrun every rank trains; rank 0 alone writes
            self.save(entry, obj, seconds=time.perf_counter() - start, saver=saver)
        distributed.barrier(ctx)
        return obj, False

    def checkpoint_path(self, name: str, settings: dict, code: Iterable[Any] = ()) -> Path:
        """Where an interrupted training of this entry keeps its last epoch (removed once
        the model is cached)."""
        entry = self.entry(name, settings, code)
        return entry.folder.with_name(f"{entry.folder.name}.checkpoint.pt")


def _torch_save(obj: Any, path: Path) -> None:
    import torch

    torch.save(obj, path)


def _torch_load(path: Path) -> Any:
    import torch

    return torch.load(path, map_location="cpu", weights_only=True)
