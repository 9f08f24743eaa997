"""mammo_helpers.xai.relax: streamed correlations against numpy for any batch split, the
engine against the authors' per-window loop on identical masks, RELAX against relax-xai on
identical masks, and models whose correlations are known in advance."""

import numpy as np
import pytest
import torch
from torch import nn

import mammo_helpers as mh

relax = mh.xai.relax


class TinyNet(nn.Module):
    """Features (B, 32) from a conv layer, logits for three labels."""

    labels = ("No Finding", "mass", "calcification")

    def __init__(self, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten()
        )
        self.head = nn.Linear(32, 3)

    def forward(self, x):
        h = self.features(x)
        return h, self.head(h)


class Brightness(nn.Module):
    """Known answers: features (mean intensity, 1); label 0 rises with the mean, label 1
    falls with it, label 2 is constant (its correlation is undefined)."""

    labels = ("up", "down", "flat")

    def forward(self, x):
        a = x.mean(dim=(1, 2, 3))
        feats = torch.stack([a, torch.ones_like(a)], 1)
        logits = torch.stack([4 * a, -4 * a, torch.zeros_like(a)], 1)
        return feats, logits


def _windows(n=4, w=16, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, w, w, generator=gen)


@pytest.mark.parametrize(
    "n, cells, p, window, match",
    [(2, 4, 0.5, 16, "N_MASKS"), (10, 4, 0.0, 16, "MASK_P"), (10, 4, 1.0, 16, "MASK_P")]
    + [(10, 5, 0.5, 16, "multiple of MASK_CELLS"), (10, 0, 0.5, 16, "MASK_CELLS")],
)
def test_bad_mask_settings_are_named(n, cells, p, window, match):
    with pytest.raises(ValueError, match=match):
        relax.MaskBank(n, cells, p, window)


def test_mask_bank_is_seeded_and_masks_cells_with_probability_p():
    bank = relax.MaskBank(4000, 8, 0.3, 16, seed=3)
    assert np.array_equal(bank.grids, relax.MaskBank(4000, 8, 0.3, 16, seed=3).grids)
    assert not np.array_equal(bank.grids, relax.MaskBank(4000, 8, 0.3, 16, seed=4).grids)
    assert bank.grids.mean() == pytest.approx(0.7, abs=0.005)  # kept = 1 - p
    masks = bank.masks(0, 5)
    assert masks.shape == (5, 1, 16, 16) and masks.min() >= 0 and masks.max() <= 1
    # a window as large as the grid: the masks are the grids themselves
    same = relax.MaskBank(6, 8, 0.5, 8, seed=1)
    assert np.array_equal(same.masks().numpy()[:, 0], same.grids)
    # a prefix of a bank is the smaller bank of the same seed (nested subsets, Fig. 7)
    assert np.array_equal(relax.MaskBank(50, 8, 0.3, 16, seed=3).grids, bank.grids[:50])


def _moments(x, y):
    return np.array([x.sum(), y.sum(), (x * x).sum(), (y * y).sum(), (x * y).sum()])


@pytest.mark.parametrize("seed", range(5))
def test_streamed_r_equals_numpy_for_any_split(seed):
    rng = np.random.default_rng(seed)
    x = 0.99 + 1e-3 * rng.normal(size=300)  # cosines near 1: the hard case for sums
    y = 0.5 * x + 1e-3 * rng.normal(size=300)
    cuts = np.sort(rng.choice(np.arange(1, 300), size=rng.integers(1, 20), replace=False))
    parts = np.split(np.arange(300), cuts)
    moments = sum(_moments(x[i] - 1, y[i] - 1) for i in parts)
    r, undefined = relax.correlate_sums(300, moments)
    assert not undefined
    assert r == pytest.approx(np.corrcoef(x, y)[0, 1], abs=1e-9)


def test_constant_input_gives_an_undefined_r_of_zero():
    x = np.linspace(0, 1, 50)
    r, undefined = relax.correlate_sums(50, _moments(x, np.zeros(50)))
    assert r == 0 and undefined
    r, undefined = relax.correlate_sums(2, _moments(x[:2], x[:2]))
    assert r == 0 and undefined  # fewer than three samples


@pytest.mark.parametrize("batch_size", [7, 64, 1000])
def test_engine_matches_the_authors_loop_on_identical_masks(batch_size):
    model, windows = TinyNet(), _windows()
    bank = relax.MaskBank(300, 4, 0.5, 16, seed=1)
    result = relax.correlax(model, windows, bank, batch_size=batch_size)
    r_dist, r_label = relax.correlax_loop(model, windows, bank, mask_batch=128)
    assert np.abs(result.r_dist - r_dist).max() <= 1e-5
    assert np.abs(result.r_label - r_label).max() <= 1e-5
    assert result.n_masks.tolist() == [300] * 4
    assert np.abs(result.r_label).max() > 0.1  # not trivially zero
    with torch.inference_mode():
        expected = torch.sigmoid(model(windows)[1]).numpy()
    assert np.allclose(result.prediction, expected, atol=1e-6)


