"""mammo_helpers.models.clip: the hub id fails at once offline naming the way out, a tiny
stand-in saved in BiomedCLIP's local-dir layout loads back with identical outputs, and
damaged folders are named."""

import json

import pytest
import torch

import mammo_helpers as mh

clip = mh.models.clip

TINY = dict(vision="test_vit", image_size=32, embed_dim=16, text_width=16, text_layers=1)
TEXTS = ["Left CC view of a fatty breast.", "Dense tissue, right MLO; site B."]


@pytest.fixture(scope="module")
def standin(tmp_path_factory):
    return clip.load_clip(
        clip.STANDIN, texts=TEXTS, folder=tmp_path_factory.mktemp("tower"), seed=1, **TINY
    )


def _outputs(model, tokens):
    images = torch.linspace(0, 1, 2 * 3 * 32 * 32).reshape(2, 3, 32, 32)
    with torch.no_grad():
        return model.eval().encode_image(images), model.encode_text(tokens), model.logit_scale


def test_standin_is_biomedclip_shaped(standin):
    from open_clip.hf_model import HFTextEncoder
    from open_clip.timm_model import TimmModel

    model = standin.model
    assert isinstance(model.visual, TimmModel) and isinstance(model.text, HFTextEncoder)
    assert isinstance(model.visual.head.proj, torch.nn.Linear)
    assert model.visual.trunk.global_pool == "token"  # CLS pooling, as BiomedCLIP's ViT
    assert type(model.text.pooler).__name__ == "MeanPooler"  # the one departure (docstring)
    assert isinstance(model.text.proj, torch.nn.Sequential)  # the MLP projection
    assert standin.tokenizer(["Extremely dense breasts, left side."]).shape == (1, 256)
    tokens = standin.tokenize(["Extremely dense breasts, left side."])
    assert tokens.shape[0] == 1 and 8 <= tokens.shape[1] < 30  # padding cut off
    assert (tokens != 1).all()  # [UNK] is id 1: the character vocabulary covers new words
    image, text, _ = _outputs(model, tokens)
    assert image.shape == (2, 16) and text.shape == (1, 16)


def test_vocab_has_special_tokens_characters_and_words():
    vocab = clip.build_vocab(["Fatty fatty breasts."])
    assert vocab[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert {"f", "##f", ".", "fatty", "breasts"} <= set(vocab) and len(vocab) == len(set(vocab))
    assert "fatty" not in clip.build_vocab(["fatty breasts"], min_count=2)


def test_saved_local_dir_loads_back_with_identical_outputs(standin, tmp_path):
    with torch.no_grad():
        standin.model.logit_scale.fill_(2.5)  # a trained value, not the initial one
    folder = clip.save_local_dir(standin, tmp_path / "biomedclip-like")
    assert {p.name for p in folder.iterdir()} == {
        "open_clip_config.json",
        "open_clip_model.safetensors",
        "config.json",
        "vocab.txt",
        "tokenizer_config.json",
    }
    loaded = clip.load_clip(f"local-dir:{folder}")
    tokens = standin.tokenize(TEXTS)
    assert torch.equal(loaded.tokenize(TEXTS), tokens)
    for a, b in zip(_outputs(standin.model, tokens), _outputs(loaded.model, tokens), strict=True):
        assert torch.equal(a, b)
    assert loaded.image_size == 32 and loaded.mean == clip.CLIP_MEAN


def test_a_model_without_its_config_is_not_saved(standin, tmp_path):
    import dataclasses

    bare = dataclasses.replace(standin, config={}, source="hf-hub:x")
    with pytest.raises(ValueError, match="hf-hub:x: no open_clip config"):
        clip.save_local_dir(bare, tmp_path / "m")
    assert not (tmp_path / "m").exists()


def test_local_dir_names_what_is_missing_and_writes_nothing(standin, tmp_path):
    folder = clip.save_local_dir(standin, tmp_path / "m")
    (folder / "vocab.txt").unlink()
    before = sorted(p.name for p in folder.iterdir())
    with pytest.raises(clip.ClipLoadError, match="lacks vocab.txt"):
        clip.load_clip(f"local-dir:{folder}")
    (folder / "open_clip_model.safetensors").unlink()
    with pytest.raises(clip.ClipLoadError, match="open_clip_model.safetensors or open_clip_py"):
        clip.load_clip(f"local-dir:{folder}")
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        set(before) - {"open_clip_model.safetensors"}
    )
    with pytest.raises(clip.ClipLoadError, match="folder .*nowhere not found; offline choices"):
        clip.load_clip(f"local-dir:{tmp_path / 'nowhere'}")


