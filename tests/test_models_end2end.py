"""mammo_helpers.models.end2end: paper 05's End2End model and two-stage fine-tuning (chapter 05)."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
import torch

from mammo_helpers.models import end2end, image_training, multiview, task_training


def _images(n=32, seed=0, hw=(64, 64)):
    """Class 1 has a bright square, class 0 does not (3 identical channels)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 0.3, (n, 1, *hw)).astype(np.float32)
    y = np.arange(n) % 2
    x[y == 1, :, 20:36, 24:40] += 1.5
    return np.repeat(x, 3, axis=1), y


def _small(**kw):
    return end2end.build_end2end("vgg_small", width=4, **kw)


def _same_state(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return list(sa) == list(sb) and all(torch.equal(sa[k], sb[k]) for k in sa)


def _spy_loss(monkeypatch) -> list[int]:
    """The size of every training batch (``image_training.ce_loss`` is the loss of both
    trainers)."""
    sizes, loss = [], image_training.ce_loss

    def spy(model, batch):
        sizes.append(len(batch[1]))
        return loss(model, batch)

    monkeypatch.setattr(image_training, "ce_loss", spy)
    return sizes


def _spy_augment(monkeypatch) -> list[dict]:
    """The keyword arguments of every call of ``task_training.augment``."""
    calls, augment = [], task_training.augment

    def spy(x, generator, **kw):
        calls.append(kw)
        return augment(x, generator, **kw)

    monkeypatch.setattr(task_training, "augment", spy)
    return calls


def _scripted(losses):
    """A validation function giving ``losses`` in turn, keeping each epoch's weights."""
    losses, states = iter(losses), []

    def validate(model, x, y):
        states.append({k: v.clone() for k, v in model.state_dict().items()})
        return {"val_loss": next(losses)}

    return validate, states


def test_model_shapes_parts_and_the_paper_top():
    model = _small(top=(8, 6))
    pooled, logits = model(torch.zeros(2, 3, 128, 64))
    assert pooled.shape == (2, 6) and logits.shape == (2, 2)
    assert [name for name, _ in model.named_children()] == list(end2end.PARTS)
    block = list(model.block1)  # Conv-BN-ReLU-Dropout-MaxPool (Fig. 2)
    assert [type(m).__name__ for m in block] == [
        "Conv2d", "BatchNorm2d", "ReLU", "Dropout", "MaxPool2d",
    ]  # fmt: skip
    # by hand: backbone 3*4*9 + 4*8*9 + 8*16*9 + 16*32*9 convs + 2*(4+8+16+32) batch norm
    # = 6276; block1 32*8*9 + 2*8 = 2320; block2 8*6*9 + 2*6 = 444; head 6*2 + 2 = 14
    assert sum(p.numel() for p in model.parameters()) == 9054
    assert model.block1[0].bias is None and model.block2[0].bias is None
    # a 3x3 "same" convolution, then the 2x2 pooling halves the map
    assert model.block1(torch.zeros(1, 32, 8, 8)).shape == (1, 8, 4, 4)
    assert model.frozen == ()  # a fresh model trains every part
    model.train()
    assert all(m.training for m in model.modules())
    vgg = end2end.build_end2end("vgg16")
    assert vgg.block1[0].in_channels == 512 and vgg.block2[0].out_channels == 512
    # torchvision's VGG16 features (its layer indices, so its checkpoints load)
    convs = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)
    assert list(vgg.backbone.state_dict()) == [
        f"{i}.{w}" for i in convs for w in ("weight", "bias")
    ]
    assert sum(p.numel() for p in vgg.backbone.parameters()) == 14_714_688
    _, out = vgg(torch.zeros(1, 3, 128, 128))
    assert out.shape == (1, 2)
    with pytest.raises(ValueError, match="BACKBONE 'no_such_net'"):
        end2end.build_end2end("no_such_net")


