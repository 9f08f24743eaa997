"""mammo_helpers.preprocess.malignancy: paper 03's classes, whole images with their exact
lesion masks, and lesion-centred / normal patches, on a tiny phantom cohort whose mask
files are the reference."""

import inspect

import cv2
import numpy as np
import pandas as pd
import pytest

import mammo_helpers as mh
from mammo_helpers.data.cohort import build_cohort
from mammo_helpers.data.phantom import PhantomConfig
from mammo_helpers.preprocess import malignancy as mal


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    cfg = PhantomConfig(seed=5, spacing_mm=0.6, lesion_prevalence=1.0)
    return build_cohort(4, cfg, cache_dir=tmp_path_factory.mktemp("mal"), workers=1, progress=False)


@pytest.mark.parametrize(
    "finding, malignant",
    [
        ({"malignant": True}, True),
        ({"malignant": False, "birads": "5"}, False),  # pathology wins over BI-RADS
        ({"malignant": None, "birads": "BI-RADS 4"}, True),  # the VinDr proxy
        ({"malignant": None, "birads": "BI-RADS 5"}, True),
        ({"malignant": None, "birads": "4A"}, True),
        ({"malignant": None, "birads": "BI-RADS 3"}, False),
        ({"malignant": float("nan"), "birads": None}, False),
        ({}, False),
    ],
)
def test_is_malignant_uses_pathology_then_the_birads_proxy(finding, malignant):
    assert mal.is_malignant(finding) is malignant


def test_image_classes():
    df = pd.DataFrame(
        {
            "findings": [[], [{"malignant": True}], [{"malignant": False}], [], []],
            "cancer": [0, 1, 0, np.nan, 1],
        }
    )
    got = mal.image_classes(df)
    assert got.iloc[:4].tolist()[:2] == [0.0, 1.0]
    assert np.isnan(got.iloc[2])  # benign only: neither class
    assert got.iloc[3] == 0.0  # no finding, unknown cancer: normal
    assert np.isnan(got.iloc[4])  # no box but a cancer flag: not normal
    with pytest.raises(ValueError, match="no 'findings' column"):
        mal.image_classes(pd.DataFrame({"x": [1]}))


def test_cases_carry_exact_masks_moved_like_the_image(cohort):
    df = cohort.manifest
    classes = mal.image_classes(df)
    sub = df[classes == 1]
    assert len(sub)
    cases = mal.load_cases(sub, size_hw=(96, 48))
    for row in sub.itertuples():
        case = cases[row.image_id]
        assert case.label == 1 and case.image.shape == (3, 96, 48)
        assert case.lesion.shape == case.breast.shape == (96, 48) and case.lesion.any()
        full = np.zeros((row.rows, row.cols), bool)
        for f in mal.malignant_findings(row.findings):
            full |= cv2.imread(str(cohort.root / f["mask_path"]), cv2.IMREAD_UNCHANGED) > 0
        # the same union, moved by the pipeline's own transform
        np.testing.assert_array_equal(case.lesion, mh.preprocess.warp_like(full, case.transform))
        # every malignant box holds lesion pixels
        for box in case.boxes:
            x0, y0, x1, y1 = (
                np.floor(box[:2]).astype(int).tolist() + np.ceil(box[2:]).astype(int).tolist()
            )
            assert case.lesion[y0:y1, x0:x1].any()
        assert (case.lesion & ~case.breast).mean() < 0.01
    # a source without mask files gets box masks
    no_masks = sub.copy()
    no_masks.attrs = {}
    case = mal.load_case(next(no_masks.itertuples()), size_hw=(96, 48))
    x0, y0, x1, y1 = case.boxes[0]
    assert case.lesion[int(y0) + 1 : int(y1) - 1, int(x0) + 1 : int(x1) - 1].all()


