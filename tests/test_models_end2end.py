"""mammo_helpers.models.end2end: paper 05's End2End model and two-stage fine-tuning (chapter 05)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mammo_helpers.models import end2end, multiview


def _images(n=32, seed=0, hw=(64, 64)):
    """Class 1 has a bright square, class 0 does not (3 identical channels)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 0.3, (n, 1, *hw)).astype(np.float32)
    y = np.arange(n) % 2
    x[y == 1, :, 20:36, 24:40] += 1.5
    return np.repeat(x, 3, axis=1), y


def _small(**kw):
    return end2end.build_end2end("vgg_small", width=4, **kw)


def test_model_shapes_parts_and_the_paper_top():
    model = _small(top=(8, 6))
    pooled, logits = model(torch.zeros(2, 3, 128, 64))
    assert pooled.shape == (2, 6) and logits.shape == (2, 2)
    assert [name for name, _ in model.named_children()] == list(end2end.PARTS)
    block = list(model.block1)  # Conv-BN-ReLU-Dropout-MaxPool (Fig. 2)
    assert [type(m).__name__ for m in block] == [
        "Conv2d", "BatchNorm2d", "ReLU", "Dropout", "MaxPool2d",
    ]  # fmt: skip
    vgg = end2end.build_end2end("vgg16")
    assert vgg.block1[0].in_channels == 512 and vgg.block2[0].out_channels == 512
    _, out = vgg(torch.zeros(1, 3, 128, 128))
    assert out.shape == (1, 2)
    with pytest.raises(ValueError, match="BACKBONE 'no_such_net'"):
        end2end.build_end2end("no_such_net")


def test_patch_classifier_backbone_initialises_the_whole_image_model():
    patch = end2end.build_patch_classifier("vgg_small", width=4, seed=1)
    model = _small(seed=2)
    assert multiview.copy_backbone(patch, model) == len(patch.backbone.state_dict())
    for a, b in zip(
        patch.backbone.state_dict().values(), model.backbone.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b)
    _, logits = patch(torch.zeros(2, 3, 32, 32))
    assert logits.shape == (2, len(end2end.PATCH_CLASSES)) == (2, 5)
    assert end2end.PATCH_CLASSES == (
        "background", "benign_calcification", "malignant_calcification", "benign_mass",
        "malignant_mass",
    )  # fmt: skip
    from mammo_helpers.data.exams import LESION_CLASS_INDEX

    assert all(end2end.PATCH_CLASSES[k] == name for name, k in LESION_CLASS_INDEX.items())


@pytest.mark.parametrize(
    ("config", "learns"),
    [
        ("head_only", {"head"}),
        ("config1", {"block2", "head"}),
        ("config2", {"block1", "block2", "head"}),
        ("all", set(end2end.PARTS)),
    ],
)
def test_freeze_trains_only_the_configured_parts(config, learns):
    model = _small()
    n = end2end.freeze(model, config)
    expected = sum(p.numel() for part in learns for p in getattr(model, part).parameters())
    assert n == expected
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x, y = _images(8)
    model.train()
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
    _, logits = model(torch.as_tensor(x))
    torch.nn.functional.cross_entropy(logits, torch.as_tensor(y)).backward()
    opt.step()
    for key, value in model.state_dict().items():
        part = key.split(".")[0]
        changed = not torch.equal(before[key], value)
        if "num_batches_tracked" in key:
            continue
        # frozen parts keep weights and batch-norm statistics (eval mode while training)
        assert changed == (part in learns), key


def test_unknown_config_and_bad_stage_values_are_named():
    with pytest.raises(ValueError, match="config must be one of head_only, config1"):
        end2end.freeze(_small(), "config3")
    with pytest.raises(ValueError, match="Stage.lr"):
        end2end.Stage(lr=-1.0, weight_decay=0.0, dropout=0.2, epochs=3)
    with pytest.raises(ValueError, match="dropout"):
        end2end.Stage(lr=1e-3, weight_decay=0.0, dropout=1.0, epochs=3)
    with pytest.raises(ValueError, match="epochs"):
        end2end.Stage(lr=1e-3, weight_decay=0.0, dropout=0.2, epochs=0)


