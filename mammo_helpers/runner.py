"""Run the book's notebooks with papermill at a named scale (the ``mammo-run`` command).

Used by ``make notebooks`` (default scale, executed copies land in ``book/executed/``),
by the test-suite (smoke scale) and by readers who rerun a notebook (00 data ... 05 domain
shift) with other parameters, data or hardware::

    mammo-run --scale smoke 00 02            # stems or prefixes
    mammo-run --scale paper 05 -p DEVICE cuda -p DATA_SOURCE inbreast -p DATA_DIR /data
    mammo-run --list                          # parameters each notebook would get

Parameters come from a scale file (``params/<scale>.yaml``, or ``--params FILE``)::

    timeout: 600            # optional: seconds per notebook (``--timeout`` wins)
    common: {SEED: 0, ...}  # offered to every notebook
    00_data_and_preprocessing: {N_PATIENTS: 12}   # only for that notebook

Merge order: the notebook's own defaults < ``common`` < its stem section < ``-p``
overrides. Only the parameters a notebook declares in its ``parameters`` cell are injected
(``common`` keys a notebook does not declare are skipped; a stem section or ``-p`` naming
an undeclared parameter is an error). Values are checked against the declared type: the
annotation if there is one (``N_PATIENTS: Optional[int] = 40`` accepts null; papermill
does not recognise ``int | None`` and skips such a line), else the type
of the literal default (int, float, str, bool, list, dict; an int is accepted for a float;
a ``None`` default accepts anything). ``-p`` values are kept as text for str parameters
and read as YAML / Python literals otherwise. The runner sets
``OUT_DIR = <results-dir>/<stem>`` (absolute) and ``SCALE = <scale name>`` when the
notebook declares them; a ``-p`` override wins, scale files may not set them. Everything
is resolved for all selected notebooks before the first one runs.

Each notebook is executed in a child process (papermill, kernel ``python3`` bound to this
interpreter, working directory = the notebook's folder, progress bar and cell output
logged). The timeout is a wall-clock watchdog on that child: when it expires the child,
its kernel and anything they started are killed, and the partially executed notebook (which
papermill saves at the start and end of every cell) is kept with an error output on the
cell that was running. On any failure the partial notebook stays at
``<executed-dir>/<stem>.ipynb`` with a copy at ``<stem>.FAILED.ipynb``, and the failing
cell (its number in the committed notebook, counting markdown cells, and its first line)
and the exception are reported; exit code 1 (2 for configuration errors), and the
remaining notebooks run only with ``--keep-going``. Before a run the previous executed
copy, its FAILED copy and ``OUT_DIR/metrics.json`` are removed, so stale files cannot pass
for this run's. ``<results-dir>/run_summary.json`` records status, seconds and the
parameters of every run (entries of notebooks not run this time are kept).
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mammo_helpers.paths import atomic_write

SCALES = ("smoke", "default", "paper")
RUNNER_PARAMETERS = ("OUT_DIR", "SCALE")
SUMMARY_NAME = "run_summary.json"
KERNEL_NAME = "python3"
_INJECTED_TAG = "injected-parameters"
_ERROR_MARKER_TAG = "papermill-error-cell-tag"
_NO_LITERAL = object()


class RunnerError(Exception):
    """A configuration problem found before anything runs (bad scale file, notebook name...)."""


class ParameterError(RunnerError, ValueError):
    """A parameter is undeclared or has the wrong type; the message names it."""


class NotebookFailed(RuntimeError):
    """Raised by :func:`run_notebook` when the notebook fails or times out."""

    def __init__(self, result: RunResult):
        super().__init__(result.describe_failure())
        self.result = result


# --------------------------------------------------------------------------- scale files


def _repo_params_dir() -> Path:
    return Path(__file__).resolve().parent.parent / "params"


def scale_file(scale_or_path: str | os.PathLike) -> Path:
    """Path of a scale file: an existing file, or ``params/<name>.yaml`` (cwd, then repo)."""
    text = str(scale_or_path)
    candidate = Path(text).expanduser()
    if candidate.suffix in (".yaml", ".yml") or candidate.is_file() or os.sep in text:
        if not candidate.is_file():
            raise RunnerError(f"scale file {text!r} does not exist")
        return candidate
    tried = []
    for folder in (Path.cwd() / "params", _repo_params_dir()):
        path = folder / f"{text}.yaml"
        tried.append(str(path))
        if path.is_file():
            return path
    raise RunnerError(
        f"unknown scale {text!r}: none of {', '.join(tried)} exists "
        f"(known scales: {', '.join(SCALES)}; or pass --params FILE)"
    )


def load_scale(scale_or_path: str | os.PathLike) -> dict:
    """Read and check a scale file (``'smoke'``, ``'default'``, ``'paper'`` or a YAML path).

    Returns ``{'common': {...}, '<stem>': {...}, ..., 'timeout': float | None,
    'name': <scale name>, 'path': <file>}``; every section is a mapping of parameter names.
    """
    import yaml

    path = scale_file(scale_or_path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise RunnerError(f"scale file {path}: invalid YAML: {exc}") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise RunnerError(f"scale file {path}: top level must be a mapping, got {_kind(data)}")
    out: dict[str, Any] = {"common": {}, "timeout": None}
    for key, value in data.items():
        key = str(key)
        if key == "timeout":
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int | float) or value <= 0
            ):
                raise RunnerError(
                    f"scale file {path}: 'timeout' must be a positive number of seconds"
                )
            out["timeout"] = None if value is None else float(value)
            continue
        if value is None:
            value = {}
        if not isinstance(value, dict):
            raise RunnerError(
                f"scale file {path}: section {key!r} must be a mapping of parameter names "
                f"to values, got {_kind(value)}"
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
        out[key] = dict(value)
    out["name"] = path.stem
    out["path"] = str(path)
    return out


# ---------------------------------------------------------------------- declared parameters


@dataclass(frozen=True)
class Declared:
    """One parameter of a notebook's ``parameters`` cell."""

    name: str
    source: str  # the default as written in the cell
    annotation: str | None = None

    @property
    def default(self) -> Any:
        """The default as a Python value, or ``_NO_LITERAL`` if it is not a literal."""
        try:
            return ast.literal_eval(self.source)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            return _NO_LITERAL

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
        if default is _NO_LITERAL or default is None:
            return None
        if isinstance(default, tuple):
            return (list,)
        return (type(default),) if type(default) in _CHECKED_TYPES else None


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


