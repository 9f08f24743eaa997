"""mammo_helpers.models.losses: the class-weighted contrastive loss against open_clip's
ClipLoss, a loop written from the definition, a hand case and a gradient check."""

import math

import numpy as np
import pytest
import torch

import mammo_helpers as mh

losses = mh.models.losses


def _emb(b=6, d=5, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return (
        torch.randn(b, d, generator=gen, dtype=torch.float64),
        torch.randn(b, d, generator=gen, dtype=torch.float64),
    )


def test_unique_labels_and_equal_weights_give_open_clips_loss():
    from open_clip.loss import ClipLoss

    img, txt = _emb()
    scale = torch.tensor(7.5, dtype=torch.float64)
    ours = losses.weighted_contrastive_loss(img, txt, torch.arange(6), scale)
    norm = torch.nn.functional.normalize
    theirs = ClipLoss()(norm(img, dim=-1), norm(txt, dim=-1), scale)
    assert ours.item() == pytest.approx(theirs.item(), rel=1e-12)


def _reference(img, txt, labels, scale, weights):
    """The definition, one image (and one text) at a time, in numpy."""
    img = img / np.linalg.norm(img, axis=1, keepdims=True)
    txt = txt / np.linalg.norm(txt, axis=1, keepdims=True)
    logits = scale * img @ txt.T

    def one_way(lg):
        num = den = 0.0
        for i in range(len(labels)):
            log_softmax = lg[i] - np.log(np.exp(lg[i]).sum())
            positives = [j for j in range(len(labels)) if labels[j] == labels[i]]
            term = -np.mean([log_softmax[j] for j in positives])
            num += weights[labels[i]] * term
            den += weights[labels[i]]
        return num / den

    return (one_way(logits) + one_way(logits.T)) / 2


def test_shared_labels_and_class_weights_match_the_definition():
    img, txt = _emb(8)
    labels = np.array([0, 0, 1, 2, 2, 2, 3, 1])
    weights = losses.class_weights(labels, 4)
    ours = losses.weighted_contrastive_loss(img, txt, torch.from_numpy(labels), 4.0, weights)
    assert ours.item() == pytest.approx(
        _reference(img.numpy(), txt.numpy(), labels, 4.0, weights), rel=1e-12
    )
    plain = losses.weighted_contrastive_loss(img, txt, torch.from_numpy(labels), 4.0)
    assert plain.item() == pytest.approx(
        _reference(img.numpy(), txt.numpy(), labels, 4.0, np.ones(4)), rel=1e-12
    )
    assert plain.item() != pytest.approx(ours.item(), rel=1e-3)


def test_hand_case_two_pairs_of_one_class():
    """Both pairs in one class, so every image-text pair is a positive (computed by hand)."""
    img = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    txt = torch.tensor([[1.0, 0.0], [1.0, 0.0]], dtype=torch.float64)
    # logits (scale 2): row 0 = [2, 2], row 1 = [0, 0]; every row is uniform -> -log(1/2)
    # columns: col 0 = [2, 0], col 1 = [2, 0]: mean of log-softmax = -(log(1 + e^-2)
    # + log(1 + e^2)) / 2
    loss = losses.weighted_contrastive_loss(img, txt, torch.tensor([0, 0]), 2.0)
    text_side = (math.log(1 + math.exp(-2)) + math.log(1 + math.exp(2))) / 2
    assert loss.item() == pytest.approx((math.log(2) + text_side) / 2, rel=1e-12)


def test_gradients_match_finite_differences():
    img, txt = _emb(5, 3, seed=3)
    img.requires_grad_(True)
    txt.requires_grad_(True)
    labels = torch.tensor([0, 1, 1, 2, 0])
    weights = torch.tensor([0.5, 1.0, 1.5], dtype=torch.float64)
    scale = torch.tensor(3.0, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda a, b, s: losses.weighted_contrastive_loss(a, b, labels, s, weights),
        (img, txt, scale),
    )


def test_class_weights_are_inverse_frequencies_with_mean_one():
    from sklearn.utils.class_weight import compute_class_weight

    labels = np.array([0, 0, 0, 0, 1, 1, 2, 3, 3, 3])
    ours = losses.class_weights(labels, 4)
    balanced = compute_class_weight("balanced", classes=np.arange(4), y=labels)
    assert ours.mean() == pytest.approx(1.0)
    assert ours == pytest.approx(balanced / balanced.mean())
    assert losses.class_weights(np.array([0, 0, 1]), 2) == pytest.approx([2 / 3, 4 / 3])


@pytest.mark.parametrize(
    "labels, match",
    [
        (np.array([0, 1, 1]), r"class\(es\) \[2\] have no sample"),
        (np.array([0, 1, 3]), "outside 0..2"),
        (np.array([0.0, 1.0, 2.0]), "integer class indices"),
    ],
)
def test_class_weights_refuse_bad_labels(labels, match):
    with pytest.raises(ValueError, match=match):
        losses.class_weights(labels, 3)


# --------------------------------------------------------------------------- focal loss
def _logits_targets(shape=(6, 4), seed=0, soft=False):
    gen = torch.Generator().manual_seed(seed)
    logits = 3 * torch.randn(shape, generator=gen, dtype=torch.float64)
    targets = torch.rand(shape, generator=gen, dtype=torch.float64)
    return logits, targets if soft else (targets < 0.3).double()


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("soft", [False, True])
@pytest.mark.parametrize("alpha, gamma", [(0.95, 2.5), (0.8, 2.0), (0.25, 0.5), (None, 1.5)])
def test_alpha_t_form_equals_torchvision_with_gradients(reduction, soft, alpha, gamma):
    from torchvision.ops import sigmoid_focal_loss

    logits, targets = _logits_targets(soft=soft)
    ours_in = logits.clone().requires_grad_(True)
    theirs_in = logits.clone().requires_grad_(True)
    ours = losses.focal_loss(ours_in, targets, alpha=alpha, gamma=gamma, reduction=reduction)
    tv_alpha = -1 if alpha is None else alpha
    theirs = sigmoid_focal_loss(theirs_in, targets, tv_alpha, gamma, reduction)
    torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-15)
    weights = torch.rand(ours.shape, generator=torch.Generator().manual_seed(1), dtype=ours.dtype)
    (ours * weights).sum().backward()
    (theirs * weights).sum().backward()
    torch.testing.assert_close(ours_in.grad, theirs_in.grad, rtol=1e-10, atol=1e-15)


