"""mammo_helpers.xai.localisation: the Pointing Game on hand cases (inclusive borders, the
tolerance to the pixel, >= against >, several boxes as one decision, a non-square image
where x and y cannot be swapped), Table 4 of CorRELAX rebuilt from its counts, Wilson
intervals against scipy, the random pointer against enumeration and a Monte-Carlo draw,
the pixel AUC against scikit-learn, and the pixel metrics of chapter 03 (pointing fraction,
relevance mass, rank accuracy with ties against brute force, chance levels, control
maps)."""

import json
import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy import ndimage
from scipy.stats import binomtest
from sklearn.metrics import roc_auc_score

import mammo_helpers as mh

loc = mh.xai.localisation


def _peak(hw, row, col, value=1.0):
    """A map of zeros with ``value`` at (row, col): its argmax."""
    m = np.zeros(hw)
    m[row, col] = value
    return m


# ----------------------------------------------------------------- pointing_hit
@pytest.mark.parametrize(("col", "hit"), [(4, True), (5, False), (2, True), (1, False)])
def test_pixel_centre_on_the_border_counts_inside(col, hit):
    # box columns [2, 4.5]: pixel 4 has its centre 4.5 on the border, pixel 1 centre 1.5 < 2
    box = (2.0, 3.0, 4.5, 6.0)
    assert loc.pointing_hit(_peak((10, 10), 4, col), [box], tolerance_px=0) is hit


def test_tolerance_is_exact_to_the_pixel():
    """The paper's 48 px around box x 100..120, y 100..130 in a 300 x 300 image: pixel
    columns 52..167 and rows 52..177 are inside, one more on either side is not."""
    box, t = [(100, 100, 120, 130)], loc.PAPER_TOLERANCE_PX
    for (row, col), hit in {
        (110, 167): True,
        (110, 168): False,
        (110, 52): True,
        (110, 51): False,
        (177, 110): True,
        (178, 110): False,
        (52, 110): True,
        (51, 110): False,
    }.items():
        assert loc.pointing_hit(_peak((300, 300), row, col), box, tolerance_px=t) is hit


def test_grown_integer_box_is_the_slice_and_clipped():
    rng = np.random.default_rng(0)
    for _ in range(50):
        x0, y0 = rng.integers(0, 30, 2)
        x1, y1 = x0 + rng.integers(1, 10), y0 + rng.integers(1, 10)
        t = int(rng.integers(0, 8))
        expected = np.zeros((33, 41), bool)
        expected[max(y0 - t, 0) : y1 + t, max(x0 - t, 0) : x1 + t] = True
        got = loc.box_mask([(x0, y0, x1, y1)], (33, 41), tolerance_px=t)
        np.testing.assert_array_equal(got, expected)


def test_value_rule_ge_against_gt():
    box, hw = [(0, 0, 5, 5)], (8, 8)
    at_25 = _peak(hw, 2, 2, 0.25)
    assert loc.pointing_hit(at_25, box, tolerance_px=0, min_value=0.25)
    assert not loc.pointing_hit(at_25, box, tolerance_px=0, above=0.25)
    assert not loc.pointing_hit(_peak(hw, 2, 2, 0.2499), box, tolerance_px=0, min_value=0.25)
    corr = loc.CORR_HIT
    assert not loc.pointing_hit(_peak(hw, 2, 2, corr), box, tolerance_px=0, above=corr)
    assert loc.pointing_hit(_peak(hw, 2, 2, corr + 1e-9), box, tolerance_px=0, above=corr)
    # a strong value outside the box is still a miss; no rule: location only
    assert not loc.pointing_hit(_peak(hw, 7, 7, 0.9), box, tolerance_px=0, min_value=0.5)
    assert loc.pointing_hit(_peak(hw, 2, 2) - 5, box, tolerance_px=0)
    with pytest.raises(ValueError, match="not both"):
        loc.pointing_hit(at_25, box, tolerance_px=0, min_value=0.25, above=0.05)


