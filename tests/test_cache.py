"""Tests for mammo_helpers.cache: the trained-model cache."""

from __future__ import annotations

import json

import pytest
import torch

from mammo_helpers.cache import CacheWarning, ModelCache, code_fingerprint


def _trainer(calls: list):
    def train():
        calls.append(1)
        torch.manual_seed(0)
        return {"state": torch.nn.Linear(2, 1).state_dict(), "history": [0.5, 0.25]}

    return train


def test_second_call_is_a_hit_with_identical_weights(tmp_path):
    cache, calls = ModelCache(tmp_path), []
    first, hit = cache.get_or_train("m", {"lr": 0.1, "epochs": 2}, _trainer(calls))
    assert not hit and calls == [1]
    again, hit = cache.get_or_train("m", {"epochs": 2, "lr": 0.1}, _trainer(calls))  # key order
    assert hit and calls == [1]
    assert torch.equal(again["state"]["weight"], first["state"]["weight"])
    assert again["history"] == [0.5, 0.25]
    (folder,) = (tmp_path / "models").iterdir()
    entry = json.loads((folder / "entry.json").read_text())
    assert entry["settings"] == {"lr": 0.1, "epochs": 2} and entry["train_seconds"] >= 0


def test_other_settings_or_code_train_again(tmp_path):
    cache, calls = ModelCache(tmp_path), []
    cache.get_or_train("m", {"lr": 0.1}, _trainer(calls))
    cache.get_or_train("m", {"lr": 0.2}, _trainer(calls))
    cache.get_or_train("m", {"lr": 0.1}, _trainer(calls), code=[_trainer])
    assert len(calls) == 3
    assert len(list((tmp_path / "models").iterdir())) == 3


def test_code_fingerprint_follows_the_source(tmp_path):
    f = tmp_path / "train.py"
    f.write_text("x = 1\n")
    before = code_fingerprint([f])
    assert code_fingerprint([f]) == before
    f.write_text("x = 2\n")
    assert code_fingerprint([f]) != before
    assert code_fingerprint([json]) != code_fingerprint([torch.nn.functional])
    with pytest.raises(TypeError, match="cannot hash"):
        code_fingerprint([3])


def test_a_failed_training_leaves_nothing(tmp_path):
    cache = ModelCache(tmp_path)

    def boom():
        raise RuntimeError("diverged")

    with pytest.raises(RuntimeError, match="diverged"):
        cache.get_or_train("m", {"lr": 1.0}, boom)
    assert not (tmp_path / "models").exists() or list((tmp_path / "models").iterdir()) == []


def test_a_damaged_entry_warns_and_trains_again(tmp_path):
    cache, calls = ModelCache(tmp_path), []
    cache.get_or_train("m", {}, _trainer(calls))
    entry = cache.entry("m", {})
    entry.model_path.write_bytes(b"not a torch file")
    with pytest.warns(CacheWarning, match="model.pt"):
        _, hit = cache.get_or_train("m", {}, _trainer(calls))
    assert not hit and len(calls) == 2


@pytest.mark.parametrize(
    ("name", "settings", "error", "pattern"),
    [
        ("a b", {}, ValueError, "model name"),
        ("m", [1], TypeError, "settings must be a dict"),
        ("m", {"f": float("nan")}, TypeError, "JSON values"),
        ("m", {"t": torch.zeros(1)}, TypeError, "not: \\['t'\\]"),
    ],
)
def test_bad_names_and_settings_are_named(tmp_path, name, settings, error, pattern):
    with pytest.raises(error, match=pattern):
        ModelCache(tmp_path).entry(name, settings)


def test_data_digest_sees_pixels_labels_texts_ids_and_order():
    import numpy as np

    from mammo_helpers.cache import data_digest

    x = np.arange(2 * 3 * 4 * 4, dtype=np.float32).reshape(2, 3, 4, 4)
    y = np.array([0, 1])
    ids = np.array(["P1", "P2"], dtype=object)  # object arrays hold pointers: values hashed
    base = data_digest(x, y, ["a", "b"], ids)
    assert base == data_digest(x.copy(), y.copy(), ["a", "b"], np.array(["P1", "P2"], dtype=object))
    x2 = x.copy()
    x2[0, 0, 0, 0] += 1e-3
    others = [
        data_digest(x2, y, ["a", "b"], ids),
        data_digest(x, y[::-1].copy(), ["a", "b"], ids),
        data_digest(x, y, ["b", "a"], ids),
        data_digest(x, y, ["ab"], ids),
        data_digest(x, y, ["a", "b"], ids[::-1].copy()),
        data_digest(x.astype(np.float64), y, ["a", "b"], ids),
        data_digest(x[:1], y, ["a", "b"], ids),
    ]
    assert len({base, *others}) == 8
