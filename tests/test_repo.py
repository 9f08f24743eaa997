"""Repository-wide rules: lint, clean notebooks, one source of truth for versions, a test
file per module, and the book / scale / CI files agreeing with each other."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import nbformat
import pytest
import yaml
from conftest import REPO
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

from mammo_helpers.run import list_notebooks

PACKAGE = REPO / "mammo_helpers"
SKIP_DIRS = {
    ".venv",
    ".git",
    "build",
    "results",
    "node_modules",
    ".ipynb_checkpoints",
    "_build",
    "executed",
}
PLANNED_STEMS = {
    "00_data_and_preprocessing",
    "01_density_clip",
    "02_correlax",
    "03_xai_iou",
    "04_multitask_fusion",
    "05_domain_shift",
    "06_paper_scale",
}
# Modules without their own test file; keep this list short and say why.
EXEMPT_MODULES: dict[str, str] = {}


def _constraints() -> dict[str, str]:
    pins = {}
    for line in (REPO / "requirements" / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            req = Requirement(line)
            (spec,) = req.specifier
            assert spec.operator == "==", f"constraints.txt: {line!r} is not an exact pin"
            pins[_norm(req.name)] = spec.version
    return pins


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _repo_files(pattern: str) -> list[Path]:
    return sorted(
        p for p in REPO.rglob(pattern) if not SKIP_DIRS & set(p.relative_to(REPO).parts[:-1])
    )


# --------------------------------------------------------------------------- lint


def test_ruff_check_passes():
    proc = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "."],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-2000:]


def test_committed_notebooks_have_no_outputs():
    notebooks = _repo_files("*.ipynb")
    dirty = {}
    for path in notebooks:
        nb = nbformat.read(path, as_version=4)
        cells = [
            i + 1
            for i, c in enumerate(nb.cells)
            if c.cell_type == "code" and (c.outputs or c.execution_count is not None)
        ]
        if cells:
            dirty[str(path.relative_to(REPO))] = cells
    assert not dirty, f"notebooks with outputs (cell numbers): {dirty}"


# ----------------------------------------------------------- one source of versions


def test_environment_yml_agrees_with_constraints_and_pyproject():
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    pins = _constraints()
    assert env["name"] == "mammo-xai"

    conda_deps = [d for d in env["dependencies"] if isinstance(d, str)]
    pip_sections = [d["pip"] for d in env["dependencies"] if isinstance(d, dict)]
    assert len(pip_sections) == 1, "environment.yml needs exactly one pip: section"
    names = {}
    for dep in conda_deps:
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)\s*(?:(==?|>=|<=)\s*([\w.*]+))?", dep)
        assert match, f"environment.yml: cannot parse conda spec {dep!r}"
        names[_norm(match.group(1))] = match.group(3)

    python = names.get("python")
    assert python, "environment.yml must pin python"
    requires = SpecifierSet(pyproject["project"]["requires-python"])
    assert requires.contains(f"{python}.0") or requires.contains(python), python
    assert pyproject["tool"]["ruff"]["target-version"] == "py" + python.replace(".", "")
    assert "pip" in names
    for name, version in names.items():
        if name in ("python", "pip") or version is None:
            continue
        assert pins.get(name) == version, (
            f"environment.yml pins {name}={version}, constraints.txt says {pins.get(name)}"
        )

    extras = set(pyproject["project"]["optional-dependencies"])
    saw_constraints = saw_package = False
    for entry in pip_sections[0]:
        entry = entry.strip()
        if entry.startswith("-c"):
            target = entry[2:].strip()
            assert (REPO / target).resolve() == REPO / "requirements" / "constraints.txt"
            saw_constraints = True
        elif entry.startswith("-e"):
            spec = entry[2:].strip()
            match = re.fullmatch(r"\.(?:\[([\w,\s-]+)\])?", spec)
            assert match, f"environment.yml: unexpected editable install {entry!r}"
            wanted = {e.strip() for e in (match.group(1) or "").split(",") if e.strip()}
            assert wanted <= extras, f"unknown extras {wanted - extras}"
            saw_package = True
        else:
            req = Requirement(entry)
            pinned = pins.get(_norm(req.name))
            assert pinned, f"environment.yml installs {req.name}, absent from constraints.txt"
            for spec in req.specifier:
                assert spec.operator == "==" and spec.version == pinned, (entry, pinned)
    assert saw_constraints and saw_package


# ------------------------------------------------------------- a test per module


def _modules() -> list[Path]:
    return sorted(
        p
        for p in PACKAGE.rglob("*.py")
        if "__pycache__" not in p.parts
        and p.name not in ("__init__.py", "__main__.py")
        and not p.name.startswith("_")
        and not any(part.startswith("_") for part in p.relative_to(PACKAGE).parts[:-1])
    )


def _test_candidates(module: Path) -> list[str]:
    parts = list(module.relative_to(PACKAGE).with_suffix("").parts)
    names = {f"test_{parts[-1]}.py", f"test_{'_'.join(parts)}.py"}
    if len(parts) > 1:
        names.add(f"test_{parts[-2]}_{parts[-1]}.py")
        names.add(f"test_{parts[-2]}.py")  # one file for a small subpackage
    return sorted(names)


def test_every_module_has_a_test_file():
    tests = {p.name for p in (REPO / "tests").glob("test_*.py")}
    missing = {}
    for module in _modules():
        rel = str(module.relative_to(REPO))
        if rel in EXEMPT_MODULES:
            continue
        candidates = _test_candidates(module)
        if not tests & set(candidates):
            missing[rel] = candidates
    assert not missing, "modules without tests (expected one of): " + "; ".join(
        f"{m}: {', '.join(c)}" for m, c in missing.items()
    )


# ---------------------------------------------------------------- book and scales


def _toc_files() -> list[str]:
    toc = yaml.safe_load((REPO / "book" / "_toc.yml").read_text())
    files = []

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                files.append(entry["file"])
            walk(entry.get("sections"))

    for part in toc.get("parts", []):
        walk(part.get("chapters"))
    walk(toc.get("chapters"))
    return [toc["root"], *files]


def test_toc_chapters_match_the_notebooks():
    executed = {Path(f).name for f in _toc_files() if f.startswith("executed/")}
    # the chapters the runner executes (notebooks/_template.ipynb is not one)
    notebooks = {p.stem for p in list_notebooks(REPO / "notebooks")}
    assert executed - notebooks == set(), (
        f"_toc.yml lists executed chapters without a notebook in notebooks/: "
        f"{sorted(executed - notebooks)}"
    )
    assert notebooks - executed == set(), (
        f"notebooks missing from book/_toc.yml: {sorted(notebooks - executed)}"
    )
    for name in _toc_files():
        if not name.startswith("executed/"):
            assert (REPO / "book" / f"{name}.md").is_file(), f"book/{name}.md missing"


def test_book_config_is_offline_and_never_executes():
    config = yaml.safe_load((REPO / "book" / "_config.yml").read_text())
    assert config["execute"]["execute_notebooks"] == "off"
    assert config["only_build_toc_files"] is True
    sphinx = config["sphinx"]["config"]
    assert sphinx["mathjax_path"] == "mathjax/tex-mml-chtml.js"
    assert not config["repository"]["url"]
    assert not any(config["launch_buttons"].get(k) for k in ("binderhub_url", "thebe"))
    text = (REPO / "book" / "_config.yml").read_text()
    assert "googleapis" not in text and "cdn" not in text.lower()
    intro = (REPO / "book" / "intro.md").read_text()
    assert "$$" in intro, "intro.md must hold an equation (the browser test checks MathJax)"
    assert "not clinical" in intro


def test_bibliography_has_papers_datasets_and_tools():
    from pybtex.database import parse_file

    bib = parse_file(str(REPO / "book" / "references.bib"))
    keys = set(bib.entries)
    required = {
        "cavalcante2025foundation",
        "mellado2025correlax",
        "sammillan2023xai",
        "wimmer2022fusion",
        "sanchezfuentes2025domain",
        "nguyen2023vindr",
        "lee2017cbisddsm",
        "carr2022rsna",
        "jeong2023embed",
        "moreira2012inbreast",
        "papermill",
        "jupyterbook",
    }
    assert required <= keys, required - keys
    for key, entry in bib.entries.items():
        assert entry.fields.get("title"), f"{key}: no title"
        assert entry.persons.get("author"), f"{key}: no author"
    assert bib.entries["mellado2025correlax"].fields["doi"] == "10.3389/fonc.2025.1601929"
    assert "2511.17828" in bib.entries["cavalcante2025foundation"].fields["eprint"]


@pytest.mark.parametrize("scale", ["smoke", "default", "paper"])
def test_scale_files_have_shared_names_and_known_sections(scale):
    data = yaml.safe_load((REPO / "params" / f"{scale}.yaml").read_text())
    common = data["common"]
    for name in ("SEED", "DATA_SOURCE", "DATA_DIR", "N_PATIENTS", "IMAGE_SIZE", "EPOCHS"):
        assert name in common, f"params/{scale}.yaml: common lacks {name}"
    for name in ("BATCH_SIZE", "DEVICE", "NUM_WORKERS"):
        assert name in common, f"params/{scale}.yaml: common lacks {name}"
    sections = set(data) - {"common", "timeout"}
    assert sections <= PLANNED_STEMS, f"params/{scale}.yaml: unknown sections {sections}"
    if scale != "paper":
        assert common["DATA_SOURCE"] == "phantom" and common["DEVICE"] == "cpu"


# -------------------------------------------------------------- make and CI


def test_makefile_targets_and_pinned_mathjax():
    text = (REPO / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z][\w-]*):", text, flags=re.M))
    for target in ("env", "mathjax", "data", "notebooks", "html", "book", "test", "lab", "clean"):
        assert target in targets, f"Makefile lacks target {target}"
    version = re.search(r"^MATHJAX_VERSION\s*:?=\s*(\S+)", text, flags=re.M)
    assert version and re.fullmatch(r"3\.\d+\.\d+", version.group(1)), "pin MathJax 3.x.y"
    assert "-W -n --keep-going" in text


def test_ci_script_is_strict_and_runs_make_test():
    script = REPO / ".ci" / "run"
    text = script.read_text()
    assert text.startswith("#!/usr/bin/env bash") or text.startswith("#!/bin/bash")
    assert "set -euo pipefail" in text
    assert "make test" in text and "chromium" in text
    assert script.stat().st_mode & 0o111, ".ci/run is not executable"
    proc = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
