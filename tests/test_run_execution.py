"""Tests for mammo_helpers.run.execution: the child process, the watchdog (SIGTERM, a grace
period, SIGKILL) and the failing-cell report.

Two runs go through ``mammo-run`` itself (a failing notebook; a notebook stuck in a long
cell, with ``--keep-going``); the rest use plain processes and notebooks built in memory.
"""

from __future__ import annotations

import inspect
import json
import shutil
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import nbformat
import pytest

from mammo_helpers.run import TERMINATE_GRACE_S, RunResult, kill_tree, main
from mammo_helpers.run.execution import _failing_cell, _mark_timeout

FIXTURES = Path(__file__).resolve().parent / "fixtures"
NB_DIR = FIXTURES / "notebooks"
SCALE = FIXTURES / "params" / "fixture.yaml"
DEMO = NB_DIR / "params_demo.ipynb"
#: Watchdog budgets (seconds) tried in turn by the timeout test; see its docstring.
TIMEOUT_BUDGETS_S = (10, 30, 90)


def _cli(root: Path, *args: str) -> list[str]:
    return [
        "--params",
        str(SCALE),
        "--notebooks-dir",
        str(NB_DIR),
        "--executed-dir",
        str(root / "executed"),
        "--results-dir",
        str(root / "results"),
        "--quiet",
        *args,
    ]


def _summary(root: Path) -> dict:
    return json.loads((root / "results" / "run_summary.json").read_text())["notebooks"]


def _alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _wait_for(path: Path, seconds: float = 120.0) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} did not appear within {seconds} s"
        time.sleep(0.05)


# ------------------------------------------------------------------------- the watchdog

_TREE = textwrap.dedent(
    """
    import os, signal, subprocess, sys, time
    from pathlib import Path

    folder = Path(sys.argv[1])
    if sys.argv[2] == "root":
        signal.signal(signal.SIGTERM, lambda *a: (folder / "root.terminated").touch())
        kids = [
            subprocess.Popen([sys.executable, __file__, str(folder), "cleans"],
                             start_new_session=True),
            subprocess.Popen([sys.executable, __file__, str(folder), "ignores"]),
        ]
        while not all((folder / f"{k.pid}.ready").exists() for k in kids):
            time.sleep(0.05)
        (folder / "pids").write_text(" ".join(str(k.pid) for k in kids))
    elif sys.argv[2] == "cleans":  # turns SIGTERM into a cleanup of 1.5 s, then exits
        def cleanup(*args):
            time.sleep(1.5)
            (folder / "cleaned").touch()
            sys.exit(0)
        signal.signal(signal.SIGTERM, cleanup)
    else:  # ignores SIGTERM: only SIGKILL stops it
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    (folder / f"{os.getpid()}.ready").touch()
    while True:
        time.sleep(1)
    """
)


def test_kill_tree_gives_descendants_their_grace_then_kills_them(tmp_path):
    """The root (papermill's place) is frozen, never terminated; a descendant in its own
    session that cleans up on SIGTERM gets to finish; one that ignores SIGTERM is killed
    once the grace period is over."""
    script = tmp_path / "tree.py"
    script.write_text(_TREE)
    root = subprocess.Popen([sys.executable, str(script), str(tmp_path), "root"])
    try:
        _wait_for(tmp_path / "pids")
        pids = [int(p) for p in (tmp_path / "pids").read_text().split()]
        start = time.monotonic()
        kill_tree(root.pid, grace=3.0)
        elapsed = time.monotonic() - start
    finally:
        if root.poll() is None:
            root.kill()
        root.wait()
    assert (tmp_path / "cleaned").exists(), "the SIGTERM handler had no time to clean up"
    assert not (tmp_path / "root.terminated").exists(), "the root must be frozen, not warned"
    assert not any(_alive(pid) for pid in pids)
    assert not _alive(root.pid)
    assert 3.0 <= elapsed < 60, elapsed  # the SIGTERM-ignoring process waited out the grace


def test_the_watchdog_grace_is_a_few_seconds():
    assert inspect.signature(kill_tree).parameters["grace"].default == TERMINATE_GRACE_S
    assert 2.0 <= TERMINATE_GRACE_S <= 30.0


def test_kill_tree_of_a_finished_process_does_nothing():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    kill_tree(proc.pid)  # no error, returns at once


