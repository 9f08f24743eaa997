"""Per-image jobs (one CorRELAX map per mammogram, one attribution map per test image and
method) run as independent tasks through ``dask.distributed``, each result stored in its own
file so that a rerun skips finished work and a killed worker loses nothing.

    store = mh.tasks.TaskStore(TASK_DIR)
    maps = mh.tasks.run_tasks(
        explain_one, {image_id: image for ...}, store=store, method="correlax",
        settings={"n_masks": 2000}, model_hash=model_key, shared={"model": model},
        scheduler=DASK_SCHEDULER, n_workers=N_WORKERS,
    )

* :class:`TaskStore`: ``<TASK_DIR>/<method>/<settings digest>/<model hash>/<item>.pkl``
  (plus ``settings.json`` beside each settings digest, for humans), written atomically;
* :func:`run_tasks`: runs the missing items serially (``"serial"``), on a
  ``LocalCluster`` it creates (``"local"``), on a running scheduler (``"tcp://host:8786"``)
  or on a ``distributed.Client`` you pass; each task writes its own result, and dask
  re-runs the tasks of a worker that died (``retries`` for exceptions).

Used by chapters 02 and 03 and by the paper-scale appendix. Results are pickles: read only
stores you wrote yourself.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import pickle
import re
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple

from mammo_helpers.cache import data_digest
from mammo_helpers.paths import (
    atomic_write,
    clean_stale_partials,
    describe_path,
    ensure_writable_dir,
)

__all__ = [
    "check_scheduler",
    "client",
    "CONNECT_TIMEOUT_S",
    "DamagedResultError",
    "TaskFailedError",
    "TaskKey",
    "TaskStore",
    "run_tasks",
]

#: Seconds to wait for a remote dask scheduler (``DASK_SCHEDULER="tcp://..."``).
CONNECT_TIMEOUT_S = 10.0
SETTINGS_FILE = "settings.json"
RESULT_SUFFIX = ".pkl"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
_MAX_STEM = 120
_ADDRESS = re.compile(r"^(?:(?:tcp|tls|inproc|ucx|ucxx|ws|wss)://\S+|[^\s/]+:\d+)$")
_SCHEDULER_FORMS = (
    "'serial', 'local', a scheduler address such as 'tcp://host:8786', "
    "or a distributed.Client / cluster object"
)


class DamagedResultError(ValueError):
    """A stored result cannot be read (delete the file to compute it again)."""


class TaskFailedError(RuntimeError):
    """Tasks raised after their retries; ``failures`` maps item id -> exception."""

    def __init__(self, message: str, failures: Mapping[str, BaseException]):
        super().__init__(message)
        self.failures = dict(failures)


class TaskKey(NamedTuple):
    """What identifies one result: the method, its settings, the model and the item."""

    method: str
    settings: Mapping[str, Any]
    model_hash: str
    item_id: str


# --------------------------------------------------------------------------- names
def _check_name(value: Any, argument: str) -> str:
    bad = not isinstance(value, str) or value in ("", ".", "..")
    if bad or any(sep in value for sep in ("/", "\\", "\x00", os.sep, os.altsep or "/")):
        raise ValueError(
            f"{argument} must be a non-empty string without path separators, got {value!r}"
        )
    return value


def _item_file(item_id: Any) -> str:
    """A file name for ``item_id``: safe characters kept, and a hash of the id appended
    whenever anything was replaced or cut, so different ids never share a file."""
    if not isinstance(item_id, str) or not item_id:
        raise ValueError(f"item_id must be a non-empty string, got {item_id!r}")
    stem = _UNSAFE.sub("_", item_id)
    if stem.startswith("."):  # no hidden files (and no clash with temporary ones)
        stem = "_" + stem[1:]
    if stem != item_id or len(stem) > _MAX_STEM:
        digest = hashlib.sha256(item_id.encode("utf-8", "surrogatepass")).hexdigest()[:12]
        stem = f"{stem[:_MAX_STEM]}~{digest}"
    return stem + RESULT_SUFFIX


def _settings_json(settings: Any) -> str:
    """Canonical JSON of ``settings`` (sorted keys); ``ValueError`` naming a bad key."""
    if not isinstance(settings, Mapping):
        raise ValueError(f"settings must be a mapping, got {type(settings).__name__}")
    for key, value in settings.items():
        if not isinstance(key, str):
            raise ValueError(f"settings key {key!r} must be a string")
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"settings[{key!r}] = {value!r} ({type(value).__name__}) is not JSON "
                "(use numbers, strings, booleans, None, lists and dicts)"
            ) from exc
    return json.dumps(dict(settings), sort_keys=True, allow_nan=False, separators=(",", ":"))


# --------------------------------------------------------------------------- the store
class TaskStore:
    """Results of per-item tasks under ``root`` (the ``TASK_DIR`` parameter), one pickle per
    ``(method, settings, model_hash, item_id)``. Chapters 02, 03 and the paper-scale appendix.

    The folder is created and checked for writing at construction (an error names it and
    ``parameter``); temporary files of writers that died are removed then.
    """

    def __init__(self, root: str | os.PathLike, *, parameter: str = "TASK_DIR"):
        if root is None or not os.fspath(root).strip():
            raise ValueError(f"{parameter}: no folder given for the task results")
        self.parameter = parameter
        folder = Path(os.fspath(root)).expanduser().absolute()
        self.root = ensure_writable_dir(folder, parameter)
        clean_stale_partials(self.root, recursive=True)

    def __repr__(self) -> str:
        return f"TaskStore({str(self.root)!r})"

    def folder(self, method: str, settings: Mapping[str, Any], model_hash: str) -> Path:
        """The folder holding the results of ``method`` with ``settings`` on a model."""
        digest = data_digest([_settings_json(settings)])
        _check_name(model_hash, "model_hash")
        return self.root / _check_name(method, "method") / digest / model_hash

    def path(self, key: TaskKey | tuple) -> Path:
        """The result file of ``key = (method, settings, model_hash, item_id)``."""
        key = TaskKey(*key)
        return self.folder(key.method, key.settings, key.model_hash) / _item_file(key.item_id)

    def has(self, key: TaskKey | tuple) -> bool:
        return self.path(key).is_file()

    def load(self, key: TaskKey | tuple) -> Any:
        """The stored result; ``FileNotFoundError`` or :class:`DamagedResultError` naming it."""
        path = self.path(key)
        try:
            with open(path, "rb") as fh:
                return pickle.load(fh)
        except FileNotFoundError:
            raise FileNotFoundError(f"no stored result {describe_path(path)}") from None
        except Exception as exc:
            raise DamagedResultError(
                f"stored result {describe_path(path)} cannot be read "
                f"({type(exc).__name__}: {exc}); delete it to compute it again"
            ) from exc

    def save(self, key: TaskKey | tuple, value: Any) -> Path:
        """Store ``value`` under ``key`` atomically (a complete file or none)."""
        key = TaskKey(*key)
        path = self.path(key)
        self._write_settings(path.parent.parent, key.settings)
        with atomic_write(path) as fh:
            pickle.dump(value, fh, protocol=pickle.HIGHEST_PROTOCOL)
        return path

    def done(self, method: str, settings: Mapping[str, Any], model_hash: str, item_ids) -> set[str]:
        """The ids among ``item_ids`` whose result is stored (one listing of the folder)."""
        folder = self.folder(method, settings, model_hash)
        try:
            present = set(os.listdir(folder))
        except FileNotFoundError:
            present = set()
        return {item for item in item_ids if _item_file(item) in present}

    @staticmethod
    def _write_settings(folder: Path, settings: Mapping[str, Any]) -> None:
        target = folder / SETTINGS_FILE
        if not target.is_file():
            text = json.dumps(dict(settings), sort_keys=True, indent=2, allow_nan=False)
            with atomic_write(target) as fh:
                fh.write((text + "\n").encode())


# --------------------------------------------------------------------------- checks
def _check_items(items: Any) -> dict[str, Any]:
    """``{item_id: payload}`` in order, from a mapping (or a Series, or (id, payload) pairs)."""
    pairs = list(items.items()) if hasattr(items, "items") else list(items)
    checked: dict[str, Any] = {}
    files: dict[str, str] = {}
    for item_id, payload in pairs:
        if not isinstance(item_id, str):
            raise ValueError(
                f"item ids must be strings, got {item_id!r} ({type(item_id).__name__})"
            )
        name = _item_file(item_id)
        if item_id in checked or name in files:
            raise ValueError(f"duplicate item id {item_id!r} (ids must be unique)")
        checked[item_id], files[name] = payload, item_id
    return checked


def _check_n_workers(n_workers: Any) -> int:
    if n_workers is None:
        return os.cpu_count() or 1
    if isinstance(n_workers, bool) or not isinstance(n_workers, int) or n_workers < 1:
        raise ValueError(f"N_WORKERS must be a whole number >= 1 (or None), got {n_workers!r}")
    return n_workers


def check_scheduler(scheduler: Any) -> str:
    """The kind of ``DASK_SCHEDULER``: serial, local, address, client or cluster."""
    if isinstance(scheduler, str):
        if scheduler in ("serial", "local"):
            return scheduler
        if _ADDRESS.match(scheduler):
            return "address"
    else:
        from distributed import Client
        from distributed.deploy import Cluster

        if isinstance(scheduler, Client):
            return "client"
        if isinstance(scheduler, Cluster):
            return "cluster"
    raise ValueError(f"DASK_SCHEDULER must be {_SCHEDULER_FORMS}; got {scheduler!r}")


def _check_options(shared: Any, retries: Any) -> dict[str, Any]:
    if not isinstance(retries, int) or isinstance(retries, bool) or retries < 0:
        raise ValueError(f"retries must be a whole number >= 0, got {retries!r}")
    shared = {} if shared is None else shared
    if not isinstance(shared, Mapping) or not all(isinstance(k, str) for k in shared):
        raise ValueError("shared must be a mapping of keyword-argument names to objects")
    return dict(shared)


# --------------------------------------------------------------------------- running
def _run_one(bundle: tuple[Callable, dict], payload: Any, store: TaskStore, key: TaskKey) -> str:
    """The task on a worker: compute one item and write it; returns only its id."""
    if store.has(key):  # written before this worker (or an earlier attempt) died
        return key.item_id
    with contextlib.suppress(ImportError):
        import torch

        torch.set_num_threads(1)  # one task per worker thread: no oversubscription
    fn, shared = _unpacked(bundle)
    store.save(key, fn(payload, **shared))
    return key.item_id


#: The (token, (fn, shared)) a worker process unpickled last: one unpickling per worker.
_UNPACKED: dict[str, Any] = {}


def _unpacked(bundle: tuple[str, bytes]) -> tuple[Callable, dict]:
    """``(fn, shared)`` from the pickled bundle, unpickled once per worker process.

    The bundle travels as bytes pickled by cloudpickle rather than through Dask's own
    serialisers, whose torch module serialiser rebuilds modules with plain-dict hook
    tables (``register_forward_hook`` then fails) and contiguous weights (channels-last
    models then run other kernels and differ from a serial run by ~1e-5).
    """
    token, blob = bundle
    if token not in _UNPACKED:
        import cloudpickle

        _UNPACKED.clear()
        _UNPACKED[token] = cloudpickle.loads(blob)
    return _UNPACKED[token]


def _run_serial(fn, todo, keys, store, shared, bar, *, retries) -> dict[str, BaseException]:
    failures: dict[str, BaseException] = {}
    from mammo_helpers.devices import torch_threads

    with torch_threads(1):
        for item_id, payload in todo.items():
            for attempt in range(retries + 1):
                try:
                    store.save(keys[item_id], fn(payload, **shared))
                except Exception as exc:
                    if attempt == retries:
                        failures[item_id] = exc
                    continue
                bar.update(1)
                break
    return failures


@contextlib.contextmanager
def _client(scheduler: Any, kind: str, n_workers: int) -> Iterator:
    """A ``distributed.Client`` for ``DASK_SCHEDULER``; closes only what it opened."""
    from distributed import Client, LocalCluster

    if kind == "client":
        yield scheduler
    elif kind == "local":
        with (
            LocalCluster(
                n_workers=n_workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                # without a dashboard the scheduler still serves /health on a port, by
                # default 8787 (warning when another cluster holds it): take a free one
                scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
                silence_logs=logging.ERROR,
                env={"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"},
            ) as cluster,
            Client(cluster, set_as_default=False) as client,
        ):
            yield client
    else:
        client = _connect(scheduler)
        try:
            yield client
        finally:
            client.close()


@contextlib.contextmanager
def client(scheduler: Any = "local", n_workers: int | None = None) -> Iterator:
    """A ``distributed.Client`` for ``DASK_SCHEDULER`` (``"local"``: a ``LocalCluster`` of
    ``n_workers`` one-thread processes, default one per core; an address; or a client),
    closing only what it opened. For callers that time the cluster's start apart from the
    tasks (chapter 06); :func:`run_tasks` opens its own."""
    kind = check_scheduler(scheduler)
    if kind == "serial":
        raise ValueError("DASK_SCHEDULER 'serial' has no cluster; use run_tasks")
    with _client(scheduler, kind, _check_n_workers(n_workers)) as opened:
        yield opened


def _connect(scheduler: Any):
    from distributed import Client

    try:
        return Client(scheduler, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
    except Exception as exc:
        raise ConnectionError(
            f"cannot reach the dask scheduler DASK_SCHEDULER={scheduler!r} within "
            f"{CONNECT_TIMEOUT_S:g} s ({type(exc).__name__}: {exc}); start it, or set "
            "DASK_SCHEDULER to 'local' (a cluster on this machine) or 'serial'"
        ) from exc


def _outcome(future, store: TaskStore, key: TaskKey) -> BaseException | None:
    """``None`` if the task finished and its file is there, else the error to report."""
    if future.status != "finished":
        try:
            return future.exception()
        except Exception as exc:  # a cancelled future raises instead of returning
            return exc
    if not store.has(key):
        return FileNotFoundError(
            f"the worker finished but {describe_path(store.path(key))} is missing: the "
            f"workers must share the {store.parameter} folder with this machine"
        )
    return None


def _run_dask(fn, todo, keys, store, shared, bar, *, retries, client) -> dict:
    import cloudpickle
    from distributed import as_completed

    token = uuid.uuid4().hex[:8]
    packed = (token, cloudpickle.dumps((fn, shared)))
    bundle = client.scatter([packed], broadcast=True, hash=False)[0]
    futures = {
        client.submit(
            _run_one,
            bundle,
            payload,
            store,
            keys[item_id],
            pure=False,
            retries=retries,
            key=(f"{keys[item_id].method}-{token}", n),
        ): item_id
        for n, (item_id, payload) in enumerate(todo.items())
    }
    failures: dict[str, BaseException] = {}
    try:
        # loop=: as_completed otherwise looks for a default client, and ours is not one
        for future in as_completed(futures, loop=client.loop):
            item_id = futures[future]
            error = _outcome(future, store, keys[item_id])
            if error is None:
                bar.update(1)
            else:
                failures[item_id] = error
    finally:
        with contextlib.suppress(Exception):  # never hide the error that brought us here
            client.cancel([f for f in futures if not f.done()] + [bundle])
    return failures


def _failure(method: str, failures: Mapping[str, BaseException], n_tasks: int) -> Exception:
    item_id, first = next(iter(failures.items()))
    others = [repr(i) for i in list(failures)[1:6]] + (["..."] if len(failures) > 6 else [])
    also = f"; {len(failures) - 1} other items failed too: {', '.join(others)}" if others else ""
    return TaskFailedError(
        f"method {method!r}: the task of item {item_id!r} failed for good "
        f"({type(first).__name__}: {first}){also} ({len(failures)} of {n_tasks} tasks); "
        "the results of the other tasks are stored, a rerun computes only the missing ones",
        failures,
    )


def _todo(items, store: TaskStore, method, settings, model_hash) -> tuple[dict, dict]:
    """The items still to compute, and the key of every item (checking all of them)."""
    if not isinstance(store, TaskStore):
        raise ValueError(f"store must be a TaskStore, got {type(store).__name__}")
    checked = _check_items(items)
    store.folder(method, settings, model_hash)  # checks the names and the settings
    keys = {item_id: TaskKey(method, settings, model_hash, item_id) for item_id in checked}
    finished = store.done(method, settings, model_hash, checked)
    todo = {item_id: p for item_id, p in checked.items() if item_id not in finished}
    return todo, keys


def run_tasks(
    fn: Callable[..., Any],
    items: Mapping[str, Any],
    *,
    store: TaskStore,
    method: str,
    settings: Mapping[str, Any],
    model_hash: str,
    scheduler: Any = "local",
    n_workers: int | None = None,
    shared: Mapping[str, Any] | None = None,
    retries: int = 2,
    progress: bool = True,
    desc: str | None = None,
) -> dict[str, Any]:
    """``{item_id: fn(payload, **shared)}`` for every item of ``items``, in their order.

    Items already in ``store`` are loaded, not recomputed; the others run as one task each
    (``scheduler`` is the ``DASK_SCHEDULER`` parameter: ``"serial"``, ``"local"`` for a
    ``LocalCluster`` of ``n_workers`` (``N_WORKERS``, default all cores) one-thread
    processes, a scheduler address, or a ``distributed.Client`` that stays open). Each task
    writes its result into the store itself, so the workers must share its folder; a task
    of a worker that dies is run again by dask, one that raises is retried ``retries``
    times. ``shared`` (a model, a mask bank) is sent to each worker once. ``fn`` runs with
    one torch thread everywhere (serially too), so a deterministic ``fn`` gives the same
    results on any scheduler. A task that fails for good raises :class:`TaskFailedError`
    naming the item, after the other tasks have finished and been stored. Chapters 02, 03
    and the paper-scale appendix.
    """
    from tqdm.auto import tqdm

    shared = _check_options(shared, retries)
    n_workers = _check_n_workers(n_workers)
    kind = check_scheduler(scheduler)
    todo, keys = _todo(items, store, method, settings, model_hash)
    failures: dict[str, BaseException] = {}
    n_done = len(keys) - len(todo)
    with tqdm(total=len(keys), initial=n_done, desc=desc or method, disable=not progress) as bar:
        if todo and kind == "serial":
            failures = _run_serial(fn, todo, keys, store, shared, bar, retries=retries)
        elif todo:
            try:
                with _client(scheduler, kind, min(n_workers, len(todo))) as opened:
                    args = (fn, todo, keys, store, shared, bar)
                    failures = _run_dask(*args, retries=retries, client=opened)
            finally:  # files half-written by workers that were killed
                clean_stale_partials(store.folder(method, settings, model_hash))
    if failures:
        raise _failure(method, failures, len(todo)) from next(iter(failures.values()))
    return {item_id: store.load(key) for item_id, key in keys.items()}
