"""Mutation testing of the package's modules with mutmut (``make mutation``; not in CI).

Each target is mutated in its own scratch copy of the project under ``build/mutation/``
(the working tree is never touched), with only the tests that cover it, and its kill rate
is written to ``build/mutation/<target>.json``:

    python tools/mutation.py boxes splits manifest      # or: make mutation MUTATE="boxes"
    python tools/mutation.py --list
    python tools/mutation.py --sample 150 phantom  # a random sample of the mutants

Kill rate = (killed + timeout) / (mutants - skipped), mutmut's own definition. With
``--sample N`` only N mutants drawn at random (seeded) are run, for modules whose full run
takes hours on 2 cores, and the rate comes with its Wilson 95 % interval. Surviving
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
    "training": (["mammo_helpers/training.py"], ["tests/test_training.py"]),
    "casecontrol": (["mammo_helpers/data/casecontrol.py"], ["tests/test_data_casecontrol.py"]),
    "radiomics": (["mammo_helpers/radiomics.py"], ["tests/test_radiomics.py"]),
    "end2end": (["mammo_helpers/models/end2end.py"], ["tests/test_models_end2end.py"]),
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
        # not test_cohort.py: its racing-builders test runs subprocesses, which fail under
        # mutmut's coverage pass ("failed to collect stats"); it tests the cache, not physics
        ["tests/test_phantom*.py"],
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
        'also_copy = ["notebooks", "params", "book"]\n'
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


def _statuses(work: Path, mutmut: str) -> dict[str, str]:
    """Every mutant's name -> its status ("killed", "survived", "not checked", ...)."""
    out = subprocess.run(
        [mutmut, "results", "--all", "true"], cwd=work, check=True, capture_output=True, text=True
    ).stdout
    pairs = (line.strip().rsplit(": ", 1) for line in out.splitlines() if ": " in line)
    return {name: status for name, status in pairs}


def _sampled_stats(statuses: dict[str, str], names: list[str], *, sampled: bool = True) -> dict:
    """Counts and kill rate of the mutants ``names`` (a Wilson interval when they are a
    random sample of ``statuses``; a full run has no sampling error)."""
    from scipy.stats import binomtest

    counts: dict[str, int] = {}
    for name in names:
        counts[statuses[name]] = counts.get(statuses[name], 0) + 1
    tested = len(names) - counts.get("skipped", 0) - counts.get("not checked", 0)
    if tested == 0:
        raise SystemExit(f"no sampled mutant was tested ({counts}); see mutmut's output above")
    caught = counts.get("killed", 0) + counts.get("timeout", 0)
    out = {"total": len(statuses), "sampled": len(names), **counts, "tested": tested}
    out["kill_rate"] = round(caught / tested, 4)
    if sampled:
        ci = binomtest(caught, tested).proportion_ci(method="wilson")
        out["kill_rate_ci95"] = [round(ci.low, 4), round(ci.high, 4)]
    out["survived_names"] = sorted(n for n in names if statuses[n] == "survived")
    return out


def run(target: str, children: int, sample: int | None = None, seed: int = 0) -> dict:
    """Mutation-test ``target``: every mutant, or ``sample`` of them drawn with ``seed``
    (mutmut generates them all first, then runs the named ones)."""
    import random

    mutmut = str(Path(sys.executable).with_name("mutmut"))
    work = _scratch(target)
    start = time.perf_counter()
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    cmd = [mutmut, "run", "--max-children", str(children)]
    picked = []
    if sample:
        subprocess.run([*cmd, "no-mutant-has-this-name"], cwd=work, env=env, check=False)
        names = sorted(_statuses(work, mutmut))
        picked = sorted(random.Random(seed).sample(names, min(sample, len(names))))
    subprocess.run([*cmd, *picked], cwd=work, env=env, check=False)
    statuses = _statuses(work, mutmut)
    rates = _sampled_stats(statuses, picked or sorted(statuses), sampled=bool(sample))
    stats = {"target": target, "seed": seed if sample else None, **rates}
    stats["seconds"] = round(time.perf_counter() - start)
    (BUILD / f"{target}.json").write_text(json.dumps(stats, indent=2))
    interval = " [{:.1%}, {:.1%}]".format(*stats["kill_rate_ci95"]) if sample else ""
    print(
        f"{target}: {stats['kill_rate']:.1%}{interval} killed of {stats['tested']} tested "
        f"mutants ({stats['sampled']} of {stats['total']} run) in {stats['seconds']} s "
        f"-> {BUILD / f'{target}.json'}"
    )
    return stats


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("targets", nargs="*", default=["boxes", "splits", "manifest"])
    parser.add_argument("--list", action="store_true", help="list the targets and exit")
    parser.add_argument("--children", type=int, default=2, help="parallel test runs (default 2)")
    parser.add_argument("--sample", type=int, help="run this many mutants drawn at random")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sample (default 0)")
    args = parser.parse_args(argv)
    if args.list:
        for name, (paths, tests) in TARGETS.items():
            print(f"{name:12s} {' '.join(paths)}  <- {' '.join(tests)}")
        return 0
    unknown = sorted(set(args.targets) - set(TARGETS))
    if unknown:
        parser.error(f"unknown target(s) {unknown}; known: {sorted(TARGETS)}")
    if args.sample is not None and args.sample < 1:
        parser.error(f"--sample must be a positive number of mutants, got {args.sample}")
    for target in args.targets:
        run(target, args.children, args.sample, args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