def test_any_box_of_the_label_is_one_decision():
    boxes = [(0, 0, 2, 2), (6, 6, 9, 9)]
    assert loc.pointing_hit(_peak((10, 10), 7, 7), boxes, tolerance_px=0) is True
    assert loc.pointing_hit(_peak((10, 10), 4, 4), boxes, tolerance_px=0) is False
    # overlapping grown boxes: one hit, not two
    twice = [(3, 3, 5, 5), (4, 4, 6, 6)]
    assert loc.pointing_hit(_peak((10, 10), 4, 4), twice, tolerance_px=1) is True
    records = [{"image": "a", "label": "mass", "hit": True}] * 2
    with pytest.raises(ValueError, match=r"image 'a' has 2 records for label 'mass'"):
        loc.pointing_game(records, labels=["mass"])


def test_non_square_image_x_is_the_column():
    """37 rows x 90 columns; the box spans columns 20..30 and rows 5..10."""
    hw, box = (37, 90), [(20, 5, 30, 10)]
    assert loc.pointing_hit(_peak(hw, 7, 25), box, tolerance_px=0)
    assert not loc.pointing_hit(_peak(hw, 25, 7), box, tolerance_px=0)  # swapped x/y
    mask = loc.box_mask(box, hw, tolerance_px=2)
    assert mask.shape == hw and mask.sum() == 14 * 9
    assert mask[3:12, 18:32].all()
    # a box to the right of row 37 is fine (x up to 90); below row 37 is not
    assert loc.pointing_hit(_peak(hw, 30, 70), [(60, 25, 80, 36)], tolerance_px=0)
    with pytest.raises(ValueError, match=r"outside the 37 x 90 image \(x is the column"):
        loc.pointing_hit(_peak(hw, 0, 0), [(5, 60, 10, 80)], tolerance_px=48)


def test_ties_take_the_first_pixel_in_row_major_order():
    m = np.zeros((6, 6))
    m[0, 5] = m[3, 1] = 1.0  # row 0 comes first
    assert loc.pointing_hit(m, [(5, 0, 6, 1)], tolerance_px=0)
    assert not loc.pointing_hit(m, [(1, 3, 2, 4)], tolerance_px=0)
    flat = np.full((6, 6), 0.3)  # constant map: pixel (0, 0)
    assert loc.pointing_hit(flat, [(0, 0, 1, 1)], tolerance_px=0)


@pytest.mark.parametrize(
    ("map2d", "boxes", "kw", "match"),
    [
        (np.array([[0, np.nan]]), [(0, 0, 1, 1)], {}, "mass map of image 7 holds 1 non-finite"),
        (np.zeros(5), [(0, 0, 1, 1)], {}, "mass map of image 7 must be a non-empty 2-D"),
        (np.zeros((4, 4)), [], {}, "needs at least one box"),
        (np.zeros((4, 4)), [(3, 0, 1, 1)], {}, "xmin <= xmax"),
        (np.zeros((4, 4)), [(0, 0, 1, 1)], {"tolerance_px": -1}, "tolerance_px must be"),
        (np.zeros((4, 4)), [(0, 0, 1, 1)], {"min_value": math.nan}, "min_value must be"),
    ],
)
def test_pointing_hit_refuses_bad_input(map2d, boxes, kw, match):
    kw = {"tolerance_px": 0, **kw}
    with pytest.raises(ValueError, match=match):
        loc.pointing_hit(map2d, boxes, name="mass map of image 7", **kw)


def test_check_map_names_the_map():
    name = "mass prediction map of image X"
    assert loc.check_map(np.ones((3, 4), np.float32), (3, 4), name).dtype == np.float64
    with pytest.raises(ValueError, match=rf"{name} has shape \(4, 3\), its ROI is \(3, 4\)"):
        loc.check_map(np.ones((4, 3)), (3, 4), name)
    with pytest.raises(ValueError, match=f"{name} holds 2 non-finite"):
        loc.check_map(np.array([[1, np.inf], [-np.inf, 0]]), (2, 2), name)


