"""mammo_helpers.models.clip_training: seeded pre-training, fine-tuning and the
cross-entropy baseline learn a toy task; the model cache gives back the same weights."""

import numpy as np
import pytest
import torch

import mammo_helpers as mh

ct = mh.models.clip_training
clip_mod = mh.models.clip
TINY = dict(vision="test_vit", image_size=32, embed_dim=16, text_width=16, text_layers=1)
PROMPTS = ["a dark picture", "a bright picture"]


def _toy(n=32, seed=0):
    """Two classes told apart by brightness, normalised as the pipelines do."""
    gen = np.random.default_rng(seed)
    y = np.arange(n) % 2
    raw = gen.random((n, 3, 32, 32), dtype=np.float32) * 0.5 + y[:, None, None, None] * 0.5
    return ((raw - 0.45) / 0.27).astype(np.float32), y


def _standin(tmp_path, seed=0, texts=PROMPTS):
    return clip_mod.load_clip(clip_mod.STANDIN, texts=texts, folder=tmp_path, seed=seed, **TINY)


def _zero_shot_accuracy(model, x, y):
    probs = ct.predict_probs(clip_mod.PromptClassifier(model, PROMPTS), x)
    return (probs.argmax(1) == y).mean()


def test_finetuning_on_class_prompts_learns_the_toy_task_and_is_seeded(tmp_path):
    x, y = _toy()
    runs = []
    for _ in range(2):
        model = _standin(tmp_path)
        history = ct.finetune(model, x, y, PROMPTS, epochs=20, batch_size=16, lr=1e-3, seed=3)
        runs.append(model.model.state_dict())
    assert len(history.rows) == 20 and history.rows[-1]["loss"] < history.rows[0]["loss"]
    assert _zero_shot_accuracy(model, *_toy(seed=1)) == 1.0
    assert all(torch.equal(runs[0][k], runs[1][k]) for k in runs[0])
    other = _standin(tmp_path)
    ct.finetune(other, x, y, PROMPTS, epochs=1, batch_size=16, lr=1e-3, seed=4)
    ct.finetune(
        model := _standin(tmp_path), x, y, PROMPTS, epochs=1, batch_size=16, lr=1e-3, seed=3
    )
    assert any(
        not torch.equal(other.model.state_dict()[k], model.model.state_dict()[k]) for k in runs[0]
    )


def test_weighted_and_unweighted_finetuning_differ_only_when_classes_are_unbalanced(tmp_path):
    x, y = _toy()
    states = {}
    for weighted in (True, False):
        model = _standin(tmp_path)
        ct.finetune(model, x, y, PROMPTS, weighted=weighted, epochs=1, batch_size=32, seed=0)
        states[weighted] = model.model.state_dict()
    assert all(torch.allclose(states[True][k], states[False][k]) for k in states[True])  # 16/16
    keep = np.r_[np.flatnonzero(y == 0), np.flatnonzero(y == 1)[:4]]
    for weighted in (True, False):
        model = _standin(tmp_path)
        ct.finetune(model, x[keep], y[keep], PROMPTS, weighted=weighted, epochs=1, batch_size=32)
        states[weighted] = model.model.state_dict()
    assert any(not torch.allclose(states[True][k], states[False][k]) for k in states[True])
    with pytest.raises(ValueError, match=r"class\(es\) \[1\] have no sample"):
        ct.finetune(_standin(tmp_path), x[y == 0], y[y == 0], PROMPTS, epochs=1)


def test_pretraining_on_reports_moves_both_towers_and_checks_its_inputs(tmp_path):
    x, y = _toy(16)
    reports = [f"{'bright' if c else 'dark'} image number {i}" for i, c in enumerate(y)]
    model = _standin(tmp_path, texts=reports)
    before = {k: v.clone() for k, v in model.model.state_dict().items()}
    history = ct.pretrain(model, x, reports, epochs=2, batch_size=8, seed=0)
    after = model.model.state_dict()
    moved = {k.split(".")[0] for k in before if not torch.equal(before[k], after[k])}
    assert {"visual", "text", "logit_scale"} <= moved and len(history.rows) == 2
    assert history.rows[0]["samples_per_s"] > 0
    with pytest.raises(ValueError, match="16 images but 3 reports"):
        ct.pretrain(model, x, reports[:3], epochs=1)


