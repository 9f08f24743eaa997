"""Tests for mammo_helpers.preprocess on small synthetic 'breasts' built here."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy import ndimage
from sklearn.preprocessing import minmax_scale

from mammo_helpers.preprocess import (
    CLIP_NORMALISATION,
    IMAGENET_NORMALISATION,
    PAPER_INPUT_SIZES,
    PipelineResult,
    breast_box,
    clahe,
    clahe_fusion,
    crop,
    featurewise_mean,
    flip_to_laterality,
    imagenet_normalise,
    infer_laterality,
    match_quantiles,
    otsu_breast_mask,
    pipeline_correlax,
    pipeline_density_clip,
    pipeline_domain_shift,
    pipeline_multitask,
    pipeline_xai_iou,
    reference_quantiles,
    remove_burned_in_text,
    resize,
    scale_to_unit,
    to_uint8,
    to_uint16,
    warp_like,
)

H, W = 240, 180
LESION_L = (40, 100, 60, 118)  # (x0, y0, x1, y1) of a bright square lesion in a left breast


def make_breast(side="L", *, label=True, lesion=False, seed=0, h=H, w=W):
    """Half-ellipse breast (chest wall at column 0 for 'L') with texture on a dark noisy
    background, optional bright text label in the top corner away from the chest wall and an
    optional bright square lesion. Returns (img, ellipse_mask, label_mask, lesion_box)."""
    rng = np.random.default_rng(seed)
    rr, cc = np.mgrid[0:h, 0:w]
    a, b, cy = 0.7 * w, 0.42 * h, h / 2
    ellipse = ((cc + 0.5) / a) ** 2 + ((rr + 0.5 - cy) / b) ** 2 <= 1.0
    texture = ndimage.gaussian_filter(rng.normal(size=(h, w)), 3)
    texture = 0.06 * texture / texture.std()
    breast = 0.38 + 0.15 * (1 - cc / a) + texture
    img = 0.03 + 0.01 * rng.normal(size=(h, w))
    img[ellipse] = breast[ellipse]
    label_mask = np.zeros((h, w), bool)
    if label:
        label_mask[0:12, w - 45 : w - 10] = True  # text label touching the border
        label_mask[200:204, w - 22 : w - 18] = True  # marker floating in the background
        img[label_mask] = 0.9
    box = None
    if lesion:
        x0, y0, x1, y1 = LESION_L
        img[y0:y1, x0:x1] = 1.0
        box = LESION_L
    if side == "R":
        img, ellipse, label_mask = img[:, ::-1], ellipse[:, ::-1], label_mask[:, ::-1]
        if box is not None:
            box = (w - box[2], box[1], w - box[0], box[3])
    return np.ascontiguousarray(np.clip(img, 0.0, 1.0)), ellipse.copy(), label_mask.copy(), box


def bbox_of(mask):
    """(x0, y0, x1, y1) end-exclusive bounding box of a boolean mask."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return np.array([cols[0], rows[0], cols[-1] + 1, rows[-1] + 1], dtype=float)


def iou(a, b):
    return (a & b).sum() / (a | b).sum()


# ----------------------------------------------------------------------------- intensity
def test_scale_to_unit_range_and_constant():
    img, *_ = make_breast()
    out = scale_to_unit((img * 4000).astype(np.uint16))
    assert out.dtype == np.float32 and out.min() == 0.0 and out.max() == 1.0
    const = scale_to_unit(np.full((5, 7), 123, np.uint16))
    assert const.dtype == np.float32 and not const.any()


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.floats(-1e4, 1e4, allow_nan=False), min_size=6, max_size=6),
    st.integers(1, 4),
)
def test_scale_to_unit_matches_sklearn_minmax(vals, reps):
    x = np.tile(np.asarray(vals), (reps, 1))
    assume(np.ptp(x) > 1e-3)
    ref = minmax_scale(x.ravel()).reshape(x.shape)
    np.testing.assert_allclose(scale_to_unit(x), ref, atol=1e-6)


def test_scale_to_unit_percentiles_inside_mask():
    img = np.full((10, 11), 1000.0)
    mask = np.zeros_like(img, bool)
    mask[0:10, 0:10] = True
    img[0:10, 0:10] = np.linspace(0, 100, 100).reshape(10, 10)  # 0..100 inside, 1000 outside
    out = scale_to_unit(img, mask=mask, low_pct=10, high_pct=90)
    # inside the mask the 10th / 90th percentiles are 10 and 90
    assert out[0, 0] == 0.0  # 0 -> clipped at lo
    assert out[:, 10].min() == 1.0  # 1000 outside the mask -> clipped at 1
    i = np.argmin(np.abs(img[mask] - 50))
    np.testing.assert_allclose(out[mask][i], (img[mask][i] - 10) / 80, rtol=1e-5)