def test_paper_stages_are_table_6():
    one, two = end2end.PAPER_STAGES
    assert (one.lr, one.weight_decay, one.dropout, one.epochs) == (2e-4, 1e-4, 0.2, 50)
    assert (two.lr, two.weight_decay, two.dropout, two.epochs) == (2e-7, 1.5e-3, 0.5, 30)
    assert one.plateau_patience == two.plateau_patience == 2
    assert one.stop_patience == two.stop_patience == 3
    assert one.scaled(4).epochs == 4 and one.scaled(4).lr == one.lr
    aug = end2end.AUGMENT  # Table 7
    assert (aug["degrees"], aug["translate"], aug["zoom"], aug["hflip"]) == (10.0, 0.05, 0.1, True)


def test_set_dropout_reaches_every_dropout_layer():
    model = _small()
    end2end.set_dropout(model, 0.5)
    rates = {m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)}
    assert rates == {0.5}


def test_fine_tune_stage_one_keeps_the_frozen_parts_and_stage_two_moves_them():
    x, y = _images(48)
    xv, yv = _images(16, seed=1)
    model = _small()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    stages = (
        end2end.Stage(lr=5e-3, weight_decay=0.0, dropout=0.0, epochs=6),
        end2end.Stage(lr=1e-3, weight_decay=0.0, dropout=0.0, epochs=2),
    )
    one = end2end.fine_tune(model, "config1", (x, y), (xv, yv), stages[:1], augment_kw=None)
    after_one = model.state_dict()
    for key in before:
        if key.startswith(("backbone.", "block1.")):
            assert torch.equal(before[key], after_one[key]), key
    assert not torch.equal(before["block2.0.weight"], after_one["block2.0.weight"])
    assert one[0].rows[-1]["loss"] < one[0].rows[0]["loss"]
    snapshot = {k: v.clone() for k, v in model.state_dict().items()}
    end2end.fine_tune(model, "config1", (x, y), (xv, yv), stages, augment_kw=None)
    assert not torch.equal(snapshot["backbone.0.weight"], model.backbone[0].weight)
    assert model.frozen == () and all(p.requires_grad for p in model.parameters())


def test_train_stage_keeps_the_best_epoch_and_reduces_the_rate_on_plateau():
    x, y = _images(32)
    model = _small()
    end2end.freeze(model, "all")
    stage = end2end.Stage(lr=1e-2, weight_decay=0.0, dropout=0.0, epochs=8,
                          plateau_patience=1, stop_patience=8)  # fmt: skip
    history = end2end.train_stage(model, stage, (x, y), (x, y), augment_kw=None)
    frame = history.frame()
    best = int(frame.val_loss.idxmin())
    assert history.best_epoch == frame.epoch[best]
    # the model ends with the best epoch's weights: its validation loss is the best one
    from mammo_helpers.models import image_training

    assert image_training.evaluate(model, x, y)["val_loss"] == pytest.approx(
        frame.val_loss.min(), rel=1e-5
    )
    rates = frame.lr.tolist()
    worse = [i for i in range(1, len(frame)) if frame.val_loss[i] >= frame.val_loss[:i].min()]
    if worse:  # after an epoch without improvement (patience 1) the rate drops tenfold
        i = worse[0]
        assert rates[i + 1] == pytest.approx(rates[i] * 0.1) if i + 1 < len(rates) else True
    end2end.freeze(model, "head_only")
    for p in model.head.parameters():
        p.requires_grad_(False)
    with pytest.raises(ValueError, match="nothing to train"):
        end2end.train_stage(model, stage, (x, y), (x, y))


def test_load_checkpoint_refuses_another_architecture_and_names_the_file(tmp_path):
    model = _small(seed=0)
    good = tmp_path / "good.pt"
    torch.save(_small(seed=5).state_dict(), good)
    assert end2end.load_checkpoint(model, good) == len(model.state_dict())
    assert torch.equal(model.head.weight, _small(seed=5).head.weight)
    other = tmp_path / "vgg_wider.pt"
    torch.save(end2end.build_end2end("vgg_small", width=8).state_dict(), other)
    kept = model.head.weight.clone()
    with pytest.raises(ValueError, match=r"vgg_wider\.pt holds another architecture.*shape"):
        end2end.load_checkpoint(model, other)
    assert torch.equal(model.head.weight, kept)
    patch = tmp_path / "patch.pt"
    torch.save(end2end.build_patch_classifier("vgg_small", width=4).state_dict(), patch)
    with pytest.raises(ValueError, match="missing"):
        end2end.load_checkpoint(model, patch)