# ---------------------------------------------------------------- failing-cell report


def _notebook(tmp_path: Path, running_or_failed: str) -> Path:
    new = nbformat.v4
    injected = new.new_code_cell("OUT_DIR = 'x'", metadata={"tags": ["injected-parameters"]})
    bad = new.new_code_cell("\n  \nraise ValueError('no')\nmore()", execution_count=3)
    bad.metadata["papermill"] = {"status": running_or_failed}
    if running_or_failed == "failed":
        bad.outputs = [new.new_output("error", ename="ValueError", evalue="no", traceback=[])]
    nb = new.new_notebook(
        cells=[
            new.new_markdown_cell("# title"),
            new.new_code_cell("SEED = 0", metadata={"tags": ["parameters"]}),
            injected,
            new.new_code_cell("x = 1", metadata={"papermill": {"status": "completed"}}),
            bad,
            new.new_code_cell("never()", metadata={"papermill": {"status": "pending"}}),
        ]
    )
    path = tmp_path / f"{running_or_failed}.ipynb"
    nbformat.write(nb, path)
    return path


def test_failing_cell_is_numbered_as_in_the_committed_notebook(tmp_path):
    info = _failing_cell(_notebook(tmp_path, "failed"))
    assert info["cell"] == 4  # markdown counts, the injected cell does not
    assert info["source_line"] == "raise ValueError('no')"
    assert info["ename"] == "ValueError" and info["execution_count"] == 3
    assert _failing_cell(tmp_path / "missing.ipynb") == {}


def test_mark_timeout_marks_the_running_cell_only(tmp_path):
    path = _notebook(tmp_path, "running")
    _mark_timeout(path, "stopped after 5 s")
    nb = nbformat.read(path, as_version=4)
    marked = [i for i, c in enumerate(nb.cells) if c.get("outputs")]
    assert marked == [4]
    assert nb.cells[4].outputs[0]["ename"] == "TimeoutError"
    assert nb.cells[4].metadata["papermill"]["status"] == "failed"
    info = _failing_cell(path)
    assert info["cell"] == 4 and info["evalue"] == "stopped after 5 s"


def test_describe_failure_before_any_cell():
    result = RunResult(
        "nb", Path("nb.ipynb"), Path("/nonexistent/nb.ipynb"), "timeout", 6.04, {},
        error={"ename": "TimeoutError", "evalue": "stopped"},
    )  # fmt: skip
    text = result.describe_failure()
    assert text.startswith("notebook nb.ipynb FAILED after 6.0 s in before any cell ran")
    assert "TimeoutError: stopped" in text and "partially executed" not in text
    assert result.to_json()["error"] == {"ename": "TimeoutError", "evalue": "stopped"}


# ------------------------------------------------------------------- notebook runs


def test_failing_notebook_reports_cell_and_keeps_partial_copy(tmp_path, capfd):
    stale = tmp_path / "results" / "fails" / "metrics.json"
    stale.parent.mkdir(parents=True)
    stale.write_text("{}")
    # params_demo comes after the failure and must not run without --keep-going
    code = main(_cli(tmp_path, "fails", "params_demo"))
    err = capfd.readouterr().err
    assert code == 1
    assert "fails.ipynb FAILED" in err
    assert "cell 3" in err
    assert 'raise ValueError("boom from cell three")' in err
    assert "ValueError: boom from cell three" in err
    assert not stale.exists()  # a stale metrics.json cannot pass for this run's

    executed = tmp_path / "executed"
    assert not (executed / "params_demo.ipynb").exists()
    for path in (executed / "fails.ipynb", executed / "fails.FAILED.ipynb"):
        nb = nbformat.read(path, as_version=4)
        code_cells = [
            c
            for c in nb.cells
            if c.cell_type == "code" and "injected-parameters" not in c.metadata.get("tags", [])
        ]
        params_cell, second, third, fourth = code_cells
        assert params_cell.execution_count is not None
        assert "cell two ran 42" in "".join(o.get("text", "") for o in second.outputs)
        assert any(o.get("ename") == "ValueError" for o in third.outputs)
        assert fourth.execution_count is None
    entry = _summary(tmp_path)["fails"]
    assert entry["status"] == "failed"
    assert entry["error"]["cell"] == 3 and entry["error"]["ename"] == "ValueError"