# ---------------------------------------------------------------- Table 4 of 02
LABELS = [
    "mass",
    "calcification",
    "asymmetry",
    "architectural distortion",
    "lymph node",
    "skin thickening",
    "retraction",
]
SUPPORT = [219, 105, 78, 24, 10, 12, 8]
HITS = {
    "pred25": [114, 81, 21, 0, 4, 7, 0],
    "pred50": [59, 60, 3, 0, 2, 5, 0],
    "corr": [92, 76, 27, 0, 0, 5, 0],
}
N_IMAGES = 357
# Table 4 as printed (the paper truncates some values to 4 dp)
TABLE4 = {
    "pred25": [0.5205, 0.7714, 0.2692, 0.0, 0.4, 0.5833, 0.0, 0.6358],
    "pred50": [0.2654, 0.5714, 0.0384, 0.0, 0.2, 0.4166, 0.0, 0.3613],
    "corr": [0.4201, 0.7238, 0.3462, 0.0, 0.0, 0.4167, 0.0, 0.5602],
}


def _table4_records(hits):
    """456 (image, label) records on 357 images: each label takes the next run of images
    around a circle of 357, so some images carry two labels and none a label twice."""
    records, start = [], 0
    for label, support, n_hit in zip(LABELS, SUPPORT, hits, strict=True):
        for i in range(support):
            image = f"img{(start + i) % N_IMAGES:03d}"
            records.append({"image": image, "label": label, "hit": i < n_hit})
        start += support
    return records


def test_table4_records_are_shaped_like_the_paper():
    records = _table4_records(HITS["pred25"])
    assert len(records) == sum(SUPPORT) == 456
    assert len({r["image"] for r in records}) == N_IMAGES
    assert sum(SUPPORT) / N_IMAGES == pytest.approx(1.28, abs=0.01)  # weights sum to 1.28


@pytest.mark.parametrize("kind", ["pred25", "pred50", "corr"])
def test_table4_per_label_and_means(kind):
    records = _table4_records(HITS[kind])
    table = loc.pointing_game(records, labels=LABELS)
    assert table["label"].tolist() == LABELS
    assert table["support"].tolist() == SUPPORT
    assert table["hits"].tolist() == HITS[kind]
    printed = TABLE4[kind]
    for label, acc, paper in zip(LABELS, table["accuracy"], printed[:-1], strict=True):
        if (kind, label) == ("pred50", "mass"):
            # a typo in the paper: 59 / 219 = 0.2694, printed 0.2654
            assert acc == pytest.approx(0.2694, abs=1e-4) and abs(acc - paper) > 3e-3
        else:
            assert acc == pytest.approx(paper, abs=1e-4)
    summary = loc.pointing_summary(records, labels=LABELS)
    total = sum(HITS[kind])
    assert summary["support"] == 456 and summary["n_images"] == N_IMAGES
    assert summary["support_weighted"] == pytest.approx(total / 456, abs=1e-12)
    assert summary["paper_formula"] == pytest.approx(total / N_IMAGES, abs=1e-12)
    assert summary["paper_formula"] == pytest.approx(printed[-1], abs=1e-4)
    # the support-weighted mean is the mean of the label accuracies weighted by support
    weighted = np.average(table["accuracy"], weights=table["support"])
    assert summary["support_weighted"] == pytest.approx(weighted, abs=1e-12)


def test_table4_means_to_four_places():
    got = {
        kind: loc.pointing_summary(_table4_records(h), labels=LABELS) for kind, h in HITS.items()
    }
    assert round(got["pred25"]["support_weighted"], 4) == 0.4978
    assert round(got["pred25"]["paper_formula"], 4) == 0.6359  # 0.63585..., printed 0.6358
    assert round(got["pred50"]["support_weighted"], 4) == 0.2829
    assert round(got["pred50"]["paper_formula"], 4) == 0.3613
    assert round(got["corr"]["support_weighted"], 4) == 0.4386
    assert round(got["corr"]["paper_formula"], 4) == 0.5602


def test_wilson_interval_is_scipys():
    table = loc.pointing_game(_table4_records(HITS["pred50"]), labels=LABELS)
    for row in table.itertuples():
        ci = binomtest(row.hits, row.support).proportion_ci(method="wilson")
        assert (row.ci_low, row.ci_high) == pytest.approx((ci.low, ci.high), abs=1e-12)
        assert row.ci_low <= row.accuracy <= row.ci_high


