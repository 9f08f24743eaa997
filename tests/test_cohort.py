import hashlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from mammo_helpers.data import cohort as cohort_mod
from mammo_helpers.data.cohort import build_cohort, load_cohort
from mammo_helpers.data.manifest import require_four_views
from mammo_helpers.data.phantom import PhantomConfig
from mammo_helpers.io import read_dicom

CFG = PhantomConfig(seed=3, resolution_scale=12.0, lesion_prevalence=1.0)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return build_cohort(2, CFG, data_dir=tmp_path_factory.mktemp("c"), workers=1, progress=False)


def test_cohort_has_four_readable_views_per_patient(tiny):
    df = tiny.manifest
    assert len(df) == 8 and df.patient_id.nunique() == 2
    require_four_views(df)
    for rec in df.itertuples():
        im = read_dicom(rec.path)
        assert im.laterality == rec.laterality and im.view == rec.view
        assert im.pixels.shape == (rec.rows, rec.cols)
        assert im.pixel_spacing_mm == pytest.approx(rec.pixel_spacing_mm)


def test_masks_match_their_boxes(tiny):
    n = 0
    for rec in tiny.manifest.itertuples():
        for f in rec.findings:
            mask = cv2.imread(str(tiny.root / f["mask_path"]), cv2.IMREAD_GRAYSCALE) > 0
            rr, cc = np.nonzero(mask)
            assert (cc.min(), rr.min(), cc.max() + 1, rr.max() + 1) == (
                f["xmin"],
                f["ymin"],
                f["xmax"],
                f["ymax"],
            )
            n += 1
    assert n > 0


def _digest(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*.dcm")):
        h.update(p.read_bytes())
    return h.hexdigest()


def test_same_seed_same_bytes_and_cache_reuse(tiny, tmp_path):
    other = build_cohort(2, CFG, data_dir=tmp_path, workers=1, progress=False)
    assert _digest(other.root) == _digest(tiny.root)
    stamp = (other.root / "manifest.csv").stat().st_mtime_ns
    again = build_cohort(2, CFG, data_dir=tmp_path, workers=1, progress=False)
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
        build_cohort(2, CFG, data_dir=tmp_path, workers=1, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_bad_parameters_are_named(tmp_path):
    with pytest.raises(TypeError, match="n_patients"):
        build_cohort("3", CFG, data_dir=tmp_path)
    with pytest.raises(ValueError, match="n_patients"):
        build_cohort(0, CFG, data_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match="manifest"):
        load_cohort(tmp_path)


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
    with pytest.raises(KeyError, match="nope"):
        cohort_mod.rerender(tiny, "nope")


def test_an_unwritable_cache_folder_is_named_before_any_work(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    with pytest.raises(PermissionError, match="not-a-folder"):
        build_cohort(1, CFG, data_dir=blocker / "cache", workers=1, progress=False)
