"""mammo_helpers.xai.attribution: every method against a linear model whose attributions are
known (w * x), forward counts against captum's analytic counts, superpixels, RELAX against its definition on a
non-square image, CorRELAX in context against a per-mask loop and a model whose answer is
known, and bad inputs."""

import contextlib
import json
import math

import numpy as np
import pytest
import torch
from torch import nn

import mammo_helpers as mh

attribution = mh.xai.attribution
C, H, W = 3, 8, 8
# four 4 x 4 quadrants: the segments of the surrogate methods
SEGMENTS = np.zeros((H, W), int)
SEGMENTS[:4, 4:], SEGMENTS[4:, :4], SEGMENTS[4:, 4:] = 1, 2, 3
SEGMENT_SUMS = np.array([4.0, 2.0, -1.0, -3.0])


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """One torch thread for these tiny models (restored after): on a loaded 2-core machine
    two OpenMP threads made a ResNet-18 forward of a 32 px image 440 ms instead of 6 ms."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class Linear(nn.Module):
    """logits = [0, sum(w * x)]: every attribution of class 1 is known in closed form."""

    def __init__(self, w):
        super().__init__()
        self.fc = nn.Linear(w.size, 2, bias=False)
        row = torch.from_numpy(np.asarray(w, np.float32).ravel())
        with torch.no_grad():
            self.fc.weight.copy_(torch.stack([torch.zeros_like(row), row]))

    def forward(self, x):
        return self.fc(x.flatten(1))


@pytest.fixture(scope="module")
def linear():
    """The model, the image (C, H, W) and w * x summed over channels; w makes the segments'
    sums of w * x about SEGMENT_SUMS (well apart, for LIME's ranking)."""
    rng = np.random.default_rng(0)
    x = rng.uniform(0.5, 1.0, (C, H, W)).astype(np.float32)
    w = SEGMENT_SUMS[SEGMENTS][None] / (C * 16) / x + 0.01 * rng.normal(size=(C, H, W))
    return Linear(w).eval(), x, (w * x).sum(0), np.abs(w).sum(0)


@contextlib.contextmanager
def _seeded(seed):
    """Torch's global generator seeded inside the block and restored after."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


class PairNet(nn.Module):
    """A tiny CNN returning (features (B, 16), logits (B, 2)), like CropClassifier."""

    def __init__(self, seed=0, act=nn.ReLU):
        super().__init__()
        with _seeded(seed):
            self.body = nn.Sequential(
                nn.Conv2d(3, 8, 3, padding=1),
                act(),
                nn.Conv2d(8, 16, 3, padding=1),
                act(),
                nn.AdaptiveAvgPool2d(2),
                nn.Flatten(),
            )
            self.head = nn.Linear(64, 2)

    def forward(self, x):
        h = self.body(x)
        return h, self.head(h)


def _image(h=32, w=16, seed=0):
    """A smooth 3-channel image (C, h, w) with a little noise, as a float tensor."""
    gen = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    base = torch.sin(6 * yy) * torch.cos(5 * xx) + 0.5 * yy
    return torch.stack([base, base.flip(0), base.flip(1)]) + 0.05 * torch.rand(
        3, h, w, generator=gen
    )


# ---------------------------------------------------------------- the registry


def test_registry_order_and_paper_defaults():
    assert attribution.PAPER_METHODS == (
        "saliency",
        "integrated_gradients",
        "occlusion",
        "guided_gradcam",
        "lime",
        "kernel_shap",
        "deeplift",
    )
    assert attribution.METHODS[7:] == ("gradcam", "relax", "correlax")
    assert set(attribution.DEFAULTS) == set(attribution.METHODS)
    d = attribution.DEFAULTS
    assert d["integrated_gradients"]["n_steps"] == 200 and d["saliency"] == {"abs": True}
    assert d["lime"]["n_samples"] == d["kernel_shap"]["n_samples"] == 200
    assert d["lime"]["n_segments"] == 150
    assert attribution.paper_occlusion(1024) == (60, 30)
    assert attribution.paper_occlusion(512) == (30, 15)
    assert attribution.paper_occlusion(16) == (1, 1)  # round(0.47) = 0 -> at least 1


# ---------------------------------------------------------------- the linear model


def test_gradient_methods_on_a_linear_model(linear):
    model, x, wx, abs_w = linear
    for method in ("integrated_gradients", "deeplift"):
        e = attribution.explain(method, model, x, 1)
        assert e.map.dtype == np.float64 and e.map.shape == (H, W)
        assert np.allclose(e.map, wx, atol=1e-5), method
        assert e.info["completeness_gap"] < 1e-3
        assert e.info["output_gain"] == pytest.approx(wx.sum(), rel=1e-5)
    saliency = attribution.explain("saliency", model, torch.from_numpy(x)[None], 1)
    assert np.allclose(saliency.map, abs_w, atol=1e-6) and saliency.forwards == 1


def test_occlusion_one_pixel_window_gives_w_times_x(linear):
    model, x, wx, _ = linear
    e = attribution.explain("occlusion", model, x, 1, window=1, stride=1)
    # every channel of a pixel carries f(x) - f(x without the pixel): the map is that value
    assert np.allclose(e.map, wx, atol=1e-5)
    assert e.forwards == attribution.occlusion_forwards((H, W), 1, 1) == H * W + 1
    assert e.params == {"window": [1, 1], "stride": [1, 1], "perturbations_per_eval": 64}


def test_kernel_shap_gives_each_segment_its_sum_and_lime_ranks_them(linear):
    model, x, wx, _ = linear
    sums = np.array([wx[SEGMENTS == s].sum() for s in range(4)])
    shap = attribution.explain("kernel_shap", model, x, 1, segments=SEGMENTS)
    assert np.allclose(shap.map, sums[SEGMENTS], atol=1e-4)
    assert shap.forwards == 200 and shap.info == {"segments": 4, "all_zero": False}
    lime = attribution.explain("lime", model, x, 1, segments=SEGMENTS, n_samples=300)
    values = np.array([lime.map[SEGMENTS == s][0] for s in range(4)])
    assert (lime.map == values[SEGMENTS]).all()  # one value per segment
    assert np.argsort(values).tolist() == np.argsort(sums).tolist()
    assert np.allclose(values, sums, atol=0.2)  # Lasso shrinks a little
    assert lime.forwards == 300


def test_surrogates_relabel_segments_seed_and_count_all_zero_maps(linear):
    model, x, _, _ = linear
    first = attribution.explain("lime", model, x, 1, segments=SEGMENTS, n_samples=60)
    again = attribution.explain("lime", model, x, 1, segments=3 + 4 * SEGMENTS, n_samples=60)
    assert np.array_equal(first.map, again.map) and again.info["segments"] == 4
    other = attribution.explain("lime", model, x, 1, segments=SEGMENTS, n_samples=60, seed=1)
    assert not np.array_equal(first.map, other.map)
    assert first.params["segments"] == "given" and first.params["n_segments"] is None
    # class 0's logit is constant: LIME's Lasso zeroes every segment, which is counted
    flat = attribution.explain("lime", model, x, 0, segments=SEGMENTS, n_samples=60)
    assert flat.info["all_zero"] and not flat.map.any()
    with pytest.raises(ValueError, match=r"segments must be shaped like the image \(8, 8\)"):
        attribution.explain("lime", model, x, 1, segments=SEGMENTS[:4])


# ---------------------------------------------------------------- forward counts


def _positions(d, w, s):
    """Window starts 0, s, 2s, ... until one reaches the end (captum's count), by a loop."""
    k = 1
    while (k - 1) * s < d - w:
        k += 1
    return k


@pytest.mark.parametrize(
    "hw, window, stride",
    [((8, 8), (3, 3), (2, 2)), ((13, 9), (4, 3), (3, 2)), ((16, 16), (5, 5), (5, 5))]
    + [((12, 10), (12, 10), (1, 1)), ((11, 7), (2, 1), (1, 1))],
)
def test_occlusion_forwards_equal_the_analytic_count(hw, window, stride):
    expected = math.prod(_positions(*t) for t in zip(hw, window, stride, strict=True)) + 1
    assert attribution.occlusion_forwards(hw, window, stride) == expected
    model = Linear(np.ones((1, *hw)))
    x = np.random.default_rng(1).random((1, *hw)).astype(np.float32)
    e = attribution.explain("occlusion", model.eval(), x, 1, window=window, stride=stride)
    assert e.forwards == expected
    assert e.params["window"] == list(window) and e.params["stride"] == list(stride)


def test_integrated_gradients_forwards_equal_n_steps(linear):
    model, x, _, _ = linear
    e = attribution.explain("integrated_gradients", model, x, 1)
    assert e.forwards == 200
    e = attribution.explain("integrated_gradients", model, x, 1, n_steps=37, internal_batch_size=8)
    assert e.forwards == 37 and e.params["internal_batch_size"] == 8


def test_every_method_on_a_pair_model_counts_times_and_records_json_params():
    model, x = PairNet().eval(), _image()
    options = {
        "occlusion": {"window": 4, "stride": 3},
        "lime": {"n_segments": 20, "n_samples": 50},
        "kernel_shap": {"n_segments": 20, "n_samples": 50},
        "relax": {"n_masks": 20},
        "correlax": {"window": 8, "stride": 8, "n_masks": 10, "cells": 4},
    }
    expected = {
        "saliency": 1,
        "integrated_gradients": 200,
        "occlusion": attribution.occlusion_forwards((32, 16), 4, 3),
        "guided_gradcam": 2,
        "lime": 50,
        "kernel_shap": 50,
        "deeplift": 2,
        "gradcam": 1,
        "relax": 1 + 20,
        "correlax": (32 // 8) * (16 // 8) * (1 + 10),
    }
    for method in attribution.METHODS:
        e = attribution.explain(method, model, x, 1, **options.get(method, {}))
        assert e.method == method and e.map.shape == (32, 16) and e.map.dtype == np.float64
        assert np.isfinite(e.map).all() and e.seconds > 0
        assert e.forwards == expected[method], method
        assert set(e.params) == set(attribution.DEFAULTS[method])
        json.dumps(e.params)
    assert not model._forward_hooks  # count_forwards removed its hook


def test_explain_image_is_each_method_on_its_image_with_superpixels_of_the_grey():
    model = PairNet(seed=1).eval()
    x = _image(seed=3)
    grey = x.mean(0).numpy()
    params = {"occlusion": {"window": 8, "stride": 4}, "lime": {"n_samples": 60}}
    methods = ["saliency", "occlusion", "lime"]
    out = attribution.explain_image(
        (x.numpy(), grey), model=model, methods=methods, params=params, n_segments=6
    )
    assert list(out) == methods
    segments = attribution.superpixels(grey, 6)
    for method in methods:
        extra = {"segments": segments} if method == "lime" else {}
        direct = attribution.explain(method, model, x, 1, **params.get(method, {}), **extra)
        got, seconds, forwards, info = out[method]
        assert got.dtype == np.float32 and seconds > 0
        assert np.allclose(got, direct.map, atol=1e-6) and forwards == direct.forwards
        assert all(isinstance(v, bool | int | float) for v in info.values())
    assert attribution.SUPERPIXEL_METHODS == ("lime", "kernel_shap")


def test_count_forwards_sums_batch_sizes_and_removes_its_hook():
    model = PairNet().eval()
    with pytest.raises(RuntimeError), attribution.count_forwards(model) as counter:
        model(torch.zeros(5, 3, 8, 8))
        model(torch.zeros(2, 3, 8, 8))
        raise RuntimeError("boom")
    assert counter.n == 7 and not model._forward_hooks


# ---------------------------------------------------------------- IG on a CNN, DeepLIFT's ReLUs


def test_completeness_gap_is_small_on_a_tiny_cnn():
    model = mh.models.classifiers.LogitsOnly(PairNet(seed=3)).eval()
    e = attribution.explain("integrated_gradients", model, _image(16, 16), 0)
    assert abs(e.info["output_gain"]) > 1e-3 and e.info["completeness_gap"] < 0.02
    # the gap is the definition's, from the map's total and two forwards
    with torch.no_grad():
        gain = (model(_image(16, 16)[None]) - model(torch.zeros(1, 3, 16, 16)))[0, 0].item()
    assert e.info["completeness_gap"] == pytest.approx(
        abs(e.map.sum() - gain) / abs(gain), abs=1e-5
    )


# ---------------------------------------------------------------- superpixels


def test_superpixels_are_contiguous_labels_from_zero():
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(0)
    image = gaussian_filter(rng.random((64, 48)), 3)  # smooth blobs, like tissue
    labels = attribution.superpixels(image, n_segments=30)
    assert labels.shape == (64, 48) and labels.dtype.kind == "i"
    assert np.array_equal(np.unique(labels), np.arange(labels.max() + 1))
    assert labels.max() + 1 >= 2
    assert np.array_equal(labels, attribution.superpixels(image, n_segments=30))  # no seed
    assert attribution.superpixels(image).max() + 1 > labels.max() + 1  # 150 by default


def test_superpixels_refuse_what_they_cannot_segment():
    with pytest.raises(ValueError, match="constant"):
        attribution.superpixels(np.full((16, 16), 0.3))
    with pytest.raises(ValueError, match="n_segments must be an integer >= 2, got 1"):
        attribution.superpixels(np.eye(16), n_segments=1)
    with pytest.raises(ValueError, match=r"grey \(H, W\)"):
        attribution.superpixels(np.zeros((3, 16, 16)))
    # pure noise at compactness 0.1: SLIC's connectivity step merges everything
    noise = np.random.default_rng(0).random((32, 16))
    with pytest.raises(ValueError, match="SLIC gave 1 segment for n_segments=10"):
        attribution.superpixels(noise, n_segments=10)


# ---------------------------------------------------------------- Grad-CAM family


def test_gradcam_is_the_project_helper_and_guided_gradcam_warns_on_other_activations():
    model, x = PairNet().eval(), _image()
    view = mh.models.classifiers.LogitsOnly(model).eval()
    e = attribution.explain("gradcam", model, x, 1)
    expected = mh.xai.gradcam.gradcam(view, x[None].numpy(), model.body[2], [1])[0]
    assert np.allclose(e.map, expected) and e.params == {"layer": "body.2"}
    by_name = attribution.explain("guided_gradcam", model, x, 1, layer="body.0")
    assert by_name.params == {"layer": "body.0"} and by_name.forwards == 2
    with pytest.raises(ValueError, match="not a module of the model"):
        attribution.explain("guided_gradcam", model, x, 1, layer=nn.Conv2d(3, 3, 1))
    with pytest.raises(ValueError, match="no layer named 'body.9'"):
        attribution.explain("gradcam", model, x, 1, layer="body.9")
    with pytest.warns(UserWarning, match="SiLU pass the plain gradient"):
        attribution.explain("guided_gradcam", PairNet(act=nn.SiLU).eval(), x, 1)


# ---------------------------------------------------------------- RELAX and CorRELAX


def test_relax_on_a_non_square_image_equals_its_definition():
    model, x = PairNet().eval(), _image(32, 16)
    e = attribution.explain("relax", model, x, 0, n_masks=24, cells=8, seed=3)
    assert e.forwards == 25 and e.info["uncertainty"].shape == (32, 16)
    masks = mh.xai.relax.MaskBank(24, 8, 0.5, (32, 16), seed=3).masks()[:, 0].double()
    with torch.no_grad():
        h = model(x[None])[0].double()
        s_h = [
            torch.nn.functional.cosine_similarity(h, model(x[None] * m.float())[0].double())
            for m in masks
        ]
    expected = sum(m * s for m, s in zip(masks, s_h, strict=True)) / masks.sum(0)
    assert np.allclose(e.map, expected.numpy(), atol=1e-6)
    with pytest.raises(ValueError, match=r"height and width \(32, 16\) must be multiples"):
        attribution.explain("relax", model, x, 0, cells=6)


class Echo(nn.Module):
    """Returns the images it is given as features (and two zero logits)."""

    def forward(self, x):
        return x.flatten(1), torch.zeros(len(x), 2)


def test_in_context_pastes_the_window_and_gives_the_softmax_probability():
    image = _image(16, 16)[None]
    windows = torch.rand(2, 3, 8, 8)
    with torch.no_grad():
        pasted, _ = attribution._in_context_class()(Echo(), image, -2, 3)(windows)
    expected = image.repeat(2, 1, 1, 1)
    expected[:, :, 0:6, 3:11] = windows[:, :, 2:, :]  # rows -2..5 clipped to 0..5
    assert torch.equal(pasted.reshape(2, 3, 16, 16), expected)
    model = PairNet().eval()
    wrap = attribution._in_context_class()(model, image, 12, -4, binary=1)
    with torch.no_grad():
        _, logit = wrap(windows)
        expected = image.repeat(2, 1, 1, 1)
        expected[:, :, 12:16, 0:4] = windows[:, :, :4, 4:]
        _, logits = model(expected)
    assert logit.shape == (2, 1)
    assert torch.allclose(torch.sigmoid(logit[:, 0]), torch.softmax(logits, 1)[:, 1], atol=1e-6)
    assert attribution._InContext is attribution._in_context_class()  # picklable by name


def test_correlax_in_context_equals_a_per_mask_loop():
    # in float64: cosines within 1e-4 of 1 would make float32 batch-size noise visible in r
    model, x = PairNet(seed=2).double().eval(), _image(16, 16, seed=2).double()
    e = attribution.explain("correlax", model, x, 0, window=8, stride=4, n_masks=20, cells=4)
    grid = mh.xai.windows.window_grid(np.ones((16, 16), bool), 8, 4)
    assert e.forwards == grid.n_windows * 21 and len(e.info["r"]) == grid.n_windows
    assert np.allclose(e.map, mh.xai.windows.maps_from_windows(e.info["r"], grid))
    masks = mh.xai.relax.MaskBank(20, 4, 0.5, 8, seed=0).masks()
    for i in (0, 5, 15):  # a corner window, an inner one, the last
        y0, x0 = grid.centres[i] - 4
        ys, ye, xs, xe = max(y0, 0), min(y0 + 8, 16), max(x0, 0), min(x0 + 8, 16)
        with torch.no_grad():
            h, _ = model(x[None])
            s_h, prob = [], []
            for m in masks:
                full = torch.ones(
                    16, 16, dtype=torch.float64
                )  # the mask inside the window, 1 elsewhere
                full[ys:ye, xs:xe] = m[0, ys - y0 : ye - y0, xs - x0 : xe - x0]
                h_m, logits = model((x * full)[None])
                s_h.append(torch.nn.functional.cosine_similarity(h, h_m).item())
                prob.append(torch.softmax(logits, 1)[0, 0].item())
        assert e.info["r"][i] == pytest.approx(np.corrcoef(s_h, prob)[0, 1], abs=1e-9)


class TopLeft(nn.Module):
    """Features (a, 1) and logits (-4a, 4a) with a the mean of the top-left 8 x 8 pixels:
    only windows touching that square change anything."""

    def forward(self, x):
        a = x[:, :, :8, :8].mean((1, 2, 3))
        return torch.stack([a, torch.ones_like(a)], 1), torch.stack([-4 * a, 4 * a], 1)


def test_correlax_in_context_knows_where_the_model_looks():
    x = 0.5 + 0.5 * torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(0))
    e = attribution.explain(
        "correlax", TopLeft().eval(), x, 1, window=8, stride=4, n_masks=30, cells=4
    )
    centres = e.info["centres"]
    touching = centres[:, 0] - 4 < 8
    touching &= centres[:, 1] - 4 < 8
    assert (e.info["r"][touching] > 0.9).all()  # masking lowers a and class 1's probability
    assert (e.info["r"][~touching] == 0).all() and e.info["undefined"] == (~touching).sum()
    assert e.map[:4, :4].min() > e.map[12:, 12:].max()
    other = attribution.explain(
        "correlax", TopLeft().eval(), x, 0, window=8, stride=4, n_masks=30, cells=4
    )
    assert (other.info["r"][touching] < -0.9).all()


# ---------------------------------------------------------------- bad input


def test_bad_calls_are_named(linear):
    model, x, _, _ = linear
    with pytest.raises(ValueError, match="unknown method 'shap'; use one of saliency, integrated"):
        attribution.explain("shap", model, x, 1)
    for target in (2, -1, True):
        with pytest.raises(ValueError, match=r"target must be a class index in 0\.\.1"):
            attribution.explain("saliency", model, x, target)
    for method in ("relax", "correlax"):
        with pytest.raises(ValueError, match=f"{method} needs the \\(features, logits\\) model"):
            attribution.explain(method, model, x, 1)
    bad = x.copy()
    bad[0, 1, 2] = np.nan
    with pytest.raises(ValueError, match="x has NaN"):
        attribution.explain("saliency", model, bad, 1)
    with pytest.raises(ValueError, match="saliency has no parameter n_steps; its parameters: abs"):
        attribution.explain("saliency", model, x, 1, n_steps=3)
    with pytest.raises(ValueError, match="training mode"):
        attribution.explain("saliency", Linear(np.ones((1, 4, 4))), np.ones((1, 4, 4)), 1)
    with pytest.raises(ValueError, match=r"x must be \(C, H, W\) or \(1, C, H, W\)"):
        attribution.explain("saliency", model, np.stack([x, x]), 1)
    for window, stride, match in [(0, 1, "window must be a positive"), (9, 1, "larger than")]:
        with pytest.raises(ValueError, match=match):
            attribution.explain("occlusion", model, x, 1, window=window, stride=stride)
    with pytest.raises(ValueError, match=r"stride \(3, 3\) is larger than the window \(2, 2\)"):
        attribution.explain("occlusion", model, x, 1, window=2, stride=3)
    with pytest.raises(ValueError, match=r"window \(9, 9\) is larger than the image \(8, 8\)"):
        attribution.occlusion_forwards((8, 8), 9, 1)


def test_a_nan_map_is_refused():
    class InfiniteGradient(nn.Module):
        def forward(self, x):  # finite at 0, but d sqrt(x) / dx is infinite there
            return torch.stack([x.sum((1, 2, 3)), torch.sqrt(x).sum((1, 2, 3))], 1)

    x = np.zeros((1, 4, 4), np.float32)
    with pytest.raises(ValueError, match="saliency: the map has NaN or infinite values"):
        attribution.explain("saliency", InfiniteGradient().eval(), x, 1)