def test_known_answers_sign_and_undefined_labels():
    bank = relax.MaskBank(200, 4, 0.5, 16, seed=2)
    windows = 0.2 + 0.8 * _windows(3)
    result = relax.correlax(Brightness(), windows, bank)
    # masking lowers the mean, which lowers S_h = cos((a_M, 1), (a, 1)) monotonically
    assert (result.r_label[:, 0] > 0.95).all() and (result.r_label[:, 1] < -0.95).all()
    assert (result.r_label[:, 2] == 0).all() and result.undefined_label[:, 2].all()
    assert not result.undefined_label[:, :2].any()


def test_nested_blocks_equal_a_smaller_bank():
    model, windows = TinyNet(), _windows(3)
    big = relax.correlax(model, windows, relax.MaskBank(256, 4, 0.5, 16, seed=5), batch_size=64)
    assert big.block_count.shape == (3, 4)
    small = relax.correlax(model, windows, relax.MaskBank(128, 4, 0.5, 16, seed=5))
    r_dist, r_label = big.r_from_blocks([0, 1])
    assert np.allclose(r_dist, small.r_dist, atol=1e-9)
    assert np.allclose(r_label, small.r_label, atol=1e-9)
    r_all, _ = big.r_from_blocks(range(4))
    assert np.allclose(r_all, big.r_dist)


def test_relax_maps_equal_relax_xai_on_identical_masks(monkeypatch):
    import relax_xai.relax as reference

    model, window = TinyNet(), _windows(1)
    bank = relax.MaskBank(200, 4, 0.5, 16, seed=7)
    ours = relax.correlax(model, window, bank, relax=True, batch_size=50)

    def our_masks(batch_size, shape, device, **kwargs):
        our_masks.start += batch_size
        yield bank.masks(our_masks.start - batch_size, our_masks.start)

    our_masks.start = 0
    monkeypatch.setattr(reference, "mask_generator", our_masks)

    class Encoder(nn.Module):
        def forward(self, x):
            return model(x)[0]

    with torch.inference_mode():
        theirs = reference.RELAX(window, Encoder(), batch_size=50, num_batches=4)
        theirs.forward()
    assert np.allclose(ours.importance[0], theirs.importance.numpy(), atol=1e-5)
    variance = (theirs.uncertainty / theirs.sum_of_weights).numpy()
    assert np.allclose(ours.uncertainty[0], variance, atol=1e-6)
    assert ours.uncertainty[0].max() > 1e-5


def test_tolerance_stops_stable_windows_early():
    model, windows = TinyNet(), _windows(4)
    bank = relax.MaskBank(1024, 4, 0.5, 16, seed=1)
    full = relax.correlax(model, windows, bank, batch_size=128)
    early = relax.correlax(model, windows, bank, batch_size=128, tolerance=0.05, min_masks=256)
    assert (early.n_masks >= 256).all() and (early.n_masks < 1024).any()
    assert np.abs(early.r_label - full.r_label).max() < 0.15


def test_bad_models_and_windows_are_refused():
    bank = relax.MaskBank(10, 4, 0.5, 16)

    class LogitsOnly(nn.Module):
        def forward(self, x):
            return x.mean((2, 3))

    with pytest.raises(ValueError, match=r"\(features, logits\)"):
        relax.correlax(LogitsOnly(), _windows(1), bank)

    class Flat(nn.Module):
        def forward(self, x):
            return x.mean((1, 2, 3)), x.mean((2, 3))

    with pytest.raises(ValueError, match=r"features shaped \(batch, D"):
        relax.correlax(Flat(), _windows(1), bank)
    with pytest.raises(ValueError, match="windows must be shaped"):
        relax.correlax(TinyNet(), _windows(1, w=8), bank)
    with pytest.raises(ValueError, match="2 labels for a model with 3 outputs"):
        relax.correlax(TinyNet(), _windows(1), bank, labels=("a", "b"))