def test_the_crossentropy_baseline_shares_the_image_tower_and_learns(tmp_path):
    x, y = _toy()
    model = _standin(tmp_path)
    net = ct.ImageClassifier(model, 2)
    assert net.visual is not model.model.visual and net.head.in_features == 16
    tower = model.model.visual.state_dict()
    assert all(torch.equal(v, net.visual.state_dict()[k]) for k, v in tower.items())
    ct.train_classifier(net, x, y, epochs=15, batch_size=16, lr=1e-3)
    xt, yt = _toy(seed=2)
    probs = ct.predict_probs(net, xt)
    np.testing.assert_allclose(probs.sum(1), 1.0, rtol=1e-5)
    with torch.no_grad():
        expected = net.eval()(torch.from_numpy(xt)).softmax(-1).numpy()
    np.testing.assert_allclose(probs, expected, rtol=1e-5, atol=1e-6)
    assert (probs.argmax(1) == yt).mean() >= 0.9
    assert all(torch.equal(v, model.model.visual.state_dict()[k]) for k, v in tower.items())


def test_cached_training_gives_back_the_trained_weights(tmp_path):
    x, y = _toy()
    calls = []

    def run(model):
        def train():
            calls.append(1)
            return ct.finetune(model, x, y, PROMPTS, epochs=2, batch_size=16, seed=0)

        return train

    settings = {"epochs": 2, "data": mh.cache.data_digest(x, y)}
    first = _standin(tmp_path / "a")
    h1, hit1 = ct.cached_training(first.model, "toy", settings, run(first), cache_dir=tmp_path)
    second = _standin(tmp_path / "b")
    h2, hit2 = ct.cached_training(second.model, "toy", settings, run(second), cache_dir=tmp_path)
    assert (hit1, hit2, len(calls)) == (False, True, 1)
    assert h1.rows == h2.rows
    a, b = first.model.state_dict(), second.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    _, hit3 = ct.cached_training(
        second.model, "toy", {**settings, "epochs": 3}, run(second), cache_dir=tmp_path
    )
    assert not hit3 and len(calls) == 2


def test_train_variant_starts_each_variant_from_the_given_weights(tmp_path):
    x, y = _toy()
    model = _standin(tmp_path / "t")
    start = {k: v.clone() for k, v in model.model.state_dict().items()}
    kw = dict(start={"w": "toy"}, epochs=8, batch_size=16, lr=1e-3, cache_dir=tmp_path)
    probs = {}
    for variant in ct.VARIANTS:
        predict, history = ct.train_variant(
            model, start, variant, x, y, PROMPTS, name=f"v-{variant}", **kw
        )
        probs[variant] = predict
        assert len(history.rows) == 8
    xt, yt = _toy(seed=5)
    for variant, predict in probs.items():  # each closure keeps its own trained weights
        assert (predict(xt).argmax(1) == yt).mean() >= 0.9, variant
    again, _ = ct.train_variant(model, start, "weighted", x, y, PROMPTS, name="v-weighted", **kw)
    np.testing.assert_allclose(again(xt), probs["weighted"](xt), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="'focal' is not one of weighted"):
        ct.train_variant(model, start, "focal", x, y, PROMPTS, name="v", **kw)


@pytest.mark.parametrize("variant", ["weighted", "crossentropy"])
def test_train_variant_under_torchrun_gives_the_in_process_model(tmp_path, variant):
    """The CLIP model, its tokenizer and the closure over the images travel to 2 gloo
    ranks; the model they leave in the cache predicts as the one trained here."""
    x, y = _toy()
    model = _standin(tmp_path / "t")
    start = {k: v.clone() for k, v in model.model.state_dict().items()}
    kw = dict(start={"w": "toy"}, epochs=3, batch_size=16, lr=1e-3)
    here, _ = ct.train_variant(
        model, start, variant, x, y, PROMPTS, name="here", cache_dir=tmp_path / "a", **kw
    )
    xt, _ = _toy(seed=5)
    expected = here(xt)
    there, history = ct.train_variant(
        model, start, variant, x, y, PROMPTS, name="there", cache_dir=tmp_path / "b",
        launcher="torchrun", nproc=2, **kw,
    )  # fmt: skip
    assert len(history.rows) == 3
    # the same global batches of 16, split 8 + 8: equal up to float summation order
    np.testing.assert_allclose(there(xt), expected, atol=2e-4)