def test_label_without_support_is_nan_and_left_out_of_the_means():
    records = _table4_records(HITS["pred25"])
    labels = [*LABELS, "nipple retraction"]
    table = loc.pointing_game(records, labels=labels)
    empty = table.iloc[-1]
    assert (empty["hits"], empty["support"]) == (0, 0)
    assert np.isnan([empty["accuracy"], empty["ci_low"], empty["ci_high"]]).all()
    with_empty = loc.pointing_summary(records, labels=labels)
    without = loc.pointing_summary(records, labels=LABELS)
    for key in ("support_weighted", "paper_formula", "macro", "support", "n_images"):
        assert with_empty[key] == without[key]
    seven = np.mean([h / s for h, s in zip(HITS["pred25"], SUPPORT, strict=True)])
    assert with_empty["macro"] == pytest.approx(seven, abs=1e-12)  # not the mean over 8
    entry = with_empty["per_label"]["nipple retraction"]
    assert entry == {"hits": 0, "support": 0, "accuracy": None, "ci": None}
    json.dumps(with_empty, allow_nan=False)


def test_no_records_at_all():
    summary = loc.pointing_summary([], labels=["mass"])
    assert summary["support"] == 0 and summary["support_weighted"] is None
    assert summary["macro"] is None and summary["random"] is None


@pytest.mark.parametrize(
    ("records", "match"),
    [
        ([{"image": 1, "label": "cyst", "hit": True}], r"labels \['cyst'\] that are not"),
        ([{"image": 1, "label": "mass", "hit": 2}], "hit must be True/False"),
        ([{"image": 1, "label": "mass", "hit": None}], "hit must be True/False"),
        ([{"image": 1, "label": "mass"}], r"missing \['hit'\]"),
        ([{"image": 1, "label": "mass", "hit": 1, "chance": 1.2}], "chance must be"),
    ],
)
def test_records_are_checked(records, match):
    with pytest.raises(ValueError, match=match):
        loc.pointing_game(records, labels=["mass"])


# ---------------------------------------------------------------- random pointer
def test_random_chance_hand_case():
    breast = np.zeros((10, 10), bool)
    breast[:, :5] = True  # 50 pixels, columns 0..4
    box = [(3, 0, 8, 2)]  # breast part: columns 3, 4 x rows 0, 1
    assert loc.random_hit_chance(breast, box, tolerance_px=0) == 4 / 50
    # grown by 1 and clipped: columns 2..4 x rows 0..2
    assert loc.random_hit_chance(breast, box, tolerance_px=1) == 9 / 50
    with pytest.raises(ValueError, match="image P1_L_CC has no breast"):
        loc.random_hit_chance(np.zeros((4, 4)), box, tolerance_px=0, name="image P1_L_CC")


def _ellipse(hw):
    rows, cols = np.mgrid[: hw[0], : hw[1]]
    return ((rows - 18) / 17) ** 2 + (cols / 80) ** 2 <= 1


def test_random_chance_matches_the_pointer_it_models():
    """Every breast pixel as the argmax of a map, through pointing_hit: the exact share,
    on a non-square image with overlapping boxes (their union, not the sum)."""
    hw, boxes, t = (37, 90), [(10, 4, 30, 12), (25, 8, 40, 20)], 3
    breast = _ellipse(hw)
    chance = loc.random_hit_chance(breast, boxes, tolerance_px=t)
    rows, cols = np.nonzero(breast)
    hits = [
        loc.pointing_hit(_peak(hw, r, c), boxes, tolerance_px=t)
        for r, c in zip(rows, cols, strict=True)
    ]
    assert chance == np.mean(hits)
    one = [loc.random_hit_chance(breast, [b], tolerance_px=t) for b in boxes]
    assert max(one) < chance < sum(one)


def test_random_chance_against_monte_carlo():
    """Uniform continuous points in the breast (a point falls in the pixel it lies in)."""
    hw, boxes, t = (37, 90), [(10, 4, 30, 12), (25, 8, 40, 20)], 3
    breast = _ellipse(hw)
    chance = loc.random_hit_chance(breast, boxes, tolerance_px=t)
    rng = np.random.default_rng(5)
    n = 40_000
    y, x = rng.uniform(0, hw[0], 4 * n), rng.uniform(0, hw[1], 4 * n)
    r, c = y.astype(int), x.astype(int)
    keep = breast[r, c]
    r, c = r[keep][:n], c[keep][:n]
    grown = loc.box_mask(boxes, hw, tolerance_px=t)
    share = grown[r, c].mean()
    assert abs(share - chance) < 4 * math.sqrt(chance * (1 - chance) / n)


