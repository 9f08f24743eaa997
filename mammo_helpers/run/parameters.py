"""A notebook's declared parameters, their type checks, and the merge with a scale file.

Only the parameters a notebook declares in its ``parameters`` cell are injected (``common``
keys a notebook does not declare are skipped; a stem section or ``-p`` naming an undeclared
parameter is an error). Values are checked against the declared type: the annotation if
there is one (``N_PATIENTS: Optional[int] = 40`` accepts null; papermill does not recognise
``int | None`` and skips such a line), else the type of the literal default (int, float,
str, bool, list, dict; an int is accepted for a float; a ``None`` default accepts anything).
``-p`` values are kept as text for str parameters and read as YAML / Python literals
otherwise.

Merge order: the notebook's own defaults < ``common`` < its stem section < overrides. The
runner sets ``SCALE`` and ``OUT_DIR``; ``OUT_DIR`` is injected relative to the project root
when it lies inside it (``results/00_data_and_preprocessing``, so the book does not show the
build machine's folders) and absolute otherwise; chapters resolve it with
:func:`mammo_helpers.paths.project_path`. Used by the runner for every chapter (00-05).
"""

from __future__ import annotations

import ast
import contextlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mammo_helpers.paths import display_path, project_root
from mammo_helpers.run.options import RunnerError, check_path_text, describe_value

NO_LITERAL = object()
_CHECKED_TYPES = (bool, int, float, str, list, dict)
_ANNOTATION_TYPES = {
    **{t.__name__: t for t in _CHECKED_TYPES},
    "None": type(None),
    "tuple": list,
    "Sequence": list,
    "List": list,
    "Dict": dict,
    "Mapping": dict,
}


class ParameterError(RunnerError, ValueError):
    """A parameter is undeclared or has the wrong type; the message names it."""


@dataclass(frozen=True)
class Declared:
    """One parameter of a notebook's ``parameters`` cell."""

    name: str
    source: str  # the default as written in the cell
    annotation: str | None = None

    @property
    def default(self) -> Any:
        """The default as a Python value, or ``NO_LITERAL`` if it is not a literal."""
        try:
            return ast.literal_eval(self.source)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            return NO_LITERAL

    @property
    def expected_types(self) -> tuple[type, ...] | None:
        """Types a value may have (None: anything goes).

        From the annotation when there is one (``EPOCHS: int = 3``,
        ``N_PATIENTS: int | None = 40``), else from the type of the literal default; a
        ``None`` default or a non-literal default without annotation accepts anything.
        """
        if self.annotation:
            return _annotation_types(self.annotation)
        default = self.default
        if default is NO_LITERAL or default is None:
            return None
        if isinstance(default, tuple):
            return (list,)
        return (type(default),) if type(default) in _CHECKED_TYPES else None


def _annotation_types(text: str) -> tuple[type, ...] | None:
    """``'int | None'`` / ``'Optional[int]'`` / ``'list[int]'`` -> types; None if unknown."""
    text = text.strip()
    optional = re.fullmatch(r"(?:typing\.)?Optional\[(.+)\]", text)
    if optional:
        inner = _annotation_types(optional.group(1))
        return None if inner is None else (*inner, type(None))
    out: list[type] = []
    for part in text.split("|"):
        base = part.split("[", 1)[0].strip().removeprefix("typing.")
        if base not in _ANNOTATION_TYPES:
            return None
        out.append(_ANNOTATION_TYPES[base])
    return tuple(dict.fromkeys(out))


def declared_parameters(notebook: str | os.PathLike) -> dict[str, Declared]:
    """Parameters declared in the notebook's ``parameters`` cell (papermill inspection)."""
    import papermill

    path = Path(notebook)
    try:
        info = papermill.inspect_notebook(str(path))
    except Exception as exc:  # malformed JSON, missing file...
        raise RunnerError(f"cannot read notebook {path}: {exc}") from exc
    out = {}
    for name, item in info.items():
        annotation = item.get("inferred_type_name")
        out[name] = Declared(
            name=name,
            source=str(item.get("default", "")),
            annotation=None if annotation in (None, "None") else annotation,
        )
    return out


def check_type(declared: Declared, value: Any, *, origin: str = "") -> Any:
    """Return ``value`` (an int converted for a float parameter) or raise ParameterError."""
    types = declared.expected_types
    if types is None:
        return value
    if isinstance(value, bool):
        ok = bool in types
    elif isinstance(value, int) and int not in types and float in types:
        return float(value)
    elif isinstance(value, tuple) and list in types:
        return list(value)
    else:
        ok = any(isinstance(value, t) for t in types if t is not bool)
    if not ok:
        where = f" ({origin})" if origin else ""
        expected = " or ".join("None" if t is type(None) else t.__name__ for t in types)
        raise ParameterError(
            f"parameter {declared.name} expects {expected}, got {describe_value(value)}{where}"
        )
    return value


