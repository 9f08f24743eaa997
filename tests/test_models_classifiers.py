"""mammo_helpers.models.classifiers: (features, logits) from the small CNN, a timm and a
torchvision backbone, paper 02's head, features equal to the head's input, seeded builds,
and the checks CorRELAX relies on."""

import pytest
import torch
from torch import nn

import mammo_helpers as mh

clf = mh.models.classifiers
LABELS = ("mass", "calcification", "asymmetry")


def _x(b=2, c=3, px=64, seed=0):
    return torch.rand(b, c, px, px, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize(
    "backbone, in_chans, dim",
    [("small_cnn", 3, 128), ("mobilenetv3_small_100", 3, 1024), ("efficientnet_v2_s", 1, 1280)],
)
def test_backbones_return_pooled_features_and_one_logit_per_label(backbone, in_chans, dim):
    model = clf.build_classifier(backbone, LABELS, in_chans=in_chans, seed=0).eval()
    assert (model.feature_dim, model.n_labels, model.labels) == (dim, 3, LABELS)
    first_conv = next(m for m in model.backbone.modules() if isinstance(m, nn.Conv2d))
    assert first_conv.in_channels == in_chans
    assert not any(getattr(m, "inplace", False) for m in model.modules())
    with torch.inference_mode():
        features, logits = model(_x(1, c=in_chans))
    assert features.shape == (1, dim) and logits.shape == (1, 3)
    assert clf.check_feature_model(model, _x(1, c=in_chans)[0])[1].shape == (1, 3)


@pytest.mark.parametrize(
    "name, library",
    [
        ("small_cnn", "small_cnn"),
        ("efficientnet_v2_s", "torchvision"),  # the paper's; not a timm name
        ("efficientnetv2_s", "timm"),
        ("efficientnet_b0", "timm"),  # in both: timm unless prefixed
        ("torchvision:efficientnet_b0", "torchvision"),
        ("timm:resnet18", "timm"),
    ],
)
def test_backbone_names_resolve_to_their_library(name, library):
    assert clf._resolve(name) == (library, name.split(":")[-1])


def test_small_cnn_shape_and_settings():
    model = clf.build_classifier("small_cnn", LABELS, in_chans=1, width=8, blocks=2, seed=0)
    convs = [m for m in model.backbone if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.stride) for c in convs] == [
        (1, 8, (2, 2)),
        (8, 16, (1, 1)),
    ]
    assert model.feature_dim == 16
    relus = [m for m in model.modules() if isinstance(m, nn.ReLU)]
    assert len(relus) == 3 and not any(r.inplace for r in relus)
    assert len(set(map(id, relus))) == 3  # one module per use (DeepLIFT)
    assert model.settings == {
        "backbone": "small_cnn",
        "labels": list(LABELS),
        "in_chans": 1,
        "width": 8,
        "blocks": 2,
        "stem_stride": 2,
        "hidden": 512,
        "dropout": 0.5,
        "channels_last": True,
        "seed": 0,
    }
    again = clf.build_classifier(**model.settings)
    assert all(torch.equal(again.state_dict()[k], v) for k, v in model.state_dict().items())


def test_head_is_the_papers():
    head = clf.paper_head(128, 4)
    assert [type(m) for m in head] == [nn.Dropout, nn.Linear, nn.ReLU, nn.Linear]
    assert head[0].p == 0.5
    assert (head[1].in_features, head[1].out_features) == (128, 512)
    assert head[1].bias is not None
    assert (head[3].in_features, head[3].out_features) == (512, 4)
    assert head[3].bias is None
    model = clf.build_classifier("small_cnn", LABELS, hidden=64, dropout=0.2)
    assert (model.head[0].p, model.head[1].out_features) == (0.2, 64)


def test_features_are_the_input_of_the_head():
    model = clf.build_classifier("small_cnn", LABELS, seed=1).train()
    seen = []
    model.head.register_forward_pre_hook(lambda module, args: seen.append(args[0].clone()))
    features, logits = model(_x(4))
    assert torch.equal(seen[0], features)
    model.eval()
    features, logits = model(_x(4))
    assert torch.allclose(logits, model.head(features))
    pooled = model.backbone[:-2](_x(4)).mean((2, 3))  # global average of the last block
    assert torch.allclose(features, pooled, atol=1e-6)


