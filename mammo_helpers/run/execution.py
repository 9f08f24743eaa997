"""Execute one planned notebook: child process, wall-clock watchdog, failing-cell report.

Each notebook is executed in a child process (papermill, kernel ``python3`` bound to this
interpreter, working directory = the notebook's folder, ``$MAMMO_PROJECT_ROOT`` = the
runner's project root so the kernel resolves a relative ``OUT_DIR`` the same way, progress
bar and cell output logged). The timeout is a wall-clock watchdog on that child: when it
expires the child is frozen, its kernel and anything the kernel started receive SIGTERM,
get :data:`TERMINATE_GRACE_S` seconds to clean up (a cohort build inside
:func:`mammo_helpers.paths.sigterm_as_interrupt` removes its partial folder) and are then
killed with the child (:func:`kill_tree`). The partially executed notebook (which papermill
saves at the start and end of every cell) is kept with a ``TimeoutError`` output on the
cell that was running.

On any failure the partial notebook stays at ``<executed-dir>/<stem>.ipynb`` with a copy at
``<stem>.FAILED.ipynb``, and the failing cell (its number in the committed notebook,
counting markdown cells, and its first line) and the exception are reported. Before a run
the previous executed copy, its FAILED copy and ``OUT_DIR/metrics.json`` are removed, so
stale files cannot pass for this run's. Used by the runner for every chapter (00-05).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mammo_helpers.paths import PROJECT_ROOT_ENV, atomic_write
from mammo_helpers.run.plan import Plan

KERNEL_NAME = "python3"
#: Seconds between SIGTERM and SIGKILL when the watchdog stops a notebook: time for the
#: kernel to turn SIGTERM into an exception and remove half-written folders.
TERMINATE_GRACE_S = 5.0
_INJECTED_TAG = "injected-parameters"
_ERROR_MARKER_TAG = "papermill-error-cell-tag"
_CHILD_CODE = (
    "import sys; from mammo_helpers.run.execution import _child_main; sys.exit(_child_main())"
)


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


class NotebookFailed(RuntimeError):
    """Raised by :func:`~mammo_helpers.run.runs.run_notebook` when the notebook fails or
    times out; ``.result`` holds the :class:`RunResult`."""

    def __init__(self, result: RunResult):
        super().__init__(result.describe_failure())
        self.result = result


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


# ------------------------------------------------------------------ stopping processes


def kill_tree(pid: int, grace: float = TERMINATE_GRACE_S) -> None:
    """Stop process ``pid`` (the papermill child) and every descendant (its kernel, whatever
    the kernel started; kernels start new sessions, so a process group would miss them).

    The process ``pid`` is first frozen (SIGSTOP): papermill then cannot overwrite the
    partial notebook, and the kernel (whose ``ipykernel`` exits at once when its parent
    dies) keeps its grace period. The descendants get SIGTERM at once; whatever still runs
    after ``grace`` seconds (and anything those processes started meanwhile) gets SIGKILL,
    and so does the frozen process.
    """
    import psutil

    try:
        root = psutil.Process(pid)
        root.suspend()
        procs = root.children(recursive=True)
    except psutil.Error:
        procs = []
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.terminate()
    _, alive = psutil.wait_procs(procs, timeout=grace)
    for proc in list(alive):
        with contextlib.suppress(psutil.Error):
            alive.extend(p for p in proc.children(recursive=True) if p not in alive)
    with contextlib.suppress(psutil.Error):
        alive.append(psutil.Process(pid))
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(alive, timeout=grace)


# ------------------------------------------------------------------ failing-cell report


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


# ------------------------------------------------------------------------- one run


def _prepare(plan: Plan) -> None:
    """Create the output folders, then remove the previous run's products (in that order,
    so a folder that cannot be created leaves the previous products in place)."""
    plan.output.parent.mkdir(parents=True, exist_ok=True)
    plan.out_dir.mkdir(parents=True, exist_ok=True)
    for stale in (plan.output, plan.failed_copy, plan.out_dir / "metrics.json"):
        stale.unlink(missing_ok=True)


def _spec(plan: Plan, tmp: Path, quiet: bool) -> dict:
    return {
        "input": str(plan.notebook.resolve()),
        "output": str(plan.output),
        "cwd": str(plan.notebook.resolve().parent),
        "parameters": plan.parameters,
        "result": str(tmp / "result.json"),
        "jupyter_path": str(tmp / "jupyter"),
        "log_output": not quiet,
        "progress_bar": not quiet,
    }


def _run_child(plan: Plan, spec: dict, tmp: Path) -> tuple[int, bool, float]:
    """Run the papermill child under the watchdog: (return code, timed out, seconds)."""
    spec_path = tmp / "spec.json"
    spec_path.write_text(json.dumps(spec), encoding="utf-8")
    env = dict(os.environ, PYDEVD_DISABLE_FILE_VALIDATION="1")
    if plan.project_root is not None:
        env[PROJECT_ROOT_ENV] = str(plan.project_root)
    start = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD_CODE, str(spec_path)], env=env, start_new_session=True
    )
    timed_out = False
    try:
        proc.wait(timeout=plan.timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        kill_tree(proc.pid)
        proc.wait()
    except BaseException:  # KeyboardInterrupt: do not leave kernels behind
        kill_tree(proc.pid)
        proc.wait()
        raise
    return proc.returncode, timed_out, time.monotonic() - start


def _error_of(plan: Plan, child: dict, returncode: int, timed_out: bool) -> tuple[str, dict]:
    """Status and error description of a run that did not succeed."""
    if timed_out:
        message = f"stopped by mammo-run after the {plan.timeout:g} s timeout"
        if plan.output.exists():
            _mark_timeout(plan.output, message)
        return "timeout", {"ename": "TimeoutError", "evalue": message}
    error = {k: child[k] for k in ("ename", "evalue") if child.get(k) is not None}
    if not error:
        error = {
            "ename": "ChildProcessError",
            "evalue": f"papermill process exited with code {returncode}",
        }
    return "failed", error


def execute(plan: Plan, *, quiet: bool = False) -> RunResult:
    """Execute one planned notebook in a child process with the wall-clock watchdog."""
    _prepare(plan)
    with tempfile.TemporaryDirectory(prefix="mammo-run-") as tmp:
        spec = _spec(plan, Path(tmp), quiet)
        returncode, timed_out, seconds = _run_child(plan, spec, Path(tmp))
        result_path = Path(spec["result"])
        child = json.loads(result_path.read_text(encoding="utf-8")) if result_path.exists() else {}

    common = {"parameters": plan.effective(), "injected": tuple(plan.parameters)}
    if not timed_out and returncode == 0 and child.get("status") == "ok":
        return RunResult(plan.stem, plan.notebook, plan.output, "ok", seconds, **common)

    status, error = _error_of(plan, child, returncode, timed_out)
    if plan.output.exists():
        for key, value in _failing_cell(plan.output).items():
            if not (key in ("ename", "evalue") and key in error):
                error[key] = value
        shutil.copyfile(plan.output, plan.failed_copy)
    return RunResult(
        plan.stem,
        plan.notebook,
        plan.output,
        status,
        seconds,
        error=error,
        failed_copy=plan.failed_copy if plan.failed_copy.exists() else None,
        **common,
    )


# ------------------------------------------------------------------ the child process


def _install_kernelspec(jupyter_path: str) -> None:
    """A kernelspec named python3 bound to this interpreter, found before any user one."""
    kernel_dir = Path(jupyter_path) / "kernels" / KERNEL_NAME
    kernel_dir.mkdir(parents=True, exist_ok=True)
    kernel = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": f"Python 3 ({sys.executable})",
        "language": "python",
        "metadata": {"debugger": False},
    }
    (kernel_dir / "kernel.json").write_text(json.dumps(kernel), encoding="utf-8")
    os.environ["JUPYTER_PATH"] = os.pathsep.join(
        [jupyter_path, *filter(None, [os.environ.get("JUPYTER_PATH")])]
    )


def _child_main(argv: list[str] | None = None) -> int:
    """Child-process side of :func:`execute`: run papermill, record the outcome as JSON."""
    import logging

    argv = sys.argv[1:] if argv is None else argv
    spec = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    _install_kernelspec(spec["jupyter_path"])
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