def test_defaults_are_vgg_small_of_width_16_seeded_with_0():
    model = end2end.build_end2end()
    convs = [m.out_channels for m in model.backbone.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs == [16, 32, 64, 128]
    assert model.block1[0].in_channels == model.block2[0].out_channels == 128
    assert _same_state(model, end2end.build_end2end("vgg_small", width=16, seed=0))
    patch = end2end.build_patch_classifier()
    convs = [m.out_channels for m in patch.backbone.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs == [16, 32, 64, 128] and patch.head.out_features == 5
    assert _same_state(patch, end2end.build_patch_classifier("vgg_small", width=16, seed=0))
    assert end2end.build_patch_classifier(width=4, n_classes=2).head.out_features == 2
    _, channels = end2end.make_backbone("vgg_small")
    assert channels == 128
    with pytest.raises(ValueError, match=r"^make_backbone: width must be an integer >= 1, got 0"):
        end2end.make_backbone("vgg_small", 0)
    with pytest.raises(
        ValueError, match=r"^build_patch_classifier: n_classes must be an integer >= 1, got 0"
    ):
        end2end.build_patch_classifier(width=4, n_classes=0)


def test_a_timm_backbone_gives_its_last_feature_map_and_is_not_pretrained():
    import timm

    last = timm.create_model("test_efficientnet").feature_info[-1]  # its deepest map
    model = end2end.build_end2end("test_efficientnet", seed=0)
    assert model.block1[0].in_channels == last["num_chs"] == 64
    side = 128 // last["reduction"]
    assert model.backbone(torch.zeros(1, 3, 128, 128)).shape == (1, 64, side, side)
    _, logits = model(torch.zeros(2, 3, 128, 128))
    assert logits.shape == (2, 2)
    # seeded random weights, nothing downloaded: another seed, other weights
    assert not _same_state(
        model.backbone, end2end.build_end2end("test_efficientnet", seed=1).backbone
    )


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
    ("config", "learns", "count"),
    [  # by hand: head 32*2 + 2 = 66, each block 32*32*9 + 2*32 = 9280, backbone 6276
        ("head_only", {"head"}, 66),
        ("config1", {"block2", "head"}, 9346),
        ("config2", {"block1", "block2", "head"}, 18626),
        ("all", set(end2end.PARTS), 24902),
    ],
)
def test_freeze_trains_only_the_configured_parts(config, learns, count):
    model = _small()
    n = end2end.freeze(model, config)
    expected = sum(p.numel() for part in learns for p in getattr(model, part).parameters())
    assert n == expected == count
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
    good = {"lr": 1e-3, "weight_decay": 0.0, "dropout": 0.2, "epochs": 3}
    for name, bad, message in [
        ("lr", True, "Stage.lr must be a number >= 0, got True"),
        ("weight_decay", "1e-4", "Stage.weight_decay must be a number >= 0, got '1e-4'"),
        ("plateau_factor", float("inf"), "Stage.plateau_factor must be finite, got inf"),
        ("dropout", False, "dropout must be in [0, 1), got False"),
        ("dropout", "0.2", "dropout must be in [0, 1), got '0.2'"),
        ("stop_patience", 0, "Stage: stop_patience must be an integer >= 1, got 0"),
        ("plateau_patience", 1.5, "Stage: plateau_patience must be an integer >= 1, got 1.5"),
    ]:
        with pytest.raises(ValueError) as err:
            end2end.Stage(**(good | {name: bad}))
        assert str(err.value) == message, name
    with pytest.raises(ValueError, match=r"dropout must be in \[0, 1\), got '0\.5'"):
        end2end.set_dropout(_small(), "0.5")


def test_paper_stages_are_table_6():
    one, two = end2end.PAPER_STAGES
    assert (one.lr, one.weight_decay, one.dropout, one.epochs) == (2e-4, 1e-4, 0.2, 50)
    assert (two.lr, two.weight_decay, two.dropout, two.epochs) == (2e-7, 1.5e-3, 0.5, 30)
    assert one.plateau_patience == two.plateau_patience == 2
    assert one.plateau_factor == two.plateau_factor == 0.1
    assert one.stop_patience == two.stop_patience == 3
    assert one.scaled(4).epochs == 4 and one.scaled(4).lr == one.lr
    aug = end2end.AUGMENT  # Table 7
    assert (aug["degrees"], aug["translate"], aug["zoom"], aug["hflip"]) == (10.0, 0.05, 0.1, True)


def test_set_dropout_reaches_every_dropout_layer():
    model = _small()
    end2end.set_dropout(model, 0.5)
    rates = {m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)}
    assert rates == {0.5}