def test_cached_stores_both_stages_and_a_failed_run_writes_nothing(tmp_path):
    x, y = _images(16)
    stages = (end2end.Stage(lr=1e-3, weight_decay=0.0, dropout=0.0, epochs=2),) * 2

    def run(model):
        return lambda: end2end.fine_tune(model, "config2", (x, y), (x, y), stages, augment_kw=None)

    model = _small()
    history, hit = end2end.cached(model, "e2e", {"k": 1}, run(model), cache_dir=tmp_path)
    assert not hit and set(history.frame().stage) == {1, 2}
    again = _small(seed=9)
    history2, hit2 = end2end.cached(again, "e2e", {"k": 1}, run(again), cache_dir=tmp_path)
    assert hit2 and torch.equal(again.head.weight, model.head.weight)
    assert history2.frame().equals(history.frame())

    def boom():
        raise KeyboardInterrupt  # a run killed half-way

    files = sorted(p.name for p in tmp_path.rglob("*"))
    with pytest.raises(KeyboardInterrupt):
        end2end.cached(_small(), "e2e", {"k": 2}, boom, cache_dir=tmp_path)
    assert sorted(p.name for p in tmp_path.rglob("*")) == files


def _patches(n=60, seed=0):
    """Five classes of 32 px patches: background noise, then a blob whose brightness and
    size tell the class (malignant classes brighter)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 0.3, (n, 1, 32, 32)).astype(np.float32)
    y = np.arange(n) % 5
    for k in range(1, 5):
        side = 6 if k in (1, 2) else 14  # calcification small, mass large
        x[y == k, :, 16 - side // 2 : 16 + side // 2, 16 - side // 2 : 16 + side // 2] += (
            1.0 if k in (1, 3) else 2.5
        )
    return np.repeat(x, 3, axis=1), y


def test_evaluate_patches_equals_hand_computed_scores():
    from sklearn.metrics import log_loss, roc_auc_score

    x, y = _patches(40)
    model = end2end.build_patch_classifier("vgg_small", width=4, seed=0)
    out = end2end.evaluate_patches(model, x, y)
    p = end2end.probabilities(model, x)
    assert out["val_loss"] == pytest.approx(log_loss(y, p, labels=range(5)), rel=1e-6)
    assert out["val_auc"] == pytest.approx(roc_auc_score(y > 0, 1 - p[:, 0]))
    lesion = y > 0
    malignant = np.isin(y, [2, 4])
    expected = roc_auc_score(malignant[lesion], (p[:, 2] + p[:, 4])[lesion])
    assert out["val_malignant_auc"] == pytest.approx(expected)
    two = end2end.build_patch_classifier("vgg_small", width=4, n_classes=2)
    assert np.isnan(end2end.evaluate_patches(two, x, (y > 0).astype(int))["val_malignant_auc"])


def test_train_patch_classifier_learns_the_five_classes_and_keeps_the_best_epoch():
    x, y = _patches(100)
    xv, yv = _patches(50, seed=1)
    model = end2end.build_patch_classifier("vgg_small", width=4, seed=0)
    history = end2end.train_patch_classifier(
        model, (x, y), (xv, yv), epochs=12, lr=3e-3, batch_size=20, stop_patience=12
    )
    frame = history.frame()
    assert frame.val_loss.min() < frame.val_loss.iloc[0]
    assert end2end.evaluate_patches(model, xv, yv)["val_loss"] == pytest.approx(
        frame.val_loss.min(), rel=1e-5
    )
    assert end2end.evaluate_patches(model, xv, yv)["val_auc"] > 0.9
    with pytest.raises(ValueError, match=r"labels must be 0 \.\.\. 4; found \[5\]"):
        end2end.train_patch_classifier(model, (x, y + 1), (xv, yv), epochs=1)