def test_explain_roi_equals_the_engine_on_the_extracted_windows():
    rng = np.random.default_rng(0)
    roi = rng.random((30, 22, 3)).astype(np.float32)
    mask = np.zeros((30, 22), bool)
    mask[5:25, :12] = True
    grid = mh.xai.windows.window_grid(mask, 16, 8)
    bank = relax.MaskBank(30, 4, 0.5, 16, seed=0)
    model = TinyNet()
    result = relax.explain_roi(model, roi, grid, bank, window_chunk=2, batch_size=16)
    padded = mh.xai.windows.pad_roi(roi, 16)
    windows = torch.from_numpy(np.moveaxis(mh.xai.windows.extract_windows(padded, grid), -1, 1))
    direct = relax.correlax(model, windows.contiguous(), bank)
    assert result.r_label.shape == (grid.n_windows, 3)
    assert np.allclose(result.r_label, direct.r_label, atol=1e-6)
    with pytest.raises(ValueError, match="grid windows are 16 px but the masks 8 px"):
        relax.explain_roi(model, roi, grid, relax.MaskBank(30, 4, 0.5, 8))


def test_image_maps_stitch_the_engines_windows_and_run_as_tasks(tmp_path):
    rng = np.random.default_rng(1)
    roi = rng.random((30, 22, 3)).astype(np.float32)
    mask = np.zeros((30, 22), bool)
    mask[5:25, :12] = True
    bank, model = relax.MaskBank(30, 4, 0.5, 16, seed=0), TinyNet()
    maps = relax.image_maps((roi, mask, "img"), model=model, bank=bank, stride=8, relax=True)
    grid = mh.xai.windows.window_grid(mask, 16, 8)
    result = relax.explain_roi(model, roi, grid, bank, relax=True)
    assert maps["n_windows"] == grid.n_windows
    assert np.array_equal(maps["corr"], mh.xai.windows.maps_from_windows(result.r_label, grid))
    assert np.array_equal(maps["dist"], mh.xai.windows.maps_from_windows(result.r_dist, grid))
    assert np.array_equal(maps["product"], maps["pred"] * maps["corr"])
    assert np.array_equal(maps["relax"], mh.xai.windows.stitch(result.importance, grid))
    assert maps["pred"].shape == (3, 30, 22)
    store = mh.tasks.TaskStore(tmp_path)
    shared = {"model": model, "bank": bank, "stride": 8, "relax": True}
    again = mh.tasks.run_tasks(
        relax.image_maps, {"img": (roi, mask, "img")}, store=store, method="correlax",
        settings={"stride": 8}, model_hash=mh.cache.weights_digest(model),
        scheduler="serial", shared=shared, progress=False,
    )  # fmt: skip
    assert np.allclose(again["img"]["corr"], maps["corr"], atol=1e-6)


def test_mask_samples_give_back_the_engines_correlations():
    model, windows = TinyNet(), _windows(1)
    bank = relax.MaskBank(100, 4, 0.5, 16, seed=3)
    values = relax.mask_samples(model, windows[0], bank, batch_size=30)
    assert values["s_h"].shape == (100,) and values["y_m"].shape == (100, 3)
    result = relax.correlax(model, windows, bank)
    assert np.corrcoef(values["s_h"], values["s_y"])[0, 1] == pytest.approx(
        result.r_dist[0], abs=1e-5
    )
    r_mass = np.corrcoef(values["s_h"], values["y_m"][:, 1])[0, 1]
    assert r_mass == pytest.approx(result.r_label[0, 1], abs=1e-5)  # other batches
    with torch.inference_mode():
        h, logits = model(windows[:1] * bank.masks(0, 1))
        h0, _ = model(windows[:1])
    expected = torch.nn.functional.cosine_similarity(h, h0).item()
    assert values["s_h"][0] == pytest.approx(expected, abs=1e-6)
    assert values["y_m"][0] == pytest.approx(torch.sigmoid(logits)[0].numpy(), abs=1e-6)


def test_mask_sensitivity_nested_halves_and_theory():
    model, windows = TinyNet(), _windows(6)
    result = relax.correlax(model, windows, relax.MaskBank(512, 4, 0.5, 16, seed=9), batch_size=64)
    out = relax.mask_sensitivity(result, [64, 256, 512])
    assert np.allclose(out["nested"][512], 0)  # the reference itself
    first, _ = result.r_from_blocks(range(1))
    assert np.allclose(out["nested"][64], np.abs(first - result.r_dist))
    r_a, _ = result.r_from_blocks(range(4))
    r_b, _ = result.r_from_blocks(range(4, 8))
    assert np.allclose(out["independent"][256], np.abs(r_a - r_b) / np.sqrt(2))
    assert 512 not in out["independent"]  # no second set of 512 masks
    expected = np.mean(np.sqrt(2 / np.pi) * (1 - result.r_dist**2) / np.sqrt(64))
    assert out["theory"][64] == pytest.approx(expected)
    # the theory is the right size: the independent error of 64 masks is of its order
    assert 0.2 < np.mean(out["independent"][64]) / out["theory"][64] < 5
    with pytest.raises(ValueError, match="not a multiple of the block"):
        relax.mask_sensitivity(result, [100])