def test_fine_tune_stage_one_keeps_the_frozen_parts_and_stage_two_moves_them(capsys):
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
    capsys.readouterr()
    end2end.fine_tune(model, "config1", (x, y), (xv, yv), stages, augment_kw=None, progress=True)
    assert not torch.equal(snapshot["backbone.0.weight"], model.backbone[0].weight)
    assert model.frozen == () and all(p.requires_grad for p in model.parameters())
    bars = capsys.readouterr().err  # fine_tune's keywords reach train_stage; bars name the stage
    assert "config1 stage 1: " in bars and "config1 stage 2: " in bars


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
    with pytest.raises(
        ValueError, match=r"^train_stage: nothing to train \(every part is frozen\)$"
    ):
        end2end.train_stage(model, stage, (x, y), (x, y))


def test_train_stage_uses_adam_the_plateau_schedule_and_early_stopping_of_its_stage(monkeypatch):
    built = []

    class Adam(torch.optim.Adam):
        def __init__(self, *args, **kw):
            super().__init__(*args, **kw)
            built.append(self)

    monkeypatch.setattr(torch.optim, "Adam", Adam)
    # validation losses: best at epoch 1, then never lower
    validate, states = _scripted([1.0, 0.9, 0.95, 0.96, 0.97, 0.98, 0.99, 1.0, 1.0, 1.0])
    monkeypatch.setattr(image_training, "evaluate", validate)
    x, y = _images(8)
    model = _small()
    end2end.freeze(model, "config1")
    stage = end2end.Stage(lr=1e-2, weight_decay=1.5e-3, dropout=0.5, epochs=10,
                          plateau_patience=2, stop_patience=5, plateau_factor=0.5)  # fmt: skip
    history = end2end.train_stage(model, stage, (x, y), (x, y), augment_kw=None)
    (opt,) = built
    assert opt.defaults["weight_decay"] == 1.5e-3 and opt.defaults["lr"] == 1e-2
    trained = {id(p) for group in opt.param_groups for p in group["params"]}
    assert trained == {id(p) for p in model.parameters() if p.requires_grad}
    assert {m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)} == {0.5}
    # torch's ReduceLROnPlateau, patience 2: the third epoch without improvement (epoch 4)
    # halves the rate; early stopping after the fifth (epoch 6)
    assert history.column("lr") == pytest.approx([1e-2] * 5 + [5e-3] * 2)
    assert history.stopped_early and history.best_epoch == 1 and len(states) == 7
    assert all(torch.equal(v, states[1][k]) for k, v in model.state_dict().items())
    assert not torch.equal(states[1]["block2.0.weight"], states[-1]["block2.0.weight"])


def test_train_stage_defaults_batch_16_table_7_augmentation_seed_0_and_no_bar(monkeypatch, capsys):
    sizes, augmented = _spy_loss(monkeypatch), _spy_augment(monkeypatch)
    x, y = _images(40)
    stage = end2end.Stage(lr=1e-3, weight_decay=0.0, dropout=0.2, epochs=1)
    model, again = _small(), _small()
    end2end.freeze(model, "all")
    end2end.freeze(again, "all")
    end2end.train_stage(model, stage, (x, y), (x[:8], y[:8]))
    assert sizes == [16, 16, 8] and augmented == [end2end.AUGMENT] * 3
    assert capsys.readouterr().err == ""
    end2end.train_stage(again, stage, (x, y), (x[:8], y[:8]), seed=0)
    assert _same_state(model, again)
    augmented.clear()
    end2end.train_stage(again, stage, (x, y), (x[:8], y[:8]), augment_kw=None, progress=True)
    assert augmented == [] and "stage: " in capsys.readouterr().err


