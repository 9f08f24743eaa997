"""Checks of the book's notebooks (notebooks/*.ipynb).

Static checks (fast, no marker): committed without outputs, one ``parameters`` cell that
declares the shared names, every scale file accepted. Execution checks (marker
``notebook``): each notebook ran at the smoke scale and wrote finite numbers to
``OUT_DIR/metrics.json``.
"""

from __future__ import annotations

import ast
import json
import math
from pathlib import Path

import nbformat
import pytest
from conftest import REPO, committed_notebooks

from mammo_helpers.run import declared_parameters, load_scale, resolve_parameters

NOTEBOOKS = committed_notebooks()
REQUIRED_PARAMETERS = ("SEED", "OUT_DIR", "DATA_SOURCE")
SCALES = ("smoke", "default", "paper")

needs_notebooks = pytest.mark.skipif(not NOTEBOOKS, reason="no notebooks in notebooks/ yet")
per_notebook = pytest.mark.parametrize(
    "notebook", NOTEBOOKS or [None], ids=[p.stem for p in NOTEBOOKS] or ["none"]
)


@needs_notebooks
@per_notebook
def test_committed_without_outputs(notebook: Path):
    nb = nbformat.read(notebook, as_version=4)
    dirty = [
        i + 1
        for i, cell in enumerate(nb.cells)
        if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None)
    ]
    assert not dirty, f"{notebook.name}: cells {dirty} carry outputs or execution counts"


@needs_notebooks
@per_notebook
def test_one_parameters_cell_declaring_shared_names(notebook: Path):
    nb = nbformat.read(notebook, as_version=4)
    tagged = [i + 1 for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{notebook.name}: cells tagged 'parameters': {tagged}"
    assert nb.cells[tagged[0] - 1].cell_type == "code"
    declared = declared_parameters(notebook)
    missing = [name for name in REQUIRED_PARAMETERS if name not in declared]
    assert not missing, f"{notebook.name}: parameters cell does not declare {missing}"
    # every assignment in the cell must be visible to papermill, or -p / scale files would
    # silently miss it (papermill skips e.g. `N: int | None = 3` and comments with '=')
    tree = ast.parse(nb.cells[tagged[0] - 1].source)
    assigned = [
        target.id
        for node in tree.body
        for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
        if isinstance(node, ast.Assign | ast.AnnAssign) and isinstance(target, ast.Name)
    ]
    hidden = [name for name in assigned if name not in declared]
    assert not hidden, f"{notebook.name}: papermill does not see parameters {hidden}"


@needs_notebooks
@per_notebook
@pytest.mark.parametrize("scale", SCALES)
def test_every_scale_file_fits_the_notebook(notebook: Path, scale: str, tmp_path):
    """Types in params/<scale>.yaml match the notebook's declarations (papermill would
    otherwise inject, e.g., None into an int parameter at the paper scale)."""
    params, _ = resolve_parameters(notebook, load_scale(REPO / "params" / f"{scale}.yaml"))
    assert params["OUT_DIR"].endswith(notebook.stem)


# ----------------------------------------------------------------- smoke executions


def _numbers(value, path="metrics"):
    """Yield (path, number) for every numeric leaf of a JSON document."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return
    if isinstance(value, int | float):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _numbers(item, f"{path}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _numbers(item, f"{path}[{i}]")


@pytest.mark.notebook
@needs_notebooks
@per_notebook
def test_smoke_run_succeeded(smoke_run, notebook: Path):
    result = smoke_run.results.get(notebook.stem)
    assert result is not None, f"{notebook.stem} was not run"
    assert result.ok, result.describe_failure()
    assert smoke_run.summary["notebooks"][notebook.stem]["status"] == "ok"
    assert (smoke_run.executed_dir / f"{notebook.stem}.ipynb").exists()


@pytest.mark.notebook
@needs_notebooks
@per_notebook
def test_smoke_run_wrote_finite_metrics(smoke_run, notebook: Path):
    result = smoke_run.results.get(notebook.stem)
    if result is None or not result.ok:
        pytest.fail(f"{notebook.stem} did not run to the end (see test_smoke_run_succeeded)")
    path = Path(result.parameters["OUT_DIR"]) / "metrics.json"
    assert path.is_file(), f"{notebook.stem} did not write {path}"
    metrics = json.loads(path.read_text(encoding="utf-8"))  # NaN/Infinity parse as floats
    numbers = list(_numbers(metrics))
    assert numbers, f"{path} holds no numbers"
    bad = [(where, value) for where, value in numbers if not math.isfinite(value)]
    assert not bad, f"{path}: non-finite values {bad}"