def test_random_baseline_in_the_summary():
    records = [
        {"image": "a", "label": "mass", "hit": True, "chance": 0.1},
        {"image": "a", "label": "calc", "hit": False, "chance": 0.3},
        {"image": "b", "label": "mass", "hit": False, "chance": 0.2},
    ]
    table = loc.pointing_game(records, labels=["mass", "calc", "none"])
    assert table["random"].tolist()[:2] == pytest.approx([0.15, 0.3])
    assert np.isnan(table["random"].iloc[2])
    s = loc.pointing_summary(records, labels=["mass", "calc", "none"])
    assert s["random"] == pytest.approx(
        {"support_weighted": 0.6 / 3, "paper_formula": 0.6 / 2, "macro": 0.225}
    )
    assert s["per_label"]["mass"]["random"] == pytest.approx(0.15)
    assert s["per_label"]["none"]["random"] is None
    assert s["support_weighted"] == pytest.approx(1 / 3) and s["paper_formula"] == 0.5
    json.dumps(s, allow_nan=False)


# ---------------------------------------------------------------------- pixel AUC
def test_pixel_auc_hand_case():
    m = np.array([[0.1, 0.4], [0.35, 0.8]])
    lesion = np.array([[0, 0], [1, 1]])
    assert loc.pixel_auc(m, lesion) == 0.75  # 0.35 < 0.4 is the one wrong pair of four
    breast = np.array([[True, False], [True, True]])  # drop the 0.4 pixel
    assert loc.pixel_auc(m, lesion, breast) == 1.0
    assert math.isnan(loc.pixel_auc(m, lesion, np.array([[0, 0], [1, 1]])))  # lesion only
    assert math.isnan(loc.pixel_auc(m, np.zeros((2, 2))))


def test_pixel_auc_is_sklearns_inside_the_breast():
    rng = np.random.default_rng(3)
    hw = (37, 90)
    breast = _ellipse(hw)
    lesion = loc.box_mask([(30, 10, 50, 25)], hw)
    m = rng.normal(size=hw) + 0.7 * lesion
    ours = loc.pixel_auc(m, lesion, breast)
    assert ours == pytest.approx(roc_auc_score(lesion[breast], m[breast]), abs=1e-12)
    assert ours != pytest.approx(roc_auc_score(lesion.ravel(), m.ravel()), abs=1e-6)


def test_pixel_auc_refuses_bad_input():
    m = np.zeros((3, 4))
    with pytest.raises(ValueError, match=r"lesion_mask has shape \(4, 3\), map2d \(3, 4\)"):
        loc.pixel_auc(m, np.zeros((4, 3)))
    with pytest.raises(ValueError, match=r"breast_mask has shape \(3, 3\), corr map \(3, 4\)"):
        loc.pixel_auc(m, np.zeros((3, 4)), np.ones((3, 3)), name="corr map")
    with pytest.raises(ValueError, match="corr map holds 3 non-finite"):
        loc.pixel_auc(np.where(np.eye(3, 4) > 0, np.nan, 0), np.zeros((3, 4)), name="corr map")
    with pytest.raises(ValueError, match="only 0/1"):
        loc.pixel_auc(m, np.full((3, 4), 0.5))
    with pytest.raises(ValueError, match="breast_mask of map2d is empty"):
        loc.pixel_auc(m, np.eye(3, 4), np.zeros((3, 4)))


