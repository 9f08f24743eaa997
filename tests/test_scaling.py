"""Tests for mammo_helpers.scaling (chapter 06): FLOPs against hand counts, the papers' work
recomputed by hand, parallel efficiency and projections on hand cases, and one small real
run of each throughput measurement (torchrun with gloo; a 2-worker dask LocalCluster)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from mammo_helpers import scaling
from mammo_helpers.run import load_scale
from mammo_helpers.xai import windows

# ---------------------------------------------------------------------------- FLOPs


def test_model_flops_of_a_conv_and_a_linear_layer_match_a_hand_count():
    # 2 FLOPs per multiply-add: 2 x batch x C_out x H_out x W_out x C_in x k x k
    conv = nn.Conv2d(3, 8, 3, padding=1)
    assert scaling.model_flops(conv, (2, 3, 16, 16)) == 2 * 2 * 8 * 16 * 16 * 3 * 3 * 3
    strided = nn.Conv2d(3, 4, 3, stride=2)  # 17 px -> floor((17 - 3) / 2) + 1 = 8 px
    assert scaling.model_flops(strided, (1, 3, 17, 17)) == 2 * 4 * 8 * 8 * 3 * 9
    linear = nn.Linear(10, 5)  # 2 x batch x in x out (the bias is not counted)
    assert scaling.model_flops(linear, (4, 10)) == 2 * 4 * 10 * 5
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 6 * 6, 3))
    assert scaling.model_flops(net, (1, 1, 8, 8)) == 2 * 2 * 6 * 6 * 9 + 2 * 72 * 3
    with torch.device("meta"):  # the same count without computing anything
        meta = nn.Conv2d(3, 8, 3, padding=1)
    assert scaling.model_flops(meta, (2, 3, 16, 16)) == scaling.model_flops(conv, (2, 3, 16, 16))
    assert conv.training  # the mode is restored


def test_forward_flops_of_a_paper_model_scale_with_its_input():
    small = scaling.forward_flops("resnet50", (224, 224))
    assert 7e9 < small < 9e9  # ResNet-50: about 4.1 G multiply-adds at 224 px
    assert scaling.forward_flops("resnet50", (448, 448)) == pytest.approx(4 * small, rel=0.01)


# ---------------------------------------------------------------------------- work


def _chapter_02(**changes) -> dict:
    params = {
        "WINDOW": 256, "STRIDE": 48, "CORRELAX_STRIDE": 48, "N_MASKS": 2560,
        "N_CORRELAX_IMAGES": 1_000_000, "EPOCHS": 50, "CROPS_PER_SAMPLE": 1, "IMAGE_SIZE": 256,
        "BACKBONE": "efficientnet_v2_s",
    }  # fmt: skip
    return {"02_correlax": params | changes}


def test_correlax_work_at_the_papers_settings_by_hand():
    """2,560 masks at stride 48 on the paper's mean breast ROI (885 x 2497 px, §3.1):
    ceil(2497 / 48) = 53 rows x ceil(885 / 48) = 19 columns = 1,007 windows, each forwarded
    once unmasked and 2,560 times masked: 2,578,927 passes, the issue's "about 2.6 million
    forward passes per mammogram"."""
    work = scaling.paper_work(_chapter_02()).set_index("job")
    assert scaling.n_windows((2497, 885), 256, 48) == 53 * 19 == 1007
    grid = windows.window_grid(np.ones((2497, 885), bool), 256, 48)
    assert grid.n_windows == 1007
    per_image = 1007 * 2561
    assert 2.55e6 < per_image < 2.65e6
    assert work.loc["CorRELAX maps", "count"] == per_image * 357  # test images with findings
    assert work.loc["prediction maps", "count"] == 1007 * 357
    assert work.loc["crop classifier", "count"] == 16_544 * 50
    assert (work.passes_per_unit == [3.0, 1.0, 1.0]).all()
    fewer = scaling.paper_work(_chapter_02(N_CORRELAX_IMAGES=10, N_MASKS=256, CORRELAX_STRIDE=32))
    assert fewer.set_index("job").loc["CorRELAX maps", "count"] == 79 * 28 * 257 * 10


