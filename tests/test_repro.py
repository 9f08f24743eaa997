"""Tests for mammo_helpers.repro: seeds, devices, provenance."""

from __future__ import annotations

import random
import subprocess

import numpy as np
import pytest
import torch

from mammo_helpers import repro


def _draws():
    return random.random(), np.random.random(), torch.rand(1).item()  # noqa: NPY002


def test_same_seed_same_draws_other_seed_other_draws():
    repro.seed_everything(7)
    first = _draws()
    repro.seed_everything(7)
    assert _draws() == first
    repro.seed_everything(8)
    assert all(a != b for a, b in zip(_draws(), first, strict=True))
    assert torch.backends.cudnn.deterministic is True


def test_same_seed_same_trained_weights():
    def train():
        repro.seed_everything(3)
        net = torch.nn.Linear(4, 1)
        opt = torch.optim.SGD(net.parameters(), lr=0.1)
        x, y = torch.randn(32, 4), torch.randn(32, 1)
        for _ in range(5):
            opt.zero_grad()
            torch.nn.functional.mse_loss(net(x), y).backward()
            opt.step()
        return net.weight.detach().clone()

    assert torch.equal(train(), train())


@pytest.mark.parametrize("bad", [-1, 2**32, 1.0, "1", True, None])
def test_bad_seeds_are_named(bad):
    with pytest.raises(ValueError, match="SEED must be an integer"):
        repro.seed_everything(bad)


def test_resolve_device_on_this_machine(monkeypatch):
    assert repro.resolve_device("cpu") == torch.device("cpu")
    assert repro.resolve_device(" CPU ") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    assert repro.resolve_device("auto").type in ("cpu", "mps")
    with pytest.raises(
        RuntimeError, match="DEVICE 'cuda' is not available here; this machine offers cpu"
    ):
        repro.resolve_device("cuda")
    with pytest.raises(ValueError, match="GPU index must be a number"):
        repro.resolve_device("cuda:x")
    with pytest.raises(ValueError, match="DEVICE must be one of auto, cpu, cuda, cuda:N, mps"):
        repro.resolve_device("gpu")
    with pytest.raises(ValueError, match="DEVICE must be one of"):
        repro.resolve_device(0)


def test_resolve_device_with_two_gpus(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert repro.resolve_device("auto") == torch.device("cuda")
    assert repro.resolve_device("cuda:1") == torch.device("cuda:1")
    with pytest.raises(RuntimeError, match="'cuda:2' is not available.*cuda:0, cuda:1"):
        repro.resolve_device("cuda:2")


def test_provenance_records_versions_device_seed_and_commit():
    info = repro.provenance(seed=4, device=torch.device("cpu"), started=0.0)
    assert info["seed"] == 4 and info["device"] == "cpu"
    assert info["packages"]["numpy"] == np.__version__
    assert info["packages"]["torch"] == torch.__version__.split("+")[0] or info["packages"]["torch"]
    assert info["wall_time_s"] > 0
    head = subprocess.run(
        ["git", "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    assert info["git_commit"].split("+")[0] == head
    assert repro.package_versions(["no-such-package-xyz"]) == {
        "no-such-package-xyz": "not installed"
    }


def test_git_commit_outside_a_repository(tmp_path):
    assert repro.git_commit(tmp_path) == "unknown"