def _kind(value: Any) -> str:
    if value is None:
        return "None"
    if isinstance(value, str):
        return f'str "{value}"'
    return f"{type(value).__name__} {value!r}"


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
            f"parameter {declared.name} expects {expected}, got {_kind(value)}{where}"
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


# ------------------------------------------------------------------------ notebook lookup


def list_notebooks(notebooks_dir: str | os.PathLike) -> list[Path]:
    """The numbered notebooks of a folder, sorted (checkpoints and hidden files skipped)."""
    folder = Path(notebooks_dir)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("*.ipynb") if not p.name.startswith((".", "_")))


def resolve_notebooks(names: list[str], notebooks_dir: str | os.PathLike) -> list[Path]:
    """Map stems, prefixes ('00') or paths to notebook files; no names = all of them."""
    available = list_notebooks(notebooks_dir)
    if not names:
        if not available:
            raise RunnerError(f"no notebooks in {notebooks_dir}")
        return available
    out: list[Path] = []
    for name in names:
        path = Path(name)
        if path.suffix == ".ipynb" or os.sep in name:
            if not path.is_file():
                raise RunnerError(f"notebook {name!r} does not exist")
            out.append(path)
            continue
        exact = [p for p in available if p.stem == name]
        matches = exact or [p for p in available if p.stem.startswith(name)]
        if not matches:
            known = ", ".join(p.stem for p in available) or "none"
            raise RunnerError(
                f"no notebook matches {name!r} in {notebooks_dir} (available: {known})"
            )
        if len(matches) > 1:
            raise RunnerError(
                f"{name!r} matches several notebooks: {', '.join(p.stem for p in matches)}"
            )
        out.append(matches[0])
    unique: list[Path] = []
    for path in out:
        if path.resolve() not in [p.resolve() for p in unique]:
            unique.append(path)
    return unique


