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
