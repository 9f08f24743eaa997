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