# ------------------------------------------------------------------------ parameter merge


@dataclass
class Plan:
    """What will be run for one notebook."""

    notebook: Path
    stem: str
    parameters: dict[str, Any]
    origins: dict[str, str]
    declared: dict[str, Declared]
    output: Path
    out_dir: Path
    timeout: float | None

    def effective(self) -> dict[str, Any]:
        """Every declared parameter's value in this run (non-literal defaults as source)."""
        values = {}
        for name, decl in self.declared.items():
            if name in self.parameters:
                values[name] = self.parameters[name]
            else:
                default = decl.default
                values[name] = decl.source if default is _NO_LITERAL else default
        return values


def resolve_parameters(
    notebook: str | os.PathLike,
    scale: dict,
    overrides: dict[str, Any] | None = None,
    *,
    results_dir: str | os.PathLike = "results",
    declared: dict[str, Declared] | None = None,
    strict_overrides: bool = True,
) -> tuple[dict[str, Any], dict[str, str]]:
    """Parameters to inject into ``notebook`` and where each came from.

    ``scale`` is a :func:`load_scale` mapping. Merge order: common < stem section <
    ``overrides``; ``OUT_DIR`` / ``SCALE`` come from the runner unless overridden. String
    overrides (from the command line) are parsed by :func:`parse_cli_value`.
    """
    path = Path(notebook)
    stem = path.stem
    declared = declared_parameters(path) if declared is None else declared
    names = ", ".join(declared) or "none"
    scale_path = scale.get("path", "scale file")
    params: dict[str, Any] = {}
    origins: dict[str, str] = {}

    section = scale.get(stem, {})
    for name, value in scale.get("common", {}).items():
        if name in declared and name not in section:  # a stem value replaces it unchecked
            params[name] = check_type(declared[name], value, origin=f"{scale_path}, common")
            origins[name] = "common"
    for name, value in section.items():
        if name not in declared:
            raise ParameterError(
                f"{scale_path}, section {stem}: notebook {path.name} does not declare "
                f"parameter {name} (declared: {names})"
            )
        params[name] = check_type(declared[name], value, origin=f"{scale_path}, section {stem}")
        origins[name] = stem
    if "OUT_DIR" in declared:
        params["OUT_DIR"] = str((Path(results_dir) / stem).resolve())
        origins["OUT_DIR"] = "runner"
    if "SCALE" in declared and scale.get("name"):
        params["SCALE"] = scale["name"]
        origins["SCALE"] = "runner"
    for name, value in (overrides or {}).items():
        if name not in declared:
            if not strict_overrides:
                continue
            raise ParameterError(
                f"notebook {path.name} does not declare parameter {name} (declared: {names})"
            )
        if isinstance(value, str):
            value = parse_cli_value(value, declared[name])
        value = check_type(declared[name], value, origin="override")
        if name == "OUT_DIR":
            value = str(Path(value).expanduser().resolve())
        params[name] = value
        origins[name] = "override"
    return params, origins


def plan_runs(
    notebooks: list[Path],
    scale: dict,
    overrides: dict[str, Any] | None = None,
    *,
    executed_dir: str | os.PathLike = "book/executed",
    results_dir: str | os.PathLike = "results",
    timeout: float | None = None,
) -> list[Plan]:
    """Resolve every notebook's parameters before anything runs (fail fast on typos).

    With several notebooks an override only has to be declared by one of them."""
    overrides = dict(overrides or {})
    declared_all = {nb: declared_parameters(nb) for nb in notebooks}
    if len(notebooks) > 1:
        for name in overrides:
            if not any(name in d for d in declared_all.values()):
                union = sorted({n for d in declared_all.values() for n in d})
                raise ParameterError(
                    f"no selected notebook declares parameter {name} "
                    f"(declared: {', '.join(union) or 'none'})"
                )
    plans = []
    for nb in notebooks:
        params, origins = resolve_parameters(
            nb,
            scale,
            overrides,
            results_dir=results_dir,
            declared=declared_all[nb],
            strict_overrides=len(notebooks) == 1,
        )
        out_dir = Path(params.get("OUT_DIR", Path(results_dir) / nb.stem)).resolve()
        plans.append(
            Plan(
                notebook=nb,
                stem=nb.stem,
                parameters=params,
                origins=origins,
                declared=declared_all[nb],
                output=(Path(executed_dir) / f"{nb.stem}.ipynb").resolve(),
                out_dir=out_dir,
                timeout=timeout if timeout is not None else scale.get("timeout"),
            )
        )
    return plans