def test_load_checkpoint_refuses_another_architecture_and_names_the_file(tmp_path):
    model = _small(seed=0)
    good = tmp_path / "good.pt"
    torch.save(_small(seed=5).state_dict(), good)
    assert end2end.load_checkpoint(model, good) == len(model.state_dict())
    assert torch.equal(model.head.weight, _small(seed=5).head.weight)
    other = tmp_path / "vgg_wider.pt"
    torch.save(end2end.build_end2end("vgg_small", width=8).state_dict(), other)
    kept = {k: v.clone() for k, v in model.state_dict().items()}
    state = model.state_dict()
    extra = tmp_path / "extra.pt"
    torch.save(state | {f"extra.{k}": torch.zeros(1) for k in "dcba"}, extra)
    lacking = tmp_path / "lacking.pt"
    torch.save({k: v for k, v in state.items() if k != "head.bias"}, lacking)
    patch = tmp_path / "patch.pt"
    torch.save(end2end.build_patch_classifier("vgg_small", width=4).state_dict(), patch)
    # the first three tensors that differ, in the model's order or sorted by name
    for path, differ in [
        (other, "shape differs for ['backbone.0.weight', 'backbone.1.weight', 'backbone.1.bias']"),
        (extra, "unexpected ['extra.a', 'extra.b', 'extra.c']"),
        (lacking, "missing ['head.bias']"),
        (patch, "missing ['block1.0.weight', 'block1.1.bias', 'block1.1.num_batches_tracked']; "
                "shape differs for ['head.weight', 'head.bias']"),
    ]:  # fmt: skip
        with pytest.raises(ValueError) as err:
            end2end.load_checkpoint(model, path)
        assert str(err.value) == f"{path} holds another architecture than the model ({differ})"
        assert _same_state(model, _small(seed=5))  # nothing loaded
    tensor = tmp_path / "tensor.pt"
    torch.save(torch.zeros(3), tensor)
    with pytest.raises(ValueError, match=r"tensor\.pt: not a state dict \(got Tensor\)"):
        end2end.load_checkpoint(model, tensor)
    assert all(torch.equal(v, kept[k]) for k, v in model.state_dict().items())


