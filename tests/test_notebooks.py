"""Checks of the book's notebooks (notebooks/*.ipynb).

Static checks (fast, no marker): committed without outputs, one ``parameters`` cell that
declares the shared names, every scale file accepted, the chapter skeleton of
``notebooks/_template.ipynb`` (headings in order, the paper cited from references.bib, short
code cells, no relative paths, one import style). Execution checks (marker
``notebook``): each notebook ran at the smoke scale and wrote finite numbers to
``OUT_DIR/metrics.json``.
"""

from __future__ import annotations

import ast
import json
import math
import re
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest
from conftest import REPO, committed_notebooks

from mammo_helpers.learnability import search_auc
from mammo_helpers.run import declared_parameters, load_scale, resolve_parameters

NOTEBOOKS = committed_notebooks()
TEMPLATE = REPO / "notebooks" / "_template.ipynb"
SKELETON = (
    "What is reproduced",
    "Time to run",
    "Parameters",
    "Setup and provenance",
    "Data",
    "Method",
    "Results",
    "Deviations and limitations",
    "References",
)
#: The paper each chapter must cite (chapter 00 draws on all of them and its own literature).
PAPERS = {
    "01": "cavalcante2025foundation",
    "02": "mellado2025correlax",
    "03": "sammillan2023xai",
    "04": "wimmer2022fusion",
    "05": "sanchezfuentes2025domain",
}
MAX_CODE_LINES = 40
CITE = re.compile(r"\{cite(?::[tp])?\}`([^`]+)`")
RELATIVE = re.compile(r"""(Path\(\s*["']\.{1,2}["']|["']\.{1,2}/|os\.chdir|["']tests/|/work/)""")
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


def _bib_keys() -> set[str]:
    text = (REPO / "book" / "references.bib").read_text(encoding="utf-8")
    return set(re.findall(r"^@\w+\{([^,]+),", text, flags=re.M))


def skeleton_problems(path: Path) -> list[str]:
    """Everything in a chapter that departs from the skeleton of notebooks/_template.ipynb."""
    nb = nbformat.read(path, as_version=4)
    problems = []
    first = nb.cells[0]
    if first.cell_type != "markdown" or not first.source.startswith("# "):
        problems.append("the first cell must be markdown starting with the '# ' title")
    headings = [
        (i, line[3:].strip())
        for i, cell in enumerate(nb.cells)
        if cell.cell_type == "markdown"
        for line in cell.source.splitlines()
        if line.startswith("## ")
    ]
    found = [h for _, h in headings if h in SKELETON]
    if found != list(SKELETON):
        problems.append(f"'## ' headings {found} are not the skeleton {list(SKELETON)} in order")
    where = {h: i for i, h in headings}
    params = [i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])]
    if set(SKELETON[2:4]) <= set(where) and params:
        if not where["Parameters"] < params[0] < where["Setup and provenance"]:
            problems.append("the parameters cell must sit under '## Parameters'")
    cited = {
        k.strip()
        for c in nb.cells
        if c.cell_type == "markdown"
        for m in CITE.findall(c.source)
        for k in m.split(",")
    }
    keys = _bib_keys() | ({"paperkey"} if path == TEMPLATE else set())
    if not cited:
        problems.append("cites nothing with {cite}")
    if cited - keys:
        problems.append(f"cites keys missing from references.bib: {sorted(cited - keys)}")
    paper = PAPERS.get(path.stem[:2])
    if paper and paper not in cited:
        problems.append(f"does not cite its paper {paper!r}")
    for i, cell in enumerate(nb.cells, start=1):
        if cell.cell_type != "code":
            continue
        n_lines = len(cell.source.splitlines())
        if "parameters" in cell.metadata.get("tags", []):
            problems += _parameters_cell_problems(cell.source, i)
        elif n_lines > MAX_CODE_LINES:
            problems.append(
                f"code cell {i} has {n_lines} lines (> {MAX_CODE_LINES}): move code to the package"
            )
        hit = RELATIVE.search(cell.source)
        if hit:
            problems.append(f"code cell {i} uses a relative or machine path: {hit.group(0)!r}")
        if re.search(r"^\s*(from mammo_helpers\b|import mammo_helpers\.)", cell.source, re.M):
            problems.append(
                f"code cell {i}: import the package only as `import mammo_helpers as mh`"
            )
    return problems


def _parameters_cell_problems(source: str, i: int) -> list[str]:
    """The parameters cell is a list of declarations (one per line, however many a chapter
    needs), never code: anything but a plain assignment of a literal is a problem."""
    problems = []
    for node in ast.parse(source).body:
        value = getattr(node, "value", None)
        if not isinstance(node, ast.Assign | ast.AnnAssign) or value is None:
            problems.append(f"code cell {i} (parameters) holds a statement, not a declaration")
            continue
        try:
            ast.literal_eval(value)
        except ValueError:
            problems.append(f"code cell {i} (parameters): line {node.lineno} is not a literal")
    return problems


@pytest.mark.parametrize(
    "notebook", [*NOTEBOOKS, TEMPLATE], ids=[p.stem for p in NOTEBOOKS] + ["_template"]
)
def test_chapter_follows_the_skeleton(notebook: Path):
    problems = skeleton_problems(notebook)
    assert not problems, f"{notebook.name}:\n  " + "\n  ".join(problems)


def test_skeleton_check_finds_what_it_should(tmp_path):
    nb = nbformat.read(TEMPLATE, as_version=4)
    nb.cells[0].source = nb.cells[0].source.replace("{cite:t}`paperkey`", "no citation")
    nb.cells[-1].source = "## Sources"
    nb.cells.append(nbformat.v4.new_code_cell("\n".join(f"x{i} = {i}" for i in range(41))))
    nb.cells.append(nbformat.v4.new_code_cell('data = Path("..") / "tests" / "fixtures"'))
    nb.cells.append(nbformat.v4.new_code_cell("from mammo_helpers.io import read_dicom"))
    (params,) = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    params.source += "\nN = len([1, 2])\nprint(N)"
    bad = tmp_path / "01_x.ipynb"
    nbformat.write(nb, bad)
    problems = "\n".join(skeleton_problems(bad))
    for expected in (
        "are not the skeleton",
        "does not cite its paper 'cavalcante2025foundation'",
        "has 41 lines",
        "relative or machine path",
        "import the package only",
        "(parameters): line",
        "(parameters) holds a statement",
    ):
        assert expected in problems, problems


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


