"""mammo_helpers.radiomics (chapter 05): the 34 handcrafted features against known answers
(hand-counted runs, checkerboards, a Sierpinski carpet, discs and squares, skimage's own
GLCM), the per-patient 141-attribute vector, and the patient-grouped grid search."""

from __future__ import annotations

import math
import re
from collections import Counter

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from skimage.feature import graycomatrix, graycoprops

import mammo_helpers as mh
from mammo_helpers import radiomics as rad

ANGLES = [0.0, np.pi / 4, np.pi / 2, 3 * np.pi / 4]


def checkerboard(n: int = 64, block: int = 1) -> np.ndarray:
    yy, xx = np.mgrid[:n, :n]
    return ((yy // block + xx // block) % 2).astype(np.float64)


def disc(n: int, radius: float, centre=None) -> np.ndarray:
    cy, cx = centre if centre is not None else (n / 2, n / 2)
    yy, xx = np.mgrid[:n, :n]
    return (yy - cy) ** 2 + (xx - cx) ** 2 < radius**2


def carpet(k: int) -> np.ndarray:
    c = np.ones((1, 1), bool)
    for _ in range(k):
        hole = np.zeros_like(c)
        c = np.block([[c, c, c], [c, hole, c], [c, c, c]])
    return c


def noise_image(n: int = 64, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((n, n))


# --------------------------------------------------------------------------- names


def test_34_unique_names_in_their_families():
    assert len(rad.FEATURE_NAMES) == 34 == len(set(rad.FEATURE_NAMES))
    families = Counter(name.split("_")[0] for name in rad.FEATURE_NAMES)
    assert families == {
        "int": 11,
        "glcm": 6,
        "glrlm": 5,
        "wav": 3,
        "sharp": 1,
        "fractal": 1,
        "breast": 4,
        "dense": 3,
    }
    f = rad.image_features(noise_image())
    assert tuple(f) == rad.FEATURE_NAMES and all(type(v) is float for v in f.values())


def test_module_is_exposed_lazily():
    assert mh.radiomics is rad and "radiomics" in dir(mh)


# --------------------------------------------------------------------------- intensity


def _block_of_0_to_99(outside: float) -> tuple[np.ndarray, np.ndarray]:
    """A 32x32 image whose 10x10 breast holds 0..99 once each (shuffled), ``outside`` else."""
    img = np.full((32, 32), outside)
    mask = np.zeros((32, 32), bool)
    mask[11:21, 11:21] = True
    img[mask] = np.random.default_rng(1).permutation(100)
    return img, mask


def test_intensity_features_of_the_values_0_to_99():
    img, mask = _block_of_0_to_99(outside=0.0)
    f = rad.image_features(img, mask, where="ramp")
    v = np.arange(100) / 99  # scaled by the breast's min and max
    assert f["int_mean"] == pytest.approx(0.5)
    assert f["int_std"] == pytest.approx(math.sqrt((100**2 - 1) / 12) / 99)  # population sd
    assert f["int_std"] == pytest.approx(v.std(ddof=0))
    assert f["int_skewness"] == pytest.approx(0.0, abs=1e-12)
    # excess kurtosis of a discrete uniform on n points: -6 (n^2 + 1) / (5 (n^2 - 1))
    assert f["int_kurtosis"] == pytest.approx(-6 * (100**2 + 1) / (5 * (100**2 - 1)))
    assert f["int_kurtosis"] == pytest.approx(stats.kurtosis(v))
    for p in (5, 25, 50, 75, 95):
        assert f[f"int_p{p:02d}"] == pytest.approx(np.percentile(v, p)) == pytest.approx(p / 100)
    assert f["int_balance"] == pytest.approx((0.95 - 0.5) / (0.5 - 0.05))


def test_skewed_values_match_scipy():
    img = np.random.default_rng(2).exponential(size=(48, 48))
    f = rad.image_features(img)
    v = (img - img.min()) / (img.max() - img.min())
    assert f["int_skewness"] == pytest.approx(stats.skew(v.ravel()))
    assert f["int_skewness"] > 1.0
    assert f["int_kurtosis"] == pytest.approx(stats.kurtosis(v.ravel()))


def test_entropy_of_a_uniform_64_bin_histogram_is_6_bits():
    img = np.tile(np.arange(64.0), (32, 1))  # 64 levels, 32 pixels each
    assert rad.image_features(img)["int_entropy"] == pytest.approx(6.0)
    two = np.tile([0.0, 1.0], (32, 16))
    assert rad.image_features(two)["int_entropy"] == pytest.approx(1.0)


def test_pixels_outside_the_mask_change_nothing():
    base = rad.image_features(*_block_of_0_to_99(outside=0.0))
    for outside in (1e9, -1e9, 50.0):
        assert rad.image_features(*_block_of_0_to_99(outside=outside)) == pytest.approx(base)


def test_features_do_not_depend_on_gain_and_offset():
    img = noise_image(seed=3)
    assert rad.image_features(1000 * img + 7) == pytest.approx(rad.image_features(img))


# --------------------------------------------------------------------------- GLCM


def test_quantisation_floors_32_equal_bins():
    s = np.array([0.0, 0.03, 1 / 32, 0.5, 0.97, 1.0])
    np.testing.assert_array_equal(rad._quantised(s), [0, 0, 1, 16, 31, 31])


def test_glcm_of_a_checkerboard_at_distance_1_horizontal():
    q = (checkerboard() * 31).astype(int)
    f = rad._glcm_features(q, np.ones(q.shape, bool), distances=(1,), angles=(0.0,))
    assert f["glcm_contrast"] == pytest.approx(31**2)
    assert f["glcm_dissimilarity"] == pytest.approx(31)
    assert f["glcm_homogeneity"] == pytest.approx(1 / (1 + 31**2))
    assert f["glcm_energy"] == pytest.approx(math.sqrt(0.5))
    assert f["glcm_correlation"] == pytest.approx(-1.0)
    assert f["glcm_entropy"] == pytest.approx(1.0)  # bits


def test_glcm_of_levels_0_and_1_and_of_a_single_level():
    full = np.ones((16, 16), bool)
    f = rad._glcm_features(checkerboard(16).astype(int), full, distances=(1,), angles=(0.0,))
    # only (0, 1) and (1, 0) pairs, half each: marginal variance 1/4, correlation -1
    expected = {"contrast": 1.0, "dissimilarity": 1.0, "homogeneity": 0.5}
    expected.update({"energy": math.sqrt(0.5), "correlation": -1.0, "entropy": 1.0})
    assert f == pytest.approx({f"glcm_{k}": v for k, v in expected.items()})
    flat = rad._glcm_features(np.full((16, 16), 31), full)  # all pairs (31, 31)
    assert math.isnan(flat["glcm_correlation"])  # undefined (skimage would say 1)
    del flat["glcm_correlation"]
    expected = {"contrast": 0.0, "dissimilarity": 0.0, "homogeneity": 1.0}
    expected.update({"energy": 1.0, "entropy": 0.0})
    assert flat == pytest.approx({f"glcm_{k}": v for k, v in expected.items()})


def test_glcm_features_average_the_four_angles():
    f = rad.image_features(checkerboard())  # levels 0 and 31 after quantisation
    # 0 and 90 degrees: only unlike pairs; 45 and 135: only like pairs (both distances odd)
    assert f["glcm_contrast"] == pytest.approx(31**2 / 2)
    assert f["glcm_homogeneity"] == pytest.approx((2 / (1 + 31**2) + 2) / 4)
    assert f["glcm_correlation"] == pytest.approx(0.0, abs=1e-9)


def _skimage_glcm(levels_img: np.ndarray) -> dict[str, float]:
    p = graycomatrix(levels_img, [1, 3], ANGLES, levels=32, symmetric=True, normed=True)
    out = {
        f"glcm_{n}": graycoprops(p, n).mean()
        for n in ("contrast", "dissimilarity", "homogeneity", "energy", "correlation")
    }
    out["glcm_entropy"] = graycoprops(p, "entropy").mean() / math.log(2)
    return out


def test_glcm_matches_skimage_without_a_mask():
    v = np.random.default_rng(4).integers(0, 32, size=(48, 48)).astype(np.uint8)
    v[0, 0], v[0, 1] = 0, 31  # the scaling maps 0..31 back onto levels 0..31
    f = rad.image_features(v)
    assert {k: f[k] for k in _skimage_glcm(v)} == pytest.approx(_skimage_glcm(v))


def test_a_rectangular_mask_equals_cropping():
    rng = np.random.default_rng(5)
    img = rng.integers(0, 32, size=(48, 64)).astype(np.float64)
    img[0, 0], img[0, 1] = 0, 31
    img[:, 32:] = rng.normal(1e6, 1e5, size=(48, 32))  # outside pixels: wild values
    mask = np.zeros(img.shape, bool)
    mask[:, :32] = True
    masked, cropped = rad.image_features(img, mask), rad.image_features(img[:, :32])
    same = [n for n in rad.FEATURE_NAMES if n.split("_")[0] in ("int", "glcm", "glrlm")]
    assert {n: masked[n] for n in same} == pytest.approx({n: cropped[n] for n in same})
    assert {n: masked[n] for n in same if "glcm" in n} == pytest.approx(
        _skimage_glcm(img[:, :32].astype(np.uint8))
    )


def test_a_constant_breast_raises_naming_the_image_and_features():
    img = noise_image()
    mask = disc(64, 20)
    img[mask] = 0.7
    with pytest.raises(ValueError, match=r"^case-17\.dcm: non-finite radiomic features") as err:
        rad.image_features(img, mask, where="case-17.dcm")
    assert "glcm_correlation" in str(err.value) and "int_skewness" in str(err.value)


# --------------------------------------------------------------------------- run lengths

HAND_Q = np.array([[0, 0, 1, 1], [0, 1, 1, 1], [2, 2, 2, 2], [3, 0, 0, 3]])


def test_glrlm_matrices_of_a_hand_counted_image():
    full = np.ones(HAND_Q.shape, bool)
    rows = rad._glrlm(HAND_Q, full, levels=4)
    cols = rad._glrlm(HAND_Q.T, full.T, levels=4)
    np.testing.assert_array_equal(rows, [[1, 2, 0, 0], [0, 1, 1, 0], [0, 0, 0, 1], [2, 0, 0, 0]])
    np.testing.assert_array_equal(cols, [[3, 1, 0, 0], [1, 2, 0, 0], [4, 0, 0, 0], [2, 0, 0, 0]])
    assert rows.dtype.kind == cols.dtype.kind == "i"  # counts of runs


def test_glrlm_features_of_a_hand_counted_image():
    f = rad._glrlm_features(HAND_Q, np.ones(HAND_Q.shape, bool))
    # rows: 8 runs, lengths 1 x3, 2 x3, 3 x1, 4 x1; columns: 13 runs, 1 x10, 2 x3
    expected = {
        "glrlm_sre": ((3 + 3 / 4 + 1 / 9 + 1 / 16) / 8 + (10 + 3 / 4) / 13) / 2,
        "glrlm_lre": (40 / 8 + 22 / 13) / 2,
        "glrlm_gln": (18 / 64 + 45 / 169) / 2,
        "glrlm_rln": (20 / 64 + 109 / 169) / 2,
        "glrlm_rp": (8 / 16 + 13 / 16) / 2,
    }
    assert f == pytest.approx(expected)


def test_runs_stop_at_the_mask_and_at_row_ends():
    q = np.full((2, 7), 5)
    mask = np.array([[1, 1, 0, 1, 1, 1, 0], [1, 1, 1, 1, 1, 1, 1]], bool)
    r = rad._glrlm(q, mask, levels=8)
    assert r.sum() == 3 and r[5, 1] == 1 and r[5, 2] == 1 and r[5, 6] == 1


def test_horizontal_stripes_have_full_length_row_runs():
    stripes = np.tile([[0.0], [1.0]], (32, 64))  # 64x64, rows alternate
    q = rad._quantised(stripes)
    rows = rad._glrlm(q, np.ones(q.shape, bool))
    assert rows.sum() == 64 and rows[:, 63].sum() == 64
    f = rad.image_features(stripes)
    assert f["glrlm_sre"] == pytest.approx((1 / 64**2 + 1) / 2)
    assert f["glrlm_lre"] == pytest.approx((64**2 + 1) / 2)
    assert f["glrlm_rp"] == pytest.approx((64 / 64**2 + 1) / 2)
    assert f["glrlm_gln"] == pytest.approx(0.5) and f["glrlm_rln"] == pytest.approx(1.0)


# --------------------------------------------------------------------------- wavelet, sharpness


def test_a_constant_image_has_no_detail_energy():
    detail, total = rad._wavelet_energies(np.full((32, 32), 3.0))
    np.testing.assert_array_equal(detail, np.zeros(3))
    assert total == pytest.approx(9 * 32 * 32)


def test_wavelet_energy_is_parseval_and_sums_below_one():
    x = noise_image(seed=6) - 0.5
    detail, total = rad._wavelet_energies(x)
    assert total == pytest.approx(np.sum(x**2))
    f = rad.image_features(noise_image(seed=6))
    shares = [f[f"wav_energy_l{k}"] for k in (1, 2, 3)]
    assert all(0 < s < 1 for s in shares) and sum(shares) <= 1 + 1e-12
    assert shares[0] > shares[1] > shares[2]  # white noise: half the energy per finer level


@pytest.mark.parametrize("level", [1, 2, 3])
def test_a_checkerboard_of_2_to_the_l_minus_1_px_squares_puts_its_energy_in_level_l(level):
    f = rad.image_features(checkerboard(block=2 ** (level - 1)))
    for k in (1, 2, 3):
        assert f[f"wav_energy_l{k}"] == pytest.approx(float(k == level), abs=1e-12)


def test_sharpness_of_a_ramp_is_its_slope_and_skips_the_skin_line():
    ramp = np.tile(np.arange(64.0), (64, 1))  # scaled slope 1/63 per px
    assert rad.image_features(ramp)["sharp_gradient"] == pytest.approx(1 / 63)
    mask = np.zeros((64, 64), bool)
    mask[8:56, 8:40] = True
    img = np.where(mask, ramp, 1e6)  # a huge step at the mask's edge is not counted
    assert rad.image_features(img, mask)["sharp_gradient"] == pytest.approx(1 / 31)


def test_sharpness_of_a_parabola_averages_its_slope_over_the_interior_columns():
    # scaled s = j^2 / 63^2: the Sobel central difference is exact on a parabola, 2 j / 63^2
    # at column j; the pixels with a 3x3 neighbourhood in the image are columns 1..62
    img = np.tile(np.arange(64.0) ** 2, (64, 1))
    assert rad.image_features(img)["sharp_gradient"] == pytest.approx(2 * 31.5 / 63**2)


def test_sharpness_inside_a_disc_skips_pixels_touching_the_outside_diagonally():
    mask = disc(64, 20)
    cols = np.flatnonzero(mask.any(axis=0))
    assert (cols.min(), cols.max()) == (13, 51)  # the ramp is scaled by 51 - 13
    img = np.where(mask, np.tile(np.arange(64.0), (64, 1)), 1e6)
    # a pixel with an outside 8-neighbour (the disc's stair steps) would see the outside's 0
    assert rad.image_features(img, mask)["sharp_gradient"] == pytest.approx(1 / 38)


# --------------------------------------------------------------------------- fractal


def test_box_counting_of_squares_and_lines():
    assert rad._box_counting_dimension(np.ones((64, 64))) == pytest.approx(2.0)
    corner = np.zeros((128, 128), bool)
    corner[:64, :64] = True
    assert rad._box_counting_dimension(corner) == pytest.approx(2.0)
    line = np.zeros((128, 128), bool)
    line[40, :] = True
    assert rad._box_counting_dimension(line) == pytest.approx(1.0)
    assert rad._box_counting_dimension(np.eye(128, dtype=bool)) == pytest.approx(1.0)
    small = np.zeros((128, 128), bool)
    small[:32, :32] = True  # exact up to 32-px boxes (a quarter of 128); a 64-px box would see 1
    assert rad._box_counting_dimension(small) == pytest.approx(2.0)
    assert math.isnan(rad._box_counting_dimension(np.zeros((64, 64), bool)))
    assert rad._box_counting_dimension(np.ones((16, 16))) == pytest.approx(2.0)  # 2, 4 px
    assert math.isnan(rad._box_counting_dimension(np.ones((15, 64))))  # 4 > 15 / 4: one size


def test_box_counting_of_a_sierpinski_carpet():
    c = carpet(5)
    assert c.shape == (243, 243) and c.sum() == 8**5
    assert rad._box_counting_dimension(c) == pytest.approx(math.log(8) / math.log(3), abs=0.05)


def test_fractal_dimension_is_that_of_the_dense_tissue_mask():
    img = np.zeros((128, 128))
    img[:64, :64] = 1.0  # dense tissue: an aligned 64x64 square
    img[100, 100] = 0.2
    assert rad.image_features(img)["fractal_dimension"] == pytest.approx(2.0)


# --------------------------------------------------------------------------- morphology, dense


def test_morphology_of_a_disc():
    mask = disc(128, 40)
    f = rad.image_features(noise_image(128, seed=7), mask)
    assert f["breast_area_frac"] == mask.sum() / 128**2
    assert f["breast_eccentricity"] < 0.05
    assert f["breast_solidity"] > 0.98
    assert f["breast_extent"] == pytest.approx(math.pi / 4, abs=0.02)


def test_morphology_of_a_half_plane():
    mask = np.zeros((128, 128), bool)
    mask[:, :64] = True
    f = rad.image_features(noise_image(128, seed=8), mask)
    assert f["breast_area_frac"] == 0.5
    assert f["breast_extent"] == 1.0 and f["breast_solidity"] == 1.0
    # the moment ellipse of a 128 x 64 rectangle: axes ratio^2 = (64^2 - 1) / (128^2 - 1)
    assert f["breast_eccentricity"] == pytest.approx(math.sqrt(1 - 4095 / 16383))


def test_dense_tissue_of_a_bright_square_in_a_dark_breast():
    breast = disc(128, 50)
    img = np.where(breast, 0.2, 0.0)
    img[50:60, 40:50] = 1.0  # 100 px dense
    img[80:84, 70:74] = 1.0  # 16 px dense, a second component
    img[84:88, 74:78] = 1.0  # 16 px touching it at a corner: the same 8-connected component
    f = rad.image_features(img, breast, where="dense")
    area = breast.sum()
    assert f["dense_area_frac"] == 132 / area
    assert f["dense_mean_intensity_ratio"] == pytest.approx(area / 132)  # scaled: 1 vs 132/area
    assert f["dense_n_components"] == pytest.approx(2000 / area)


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("img", "mask", "problem"),
    [
        (np.zeros((4, 4, 3)), None, "must be 2-D"),
        (np.zeros((8, 8)), np.ones((8, 9), bool), "mask has shape"),
        (np.zeros((8, 8)), np.zeros((8, 8), bool), "mask is empty"),
        (np.where(np.eye(8) > 0, np.nan, 1.0), None, "8 non-finite pixel"),
        (np.zeros((8, 8)), np.full((8, 8), 2), "mask must be boolean"),
        (np.zeros((8, 8), dtype=complex), None, "must be numeric"),
    ],
)
def test_bad_inputs_raise_naming_the_image(img, mask, problem):
    with pytest.raises(ValueError, match=rf"^data/p1/L_CC\.png: .*{problem}"):
        rad.image_features(img, mask, where="data/p1/L_CC.png")


def test_a_0_1_mask_of_any_dtype_is_the_boolean_mask():
    img, mask = noise_image(seed=10), disc(64, 20)
    expected = rad.image_features(img, mask)
    for dtype in (np.uint8, np.int64, np.float64):
        assert rad.image_features(img, mask.astype(dtype)) == expected


def test_a_mask_too_thin_for_texture_raises():
    mask = np.zeros((64, 64), bool)
    mask[:, 10] = True  # one column: no horizontal pairs, no 3x3 interior
    with pytest.raises(ValueError, match=r"glcm_contrast.*sharp_gradient"):
        rad.image_features(noise_image(), mask, where="thin")


# --------------------------------------------------------------------------- tables


def test_feature_table_rows_and_errors():
    imgs = [noise_image(48, seed=s) for s in range(3)]
    masks = [None, disc(48, 20), None]
    table = rad.feature_table(imgs, masks, ["a", "b", "c"])
    assert table.index.name == "image_id" and list(table.index) == ["a", "b", "c"]
    assert tuple(table.columns) == rad.FEATURE_NAMES
    assert table.loc["b"].to_dict() == rad.image_features(imgs[1], masks[1])
    assert rad.feature_table(imgs, None, [1, 2, 3]).shape == (3, 34)
    bad = [imgs[0], np.full((48, 48), 0.5)]
    with pytest.raises(ValueError, match=r"^img-9: non-finite"):
        rad.feature_table(bad, None, ["img-8", "img-9"])
    with pytest.raises(ValueError, match="duplicate image id 'a'"):
        rad.feature_table(imgs, None, ["a", "b", "a"])


def test_feature_table_lengths_must_agree():
    imgs = [noise_image(48, seed=s) for s in range(3)]
    with pytest.raises(ValueError, match="shorter|longer"):
        rad.feature_table(imgs, None, ["a", "b"])
    with pytest.raises(ValueError, match="shorter|longer"):
        rad.feature_table(imgs, [None, None], ["a", "b", "c"])


def test_feature_table_shows_a_progress_bar_only_when_asked(capsys):
    imgs = [noise_image(48, seed=s) for s in range(2)]
    rad.feature_table(imgs, None, ["a", "b"])
    assert capsys.readouterr().err == ""
    rad.feature_table(imgs, None, ["a", "b"], progress=True)
    err = capsys.readouterr().err
    assert "radiomics" in err and "2/2" in err


def _cohort(n_patients: int = 3):
    """Image rows (with an extra ML view to ignore), features and scores per image."""
    rows = []
    for p in range(n_patients):
        for lat, view in [*mh.vocab.FOUR_VIEWS, ("L", "ML")]:
            rows.append(
                {
                    "image_id": f"p{p}_{lat}{view}",
                    "patient_id": f"p{p}",
                    "laterality": lat,
                    "view": view,
                    "age": 50.0 + p,
                }
            )
    images = pd.DataFrame(rows).sample(frac=1.0, random_state=0)  # order must not matter
    rng = np.random.default_rng(9)
    features = pd.DataFrame(
        rng.normal(size=(len(images), 34)),
        index=pd.Index(images["image_id"], name="image_id"),
        columns=list(rad.FEATURE_NAMES),
    )
    scores = {i: float(k) / 10 for k, i in enumerate(images["image_id"])}
    return images, features, scores


def test_patient_vectors_hold_141_columns_in_order():
    images, features, scores = _cohort()
    vec = rad.patient_vectors(features, images, scores)
    assert vec.shape == (3, 141) and vec.index.name == "patient_id"
    assert set(vec.index) == {"p0", "p1", "p2"}
    views = ["L-CC", "L-MLO", "R-CC", "R-MLO"]
    expected = [f"{v}__{n}" for v in views for n in rad.FEATURE_NAMES]
    expected += [f"{v}__cnn_score" for v in views] + ["age"]
    assert list(vec.columns) == expected
    assert vec.at["p1", "R-MLO__glcm_energy"] == features.at["p1_RMLO", "glcm_energy"]
    assert vec.at["p2", "L-CC__int_mean"] == features.at["p2_LCC", "int_mean"]
    assert vec.at["p0", "R-CC__cnn_score"] == scores["p0_RCC"]
    assert vec.at["p2", "age"] == 52.0
    series = rad.patient_vectors(features, images, pd.Series(scores))
    pd.testing.assert_frame_equal(series, vec)


def test_patient_vectors_name_what_is_wrong():
    images, features, scores = _cohort()
    no_view = images[images["image_id"] != "p1_RCC"]
    with pytest.raises(ValueError, match=r"patient 'p1' lacks view\(s\) R-CC"):
        rad.patient_vectors(features, no_view, scores)
    twice = pd.concat([images, images[images["image_id"] == "p2_LMLO"].assign(image_id="x")])
    with pytest.raises(ValueError, match=r"patient 'p2' has 2 images of view L-MLO"):
        rad.patient_vectors(features, twice, scores)
    no_score = {k: v for k, v in scores.items() if k != "p0_LMLO"}
    with pytest.raises(ValueError, match=r"no CNN score for image_id 'p0_LMLO'"):
        rad.patient_vectors(features, images, no_score)
    with pytest.raises(ValueError, match=r"no radiomic features for image_id 'p2_RCC'"):
        rad.patient_vectors(features.drop("p2_RCC"), images, scores)
    ages = images.copy()
    ages.loc[ages["image_id"] == "p1_LCC", "age"] = 70.0
    with pytest.raises(ValueError, match=r"patient 'p1': ages 51.0 .. 70.0"):
        rad.patient_vectors(features, ages, scores)


def test_patient_vectors_of_chosen_views_and_of_a_view_nobody_has():
    images, features, scores = _cohort()
    vec = rad.patient_vectors(features, images, scores, views=[("R", "MLO"), "L-ML"])
    expected = [f"{v}__{n}" for v in ("R-MLO", "L-ML") for n in rad.FEATURE_NAMES]
    assert list(vec.columns) == [*expected, "R-MLO__cnn_score", "L-ML__cnn_score", "age"]
    assert vec.at["p0", "L-ML__glrlm_sre"] == features.at["p0_LML", "glrlm_sre"]
    assert vec.at["p2", "L-ML__cnn_score"] == scores["p2_LML"]
    with pytest.raises(ValueError, match=r"patient 'p\d' lacks view\(s\) R-ML$"):
        rad.patient_vectors(features, images, scores, views=[*mh.vocab.FOUR_VIEWS, ("R", "ML")])


# --------------------------------------------------------------------------- classifier

SMALL_GRID = {
    "pca__n_components": [5],
    "gbm__learning_rate": [0.1],
    "gbm__max_depth": [2],
    "gbm__min_samples_leaf": [3],
    "gbm__n_estimators": [40],
    "gbm__subsample": [0.8],
}


def _pairs(signal: float, n_pairs: int = 30, n_features: int = 20, seed: int = 0):
    """A case and a control per group; the cases' first 5 features shifted by ``signal``."""
    rng = np.random.default_rng(seed)
    y = np.tile([1, 0], n_pairs)
    groups = np.repeat(np.arange(n_pairs), 2)
    X = rng.normal(size=(2 * n_pairs, n_features))
    X[:, :5] += signal * y[:, None]
    cols = [f"f{i}" for i in range(n_features)]
    return pd.DataFrame(X, columns=cols), y, groups


def test_grids_and_pipeline():
    assert rad.PAPER_BEST.keys() == rad.PAPER_GRID.keys() == rad.COARSE_GRID.keys()
    for key, values in rad.PAPER_GRID.items():
        assert rad.PAPER_BEST[key] in values
        assert all(min(values) <= v <= max(values) for v in rad.COARSE_GRID[key])
    pipe = rad.radiomics_pipeline(seed=7).set_params(**rad.PAPER_BEST)
    assert [name for name, _ in pipe.steps] == ["scale", "pca", "gbm"]
    assert pipe.named_steps["pca"].random_state == 7 == pipe.named_steps["gbm"].random_state
    assert pipe.named_steps["gbm"].n_estimators == 200


def test_a_separating_signal_is_found_and_pairs_stay_together():
    X, y, groups = _pairs(signal=3.0)
    search = rad.fit_radiomics(X, y, groups, grid=SMALL_GRID)
    assert search.best_score_ > 0.9
    assert len(search.cv) == 5
    for train, test in search.cv:
        assert not set(groups[train]) & set(groups[test])
        assert set(y[test]) == {0, 1}
    assert search.predict_proba(X).shape == (60, 2)


def test_noise_scores_near_chance_and_runs_are_deterministic():
    X, y, groups = _pairs(signal=0.0, seed=1)
    grid = {**SMALL_GRID, "gbm__learning_rate": [0.05, 0.2]}
    first = rad.fit_radiomics(X, y, groups, grid=grid, seed=3)
    assert abs(first.best_score_ - 0.5) < 0.25
    again = rad.fit_radiomics(X, y, groups, grid=grid, seed=3)
    assert again.best_params_ == first.best_params_ and again.best_score_ == first.best_score_
    np.testing.assert_array_equal(
        again.cv_results_["mean_test_score"], first.cv_results_["mean_test_score"]
    )


def test_the_default_grid_runs_and_clips_pca_to_the_feature_count():
    X, y, groups = _pairs(signal=2.0, n_features=12)
    with pytest.warns(UserWarning, match=r"pca__n_components \[20\] .* clipped to 12"):
        search = rad.fit_radiomics(X, y, groups, n_splits=3)
    assert search.param_grid["pca__n_components"] == [10, 12]
    assert len(search.cv_results_["params"]) == 8


def test_pca_is_clipped_to_the_smallest_training_fold():
    X, y, groups = _pairs(signal=2.0, n_pairs=6, n_features=30)
    grid = {**SMALL_GRID, "pca__n_components": [4, 9, 25]}
    with pytest.warns(UserWarning, match="clipped to 8"):
        search = rad.fit_radiomics(X, y, groups, grid=grid, n_splits=3)
    limit = min(len(train) for train, _ in search.cv)
    assert limit == 8 and search.param_grid["pca__n_components"] == [4, 8]


def test_a_dask_cluster_runs_the_grid_search_with_the_serial_result():
    """A Dask cluster (2 one-thread workers; DASK_SCHEDULER can be 'local', an address or a
    client) runs the grid's fits through joblib's Dask backend: the same scores, best
    setting and refitted model as serially."""
    from distributed import Client, LocalCluster, get_task_stream

    X, y, groups = _pairs(signal=1.0, seed=2)
    grid = {**SMALL_GRID, "gbm__learning_rate": [0.05, 0.2]}
    serial = rad.fit_radiomics(X, y, groups, grid=grid, seed=3)
    cluster = LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    )
    with cluster, Client(cluster) as client, get_task_stream(client) as stream:
        local = rad.fit_radiomics(X, y, groups, grid=grid, seed=3, scheduler=client)
    n_fits = len(serial.cv_results_["params"]) * len(serial.cv)
    assert len(stream.data) >= n_fits  # the fits ran as dask tasks
    np.testing.assert_array_equal(
        local.cv_results_["mean_test_score"], serial.cv_results_["mean_test_score"]
    )
    assert local.best_params_ == serial.best_params_
    np.testing.assert_array_equal(local.predict_proba(X), serial.predict_proba(X))
    with pytest.raises(ValueError, match="DASK_SCHEDULER must be"):
        rad.fit_radiomics(X, y, groups, grid=grid, scheduler="tcp:/typo")


def test_fit_radiomics_rejects_bad_inputs():
    X, y, groups = _pairs(signal=1.0)
    bad = X.copy()
    bad.iloc[7, 3] = np.nan
    with pytest.raises(ValueError, match=re.escape("column 'f3' at row 7")):
        rad.fit_radiomics(bad, y, groups, grid=SMALL_GRID)
    with pytest.raises(ValueError, match="both classes"):
        rad.fit_radiomics(X, np.ones_like(y), groups, grid=SMALL_GRID)
    with pytest.raises(ValueError, match="binary 0/1"):
        rad.fit_radiomics(X, y * 2, groups, grid=SMALL_GRID)
    with pytest.raises(ValueError, match="fewer than n_splits=5"):
        rad.fit_radiomics(X, y, groups % 4, grid=SMALL_GRID)
    with pytest.raises(ValueError, match="y 59"):
        rad.fit_radiomics(X, y[:-1], groups, grid=SMALL_GRID)