def test_patches_are_centred_on_lesions_and_normals_avoid_every_finding(cohort):
    df = cohort.manifest
    sub = df[mal.image_classes(df) == 1]
    case = mal.load_cases(sub.iloc[:1], size_hw=(96, 48))[sub.image_id.iloc[0]]
    patches, labels, missing = mal.lesion_patches(case, patch_mm=30.0, size_px=32)
    n = len(case.native_boxes)
    assert labels.count(1) == n and labels.count(0) + missing == n
    assert all(p.shape == (3, 32, 32) and p.dtype == np.float32 for p in patches)
    again = mal.lesion_patches(case, patch_mm=30.0, size_px=32)
    np.testing.assert_array_equal(np.stack(again[0]), np.stack(patches))  # seeded
    rng = np.random.default_rng(0)
    for _ in range(20):
        box = mal._normal_box(case, 20, rng)
        if box is None:
            continue
        assert mh.boxes.box_iou([box], case.native_all_boxes).max() == 0
        x0, y0 = box[:2]
        assert box[2] - x0 == box[3] - y0 == 20
    assert mal._normal_box(case, 10_000, rng) is None  # larger than the image
    assert case.spacing_mm == 0.6
    # a manifest without spacing (VinDr's CSVs) falls back to the DICOM header
    row = sub.iloc[:1].assign(pixel_spacing_mm=np.nan)
    assert mal.load_cases(row, size_hw=(96, 48))[sub.image_id.iloc[0]].spacing_mm == 0.6
    import dataclasses

    with pytest.raises(ValueError, match="no pixel spacing"):
        mal.lesion_patches(dataclasses.replace(case, spacing_mm=None), patch_mm=30.0, size_px=32)


def test_study_images_and_balanced_splits():
    df = pd.DataFrame(
        {
            "image_id": list("abcdefg"),
            "findings": [[{"malignant": True}], [], [], [], [{"malignant": False}], [], []],
            "split": ["train", "train", "train", "train", "train", "test", "test"],
        }
    )
    study = mal.study_images(df, "phantom")
    assert study.image_id.tolist() == list("abcdfg") and study.malignant.tolist() == [
        1,
        0,
        0,
        0,
        0,
        0,
    ]
    ids = mal.balanced_ids(study, "train", seed=0)
    assert ids[0] == "a" and len(ids) == 2 and ids[1] in {"b", "c", "d"}
    assert mal.balanced_ids(study, "train", seed=0) == ids
    with pytest.raises(ValueError, match="'test' split holds no malignant image"):
        mal.balanced_ids(study, "test")
    no_boxes = df.assign(findings=[[]] * len(df))
    with pytest.raises(ValueError, match="rsna: no image holds a malignant finding"):
        mal.study_images(no_boxes, "rsna")


def test_malignancy_label_prefers_the_cancer_flag_then_the_findings():
    import pandas as pd

    from mammo_helpers.preprocess.malignancy import malignancy_label

    benign = {"label": "mass", "malignant": False, "birads": None}
    malignant = {"label": "mass", "malignant": True, "birads": None}
    suspicious = {"label": "mass", "malignant": None, "birads": "4"}
    probably_benign = {"label": "mass", "malignant": None, "birads": "3"}
    df = pd.DataFrame({
        "cancer": pd.array([1, 0, None, None, None, None, 0], dtype="Int64"),
        "findings": [[], [malignant], [malignant], [benign], [suspicious], [probably_benign], []],
    })  # fmt: skip
    # the flag wins where given (even against a finding); findings decide where it is missing
    assert malignancy_label(df).tolist() == [1, 0, 1, 0, 1, 0, 0]
    assert str(malignancy_label(df).dtype) == "Int64"
    with pytest.raises(ValueError, match="inbreast: no cancer column"):
        malignancy_label(df.drop(columns="cancer"), "inbreast")


def _patch_set(cases, *, patch_mm, size_px, seed=0):
    """One field of view of :func:`mal.patch_sets`."""
    return mal.patch_sets(cases, patch_mms=[patch_mm], size_px=size_px, seed=seed)[patch_mm]