def _bilinear_reference(grid, out_h, out_w):
    """Bilinear upsampling with half-pixel centres (align_corners=False), one output pixel
    at a time: the reference for non-square masks."""
    in_h, in_w = grid.shape

    def taps(i, n_in, n_out):
        src = max((i + 0.5) * n_in / n_out - 0.5, 0.0)
        lo = min(int(np.floor(src)), n_in - 1)
        hi = min(lo + 1, n_in - 1)
        return lo, hi, src - lo

    out = np.zeros((out_h, out_w))
    for y in range(out_h):
        y0, y1, fy = taps(y, in_h, out_h)
        for x in range(out_w):
            x0, x1, fx = taps(x, in_w, out_w)
            top = (1 - fx) * grid[y0, x0] + fx * grid[y0, x1]
            bottom = (1 - fx) * grid[y1, x0] + fx * grid[y1, x1]
            out[y, x] = (1 - fy) * top + fy * bottom
    return out


def test_rectangular_bank_upsamples_each_side_to_its_length():
    bank = relax.MaskBank(5, 8, 0.5, (16, 8), seed=4)
    masks = bank.masks().numpy()
    assert masks.shape == (5, 1, 16, 8) and bank.hw == (16, 8)
    for grid, mask in zip(bank.grids, masks[:, 0], strict=True):
        assert np.allclose(mask, _bilinear_reference(grid, 16, 8), atol=1e-6)
    # the width equals the cells: each column is the grid's column stretched over 16 rows
    # (rows 2i + 1 and 2i + 2 mix cells i and i + 1 with weights 3/4, 1/4 and 1/4, 3/4)
    assert np.array_equal(masks[:, 0, 0], bank.grids[:, 0])
    assert np.allclose(masks[:, 0, 1], 0.75 * bank.grids[:, 0] + 0.25 * bank.grids[:, 1])
    # the same grids as a square bank of the seed; an int and the pair give identical masks
    square = relax.MaskBank(5, 8, 0.5, 16, seed=4)
    assert np.array_equal(square.grids, bank.grids)
    pair = relax.MaskBank(5, 8, 0.5, [16, 16], seed=4)
    assert pair.window == (16, 16) and torch.equal(pair.masks(), square.masks())


def _naive_relax(model, window, masks):
    """RELAX of one window (C, h, w) by its definition, one mask at a time: importance =
    sum_k M_k S_h,k / sum_k M_k with S_h,k = cos(h, h_Mk) in float64."""
    with torch.inference_mode():
        h = model(window[None])[0].double().numpy().ravel()
        numerator = np.zeros(masks.shape[-2:])
        denominator = np.zeros(masks.shape[-2:])
        for mask in masks[:, 0]:
            h_m = model(window[None] * mask)[0].double().numpy().ravel()
            s_h = h @ h_m / (np.linalg.norm(h) * np.linalg.norm(h_m))
            numerator += mask.double().numpy() * s_h
            denominator += mask.double().numpy()
    return numerator / denominator


def test_relax_on_non_square_windows_equals_the_definition():
    model = TinyNet()
    gen = torch.Generator().manual_seed(1)
    windows = torch.rand(2, 3, 16, 8, generator=gen)
    bank = relax.MaskBank(60, 4, 0.5, (16, 8), seed=2)
    result = relax.correlax(model, windows, bank, relax=True, batch_size=25)
    assert result.importance.shape == (2, 16, 8) and result.uncertainty.shape == (2, 16, 8)
    for i in range(2):
        expected = _naive_relax(model, windows[i], bank.masks())
        assert np.allclose(result.importance[i], expected, atol=1e-6)
    assert np.ptp(result.importance) > 1e-4  # not a constant map
    # the correlations on a non-square window agree with the authors' loop as well
    r_dist, r_label = relax.correlax_loop(model, windows, bank, mask_batch=32)
    assert np.abs(result.r_label - r_label).max() <= 1e-5
    assert np.abs(result.r_dist - r_dist).max() <= 1e-5


@pytest.mark.parametrize(
    "window, match",
    [((16, 10), r"WINDOW \(16, 10\) must be a multiple of MASK_CELLS \(4\)")]
    + [((16, 0), "WINDOW must be a positive integer"), ((16, 8, 8), "WINDOW must be")],
)
def test_bad_rectangular_windows_are_named(window, match):
    with pytest.raises(ValueError, match=match):
        relax.MaskBank(10, 4, 0.5, window)


def test_windows_must_match_a_rectangular_bank():
    bank = relax.MaskBank(10, 4, 0.5, (16, 8))
    with pytest.raises(ValueError, match=r"windows must be shaped \(W, C, 16, 8\)"):
        relax.correlax(TinyNet(), torch.rand(1, 3, 8, 16), bank)