class _Payload:
    """Unpickling it would run code: create the folder ``path``."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return os.makedirs, (self.path,)


def test_load_checkpoint_runs_no_code_and_reads_a_checkpoint_saved_on_a_gpu(tmp_path, monkeypatch):
    # even where the environment turns torch.load's weights-only default off
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    model = _small(seed=0)
    bad = tmp_path / "bad.pt"
    torch.save(model.state_dict() | {"payload": _Payload(str(tmp_path / "ran"))}, bad)
    with pytest.raises(pickle.UnpicklingError):
        end2end.load_checkpoint(model, bad)
    assert not (tmp_path / "ran").exists()
    gpu = tmp_path / "gpu.pt"
    with monkeypatch.context() as m:  # a file written on a GPU: its tensors say "cuda:0"
        m.setattr(torch.serialization, "location_tag", lambda storage: "cuda:0")
        torch.save(_small(seed=5).state_dict(), gpu)
    assert end2end.load_checkpoint(model, gpu) == len(model.state_dict())
    assert _same_state(model, _small(seed=5))


def test_cached_stores_both_stages_and_a_failed_run_writes_nothing(tmp_path, monkeypatch):
    from mammo_helpers import cache, training
    from mammo_helpers.models import classifiers

    x, y = _images(16)
    stages = (end2end.Stage(lr=1e-3, weight_decay=0.0, dropout=0.0, epochs=2),) * 2

    def run(model):
        return lambda: end2end.fine_tune(model, "config2", (x, y), (x, y), stages, augment_kw=None)

    hashed = []
    fingerprint = cache.code_fingerprint

    def spy(code=()):
        hashed.append(list(code))
        return fingerprint(code)

    monkeypatch.setattr(cache, "code_fingerprint", spy)
    model = _small()
    history, hit = end2end.cached(model, "e2e", {"k": 1}, run(model), cache_dir=tmp_path)
    assert not hit and set(history.frame().stage) == {1, 2}
    assert any(tmp_path.iterdir())  # the entry is in cache_dir
    # keyed by the code of this module and of the training code it calls
    code = [end2end, image_training, task_training, multiview, classifiers, training]
    assert hashed and all(all(m in keyed for m in code) for keyed in hashed)
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
    assert set(frame.lr) == {3e-3}
    assert frame.val_loss.min() < frame.val_loss.iloc[0]
    assert end2end.evaluate_patches(model, xv, yv)["val_loss"] == pytest.approx(
        frame.val_loss.min(), rel=1e-5
    )
    assert end2end.evaluate_patches(model, xv, yv)["val_auc"] > 0.9
    with pytest.raises(ValueError, match=r"labels must be 0 \.\.\. 4; found \[5\]"):
        end2end.train_patch_classifier(model, (x, y + 1), (xv, yv), epochs=1)


def test_train_patch_classifier_defaults_batch_64_lr_1e3_seed_0_no_augmentation_no_bar(
    monkeypatch, capsys
):
    sizes, augmented = _spy_loss(monkeypatch), _spy_augment(monkeypatch)
    x, y = _patches(70)
    xv, yv = _patches(10, seed=1)
    model = end2end.build_patch_classifier("vgg_small", width=4)
    history = end2end.train_patch_classifier(model, (x, y), (xv, yv), epochs=1)
    assert sizes == [64, 6] and augmented == [] and history.column("lr") == [1e-3]
    assert capsys.readouterr().err == ""
    again = end2end.build_patch_classifier("vgg_small", width=4)
    end2end.train_patch_classifier(again, (x, y), (xv, yv), epochs=1, seed=0)
    assert _same_state(model, again)
    kw = {"hflip": True, "vflip": True, "degrees": 0.0, "crop": None}
    end2end.train_patch_classifier(model, (x, y), (xv, yv), epochs=1, augment_kw=kw, progress=True)
    assert augmented == [kw, kw] and "patch classifier: " in capsys.readouterr().err


def test_train_patch_classifier_stops_after_stop_patience_epochs_and_restores_the_best(
    monkeypatch,
):
    x, y = _patches(20)
    for patience, losses in [(5, [1.0, 0.8] + [0.9] * 10), (2, [1.0] + [1.1] * 10)]:
        validate, states = _scripted(losses)
        monkeypatch.setattr(end2end, "evaluate_patches", validate)
        model = end2end.build_patch_classifier("vgg_small", width=4)
        kw = {} if patience == 5 else {"stop_patience": patience}  # 5: the default
        history = end2end.train_patch_classifier(model, (x, y), (x, y), epochs=10, **kw)
        best = 1 if patience == 5 else 0
        assert history.stopped_early and history.best_epoch == best
        assert len(history.rows) == len(states) == best + 1 + patience
        assert all(torch.equal(v, states[best][k]) for k, v in model.state_dict().items())
        assert not torch.equal(states[best]["head.weight"], states[-1]["head.weight"])


def test_evaluate_patches_edge_cases():
    from sklearn.metrics import roc_auc_score

    x, _ = _patches(10)
    model = end2end.build_patch_classifier("vgg_small", width=4, seed=0)
    with torch.no_grad():  # background certain: every other class has probability 0
        model.head.weight.zero_()
        model.head.bias.copy_(torch.tensor([1000.0, 0.0, 0.0, 0.0, 0.0]))
    y = np.array([0, 1] * 5)
    # a probability of 0 costs -log(1e-12), so the loss stays finite (early stopping
    # refuses an infinite one)
    assert end2end.evaluate_patches(model, x, y)["val_loss"] == pytest.approx(6 * np.log(10))
    model = end2end.build_patch_classifier("vgg_small", width=4, seed=0)
    p = end2end.probabilities(model, x)
    one = np.array([0] * 9 + [3])  # a single lesion still has an AUC
    out = end2end.evaluate_patches(model, x, one)
    assert out["val_auc"] == pytest.approx(roc_auc_score(one > 0, 1 - p[:, 0]))
    assert np.isnan(out["val_malignant_auc"])
    lesions = np.array([1, 2, 3, 4, 1, 2, 3, 4, 2, 3])  # no background: no lesion AUC
    out = end2end.evaluate_patches(model, x, lesions)
    assert np.isnan(out["val_auc"])
    expected = roc_auc_score(np.isin(lesions, [2, 4]), p[:, 2] + p[:, 4])
    assert out["val_malignant_auc"] == pytest.approx(expected)
    # float labels (e.g. read from a table) are class indices too
    assert end2end.evaluate_patches(model, x, lesions.astype(float)) == pytest.approx(
        out, nan_ok=True
    )
    # the malignant AUC needs End2End's five classes: another model's is NaN
    three = end2end.build_patch_classifier("vgg_small", width=4, n_classes=3)
    out = end2end.evaluate_patches(three, x, np.array([0, 1, 2] * 3 + [2]))
    assert np.isfinite(out["val_auc"]) and np.isnan(out["val_malignant_auc"])
