"""Where data lives and how it is written without leaving half-finished files.

Used by the cohort builder (notebook 00), the DICOM writer and the papermill runner.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

DATA_DIR_ENV = "MAMMO_DATA_DIR"


def default_data_dir() -> Path:
    """Cache folder for generated cohorts: ``$MAMMO_DATA_DIR`` or ``~/.cache/mammo_helpers``."""
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "mammo_helpers"


def ensure_writable_dir(path: str | os.PathLike) -> Path:
    """Create ``path`` if needed and check that files can be written there.

    Raises ``PermissionError`` naming the folder (and the environment variable that sets
    it) instead of failing later in the middle of a long run.
    """
    path = Path(path).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-test-"):
            pass
    except OSError as exc:
        raise PermissionError(
            f"cannot write to data folder {str(path)!r} ({exc.strerror or exc}); "
            f"choose another folder with the {DATA_DIR_ENV} environment variable "
            "or the DATA_DIR parameter"
        ) from exc
    return path


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb") -> Iterator:
    """Open a temporary file beside ``path``; move it into place only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, mode) as fh:
            yield fh
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


@contextlib.contextmanager
def atomic_directory(final: str | os.PathLike) -> Iterator[Path]:
    """Build a folder under a temporary name and rename it to ``final`` on success.

    If the block raises (or the process is interrupted) the partial folder is removed,
    so ``final`` either does not exist or is complete. An existing ``final`` is replaced
    only after the new one is complete.
    """
    final = Path(final)
    ensure_writable_dir(final.parent)
    tmp = final.with_name(f".{final.name}.partial-{uuid.uuid4().hex[:8]}")
    tmp.mkdir()
    try:
        yield tmp
        if final.exists():
            trash = final.with_name(f".{final.name}.old-{uuid.uuid4().hex[:8]}")
            os.replace(final, trash)
            os.replace(tmp, final)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.replace(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