def test_image_records_decide_each_label_once_with_its_chance():
    maps = {"mass": np.zeros((20, 30)), "calcification": np.zeros((20, 30))}
    maps["mass"][5, 25] = 1.0  # inside the mass box
    maps["calcification"][15, 2] = 0.9  # far from the calcification box
    boxes = {
        "mass": [[20, 0, 28, 8], [0, 0, 2, 2]],
        "calcification": [[20, 10, 30, 20]],
        "asymmetry": np.zeros((0, 4)),  # absent: no record
    }
    breast = np.ones((20, 30), bool)
    recs = loc.image_records("im1", maps, boxes, tolerance_px=0, breast_mask=breast, min_value=0.25)
    assert [(r["label"], r["hit"]) for r in recs] == [("mass", True), ("calcification", False)]
    assert recs[1]["chance"] == pytest.approx(100 / 600)
    with pytest.raises(ValueError, match="no map for label 'retraction'"):
        loc.image_records("im1", maps, {"retraction": [[0, 0, 1, 1]]}, tolerance_px=0)


def test_image_records_refuse_a_map_shaped_unlike_its_roi():
    maps = {"mass": np.zeros((30, 20))}  # transposed
    with pytest.raises(ValueError, match="mass map of image 'im2' has shape"):
        loc.image_records(
            "im2", maps, {"mass": [[0, 0, 5, 5]]}, tolerance_px=0,
            breast_mask=np.ones((20, 30), bool),
        )  # fmt: skip


# ------------------------------------------------------- pixel metrics (chapter 03)
def _lesion_case():
    """A 37 x 90 ellipse breast with a 20 x 15 lesion box in it."""
    hw = (37, 90)
    return hw, _ellipse(hw), loc.box_mask([(30, 10, 50, 25)], hw)


def test_pointing_fraction_shares_ties():
    lesion = np.zeros((4, 5), bool)
    lesion[1:3, 1:3] = True  # 4 lesion pixels of 20
    assert loc.pointing_fraction(_peak((4, 5), 1, 1), lesion) == 1.0
    assert loc.pointing_fraction(_peak((4, 5), 0, 4), lesion) == 0.0
    m = np.zeros((4, 5))
    m[1, 1] = m[2, 2] = m[0, 0] = 3.0  # three tied maxima, two in the lesion
    assert loc.pointing_fraction(m, lesion) == pytest.approx(2 / 3)
    assert loc.pointing_fraction(np.ones((4, 5)), lesion) == pytest.approx(4 / 20)
    # the maximum over the breast only: the 3.0 at (0, 0) is outside it
    breast = np.ones((4, 5), bool)
    breast[0, 0] = False
    assert loc.pointing_fraction(m, lesion, breast) == 1.0
    m[2, 2] = np.nextafter(3.0, 0)  # exact equality: a hair below is not tied
    assert loc.pointing_fraction(m, lesion) == 0.5


def test_relevance_mass_hand_case():
    m = np.array([[1.0, -2.0, 3.0], [0.5, 0.0, -1.0]])
    lesion = np.array([[1, 1, 0], [0, 0, 0]])
    assert loc.relevance_mass(m, lesion) == pytest.approx(1.0 / 4.5)  # -2 clipped to 0
    breast = np.array([[1, 1, 0], [1, 1, 1]], bool)  # drop the 3.0
    assert loc.relevance_mass(m, lesion, breast) == pytest.approx(1.0 / 1.5)
    assert math.isnan(loc.relevance_mass(-np.abs(m), lesion))  # no positive relevance
    assert math.isnan(loc.relevance_mass(np.zeros((2, 3)), lesion))


def test_rank_accuracy_hand_cases():
    lesion = np.array([[1, 1, 0], [0, 0, 0]])  # K = 2 of N = 6
    m = np.array([[5.0, 1.0, 4.0], [0.0, 0.0, 0.0]])
    assert loc.rank_accuracy(m, lesion) == 0.5  # top 2: 5 (lesion), 4 (not)
    m = np.array([[5.0, 1.0, 1.0], [1.0, 0.0, 0.0]])
    # top 2: 5, then one place for three pixels tied at 1, one of them in the lesion
    assert loc.rank_accuracy(m, lesion) == pytest.approx((1 + 1 / 3) / 2)
    assert loc.rank_accuracy(np.full((2, 3), 7.0), lesion) == pytest.approx(2 / 6)


