"""Where things live and how they are written without leaving half-finished files.

* the project root (one anchor for ``params/``, ``notebooks/``, ``results/``):
  :func:`project_root`, :func:`project_path`, :func:`display_path`;
* the cache of generated data and trained models (``CACHE_DIR``, default
  ``$MAMMO_DATA_DIR`` or ``~/.cache/mammo_helpers``): :func:`cache_dir`;
* clear errors for folders that are missing (showing invisible whitespace) or not
  writable: :func:`existing_dir`, :func:`ensure_writable_dir`;
* all-or-nothing writes: :func:`atomic_write` (a file), :func:`atomic_directory` (a folder,
  with stale half-built folders of dead processes removed first) and
  :func:`sigterm_as_interrupt` (so a terminated build still cleans up).

Used by the cohort builder and model cache (chapters 00-05), the results recorder, the DICOM
writer and the papermill runner.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import signal
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import mammo_helpers

CACHE_DIR_ENV = "MAMMO_DATA_DIR"
PROJECT_ROOT_ENV = "MAMMO_PROJECT_ROOT"
_PARTIAL = re.compile(r"^\.(?P<name>.+)\.(?:partial|old)-(?P<host>[^-]+)-(?P<pid>\d+)-[0-9a-f]{8}$")
#: Half-built folders of another machine are removed only after this many seconds.
FOREIGN_PARTIAL_AGE_S = 24 * 3600.0


# --------------------------------------------------------------------------- names
def describe_path(path: str | os.PathLike) -> str:
    """``repr`` of a path, plus a note when it holds whitespace or invisible characters."""
    text = os.fspath(path)
    notes = []
    if text != text.strip():
        notes.append("leading or trailing whitespace")
    if any(not ch.isprintable() for ch in text):
        notes.append("invisible characters")
    if "\u00a0" in text or "\u200b" in text:
        notes.append("non-breaking or zero-width spaces")
    shown = repr(text)
    return f"{shown} (note: {', '.join(dict.fromkeys(notes))})" if notes else shown


def existing_dir(path: str | os.PathLike, what: str, parameter: str | None = None) -> Path:
    """``path`` as an absolute folder, or ``FileNotFoundError`` naming what it should be.

    The message shows the path with ``repr`` (so a stray space or tab is visible) and the
    parameter that sets it.
    """
    if path is None or (isinstance(path, str) and not path.strip()):
        hint = f"; set {parameter}" if parameter else ""
        raise FileNotFoundError(f"{what}: no folder given{hint}")
    folder = Path(os.fspath(path)).expanduser().absolute()
    if not folder.is_dir():
        kind = "is a file, not a folder" if folder.exists() else "not found"
        where = f" ({parameter})" if parameter else ""
        raise FileNotFoundError(f"{what} folder{where} {kind}: {describe_path(folder)}")
    return folder


# --------------------------------------------------------------------------- anchors
def _looks_like_project(folder: Path) -> bool:
    return (folder / "params").is_dir() and (folder / "notebooks").is_dir()


def project_root() -> Path:
    """The folder holding ``params/`` and ``notebooks/`` (the repository).

    ``$MAMMO_PROJECT_ROOT`` if set; else the folder above the package (an editable install
    or a checkout); else the first ancestor of the working directory that has both folders;
    else the working directory.
    """
    env = os.environ.get(PROJECT_ROOT_ENV)
    if env:
        return existing_dir(env, "project root", PROJECT_ROOT_ENV)
    beside_package = Path(mammo_helpers.__file__).resolve().parent.parent
    if _looks_like_project(beside_package):
        return beside_package
    cwd = Path.cwd().resolve()
    for folder in (cwd, *cwd.parents):
        if _looks_like_project(folder):
            return folder
    return cwd


def project_path(path: str | os.PathLike) -> Path:
    """An absolute path; relative paths are taken relative to :func:`project_root`."""
    p = Path(os.fspath(path)).expanduser()
    return p if p.is_absolute() else project_root() / p


def display_path(path: str | os.PathLike) -> str:
    """``path`` for printing in the book: relative to the project root when it lies inside
    it, ``$CACHE_DIR/...`` inside the default cache, else absolute."""
    p = Path(os.fspath(path)).expanduser().absolute()
    for base, prefix in ((project_root(), ""), (default_cache_dir().absolute(), "$CACHE_DIR/")):
        try:
            return prefix + p.relative_to(base).as_posix()
        except ValueError:
            continue
    return str(p)


# --------------------------------------------------------------------------- the cache
def default_cache_dir() -> Path:
    """Cache of generated cohorts and trained models: ``$MAMMO_DATA_DIR`` or
    ``$XDG_CACHE_HOME/mammo_helpers`` (``~/.cache/mammo_helpers``)."""
    env = os.environ.get(CACHE_DIR_ENV)
    if env and env.strip():
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "mammo_helpers"


def cache_dir(value: str | os.PathLike | None = None) -> Path:
    """The ``CACHE_DIR`` parameter resolved: ``None`` -> :func:`default_cache_dir`."""
    if value is None:
        return default_cache_dir()
    text = os.fspath(value)
    if not text.strip() or text != text.strip():
        raise ValueError(f"CACHE_DIR {describe_path(text)} is empty or padded with whitespace")
    return Path(text).expanduser()


def ensure_writable_dir(path: str | os.PathLike, parameter: str = "CACHE_DIR") -> Path:
    """Create ``path`` if needed and check that files can be written there.

    Raises ``PermissionError`` naming the folder and the parameter (and environment
    variable) that sets it, before any long work starts.
    """
    path = Path(path).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-test-"):
            pass
    except OSError as exc:
        raise PermissionError(
            f"cannot write to folder {describe_path(path)} ({exc.strerror or exc}); "
            f"choose another one with the {parameter} parameter or the {CACHE_DIR_ENV} "
            "environment variable"
        ) from exc
    return path


# --------------------------------------------------------------------------- atomic writes
@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb") -> Iterator:
    """Open a temporary file beside ``path``; move it into place only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _side_name(path, "partial")  # named after its process: see clean_stale_partials
    try:
        with open(tmp, mode) as fh:
            yield fh
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _side_name(final: Path, kind: str) -> Path:
    return final.with_name(f".{final.name}.{kind}-{_host()}-{os.getpid()}-{uuid.uuid4().hex[:8]}")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale_partials(parent: str | os.PathLike, *, recursive: bool = False) -> list[Path]:
    """Remove half-built folders and half-written files in ``parent`` (and its subfolders
    with ``recursive``) left by processes that no longer run.

    A folder written by :func:`atomic_directory` or a file written by :func:`atomic_write`
    is named after its host and process while it is being written; it is stale when that
    process is gone (same host) or, for another host, when it is older than
    :data:`FOREIGN_PARTIAL_AGE_S`. A live writer's folder or file is never touched.
    Returns what was removed.
    """
    parent = Path(parent)
    if not parent.is_dir():
        return []
    entries = parent.rglob(".*") if recursive else parent.iterdir()
    removed = []
    for entry in list(entries):
        if _is_stale_partial(entry):
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    entry.unlink()
            removed.append(entry)
    return removed


