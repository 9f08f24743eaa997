"""mammo_helpers.xai.gradcam: Grad-CAM against the method computed by hand with hooks, the
ViT token reshape on a hand case, and the two map measures against hand cases and scipy."""

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

import mammo_helpers as mh

gc = mh.xai.gradcam


def _cnn():
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 3, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(3, 2),
    ).eval()


def _by_hand(model, x, cls):
    """Selvaraju et al.: channel weights = mean gradient of the class score over the map;
    CAM = ReLU(sum_k w_k A_k), min-max scaled."""
    acts = model[:2](x)
    acts.retain_grad()
    score = model[2:](acts)[0, cls]
    score.backward()
    weights = acts.grad.mean(dim=(2, 3), keepdim=True)
    cam = torch.relu((weights * acts).sum(1))[0].detach().numpy()
    cam = cam - cam.min()
    return cam / (cam.max() + 1e-7)


@pytest.mark.parametrize("cls", [0, 1])
def test_gradcam_is_the_method_by_hand(cls):
    model = _cnn()
    x = torch.rand(1, 1, 12, 10, generator=torch.Generator().manual_seed(1))
    cam = gc.gradcam(model, x.numpy(), model[1], [cls])
    assert cam.shape == (1, 12, 10)
    np.testing.assert_allclose(cam[0], _by_hand(model, x.clone(), cls), atol=1e-5)


def test_vit_tokens_to_map_lays_patches_row_by_row():
    tokens = torch.arange(1 + 6, dtype=torch.float32).reshape(1, 7, 1).repeat(2, 1, 2)
    out = gc.vit_tokens_to_map(tokens, grid_hw=(2, 3))
    assert out.shape == (2, 2, 2, 3)
    assert out[0, 0].tolist() == [[1, 2, 3], [4, 5, 6]]  # token 0 (CLS) dropped
    square = gc.vit_tokens_to_map(torch.zeros(1, 1 + 16, 5))
    assert square.shape == (1, 5, 4, 4)
    with pytest.raises(ValueError, match="6 patch tokens are not a square grid"):
        gc.vit_tokens_to_map(tokens)
    with pytest.raises(ValueError, match=r"grid_hw \(2, 2\) holds 4 tokens, the ViT gave 6"):
        gc.vit_tokens_to_map(tokens, grid_hw=(2, 2))


def test_gradcam_runs_on_a_timm_vit_through_its_token_grid():
    import timm

    torch.manual_seed(0)
    vit = timm.create_model("test_vit", pretrained=False, img_size=64, num_classes=3).eval()
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(2)).numpy()
    cams = gc.gradcam(vit, x, gc.vit_target_layer(vit), [0, 2], reshape=gc.vit_tokens_to_map)
    assert cams.shape == (2, 64, 64) and cams.min() >= 0 and cams.max() <= 1 + 1e-6
    with pytest.raises(ValueError, match="1 classes for 2 images"):
        gc.gradcam(vit, x, gc.vit_target_layer(vit), [0])
    with pytest.raises(ValueError, match="not a timm ViT"):
        gc.vit_target_layer(_cnn())


def test_mass_inside_and_rank_correlation():
    cam = np.array([[1.0, 3.0], [0.0, 4.0]])
    mask = np.array([[True, False], [False, True]])
    assert gc.mass_inside(cam, mask) == pytest.approx(5 / 8)
    assert np.isnan(gc.mass_inside(np.zeros((2, 2)), mask))
    with pytest.raises(ValueError, match="non-negative"):
        gc.mass_inside(-cam, mask)
    with pytest.raises(ValueError, match="differ in shape"):
        gc.mass_inside(cam, mask[:1])
    rng = np.random.default_rng(0)
    a, b = rng.random((8, 8)), rng.random((8, 8))
    keep = rng.random((8, 8)) > 0.3
    assert gc.rank_correlation(a, b, keep) == pytest.approx(spearmanr(a[keep], b[keep]).statistic)
    assert gc.rank_correlation(a, a**3) == pytest.approx(1.0)


def test_last_conv_layer_is_the_deepest_convolution():
    from torch import nn

    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 5, 3), nn.Flatten())
    assert mh.xai.gradcam.last_conv_layer(net) is net[2]
    with pytest.raises(ValueError, match="no Conv2d"):
        mh.xai.gradcam.last_conv_layer(nn.Linear(2, 2))