# ------------------------------------------------------------------------------ execution


@dataclass
class RunResult:
    """Outcome of one notebook run."""

    stem: str
    notebook: Path
    output: Path
    status: str  # "ok" | "failed" | "timeout"
    seconds: float
    parameters: dict[str, Any]
    error: dict[str, Any] = field(default_factory=dict)
    failed_copy: Path | None = None
    injected: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def describe_failure(self) -> str:
        err = self.error
        cell = err.get("cell")
        where = f"cell {cell}" if cell else "before any cell ran"
        if err.get("execution_count"):
            where += f" (In [{err['execution_count']}])"
        lines = [f"notebook {self.notebook} FAILED after {self.seconds:.1f} s in {where}"]
        if err.get("source_line") is not None:
            lines.append(f"  first line of the cell: {err['source_line']}")
        lines.append(f"  {err.get('ename', 'Error')}: {err.get('evalue', '')}")
        if self.output.exists():
            lines.append(f"  partially executed notebook: {self.output}")
        if self.failed_copy is not None:
            lines.append(f"  copy: {self.failed_copy}")
        return "\n".join(lines)

    def to_json(self) -> dict:
        data = {
            "status": self.status,
            "seconds": round(self.seconds, 2),
            "notebook": str(self.notebook),
            "output": str(self.output),
            "parameters": _jsonable(self.parameters),
            "injected": sorted(self.injected),
        }
        if self.error:
            data["error"] = _jsonable(self.error)
        return data


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def _kill_tree(pid: int, grace: float = 0.5) -> None:
    """Terminate a process, its kernel and every descendant (kernels start new sessions)."""
    try:
        import psutil
    except ImportError:  # pragma: no cover - psutil comes with ipykernel
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
        return
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.terminate()
    _, alive = psutil.wait_procs(procs, timeout=grace)
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(alive, timeout=grace)


def _source_cell(cells: list, index: int) -> tuple[int, str]:
    """1-based number of ``cells[index]`` in the committed notebook and its first line."""
    number = 1 + sum(
        1
        for cell in cells[:index]
        if not {_INJECTED_TAG, _ERROR_MARKER_TAG} & set(cell.get("metadata", {}).get("tags", []))
    )
    source = cells[index].get("source", "")
    if isinstance(source, list):
        source = "".join(source)
    first = next((line for line in source.splitlines() if line.strip()), "")
    return number, first.strip()


def _failing_cell(output: Path) -> dict[str, Any]:
    """Find the failed (or still running) cell in a partially executed notebook."""
    import nbformat

    try:
        nb = nbformat.read(output, as_version=4)
    except Exception:
        return {}
    for index, cell in enumerate(nb.cells):
        meta = cell.get("metadata", {}).get("papermill", {})
        errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        if meta.get("exception") or meta.get("status") in ("failed", "running") or errors:
            number, first = _source_cell(nb.cells, index)
            info = {
                "cell": number,
                "source_line": first,
                "execution_count": cell.get("execution_count"),
                "cell_status": meta.get("status"),
            }
            if errors:
                info["ename"] = errors[0].get("ename")
                info["evalue"] = errors[0].get("evalue")
            return info
    return {}


def _mark_timeout(output: Path, message: str) -> None:
    """Add a TimeoutError output to the cell that was running when the watchdog fired."""
    import nbformat

    try:
        nb = nbformat.read(output, as_version=4)
    except Exception:
        return
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("papermill", {})
        if meta.get("status") == "running":
            cell.outputs.append(
                nbformat.v4.new_output(
                    "error", ename="TimeoutError", evalue=message, traceback=[message]
                )
            )
            meta["status"] = "failed"
            meta["exception"] = True
            break
    with atomic_write(output, "w") as fh:
        nbformat.write(nb, fh)


