"""Checks of the runner's options, made before anything runs or is removed.

``mammo-run`` removes the previous executed notebook and ``metrics.json`` of every notebook
it runs (so stale files cannot pass for this run's); every option is therefore checked
first: the timeout (a positive, finite number of seconds; ``nan`` or ``inf`` would mean no
limit), the folders (not empty, not padded with whitespace, not a file, writable) and
where the products go (never onto a committed notebook). Errors name the option.

Used by the papermill runner of every chapter (00-05).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from mammo_helpers.paths import describe_path, existing_dir


class RunnerError(Exception):
    """A configuration problem found before anything runs (bad scale file, notebook name...)."""


def describe_value(value: Any) -> str:
    """A value and its type, for messages (``str "x"``, ``int 3``, ``None``)."""
    if value is None:
        return "None"
    if isinstance(value, str):
        return f'str "{value}"'
    return f"{type(value).__name__} {value!r}"


def check_timeout(value: Any, option: str) -> float | None:
    """``value`` as seconds (``None``: no limit), or ``RunnerError`` naming ``option``.

    Accepts a positive, finite int or float; rejects booleans, text, zero, negative numbers,
    ``nan`` and ``inf`` (which would silently mean "no limit").
    """
    if value is None:
        return None
    message = f"{option} must be a positive number of seconds, got {describe_value(value)}"
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RunnerError(message)
    seconds = float(value)
    if not math.isfinite(seconds):
        raise RunnerError(f"{message} (not a limit; leave it unset for no limit)")
    if seconds <= 0:
        raise RunnerError(message)
    return seconds


def check_path_text(path: str | os.PathLike, option: str) -> Path:
    """``path`` as a ``Path`` (``~`` expanded), refusing empty or whitespace-padded text."""
    text = os.fspath(path)
    if not text.strip():
        raise RunnerError(f"{option}: no folder given ({describe_path(text)})")
    if text != text.strip():
        raise RunnerError(f"{option}: {describe_path(text)} is padded with whitespace")
    return Path(text).expanduser()


def check_output_dir(path: str | os.PathLike, option: str) -> Path:
    """The absolute folder ``path`` if it exists or could be created and written to.

    Nothing is created: the folder itself must be a folder if it exists, and its nearest
    existing ancestor must be a writable folder. ``RunnerError`` names ``option`` otherwise.
    """
    folder = check_path_text(path, option).absolute()
    if folder.exists() and not folder.is_dir():
        raise RunnerError(f"{option}: {describe_path(folder)} is a file, not a folder")
    existing = folder
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise RunnerError(
            f"{option}: cannot create {describe_path(folder)}: {describe_path(existing)} is a file"
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        raise RunnerError(
            f"{option}: cannot write to {describe_path(existing)} (permission denied)"
        )
    return folder


def check_input_dir(path: str | os.PathLike, what: str, option: str) -> Path:
    """The absolute, existing folder ``path``, or ``RunnerError`` naming ``option``."""
    try:
        return existing_dir(check_path_text(path, option), what, option)
    except FileNotFoundError as exc:
        raise RunnerError(str(exc)) from exc