def test_to_uint_conversions():
    x = np.array([[-0.1, 0.0, 0.5, 1.0, 1.2]])
    np.testing.assert_array_equal(to_uint8(x), [[0, 0, 128, 255, 255]])
    np.testing.assert_array_equal(to_uint16(x), [[0, 0, 32768, 65535, 65535]])
    assert to_uint8(x).dtype == np.uint8 and to_uint16(x).dtype == np.uint16


# ----------------------------------------------------------------------------- CLAHE
@pytest.mark.parametrize(("clip", "grid"), [(1.0, (8, 8)), (2.0, (8, 8)), (2.0, (4, 6))])
def test_clahe_matches_opencv(clip, grid):
    img01 = scale_to_unit(make_breast()[0])
    u8 = np.rint(img01 * 255).astype(np.uint8)
    ref = cv2.createCLAHE(clipLimit=clip, tileGridSize=(grid[1], grid[0])).apply(u8)
    out = clahe(img01, clip, grid)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(np.rint(out * 255).astype(np.uint8), ref)


def test_clahe_fusion_channels_and_background():
    img01 = scale_to_unit(make_breast()[0])
    fused = clahe_fusion(img01)
    mask = otsu_breast_mask(img01)
    assert fused.shape == (H, W, 3) and fused.dtype == np.float32
    np.testing.assert_array_equal(fused[..., 0][mask], img01[mask])
    assert not fused[~mask].any()  # background exactly 0 in every channel (label included)
    patch = (slice(100, 140), slice(15, 55))  # textured area inside the breast
    stds = [fused[patch + (c,)].std() for c in range(3)]
    assert stds[1] > 1.2 * stds[0] and stds[2] > 1.2 * stds[0]
    assert stds[2] > stds[1]
    assert not np.array_equal(fused[..., 1], fused[..., 2])


def test_clahe_fusion_given_background():
    img01 = scale_to_unit(make_breast(label=False)[0])
    bg = np.zeros(img01.shape, bool)
    bg[:, :10] = True
    fused = clahe_fusion(img01, background=bg)
    assert not fused[:, :10].any()
    np.testing.assert_array_equal(fused[:, 10:, 0], img01[:, 10:])
    with pytest.raises(ValueError, match="background"):
        clahe_fusion(img01, background=bg[:5])


# ----------------------------------------------------------------------------- breast mask
@pytest.mark.parametrize("side", ["L", "R"])
def test_otsu_mask_matches_ellipse_and_drops_label(side):
    img, ellipse, label, _ = make_breast(side)
    for arr in (img, (np.clip(img, 0, 1) * 65535).astype(np.uint16)):
        mask = otsu_breast_mask(arr)
        assert mask.dtype == bool
        assert iou(mask, ellipse) > 0.95
        assert not (mask & label).any()
    both = otsu_breast_mask(img, keep="all")
    assert both[label].all()


def test_otsu_mask_fills_holes():
    img, ellipse, *_ = make_breast(label=False)
    img[110:120, 30:40] = 0.0  # dark fat lobule inside the breast
    assert otsu_breast_mask(img)[110:120, 30:40].all()


@pytest.mark.parametrize("side", ["L", "R"])
def test_breast_box_is_ellipse_bbox(side):
    img, ellipse, *_ = make_breast(side)
    box = breast_box(img)
    assert all(isinstance(v, int) for v in box)
    np.testing.assert_allclose(box, bbox_of(ellipse), atol=2)
    x0, y0, x1, y1 = breast_box(img, margin=5)
    ref = bbox_of(ellipse) + np.array([-5, -5, 5, 5])
    ref = np.clip(ref, 0, [W, H, W, H])
    np.testing.assert_allclose((x0, y0, x1, y1), ref, atol=2)


def test_remove_burned_in_text():
    img, ellipse, label, _ = make_breast()
    out = remove_burned_in_text(img)
    assert out.dtype == img.dtype and not out[label].any()
    inner = ndimage.binary_erosion(ellipse, iterations=2)
    np.testing.assert_array_equal(out[inner], img[inner])
    u16 = (np.clip(img, 0, 1) * 65535).astype(np.uint16)
    assert remove_burned_in_text(u16).dtype == np.uint16