def test_patch_set_stacks_every_cases_patches_with_its_patient(cohort):
    df = cohort.manifest
    sub = df[mal.image_classes(df) == 1]
    cases = mal.load_cases(sub, size_hw=(96, 48))
    x, y, owners, missing = _patch_set(cases.values(), patch_mm=30.0, size_px=32, seed=3)
    one = [mal.lesion_patches(c, patch_mm=30.0, size_px=32, seed=3) for c in cases.values()]
    np.testing.assert_array_equal(x, np.stack([p for ps, _, _ in one for p in ps]))
    assert y.tolist() == [v for _, ys, _ in one for v in ys] and missing == sum(m for *_, m in one)
    assert owners.tolist() == [
        c.patient_id for c, (_, ys, _) in zip(cases.values(), one, strict=True) for _ in ys
    ]
    assert x.dtype == np.float32 and x.shape == (len(y), 3, 32, 32) and y.sum() >= len(cases)
    # the lazy loader gives the same patches, one image in memory at a time
    lazy = mal.iter_cases(sub, size_hw=(96, 48))
    assert inspect.isgenerator(lazy)
    np.testing.assert_array_equal(_patch_set(lazy, patch_mm=30.0, size_px=32, seed=3)[0], x)
    # normals that find no room are counted over every case
    huge = _patch_set(cases.values(), patch_mm=1e4, size_px=8)  # clipped to the image
    per_case = [mal.lesion_patches(c, patch_mm=1e4, size_px=8)[2] for c in cases.values()]
    assert sum(m > 0 for m in per_case) >= 2 and huge[3] == sum(per_case)
    with pytest.raises(ValueError, match="no malignant finding"):
        _patch_set([], patch_mm=30.0, size_px=32)
    # every field of view in one pass over a source that can be read once
    several = mal.patch_sets(
        mal.iter_cases(sub, size_hw=(96, 48)), patch_mms=[30.0, 12.0], size_px=32, seed=3
    )
    assert list(several) == [30.0, 12.0]
    np.testing.assert_array_equal(several[30.0][0], x)
    alone = _patch_set(cases.values(), patch_mm=12.0, size_px=32, seed=3)
    for got, want in zip(several[12.0], alone, strict=True):
        np.testing.assert_array_equal(got, want)
    assert not np.array_equal(several[12.0][0], x)
    with pytest.raises(ValueError, match="patch_mms is empty"):
        mal.patch_sets(cases.values(), patch_mms=[], size_px=32)


def test_a_source_without_pixel_spacing_takes_the_given_one(cohort, tmp_path):
    """CBIS-DDSM's DICOMs carry no PixelSpacing: its patches need ``spacing_mm``; a spacing
    the manifest or the DICOM gives wins over it."""
    from mammo_helpers.data.examples import example_dataset

    with pytest.warns(UserWarning, match="dropped"):  # the example's deliberate faults
        cbis = mh.data.load_source("cbis_ddsm", example_dataset("cbis_ddsm", tmp_path / "cbis"))
    malignant = mal.study_images(cbis, "cbis_ddsm").query("malignant == 1")
    assert len(malignant)
    bare = mal.load_cases(malignant, size_hw=(32, 16))
    assert {c.spacing_mm for c in bare.values()} == {None}
    with pytest.raises(ValueError, match="no pixel spacing"):
        _patch_set(bare.values(), patch_mm=2.0, size_px=16)
    given = mal.load_cases(malignant, size_hw=(32, 16), spacing_mm=0.05)
    assert {c.spacing_mm for c in given.values()} == {0.05}
    x, y, _, _ = _patch_set(given.values(), patch_mm=2.0, size_px=16)
    assert y.sum() == sum(len(c.native_boxes) for c in given.values()) and x.shape[1:] == (
        3,
        16,
        16,
    )
    phantom = cohort.manifest.iloc[:1]
    assert next(mal.iter_cases(phantom, size_hw=(96, 48), spacing_mm=0.05)).spacing_mm == 0.6


def test_a_case_loaded_without_its_native_image_is_the_same_case_without_patches(cohort):
    df = cohort.manifest
    row = next(df[mal.image_classes(df) == 1].itertuples())
    root = df.attrs["cohort_root"]
    full = mal.load_case(row, size_hw=(96, 48), cohort_root=root)
    light = mal.load_case(row, size_hw=(96, 48), cohort_root=root, native=False)
    assert light.native is None and light.native_breast is None
    for name in ("image", "unit", "breast", "lesion", "boxes", "native_boxes"):
        np.testing.assert_array_equal(getattr(light, name), getattr(full, name))
    with pytest.raises(ValueError, match="native=False"):
        mal.lesion_patches(light, patch_mm=30.0, size_px=32)
    lazy = mal.load_cases(df.iloc[:3], size_hw=(96, 48), native=False)
    assert all(c.native is None and c.native_breast is None for c in lazy.values())