def test_rank_accuracy_of_a_constant_map_is_the_chance_level():
    hw, breast, lesion = _lesion_case()
    chance = loc.chance_levels(lesion, breast)
    p = (lesion & breast).sum() / breast.sum()
    assert chance == pytest.approx(
        {"pointing": p, "relevance_mass": p, "rank_accuracy": p, "pixel_auc": 0.5}
    )
    const = np.full(hw, 0.3)
    assert loc.rank_accuracy(const, lesion, breast) == pytest.approx(p, abs=1e-15)
    assert loc.pointing_fraction(const, lesion, breast) == pytest.approx(p, abs=1e-15)
    assert loc.relevance_mass(const, lesion, breast) == pytest.approx(p, abs=1e-12)
    assert loc.pixel_auc(const, lesion, breast) == 0.5


def _rank_brute_force(values, lesion):
    """Exact expectation over random tie-breaking: the mean over every K-subset of pixels
    that can be a top-K set (each chosen value >= each value left out)."""
    from itertools import combinations

    n, k = values.size, int(lesion.sum())
    scores = []
    for chosen in combinations(range(n), k):
        rest = np.setdiff1d(np.arange(n), chosen)
        if rest.size and values[list(chosen)].min() < values[rest].max():
            continue
        scores.append(lesion[list(chosen)].mean())
    return float(np.mean(scores))


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_rank_accuracy_against_brute_force_with_ties(data):
    n = data.draw(st.integers(2, 10))
    values = np.array(data.draw(st.lists(st.integers(0, 3), min_size=n, max_size=n)), float)
    lesion = np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    assume(lesion.any())
    got = loc.rank_accuracy(values.reshape(1, n), lesion.reshape(1, n))
    assert got == pytest.approx(_rank_brute_force(values, lesion), abs=1e-12)


def test_rank_accuracy_against_random_tie_breaking():
    """Monte-Carlo: sort by value, breaking ties by a random key, and count."""
    rng = np.random.default_rng(11)
    values = rng.integers(0, 4, size=(6, 7)).astype(float)
    lesion = rng.random((6, 7)) < 0.3
    k = int(lesion.sum())
    draws = 20_000
    flat_v, flat_l = values.ravel(), lesion.ravel()
    hits = np.empty(draws)
    for i in range(draws):
        order = np.lexsort((rng.random(flat_v.size), -flat_v))  # value desc, random ties
        hits[i] = flat_l[order[:k]].mean()
    got = loc.rank_accuracy(values, lesion)
    assert abs(hits.mean() - got) < 4 * hits.std() / math.sqrt(draws) + 1e-12


def test_a_perfect_map_scores_one_everywhere():
    hw, breast, lesion = _lesion_case()
    perfect = lesion.astype(float)
    got = loc.pixel_metrics(perfect, lesion, breast)
    assert got == {"pointing": 1.0, "relevance_mass": 1.0, "rank_accuracy": 1.0, "pixel_auc": 1.0}
    inverse = 1.0 - perfect
    got = loc.pixel_metrics(inverse, lesion, breast)
    assert got == {"pointing": 0.0, "relevance_mass": 0.0, "rank_accuracy": 0.0, "pixel_auc": 0.0}


def test_pixel_metrics_against_sklearn_and_direct_sums():
    rng = np.random.default_rng(4)
    hw, breast, lesion = _lesion_case()
    m = rng.normal(size=hw) + 0.8 * lesion
    got = loc.pixel_metrics(m, lesion, breast, name="IG map")
    assert got["pixel_auc"] == pytest.approx(roc_auc_score(lesion[breast], m[breast]), abs=1e-12)
    pos = np.clip(m, 0, None) * breast
    assert got["relevance_mass"] == pytest.approx(pos[lesion].sum() / pos.sum(), abs=1e-12)
    k = int((lesion & breast).sum())
    top = np.argsort(-m[breast])[:k]  # continuous values: no ties
    assert got["rank_accuracy"] == pytest.approx(lesion[breast][top].mean(), abs=1e-12)
    masked = np.where(breast, m, -np.inf)
    r, c = np.unravel_index(np.argmax(masked), hw)
    assert got["pointing"] == float(lesion[r, c])
    # without the breast mask, the relevance outside the breast would count too
    assert got["relevance_mass"] != pytest.approx(
        np.clip(m, 0, None)[lesion].sum() / np.clip(m, 0, None).sum(), abs=1e-6
    )


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_pixel_metrics_lie_in_the_unit_interval(data):
    h, w = data.draw(st.integers(1, 12)), data.draw(st.integers(1, 12))
    seed = data.draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    m = rng.integers(-3, 4, size=(h, w)).astype(float) * data.draw(st.floats(0.01, 100))
    breast = rng.random((h, w)) < 0.8
    lesion = rng.random((h, w)) < data.draw(st.floats(0.05, 0.9))
    assume((breast & lesion).any())
    got = loc.pixel_metrics(m, lesion, breast)
    for key, value in got.items():
        assert math.isnan(value) or 0.0 <= value <= 1.0, key
    assert not math.isnan(got["pointing"]) and not math.isnan(got["rank_accuracy"])