def test_focal_loss_hand_case():
    """One positive and one negative with logit ln 3, so p = sigmoid(ln 3) = 3 / (3 + 1) = 0.75;
    alpha 0.25, gamma 2 (Lin et al.'s values):
    positive (y=1): alpha_t = 0.25, (1 - p)^2 = 0.0625, -log p = -ln 0.75 = 0.287682072452
                    -> 0.25 * 0.0625 * 0.287682072452 = 0.015625 * 0.287682072452
                     = 0.004495032382
    negative (y=0): alpha_t = 0.75, p^2 = 0.5625, -log(1 - p) = -ln 0.25 = 1.386294361120
                    -> 0.75 * 0.5625 * 1.386294361120 = 0.421875 * 1.386294361120
                     = 0.584842933597
    eq. 1 ("both"), negative: 0.25 * 0.5625 * 1.386294361120 = 0.194947644532"""
    logits = torch.full((1, 2), math.log(3.0), dtype=torch.float64)
    targets = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    per = losses.focal_loss(logits, targets, alpha=0.25, gamma=2, reduction="none")
    assert per[0].tolist() == pytest.approx([0.004495032382, 0.584842933597], rel=1e-10)
    both = losses.focal_loss(logits, targets, alpha=0.25, gamma=2, alpha_on="both")
    assert both.item() == pytest.approx((0.004495032382 + 0.194947644532) / 2, rel=1e-10)