# ----------------------------------------------------------------- chapter 00 in particular
CHAPTER_00 = "00_data_and_preprocessing"
CHAPTER_00_FIGURES = {
    "views_by_density.png",
    "lesions.png",
    "power_spectrum.png",
    "percent_density.png",
    "observer_roc.png",
    "contrast_noise_sizes.png",
    "preprocessing.png",
    "learnability.png",
    "search_penalty.png",
}


def _chapter_metrics(smoke_run, stem: str) -> dict:
    result = smoke_run.results.get(stem)
    if result is None or not result.ok:
        pytest.fail(f"{stem} did not run to the end (see test_smoke_run_succeeded)")
    return json.loads((Path(result.parameters["OUT_DIR"]) / "metrics.json").read_text())


@pytest.mark.notebook
def test_chapter_00_shows_its_targets_figures_and_provenance(smoke_run):
    from mammo_helpers.results import load_targets

    doc = _chapter_metrics(smoke_run, CHAPTER_00)
    rows = {row["target"]: row for row in doc["paper_vs_measured"]}
    assert set(rows) == {t.name for t in load_targets(CHAPTER_00)}
    for name in (
        "beta_dm",
        "beta_dbt",
        "density_pearson_r",
        "observer_auc_mass_dm",
        "noise_min_r2",
        "learnability_patch_auc",
        "learnability_image_auc",
    ):
        assert rows[name]["status"] != "not measured", name
        assert math.isfinite(rows[name]["measured"]), name
    assert set(doc["figures"]) >= CHAPTER_00_FIGURES
    out_dir = Path(smoke_run.results[CHAPTER_00].parameters["OUT_DIR"])
    assert all((out_dir / name).stat().st_size > 1000 for name in CHAPTER_00_FIGURES)
    assert (out_dir / "paper_vs_measured.csv").is_file()
    learn = pd.read_csv(out_dir / "learnability.csv")
    assert learn.model.nunique() == 3 and set(learn.kind) >= {"all"}
    assert learn.auc.between(0, 1).all() and (learn.positives > 0).all()
    m = doc["metrics"]
    k, needed = m["learnability_effective_locations"], m["learnability_location_auc_needed"]
    patch, slid = m["learnability_patch_auc"], m["learnability_image_auc_sliding"]
    if k is None:  # infinite or undefined: the slid CNN (or the patch CNN) at chance
        assert min(patch, slid) <= 0.5 and needed is None
    else:  # the search model the chapter plots reproduces what it measured
        image_bar = next(
            t.low for t in load_targets(CHAPTER_00) if t.name == "learnability_image_auc"
        )
        assert search_auc(patch, k) == pytest.approx(slid, abs=1e-3)
        assert search_auc(needed, k) == pytest.approx(image_bar, abs=1e-4)
    assert doc["provenance"]["seed"] == doc["seed"] == 0 and doc["provenance"]["packages"]["torch"]


@pytest.mark.notebook
def test_chapter_00_uses_the_cohort_that_make_data_builds(smoke_run):
    """`make data SCALE=smoke` (mammo-cohort --scale smoke) names the cohort chapter 00 used."""
    from mammo_helpers.data.cohort import cohort_from_parameters, cohort_key
    from mammo_helpers.run import load_scale, plan_runs

    doc = _chapter_metrics(smoke_run, CHAPTER_00)
    (plan,) = plan_runs([REPO / "notebooks" / f"{CHAPTER_00}.ipynb"], load_scale("smoke"))
    spec = cohort_from_parameters(plan.effective())
    assert doc["metrics"]["cohort_key"] == cohort_key(spec.n_patients, spec.config)
    assert doc["metrics"]["n_patients"] == spec.n_patients