def _is_stale_partial(entry: Path) -> bool:
    match = _PARTIAL.match(entry.name)
    if match is None:
        return False
    if match["host"] == _host():
        return not _pid_alive(int(match["pid"]))
    try:
        return time.time() - entry.stat().st_mtime > FOREIGN_PARTIAL_AGE_S
    except OSError:
        return False


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9]", "", socket.gethostname())[:32] or "host"


def _publish(tmp: Path, final: Path, replace: bool) -> bool:
    """Rename ``tmp`` to ``final``; returns False if another process published first."""
    for _ in range(20):
        if final.exists():
            if not replace:
                return False
            trash = _side_name(final, "old")
            try:
                os.replace(final, trash)
            except FileNotFoundError:
                continue  # someone else moved it meanwhile: look again
            shutil.rmtree(trash, ignore_errors=True)
        try:
            os.replace(tmp, final)
            return True
        except OSError as exc:  # a racing builder published between our check and rename
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
    raise OSError(f"could not publish {describe_path(final)}: other builders keep replacing it")


@contextlib.contextmanager
def atomic_directory(final: str | os.PathLike, *, replace: bool = True) -> Iterator[Path]:
    """Build a folder under a temporary name and rename it to ``final`` on success.

    If the block raises (or the process is terminated, see :func:`sigterm_as_interrupt`)
    the partial folder is removed, so ``final`` either does not exist or is complete; a
    partial folder left by a killed process (SIGKILL) is removed by the next call in the
    same parent. An existing ``final`` is replaced only after the new one is complete. When
    another process publishes ``final`` first: ``replace=True`` replaces it,
    ``replace=False`` keeps the other one and discards this build (a cache: equal settings,
    equal contents).
    """
    final = Path(final)
    ensure_writable_dir(final.parent)
    clean_stale_partials(final.parent)
    tmp = _side_name(final, "partial")
    tmp.mkdir()
    try:
        yield tmp
        _publish(tmp, final, replace)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


class Terminated(KeyboardInterrupt):
    """Raised in the main thread when the process receives SIGTERM during a build."""


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Inside the block, SIGTERM raises :class:`Terminated` (so ``finally`` clauses run).

    Only in the main thread (signal handlers cannot be set elsewhere); the previous handler
    is restored afterwards.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise Terminated(f"terminated by signal {signum}")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