def test_same_seed_same_model_and_the_global_seed_is_left_alone():
    torch.manual_seed(123)
    state = torch.random.get_rng_state()
    a = clf.build_classifier("small_cnn", LABELS, seed=7)
    assert torch.equal(torch.random.get_rng_state(), state)
    b = clf.build_classifier("small_cnn", LABELS, seed=7)
    c = clf.build_classifier("small_cnn", LABELS, seed=8)
    assert all(torch.equal(a.state_dict()[k], v) for k, v in b.state_dict().items())
    assert not torch.equal(a.head[1].weight, c.head[1].weight)
    x = _x(3)
    with torch.inference_mode():
        assert torch.equal(a.eval()(x)[1], b.eval()(x)[1])


def test_channels_last_changes_the_layout_not_the_numbers():
    x = _x(3)
    fast = clf.build_classifier("small_cnn", LABELS, seed=2).eval()
    plain = clf.build_classifier("small_cnn", LABELS, seed=2, channels_last=False).eval()
    assert fast.backbone[0].weight.is_contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        torch.testing.assert_close(fast(x), plain(x), rtol=1e-5, atol=1e-5)


class _LogitsOnly(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 2))

    def forward(self, x):
        return self.net(x)


class _FlatFeatures(_LogitsOnly):
    def forward(self, x):
        logits = self.net(x)
        return logits.sum(1), logits  # features of one dim: (B,)


def test_check_feature_model_rejects_other_contracts():
    x = _x(2, px=8)
    with pytest.raises(ValueError, match=r"must return \(features, logits\).*tensor of shape"):
        clf.check_feature_model(_LogitsOnly(), x)
    with pytest.raises(ValueError, match=r"features shaped \(batch, D\); got a tuple of 2"):
        clf.check_feature_model(_FlatFeatures(), x)
    model = clf.build_classifier("small_cnn", LABELS).train()
    features, logits = clf.check_feature_model(model, _x(1))
    assert model.training  # mode restored
    assert features.shape == (1, 128) and logits.shape == (1, 3)
    with pytest.raises(ValueError, match=r"example must be \(C, H, W\) or \(B, C, H, W\)"):
        clf.check_feature_model(model, torch.rand(64, 64))


def test_labels_name_the_outputs():
    model = clf.build_classifier("small_cnn", LABELS)
    assert model.label_index("calcification") == 1
    with pytest.raises(ValueError, match="'lymph node' is not one the model was trained on"):
        model.label_index("lymph node")


@pytest.mark.parametrize(
    "labels, match",
    [
        ("mass", "labels must be a sequence of label names"),
        ([], "one or more non-empty strings"),
        (["mass", ""], "one or more non-empty strings"),
        (["mass", "mass"], r"labels must be unique; repeated: \['mass'\]"),
    ],
)
def test_bad_labels_are_refused(labels, match):
    with pytest.raises(ValueError, match=match):
        clf.build_classifier("small_cnn", labels)


def test_labels_must_match_the_heads_outputs():
    backbone = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
    with pytest.raises(ValueError, match="labels has 3 names but the head gives"):
        clf.CropClassifier(backbone, 3, LABELS, head=clf.paper_head(3, 2))
    with pytest.raises(ValueError, match="head does not take features of size feature_dim=4"):
        clf.CropClassifier(backbone, 4, LABELS, head=clf.paper_head(3, 3))
    model = clf.CropClassifier(backbone, 3, LABELS)
    assert model(_x(2))[1].shape == (2, 3)


@pytest.mark.parametrize(
    "backbone, kwargs, match",
    [
        ("effnetv2_small", {}, "backbone 'effnetv2_small' is unknown"),
        ("torchvision:resnet18", {}, "backbone 'torchvision:resnet18' is unknown"),
        ("resnet18", {"width": 16}, "width apply to backbone='small_cnn' only"),
        ("small_cnn", {"blocks": 0}, "blocks must be an integer >= 1"),
        ("small_cnn", {"in_chans": 0}, "in_chans must be an integer >= 1"),
        ("small_cnn", {"dropout": 1.0}, r"dropout must be in \[0, 1\)"),
    ],
)
def test_bad_build_arguments_are_named(backbone, kwargs, match):
    with pytest.raises(ValueError, match=match):
        clf.build_classifier(backbone, LABELS, **kwargs)


def test_logits_only_returns_the_second_output():
    model = mh.models.classifiers.build_classifier("small_cnn", ("a", "b"), seed=0).eval()
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(mh.models.classifiers.LogitsOnly(model)(x), model(x)[1])