# ----------------------------------------------------------------------------- geometry
def test_crop_hand_computed():
    img = np.arange(60 * 70).reshape(60, 70)
    c = crop(img, (5, 5, 50, 40))
    assert c.shape == (35, 45) and c[0, 0] == img[5, 5] and c[-1, -1] == img[39, 49]
    with pytest.raises(ValueError, match="outside the image"):
        crop(img, (0, 0, 71, 10))


def test_flip_to_laterality_identity_and_errors():
    img, *_ = make_breast()
    same, was = flip_to_laterality(img, "L")
    assert not was and same is img
    flipped, was = flip_to_laterality(img, "L", target="R")
    assert was and np.array_equal(flipped[:, ::-1], img)
    with pytest.raises(ValueError, match="laterality"):
        flip_to_laterality(img, "left")


@pytest.mark.parametrize("side", ["L", "R"])
def test_infer_laterality(side):
    img, *_ = make_breast(side, seed=3)
    assert infer_laterality(img) == side
    assert infer_laterality(flip_to_laterality(img, side)[0]) == "L"


def test_resize_is_height_width_and_keeps_dtype():
    x = np.zeros((10, 20), np.uint16)
    assert resize(x, (5, 7)).shape == (5, 7) and resize(x, (5, 7)).dtype == np.uint16
    assert resize(np.zeros((10, 20, 1), np.float32), (6, 4)).shape == (6, 4, 1)
    assert resize(np.zeros((10, 20), bool), (6, 4), interpolation="nearest").dtype == bool
    assert resize(np.zeros((10, 20), np.int64), (3, 4)).dtype == np.int64
    with pytest.raises(ValueError, match="interpolation"):
        resize(x, (5, 7), interpolation="cubic-ish")


# ----------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("func", "arg", "pattern"),
    [
        (scale_to_unit, np.zeros((4, 5, 3)), r"\(rows, cols\).*\(4, 5, 3\)"),
        (scale_to_unit, np.zeros(7), r"shape \(7,\)"),
        (scale_to_unit, np.zeros((0, 5)), r"empty.*\(0, 5\)"),
        (scale_to_unit, np.array([[0.0, np.nan]]), "non-finite"),
        (otsu_breast_mask, np.zeros((64, 48)), r"no breast found.*\(64, 48\)"),
        (breast_box, np.zeros((64, 48)), r"no breast found.*\(64, 48\)"),
        (pipeline_correlax, np.zeros((64, 48)), r"\(64, 48\) is blank.*every pixel is 0"),
        (pipeline_domain_shift, np.zeros((2, 3, 4)), r"\(2, 3, 4\)"),
    ],
)
def test_clear_errors(func, arg, pattern):
    with pytest.raises(ValueError, match=pattern):
        func(arg)


def test_tiny_speck_is_not_a_breast():
    img = np.zeros((100, 100))
    img[3:5, 3:5] = 1.0
    with pytest.raises(ValueError, match="no breast found"):
        otsu_breast_mask(img)


# ----------------------------------------------------------------------------- pipelines
def lesion_box_in(img01, threshold=0.8):
    """Bounding box of the bright lesion found in a [0, 1] output image."""
    return bbox_of(img01 >= threshold)


@pytest.mark.parametrize(("side", "laterality"), [("L", None), ("R", None), ("R", "R")])
def test_pipeline_correlax(side, laterality):
    img, ellipse, _, lesion = make_breast(side, lesion=True)
    res = pipeline_correlax((img * 4000).astype(np.uint16), laterality)
    assert isinstance(res, PipelineResult)
    expected_steps = ["unit", "breast_mask", "clahe_fused", "cropped"]
    assert list(res.steps) == expected_steps + (["flipped"] if laterality else [])
    assert res.output is list(res.steps.values())[-1]
    x0, y0, x1, y1 = res.info["breast_box"]
    np.testing.assert_allclose(res.info["breast_box"], bbox_of(ellipse), atol=2)
    assert 0.0 <= res["unit"].min() and res["unit"].max() == 1.0
    assert res["clahe_fused"].shape == (H, W, 3)
    assert res["cropped"].shape == (y1 - y0, x1 - x0, 3)
    assert res.info["window_hw"] == PAPER_INPUT_SIZES["02_correlax"] == (256, 256)
    assert res.info["flipped"] == (laterality == "R")
    boxes, kept = res.box_transform([lesion])
    np.testing.assert_array_equal(kept, [0])
    np.testing.assert_allclose(boxes[0], lesion_box_in(res.output[..., 0]), atol=2)
    np.testing.assert_allclose(res.box_transform.inverse(boxes)[0], lesion, atol=1e-9)
    with pytest.raises(KeyError, match="no step 'scaled'; steps: unit, breast_mask"):
        res["scaled"]


