"""Tests for mammo_helpers.devices: DEVICE, PRECISION and loader settings."""

from __future__ import annotations

import pytest
import torch

from mammo_helpers import devices


def test_resolve_device_on_this_machine(monkeypatch):
    assert devices.resolve_device("cpu") == torch.device("cpu")
    assert devices.resolve_device(" CPU ") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    assert devices.resolve_device("auto").type in ("cpu", "mps")
    with pytest.raises(
        RuntimeError, match="DEVICE 'cuda' is not available here; this machine offers cpu"
    ):
        devices.resolve_device("cuda")
    with pytest.raises(ValueError, match="GPU index must be a number"):
        devices.resolve_device("cuda:x")
    with pytest.raises(ValueError, match="DEVICE must be one of auto, cpu, cuda, cuda:N, mps"):
        devices.resolve_device("gpu")
    with pytest.raises(ValueError, match="DEVICE must be one of"):
        devices.resolve_device(0)


def test_resolve_device_with_two_gpus(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert devices.resolve_device("auto") == torch.device("cuda")
    assert devices.resolve_device("cuda:1") == torch.device("cuda:1")
    with pytest.raises(RuntimeError, match="'cuda:2' is not available.*cuda:0, cuda:1"):
        devices.resolve_device("cuda:2")


def test_precision_auto_is_fp32_off_the_gpu_and_names_bad_values():
    cpu = torch.device("cpu")
    assert devices.resolve_precision("auto", cpu) == "fp32"
    assert devices.resolve_precision(" BF16 ", cpu) == "bf16"
    assert devices.resolve_precision("fp32", cpu) == "fp32"
    with pytest.raises(ValueError, match="PRECISION 'fp16' needs a CUDA device"):
        devices.resolve_precision("fp16", cpu)
    with pytest.raises(ValueError, match="PRECISION must be one of auto, fp32, bf16, fp16"):
        devices.resolve_precision("half", cpu)
    with pytest.raises(ValueError, match="PRECISION must be one of"):
        devices.resolve_precision(None, cpu)


def test_precision_auto_on_gpus_with_and_without_bf16(monkeypatch):
    gpu = torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    assert devices.resolve_precision("auto", gpu) == "bf16"
    assert devices.resolve_precision("fp16", gpu) == "fp16"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    assert devices.resolve_precision("auto", gpu) == "fp16"
    with pytest.raises(ValueError, match="no bfloat16"):
        devices.resolve_precision("bf16", gpu)


def test_autocast_runs_matmuls_in_bf16_and_fp32_is_untouched():
    cpu = torch.device("cpu")
    x = torch.randn(4, 8)
    w = torch.randn(8, 3)
    with devices.autocast(cpu, "bf16"):
        assert (x @ w).dtype == torch.bfloat16
    with devices.autocast(cpu, "fp32"):
        assert (x @ w).dtype == torch.float32
    with pytest.raises(ValueError, match="fp32, bf16 or fp16"):
        devices.autocast(cpu, "auto")


def test_grad_scaler_scales_only_for_fp16():
    assert not devices.grad_scaler(torch.device("cpu"), "bf16").is_enabled()
    assert not devices.grad_scaler(torch.device("cpu"), "fp32").is_enabled()
    loss = torch.tensor(2.0)
    assert devices.grad_scaler(torch.device("cpu"), "fp32").scale(loss) is loss


def test_loader_options_per_device(monkeypatch):
    cpu, gpu = torch.device("cpu"), torch.device("cuda")
    assert devices.loader_options(cpu) == {
        "num_workers": 0, "pin_memory": False, "persistent_workers": False
    }  # fmt: skip
    monkeypatch.setattr("os.cpu_count", lambda: 4)
    assert devices.loader_options(gpu) == {
        "num_workers": 3, "pin_memory": True, "persistent_workers": True, "prefetch_factor": 2
    }  # fmt: skip
    monkeypatch.setattr("os.cpu_count", lambda: 64)
    assert devices.loader_options(gpu)["num_workers"] == devices.GPU_LOADER_WORKERS
    assert devices.loader_options(cpu, 2)["num_workers"] == 2
    for bad in (-1, 1.5, True, "2"):
        with pytest.raises(ValueError, match="NUM_WORKERS must be an integer >= 0"):
            devices.loader_options(cpu, bad)


def test_prepare_model_uses_channels_last_for_conv_nets_only():
    conv = devices.prepare_model(torch.nn.Conv2d(3, 4, 3), torch.device("cpu"))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert not conv.weight.is_contiguous()
    plain = devices.prepare_model(torch.nn.Conv2d(3, 4, 3), "cpu", channels_last=False)
    assert plain.weight.is_contiguous()
    linear = devices.prepare_model(torch.nn.Linear(3, 4), "cpu")
    assert linear.weight.is_contiguous()


def test_torch_threads_sets_and_restores_even_on_an_error():
    before = torch.get_num_threads()
    with devices.torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with pytest.raises(KeyError), devices.torch_threads(1):
        raise KeyError
    assert torch.get_num_threads() == before