def test_chapter_03_forwards_are_counted_as_chapter_03_counts_them():
    p = {"IMAGE_HW": [1024, 512], "IG_STEPS": 200, "LIME_SAMPLES": 200, "SHAP_SAMPLES": 150,
         "RELAX_MASKS": 256, "CORRELAX_WINDOW": 256, "CORRELAX_STRIDE": 128, "CORRELAX_MASKS": 64}  # fmt: skip
    counts = scaling.method_forwards(p)
    # occlusion: 60 px window, stride 30 at 1024 px (§3.2.4): (ceil(964/30) + 1) x
    # (ceil(452/30) + 1) positions + the unoccluded image
    assert counts["occlusion"] == 34 * 17 + 1 == 579
    assert counts["correlax"] == (1024 // 128) * (512 // 128) * 65 == 2080
    assert counts["relax"] == 257 and counts["kernel_shap"] == 150
    assert counts["integrated_gradients"] == 200 and counts["deeplift"] == 2
    chapter = p | {"PATCH_SIZE": 224, "PATCH_BACKBONES": ["resnet50"], "PATCH_EPOCHS": 2,
                   "WHOLE_BACKBONE": "efficientnet_b0", "WHOLE_EPOCHS": 3, "N_EVAL_IMAGES": None}  # fmt: skip
    work = scaling.paper_work({"03_xai_iou": chapter}).set_index("job")
    assert work.loc["occlusion maps", "count"] == 579 * 722  # every malignant validation image
    assert work.loc["integrated_gradients maps", "passes_per_unit"] == 2.0
    assert work.loc["lime maps", "passes_per_unit"] == 1.0
    assert work.loc["whole-image classifier", "count"] == 5_788 * 3
    assert work.loc["patch classifier resnet50", "count"] == 6_090 * 2


def test_paper_work_reads_the_paper_scale_as_the_runner_merges_it():
    work = scaling.paper_work(load_scale("paper"))
    assert list(work.columns[:5]) == ["chapter", "job", "units", "count", "source"]
    assert list(work.chapter.unique()) == list(scaling.CHAPTERS)
    assert (work["count"] > 0).all() and work.source.str.len().gt(0).all()
    assert work.equals(scaling.paper_work(scaling.chapter_parameters("paper")))
    rows = work.set_index("job")["count"]
    assert rows["fine-tune BiomedCLIP, every fold"] == 19_000 * 4 * 30  # 5 folds, EPOCHS 30
    assert rows["two-stage fine-tuning, Config1 and Config2"] == 2 * 1_064 * (50 + 30)
    with pytest.raises(KeyError, match="02_correlax has no parameter N_MASKS"):
        scaling.paper_work({"02_correlax": {k: v for k, v in _chapter_02()["02_correlax"].items()
                                            if k != "N_MASKS"}})  # fmt: skip


# ---------------------------------------------------------------------------- efficiency, projection


def test_parallel_efficiency_by_hand():
    assert scaling.parallel_efficiency(10.0, 15.0, 2) == 0.75
    assert scaling.parallel_efficiency(4.0, 32.0, 8) == 1.0
    assert scaling.parallel_efficiency(10.0, 5.0, 1) == 0.5
    for bad in ((0, 1, 2), (1, -1, 2), (1, 1, 0), (1, math.nan, 2)):
        with pytest.raises(ValueError):
            scaling.parallel_efficiency(*bad)


def test_project_by_hand():
    # 1e6 units at 10 units/s on the CPU: 1e5 s; at 1 TFLOP per unit a GPU of 312 TFLOP/s at
    # 35 % does 109.2 units/s: 9,157.5 s; 8 GPUs at 90 % efficiency: 7.2 times faster
    out = scaling.project(1e6, 10.0, flops_per_unit=1e12)
    assert out["kind"] == "projected"
    assert out["cpu_hours"] == pytest.approx(1e5 / 3600)
    assert out["gpu_hours"] == pytest.approx(1e6 / 109.2 / 3600)
    assert out["n_gpu_hours"] == pytest.approx(1e6 / 109.2 / 3600 / 7.2)
    assert out["assumptions"] == {"gpu_tflops": 312.0, "utilisation": 0.35, "n_gpus": 8,
                                  "efficiency": 0.9, "cpu": "the measured rate, scaled linearly by work"}  # fmt: skip
    other = scaling.project(
        [1e6, 2e6], [10.0, 10.0], flops_per_unit=1e12, gpu_tflops=100.0, utilisation=0.5,
        n_gpus=4, efficiency=0.5,
    )  # fmt: skip
    np.testing.assert_allclose(other["gpu_hours"], np.array([1e6, 2e6]) / 50 / 3600)
    np.testing.assert_allclose(other["n_gpu_hours"], other["gpu_hours"] / 2)
    np.testing.assert_allclose(other["cpu_hours"], [1e5 / 3600, 2e5 / 3600])
    with pytest.raises(ValueError, match="utilisation"):
        scaling.project(1.0, 1.0, flops_per_unit=1.0, utilisation=1.5)


def test_projection_table_and_chapter_summary_follow_from_their_inputs():
    import pandas as pd

    work = scaling.paper_work(_chapter_02(N_CORRELAX_IMAGES=2))
    rates = pd.DataFrame([{"model": "efficientnet_v2_s", "input_hw": (256, 256), "gflops": 2.0,
                           "cpu_gflops_per_s": 40.0}])  # fmt: skip
    table = scaling.projection_table(work, rates, utilisation=0.5).set_index("job")
    row = table.loc["crop classifier"]
    assert row.gflops_per_unit == 6.0 and row.cpu_units_per_s == pytest.approx(40 / 6)
    assert row.cpu_hours == pytest.approx(16_544 * 50 / (40 / 6) / 3600)
    assert row.gpu_hours == pytest.approx(16_544 * 50 * 6e9 / (312e12 * 0.5) / 3600)
    summary = scaling.chapter_summary(table.reset_index()).set_index("chapter")
    flops = (table["count"] * table.gflops_per_unit).sum() * 1e9
    assert summary.loc["02_correlax", "pflop"] == pytest.approx(flops / 1e15)
    assert summary.loc["02_correlax", "cpu_gflops_per_s"] == pytest.approx(40.0)
    assert summary.loc["02_correlax", "cpu_hours"] == pytest.approx(table.cpu_hours.sum())
    assert "projected" in row.basis and "measured" in row.basis


# ---------------------------------------------------------------------------- real runs


def test_training_throughput_in_one_process_and_under_torchrun():
    sizes = {"images": 128, "epochs": 2, "batch_size": 32, "image_size": 32, "seed": 0}
    one = scaling.training_throughput(1, **sizes)
    two = scaling.training_throughput(2, **sizes)
    for run in (one, two):
        assert run["samples"] == 256 and run["samples_per_s"] > 0
        assert run["wall_s"] >= run["fit_s"] > 0
        assert math.isfinite(run["final_loss"])
    assert two["nproc"] == 2 and two["wall_samples_per_s"] < two["samples_per_s"]
    # both runs learn the toy task (the loss of chance is ln 2)
    assert one["final_loss"] < math.log(2) and two["final_loss"] < math.log(2)
    assert 0 < scaling.parallel_efficiency(one["samples_per_s"], two["samples_per_s"], 2)


def test_explanation_throughput_serial_and_on_a_local_cluster_give_identical_maps():
    out = scaling.explanation_throughput(
        2, images=4, window=32, stride=32, n_masks=16, seed=0, scheduler="local"
    )
    assert out["max_abs_difference"] == 0.0
    assert out["serial_images_per_s"] > 0 and out["parallel_images_per_s"] > 0
    assert out["image_hw"] == (64, 32) and 0 < out["forwards_per_image"] <= 2 * 17
    assert out["wall_s"] >= out["parallel_s"] + out["startup_s"] * 0.99
