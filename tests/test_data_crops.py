"""mammo_helpers.data.crops: samples merge identical boxes only, training crops follow the
paper's scale / aspect law around the box centre (or a breast pixel), test crops are the box,
the dataset is repeatable per seed and epoch, weights and tables match hand counts."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import mammo_helpers as mh

cr = mh.data.crops

PHANTOM = cr.crop_labels(("mass", "calcification", "architectural_distortion", "asymmetry"))


def _finding(label, xmin, ymin, xmax, ymax):
    return {
        "label": label,
        "xmin": xmin,
        "ymin": ymin,
        "xmax": xmax,
        "ymax": ymax,
        "malignant": None,
    }


def _resize_ref(img, size):
    """Reference resize: antialiased bilinear with torch directly."""
    x = torch.from_numpy(np.ascontiguousarray(img, dtype=np.float32)).permute(2, 0, 1)[None]
    out = torch.nn.functional.interpolate(
        x, size=size, mode="bilinear", align_corners=False, antialias=True
    )
    return out[0].permute(1, 2, 0).numpy()


def _rng_roi(h=120, w=260, c=3, seed=0):
    return np.random.default_rng(seed).random((h, w, c)).astype(np.float32)


# --------------------------------------------------------------------------- labels, samples
def test_crop_labels_follow_the_vocabulary_order():
    assert PHANTOM == (
        "No Finding",
        "mass",
        "calcification",
        "asymmetry",
        "architectural_distortion",
    )
    assert cr.crop_labels() == ("No Finding",) + mh.vocab.FINDING_LABELS
    with pytest.raises(ValueError, match="'tumour'"):
        cr.crop_labels(["mass", "tumour"])


def test_identical_boxes_merge_into_one_multi_label_sample_and_others_do_not():
    findings = {
        "img": [
            _finding("calcification", 10, 20, 50, 40),
            _finding("mass", 10, 20, 50, 40),  # identical box: merged
            _finding("mass", 10, 20, 50, 40.5),  # near-identical: its own sample
            _finding("mass", 100, 5, 140, 30),  # same label, other box: its own sample
        ],
        "normal": [],
    }
    samples = cr.samples_from_rois({"img": _rng_roi(), "normal": (90, 70)}, findings, PHANTOM)
    assert [(s.image, s.box, s.labels) for s in samples] == [
        ("img", (10.0, 20.0, 50.0, 40.0), ("mass", "calcification")),
        ("img", (10.0, 20.0, 50.0, 40.5), ("mass",)),
        ("img", (100.0, 5.0, 140.0, 30.0), ("mass",)),
        ("normal", None, ("No Finding",)),
    ]
    assert samples[0].roi_hw == (120, 260) and samples[3].roi_hw == (90, 70)
    assert [s.is_normal for s in samples] == [False, False, False, True]
    # label vector in `labels` order, whatever the order of the findings
    np.testing.assert_array_equal(samples[0].target(PHANTOM), [0, 1, 1, 0, 0])
    np.testing.assert_array_equal(samples[3].target(PHANTOM), [1, 0, 0, 0, 0])
    assert cr.targets(samples, PHANTOM).shape == (4, 5)


def test_boxes_are_clipped_to_the_roi_and_outside_boxes_are_named():
    (s,) = cr.samples_from_rois({"a": (50, 80)}, {"a": [_finding("mass", -3, 10, 90, 20)]}, PHANTOM)
    assert s.box == (0.0, 10.0, 80.0, 20.0)  # x clipped to the width (80), not the height
    with pytest.raises(ValueError, match="'a'.*outside"):
        cr.samples_from_rois({"a": (50, 80)}, {"a": [_finding("mass", 85, 1, 90, 5)]}, PHANTOM)


@pytest.mark.parametrize(
    ("findings", "labels", "message"),
    [
        ({"im7": [_finding("lymph_node", 1, 1, 5, 5)]}, PHANTOM, r"'im7'.*'lymph_node'"),
        ({"im7": [_finding("No Finding", 1, 1, 5, 5)]}, PHANTOM, r"'im7'.*'No Finding'"),
        ({"im7": []}, ("mass", "No Finding"), "must start with 'No Finding'"),
        ({"im7": []}, ("No Finding", "mass", "mass"), "duplicates"),
        ({"im7": []}, ("No Finding", "tumour"), "'tumour'"),
        ({}, PHANTOM, r"missing \['im7'\]"),
    ],
)
def test_bad_labels_and_keys_are_named(findings, labels, message):
    with pytest.raises(ValueError, match=message):
        cr.samples_from_rois({"im7": (20, 30)}, findings, labels)


# --------------------------------------------------------------------------- training crops
def test_crop_box_law_covers_both_ends_of_the_area_and_aspect_ranges():
    rng = np.random.default_rng(0)
    box = (30.0, 40.0, 230.0, 90.0)  # 200 x 50: not square, so w/h swaps show
    out = np.array([cr.random_crop_box(box, rng) for _ in range(2000)])
    w, h = out[:, 2] - out[:, 0], out[:, 3] - out[:, 1]
    area, aspect = w * h / (200 * 50), w / h
    assert 0.05 - 1e-9 <= area.min() < 0.06 and 4.5 < area.max() <= 5.0 + 1e-9
    assert 0.33 - 1e-9 <= aspect.min() < 0.36 and 1.55 < aspect.max() <= 1.66 + 1e-9
    # log-uniform: half of the draws below the geometric middle of each range
    assert abs(np.mean(area < np.sqrt(0.05 * 5.0)) - 0.5) < 0.05
    assert abs(np.mean(aspect < np.sqrt(0.33 * 1.66)) - 0.5) < 0.05
    np.testing.assert_allclose((out[:, 0] + out[:, 2]) / 2, 130.0)
    np.testing.assert_allclose((out[:, 1] + out[:, 3]) / 2, 65.0)


def test_training_crops_are_centred_on_the_box_and_keep_the_law_at_whole_pixels():
    roi = _rng_roi(300, 500)  # rows != cols, box far from the diagonal
    (s,) = cr.samples_from_rois({"a": roi}, {"a": [_finding("mass", 380, 30, 460, 70)]}, PHANTOM)
    rng = np.random.default_rng(1)
    boxes = []
    for _ in range(300):
        crop, box = cr.draw_training_crop(roi, s, rng, size_px=16)
        assert crop.shape == (16, 16, 3) and crop.dtype == np.float32
        boxes.append(box)
    b = np.array(boxes)
    assert np.all(b == np.round(b))  # whole pixels
    assert np.abs((b[:, 0] + b[:, 2]) / 2 - 420).max() <= 0.5
    assert np.abs((b[:, 1] + b[:, 3]) / 2 - 50).max() <= 0.5
    w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    area = w * h / (80 * 40)
    assert 0.045 <= area.min() and area.max() <= 5.3
    assert 0.3 <= (w / h).min() and (w / h).max() <= 1.8
    # the pixels are the (zero-padded) crop box, resized
    crop, box = cr.draw_training_crop(roi, s, np.random.default_rng(5), size_px=16)
    np.testing.assert_allclose(crop, _resize_ref(cr.padded_crop(roi, box), (16, 16)), atol=1e-6)


def test_crops_leaving_the_roi_are_zero_padded():
    roi = np.ones((40, 70, 3), np.float32)
    (s,) = cr.samples_from_rois({"a": roi}, {"a": [_finding("mass", 0, 0, 10, 10)]}, PHANTOM)
    crop, box = cr.draw_training_crop(
        roi, s, np.random.default_rng(0), size_px=20, area_range=(4, 4), aspect_range=(1, 1)
    )
    assert box == (-5.0, -5.0, 15.0, 15.0)
    assert np.all(crop[:5] == 0) and np.all(crop[:, :5] == 0) and np.all(crop[5:, 5:] == 1)
    padded = cr.padded_crop(_rng_roi(40, 70), (60, -3, 75, 7))  # right and top edges
    assert padded.shape == (10, 15, 3)
    assert np.all(padded[:3] == 0) and np.all(padded[:, 10:] == 0)
    np.testing.assert_array_equal(padded[3:, :10], _rng_roi(40, 70)[0:7, 60:70])


def test_normal_crops_are_centred_in_the_breast_with_lesion_sized_boxes():
    rows, cols = 90, 240
    roi = np.full((rows, cols, 3), 0.5, np.float32)  # non-zero everywhere ...
    mask = np.zeros((rows, cols), bool)
    mask[60:85, 200:230] = True  # ... but the breast mask is a small corner
    (s,) = cr.samples_from_rois({"n": roi}, {"n": []}, PHANTOM)
    sizes = np.array([[40.0, 10.0]])
    rng = np.random.default_rng(0)
    centres = []
    for _ in range(300):
        _, box = cr.draw_training_crop(
            roi, s, rng, size_px=8, breast_mask=mask, reference_sizes=sizes, aspect_range=(4, 4)
        )
        centres.append(((box[0] + box[2]) / 2, (box[1] + box[3]) / 2))
        w, h = box[2] - box[0], box[3] - box[1]
        assert 0.05 * 400 * 0.8 <= w * h <= 5 * 400 * 1.2 and 3 <= w / h <= 5
    c = np.array(centres)
    # the centre is a breast pixel's centre, moved by at most 0.5 px by the rounding
    assert c[:, 0].min() >= 200 and c[:, 0].max() <= 230
    assert c[:, 1].min() >= 60 and c[:, 1].max() <= 85
    assert c[:, 0].max() - c[:, 0].min() > 20  # spread over the mask, not one pixel
    # without a mask: the ROI's non-zero pixels (x in the right part, a non-square ROI)
    roi2 = np.zeros((rows, cols, 3), np.float32)
    roi2[10:30, 150:200] = 1.0
    _, box = cr.draw_training_crop(roi2, s, rng, size_px=8, reference_sizes=sizes)
    assert 150 <= (box[0] + box[2]) / 2 <= 200 and 10 <= (box[1] + box[3]) / 2 <= 30
    with pytest.raises(ValueError, match="reference_sizes"):
        cr.draw_training_crop(roi, s, rng, size_px=8)
    with pytest.raises(ValueError, match="'n'.*no breast pixel"):
        cr.draw_training_crop(roi * 0, s, rng, size_px=8, reference_sizes=sizes)


# --------------------------------------------------------------------------- test crops
def test_box_crop_is_exactly_the_box_resized():
    roi = _rng_roi(150, 90)
    direct = _resize_ref(roi[40:60, 13:53], (24, 24))
    np.testing.assert_array_equal(cr.box_crop(roi, (13, 40, 53, 60), 24), direct)
    # a float box is rounded to the nearest whole pixels
    np.testing.assert_array_equal(cr.box_crop(roi, (12.6, 40.2, 52.7, 59.9), 24), direct)
    assert cr.box_crop(roi[:, :, 0], (13, 40, 53, 60), 24).shape == (24, 24, 1)
    with pytest.raises(ValueError, match="size_px"):
        cr.box_crop(roi, (13, 40, 53, 60), 0)


def test_downsample_x2_keeps_the_shape_and_loses_detail():
    crop = _rng_roi(32, 32)
    out = cr.downsample_x2(crop)
    assert out.shape == crop.shape and out.dtype == np.float32
    assert np.abs(out - crop).mean() > 0.05  # not the identity on a detailed crop
    np.testing.assert_allclose(out, _resize_ref(_resize_ref(crop, (16, 16)), (32, 32)), atol=1e-6)
    np.testing.assert_allclose(cr.downsample_x2(np.full((8, 8), 0.3)), 0.3, atol=1e-6)
    assert cr.downsample_x2(crop[:, :, 0]).shape == (32, 32)


def test_normal_test_boxes_are_lesion_sized_in_the_breast_and_seeded():
    mask = np.zeros((100, 160), bool)
    mask[20:80, 100:150] = True
    findings = {"l1": [_finding("mass", 0, 0, 30, 10)], "l2": [_finding("mass", 0, 0, 8, 16)]}
    findings |= {f"n{i}": [] for i in range(40)}
    rois = {k: (100, 160) for k in findings}
    samples = cr.samples_from_rois(rois, findings, PHANTOM)
    masks = {k: mask for k in findings}
    out = cr.normal_test_boxes(samples, masks, seed=3)
    assert out[:2] == samples[:2]
    boxes = np.array([s.box for s in out[2:]])
    sizes = set(
        map(tuple, np.stack([boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]], 1).tolist())
    )
    assert sizes == {(30.0, 10.0), (8.0, 16.0)}
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    assert cx.min() >= 100 and cx.max() <= 150 and cy.min() >= 20 and cy.max() <= 80
    assert out == cr.normal_test_boxes(samples, masks, seed=3)
    assert out != cr.normal_test_boxes(samples, masks, seed=4)
    # shifted inside the ROI when the breast pixel is near its edge
    edge = np.zeros((100, 160), bool)
    edge[0, 159] = True
    (moved,) = cr.normal_test_boxes(samples[2:3], {"n0": edge}, sizes=[[30, 10]])
    assert moved.box == (130.0, 0.0, 160.0, 10.0)
    with pytest.raises(ValueError, match="'n0'"):
        cr.normal_test_boxes(samples[2:3], {}, sizes=[[30, 10]])


# --------------------------------------------------------------------------- dataset
def _dataset(**kwargs):
    rois = {"a": _rng_roi(120, 260), "b": _rng_roi(80, 60, seed=1)}
    findings = {"a": [_finding("mass", 100, 30, 160, 60), _finding("asymmetry", 10, 10, 30, 50)]}
    findings["b"] = []
    samples = cr.samples_from_rois(rois, findings, PHANTOM)
    return cr.CropDataset(samples, rois, PHANTOM, size_px=16, **kwargs)


def test_dataset_is_repeatable_per_seed_epoch_and_index_and_redraws_each_epoch():
    ds = _dataset(seed=7)
    x, y = ds[0]
    assert x.shape == (3, 16, 16) and x.dtype == torch.float32
    torch.testing.assert_close(y, torch.tensor([0.0, 1.0, 0.0, 0.0, 0.0]))
    torch.testing.assert_close(ds[2][1], torch.tensor([1.0, 0.0, 0.0, 0.0, 0.0]))
    for i in range(len(ds)):
        assert torch.equal(ds[i][0], _dataset(seed=7)[i][0])
    assert not torch.equal(ds[0][0], _dataset(seed=8)[0][0])
    box0 = ds.crop(0)[1]
    ds.set_epoch(1)
    assert not torch.equal(ds[0][0], x) and ds.crop(0)[1] != box0
    ds.set_epoch(0)
    assert torch.equal(ds[0][0], x)
    # the crop before augmentation is centred on the box; augmentation changes the pixels
    crop, box = ds.crop(0)
    assert abs((box[0] + box[2]) / 2 - 130) <= 0.5 and abs((box[1] + box[3]) / 2 - 45) <= 0.5
    plain = _dataset(seed=7, augment=False)
    assert torch.equal(plain[0][0], torch.from_numpy(crop).permute(2, 0, 1))
    assert not torch.equal(plain[0][0], x)


def test_dataset_test_mode_and_transform():
    ds = _dataset(train=False)
    with pytest.raises(ValueError, match="'b'.*no test box"):
        ds[2]
    x, _ = ds[0]
    expected = cr.box_crop(ds.rois["a"], (100, 30, 160, 60), 16)
    assert torch.equal(x, torch.from_numpy(expected).permute(2, 0, 1))
    low = _dataset(train=False, transform=cr.downsample_x2)[0][0]
    assert torch.equal(low, torch.from_numpy(cr.downsample_x2(expected)).permute(2, 0, 1))


def test_augment_flips_rotates_and_jitters_with_its_rng():
    x = torch.from_numpy(_rng_roi(16, 16)).permute(2, 0, 1).contiguous()
    off = {"degrees": 0.0, "brightness": 0.0, "contrast": 0.0}
    assert torch.equal(cr.augment(x, np.random.default_rng(0), flip_p=0.0, **off), x)
    flipped = cr.augment(x, np.random.default_rng(0), flip_p=1.0, **off)
    assert torch.equal(flipped, x.flip(-1).flip(-2))
    rotated = cr.augment(x, np.random.default_rng(0), flip_p=0.0, degrees=30.0)
    assert not torch.equal(rotated, x)
    assert torch.equal(rotated, cr.augment(x, np.random.default_rng(0), flip_p=0.0, degrees=30.0))


# --------------------------------------------------------------------------- weights, tables
def _tiny():
    def s(image, *labels, box=(0.0, 0.0, 10.0, 10.0)):
        return cr.CropSample(image, (100, 200), None if labels == ("No Finding",) else box, labels)

    return [
        s("a", "mass"),
        s("b", "mass"),
        s("c", "calcification"),
        s("d", "mass", "calcification"),
        *[s(f"n{i}", "No Finding") for i in range(4)],
    ]


def test_sampling_weights_are_the_inverse_frequency_of_the_rarest_label():
    # counts: No Finding 4, mass 3, calcification 2
    w = cr.sampling_weights(_tiny(), PHANTOM)
    np.testing.assert_allclose(w, [1 / 3, 1 / 3, 1 / 2, 1 / 2, 1 / 4, 1 / 4, 1 / 4, 1 / 4])
    sampler = torch.utils.data.WeightedRandomSampler(w, num_samples=8)
    assert len(list(sampler)) == 8


def test_table1_counts_labels_by_split():
    table = cr.table1_counts({"train": _tiny(), "test": _tiny()[2:5]})
    assert list(table.index) == ["No Finding", "mass", "calcification"]
    assert table["train"].tolist() == [4, 3, 2] and table["test"].tolist() == [1, 1, 2]
    full = cr.table1_counts({"train": _tiny()}, PHANTOM)
    assert full["train"].tolist() == [4, 3, 2, 0, 0]


def test_crop_geometry_hand_case():
    sample = cr.CropSample("a", (100, 200), (20.0, 10.0, 60.0, 30.0), ("mass",))
    geo = cr.crop_geometry([sample])
    row = geo.iloc[0]
    assert list(geo.columns) == ["image", *cr.GEOMETRY_FEATURES]
    assert (row.width, row.height, row.area, row.aspect) == (40.0, 20.0, 800.0, 2.0)
    assert (row.x_centre, row.y_centre) == (40 / 200, 20 / 100)
    with pytest.raises(ValueError, match="'n0'"):
        cr.crop_geometry(_tiny()[4:5])


def test_roi_breast_mask_follows_the_pipeline_crop():
    yy, xx = np.mgrid[:200, :160]
    img = np.where((yy - 100) ** 2 / 80**2 + (xx - 30) ** 2 / 90**2 < 1, 3000, 50)
    img = (img + np.random.default_rng(0).integers(0, 40, img.shape)).astype(np.uint16)
    for laterality in (None, "R"):
        result = mh.preprocess.pipeline_correlax(img, laterality)
        mask = cr.roi_breast_mask(result)
        assert mask.shape == result.output.shape[:2] and 0.3 < mask.mean() < 0.99
        assert (mask != result.output.any(axis=-1)).mean() < 0.01