def test_gamma_zero_without_alpha_is_bce_with_logits():
    logits, targets = _logits_targets(soft=True)
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, targets)
    for alpha_on in losses.ALPHA_ON:
        ours = losses.focal_loss(logits, targets, alpha=None, gamma=0, alpha_on=alpha_on)
        assert ours.item() == pytest.approx(bce.item(), rel=1e-14)


def test_alpha_on_both_is_eq_1_as_printed():
    logits, targets = _logits_targets(soft=True, seed=4)
    z, y, alpha, gamma = logits.numpy(), targets.numpy(), 0.95, 2.5
    p = 1 / (1 + np.exp(-z))
    eq1 = -alpha * (y * (1 - p) ** gamma * np.log(p) + (1 - y) * p**gamma * np.log(1 - p))
    ours = losses.focal_loss(logits, targets, alpha=alpha, gamma=gamma, alpha_on="both")
    assert ours.item() == pytest.approx(eq1.mean(), rel=1e-12)
    per = losses.focal_loss(logits, targets, alpha_on="both", reduction="none")
    np.testing.assert_allclose(per.numpy(), eq1, rtol=1e-12)
    # for 0/1 targets, eq. 1 is alpha times the unweighted loss
    hard = (targets > 0.5).double()
    unweighted = losses.focal_loss(logits, hard, alpha=None, gamma=gamma)
    both = losses.focal_loss(logits, hard, alpha=alpha, gamma=gamma, alpha_on="both")
    assert both.item() == pytest.approx(alpha * unweighted.item(), rel=1e-12)


@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.5])
@pytest.mark.parametrize("alpha_on", ["t", "both"])
def test_saturated_logits_give_finite_loss_and_gradients(gamma, alpha_on):
    logits = torch.tensor([[50.0, -50.0, 50.0, -50.0, 200.0]], requires_grad=True)
    targets = torch.tensor([[1.0, 0.0, 0.0, 1.0, 0.5]])
    loss = losses.focal_loss(logits, targets, gamma=gamma, alpha_on=alpha_on, reduction="sum")
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()
    per = losses.focal_loss(logits, targets, gamma=gamma, alpha_on=alpha_on, reduction="none")
    assert per[0, 2].item() > 1 and per[0, 3].item() > 1  # confidently wrong: large loss
    assert per[0, 0].item() < 1e-20 and per[0, 1].item() < 1e-20  # confidently right


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"gamma": -1}, "gamma must be a finite number >= 0"),
        ({"gamma": float("nan")}, "gamma must be a finite number >= 0"),
        ({"alpha": 1.5}, r"alpha must be in \[0, 1\]"),
        ({"alpha": -0.25}, r"alpha must be in \[0, 1\]"),
        ({"reduction": "avg"}, "reduction must be one of none, mean, sum"),
        ({"alpha_on": "pos"}, "alpha_on must be one of t, both"),
        ({"targets": torch.tensor([[0.0, 2.0]])}, r"targets must lie in \[0, 1\]"),
        ({"targets": torch.tensor([[0.0, 1.0, 1.0]])}, r"targets shape \(1, 3\) differs"),
        ({"logits": torch.tensor([[1, 2]])}, "logits must be a floating-point tensor"),
    ],
)
def test_focal_loss_refuses_bad_settings(kwargs, match):
    args = {"logits": torch.tensor([[0.5, -1.0]]), "targets": torch.tensor([[1.0, 0.0]])}
    args |= kwargs
    with pytest.raises(ValueError, match=match):
        losses.focal_loss(args.pop("logits"), args.pop("targets"), **args)


def test_alpha_none_and_torchvisions_minus_one_switch_weighting_off():
    logits, targets = _logits_targets()
    off = losses.focal_loss(logits, targets, alpha=None)
    assert losses.focal_loss(logits, targets, alpha=-1).item() == off.item()
    assert losses.focal_loss(logits, targets).item() != pytest.approx(off.item(), rel=1e-3)