def test_a_damaged_config_is_named(standin, tmp_path):
    folder = clip.save_local_dir(standin, tmp_path / "m")
    (folder / "open_clip_config.json").write_text(json.dumps({"preprocess_cfg": {}}))
    with pytest.raises(
        clip.ClipLoadError, match="open_clip_config.json is not an open_clip config"
    ):
        clip.load_clip(f"local-dir:{folder}")


def test_hub_id_fails_at_once_offline_naming_the_offline_choices(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert clip.hub_reachable() is False
    with pytest.raises(clip.ClipLoadError) as err:
        clip.load_clip(clip.BIOMEDCLIP)
    message = str(err.value)
    assert clip.BIOMEDCLIP in message and "'local-dir:" in message and "'standin'" in message


@pytest.mark.parametrize(
    "spec, match",
    [
        ("", "must be a non-empty string"),
        (None, "must be a non-empty string"),
        ("BiomedCLIP", "is not 'hf-hub:...', 'local-dir:...' or 'standin'"),
    ],
)
def test_bad_specs_are_refused(spec, match):
    with pytest.raises(clip.ClipLoadError, match=match):
        clip.load_clip(spec)


def test_standin_needs_texts_and_a_folder(tmp_path):
    with pytest.raises(clip.ClipLoadError, match="needs texts"):
        clip.load_clip(clip.STANDIN, folder=tmp_path, **TINY)
    with pytest.raises(clip.ClipLoadError, match="needs a folder"):
        clip.load_clip(clip.STANDIN, texts=TEXTS, **TINY)


def test_zero_shot_is_the_softmax_of_scaled_cosines(standin):
    prompts = list(mh.vocab.DENSITY_PROMPTS)
    images = torch.rand(5, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    probs = clip.zero_shot_probs(standin, images.numpy(), prompts, n_classes=4, batch_size=2)
    model = standin.model.eval()
    with torch.no_grad():
        img = model.encode_image(images)
        txt = model.encode_text(standin.tokenize(prompts))
        cos = torch.nn.functional.cosine_similarity(img[:, None], txt[None], dim=-1)
        expected = (model.logit_scale.exp() * cos).softmax(-1)
    assert probs.shape == (5, 4)
    assert torch.allclose(torch.from_numpy(probs), expected, atol=1e-5)
    logits = clip.PromptClassifier(standin, prompts)(images)
    assert logits.requires_grad and logits.shape == (5, 4)  # Grad-CAM needs the graph


@pytest.mark.parametrize(
    "prompts, match",
    [
        (["fatty", "dense"], r"2 prompts given for 4 classes"),
        ("extremely dense breasts", "list of non-empty strings"),
        (["a", "", "c", "d"], "list of non-empty strings"),
    ],
)
def test_prompt_lists_of_the_wrong_shape_are_named(standin, prompts, match):
    with pytest.raises(ValueError, match=match):
        clip.prompt_embeddings(standin, prompts, n_classes=4)


def test_contrastive_loss_scores_both_towers_and_trains_them_through_fit(tmp_path):
    """The training callback is the weighted contrastive loss of the two towers' outputs
    at the model's temperature, and one epoch of mh.training.fit moves both towers."""
    standin = clip.load_clip(clip.STANDIN, texts=TEXTS, folder=tmp_path, seed=2, **TINY)
    gen = torch.Generator().manual_seed(0)
    labels = torch.tensor([0, 1, 1, 0])
    images = torch.randn(4, 3, 32, 32, generator=gen)
    tokens = standin.tokenize(["Left CC.", "Right MLO.", "Right MLO.", "Left CC."])
    model = standin.model.eval()
    weights = torch.tensor([0.5, 1.5])
    with torch.no_grad():
        expected = mh.models.losses.weighted_contrastive_loss(
            model.encode_image(images),
            model.encode_text(tokens),
            labels,
            model.logit_scale.exp(),
            weights,
        )
        got = clip.contrastive_loss(weights)(model, (images, tokens, labels))
        plain = clip.contrastive_loss()(model, (images, tokens, labels))
    assert got.item() == pytest.approx(expected.item(), rel=1e-6)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    history = mh.training.fit(
        model, lambda e: [(images, tokens, labels)], clip.contrastive_loss(), opt, epochs=1
    )
    after = model.state_dict()
    moved = {k.split(".")[0] for k in before if not torch.equal(before[k], after[k])}
    assert {"visual", "text", "logit_scale"} <= moved
    assert history.rows[0]["loss"] == pytest.approx(plain.item(), rel=0.1)  # dropout aside


@pytest.mark.parametrize("seed", range(3))
def test_contrastive_training_teaches_the_standin_a_toy_task(tmp_path, seed):
    """Two classes told apart by brightness (normalised as the pipelines do), paired with
    two prompts: 20 epochs of mh.training.fit with the contrastive loss take zero-shot
    accuracy to 1 from a random start, whatever the seed (with BiomedCLIP's CLS pooler
    on a random text tower every seed collapsed to chance)."""
    prompts = ["a dark picture", "a bright picture"]
    torch.manual_seed(seed)
    model = clip.load_clip(clip.STANDIN, texts=prompts, folder=tmp_path, seed=seed, **TINY)
    gen = torch.Generator().manual_seed(0)
    labels = torch.arange(32) % 2
    raw = torch.rand(32, 3, 32, 32, generator=gen) * 0.5 + labels[:, None, None, None] * 0.5
    images = (raw - 0.45) / 0.27
    tokens = model.tokenize([prompts[i] for i in labels.tolist()])
    opt = torch.optim.AdamW(model.model.parameters(), lr=1e-3)
    batches = [(images[i : i + 16], tokens[i : i + 16], labels[i : i + 16]) for i in (0, 16)]
    mh.training.fit(model.model, lambda e: batches, clip.contrastive_loss(), opt, epochs=20)
    probs = clip.zero_shot_probs(model, images.numpy(), prompts)
    assert (probs.argmax(1) == labels.numpy()).mean() == 1.0


def test_trim_padding_cuts_only_columns_that_are_padding_everywhere():
    tokens = torch.tensor([[2, 7, 3, 0, 0, 0], [2, 7, 8, 9, 3, 0]])
    assert clip.trim_padding(tokens).tolist() == [[2, 7, 3, 0, 0], [2, 7, 8, 9, 3]]
    assert clip.trim_padding(torch.zeros(2, 4, dtype=torch.long)).shape == (2, 1)
    assert clip.trim_padding(torch.tensor([[5, 1, 1]]), pad_id=1).tolist() == [[5]]
    full = torch.tensor([[4, 4], [4, 0]])
    assert torch.equal(clip.trim_padding(full), full)


def test_trimmed_tokens_give_the_same_text_embeddings(standin):
    texts = ["Left CC view of a fatty breast.", "Dense."]
    full = standin.tokenizer(texts)
    trimmed = standin.tokenize(texts)
    assert trimmed.shape[1] < full.shape[1]
    with torch.no_grad():
        a = standin.model.eval().encode_text(full)
        b = standin.model.encode_text(trimmed)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_the_prompt_loss_is_the_contrastive_loss_with_each_images_prompt(standin):
    prompts = standin.tokenize(["fatty", "dense breasts", "very dense breasts"])
    labels = torch.tensor([2, 0, 0, 1, 2])
    images = torch.randn(5, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    weights = torch.tensor([0.2, 1.0, 1.8])
    model = standin.model.eval()
    grads = []
    for fn, batch in [
        (clip.prompt_contrastive_loss(prompts, weights), (images, labels)),
        (clip.contrastive_loss(weights), (images, prompts[labels], labels)),
    ]:
        model.zero_grad()
        value = fn(model, batch)
        value.backward()
        grads.append(
            (value.item(), [p.grad.clone() for p in model.parameters() if p.grad is not None])
        )
    assert grads[0][0] == pytest.approx(grads[1][0], rel=1e-6)
    assert len(grads[0][1]) == len(grads[1][1]) > 0
    for g0, g1 in zip(grads[0][1], grads[1][1], strict=True):  # float32 sums in another
        torch.testing.assert_close(g0, g1, atol=1e-5, rtol=1e-3)  # order (CPU-dependent)


def test_prompt_embeddings_are_the_same_in_train_mode_and_leave_the_mode_alone(standin):
    """BERT's dropout must not make zero-shot scores random: the prompts are encoded in
    eval mode even while the model trains (a model fresh from training is in train mode)."""
    prompts = ["fatty breasts", "dense breasts"]
    model = standin.model.train()
    first = clip.prompt_embeddings(standin, prompts)
    assert model.training
    again = clip.prompt_embeddings(standin, prompts)
    model.eval()
    evaluated = clip.prompt_embeddings(standin, prompts)
    assert not model.training
    torch.testing.assert_close(first, again, rtol=0, atol=0)
    torch.testing.assert_close(first, evaluated, rtol=0, atol=0)


def test_an_image_size_the_tower_does_not_take_is_named(standin):
    assert clip.check_image_size(standin, 32) == 32
    with pytest.raises(
        ValueError, match="IMAGE_SIZE is 96 but the image tower of standin takes 32 x 32"
    ):
        clip.check_image_size(standin, 96)
    for bad in (0, 32.0, True, "32"):
        with pytest.raises(ValueError, match="IMAGE_SIZE must be a positive integer"):
            clip.check_image_size(standin, bad)