def execute(plan: Plan, *, quiet: bool = False) -> RunResult:
    """Execute one planned notebook in a child process with the wall-clock watchdog."""
    output = plan.output
    output.parent.mkdir(parents=True, exist_ok=True)
    failed_copy = output.with_name(f"{plan.stem}.FAILED.ipynb")
    for stale in (output, failed_copy, plan.out_dir / "metrics.json"):
        stale.unlink(missing_ok=True)
    plan.out_dir.mkdir(parents=True, exist_ok=True)

    with tempfile.TemporaryDirectory(prefix="mammo-run-") as tmp:
        spec_path = Path(tmp) / "spec.json"
        result_path = Path(tmp) / "result.json"
        spec = {
            "input": str(plan.notebook.resolve()),
            "output": str(output),
            "cwd": str(plan.notebook.resolve().parent),
            "parameters": plan.parameters,
            "result": str(result_path),
            "jupyter_path": str(Path(tmp) / "jupyter"),
            "log_output": not quiet,
            "progress_bar": not quiet,
        }
        spec_path.write_text(json.dumps(spec), encoding="utf-8")
        cmd = [sys.executable, "-c", _CHILD_CODE, str(spec_path)]
        env = dict(os.environ, PYDEVD_DISABLE_FILE_VALIDATION="1")
        start = time.monotonic()
        proc = subprocess.Popen(cmd, env=env, start_new_session=True)
        timed_out = False
        try:
            proc.wait(timeout=plan.timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill_tree(proc.pid)
            proc.wait()
        except BaseException:  # KeyboardInterrupt: do not leave kernels behind
            _kill_tree(proc.pid)
            proc.wait()
            raise
        seconds = time.monotonic() - start
        child = {}
        if result_path.exists():
            child = json.loads(result_path.read_text(encoding="utf-8"))

    if not timed_out and proc.returncode == 0 and child.get("status") == "ok":
        return RunResult(
            plan.stem,
            plan.notebook,
            output,
            "ok",
            seconds,
            plan.effective(),
            injected=tuple(plan.parameters),
        )

    if timed_out:
        message = f"stopped by mammo-run after the {plan.timeout:g} s timeout"
        if output.exists():
            _mark_timeout(output, message)
        error = {"ename": "TimeoutError", "evalue": message}
        status = "timeout"
    else:
        error = {k: child[k] for k in ("ename", "evalue") if child.get(k) is not None}
        if not error:
            error = {
                "ename": "ChildProcessError",
                "evalue": f"papermill process exited with code {proc.returncode}",
            }
        status = "failed"
    if output.exists():
        cell_info = _failing_cell(output)
        for key, value in cell_info.items():
            if key in ("ename", "evalue") and key in error:
                continue
            error[key] = value
        shutil.copyfile(output, failed_copy)
    return RunResult(
        plan.stem,
        plan.notebook,
        output,
        status,
        seconds,
        plan.effective(),
        error=error,
        failed_copy=failed_copy if failed_copy.exists() else None,
        injected=tuple(plan.parameters),
    )


_CHILD_CODE = "import sys; from mammo_helpers.runner import _child_main; sys.exit(_child_main())"


def _child_main(argv: list[str] | None = None) -> int:
    """Child-process side of :func:`execute`: run papermill, record the outcome as JSON."""
    import logging

    argv = sys.argv[1:] if argv is None else argv
    spec = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    # A kernelspec named python3 bound to this interpreter, found before any user-level one.
    kernel_dir = Path(spec["jupyter_path"]) / "kernels" / KERNEL_NAME
    kernel_dir.mkdir(parents=True, exist_ok=True)
    kernel = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": f"Python 3 ({sys.executable})",
        "language": "python",
        "metadata": {"debugger": False},
    }
    (kernel_dir / "kernel.json").write_text(json.dumps(kernel), encoding="utf-8")
    os.environ["JUPYTER_PATH"] = os.pathsep.join(
        [spec["jupyter_path"], *filter(None, [os.environ.get("JUPYTER_PATH")])]
    )
    level = logging.INFO if spec["log_output"] else logging.WARNING
    logging.basicConfig(level=level, format="%(message)s", stream=sys.stderr)

    import papermill
    from papermill.exceptions import PapermillExecutionError

    result: dict[str, Any] = {"status": "ok"}
    code = 0
    try:
        papermill.execute_notebook(
            spec["input"],
            spec["output"],
            parameters=spec["parameters"],
            kernel_name=KERNEL_NAME,
            cwd=spec["cwd"],
            progress_bar=spec["progress_bar"],
            log_output=spec["log_output"],
        )
    except PapermillExecutionError as exc:
        result = {
            "status": "failed",
            "ename": exc.ename,
            "evalue": exc.evalue,
            "execution_count": exc.exec_count,
        }
        code = 1
    except Exception as exc:  # kernel died, no such kernel, unreadable notebook...
        result = {"status": "failed", "ename": type(exc).__name__, "evalue": str(exc)}
        code = 1
    Path(spec["result"]).write_text(json.dumps(result, default=str), encoding="utf-8")
    return code


