"""Tests for mammo_helpers.data.cohort: the cached synthetic cohort on disk."""

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from mammo_helpers.boxes import mask_box
from mammo_helpers.data import cohort as cohort_mod
from mammo_helpers.data.cohort import (
    CohortWarning,
    build_cohort,
    cohort_folder,
    cohort_from_parameters,
    load_cohort,
    phantom_config,
)
from mammo_helpers.data.manifest import require_four_views
from mammo_helpers.data.phantom import PhantomConfig
from mammo_helpers.data.phantom.calibration import PD_CUTPOINTS
from mammo_helpers.data.phantom.generator import RenderedImage
from mammo_helpers.io import read_dicom

CFG = PhantomConfig(seed=3, resolution_scale=12.0, lesion_prevalence=1.0)
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return build_cohort(2, CFG, cache_dir=tmp_path_factory.mktemp("c"), workers=1, progress=False)


def test_cohort_has_four_readable_views_per_patient(tiny):
    df = tiny.manifest
    assert len(df) == 8 and df.patient_id.nunique() == 2
    require_four_views(df)
    for rec in df.itertuples():
        im = read_dicom(rec.path)
        assert im.laterality == rec.laterality and im.view == rec.view
        assert im.pixels.shape == (rec.rows, rec.cols)
        assert im.pixel_spacing_mm == pytest.approx(rec.pixel_spacing_mm)
    assert df.attrs["cohort_root"] == str(tiny.root)


def test_masks_match_their_boxes(tiny):
    n = 0
    for rec in tiny.manifest.itertuples():
        for f in rec.findings:
            mask = cv2.imread(str(tiny.root / f["mask_path"]), cv2.IMREAD_GRAYSCALE) > 0
            rr, cc = np.nonzero(mask)
            expected = (cc.min(), rr.min(), cc.max() + 1, rr.max() + 1)
            assert (f["xmin"], f["ymin"], f["xmax"], f["ymax"]) == expected == mask_box(mask)
            n += 1
    assert n > 0


def _fake_render(config, patient, laterality, view):
    """A stand-in for render_view: an 8x8 image whose true percent density is drawn from
    the patient's latent class (so the cohort code, not the renderer, is under test)."""
    rng = np.random.default_rng([patient.index, laterality == "L", view == "CC"])
    centre = {"A": 4.0, "B": 18.0, "C": 50.0, "D": 80.0}[patient.density_latent]
    return RenderedImage(
        stored=np.full((8, 8), 100, np.uint16),
        photometric="MONOCHROME2",
        bits_stored=12,
        window_center=2048.0,
        window_width=4096.0,
        voi_lut_function="LINEAR",
        spacing_mm=1.0,
        laterality=laterality,
        view=view,
        modality="DM",
        findings=[],
        breast_mask=np.ones((8, 8), bool),
        pectoral_mask=np.zeros((8, 8), bool),
        truth={
            "pd_true": float(np.clip(centre + rng.normal(0, 6), 0, 100)),
            "vgf": 0.2,
            "thickness_mm": 50.0,
        },
        display=np.zeros((8, 8), np.float32),
    )


def test_reader_density_follows_the_true_percent_density(tmp_path, monkeypatch):
    """The reader's BI-RADS class (chapter 01's label) tracks the exam's true percent
    density: classes are ordered like the truth, and the reader agrees with the noise-free
    class on most exams but not all (reader variability)."""
    monkeypatch.setattr(cohort_mod, "render_view", _fake_render)
    config = PhantomConfig(seed=5, resolution_scale=14.0)
    rows = [row for i in range(300) for row in cohort_mod._render_patient((config, i, tmp_path))]
    exams = pd.DataFrame(rows).drop_duplicates("study_id")
    assert set(exams.density) == set("ABCD")
    rank = exams.density.map("ABCD".index)
    rho = stats.spearmanr(rank, exams.exam_pd_true).statistic
    assert rho > 0.85, rho
    medians = exams.groupby("density").exam_pd_true.median()
    assert medians.is_monotonic_increasing, medians
    # the noise-free class is the true PD cut at the reader cut points
    true_class = np.searchsorted(PD_CUTPOINTS, exams.exam_pd_true.to_numpy())
    np.testing.assert_array_equal(true_class, exams.density_true.map("ABCD".index))
    agree = float((exams.density == exams.density_true).mean())
    assert 0.6 < agree < 0.98, agree


