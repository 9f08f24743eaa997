"""Run the book's notebooks with papermill at a named scale (the ``mammo-run`` command).

Used by ``make notebooks`` (default scale, executed copies land in ``book/executed/``),
by the test-suite (smoke scale) and by readers who rerun a notebook (00 data ... 05 domain
shift) with other parameters, data or hardware::

    mammo-run --scale smoke 00 02            # stems or prefixes
    mammo-run --scale paper 05 -p DEVICE cuda -p DATA_SOURCE inbreast -p DATA_DIR /data
    mammo-run --list                          # parameters each notebook would get

The modules, in the order a run uses them:

* :mod:`~mammo_helpers.run.scales`: scale files (``params/<scale>.yaml`` of the project
  root, or ``--params FILE``), :func:`load_scale`;
* :mod:`~mammo_helpers.run.parameters`: the parameters a notebook declares, their type
  checks and the merge (notebook defaults < ``common`` < stem section < ``-p``), with
  ``OUT_DIR`` injected relative to the project root when it lies inside it;
* :mod:`~mammo_helpers.run.plan`: notebook lookup and the plan of every run, all checked
  before anything runs or is removed (folders default to ``notebooks/``,
  ``book/executed/`` and ``results/`` of :func:`mammo_helpers.paths.project_root`, whatever
  the working directory);
* :mod:`~mammo_helpers.run.options`: the checks of the options (timeout, folders);
* :mod:`~mammo_helpers.run.execution`: one notebook in a child process under a wall-clock
  watchdog (SIGTERM, a grace period, SIGKILL), the failing-cell report;
* :mod:`~mammo_helpers.run.runs`: several notebooks, ``run_summary.json``;
* :mod:`~mammo_helpers.run.cli`: the command line.
"""

from __future__ import annotations

from mammo_helpers.run.cli import main
from mammo_helpers.run.execution import (
    TERMINATE_GRACE_S,
    NotebookFailed,
    RunResult,
    execute,
    kill_tree,
)
from mammo_helpers.run.options import RunnerError, check_timeout
from mammo_helpers.run.parameters import (
    Declared,
    ParameterError,
    check_type,
    declared_parameters,
    out_dir_parameter,
    parse_cli_value,
    resolve_parameters,
)
from mammo_helpers.run.plan import Plan, list_notebooks, plan_runs, resolve_notebooks
from mammo_helpers.run.runs import SUMMARY_NAME, run_notebook, run_notebooks, write_summary
from mammo_helpers.run.scales import RUNNER_PARAMETERS, SCALES, load_scale, scale_file

__all__ = [
    "RUNNER_PARAMETERS",
    "SCALES",
    "SUMMARY_NAME",
    "TERMINATE_GRACE_S",
    "Declared",
    "NotebookFailed",
    "ParameterError",
    "Plan",
    "RunResult",
    "RunnerError",
    "check_timeout",
    "check_type",
    "declared_parameters",
    "execute",
    "kill_tree",
    "list_notebooks",
    "load_scale",
    "main",
    "out_dir_parameter",
    "parse_cli_value",
    "plan_runs",
    "resolve_notebooks",
    "resolve_parameters",
    "run_notebook",
    "run_notebooks",
    "scale_file",
    "write_summary",
]
