"""Which notebooks run, with which parameters, and where their products go.

Everything is resolved and checked for all selected notebooks before the first one runs
(and before anything is removed): the notebook names, every parameter, the timeout, the
folders. The default folders hang off one anchor, :func:`mammo_helpers.paths.project_root`
(``notebooks/``, ``book/executed/``, ``results/``), whatever the working directory;
folders given explicitly are taken as given (relative ones from the working directory).
Used by the runner for every chapter (00-05).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mammo_helpers.paths import describe_path, project_path, project_root
from mammo_helpers.run.options import (
    RunnerError,
    check_input_dir,
    check_output_dir,
    check_timeout,
)
from mammo_helpers.run.parameters import (
    NO_LITERAL,
    Declared,
    ParameterError,
    declared_parameters,
    resolve_parameters,
)

#: Default folders, relative to the project root.
NOTEBOOKS_DIR = "notebooks"
EXECUTED_DIR = "book/executed"
RESULTS_DIR = "results"


def default_dir(value: str | os.PathLike | None, default: str) -> str | os.PathLike:
    """``value``, or ``<project root>/<default>`` when it is None."""
    return project_root() / default if value is None else value


def list_notebooks(notebooks_dir: str | os.PathLike | None = None) -> list[Path]:
    """The numbered notebooks of a folder (default ``<project root>/notebooks``), sorted;
    checkpoints and hidden files are skipped. A missing folder has none."""
    folder = Path(default_dir(notebooks_dir, NOTEBOOKS_DIR))
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("*.ipynb") if not p.name.startswith((".", "_")))


def _is_path(name: str) -> bool:
    return name.endswith(".ipynb") or "/" in name or os.sep in name


def _match_stem(name: str, available: list[Path], folder: Path) -> Path:
    exact = [p for p in available if p.stem == name]
    matches = exact or [p for p in available if p.stem.startswith(name)]
    if not matches:
        known = ", ".join(p.stem for p in available) or "none"
        raise RunnerError(
            f"no notebook matches {describe_path(name)} in {folder} (available: {known})"
        )
    if len(matches) > 1:
        raise RunnerError(
            f"{name!r} matches several notebooks: {', '.join(p.stem for p in matches)}"
        )
    return matches[0]


def resolve_notebooks(
    names: list[str], notebooks_dir: str | os.PathLike | None = None
) -> list[Path]:
    """Map stems, prefixes ('00') or paths to notebook files; no names = all of them.

    Stems and prefixes are looked up in ``notebooks_dir`` (default
    ``<project root>/notebooks``), paths are taken as given.
    """
    folder_text = default_dir(notebooks_dir, NOTEBOOKS_DIR)
    folder = None
    if not names or not all(_is_path(n) for n in names):
        folder = check_input_dir(folder_text, "notebooks", "--notebooks-dir")
    available = list_notebooks(folder) if folder else []
    if not names:
        if not available:
            raise RunnerError(f"no notebooks in {folder}")
        return available
    out: list[Path] = []
    for name in names:
        if _is_path(name):
            path = Path(name).expanduser()
            if not path.is_file():
                raise RunnerError(f"notebook {describe_path(name)} does not exist")
            out.append(path)
        else:
            out.append(_match_stem(name, available, folder))
    unique: list[Path] = []
    for path in out:
        if path.resolve() not in [p.resolve() for p in unique]:
            unique.append(path)
    return unique


@dataclass
class Plan:
    """What will be run for one notebook (every path absolute)."""

    notebook: Path
    stem: str
    parameters: dict[str, Any]
    origins: dict[str, str]
    declared: dict[str, Declared]
    output: Path
    out_dir: Path
    timeout: float | None
    project_root: Path | None = None

    @property
    def failed_copy(self) -> Path:
        """Where a failed run's partial notebook is copied."""
        return self.output.with_name(f"{self.stem}.FAILED.ipynb")

    def effective(self) -> dict[str, Any]:
        """Every declared parameter's value in this run (non-literal defaults as source)."""
        values = {}
        for name, decl in self.declared.items():
            if name in self.parameters:
                values[name] = self.parameters[name]
            else:
                default = decl.default
                values[name] = decl.source if default is NO_LITERAL else default
        return values


