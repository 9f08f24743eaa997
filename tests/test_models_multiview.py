"""mammo_helpers.models.multiview: paper 04's D^v, D and F (chapter 04)."""

from __future__ import annotations

import pytest
import torch

from mammo_helpers.models import multiview
from mammo_helpers.vocab import FOUR_VIEWS

SHAPE = {"width": 8, "blocks": 2}


def test_density_view_model_is_backbone_pool_dropout_and_a_linear_1x1_head():
    dv = multiview.density_view_model(in_chans=1, seed=3, **SHAPE)
    assert dv.labels == ("fatty", "dense")
    dropout, linear = dv.head
    assert isinstance(dropout, torch.nn.Dropout) and dropout.p == pytest.approx(0.001)
    assert isinstance(linear, torch.nn.Linear) and linear.in_features == dv.feature_dim
    x = torch.rand(3, 1, 24, 16)
    dv.eval()
    feats, logits = dv(x)
    assert feats.shape == (3, dv.feature_dim) and logits.shape == (3, 2)
    torch.testing.assert_close(logits, linear(feats))
    again = multiview.density_view_model(in_chans=1, seed=3, **SHAPE).eval()
    torch.testing.assert_close(again(x)[1], logits)  # the seed fixes every weight


def test_four_view_branches_equal_the_view_model_at_initialisation():
    dv = multiview.density_view_model(seed=0, **SHAPE).eval()
    d = multiview.FourViewDensity.from_view_model(dv, seed=1).eval()
    assert len(d.branches) == len(FOUR_VIEWS) == 4
    assert d.dropout.p == 0.5 and d.feature_dim == 4 * dv.feature_dim
    x = torch.rand(2, 4, 1, 24, 16)
    feats, logits = d(x)
    for v in range(4):  # each branch's slice is D^v's features of that view
        torch.testing.assert_close(
            feats[:, v * dv.feature_dim : (v + 1) * dv.feature_dim], dv(x[:, v])[0]
        )
    assert logits.shape == (2, 2)
    # the branches are copies: training one does not move D^v or another branch
    with torch.no_grad():
        next(d.branches[0].parameters()).add_(1.0)
    torch.testing.assert_close(d(x)[0][:, dv.feature_dim :], feats[:, dv.feature_dim :])
    torch.testing.assert_close(dv(x[:, 0])[0], feats[:, : dv.feature_dim])


def test_four_view_model_refuses_other_shapes():
    d = multiview.FourViewDensity(multiview.density_view_model(seed=0, **SHAPE))
    with pytest.raises(ValueError, match=r"\(batch, 4 views, C, H, W\)"):
        d(torch.rand(2, 1, 24, 16))
    with pytest.raises(ValueError, match="4 views"):
        d(torch.rand(2, 3, 1, 24, 16))


def test_findings_model_head_and_copy_backbone_from_the_patch_model():
    patch = multiview.findings_model(seed=5, hidden=16, **SHAPE)
    f = multiview.findings_model(seed=6, hidden=16, **SHAPE)
    linear1, relu, dropout, linear2 = f.head
    assert linear1.out_features == 16 and dropout.p == 0.5 and linear2.out_features == 2
    x = torch.rand(2, 1, 40, 32)
    assert not torch.allclose(patch.eval()(x)[0], f.eval()(x)[0])
    assert multiview.copy_backbone(patch, f) == len(patch.backbone.state_dict())
    torch.testing.assert_close(patch(x)[0], f(x)[0])  # same features on a larger image
    other = multiview.findings_model(seed=0, hidden=16, width=8, blocks=3)
    with pytest.raises(ValueError, match="differ in architecture"):
        multiview.copy_backbone(other, f)