@pytest.mark.parametrize(("side", "laterality"), [("L", "L"), ("R", "R"), ("R", None)])
def test_pipeline_xai_iou(side, laterality):
    img, _, _, lesion = make_breast(side, lesion=True)
    res = pipeline_xai_iou(img, laterality)
    assert res.info["laterality"] == side and res.info["flipped"] == (side == "R")
    assert res["resized"].shape == PAPER_INPUT_SIZES["03_xai_iou"]["whole"] == (1024, 512)
    assert res.output.shape == (1024, 512, 3) and res.output.dtype == np.float32
    assert res.output is res["normalised"]
    mean = np.asarray(IMAGENET_NORMALISATION["mean"])
    std = np.asarray(IMAGENET_NORMALISATION["std"])
    np.testing.assert_allclose(
        res.output * std + mean, res["resized"][..., None].repeat(3, 2), atol=1e-5
    )
    assert infer_laterality(res["flipped"]) == "L"
    boxes, kept = res.box_transform([lesion, [0, 0, 1, 1]])
    np.testing.assert_array_equal(kept, [0])  # the corner box lies outside the breast ROI
    np.testing.assert_allclose(boxes[0], lesion_box_in(res["resized"]), atol=2)


@pytest.mark.parametrize("side", ["L", "R"])
def test_pipeline_multitask_cleans_background_keeps_place_and_resizes_bicubically(side):
    img, _, _, lesion = make_breast(side, lesion=True)
    res = pipeline_multitask(img, size_hw=(96, 80))
    assert list(res.steps) == ["unit", "breast_mask", "cleaned", "resized", "breast"]
    assert res.output is res["resized"] and res.output.shape == (96, 80)
    assert res["breast"].shape == (96, 80) and res["breast"].dtype == bool
    unit, mask = res["unit"], res["breast_mask"]
    assert np.all(res["cleaned"][~mask] == 0) and np.array_equal(res["cleaned"][mask], unit[mask])
    expected = np.clip(cv2.resize(res["cleaned"], (80, 96), interpolation=cv2.INTER_CUBIC), 0, 1)
    np.testing.assert_allclose(res.output, expected, atol=1e-6)
    assert 0.0 <= res.output.min() and res.output.max() <= 1.0
    assert infer_laterality(res.output) == side  # not flipped: each breast stays where it lies
    boxes, kept = res.box_transform([lesion])
    np.testing.assert_array_equal(kept, [0])
    np.testing.assert_allclose(boxes[0], lesion_box_in(res.output), atol=2)
    assert PAPER_INPUT_SIZES["04_multitask_fusion"]["findings"] == (1152, 896)
    assert pipeline_multitask(img).output.shape == (1152, 896)


def test_pipeline_domain_shift_and_featurewise_mean():
    img, _, _, lesion = make_breast("R", lesion=True, label=False)
    res = pipeline_domain_shift(img)
    assert list(res.steps) == ["unit", "resized", "scaled_255", "rgb", "centred"]
    assert res["scaled_255"].shape == PAPER_INPUT_SIZES["05_domain_shift"] == (1152, 896)
    assert res.output.shape == (1152, 896, 3)
    assert 0.0 <= res["scaled_255"].min() and res["scaled_255"].max() == pytest.approx(255.0)
    assert 0.0 <= res["unit"].min() and res["unit"].max() == 1.0
    np.testing.assert_allclose(res.info["featurewise_mean"], res["scaled_255"].mean(), rtol=1e-5)
    boxes, _ = res.box_transform([lesion])
    np.testing.assert_allclose(boxes[0], lesion_box_in(res["scaled_255"] / 255.0), atol=2)
    res2 = pipeline_domain_shift(img, featurewise_mean=44.33, size_hw=(96, 80))
    np.testing.assert_allclose(res2.output + 44.33, res2["rgb"], atol=1e-4)
    assert res2.output.shape == (96, 80, 3)
    assert featurewise_mean([np.full((2, 2), 10.0), np.full((1, 2), 40.0)]) == 20.0
    assert featurewise_mean(x for x in [np.ones((3, 3))]) == 1.0
    with pytest.raises(ValueError, match="at least one"):
        featurewise_mean([])