def _digest(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*.dcm")):
        h.update(p.read_bytes())
    return h.hexdigest()


def test_same_seed_same_bytes_and_cache_reuse(tiny, tmp_path):
    other = build_cohort(2, CFG, cache_dir=tmp_path, workers=1, progress=False)
    assert _digest(other.root) == _digest(tiny.root)
    stamp = (other.root / "manifest.csv").stat().st_mtime_ns
    again = build_cohort(2, CFG, cache_dir=tmp_path, workers=1, progress=False)
    assert (again.root / "manifest.csv").stat().st_mtime_ns == stamp
    assert load_cohort(again.root).manifest.image_id.tolist() == tiny.manifest.image_id.tolist()


def test_interrupted_build_leaves_no_half_cohort(tmp_path, monkeypatch):
    real = cohort_mod._render_patient

    def flaky(args):
        if args[1] == 1:
            raise RuntimeError("simulated crash")
        return real(args)

    monkeypatch.setattr(cohort_mod, "_render_patient", flaky)
    with pytest.raises(RuntimeError, match="simulated"):
        build_cohort(2, CFG, cache_dir=tmp_path, workers=1, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_a_killed_build_is_cleaned_up_by_the_next_one(tmp_path):
    """SIGKILL leaves a partial folder; the next build removes it, not a live build's."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        dead = tmp_path / f".phantom-x.partial-{_host()}-999999999-0123abcd"
        live = tmp_path / f".phantom-y.partial-{_host()}-{proc.pid}-0123abcd"
        for folder in (dead, live):
            (folder / "images").mkdir(parents=True)
        build_cohort(1, CFG, cache_dir=tmp_path, workers=1, progress=False)
        assert not dead.exists() and live.exists()
    finally:
        proc.kill()
        proc.wait()


def _host() -> str:
    import re
    import socket

    return re.sub(r"[^A-Za-z0-9]", "", socket.gethostname())[:32] or "host"


BUILD_SCRIPT = """
import sys
from mammo_helpers.data.cohort import build_cohort
from mammo_helpers.data.phantom import PhantomConfig
build_cohort(40, PhantomConfig(seed=9, resolution_scale=8.0), cache_dir=sys.argv[1],
             workers=2, progress=False)
"""


def _children(pid: int) -> list:
    import psutil

    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def test_sigterm_stops_the_workers_and_removes_the_partial_folder(tmp_path):
    import psutil

    proc = subprocess.Popen([sys.executable, "-c", BUILD_SCRIPT, str(tmp_path)])
    try:
        deadline = time.monotonic() + 180
        while not any(tmp_path.glob(".phantom-*.partial-*/images/*/*.dcm")):  # workers writing
            assert proc.poll() is None, "the build ended before it could be interrupted"
            assert time.monotonic() < deadline, "no image was written within 180 s"
            time.sleep(0.2)
        workers = _children(proc.pid)
        assert len(workers) >= 2
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        _, alive = psutil.wait_procs(workers, timeout=30)
        assert not alive, f"workers outlived the parent: {alive}"
        assert list(tmp_path.iterdir()) == [], list(tmp_path.iterdir())
    finally:
        if proc.poll() is None:
            proc.kill()


RACE_SCRIPT = """
import sys
from mammo_helpers.data.cohort import build_cohort
from mammo_helpers.data.phantom import PhantomConfig
c = build_cohort(1, PhantomConfig(seed=3, resolution_scale=12.0), cache_dir=sys.argv[1],
                 workers=1, progress=False)
print(c.root)
"""


def test_two_builders_racing_both_succeed(tmp_path):
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RACE_SCRIPT, str(tmp_path)], stdout=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    roots = []
    for p in procs:
        out, _ = p.communicate(timeout=300)
        assert p.returncode == 0
        roots.append(out.strip())
    assert roots[0] == roots[1]
    assert [p.name for p in tmp_path.iterdir()] == [Path(roots[0]).name]
    assert len(load_cohort(roots[0]).manifest) == 4


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    return build_cohort(1, CFG, cache_dir=tmp_path_factory.mktemp("one"), workers=1, progress=False)


@pytest.mark.parametrize(
    "damage",
    ["cohort.json garbage", "manifest.csv empty", "a DICOM file missing", "a mask missing"],
)
def test_a_damaged_cached_cohort_is_named_and_rebuilt(single, tmp_path, damage):
    root = tmp_path / single.root.name
    shutil.copytree(single.root, root)
    if damage == "cohort.json garbage":
        victim = root / "cohort.json"
        victim.write_text("{not json")
    elif damage == "manifest.csv empty":
        victim = root / "manifest.csv"
        victim.write_bytes(b"")
    elif damage == "a DICOM file missing":
        victim = next(root.glob("images/*/*.dcm"))
        victim.unlink()
    else:
        victim = next(root.glob("masks/*/*.png"))
        victim.unlink()
    with pytest.raises((OSError, ValueError), match=victim.name):
        load_cohort(root)
    with pytest.warns(CohortWarning, match=victim.name):
        again = build_cohort(1, CFG, cache_dir=tmp_path, workers=1, progress=False)
    assert again.root == root and _digest(again.root) == _digest(single.root)


def test_bad_parameters_are_named(tmp_path):
    with pytest.raises(TypeError, match="n_patients"):
        build_cohort("3", CFG, cache_dir=tmp_path)
    with pytest.raises(ValueError, match="n_patients"):
        build_cohort(0, CFG, cache_dir=tmp_path)
    for workers in (0, -2, 1.5, True):
        with pytest.raises(ValueError, match="workers"):
            build_cohort(1, CFG, cache_dir=tmp_path, workers=workers)
    with pytest.raises(FileNotFoundError, match="manifest"):
        load_cohort(tmp_path)
    with pytest.raises(TypeError, match="unknown phantom setting.*colour.*known"):
        phantom_config(0, colour="red")


def test_cache_key_changes_with_settings_and_generator_code(monkeypatch):
    key = cohort_mod.cohort_key(2, CFG)
    assert cohort_mod.cohort_key(2, CFG) == key
    assert cohort_mod.cohort_key(3, CFG) != key
    assert cohort_mod.cohort_key(2, PhantomConfig(seed=4)) != key
    monkeypatch.setattr(cohort_mod, "generator_fingerprint", lambda: "edited-code")
    assert cohort_mod.cohort_key(2, CFG) != key


def test_rerender_draws_the_same_breast_and_lesions_on_a_finer_grid(tiny):
    rec = tiny.manifest[tiny.manifest.findings.map(len) > 0].iloc[0]
    fine = cohort_mod.rerender(tiny, rec.image_id, spacing_mm=rec.pixel_spacing_mm / 2)
    coarse_mask = read_dicom(rec.path).pixels > 0
    down = (
        cv2.resize(
            fine.breast_mask.astype(np.uint8), coarse_mask.shape[::-1], interpolation=cv2.INTER_AREA
        )
        > 0
    )
    iou = (down & coarse_mask).sum() / (down | coarse_mask).sum()
    assert iou > 0.95
    f0, f1 = rec.findings[0], fine.findings[0]
    centre = lambda f, s: ((f["xmin"] + f["xmax"]) / 2 * s, (f["ymin"] + f["ymax"]) / 2 * s)  # noqa: E731
    c0 = centre(f0, rec.pixel_spacing_mm)
    c1 = centre(f1, fine.spacing_mm)
    assert np.hypot(c0[0] - c1[0], c0[1] - c1[1]) < 2 * rec.pixel_spacing_mm
    # the manifest alone (as load_source returns it) is enough
    again = cohort_mod.rerender(tiny.manifest, rec.image_id, spacing_mm=rec.pixel_spacing_mm / 2)
    np.testing.assert_array_equal(again.breast_mask, fine.breast_mask)
    with pytest.raises(KeyError, match="nope"):
        cohort_mod.rerender(tiny, "nope")
    with pytest.raises(ValueError, match="not a phantom cohort"):
        cohort_mod.rerender(pd.DataFrame({"image_id": ["x"]}), "x")


def test_an_unwritable_cache_folder_is_named_before_any_work(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    with pytest.raises(PermissionError, match="not-a-folder"):
        build_cohort(1, CFG, cache_dir=blocker / "cache", workers=1, progress=False)


# --------------------------------------------------------------- the settings, once
def test_cohort_from_parameters_reads_the_chapter_names():
    params = {"N_PATIENTS": 5, "SEED": 2, "RESOLUTION_SCALE": 6.0, "EPOCHS": 3, "SPACING_MM": None}
    spec = cohort_from_parameters(params)
    assert spec.source_args == {"n_patients": 5, "seed": 2, "resolution_scale": 6.0}
    assert spec.config == PhantomConfig(seed=2, resolution_scale=6.0)
    with pytest.raises(KeyError, match="SEED"):
        cohort_from_parameters({"N_PATIENTS": 5})
    with pytest.raises(ValueError, match="N_PATIENTS"):
        cohort_from_parameters({"N_PATIENTS": 0, "SEED": 0})


def _cli(*args, cwd=None, env=None):
    return subprocess.run(
        [sys.executable, "-m", "mammo_helpers.data.cohort", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
    )


@pytest.mark.parametrize(
    ("args", "pattern"),
    [
        (["--n-patients", "2", "--resolution-scale", "0"], "--resolution-scale: must be a finite"),
        (
            ["--n-patients", "2", "--resolution-scale", "nan"],
            "--resolution-scale: must be a finite",
        ),
        (["--n-patients", "2", "--workers", "0"], "--workers: must be an integer >= 1"),
        (["--n-patients", "2", "--workers", "-2"], "--workers: must be an integer >= 1"),
        (["--n-patients", "0"], "--n-patients: must be an integer >= 1"),
        (["--n-patients", "2", "--seed", "-1"], "--seed: must be an integer >= 0"),
        ([], "give --scale or --n-patients"),
    ],
)
def test_command_line_rejects_bad_options_before_any_work(tmp_path, args, pattern):
    result = _cli(*args, "--cache-dir", str(tmp_path))
    assert result.returncode == 2, result.stderr
    assert pattern in result.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("scale", ["smoke", "default"])
def test_make_data_builds_exactly_the_cohort_of_chapter_00(scale, tmp_path, monkeypatch):
    """`make data` (mammo-cohort --scale S) and chapter 00 at scale S derive their settings
    with the same function from the same parameters: same cohort folder."""
    from mammo_helpers.run import load_scale, plan_runs

    (plan,) = plan_runs([REPO / "notebooks" / "00_data_and_preprocessing.ipynb"], load_scale(scale))
    spec = cohort_from_parameters(plan.effective())
    expected = cohort_folder(spec.n_patients, spec.config, tmp_path)
    monkeypatch.setattr(cohort_mod, "build_cohort", _record_folder)
    monkeypatch.setattr(sys, "argv", ["mammo-cohort"])
    _record_folder.seen = None
    cohort_mod.main(["--scale", scale, "--cache-dir", str(tmp_path)])
    assert _record_folder.seen == expected


def _record_folder(n_patients, config, *, cache_dir, **kwargs):
    _record_folder.seen = cohort_folder(n_patients, config, cache_dir)

    class Done:
        root = _record_folder.seen
        manifest = []

    return Done()


def test_command_line_builds_and_reports_the_folder(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    result = _cli(
        "--n-patients", "1", "--seed", "3", "--resolution-scale", "12", "--workers", "1",
        "--cache-dir", str(tmp_path), env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    folder = cohort_folder(1, PhantomConfig(seed=3, resolution_scale=12.0), tmp_path)
    assert f"4 images in {folder}" in result.stdout
    info = json.loads((folder / "cohort.json").read_text())
    assert info["n_patients"] == 1 and info["config"]["resolution_scale"] == 12.0


def test_typical_lesion_is_the_median_contrast_lesion_redrawn_in_both_views(tiny):
    from mammo_helpers.data.manifest import explode_findings

    findings = explode_findings(tiny.manifest)
    label = findings.label.value_counts().index[0]
    views = cohort_mod.typical_lesion(tiny.manifest, label, spacing_mm=0.5, margin_mm=5.0)
    assert 1 <= len(views) <= 2 and len({v.image_id for v in views}) == len(views)
    ranked = findings[findings.label == label].sort_values("contrast", kind="stable")
    pick = ranked.iloc[len(ranked) // 2]
    for v in views:
        assert v.image_id.startswith(pick.patient_id) and v.finding["lesion_id"] == pick.lesion_id
        assert v.image.shape == v.mask.shape and v.spacing_mm == 0.5
        # the box is the mask's box inside the crop, with 5 mm (10 px) around it where it fits
        assert mask_box(v.mask) == pytest.approx(
            tuple(v.finding[k] for k in ("xmin", "ymin", "xmax", "ymax"))
        )
        assert 0.0 <= v.image.min() and v.image.max() <= 1.0
    assert cohort_mod.typical_lesion(tiny.manifest, "lymph_node") == []


def test_repeat_exams_are_second_studies_of_the_same_patients(tmp_path):
    cfg = PhantomConfig(seed=3, resolution_scale=12.0, repeat_share=1.0)
    df = build_cohort(2, cfg, cache_dir=tmp_path, workers=1, progress=False).manifest
    assert len(df) == 16 and df.image_id.is_unique and df.patient_id.nunique() == 2
    assert df.groupby("patient_id").study_id.nunique().eq(2).all()
    assert sorted(df.exam.unique()) == [0, 1]
    later = df[df.exam == 1]
    assert later.study_id.str.endswith("-Y1").all() and later.image_id.str.contains("-Y1-").all()
    for rec in later.itertuples():
        first = df[
            (df.patient_id == rec.patient_id)
            & (df.exam == 0)
            & (df.laterality == rec.laterality)
            & (df.view == rec.view)
        ].iloc[0]
        assert rec.pd_true < first.pd_true and rec.age == first.age + 1
        again = cohort_mod.rerender(df, rec.image_id)
        assert again.truth["pd_true"] == pytest.approx(rec.pd_true, abs=1e-3)
    require_four_views(df[df.exam == 0])


def test_read_back_gives_the_pixels_a_chapter_reads_from_the_cohort(tiny):
    for rec in tiny.manifest.iloc[[0, 3]].itertuples():
        again = cohort_mod.rerender(tiny, rec.image_id)
        np.testing.assert_array_equal(cohort_mod.read_back(again), read_dicom(rec.path).pixels)
    clip = cohort_mod.rerender(tiny, rec.image_id, artefacts=("clip",))
    assert not np.array_equal(cohort_mod.read_back(clip), read_dicom(rec.path).pixels)


def test_rerender_keeps_the_cohorts_own_spacing_by_default(tmp_path):
    cfg = PhantomConfig(seed=3, spacing_mm=2.0, sites=("site_C",), site_weights=(1.0,))
    df = build_cohort(1, cfg, cache_dir=tmp_path, workers=1, progress=False).manifest
    rec = df.iloc[0]
    again = cohort_mod.rerender(df, rec.image_id)
    assert again.spacing_mm == 2.0 and again.stored.shape == (rec.rows, rec.cols)
    np.testing.assert_array_equal(cohort_mod.read_back(again), read_dicom(rec.path).pixels)
    assert cohort_mod.rerender(df, rec.image_id, spacing_mm=1.0).spacing_mm == 1.0


def test_insert_mass_draws_the_same_breast_with_one_visible_malignant_mass(tiny):
    rec = tiny.manifest.iloc[0]
    stored = read_dicom(rec.path).pixels
    with_mass = cohort_mod.insert_mass(tiny, rec.image_id, seed=1)
    assert [(f["label"], f["malignant"]) for f in with_mass.findings] == [("mass", True)]
    mask = with_mass.findings[0]["mask"]
    assert mask.shape == stored.shape and mask.sum() > 0
    pixels = cohort_mod.read_back(with_mass).astype(float)
    changed = pixels != stored
    # the breast is the stored one: what changed lies on and around the mass
    ys, xs = np.nonzero(mask)
    near = np.zeros_like(mask)
    pad = max(mask.shape) // 6
    near[max(ys.min() - pad, 0) : ys.max() + pad, max(xs.min() - pad, 0) : xs.max() + pad] = True
    assert changed[mask].mean() > 0.5
    assert changed[~near].mean() < 0.5 * changed[mask].mean()
    again = cohort_mod.insert_mass(tiny.manifest, rec.image_id, seed=1)
    np.testing.assert_array_equal(again.stored, with_mass.stored)
    other = cohort_mod.insert_mass(tiny, rec.image_id, seed=2)
    assert not np.array_equal(other.findings[0]["mask"], mask)
    with pytest.raises(ValueError, match="insert_mass: this manifest is not a phantom"):
        cohort_mod.insert_mass(pd.DataFrame({"image_id": ["x"]}), "x")
