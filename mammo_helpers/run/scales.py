"""Scale files: the named parameter presets ``smoke``, ``default`` and ``paper``.

A scale file (``params/<scale>.yaml`` in the project root, or any YAML file) reads::

    timeout: 600            # optional: seconds per notebook (``--timeout`` wins)
    common: {SEED: 0, ...}  # offered to every notebook
    00_data_and_preprocessing: {N_PATIENTS: 12}   # only for that notebook

Named scales are found in :func:`mammo_helpers.paths.project_root` ``/params`` whatever the
working directory. Used by the runner (every chapter, 00-05) and by the cohort command
line (``mammo-cohort --scale``), which builds the cohort chapter 00 uses.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from mammo_helpers.paths import describe_path, project_root
from mammo_helpers.run.options import RunnerError, check_timeout, describe_value

SCALES = ("smoke", "default", "paper")
#: Parameters the runner sets itself (a scale file may not set them).
RUNNER_PARAMETERS = ("OUT_DIR", "SCALE")
_RESERVED_KEYS = ("name", "path")


def params_dir() -> Path:
    """The folder of the named scale files: ``<project root>/params``."""
    return project_root() / "params"


def scale_file(scale_or_path: str | os.PathLike) -> Path:
    """Path of a scale file.

    A ``Path`` (or text ending in ``.yaml`` / ``.yml`` or holding a ``/``) is a file, taken
    as given; other text is a scale name, looked up in :func:`params_dir` only (never in the
    working directory).
    """
    text = os.fspath(scale_or_path)
    is_path = not isinstance(scale_or_path, str) or text.endswith((".yaml", ".yml"))
    if is_path or "/" in text or os.sep in text:
        candidate = Path(text).expanduser()
        if not candidate.is_file():
            kind = "is a folder" if candidate.is_dir() else "does not exist"
            raise RunnerError(f"scale file {describe_path(text)} {kind}")
        return candidate
    path = params_dir() / f"{text}.yaml"
    if path.is_file():
        return path
    raise RunnerError(
        f"unknown scale {describe_path(text)}: {path} does not exist "
        f"(known scales: {', '.join(SCALES)}; or pass --params FILE)"
    )


def _check_section(path: Path, key: str, value: Any) -> dict:
    """One section of a scale file: a mapping of parameter names the runner does not set."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise RunnerError(
            f"scale file {path}: section {key!r} must be a mapping of parameter names "
            f"to values, got {describe_value(value)}"
        )
    for name in value:
        if not isinstance(name, str) or not name.isidentifier():
            raise RunnerError(
                f"scale file {path}: section {key!r}: {name!r} is not a parameter name"
            )
        if name in RUNNER_PARAMETERS:
            raise RunnerError(
                f"scale file {path}: section {key!r} sets {name}, which the runner sets "
                "(use --results-dir / --scale, or -p on the command line)"
            )
    return dict(value)


def load_scale(scale_or_path: str | os.PathLike) -> dict:
    """Read and check a scale file (``'smoke'``, ``'default'``, ``'paper'`` or a YAML path).

    Returns ``{'common': {...}, '<stem>': {...}, ..., 'timeout': float | None,
    'name': <scale name>, 'path': <file>}``; every section is a mapping of parameter names.
    Raises :class:`RunnerError` naming the file (and section) for anything else, including
    a ``timeout`` that is not a positive, finite number.
    """
    import yaml

    path = scale_file(scale_or_path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise RunnerError(f"scale file {path}: invalid YAML: {exc}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise RunnerError(f"scale file {path}: cannot read it: {exc}") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise RunnerError(
            f"scale file {path}: top level must be a mapping, got {describe_value(data)}"
        )
    out: dict[str, Any] = {"common": {}, "timeout": None}
    for key, value in data.items():
        key = str(key)
        if key == "timeout":
            out["timeout"] = check_timeout(value, f"scale file {path}: 'timeout'")
        elif key in _RESERVED_KEYS:
            raise RunnerError(
                f"scale file {path}: {key!r} is reserved (sections are 'timeout', 'common' "
                "and notebook stems)"
            )
        else:
            out[key] = _check_section(path, key, value)
    out["name"] = path.stem
    out["path"] = str(path)
    return out
