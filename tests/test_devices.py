"""Tests for mammo_helpers.devices: DEVICE, PRECISION and loader settings."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from mixed_devices import NoMixedDevices

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
    conv = devices.prepare_model(torch.nn.Conv2d(3, 4, 3), torch.device("cpu"), channels_last=True)
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert not conv.weight.is_contiguous()
    plain = devices.prepare_model(torch.nn.Conv2d(3, 4, 3), "cpu", channels_last=False)
    assert plain.weight.is_contiguous()
    linear = devices.prepare_model(torch.nn.Linear(3, 4), "cpu", channels_last=True)
    assert linear.weight.is_contiguous()


def test_prepare_model_uses_channels_last_by_default_on_cuda_only(monkeypatch):
    seen = []
    monkeypatch.setattr(torch.nn.Module, "to", lambda self, *a, **k: seen.append((a, k)) or self)
    devices.prepare_model(torch.nn.Conv2d(3, 4, 3), torch.device("cpu"))
    assert seen == [((torch.device("cpu"),), {})]
    devices.prepare_model(torch.nn.Conv2d(3, 4, 3), "cuda")
    assert seen[1:] == [(("cuda",), {}), ((), {"memory_format": torch.channels_last})]


class _Reached(Exception):
    """Raised by a training loss in these tests with the devices of its batch."""


class _DeviceProbe(torch.nn.Module):
    """A model whose weights live on the ``meta`` device (shapes, no data): it records
    the devices of its inputs and returns meta ``(features, logits)`` for two labels, so
    a helper runs on until it copies a result out of the meta device."""

    labels = ("a", "b")

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(2, device="meta"))
        self.layer = torch.nn.Identity()  # a layer for Grad-CAM's hooks
        self.seen: set[str] = set()

    def forward(self, *inputs):
        self.seen |= {x.device.type for x in inputs}
        feats = self.layer(inputs[0] * self.weight[0]).flatten(1)[:, :2] * self.weight
        return feats, feats + 1


class _LogitsProbe(_DeviceProbe):
    """:class:`_DeviceProbe` returning logits only (CLIP's scorers, Grad-CAM's models)."""

    def forward(self, *inputs):
        return super().forward(*inputs)[1]


def test_model_device_is_the_first_parameters_or_buffers_and_the_cpu_without_either():
    assert devices.model_device(_DeviceProbe()) == torch.device("meta")
    buffered = torch.nn.BatchNorm1d(2, affine=False).to("meta")
    assert devices.model_device(buffered) == torch.device("meta")
    assert devices.model_device(torch.nn.ReLU()) == torch.device("cpu")


def test_to_device_moves_nested_tensors_and_keeps_containers_and_other_values():
    from collections import namedtuple

    Pair = namedtuple("Pair", "x y")
    batch = (
        torch.ones(2),
        [{"boxes": torch.zeros(1, 4), "name": "a"}],
        Pair(torch.ones(1), 3),
        np.ones(2),
    )
    moved = devices.to_device(batch, "meta")
    assert type(moved) is tuple and type(moved[1]) is list and type(moved[2]) is Pair
    assert moved[0].device.type == moved[1][0]["boxes"].device.type == "meta"
    assert moved[2].x.device.type == "meta" and moved[2].y == 3 and moved[1][0]["name"] == "a"
    assert moved[3] is batch[3]


def test_to_numpy_brings_half_precision_back_as_float32():
    assert devices.to_numpy(torch.ones(2, dtype=torch.bfloat16)).dtype == np.float32
    assert devices.to_numpy(torch.ones(2, dtype=torch.float64)).dtype == np.float64
    x = torch.ones(2, requires_grad=True) * 2
    np.testing.assert_array_equal(devices.to_numpy(x), [2.0, 2.0])


def test_predict_batches_equals_one_pass_and_returns_tuples_for_tuple_steps():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Dropout(0.5))
    x = np.random.default_rng(0).normal(size=(10, 3)).astype(np.float64)
    net.train()
    out = devices.predict_batches(net, x, lambda m, b: m(b), batch_size=3)
    assert not net.training  # eval mode: dropout off, so batches agree with one pass
    with torch.no_grad():
        np.testing.assert_allclose(out, net(torch.as_tensor(x, dtype=torch.float32)).numpy())
    pair = devices.predict_batches(net, x, lambda m, b: (m(b), b.sum(1)), batch_size=4)
    assert isinstance(pair, tuple) and pair[1].shape == (10,)
    np.testing.assert_allclose(pair[1], x.sum(1), rtol=1e-6)
    assert devices.predict_batches(net, np.zeros((0, 3)), lambda m, b: m(b), batch_size=2) is None
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        devices.predict_batches(net, x, lambda m, b: m(b), batch_size=0)


def test_fit_moves_each_batch_to_the_models_device():
    from mammo_helpers import training

    model = _DeviceProbe()
    seen = []

    def loss(net, batch):
        seen.append({t.device.type for t in batch})
        raise _Reached

    def batches(epoch):
        yield torch.ones(2, 3), torch.zeros(2)

    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    with pytest.raises(_Reached):
        training.fit(model, batches, loss, opt, epochs=1)
    assert seen == [{"meta"}]


def _window_probabilities(model):
    from mammo_helpers.xai import windows

    mask = np.ones((8, 8), bool)
    grid = windows.window_grid(mask, 4, 4)
    windows.window_probabilities(model, np.zeros((8, 8, 1), np.float32), grid)


def _correlax(model):
    from mammo_helpers.xai import relax

    relax.correlax(model, torch.zeros(1, 1, 8, 8), relax.MaskBank(4, 2, 0.5, 8), labels=())


def _mask_samples(model):
    from mammo_helpers.xai import relax

    relax.mask_samples(model, torch.zeros(1, 8, 8), relax.MaskBank(4, 2, 0.5, 8))


def _correlax_loop(model):
    from mammo_helpers.xai import relax

    relax.correlax_loop(model, torch.zeros(1, 1, 8, 8), relax.MaskBank(4, 2, 0.5, 8))


def _helper(module: str, name: str, *args):
    def call(model):
        import importlib

        getattr(importlib.import_module(f"mammo_helpers.{module}"), name)(model, *args)

    return call


def _pfeat_probabilities(_):
    from mammo_helpers.models import fusion

    model = fusion.PFeat(4, 4, 4, 1).to("meta")
    fusion.predict_pfeat(model, [np.zeros((3, 4, 4), np.float32)] * 3)


def _detection(name: str):
    def call(_):
        from mammo_helpers.models import detection

        model = detection.build_detector(2, seed=0).to("meta")
        images = np.zeros((1, 1, 96, 96), np.float32)
        if name == "detect":
            detection.detect(model, images)
        else:
            detection.roi_features(model, images, [np.array([[0.0, 0.0, 10.0, 10.0]])])

    return call


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    from mammo_helpers.models import clip

    tiny = dict(vision="test_vit", image_size=32, embed_dim=16, text_width=16, text_layers=1)
    texts = ["a fatty breast", "a dense breast"]
    model = clip.load_clip(clip.STANDIN, texts=texts, folder=tmp_path_factory.mktemp("t"), **tiny)
    model.model.to("meta")
    return model, texts


def test_clip_helpers_compute_on_the_models_device(tiny_clip):
    """BERT's attention mask needs data, so the text tower stops on ``meta`` (a
    RuntimeError naming meta tensors), after its tokens reached it without a mixed-device
    operation."""
    from mammo_helpers.models import clip, clip_training

    standin, prompts = tiny_clip
    stopped = pytest.raises((NotImplementedError, RuntimeError), match="meta tensor")
    with stopped, NoMixedDevices():
        clip.zero_shot_probs(standin, np.zeros((3, 3, 32, 32), np.float32), prompts)
    loss = clip.prompt_contrastive_loss(standin.tokenize(prompts))
    batch = devices.to_device((torch.zeros(2, 3, 32, 32), torch.tensor([0, 1])), "meta")
    with stopped, NoMixedDevices():
        loss(standin.model, batch)
    with NoMixedDevices():
        classifier = clip_training.ImageClassifier(standin, 2)
    assert {p.device.type for p in classifier.parameters()} == {"meta"}


X4 = np.zeros((3, 1, 8, 8), np.float32)
#: Helpers given the probe model (the others build their own model on ``meta``).
PROBED = {"crop_training", "image_training", "task_training", "end2end", "clip_training"}
PROBED |= {"gradcam", "windows", "relax"}
INFERENCE_HELPERS = {
    "crop_training.predict": _helper("models.crop_training", "predict", X4),
    "image_training.predict_proba": _helper("models.image_training", "predict_proba", X4),
    "task_training.predict": _helper("models.task_training", "predict", X4),
    "end2end.probabilities": _helper("models.end2end", "probabilities", X4),
    "clip_training.predict_probs": _helper("models.clip_training", "predict_probs", X4),
    "gradcam.gradcam": lambda m: _helper("xai.gradcam", "gradcam", X4, m.layer, [0, 0, 0])(m),
    "windows.window_probabilities": _window_probabilities,
    "relax.correlax": _correlax,
    "relax.mask_samples": _mask_samples,
    "relax.correlax_loop": _correlax_loop,
    "fusion.predict_pfeat": _pfeat_probabilities,
    "detection.detect": _detection("detect"),
    "detection.roi_features": _detection("roi_features"),
}


@pytest.mark.parametrize("name", sorted(INFERENCE_HELPERS))
def test_inference_helpers_compute_on_the_models_device(name):
    """The model (on ``meta``, standing in for a GPU) gets its inputs on its device, no
    operation mixes devices, and the helper's first copy back to the CPU is where it
    stops: what the helper would hand back on a GPU."""
    logits_only = name in ("clip_training.predict_probs", "gradcam.gradcam")
    model = _LogitsProbe() if logits_only else _DeviceProbe()
    with pytest.raises(NotImplementedError, match="meta"), NoMixedDevices():
        INFERENCE_HELPERS[name](model)
    assert model.seen == ({"meta"} if name.split(".")[0] in PROBED else set())


def test_every_trainer_of_the_package_hands_precision_to_fit():
    """Each call of ``training.fit`` in the chapters' trainers passes ``precision=`` on,
    and its function takes the parameter (a new trainer that forgets it fails here)."""
    import ast
    from pathlib import Path

    import mammo_helpers

    calls = 0
    for path in Path(mammo_helpers.__file__).parent.joinpath("models").glob("*.py"):
        for fn in ast.walk(ast.parse(path.read_text())):
            if not isinstance(fn, ast.FunctionDef):
                continue
            for call in ast.walk(fn):
                if isinstance(call, ast.Call) and ast.unparse(call.func) == "training.fit":
                    calls += 1
                    where = f"{path.name}:{fn.name}"
                    assert "precision" in {k.arg for k in call.keywords}, where
                    params = {a.arg for a in fn.args.args + fn.args.kwonlyargs}
                    assert "precision" in params, where
    assert calls == 8  # crop, image, task, patch classifier, stage, detector, P_feat, CLIP
