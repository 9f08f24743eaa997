"""mammo_helpers.xai.sanity: the layers found and their order, the cascade on a seeded tiny
CNN (the model untouched, the cascade cumulative and reproducible, the gradient map
decorrelated at the end), and the map similarities against scipy and hand cases."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import spearmanr
from torch import nn

import mammo_helpers as mh

sa = mh.xai.sanity

LAYERS = ["7", "3", "1", "0"]  # Linear, Conv2d, BatchNorm2d, Conv2d: from the logits down


def _tiny_model(seed=0):
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
        nn.Conv2d(4, 8, 3, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 2),
    )  # fmt: skip
    with torch.no_grad():  # a BatchNorm that has seen data: not at its initial values
        bn = model[1]
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
        bn.weight.uniform_(0.5, 2)
        bn.bias.uniform_(-1, 1)
    return model.eval()


def _input():
    return torch.rand(1, 1, 24, 24, generator=torch.Generator().manual_seed(1))


def _gradient_map(model):
    x = _input().requires_grad_(True)
    model(x)[0, 1].backward()
    return x.grad[0, 0]


def _state(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


# ------------------------------------------------------------------- the layers
def test_randomisable_layers_from_the_logits_down():
    model = _tiny_model()
    layers = sa.randomisable_layers(model)
    assert [name for name, _ in layers] == LAYERS
    assert [type(m) for _, m in layers] == [nn.Linear, nn.Conv2d, nn.BatchNorm2d, nn.Conv2d]
    assert all(m is dict(model.named_modules())[n] for n, m in layers)


def test_randomisable_layers_names_nested_and_skips_parameterless():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2, affine=False))
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.head = nn.Sequential(nn.Flatten(), nn.Linear(2, 3), nn.Dropout())

    names = [name for name, _ in sa.randomisable_layers(Net())]
    assert names == ["head.1", "features.0"]  # the affine-free BatchNorm has no parameter


# ------------------------------------------------------------------ the cascade
def test_cascade_returns_one_map_per_step_and_leaves_the_model_alone():
    model = _tiny_model()
    before = _state(model)
    rng_before = torch.get_rng_state()
    out = sa.cascading_randomisation(model, _gradient_map, seed=7)
    assert [name for name, _ in out] == ["original", *LAYERS]
    assert len(out) == len(sa.randomisable_layers(model)) + 1
    for _, m in out:
        assert isinstance(m, np.ndarray) and m.shape == (24, 24) and m.dtype == np.float64
    after = _state(model)
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert torch.equal(torch.get_rng_state(), rng_before)  # the global RNG is not used
    np.testing.assert_array_equal(out[0][1], _gradient_map(model).numpy())


def test_cascade_is_cumulative_and_seeded():
    model = _tiny_model()
    seen = []

    def record(copy):
        seen.append(_state(copy))
        return _gradient_map(copy)

    sa.cascading_randomisation(model, record, seed=3)
    original = _state(model)
    prefixes = [f"{name}." for name in LAYERS]
    for step, state in enumerate(seen):
        random = prefixes[:step]  # after step i, the top i layers (1-based) are random
        for key, value in state.items():
            changed = not torch.equal(value, original[key])
            if any(key.startswith(p) for p in random):
                assert changed or key.endswith("num_batches_tracked"), (step, key)
            else:
                assert not changed, (step, key)
    # layer i is reset under torch.manual_seed(seed + i): a fresh copy of it matches
    fresh = nn.Conv2d(4, 8, 3, padding=1)
    torch.manual_seed(3 + 1)
    fresh.reset_parameters()
    assert torch.equal(seen[-1]["3.weight"], fresh.weight.detach())
    # the BatchNorm is back at its initial state, running statistics included
    assert torch.equal(seen[-1]["1.running_mean"], torch.zeros(4))
    assert torch.equal(seen[-1]["1.running_var"], torch.ones(4))
    assert torch.equal(seen[-1]["1.weight"], torch.ones(4))
    # the same seed gives the same maps, another seed other ones
    a = sa.cascading_randomisation(model, _gradient_map, seed=3)
    b = sa.cascading_randomisation(model, _gradient_map, seed=3)
    c = sa.cascading_randomisation(model, _gradient_map, seed=4)
    for (_, ma), (_, mb_) in zip(a[1:], b[1:], strict=True):
        np.testing.assert_array_equal(ma, mb_)
    assert not np.array_equal(a[-1][1], c[-1][1])


def test_fully_randomised_gradient_map_is_far_from_the_original():
    out = sa.cascading_randomisation(_tiny_model(), _gradient_map, seed=100)
    original, final = out[0][1], out[-1][1]
    assert sa.map_similarity(original, final)["spearman_abs"] < 0.5
    assert sa.map_similarity(original, original)["spearman_abs"] == pytest.approx(1.0)


def test_cascade_layers_argument_and_errors():
    model = _tiny_model()
    out = sa.cascading_randomisation(model, _gradient_map, layers=["3", "7"])
    assert [name for name, _ in out] == ["original", "3", "7"]
    with pytest.raises(ValueError, match=r"layers \['head'\] are not randomisable"):
        sa.cascading_randomisation(model, _gradient_map, layers=["7", "head"])
    with pytest.raises(ValueError, match=r"layers \['2'\] are not"):  # the ReLU
        sa.cascading_randomisation(model, _gradient_map, layers=["2"])
    with pytest.raises(ValueError, match="map of explain_fn after 'original' must be a non-empty"):
        sa.cascading_randomisation(model, lambda m: np.zeros(5))
    calls = []

    def nan_after_the_original(copy):
        calls.append(1)
        out = np.zeros((4, 4))
        out[0, 0] = np.nan if len(calls) > 1 else 0.0
        return out

    with pytest.raises(ValueError, match="map of explain_fn after '7' holds 1 non-finite"):
        sa.cascading_randomisation(model, nan_after_the_original)


# ------------------------------------------------------------------ similarity
@settings(max_examples=40, deadline=None)
@given(st.data())
def test_spearman_is_scipys_over_the_mask(data):
    h, w = data.draw(st.integers(7, 20)), data.draw(st.integers(7, 20))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    a = rng.normal(size=(h, w))
    b = 0.5 * a + rng.normal(size=(h, w))
    if data.draw(st.booleans()):  # ties
        a, b = np.round(a), np.round(b)
    mask = rng.random((h, w)) < 0.7
    mask[0, :3] = True
    a[0, :3], b[0, :3] = [0.0, 1.0, 2.0], [2.0, 0.0, 1.0]  # never constant in the mask
    got = sa.map_similarity(a, b, mask)
    assert got["spearman_signed"] == pytest.approx(spearmanr(a[mask], b[mask])[0], abs=1e-12)
    expected_abs = spearmanr(np.abs(a[mask]), np.abs(b[mask]))[0]
    assert got["spearman_abs"] == pytest.approx(expected_abs, abs=1e-12)
    assert -1 - 1e-12 <= got["ssim"] <= 1 + 1e-12


def test_ssim_of_a_map_with_itself_and_with_noise():
    rows, cols = np.mgrid[:40, :50]
    smooth = np.exp(-((rows - 20) ** 2 + (cols - 25) ** 2) / 60.0)
    breast = ((rows - 20) / 19) ** 2 + ((cols - 10) / 38) ** 2 <= 1
    assert sa.map_similarity(smooth, smooth, breast)["ssim"] == pytest.approx(1.0)
    assert sa.map_similarity(smooth, 3 * smooth - 1, breast)["ssim"] == pytest.approx(1.0)
    noise = np.random.default_rng(0).random((40, 50))
    got = sa.map_similarity(smooth, noise, breast)
    assert got["ssim"] < 0.5 and abs(got["spearman_abs"]) < 0.2
    # outside the breast nothing counts
    changed = np.where(breast, smooth, noise)
    assert sa.map_similarity(smooth, changed, breast)["ssim"] == pytest.approx(1.0)


def test_signed_and_absolute_spearman_differ():
    rng = np.random.default_rng(2)
    a = rng.normal(size=(10, 10))
    got = sa.map_similarity(a, -a)
    assert got["spearman_signed"] == pytest.approx(-1.0)
    assert got["spearman_abs"] == pytest.approx(1.0)


def test_constant_map_gives_nan_spearman_and_errors():
    a = np.random.default_rng(0).normal(size=(8, 8))
    got = sa.map_similarity(a, np.full((8, 8), 2.0))
    assert math.isnan(got["spearman_abs"]) and math.isnan(got["spearman_signed"])
    assert np.isfinite(got["ssim"])
    with pytest.raises(ValueError, match=r"a has shape \(8, 8\), b \(8, 7\)"):
        sa.map_similarity(a, a[:, :7])
    with pytest.raises(ValueError, match="breast_mask is empty"):
        sa.map_similarity(a, a, np.zeros((8, 8), bool))
    with pytest.raises(ValueError, match="b holds 1 non-finite"):
        sa.map_similarity(a, np.where(np.arange(64).reshape(8, 8) == 9, np.nan, a))