# -------------------------------------------------------------------------------- summary


def write_summary(results: list[RunResult], results_dir: str | os.PathLike, scale: dict) -> Path:
    """Merge these results into ``<results-dir>/run_summary.json`` (atomic write)."""
    path = Path(results_dir) / SUMMARY_NAME
    summary: dict[str, Any] = {"notebooks": {}}
    if path.exists():
        with contextlib.suppress(ValueError, OSError):
            old = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(old, dict) and isinstance(old.get("notebooks"), dict):
                summary = old
    now = datetime.now(UTC).isoformat(timespec="seconds")
    for result in results:
        entry = result.to_json()
        entry.update(scale=scale.get("name"), params_file=scale.get("path"), finished=now)
        summary["notebooks"][result.stem] = entry
    summary["updated"] = now
    summary["notebooks"] = dict(sorted(summary["notebooks"].items()))
    with atomic_write(path, "w") as fh:
        json.dump(summary, fh, indent=2, default=str)
        fh.write("\n")
    return path


# ------------------------------------------------------------------------------ Python API


def run_notebooks(
    notebooks: list[str | os.PathLike] | None = None,
    scale: str | os.PathLike | dict = "default",
    *,
    notebooks_dir: str | os.PathLike = "notebooks",
    executed_dir: str | os.PathLike = "book/executed",
    results_dir: str | os.PathLike = "results",
    timeout: float | None = None,
    overrides: dict[str, Any] | None = None,
    keep_going: bool = False,
    quiet: bool = False,
) -> list[RunResult]:
    """Run several notebooks (all of ``notebooks_dir`` by default); write the summary.

    Stops at the first failure unless ``keep_going``. Returns the results of the notebooks
    that ran; never raises for a failing notebook (check ``result.ok``)."""
    scale_cfg = scale if isinstance(scale, dict) else load_scale(scale)
    paths = resolve_notebooks([str(n) for n in notebooks or []], notebooks_dir)
    plans = plan_runs(
        paths,
        scale_cfg,
        overrides,
        executed_dir=executed_dir,
        results_dir=results_dir,
        timeout=timeout,
    )
    results = []
    for plan in plans:
        if not quiet:
            print(
                f"[mammo-run] {plan.stem}: scale {scale_cfg.get('name')}, "
                f"output {plan.output}, timeout {plan.timeout or 'none'}",
                file=sys.stderr,
                flush=True,
            )
        result = execute(plan, quiet=quiet)
        results.append(result)
        write_summary([result], results_dir, scale_cfg)
        if result.ok:
            if not quiet:
                print(f"[mammo-run] {plan.stem}: ok in {result.seconds:.1f} s", file=sys.stderr)
        else:
            print(f"[mammo-run] {result.describe_failure()}", file=sys.stderr, flush=True)
            if not keep_going:
                break
    return results