def test_pipeline_density_clip_removes_text_crops_and_normalises():
    img, ellipse, label, lesion = make_breast("R", lesion=True, label=True)
    assert img[label].min() > 0  # the burned-in label is bright in the input
    res = pipeline_density_clip(img, size=64)
    assert list(res.steps) == [
        "unit",
        "breast_mask",
        "text_removed",
        "cropped",
        "resized",
        "normalised",
    ]
    assert (res["text_removed"][label] == 0).all()
    inside = scale_to_unit(res["unit"], mask=res["breast_mask"])
    np.testing.assert_array_equal(res["text_removed"][ellipse], inside[ellipse])
    assert res["text_removed"].max() == 1.0  # the breast's own range, whatever the label
    assert res.info["breast_box"] == breast_box(img)
    assert res.output.shape == (3, 64, 64) and res.output.dtype == np.float32
    mean = np.asarray(CLIP_NORMALISATION["mean"])[:, None, None]
    std = np.asarray(CLIP_NORMALISATION["std"])[:, None, None]
    np.testing.assert_allclose(
        res.output * std + mean, np.repeat(res["resized"][None], 3, 0), atol=1e-5
    )
    boxes, _ = res.box_transform([lesion])
    np.testing.assert_allclose(boxes[0], lesion_box_in(res["resized"]), atol=2)
    assert pipeline_density_clip(img).output.shape == (3, *PAPER_INPUT_SIZES["01_density_clip"])


def test_pipeline_density_clip_is_blind_to_a_label_brighter_than_the_breast():
    img, _, _, _ = make_breast("L", label=False)
    _, _, label, _ = make_breast("L", label=True)
    labelled = img.copy()
    labelled[label] = img.max() * 3  # a label far brighter than any tissue
    assert not np.array_equal(img, labelled)
    plain, marked = pipeline_density_clip(img, size=64), pipeline_density_clip(labelled, size=64)
    np.testing.assert_allclose(marked.output, plain.output, atol=1e-5)


@pytest.mark.parametrize(
    "pipeline",
    [
        pipeline_correlax,
        lambda im: pipeline_xai_iou(im, "L"),
        pipeline_domain_shift,
        pipeline_density_clip,
    ],
    ids=["correlax", "xai_iou", "domain_shift", "density_clip"],
)
@pytest.mark.parametrize(
    ("image", "pattern"),
    [
        (np.zeros((300, 200), np.uint16), r"blank.*every pixel is 0"),
        (np.full((300, 200), 7.0), r"blank.*every pixel is 7"),
        (np.ones((1, 1)), r"\(1, 1\) is too small to be a mammogram"),
        (np.eye(5), r"\(5, 5\) is too small"),
    ],
)
def test_pipelines_refuse_blank_or_tiny_images(pipeline, image, pattern):
    """A blank or 1x1 input used to come out as a 1152x896 image of zeros."""
    with pytest.raises(ValueError, match=pattern):
        pipeline(image)


@pytest.mark.parametrize(
    ("call", "pattern"),
    [
        (lambda im: clahe(im, float("nan")), "clip_limit must be a finite number > 0, got nan"),
        (lambda im: clahe(im, float("inf")), "clip_limit must be a finite number > 0"),
        (lambda im: clahe(im, 0.0), "clip_limit must be a finite number > 0"),
        (lambda im: pipeline_domain_shift(im, float("nan")), "featurewise_mean must be finite"),
        (lambda im: pipeline_domain_shift(im, "44"), "featurewise_mean must be a number"),
        (lambda im: scale_to_unit(im, low_pct=float("nan")), "low_pct"),
        (lambda im: breast_box(im, margin=-1), "margin must be an integer >= 0"),
        (lambda im: breast_box(im, margin=2.5), "margin must be an integer >= 0"),
    ],
)
def test_non_finite_and_out_of_range_settings_are_named(call, pattern):
    img = scale_to_unit(make_breast()[0])
    with pytest.raises(ValueError, match=pattern):
        call(img)


def test_clahe_16_bit_matches_opencv():
    img01 = scale_to_unit(make_breast()[0])
    u16 = np.rint(img01 * 65535).astype(np.uint16)
    ref = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8)).apply(u16)
    out = clahe(img01, 2.0, bits=16)
    np.testing.assert_array_equal(np.rint(out.astype(np.float64) * 65535).astype(np.uint16), ref)
    with pytest.raises(ValueError, match="bits"):
        clahe(img01, 2.0, bits=12)


