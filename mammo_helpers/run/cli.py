"""The ``mammo-run`` command line (also ``python -m mammo_helpers.run``).

::

    mammo-run --scale smoke 00 02            # stems or prefixes
    mammo-run --scale paper 05 -p DEVICE cuda -p DATA_SOURCE inbreast -p DATA_DIR /data
    mammo-run --list                          # parameters each notebook would get

Exit code 0 when every notebook ran, 1 when one failed or timed out, 2 for a configuration
error (bad option, scale file, notebook name or parameter), found before anything runs or
is removed. Used by ``make notebooks`` and by readers rerunning a chapter (00-05).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from mammo_helpers.run.options import RunnerError
from mammo_helpers.run.plan import (
    EXECUTED_DIR,
    NOTEBOOKS_DIR,
    RESULTS_DIR,
    Plan,
    plan_runs,
    resolve_notebooks,
)
from mammo_helpers.run.runs import run_notebooks
from mammo_helpers.run.scales import SCALES, load_scale


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``mammo-run``."""
    parser = argparse.ArgumentParser(
        prog="mammo-run",
        description="Execute the book's notebooks with papermill at a named parameter scale.",
    )
    parser.add_argument("notebooks", nargs="*", metavar="NOTEBOOK", help="stem, prefix or path")
    parser.add_argument("--scale", help=f"one of {', '.join(SCALES)} (default: default)")
    parser.add_argument("--params", metavar="FILE", help="scale file to use instead")
    for option, default in (
        ("--notebooks-dir", NOTEBOOKS_DIR),
        ("--executed-dir", EXECUTED_DIR),
        ("--results-dir", RESULTS_DIR),
    ):
        parser.add_argument(option, metavar="DIR", help=f"default: <project root>/{default}")
    parser.add_argument(
        "--timeout",
        type=float,
        metavar="SECONDS",
        help="wall-clock limit per notebook (positive; default: the scale file's)",
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


def print_listing(plans: list[Plan], scale: dict) -> None:
    """Each notebook's parameters, their values and where each value comes from."""
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


def _load_scale(args: argparse.Namespace) -> dict:
    scale = load_scale(Path(args.params) if args.params else args.scale or "default")
    if args.params and args.scale:
        scale["name"] = args.scale
    return scale


def _list(args: argparse.Namespace, scale: dict, overrides: dict[str, Any]) -> int:
    plans = plan_runs(
        resolve_notebooks(args.notebooks, args.notebooks_dir),
        scale,
        overrides,
        executed_dir=args.executed_dir,
        results_dir=args.results_dir,
        timeout=args.timeout,
    )
    print_listing(plans, scale)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``mammo-run``; returns the exit code."""
    args = build_parser().parse_args(argv)
    overrides: dict[str, Any] = dict(args.parameter)
    try:
        scale = _load_scale(args)
        if args.list:
            return _list(args, scale, overrides)
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