def _check_overrides_declared(overrides: dict, declared_all: dict) -> None:
    """With several notebooks an override only has to be declared by one of them."""
    for name in overrides:
        if not any(name in d for d in declared_all.values()):
            union = sorted({n for d in declared_all.values() for n in d})
            raise ParameterError(
                f"no selected notebook declares parameter {name} "
                f"(declared: {', '.join(union) or 'none'})"
            )


def _claim(seen: dict[Path, Path], path: Path, notebook: Path, what: str) -> None:
    """Record that ``notebook`` writes ``path``; refuse a second notebook writing it."""
    other = seen.setdefault(path.resolve(), notebook)
    if other != notebook:
        names = (other.stem, notebook.stem) if other.stem != notebook.stem else (other, notebook)
        raise RunnerError(
            f"notebooks {names[0]} and {names[1]} would share the {what} {path}; "
            "run them separately or give them different names"
        )


def check_plans(plans: list[Plan]) -> None:
    """Refuse plans that would lose files: an executed copy written over a notebook being
    run, a folder where an executed copy goes, two notebooks sharing an executed copy or an
    ``OUT_DIR``, an ``OUT_DIR`` that cannot be created or written."""
    inputs = {plan.notebook.resolve() for plan in plans}
    outputs: dict[Path, Path] = {}
    out_dirs: dict[Path, Path] = {}
    for plan in plans:
        for product in (plan.output, plan.failed_copy):
            if product.resolve() in inputs:
                raise RunnerError(
                    f"--executed-dir: the executed copy of {plan.stem} would replace the "
                    f"notebook {product} itself; choose another folder"
                )
        if plan.output.is_dir():
            raise RunnerError(
                f"--executed-dir: {describe_path(plan.output)} is a folder, not a notebook"
            )
        check_output_dir(plan.out_dir, f"OUT_DIR of {plan.stem}")
        _claim(outputs, plan.output, plan.notebook, "executed copy")
        _claim(out_dirs, plan.out_dir, plan.notebook, "OUT_DIR")


def plan_runs(
    notebooks: list[Path],
    scale: dict,
    overrides: dict[str, Any] | None = None,
    *,
    executed_dir: str | os.PathLike | None = None,
    results_dir: str | os.PathLike | None = None,
    timeout: float | None = None,
) -> list[Plan]:
    """Resolve and check every notebook's run before anything runs (fail fast on typos).

    ``executed_dir`` defaults to ``<project root>/book/executed``, ``results_dir`` to
    ``<project root>/results``; ``timeout`` (seconds, None: the scale file's) must be
    positive and finite. With several notebooks an override only has to be declared by
    one of them. Raises :class:`RunnerError` naming the option or parameter at fault.
    """
    root = project_root()
    timeout = check_timeout(timeout, "timeout (--timeout)")
    if timeout is None:
        timeout = check_timeout(scale.get("timeout"), f"scale file {scale.get('path')}: timeout")
    executed = check_output_dir(default_dir(executed_dir, EXECUTED_DIR), "--executed-dir")
    results = check_output_dir(default_dir(results_dir, RESULTS_DIR), "--results-dir")
    overrides = dict(overrides or {})
    declared_all = {nb: declared_parameters(nb) for nb in notebooks}
    if len(notebooks) > 1:
        _check_overrides_declared(overrides, declared_all)
    plans = []
    for nb in notebooks:
        params, origins = resolve_parameters(
            nb,
            scale,
            overrides,
            results_dir=results,
            declared=declared_all[nb],
            strict_overrides=len(notebooks) == 1,
        )
        out_dir = project_path(params["OUT_DIR"]) if "OUT_DIR" in params else results / nb.stem
        plans.append(
            Plan(
                notebook=nb.absolute(),
                stem=nb.stem,
                parameters=params,
                origins=origins,
                declared=declared_all[nb],
                output=(executed / f"{nb.stem}.ipynb").resolve(),
                out_dir=out_dir.resolve(),
                timeout=timeout,
                project_root=root,
            )
        )
    check_plans(plans)
    return plans