@pytest.mark.parametrize(
    "metric", [loc.pointing_fraction, loc.relevance_mass, loc.rank_accuracy, loc.pixel_metrics]
)
def test_pixel_metrics_refuse_bad_input(metric):
    m, lesion = np.zeros((3, 4)), np.eye(3, 4)
    with pytest.raises(ValueError, match=r"lesion_mask has shape \(4, 3\), map2d \(3, 4\)"):
        metric(m, np.zeros((4, 3)))
    with pytest.raises(ValueError, match=r"breast_mask has shape \(3, 3\), map2d \(3, 4\)"):
        metric(m, lesion, np.ones((3, 3)))
    with pytest.raises(ValueError, match="SHAP map holds 1 non-finite"):
        metric(_nan_at(0, 0), lesion, name="SHAP map")
    with pytest.raises(ValueError, match="breast_mask of map2d is empty"):
        metric(m, lesion, np.zeros((3, 4)))
    with pytest.raises(ValueError, match="lesion_mask of map2d has no pixel inside the breast"):
        metric(m, np.zeros((3, 4)))
    breast = np.zeros((3, 4), bool)
    breast[:, 3] = True  # the lesion's diagonal pixels are in columns 0..2
    with pytest.raises(ValueError, match="lesion_mask of map2d has no pixel inside the breast"):
        metric(m, lesion, breast)


def _nan_at(r, c):
    out = np.zeros((3, 4))
    out[r, c] = np.nan
    return out


def test_chance_levels_checks_its_masks():
    with pytest.raises(ValueError, match="lesion_mask must be 2-D"):
        loc.chance_levels(np.zeros(5), None)
    with pytest.raises(ValueError, match="no pixel inside the breast"):
        loc.chance_levels(np.zeros((3, 3)), np.ones((3, 3)))
    assert loc.chance_levels(np.eye(4))["rank_accuracy"] == 0.25


def test_reference_maps():
    from skimage.filters import sobel

    hw, breast, lesion = _lesion_case()
    rows, cols = np.mgrid[: hw[0], : hw[1]]
    image = np.where(breast, 0.5 + 0.3 * np.sin(cols / 5.0), 0.0)
    maps = loc.reference_maps(image, breast, seed=3)
    assert set(maps) == {"noise", "intensity", "edges"}
    for m in maps.values():
        assert m.shape == hw and (m[~breast] == 0).all()
    np.testing.assert_array_equal(maps["intensity"], image)
    noise = maps["noise"][breast]
    assert noise.min() >= 0 and noise.max() < 1 and np.unique(noise).size == noise.size
    np.testing.assert_array_equal(maps["noise"], loc.reference_maps(image, breast, 3)["noise"])
    assert not np.array_equal(maps["noise"], loc.reference_maps(image, breast, 4)["noise"])
    # edges: Sobel inside the breast, the outline (a jump from 0) left out
    inner = np.zeros(hw, bool)
    inner[1:-1, 1:-1] = True
    deep = ndimage.binary_erosion(breast, np.ones((3, 3))) & inner
    np.testing.assert_allclose(maps["edges"][deep], sobel(image)[deep], atol=1e-12)
    assert maps["edges"].max() < sobel(image).max()
    with pytest.raises(ValueError, match="breast_mask of image2d is empty"):
        loc.reference_maps(image, np.zeros(hw, bool))
    with pytest.raises(ValueError, match=r"breast_mask has shape \(3, 3\), image2d"):
        loc.reference_maps(image, np.ones((3, 3), bool))
