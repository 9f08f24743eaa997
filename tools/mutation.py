"""Mutation testing of the foundation's modules with mutmut (``make mutation``; not in CI).

Each target is mutated in its own scratch copy of the project under ``build/mutation/``
(the working tree is never touched), with only the tests that cover it, and its kill rate
is written to ``build/mutation/<target>.json``:

    python tools/mutation.py boxes splits manifest      # or: make mutation MUTATE="boxes"
    python tools/mutation.py --list

Kill rate = (killed + timeout) / (mutants - skipped), mutmut's own definition. Surviving
mutants are listed in the JSON; read one with ``mutmut show <name>`` in the scratch copy and
decide whether it is equivalent (no test could notice) or a missing test.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "build" / "mutation"

#: target -> (files or folders to mutate, tests that cover them)
TARGETS: dict[str, tuple[list[str], list[str]]] = {
    "boxes": (["mammo_helpers/boxes.py"], ["tests/test_boxes.py"]),
    "splits": (["mammo_helpers/data/splits.py"], ["tests/test_splits.py"]),
    "manifest": (["mammo_helpers/data/manifest.py"], ["tests/test_manifest.py"]),
    "metrics": (["mammo_helpers/metrics.py"], ["tests/test_metrics.py"]),
    "phantom": (
        [
            "mammo_helpers/data/phantom/" + m
            for m in (
                "acquisition.py",
                "calibration.py",
                "config.py",
                "density.py",
                "geometry.py",
                "lesions.py",
                "patients.py",
                "physics.py",
                "tissue.py",
            )
        ],
        ["tests/test_phantom*.py", "tests/test_cohort.py"],
    ),
    "validation": (["mammo_helpers/data/phantom/validation/"], ["tests/test_validation_*.py"]),
}


def _config(paths: list[str], tests: list[str]) -> str:
    def toml_list(items):
        return "[" + ", ".join(json.dumps(i) for i in items) + "]"

    test_files = sorted({str(p.relative_to(ROOT)) for t in tests for p in ROOT.glob(t)})
    if not test_files:
        raise SystemExit(f"no test file matches {tests}")
    only = [p + "*" if p.endswith("/") else p for p in paths]
    return (
        "\n[tool.mutmut]\n"
        'source_paths = ["mammo_helpers"]\n'
        f"only_mutate = {toml_list(only)}\n"
        f"pytest_add_cli_args_test_selection = {toml_list(test_files)}\n"
        'pytest_add_cli_args = ["-p", "no:cacheprovider", "-q"]\n'
    )


def _scratch(target: str) -> Path:
    """A fresh copy of the package, the tests and pyproject.toml with mutmut's settings."""
    paths, tests = TARGETS[target]
    work = BUILD / target
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for folder in ("mammo_helpers", "tests", "params", "notebooks", "book"):
        shutil.copytree(ROOT / folder, work / folder, ignore=ignore)
    text = (ROOT / "pyproject.toml").read_text()
    (work / "pyproject.toml").write_text(text + _config(paths, tests))
    return work


def _stats(work: Path, mutmut: str) -> dict:
    subprocess.run([mutmut, "export-cicd-stats"], cwd=work, check=True, capture_output=True)
    stats = json.loads((work / "mutants" / "mutmut-cicd-stats.json").read_text())
    results = subprocess.run(
        [mutmut, "results"], cwd=work, check=True, capture_output=True, text=True
    ).stdout
    survivors = [line.split(":")[0].strip() for line in results.splitlines() if "survived" in line]
    tested = stats.get("total", 0) - stats.get("skipped", 0)
    caught = stats.get("killed", 0) + stats.get("timeout", 0)
    return {
        **stats,
        "kill_rate": round(caught / tested, 4) if tested else None,
        "survived_names": survivors,
    }


def run(target: str, children: int) -> dict:
    mutmut = str(Path(sys.executable).with_name("mutmut"))
    work = _scratch(target)
    start = time.perf_counter()
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    subprocess.run([mutmut, "run", "--max-children", str(children)], cwd=work, env=env, check=False)
    stats = {
        "target": target,
        **_stats(work, mutmut),
        "seconds": round(time.perf_counter() - start),
    }
    (BUILD / f"{target}.json").write_text(json.dumps(stats, indent=2))
    print(
        f"{target}: {stats['kill_rate']:.1%} killed of {stats['total'] - stats['skipped']} mutants "
        f"({stats['survived']} survived) in {stats['seconds']} s -> {BUILD / f'{target}.json'}"
    )
    return stats


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("targets", nargs="*", default=["boxes", "splits", "manifest"])
    parser.add_argument("--list", action="store_true", help="list the targets and exit")
    parser.add_argument("--children", type=int, default=2, help="parallel test runs (default 2)")
    args = parser.parse_args(argv)
    if args.list:
        for name, (paths, tests) in TARGETS.items():
            print(f"{name:12s} {' '.join(paths)}  <- {' '.join(tests)}")
        return 0
    unknown = sorted(set(args.targets) - set(TARGETS))
    if unknown:
        parser.error(f"unknown target(s) {unknown}; known: {sorted(TARGETS)}")
    for target in args.targets:
        run(target, args.children)
    return 0


if __name__ == "__main__":
    sys.exit(main())