@pytest.mark.parametrize("side", ["L", "R"])
def test_warp_like_moves_a_mask_where_the_box_transform_moves_its_box(side):
    img, _, _, lesion = make_breast(side, lesion=True)
    res = pipeline_xai_iou(img, side, size_hw=(96, 48))
    mask = np.zeros(img.shape, bool)
    x0, y0, x1, y1 = lesion
    mask[y0:y1, x0:x1] = True
    warped = warp_like(mask, res.box_transform)
    assert warped.dtype == bool and warped.shape == (96, 48)
    box = res.box_transform([lesion])[0][0]
    rows, cols = np.nonzero(warped)
    # the mask's box and the transformed box agree to a resized pixel
    np.testing.assert_allclose(
        [cols.min(), rows.min(), cols.max() + 1, rows.max() + 1], box, atol=1
    )
    # the image itself warps to the pipeline's resized step
    np.testing.assert_allclose(warp_like(res["unit"], res.box_transform), res["resized"], atol=1e-6)
    with pytest.raises(ValueError, match="does not match the transform's input"):
        warp_like(mask[:-1], res.box_transform)


def test_imagenet_normalise_gives_three_identical_normalised_channels():
    grey = np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 4)
    out = imagenet_normalise(grey)
    mean, std = (
        np.asarray(IMAGENET_NORMALISATION["mean"]),
        np.asarray(IMAGENET_NORMALISATION["std"]),
    )
    assert out.shape == (3, 4, 3) and out.dtype == np.float32
    for c in range(3):
        np.testing.assert_allclose(out[..., c], (grey - mean[c]) / std[c], rtol=1e-6)
    with pytest.raises(ValueError, match="2-D grey image"):
        imagenet_normalise(np.zeros((3, 4, 3)))


def test_match_quantiles_equals_skimage_on_a_full_mask_and_ignores_the_background():
    from skimage.exposure import match_histograms

    rng = np.random.default_rng(0)
    img = rng.gamma(2.0, 1.0, (40, 30))
    ref = rng.normal(5.0, 2.0, (50, 40))
    full = np.ones(img.shape, bool)
    q = reference_quantiles([ref], [np.ones(ref.shape, bool)], n=4001)
    ours = match_quantiles(img, full, q)
    theirs = match_histograms(img, ref)
    # the same map up to the tails, where the two quantile conventions differ (mid-ranks here)
    assert np.median(np.abs(ours - theirs)) < 0.002 * ref.std()
    assert np.quantile(np.abs(ours - theirs), 0.99) < 0.02 * ref.std()
    assert np.abs(ours - theirs).max() < 0.3 * ref.std()
    # order is kept and the matched pixels follow the reference distribution
    assert (np.argsort(ours, axis=None) == np.argsort(img, axis=None)).mean() > 0.99
    assert ours.mean() == pytest.approx(ref.mean(), abs=0.1)
    # pixels outside the mask change nothing inside it
    mask = np.zeros(img.shape, bool)
    mask[5:35, 5:25] = True
    noisy = img.copy()
    noisy[~mask] = 1e6
    a, b = match_quantiles(img, mask, q), match_quantiles(noisy, mask, q)
    np.testing.assert_array_equal(a[mask], b[mask])
    assert (a[~mask] == q[0]).all()


def test_reference_quantiles_pool_the_masked_pixels_and_bad_input_is_named():
    imgs = [np.full((4, 4), 1.0), np.full((4, 4), 3.0)]
    masks = [np.ones((4, 4), bool), np.zeros((4, 4), bool)]
    masks[1][:2, :2] = True  # 16 ones and 4 threes
    q = reference_quantiles(imgs, masks, n=5)
    np.testing.assert_allclose(q, np.quantile([1.0] * 16 + [3.0] * 4, np.linspace(0, 1, 5)))
    with pytest.raises(ValueError, match="masks hold no pixel"):
        reference_quantiles(imgs, [np.zeros((4, 4), bool)] * 2)
    with pytest.raises(ValueError, match=r"masks\[0\] has shape"):
        reference_quantiles(imgs, [np.ones((3, 3), bool)] * 2)
    with pytest.raises(ValueError, match="non-decreasing"):
        match_quantiles(imgs[0], masks[0], [2.0, 1.0])
    with pytest.raises(ValueError, match="mask holds no pixel"):
        match_quantiles(imgs[0], np.zeros((4, 4), bool), q)