def _snapshot(root: Path) -> dict:
    return {
        p.relative_to(root).as_posix(): (p.is_dir(), p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
    }


def _run_on_read_only_vindr(stem: str, cohort, tmp_path, n_patients: int, **params) -> dict:
    """Write ``cohort`` in VinDr-Mammo's layout, make it read-only, run chapter ``stem`` at
    the smoke scale on it (``DATA_SOURCE vindr``, and ``params``), check nothing was written
    there and return the chapter's metrics.json."""
    import stat

    import mammo_helpers as mh
    from mammo_helpers.run import run_notebook

    data_dir = mh.data.examples.phantom_as_vindr(cohort, tmp_path / "vindr", test_fraction=0.3)
    for path in [data_dir, *data_dir.rglob("*")]:
        path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    before = _snapshot(data_dir)
    try:
        run_notebook(
            stem, "smoke", executed_dir=tmp_path / "executed",
            results_dir=tmp_path / "results", quiet=True, DATA_SOURCE="vindr",
            DATA_DIR=str(data_dir), N_PATIENTS=n_patients, **params,
        )  # fmt: skip
    finally:
        assert _snapshot(data_dir) == before
        for path in [data_dir, *data_dir.rglob("*")]:
            path.chmod(path.stat().st_mode | stat.S_IWUSR)
    return json.loads((tmp_path / "results" / stem / "metrics.json").read_text())


@pytest.mark.notebook
def test_readme_real_data_example_reads_and_never_writes_the_dataset(smoke_run, tmp_path):
    """`mammo-run 00 -p DATA_SOURCE vindr -p DATA_DIR /data/vindr` on the VinDr example,
    with the dataset folder made read-only: the chapter runs and writes nothing there."""
    import stat

    from mammo_helpers.data.examples import example_dataset
    from mammo_helpers.run import run_notebook

    data_dir = example_dataset("vindr", tmp_path / "vindr")
    for path in [data_dir, *data_dir.rglob("*")]:
        path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    before = _snapshot(data_dir)
    try:
        run_notebook(
            CHAPTER_00,
            "smoke",
            executed_dir=tmp_path / "executed",
            results_dir=tmp_path / "results",
            quiet=True,
            DATA_SOURCE="vindr",
            DATA_DIR=str(data_dir),
        )
    finally:
        assert _snapshot(data_dir) == before
        for path in [data_dir, *data_dir.rglob("*")]:
            path.chmod(path.stat().st_mode | stat.S_IWUSR)
    doc = json.loads((tmp_path / "results" / CHAPTER_00 / "metrics.json").read_text())
    assert doc["data_source"] == "vindr"
    assert doc["metrics"]["n_patients"] == 2  # the example's two VinDr studies


# ----------------------------------------------------------------- chapter 01 in particular
CHAPTER_01 = "01_density_clip"
CHAPTER_01_FIGURES = {
    "pretraining.png",
    "confusion.png",
    "training.png",
    "gradcam_classes.png",
    "gradcam_external.png",
    "robustness.png",
}
CHAPTER_01_KEYS = (
    "finetuned_accuracy",
    "finetuned_macro_auc",
    "zeroshot_accuracy",
    "zeroshot_macro_auc",
    "per_class_auc",
    "per_class_accuracy",
    "single_modality",
    "external",
    "recall_D_weighted",
    "recall_D_unweighted",
    "baseline_crossentropy_macro_auc",
    "baseline_physics_accuracy",
    "adjacent_error_share",
    "gradcam_mass_in_breast",
    "train_images_per_s",
)


@pytest.mark.notebook
def test_chapter_01_reports_every_number_the_issue_names(smoke_run):
    doc = _chapter_metrics(smoke_run, CHAPTER_01)
    m = doc["metrics"]
    missing = [key for key in CHAPTER_01_KEYS if key not in m]
    assert not missing, missing
    for key in ("finetuned_macro_auc", "zeroshot_macro_auc", "baseline_crossentropy_macro_auc"):
        low, high = m[f"{key}_ci"]
        assert 0 <= low <= m[key] <= high <= 1, key
    assert set(m["per_class_auc"]) == set("ABCD") and set(m["per_class_accuracy"]) == set("ABCD")
    assert {"accuracy", "macro_auc", "accuracy_ci"} <= set(m["single_modality"])
    # two phantom sites standing in for RSNA and EMBED, and the two real formats' examples
    assert set(m["external"]) == {"phantom site_B", "phantom site_D", "rsna", "embed"}
    assert m["finetune_gain_accuracy"] == pytest.approx(
        m["finetuned_accuracy"] - m["zeroshot_accuracy"]
    )
    assert 0 <= m["gradcam_mass_in_breast"] <= 1 and m["train_images_per_s"] > 0
    assert set(m["robustness"]) == {"paddle_edge", "clip", "implant", "text"}
    rows = {row["target"]: row for row in doc["paper_vs_measured"]}
    assert rows["finetuned_accuracy"]["status"] in ("within", "below", "above")
    assert rows["per_class_auc.D"]["measured"] == m["per_class_auc"]["D"]
    out_dir = Path(smoke_run.results[CHAPTER_01].parameters["OUT_DIR"])
    assert set(doc["figures"]) >= CHAPTER_01_FIGURES
    assert all((out_dir / name).stat().st_size > 1000 for name in CHAPTER_01_FIGURES)


@pytest.mark.notebook
def test_chapter_01_follows_the_papers_protocol(smoke_run):
    """Every image validated once by a model that never saw its patient; patients with two
    exams only ever in training; the class mix of the paper; the four prompts verbatim."""
    out_dir = Path(smoke_run.results[CHAPTER_01].parameters["OUT_DIR"])
    preds = pd.read_csv(out_dir / "predictions_multi.csv")
    assert set(preds.variant) == {"weighted", "unweighted", "crossentropy"}
    for _, part in preds.groupby("variant"):
        assert part.image_id.is_unique
        assert part.groupby("patient_id").fold.nunique().eq(1).all()
    prob_cols = [f"p_{c}" for c in "ABCD"]
    assert np.allclose(preds[prob_cols].sum(axis=1), 1, atol=1e-4)
    assert (preds[prob_cols].to_numpy().argmax(1) == preds.pred).all()
    mix = pd.read_csv(out_dir / "class_mix.csv").set_index("set")
    here = mix.loc["here, multi-modality", list("ABCD")].astype(float)
    paper = mix.loc["paper, multi-modality", list("ABCD")].astype(float)
    assert np.allclose(here / here["D"], paper / paper["D"], atol=0.5)  # 4 : 6 : 6 : 3
    per_fold = pd.read_csv(out_dir / "per_fold.csv")
    assert per_fold.groupby("model").fold.nunique().eq(per_fold.fold.nunique()).all()
    weighted = per_fold[per_fold.model == "weighted"]
    assert weighted.images.sum() == len(preds[preds.variant == "weighted"])
    longitudinal = set(_chapter_metrics(smoke_run, CHAPTER_01)["metrics"]["longitudinal_patients"])
    assert longitudinal and not longitudinal & set(preds.patient_id)


# ----------------------------------------------------------------- chapter 02 in particular
CHAPTER_02 = "02_correlax"
CHAPTER_02_FIGURES = {
    "training_crops.png",
    "training_history.png",
    "iou_kernels.png",
    "fig4_one_window.png",
    "fig5_maps.png",
    "fig6_held_out_site.png",
    "fig7_mask_sensitivity.png",
    "error_vs_time.png",
    "pointing_search_model.png",
}
CHAPTER_02_GAMES = (
    "pointing_game_pred25",
    "pointing_game_pred50",
    "pointing_game_corr",
    "pointing_game_product",
    "pointing_game_gradcam",
    "pointing_game_pred25_external",
)
CHAPTER_02_KEYS = (
    *CHAPTER_02_GAMES,
    "f1_per_label",
    "classifier_table",
    "map_pixel_auc",
    "mask_sensitivity_mae",
    "mask_sensitivity_mae_256",
    "throughput_ratio",
    "speedup_vs_loop",
    "speedup_at_error_0025",
    "seconds_per_mammogram",
    "seconds_per_stage",
    "paper",
)


@pytest.mark.notebook
def test_chapter_02_reports_every_number_the_issue_names(smoke_run):
    doc = _chapter_metrics(smoke_run, CHAPTER_02)
    m = doc["metrics"]
    missing = [key for key in CHAPTER_02_KEYS if key not in m]
    assert not missing, missing
    for key in CHAPTER_02_GAMES:
        game = m[key]
        hits = sum(e["hits"] for e in game["per_label"].values())
        support = sum(e["support"] for e in game["per_label"].values())
        assert support == game["support"], key
        if support:
            assert game["support_weighted"] == pytest.approx(hits / support), key
            assert game["paper_formula"] == pytest.approx(hits / game["n_images"]), key
            assert game["n_images"] <= support
        for label, e in game["per_label"].items():
            if e["support"]:
                low, high = e["ci"]
                assert 0 <= low <= e["accuracy"] <= high <= 1, (key, label)
                assert e["accuracy"] == pytest.approx(e["hits"] / e["support"])
    assert m["speedup_vs_loop"]["max_abs_delta_r"] <= 1e-5
    assert set(m["f1_per_label"]) >= {"No Finding", "mass", "calcification"}
    assert m["map_pixel_auc"]["prediction (all test images)"]["n"] > 0
    out_dir = Path(smoke_run.results[CHAPTER_02].parameters["OUT_DIR"])
    assert set(doc["figures"]) >= CHAPTER_02_FIGURES
    assert all((out_dir / name).stat().st_size > 1000 for name in CHAPTER_02_FIGURES)


@pytest.mark.notebook
def test_chapter_02_search_model_is_fed_its_own_auc_and_pointing_game(smoke_run):
    """The search-model table takes each label's crop AUC from Table 3 and its hit rate from
    the Pointing Game, and its number of locations gives that hit rate back; the hits by box
    size add up to the Pointing Game's."""
    import mammo_helpers as mh

    m = _chapter_metrics(smoke_run, CHAPTER_02)["metrics"]
    search = m["pointing_search_model"]["per_label"]
    assert set(search) == set(m["pointing_game_pred25"]["per_label"])
    fitted = 0
    for label, row in search.items():
        accuracy = m["pointing_game_pred25"]["per_label"][label]["accuracy"]
        assert row["hit_rate"] == (accuracy and pytest.approx(accuracy))  # tables: 10 digits
        assert row["location_auc"] == pytest.approx(
            m["classifier_table"][label]["auc"], nan_ok=True
        )
        if row["locations"] is not None:
            rate = mh.learnability.pointing_hit_rate(row["location_auc"], row["locations"])
            assert rate == pytest.approx(row["hit_rate"], abs=1e-3)
            fitted += 1
    assert fitted == 0 or m["pointing_search_model"]["locations"] >= 1
    by_size = m["pointing_game_pred25_by_box_size"]  # the same hits, split by box size
    for label, e in m["pointing_game_pred25"]["per_label"].items():
        pairs, rates = by_size["pairs"].get(label, {}), by_size["hit rate"].get(label, {})
        assert sum(pairs.values()) == e["support"]
        assert sum(rates[b] * n for b, n in pairs.items() if n) == pytest.approx(e["hits"])


@pytest.mark.notebook
def test_chapter_02_tables_keep_the_papers_numbers_beside_ours(smoke_run):
    out_dir = Path(smoke_run.results[CHAPTER_02].parameters["OUT_DIR"])
    table1 = pd.read_csv(out_dir / "table1_samples_per_label.csv").set_index("label")
    assert table1.loc["mass", "paper train"] == 989 and table1.loc["mass", "train"] > 0
    assert (table1[["train", "val", "test"]] >= 0).all().all()
    table3 = pd.read_csv(out_dir / "table3_test_crops.csv").set_index("label")
    assert table3.loc["mass", "paper F1"] == 0.7392
    assert ((table3.f1.dropna() >= 0) & (table3.f1.dropna() <= 1)).all()
    rows = {r["target"]: r for r in _chapter_metrics(smoke_run, CHAPTER_02)["paper_vs_measured"]}
    assert rows["pointing_game_pred25.paper_formula"]["paper / literature"].startswith("0.6358")


@pytest.mark.notebook
def test_chapter_02_runs_on_vindr_mammos_format_and_never_writes_it(smoke_run, tmp_path):
    """`mammo-run 02 -p DATA_SOURCE vindr -p DATA_DIR ...` on a phantom cohort written in
    VinDr-Mammo's layout (its CSVs, label spellings and training / test split), read-only:
    the chapter runs end to end on the real-data path and writes nothing there."""
    import mammo_helpers as mh

    cohort = mh.data.load_source(
        "phantom", n_patients=16, seed=5, spacing_mm=0.6, lesion_prevalence=0.8, progress=False
    )
    doc = _run_on_read_only_vindr(CHAPTER_02, cohort, tmp_path, 16)
    m = doc["metrics"]
    assert doc["data_source"] == "vindr" and "map_pixel_auc" not in m  # phantom-only: skipped
    assert (
        m["pointing_game_pred25"]["support"] > 0
        and m["pointing_game_pred25_external"]["support"] == 0
    )


@pytest.mark.notebook
def test_chapter_02_trains_its_classifier_under_torchrun(smoke_run, tmp_path):
    """`-p LAUNCHER torchrun -p NPROC 2`: the classifier is trained by 2 gloo processes
    into a fresh model cache (the cohorts are the smoke run's), the chapter reads it from
    there and finishes. Its loss per epoch is the in-process run's within 20 %: the batches
    are the same, but on the CPU batch norm normalises each process's half of a batch
    (measured 2.5 % and 7.8 % apart at the smoke scale)."""
    import torch

    import mammo_helpers as mh
    from mammo_helpers.run import run_notebook

    assert smoke_run.results[CHAPTER_02].ok
    shared = mh.paths.cache_dir(None)
    cache = tmp_path / "cache"
    cache.mkdir()
    for cohort in shared.glob("phantom-*"):
        (cache / cohort.name).symlink_to(cohort)
    run_notebook(
        CHAPTER_02, "smoke", executed_dir=tmp_path / "executed", results_dir=tmp_path / "results",
        quiet=True, LAUNCHER="torchrun", NPROC=2, DASK_SCHEDULER="serial", CACHE_DIR=str(cache),
    )  # fmt: skip
    entries = sorted((cache / "models").iterdir())
    assert [e.name.startswith("correlax-") for e in entries] == [True]
    assert not list(cache.glob(".torchrun-*"))  # the job file is gone
    ours = torch.load(entries[0] / "model.pt", weights_only=True)["history"]["rows"]
    theirs = torch.load(shared / "models" / entries[0].name / "model.pt", weights_only=True)
    losses = [r["loss"] for r in theirs["history"]["rows"]]
    assert len(ours) == len(losses) == smoke_run.results[CHAPTER_02].parameters["EPOCHS"]
    assert [r["loss"] for r in ours] == pytest.approx(losses, rel=0.2)
    assert [r["loss"] for r in ours] != losses  # not trained here: that repeats exactly


# ----------------------------------------------------------------- chapter 03 in particular
CHAPTER_03 = "03_xai_iou"
CHAPTER_03_FIGURES = {
    "classifier_training_and_roc.png",
    "fig2_superpixels.png",
    "fig4_patch_maps.png",
    "box_parameter_sweep.png",
    "fig3_box_steps.png",
    "fig5_fig6_iou.png",
    "runtimes.png",
    "pixel_metrics.png",
    "randomisation_cascade.png",
}
CHAPTER_03_PER_METHOD = (
    "iou_median_all_malignant_per_method",
    "tpr_at_iou_per_method",
    "pointing_game_per_method",
    "relevance_mass_per_method",
    "pixel_auc_per_method",
    "runtime_s_per_method",
    "forwards_per_method",
)
CHAPTER_03_KEYS = (
    *CHAPTER_03_PER_METHOD,
    "patch_accuracy",
    "full_image_auc",
    "full_image_auc_ci",
    "iou_median_per_method",
    "chance_levels",
    "randomization_rank_corr_per_method",
    "randomization_ssim_per_method",
    "ig_completeness_gap",
    "box_params",
    "n_eval_images",
    "paper_ranking_agrees",
)


def _chapter_03_parameters(smoke_run) -> dict:
    return smoke_run.results[CHAPTER_03].parameters


@pytest.mark.notebook
def test_chapter_03_reports_every_number_the_issue_names(smoke_run):
    import mammo_helpers as mh

    doc = _chapter_metrics(smoke_run, CHAPTER_03)
    m = doc["metrics"]
    missing = [key for key in CHAPTER_03_KEYS if key not in m]
    assert not missing, missing
    methods = set(mh.xai.attribution.METHODS)
    for key in CHAPTER_03_PER_METHOD:
        assert set(m[key]) == methods, key
    p = _chapter_03_parameters(smoke_run)
    assert set(m["randomization_rank_corr_per_method"]) == set(p["SANITY_METHODS"])
    assert set(m["paper_ranking_agrees"]) == {
        "Integrated Gradients among the two best",
        "Occlusion among the two best",
        "LIME and SHAP the two worst",
        "Integrated Gradients the slowest",
    }
    low, high = m["full_image_auc_ci"]
    assert 0 <= low <= m["full_image_auc"] <= high <= 1
    assert 0 <= m["chance_levels"]["lesion_share_of_breast"] < 0.5
    assert m["n_eval_images"] == min(p["N_EVAL_IMAGES"], m["n_eval_images"]) > 0
    out_dir = Path(p["OUT_DIR"])
    assert set(doc["figures"]) >= CHAPTER_03_FIGURES
    assert all((out_dir / name).stat().st_size > 1000 for name in CHAPTER_03_FIGURES)


@pytest.mark.notebook
def test_chapter_03_counts_the_images_each_method_forwards(smoke_run):
    """The forward counts the chapter reports equal the analytic counts of its settings."""
    import mammo_helpers as mh

    m = _chapter_metrics(smoke_run, CHAPTER_03)["metrics"]["forwards_per_method"]
    p = _chapter_03_parameters(smoke_run)
    h, w = p["IMAGE_HW"]
    window, stride = mh.xai.attribution.paper_occlusion(h)
    grid = mh.xai.windows.window_grid(
        np.ones((h, w), bool), p["CORRELAX_WINDOW"], p["CORRELAX_STRIDE"]
    )
    n_windows = grid.n_windows  # centres every stride over the whole (breast-less: all) image
    expected = {
        "saliency": 1,
        "integrated_gradients": p["IG_STEPS"],
        "occlusion": mh.xai.attribution.occlusion_forwards((h, w), window, stride),
        "lime": p["LIME_SAMPLES"],
        "kernel_shap": p["SHAP_SAMPLES"],
        "deeplift": 2,
        "gradcam": 1,
        "guided_gradcam": 2,
        "relax": 1 + p["RELAX_MASKS"],
        "correlax": n_windows * (1 + p["CORRELAX_MASKS"]),
    }
    assert m == pytest.approx(expected)


@pytest.mark.notebook
def test_chapter_03_summaries_follow_from_its_per_image_tables(smoke_run):
    import mammo_helpers as mh

    doc = _chapter_metrics(smoke_run, CHAPTER_03)
    m = doc["metrics"]
    out_dir = Path(_chapter_03_parameters(smoke_run)["OUT_DIR"])
    iou = pd.read_csv(out_dir / "iou_per_image.csv").set_index("image_id")
    assert len(iou) == m["n_eval_images"]
    assert ((iou >= 0) & (iou <= 1)).all().all()
    for method, median in m["iou_median_all_malignant_per_method"].items():
        assert median == pytest.approx(iou[method].median()), method
        tpr = m["tpr_at_iou_per_method"][method]
        assert tpr["0.3"] == pytest.approx((iou[method] >= 0.3).mean()), method
    pixel = pd.read_csv(out_dir / "pixel_metrics_per_image.csv")
    means = pixel.groupby("map").pointing.mean()
    for method, value in m["pointing_game_per_method"].items():
        assert value == pytest.approx(means[method]), method
    assert {"ref: noise", "ref: intensity", "ref: edges"} <= set(pixel["map"])
    table1 = pd.read_csv(out_dir / "table1_counts.csv").set_index("split")
    totals = table1.loc[["train", "val", "test"]].sum()
    assert (table1.loc["total"] == totals).all()
    # whole images are balanced per split, patches pair a normal with each lesion
    assert (
        (table1["images normal"] == table1["images malignant"]).loc[["train", "val", "test"]].all()
    )
    missing = m["normal_patches_missing"]
    assert (
        table1.loc["total", "patches malignant"] == table1.loc["total", "patches normal"] + missing
    )
    # the patches' field of view is the candidate of best validation AUC, every one tried
    fov = pd.read_csv(out_dir / "patch_field_of_view.csv").set_index("field of view (mm)")
    assert list(fov.index) == _chapter_03_parameters(smoke_run)["PATCH_MM"]
    assert m["patch_mm"] == fov["validation AUC"].idxmax()
    assert m["patch_fov_val_auc"] == pytest.approx(
        {str(k): v for k, v in fov["validation AUC"].items()}
    )
    claims = pd.read_csv(out_dir / "paper_claims.csv").set_index("claim")
    assert claims.agrees.to_dict() == m["paper_ranking_agrees"]
    tests = pd.read_csv(out_dir / "wilcoxon_tests.csv")
    assert set(tests.a) == {"integrated_gradients", "occlusion", "lime", "kernel_shap"}
    assert ((tests["Wilcoxon p"] >= 0) & (tests["Wilcoxon p"] <= 1)).all()
    assert set(mh.xai.attribution.PAPER_METHODS) >= set(tests.b)


@pytest.mark.notebook
def test_chapter_03_runs_on_vindr_mammos_format_and_never_writes_it(smoke_run, tmp_path):
    """`mammo-run 03 -p DATA_SOURCE vindr -p DATA_DIR ...` on a phantom cohort in
    VinDr-Mammo's layout (BI-RADS 5 for its malignant findings: the malignancy proxy),
    read-only: the chapter runs end to end and writes nothing there."""
    import mammo_helpers as mh

    cohort = mh.data.load_source(
        "phantom", n_patients=24, seed=0, spacing_mm=0.6, lesion_prevalence=0.6, progress=False,
        sites=("site_A", "site_C"), site_weights=(0.5, 0.5),
    )  # fmt: skip
    doc = _run_on_read_only_vindr(CHAPTER_03, cohort, tmp_path, 24)
    m = doc["metrics"]
    assert doc["data_source"] == "vindr" and m["n_eval_images"] > 0
    assert "inserted_mass_pointing_per_method" not in m  # phantom-only: skipped


@pytest.mark.notebook
def test_chapter_03_cuts_its_patches_from_cbis_ddsm(smoke_run, tmp_path):
    """The paper scale's data (`-p PATCH_SOURCE cbis_ddsm -p PATCH_DIR ...`): whole images
    from VinDr-Mammo, patches from another dataset in CBIS-DDSM's layout, one per malignant
    finding of that dataset, not of the VinDr images."""
    import mammo_helpers as mh
    from mammo_helpers.preprocess.malignancy import malignant_findings

    def phantom(n, seed):
        return mh.data.load_source(
            "phantom", n_patients=n, seed=seed, spacing_mm=0.6, lesion_prevalence=0.6,
            progress=False, sites=("site_A", "site_C"), site_weights=(0.5, 0.5),
        )  # fmt: skip

    cbis_dir = mh.data.phantom_formats.phantom_as_cbis_ddsm(phantom(30, 7), tmp_path / "cbis")
    cbis = mh.data.load_source("cbis_ddsm", cbis_dir, n_patients=24, seed=0)  # as the chapter
    expected = sum(len(malignant_findings(f)) for f in cbis.findings)
    vindr = phantom(24, 0)
    in_vindr = sum(len(malignant_findings(f)) for f in vindr.findings)
    assert expected != in_vindr  # the two sources are told apart
    doc = _run_on_read_only_vindr(
        CHAPTER_03, vindr, tmp_path, 24, PATCH_SOURCE="cbis_ddsm", PATCH_DIR=str(cbis_dir),
        PATCH_SPACING_MM=0.6,
    )  # fmt: skip
    counts = doc["metrics"]["table1"]["total"]
    assert counts["patches malignant"] == expected
    assert counts["patches normal"] + doc["metrics"]["normal_patches_missing"] == expected


CHAPTER_04 = "04_multitask_fusion"
CHAPTER_04_FIGURES = {
    "training_curves.png",
    "froc.png",
    "n_sweep.png",
    "roc_fusion.png",
    "patient_report.png",
}
FUSION_MODELS = {"p_score", "p_feat", "p_score_no_density", "p_feat_no_density", "max_pF", "max_pL"}


@pytest.mark.notebook
def test_chapter_04_reports_every_number_the_issue_names(smoke_run):
    import mammo_helpers as mh

    doc = _chapter_metrics(smoke_run, CHAPTER_04)
    m = doc["metrics"]
    for target in ("lesion", "malignancy"):
        assert set(m[f"auc_{target}"]) == FUSION_MODELS, target
        assert set(m["wilcoxon_p"][target]) == {
            f"{m['better_fusion'][target]} vs max_pF",
            f"{m['better_fusion'][target]} vs max_pL",
            "p_feat vs p_score",
            "p_score vs p_score_no_density",
            "p_feat vs p_feat_no_density",
        }
        assert m["better_fusion"][target] in ("p_score", "p_feat")
    assert len(m["delta_auc_ci"]) == 10
    for name, est in m["delta_auc_ci"].items():
        low, high = est["ci"]
        assert low <= est["delta"] <= high, name
    assert set(m["density_auc"]) == {"D", "mean_Dv", "Dv_image", "D_no_pretraining"}
    assert {"F", "F_no_pretraining"} <= set(m["findings_auc"])
    assert set(m["froc_tpr_at_1fpi"]) == {"any", *mh.vocab.LESION_CLASSES}
    n_values = set(smoke_run.results[CHAPTER_04].parameters["N_DETECTIONS"])
    assert {int(n) for t in m["best_n"].values() for n in t.values()} <= n_values
    assert set(m["fp_normal_images"]) == {"false_positives", "images_with_one", "images"}
    assert m["fp_normal_images"]["images_with_one"] <= m["fp_normal_images"]["images"]
    assert {"D @ 0.6", "mean(D^v) @ 0.8"} <= set(m["threshold_table"])
    assert {"data", "density model D", "findings model F", "detector L", "fusion"} <= set(
        m["stage_seconds"]
    )
    out_dir = Path(smoke_run.results[CHAPTER_04].parameters["OUT_DIR"])
    assert set(doc["figures"]) >= CHAPTER_04_FIGURES
    assert all((out_dir / name).stat().st_size > 1000 for name in CHAPTER_04_FIGURES)


@pytest.mark.notebook
def test_chapter_04_tables_follow_from_its_outputs(smoke_run):
    doc = _chapter_metrics(smoke_run, CHAPTER_04)
    m = doc["metrics"]
    out_dir = Path(smoke_run.results[CHAPTER_04].parameters["OUT_DIR"])
    table5 = pd.read_csv(out_dir / "table5_fusion.csv").set_index(["target", "model"])
    for target in ("lesion", "malignancy"):
        for model, auc in m[f"auc_{target}"].items():
            assert table5.loc[(target, model), "auc"] == pytest.approx(auc), (target, model)
    sweep = pd.read_csv(out_dir / "n_sweep.csv")
    for target, per_model in m["best_n"].items():
        for model, n in per_model.items():
            rows = sweep[(sweep.target == target) & (sweep.model == model)]
            assert rows.loc[rows.val_auc.idxmax(), "n"] == n or rows.val_auc.nunique() < len(rows)
            chosen = rows[rows.n == n].test_auc.iloc[0]
            assert chosen == pytest.approx(m[f"auc_{target}"][model]), (target, model)
    table2 = pd.read_csv(out_dir / "table2_counts.csv").set_index(["group", "value"])
    assert (table2[["Train", "Validation", "Test"]].sum(axis=1) == table2["Total"]).all()
    pathology = table2.loc["Pathology", "Total"].sum()
    assert pathology == m["table2"]["Pathology / normal"]["Total"] + sum(
        m["table2"][f"Pathology / {p}"]["Total"] for p in ("benign", "malignant")
    )
    head = m["headline"]
    assert head["lesion_auc"] == pytest.approx(m["auc_lesion"][m["better_fusion"]["lesion"]])
    assert head["lesion_minus_max_pF"] == pytest.approx(
        head["lesion_auc"] - m["auc_lesion"]["max_pF"]
    )


@pytest.mark.notebook
def test_chapter_04_refuses_cbis_ddsm_for_the_lesion_target_naming_what_is_missing(tmp_path):
    """CBIS-DDSM holds only images with lesions and no complete four-view exams: the
    chapter stops at its data step with a message naming the missing normal exams."""
    import mammo_helpers as mh
    from mammo_helpers.run import run_notebook
    from mammo_helpers.run.execution import NotebookFailed

    data_dir = mh.data.examples.example_dataset("cbis_ddsm", tmp_path / "cbis")
    with pytest.raises(NotebookFailed) as failed:
        run_notebook(
            CHAPTER_04, "smoke", executed_dir=tmp_path / "executed",
            results_dir=tmp_path / "results", quiet=True, DATA_SOURCE="cbis_ddsm",
            DATA_DIR=str(data_dir),
        )  # fmt: skip
    error = failed.value.result.error
    assert error.get("ename") == "ValueError", error
    assert "normal exams" in error["evalue"] and "cbis_ddsm" in error["evalue"], error


CHAPTER_05 = "05_domain_shift"
CHAPTER_05_FIGURES = {
    "domains.png",
    "in_vs_out_of_domain.png",
    "roc_target.png",
    "loss_curves.png",
    "auc_vs_target_fraction.png",
    "whole_image_fit.png",
}
CHAPTER_05_AUCS = (
    "auc_out_of_domain",
    "auc_config1",
    "auc_config2",
    "auc_radiomics",
    "auc_head_only",
    "auc_histogram_matching",
)


@pytest.mark.notebook
def test_chapter_05_reports_every_number_the_issue_names(smoke_run):
    import mammo_helpers as mh

    doc = _chapter_metrics(smoke_run, CHAPTER_05)
    m = doc["metrics"]
    params = smoke_run.results[CHAPTER_05].parameters
    assert set(m["auc_in_domain"]) == set(m["auc_in_domain_ci"]) == {
        "cbis_ddsm", "cbis_ddsm_inbreast",
    }  # fmt: skip
    pairs = [(m["auc_in_domain"][k], m["auc_in_domain_ci"][k]) for k in m["auc_in_domain"]]
    pairs += [(m[name], m[f"{name}_ci"]) for name in CHAPTER_05_AUCS]
    for value, (low, high) in pairs:
        assert 0 <= low <= value <= high <= 1
    # §6.1's drop: the CBIS-DDSM+INbreast model in its domain against the target
    inside = m["auc_in_domain"]["cbis_ddsm_inbreast"]
    assert m["drop_percent"] == pytest.approx(100 * (inside - m["auc_out_of_domain"]) / inside)
    assert m["auc_drop"] == pytest.approx(inside - m["auc_out_of_domain"])
    models = {"config1", "config2", "head_only", "histogram_matching", "CNN baseline + radiomics"}
    for key in ("sensitivity", "specificity", "gmean_threshold"):
        assert models <= set(m[key]), key
        assert "CBIS-DDSM+INbreast on target" in m[key]
        assert all(0 <= v <= 1 for v in m[key].values()), key
    fractions = [row["fraction"] for row in m["auc_vs_target_fraction"]]
    assert fractions == params["TARGET_FRACTIONS"]
    full = next(r for r in m["auc_vs_target_fraction"] if r["fraction"] == 1.0)
    assert full["auc"] == pytest.approx(m[f"auc_{m['best_config']}"])
    assert set(m["radiomics_best_params"]) == set(mh.radiomics.COARSE_GRID)
    assert m["radiomics_n_attributes"] == 4 * len(mh.radiomics.FEATURE_NAMES) + 4 + 1 == 141
    assert {"data", "source models", "fine-tuning", "radiomics"} <= set(m["stage_seconds"])
    shift = pd.DataFrame(m["patch_level_shift"]).set_index(["patches", "model"])
    assert set(shift.index.get_level_values(0)) == {
        "source test", "target test", "target test, histogram-matched",
    }  # fmt: skip
    for (low, high), auc in zip(shift.ci, shift.lesion_auc, strict=True):
        assert low <= auc <= high
    source = ("source test", "source patch classifier")
    target = ("target test", "source patch classifier")
    assert m["patch_auc_drop"] == pytest.approx(shift.lesion_auc[source] - shift.lesion_auc[target])
    tuned = ("target test", "fine-tuned on target patches")
    delta = m["patch_paired_delta"]["fine-tuned - source"]
    assert delta["delta"] == pytest.approx(shift.lesion_auc[tuned] - shift.lesion_auc[target])
    assert delta["ci"][0] <= delta["delta"] <= delta["ci"][1]
    out_dir = Path(params["OUT_DIR"])
    assert set(doc["figures"]) >= CHAPTER_05_FIGURES
    assert all((out_dir / name).stat().st_size > 1000 for name in CHAPTER_05_FIGURES)


@pytest.mark.notebook
def test_chapter_05_target_keeps_its_pairs_and_tables_follow_from_its_outputs(smoke_run):
    import mammo_helpers as mh

    doc = _chapter_metrics(smoke_run, CHAPTER_05)
    m = doc["metrics"]
    out_dir = Path(smoke_run.results[CHAPTER_05].parameters["OUT_DIR"])
    split = m["target_split"]
    for name in ("train", "val", "test"):
        assert split[name]["cases"] == split[name]["controls"] == split[name]["pairs"]
        assert split[name]["images"] == 4 * split[name]["patients"]
    sizes = mh.data.casecontrol.split_sizes(split["total"]["pairs"], 0.1, 0.2)
    assert {k: split[k]["pairs"] for k in sizes} == sizes
    table9 = pd.read_csv(out_dir / "table9.csv").set_index("model")
    for key in ("config1", "config2", "head_only", "histogram_matching"):
        assert table9.loc[key, "auc"] == pytest.approx(m[f"auc_{key}"])
        delta = m["paired_delta"][key]
        assert delta["ci"][0] <= delta["delta"] <= delta["ci"][1]
        base = table9.loc["CBIS-DDSM+INbreast", "auc"]
        assert delta["delta"] == pytest.approx(m[f"auc_{key}"] - base)
    tables = pd.read_csv(out_dir / "tables_2_to_4.csv")
    assert len(tables) == 6 and set(tables.domain) == {"inbreast", "cbis_ddsm", "target"}
    # what the source models learnt: their test AUCs are those of Tables 2-4
    fit = pd.read_csv(out_dir / "whole_image_fit.csv").set_index(["model", "domain"])
    assert len(fit) == 6
    for r in tables.itertuples():
        assert fit.loc[(r.model, r.domain), "test"] == pytest.approx(r.auc)
        assert -1 <= fit.loc[(r.model, r.domain), "r with intensity"] <= 1
    images = pd.read_csv(out_dir / "domain_counts.csv")
    properties = pd.DataFrame(m["property_auc"])
    assert set(zip(properties.domain, properties.split, strict=True)) == {
        (d, s) for d in images.domain for s in ("train", "test")
    }
    # the phantom draws a finding in every malignant view, and in only some of the others
    assert (properties["number of findings"] > 0.5).all()
    assert properties[["mean breast intensity", "right breast"]].stack().between(0, 1).all()


@pytest.mark.notebook
def test_chapter_05_runs_on_real_formats_and_never_writes_them(smoke_run, tmp_path):
    """`mammo-run 05 -p DATA_SOURCE rsna -p DATA_DIR ... -p CBIS_DDSM_DIR ... -p
    INBREAST_DIR ...` on the smoke scale's three phantom domains written in RSNA's,
    CBIS-DDSM's and INbreast's layouts, read-only: the real-data path runs end to end
    (INbreast's labels from BI-RADS) and writes nothing in the three folders."""
    import stat

    import mammo_helpers as mh
    from mammo_helpers.run import run_notebook

    smoke = load_scale("smoke")[CHAPTER_05]
    sizes = {"site_D": smoke["N_SOURCE_PATIENTS"][0], "site_C": smoke["N_SOURCE_PATIENTS"][1],
             "site_B": smoke["N_PATIENTS"]}  # fmt: skip
    options = {"resolution_scale": smoke["RESOLUTION_SCALE"], "lesion_prevalence": 0.6,
               "modalities": ("DM",), "site_weights": (1.0,), "progress": False}  # fmt: skip
    cohorts = {  # the chapter's seeds, SEED + the domain's position: its cached cohorts
        site: mh.data.load_source("phantom", n_patients=n, seed=k, sites=(site,), **options)
        for k, (site, n) in enumerate(sizes.items())
    }
    formats = mh.data.phantom_formats
    folders = {
        "CBIS_DDSM_DIR": formats.phantom_as_cbis_ddsm(cohorts["site_D"], tmp_path / "cbis"),
        "INBREAST_DIR": formats.phantom_as_inbreast(cohorts["site_C"], tmp_path / "inbreast"),
        "DATA_DIR": formats.phantom_as_rsna(cohorts["site_B"], tmp_path / "rsna"),
    }
    every = [p for folder in folders.values() for p in [folder, *folder.rglob("*")]]
    for path in every:
        path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    before = {name: _snapshot(folder) for name, folder in folders.items()}
    try:
        run_notebook(
            CHAPTER_05, "smoke", executed_dir=tmp_path / "executed",
            results_dir=tmp_path / "results", quiet=True, DATA_SOURCE="rsna",
            DROP_UNMATCHED=True,  # a phantom cohort is not age-matched by design
            **{name: str(folder) for name, folder in folders.items()},
        )  # fmt: skip
    finally:
        assert {name: _snapshot(folder) for name, folder in folders.items()} == before
        for path in every:
            path.chmod(path.stat().st_mode | stat.S_IWUSR)
    doc = json.loads((tmp_path / "results" / CHAPTER_05 / "metrics.json").read_text())
    m = doc["metrics"]
    assert doc["data_source"] == "rsna"
    assert m["target_split"]["total"]["pairs"] >= 5
    assert 0 <= m["auc_out_of_domain"] <= 1 and set(m["auc_in_domain"]) == {
        "cbis_ddsm", "cbis_ddsm_inbreast",
    }  # fmt: skip


CHAPTER_06 = "06_paper_scale"


@pytest.mark.notebook
def test_chapter_06_reports_work_measured_rates_and_labelled_projections(smoke_run):
    doc = _chapter_metrics(smoke_run, CHAPTER_06)
    m = doc["metrics"]
    out_dir = Path(smoke_run.results[CHAPTER_06].parameters["OUT_DIR"])
    work = pd.read_csv(out_dir / "paper_work.csv")
    assert list(work.columns[:5]) == ["chapter", "job", "units", "count", "source"]
    assert set(work.chapter) == {
        "01_density_clip", "02_correlax", "03_xai_iou", "04_multitask_fusion", "05_domain_shift",
    }  # fmt: skip
    assert (work["count"] > 0).all() and len(m["paper_work"]) == len(work)
    assert 2.5e6 < m["correlax_passes_per_mammogram"] < 2.7e6
    train, xai = m["training_throughput"], m["explanation_throughput"]
    for rate in (train["serial"]["samples_per_s"], train["parallel"]["samples_per_s"],
                 xai["serial_images_per_s"], xai["parallel_images_per_s"]):  # fmt: skip
        assert rate > 0
    assert train["parallel"]["nproc"] == train["nproc"] >= 2
    assert xai["max_abs_difference"] == 0.0
    for name, value in m["parallel_efficiency"].items():
        assert 0 < value <= 1.5, name
    assert all(v > 0 for v in m["cpu_gflops_per_s"].values())
    per_chapter = pd.DataFrame(m["projection_per_chapter"])
    assert set(per_chapter.chapter) == set(work.chapter)
    assert (per_chapter[["pflop", "cpu_hours", "gpu_hours", "n_gpu_hours"]] > 0).all().all()
    assert per_chapter.basis.str.contains("measured").all()
    assert per_chapter.basis.str.contains("projected").all()
    assert m["kinds"]["training_throughput"] == m["kinds"]["explanation_throughput"] == "measured"
    assert m["kinds"]["projection_per_chapter"] == "projected"
    assert m["kinds"]["paper_work"] == "from the papers"
    assert "cpu" in m["projection_assumptions"] and m["projection_assumptions"]["n_gpus"] >= 1
    assert "parallel_throughput.png" in doc["figures"]
    assert (out_dir / "projection_per_chapter.csv").is_file()