def run_notebook(
    path: str | os.PathLike,
    scale: str | os.PathLike | dict = "smoke",
    *,
    notebooks_dir: str | os.PathLike = "notebooks",
    executed_dir: str | os.PathLike = "book/executed",
    results_dir: str | os.PathLike = "results",
    timeout: float | None = None,
    overrides: dict[str, Any] | None = None,
    quiet: bool = False,
    **parameters: Any,
) -> Path:
    """Run one notebook (path, stem or prefix) and return the executed copy's path.

    Extra keyword arguments are parameter overrides, e.g.
    ``run_notebook("02", "smoke", EPOCHS=1)``; ``overrides={...}`` does the same for names
    that clash with the options. Raises :class:`NotebookFailed` if the notebook fails.
    """
    merged = {**(overrides or {}), **parameters}
    results = run_notebooks(
        [path],
        scale,
        notebooks_dir=notebooks_dir,
        executed_dir=executed_dir,
        results_dir=results_dir,
        timeout=timeout,
        overrides=merged,
        quiet=quiet,
    )
    result = results[0]
    if not result.ok:
        raise NotebookFailed(result)
    return result.output


# ------------------------------------------------------------------------------------ CLI


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mammo-run",
        description="Execute the book's notebooks with papermill at a named parameter scale.",
    )
    parser.add_argument("notebooks", nargs="*", metavar="NOTEBOOK", help="stem, prefix or path")
    parser.add_argument("--scale", help=f"one of {', '.join(SCALES)} (default: default)")
    parser.add_argument("--params", metavar="FILE", help="scale file to use instead")
    parser.add_argument("--notebooks-dir", default="notebooks")
    parser.add_argument("--executed-dir", default="book/executed")
    parser.add_argument("--results-dir", default="results")
    parser.add_argument(
        "--timeout", type=float, metavar="SECONDS", help="wall-clock limit per notebook"
    )
    parser.add_argument(
        "-p",
        "--parameter",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "VALUE"),
        help="override a parameter (repeatable); VALUE is read as YAML unless the "
        "parameter is a string",
    )
    parser.add_argument("--keep-going", action="store_true", help="run the rest after a failure")
    parser.add_argument("--list", action="store_true", help="show parameters, run nothing")
    parser.add_argument("--quiet", action="store_true", help="no progress bar or cell output")
    return parser


def _print_listing(plans: list[Plan], scale: dict) -> None:
    print(f"scale {scale.get('name')} ({scale.get('path')})")
    for plan in plans:
        print(f"\n{plan.stem}  ({plan.notebook})  -> {plan.output}")
        if not plan.declared:
            print("  (no parameters cell)")
        width = max((len(n) for n in plan.declared), default=0)
        for name, decl in plan.declared.items():
            if name in plan.parameters:
                value, origin = repr(plan.parameters[name]), plan.origins[name]
            else:
                value, origin = decl.source, "notebook default"
            print(f"  {name:<{width}} = {value}  [{origin}]")


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``mammo-run`` / ``python -m mammo_helpers.runner``."""
    args = _build_parser().parse_args(argv)
    overrides: dict[str, Any] = {}
    for name, value in args.parameter:
        overrides[name] = value
    try:
        scale = load_scale(args.params or args.scale or "default")
        if args.params and args.scale:
            scale["name"] = args.scale
        if args.list:
            paths = resolve_notebooks(args.notebooks, args.notebooks_dir)
            plans = plan_runs(
                paths,
                scale,
                overrides,
                executed_dir=args.executed_dir,
                results_dir=args.results_dir,
                timeout=args.timeout,
            )
            _print_listing(plans, scale)
            return 0
        results = run_notebooks(
            args.notebooks,
            scale,
            notebooks_dir=args.notebooks_dir,
            executed_dir=args.executed_dir,
            results_dir=args.results_dir,
            timeout=args.timeout,
            overrides=overrides,
            keep_going=args.keep_going,
            quiet=args.quiet,
        )
    except RunnerError as exc:
        print(f"mammo-run: error: {exc}", file=sys.stderr)
        return 2
    failed = [r for r in results if not r.ok]
    if failed:
        print(
            f"[mammo-run] {len(failed)} of {len(results)} notebook(s) failed: "
            + ", ".join(f"{r.stem} ({r.status})" for r in failed),
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