def _seed_stale_products(root: Path) -> None:
    """Products of an earlier run that must not pass for this run's."""
    executed = root / "executed"
    executed.mkdir(parents=True)
    for name in ("sleeps.ipynb", "sleeps.FAILED.ipynb"):
        shutil.copy(DEMO, executed / name)
    for stem in ("sleeps", "params_demo"):
        (root / "results" / stem).mkdir(parents=True)
        (root / "results" / stem / "metrics.json").write_text('{"stale": true}')


def _attempt(root: Path, budget: float, token: str, capfd) -> tuple[int, str, bool]:
    """One run of sleeps + params_demo; returns (exit code, stderr, premise held)."""
    _seed_stale_products(root)
    args = ["--timeout", f"{budget:g}", "--keep-going", "-p", "RUN_TOKEN", token]
    code = main(_cli(root, *args, "sleeps", "params_demo"))
    err = capfd.readouterr().err
    summary = _summary(root)
    assert code == 1 and summary["sleeps"]["status"] == "timeout", err
    started = root / "results" / "sleeps" / "long_cell.started"
    premise = started.exists() and summary["params_demo"]["status"] != "timeout"
    return code, err, premise


def test_timeout_kills_kernel_and_keep_going_runs_the_rest(tmp_path, capfd):
    """The watchdog stops a notebook stuck in a long cell; ``--keep-going`` runs the next.

    Checked: the cell that was running is the one marked with the TimeoutError (cell 3),
    the kernel had its grace period (the cell's SIGTERM handler removed its half-built
    folder and finished a 1.5 s cleanup, longer than the old 0.5 s) and is gone, the next
    notebook ran, and no product of an earlier run (seeded before the run) passes for this
    run's: each attempt has its own token, which the kernel writes into its markers and
    papermill into the injected cell.

    Robust on a busy machine: the checks need the deadline to fall inside the long cell,
    and ``params_demo`` to finish within the same budget. The long cell writes
    ``long_cell.started`` when it starts; if the kernel had not got there before the
    deadline (a kernel can take more than 6 s to start on a loaded machine), or
    ``params_demo`` ran out of time, the attempt proves nothing about those checks, so it is
    repeated in fresh folders with a larger budget (:data:`TIMEOUT_BUDGETS_S`). Nothing is
    relaxed: every check is made on the attempt whose premise held, and the test fails if
    none did.
    """
    for attempt, budget in enumerate(TIMEOUT_BUDGETS_S):
        root = tmp_path / f"attempt{attempt}"
        token = uuid.uuid4().hex
        code, err, premise = _attempt(root, budget, token, capfd)
        if premise:
            break
    else:
        pytest.fail(f"the kernel never reached the long cell within {TIMEOUT_BUDGETS_S} s")

    assert "sleeps.ipynb FAILED" in err and "cell 3" in err
    assert f"TimeoutError: stopped by mammo-run after the {budget} s timeout" in err
    assert "1 of 2 notebook(s) failed: sleeps (timeout)" in err

    out_dir = root / "results" / "sleeps"
    pid_text, run_token = (out_dir / "long_cell.started").read_text().split()
    pid = int(pid_text)
    assert run_token == token and int((out_dir / "kernel.pid").read_text()) == pid
    assert not _alive(pid), f"kernel {pid} still running after the timeout"
    assert (out_dir / "cleanup.done").read_text() == f"{pid} {token}"  # it had its grace
    assert not [p.name for p in out_dir.iterdir() if "built" in p.name]  # no partial folder
    assert not (out_dir / "metrics.json").exists()

    for name in ("sleeps.ipynb", "sleeps.FAILED.ipynb"):
        nb = nbformat.read(root / "executed" / name, as_version=4)
        injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
        assert len(injected) == 1 and token in injected[0].source
        sleeping = next(c for c in nb.cells if "time.sleep(SLEEP_SECONDS)" in c.source)
        assert [o.get("ename") for o in sleeping.outputs] == ["TimeoutError"]
        assert nb.cells[-1].execution_count is None  # the cell after it never ran

    summary = _summary(root)
    assert summary["sleeps"]["status"] == "timeout"
    assert summary["params_demo"]["status"] == "ok"  # --keep-going ran it
    metrics = json.loads((root / "results" / "params_demo" / "metrics.json").read_text())
    assert "stale" not in metrics and metrics["SCALE"] == "fixture"