def parse_cli_value(text: str, declared: Declared | None = None) -> Any:
    """Turn a ``-p NAME VALUE`` string into a value: kept as text for str parameters
    (``null`` / ``None`` give None if the parameter allows it), otherwise read as YAML or
    a Python literal (``3`` -> int, ``1e-3`` -> float, ``true``, ``[1, 2]``, ``null``)."""
    import yaml

    types = declared.expected_types if declared is not None else None
    if types is not None and str in types:
        if type(None) in types and text in ("null", "None", "~"):
            return None
        return text
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        value = text
    if isinstance(value, str):  # YAML 1.1 misses e.g. 1e-3 and Python spellings (True, None)
        with contextlib.suppress(ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            value = ast.literal_eval(text)
    return value


def out_dir_parameter(out_dir: str | os.PathLike) -> str:
    """``OUT_DIR`` as injected: relative to the project root (POSIX form) when ``out_dir``
    lies inside it, else absolute. :func:`mammo_helpers.paths.project_path` turns it back."""
    return display_path(Path(out_dir).expanduser().absolute())


def _override_out_dir(value: Any) -> str:
    """An ``OUT_DIR`` override: relative paths are taken from the working directory (as any
    path typed on a command line), then injected like the runner's own ``OUT_DIR``."""
    if value is None:
        raise ParameterError("parameter OUT_DIR: no folder given (None)")
    return out_dir_parameter(check_path_text(value, "parameter OUT_DIR").resolve())


def _merge_scale(path: Path, scale: dict, declared: dict[str, Declared]) -> dict[str, tuple]:
    """``{name: (value, origin)}`` from the scale file's ``common`` and stem sections."""
    stem = path.stem
    scale_path = scale.get("path", "scale file")
    section = scale.get(stem, {})
    merged: dict[str, tuple] = {}
    for name, value in scale.get("common", {}).items():
        if name in declared and name not in section:  # a stem value replaces it unchecked
            merged[name] = (
                check_type(declared[name], value, origin=f"{scale_path}, common"),
                "common",
            )
    for name, value in section.items():
        if name not in declared:
            raise ParameterError(
                f"{scale_path}, section {stem}: notebook {path.name} does not declare "
                f"parameter {name} (declared: {', '.join(declared) or 'none'})"
            )
        merged[name] = (
            check_type(declared[name], value, origin=f"{scale_path}, section {stem}"),
            stem,
        )
    return merged


def resolve_parameters(
    notebook: str | os.PathLike,
    scale: dict,
    overrides: dict[str, Any] | None = None,
    *,
    results_dir: str | os.PathLike | None = None,
    declared: dict[str, Declared] | None = None,
    strict_overrides: bool = True,
) -> tuple[dict[str, Any], dict[str, str]]:
    """Parameters to inject into ``notebook`` and where each came from.

    ``scale`` is a :func:`~mammo_helpers.run.scales.load_scale` mapping. Merge order: common
    < stem section < ``overrides``; ``OUT_DIR`` (``<results_dir>/<stem>``, ``results_dir``
    defaulting to ``<project root>/results``) and ``SCALE`` come from the runner unless
    overridden. String overrides (from the command line) are parsed by
    :func:`parse_cli_value`.
    """
    path = Path(notebook)
    declared = declared_parameters(path) if declared is None else declared
    merged = _merge_scale(path, scale, declared)
    if "OUT_DIR" in declared:
        results = project_root() / "results" if results_dir is None else Path(results_dir)
        out_dir = check_path_text(results, "results folder").absolute() / path.stem
        merged["OUT_DIR"] = (out_dir_parameter(out_dir.resolve()), "runner")
    if "SCALE" in declared and scale.get("name"):
        merged["SCALE"] = (scale["name"], "runner")
    for name, value in (overrides or {}).items():
        if name not in declared:
            if not strict_overrides:
                continue
            raise ParameterError(
                f"notebook {path.name} does not declare parameter {name} "
                f"(declared: {', '.join(declared) or 'none'})"
            )
        if isinstance(value, str):
            value = parse_cli_value(value, declared[name])
        value = check_type(declared[name], value, origin="override")
        if name == "OUT_DIR":
            value = _override_out_dir(value)
        merged[name] = (value, "override")
    params = {name: value for name, (value, _) in merged.items()}
    origins = {name: origin for name, (_, origin) in merged.items()}
    return params, origins
