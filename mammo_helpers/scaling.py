"""Work, speed and time of the book's chapters at the papers' own scale (chapter 06, the
paper-scale appendix; issue 11 §4 "Measured and projected"; also ``tests/bench_parallel.py``).

Every number is one of four kinds, and says which:

* **from the papers**: dataset sizes (:data:`PAPER_SIZES`, each with its section) and, with
  the paper scale's parameters (``params/paper.yaml`` merged like the runner merges them),
  the work of each chapter's jobs in units a reader knows (training images x epochs,
  forward passes): :func:`paper_work`;
* **counted**: the FLOPs of one forward pass of a model (:func:`model_flops`, PyTorch's
  ``FlopCounterMode``; on the meta device nothing is computed: :func:`forward_flops`);
* **measured** on this machine: training samples/s in one process and under ``torchrun``
  (:func:`training_throughput`), CorRELAX maps/s serially and on a dask cluster
  (:func:`explanation_throughput`), and a model's forward FLOP/s on this CPU
  (:func:`cpu_rates`); :func:`parallel_efficiency` compares two rates;
* **projected**: hours on this CPU (the measured rate scaled linearly by work), on one GPU
  and on several (:func:`project`, :func:`projection_table`), from assumptions passed as
  arguments with documented defaults.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "A100_BF16_TFLOPS",
    "CHAPTERS",
    "GPU_UTILISATION",
    "MULTI_GPU_EFFICIENCY",
    "PAPER_SIZES",
    "PASSES",
    "TRAIN_JOB",
    "PaperSize",
    "chapter_parameters",
    "chapter_summary",
    "cpu_rates",
    "explanation_throughput",
    "forward_flops",
    "method_forwards",
    "model_flops",
    "n_windows",
    "paper_model",
    "paper_work",
    "parallel_efficiency",
    "phantom_like_image",
    "project",
    "projection_table",
    "synthetic_images",
    "load_average",
    "throughput_job",
    "training_throughput",
]

#: The chapters whose work is counted (chapter 00 builds the synthetic cohort only).
CHAPTERS = (
    "01_density_clip",
    "02_correlax",
    "03_xai_iou",
    "04_multitask_fusion",
    "05_domain_shift",
)
#: Peak dense BF16/FP16 tensor-core TFLOP/s of an NVIDIA A100 (NVIDIA A100 Tensor Core GPU
#: datasheet, 2020; 624 with structured sparsity, which these models do not use).
A100_BF16_TFLOPS = 312.0
#: Share of the peak a well-tuned training run sustains ("model FLOPs utilisation"): PaLM
#: (Chowdhery et al. 2022, Table 3) reports 46 % for itself and 21-32 % for GPT-3, Gopher
#: and Megatron-Turing NLG. 35 % is within that range; small convolutional models at small
#: batches may reach less.
GPU_UTILISATION = 0.35
#: Scaling efficiency of data-parallel training on 8 GPUs, rate / (8 x the one-GPU rate):
#: Goyal et al. 2017 ("Accurate, large minibatch SGD") report about 90 % from 8 to 256 GPUs.
MULTI_GPU_EFFICIENCY = 0.9
#: FLOPs of one unit of work, in forward passes: a training sample costs a forward and a
#: backward pass, the backward about twice the forward (Kaplan et al. 2020: 6N per token
#: against 2N forward); a gradient attribution needs a forward and a backward to the input
#: (no weight gradients: about 2 forwards).
PASSES = {"train": 3.0, "gradient": 2.0, "forward": 1.0}


@dataclass(frozen=True)
class PaperSize:
    """A size a paper states, what it counts and where the paper says it."""

    value: Any
    what: str
    source: str


#: Dataset sizes of the five papers (``source``: author and section).
PAPER_SIZES = {
    "cavalcante_images": PaperSize(
        96_995, "images of the multi-modality set (s2D, DM, DBT central slices)",
        "Cavalcante et al., §2.1"),
    "cavalcante_train": PaperSize(
        19_000, "images after undersampling (4,000 A, 6,000 B, 6,000 C, 3,000 D)",
        "Cavalcante et al., §2.1"),
    "cavalcante_external": PaperSize(
        52_407, "zero-shot external images (RSNA 29,470 + EMBED 22,937)",
        "Cavalcante et al., §2.1"),
    "vindr_images": PaperSize(
        20_000, "VinDr-Mammo images (5,000 patients x 4 views, split 80/20)",
        "Mellado et al., §3.2"),
    "vindr_train_samples": PaperSize(
        16_544, "training samples: one per finding box, one normal crop per No Finding image "
        "(the training column of Table 1)", "Mellado et al., §3.2, Table 1"),
    "vindr_test_with_findings": PaperSize(
        357, "test images with findings (4,000 test images - 3,643 No Finding)",
        "Mellado et al., §3.2, Table 1"),
    "vindr_roi_hw": PaperSize(
        (2497, 885), "mean breast ROI after cropping, height x width (pixels)",
        "Mellado et al., §3.1"),
    "optimam_patches_train": PaperSize(
        6_090, "training patches (OMI-DB Iceberg Selection)", "Sam Millan and Marti, Table 1"),
    "optimam_whole_train": PaperSize(
        5_788, "training whole images (OMI-DB Hologic subset)", "Sam Millan and Marti, Table 1"),
    "optimam_whole_val_malignant": PaperSize(
        722, "malignant validation images scored by IoU", "Sam Millan and Marti, Table 1, §3.2.5"),
    "ddsm_cases": PaperSize(
        2_254, "DDSM cases after curation, four views each", "Wimmer et al., §II-A.2"),
    "ddsm_train_cases": PaperSize(
        1_511, "training cases (validation 290, test 453)", "Wimmer et al., §II-A.3"),
    "ddsm_detector_images": PaperSize(
        200_000, "images the detector sees (100k iterations x batch 2)", "Wimmer et al., §III-A.3"),
    "cbis_ddsm_images": PaperSize(
        3_032, "CBIS-DDSM view images", "Wimmer et al., §II-A.1"),
    "target_patients": PaperSize(
        382, "target patients (191 cases, 191 controls), four views: 1,528 images",
        "Sanchez Fuentes and Monsalve Duran, §4.1"),
    "target_train_images": PaperSize(
        1_064, "target training images (70 %)", "Sanchez Fuentes and Monsalve Duran, §4.1"),
    "inbreast_images": PaperSize(
        410, "INbreast images (115 studies)", "Sanchez Fuentes and Monsalve Duran, §4.1"),
}  # fmt: skip

#: Chapter 03's methods whose maps need a backward pass (see :data:`PASSES`).
GRADIENT_METHODS = frozenset(
    {"saliency", "integrated_gradients", "deeplift", "gradcam", "guided_gradcam"}
)


# ------------------------------------------------------------------------ work at paper scale
def chapter_parameters(scale="paper", stems=CHAPTERS) -> dict[str, dict]:
    """``{stem: every parameter the chapter gets at scale}`` (notebook defaults < ``common``
    < the chapter's section), merged by the runner (:func:`mammo_helpers.run.plan_runs`) from
    the project's notebooks. ``scale`` is a scale name, file or a loaded scale."""
    from mammo_helpers import run

    loaded = scale if isinstance(scale, Mapping) else run.load_scale(scale)
    notebooks = [p for p in run.list_notebooks() if p.stem in stems]
    return {plan.stem: plan.effective() for plan in run.plan_runs(notebooks, dict(loaded))}


def n_windows(hw, window: int, stride: int) -> int:
    """Sliding windows on an ROI of ``hw`` (H, W) whose every pixel is breast, as
    :func:`mammo_helpers.xai.windows.window_grid` places them: a window centred on every
    ``stride``-th pixel, ``ceil(H / stride) x ceil(W / stride)``; an upper bound for a
    real breast, whose windows without breast are skipped."""
    from mammo_helpers.xai.windows import check_window

    window, stride = check_window(window, stride)
    return math.ceil(hw[0] / stride) * math.ceil(hw[1] / stride)


def method_forwards(params: Mapping[str, Any]) -> dict[str, int]:
    """Images forwarded per image by each of chapter 03's methods, as chapter 03 counts them
    (its ``forwards_per_method``) at its parameters ``IMAGE_HW``, ``IG_STEPS``,
    ``LIME_SAMPLES``, ``SHAP_SAMPLES``, ``RELAX_MASKS``, ``CORRELAX_WINDOW``,
    ``CORRELAX_STRIDE`` and ``CORRELAX_MASKS``."""
    from mammo_helpers.xai import attribution

    hw = tuple(params["IMAGE_HW"])
    window, stride = attribution.paper_occlusion(hw[0])
    windows = n_windows(hw, params["CORRELAX_WINDOW"], params["CORRELAX_STRIDE"])
    return {
        "saliency": 1,
        "integrated_gradients": params["IG_STEPS"],
        "occlusion": attribution.occlusion_forwards(hw, window, stride),
        "guided_gradcam": 2,
        "lime": params["LIME_SAMPLES"],
        "kernel_shap": params["SHAP_SAMPLES"],
        "deeplift": 2,
        "gradcam": 1,
        "relax": 1 + params["RELAX_MASKS"],
        "correlax": windows * (1 + params["CORRELAX_MASKS"]),
    }


def _row(chapter, job, units, count, source, model, hw, passes) -> dict:
    return {"chapter": chapter, "job": job, "units": units, "count": float(count),
            "source": source, "model": model, "input_hw": tuple(int(v) for v in hw),
            "passes_per_unit": PASSES[passes]}  # fmt: skip


def _size(key: str) -> PaperSize:
    return PAPER_SIZES[key]


def _upto(value, limit: int) -> int:
    """``value`` images of a set of ``limit`` (None or more than there are: all)."""
    return limit if value is None else min(int(value), limit)


def _work_01(p: Mapping) -> list[dict]:
    stem, size, train, ext = (
        "01_density_clip",
        p["IMAGE_SIZE"],
        _size("cavalcante_train"),
        _size("cavalcante_external"),
    )
    folds, epochs = p["N_FOLDS"], p["EPOCHS"]
    images = train.value * (folds - 1)  # each of N_FOLDS folds trains on the others' share
    note = f"{train.source}: {train.value:,} images, {folds} folds (§2.2); EPOCHS {epochs} (not in the paper)"
    model = ("vit_base_patch16_224", (size, size))
    return [
        _row(stem, "fine-tune BiomedCLIP, every fold", "training images x epochs",
             images * epochs, note, *model, "train"),
        _row(stem, "zero-shot external validation", "forward passes", ext.value, ext.source,
             *model, "forward"),
    ]  # fmt: skip


def _work_02(p: Mapping) -> list[dict]:
    stem, roi = "02_correlax", _size("vindr_roi_hw")
    train, test = _size("vindr_train_samples"), _size("vindr_test_with_findings")
    images = _upto(p["N_CORRELAX_IMAGES"], test.value)
    window, backbone = p["WINDOW"], p["BACKBONE"]
    per_image = n_windows(roi.value, window, p["CORRELAX_STRIDE"]) * (1 + p["N_MASKS"])
    h, w = roi.value
    maps = (
        f"{images:,} test images with findings (4,000 - 3,643 No Finding, {test.source}); "
        f"windows of the mean {h} x {w} px breast ROI ({roi.source})"
    )
    return [
        _row(stem, "crop classifier", "training crops x epochs",
             train.value * p["CROPS_PER_SAMPLE"] * p["EPOCHS"], f"{train.source}: {train.value:,} samples; §3.3: epochs",
             backbone, (p["IMAGE_SIZE"],) * 2, "train"),
        _row(stem, "prediction maps", "forward passes",
             n_windows(roi.value, window, p["STRIDE"]) * images, maps, backbone, (window,) * 2,
             "forward"),
        _row(stem, "CorRELAX maps", "forward passes", per_image * images,
             f"{maps}; (N_MASKS + 1) per window, §3.5", backbone, (window,) * 2, "forward"),
    ]  # fmt: skip


def _work_03(p: Mapping) -> list[dict]:
    stem, hw, patch = "03_xai_iou", tuple(p["IMAGE_HW"]), p["PATCH_SIZE"]
    patches, whole = _size("optimam_patches_train"), _size("optimam_whole_train")
    val = _size("optimam_whole_val_malignant")
    images = _upto(p["N_EVAL_IMAGES"], val.value)
    rows = [
        _row(stem, f"patch classifier {b}", "training patches x epochs",
             patches.value * p["PATCH_EPOCHS"], f"{patches.source}, §3.2.2; epochs not in the paper",
             b, (patch, patch), "train")
        for b in p["PATCH_BACKBONES"]
    ]  # fmt: skip
    rows.append(_row(stem, "whole-image classifier", "training images x epochs",
                     whole.value * p["WHOLE_EPOCHS"], f"{whole.source}, §3.2.3; epochs not in the paper",
                     p["WHOLE_BACKBONE"], hw, "train"))  # fmt: skip
    for method, forwards in method_forwards(p).items():
        kind = "gradient" if method in GRADIENT_METHODS else "forward"
        rows.append(_row(stem, f"{method} maps", "forward passes", forwards * images,
                         f"{images:,} {val.what}, {val.source}; {forwards:,} per image as chapter 03 counts them",
                         p["WHOLE_BACKBONE"], hw, kind))  # fmt: skip
    return rows


def _work_04(p: Mapping) -> list[dict]:
    stem, cases = "04_multitask_fusion", _size("ddsm_train_cases")
    detector, views = _size("ddsm_detector_images"), 4 * cases.value
    src = f"{cases.source}: {cases.value:,} cases x 4 views"
    density, findings, backbone = p["DENSITY_HW"], p["FINDINGS_HW"], p["BACKBONE"]
    return [
        _row(stem, "density view model D^v", "training images x epochs", views * p["DV_EPOCHS"],
             f"{src}; §III-A.1", backbone, density, "train"),
        _row(stem, "density patient model D", "training images x epochs", views * p["D_EPOCHS"],
             f"{src}; §III-A.1", backbone, density, "train"),
        _row(stem, "findings model F", "training images x epochs", views * p["F_EPOCHS"],
             f"{src}; §III-A.2 (early stopping: at most)", backbone, findings, "train"),
        _row(stem, "lesion detector L (backbone only)", "training images", detector.value,
             f"{detector.source}: 2700 x 1200 px; DETECTOR_BACKBONE (paper: Faster R-CNN, InceptionV2)",
             p["DETECTOR_BACKBONE"], (2700, 1200), "train"),
    ]  # fmt: skip


def _work_05(p: Mapping) -> list[dict]:
    stem, hw, backbone = "05_domain_shift", tuple(p["INPUT_HW"]), p["BACKBONE"]
    cbis, inbreast, target = (
        _size(k) for k in ("cbis_ddsm_images", "inbreast_images", "target_train_images")
    )
    stages = sum(p["STAGE_EPOCHS"])
    return [
        _row(stem, "source model on CBIS-DDSM", "training images x epochs",
             cbis.value * p["SOURCE_EPOCHS"], f"{cbis.source} (the paper used End2End's weights)",
             backbone, hw, "train"),
        _row(stem, "then on INbreast", "training images x epochs",
             inbreast.value * p["INBREAST_EPOCHS"], inbreast.source, backbone, hw, "train"),
        _row(stem, "two-stage fine-tuning, Config1 and Config2", "training images x epochs",
             2 * target.value * stages, f"{target.source}; Table 6 (early stopping: at most)",
             backbone, hw, "train"),
    ]  # fmt: skip


_WORK = {
    "01_density_clip": _work_01,
    "02_correlax": _work_02,
    "03_xai_iou": _work_03,
    "04_multitask_fusion": _work_04,
    "05_domain_shift": _work_05,
}


def paper_work(paper_params: Mapping[str, Any]):
    """The work of every chapter's jobs at the paper scale, one row per job: ``chapter``,
    ``job``, ``units`` (training images x epochs, forward passes...), ``count`` (how many),
    ``source`` (the paper's section for each size), then ``model`` and ``input_hw`` (the
    network and input size the job runs, for :func:`forward_flops`) and ``passes_per_unit``
    (forward passes per unit, :data:`PASSES`).

    ``paper_params`` is a loaded scale (``mh.run.load_scale("paper")``: its values are
    merged with the notebooks' defaults as the runner merges them, :func:`chapter_parameters`)
    or ``{stem: parameters}`` (chapters not in it are left out). Chapter 06."""
    import pandas as pd

    params = paper_params
    if "common" in paper_params:  # a loaded scale: the runner's merge
        params = chapter_parameters(paper_params)
    rows = []
    for stem, work in _WORK.items():
        if stem in params:
            try:
                rows += work(params[stem])
            except KeyError as exc:
                raise KeyError(f"paper_work: {stem} has no parameter {exc.args[0]}") from None
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------ FLOPs
def model_flops(model, input_shape) -> float:
    """FLOPs of one forward pass of ``model`` on a zero tensor of ``input_shape`` (batch
    first), counted by ``torch.utils.flop_counter.FlopCounterMode``: 2 per multiply-add of
    convolutions and matrix products (biases, normalisation and activations are not
    counted). A model on the meta device is counted without computing anything. Chapter 06."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    first = next(model.parameters(), None)
    x = torch.zeros(tuple(input_shape), device=first.device if first is not None else "cpu")
    training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(x)
    finally:
        model.train(training)
    return float(counter.get_total_flops())


def paper_model(name: str):
    """A paper's network with random weights (nothing is downloaded): ``"vgg16"`` is
    End2End's backbone (:func:`mammo_helpers.models.end2end.make_backbone`), any other name
    a timm or torchvision backbone with the book's small head
    (:func:`mammo_helpers.models.classifiers.build_classifier`; ``vit_base_patch16_224`` is
    BiomedCLIP's image tower). Chapter 06."""
    from mammo_helpers.models import classifiers, end2end

    if name == "vgg16":
        return end2end.make_backbone("vgg16")[0]
    return classifiers.build_classifier(name, ("finding",), channels_last=False)


def forward_flops(name: str, hw) -> float:
    """FLOPs of one forward pass of :func:`paper_model` ``(name)`` on one 3-channel image of
    ``hw`` (H, W), counted on the meta device (instant, no memory). Chapter 06."""
    import torch

    with torch.device("meta"):
        model = paper_model(name)
    return model_flops(model, (1, 3, *hw))


def _probe_hw(name: str, hw, fraction: float) -> tuple[int, int]:
    """``hw`` scaled by ``fraction``, multiples of 32 (ViTs keep their fixed input size)."""
    if name.startswith("vit_") or fraction == 1:
        return tuple(int(v) for v in hw)
    return tuple(max(32, 32 * round(v * fraction / 32)) for v in hw)


def cpu_rates(pairs, *, fraction: float = 1.0, repeats: int = 1, seed: int = 0):
    """This CPU's measured forward FLOP/s of each ``(model name, hw)`` in ``pairs``: one
    image of ``hw`` scaled by ``fraction`` (a probe, multiples of 32) forwarded ``repeats``
    times after a warm-up, with the threads torch has. Columns ``model``, ``input_hw``,
    ``gflops`` (at ``hw``, counted), ``probe_hw``, ``probe_s`` (median, measured) and
    ``cpu_gflops_per_s`` (measured). Chapter 06."""
    import pandas as pd
    import torch

    from mammo_helpers.timing import median_seconds

    rows = []
    for name, hw in pairs:
        probe = _probe_hw(name, hw, fraction)
        torch.manual_seed(seed)
        model = paper_model(name).eval()
        x = torch.rand(1, 3, *probe)
        with torch.inference_mode():
            seconds = median_seconds(lambda m=model, x=x: m(x), repeats=repeats, warmup=1)
        flops = forward_flops(name, probe)
        rows.append({"model": name, "input_hw": tuple(hw), "gflops": forward_flops(name, hw) / 1e9,
                     "probe_hw": probe, "probe_s": seconds,
                     "cpu_gflops_per_s": flops / seconds / 1e9})  # fmt: skip
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------ efficiency, projection
def _positive(value, name: str):
    array = np.asarray(value, dtype=float)
    if not (np.isfinite(array).all() and (array > 0).all()):
        raise ValueError(f"{name} must be positive and finite, got {value!r}")
    return value


def parallel_efficiency(serial_rate, parallel_rate, n) -> float:
    """``parallel_rate / (n x serial_rate)``: 1 when ``n`` workers go ``n`` times as fast as
    one. Chapter 06 and ``tests/bench_parallel.py``."""
    _positive(serial_rate, "serial_rate")
    _positive(parallel_rate, "parallel_rate")
    _positive(n, "n")
    return float(parallel_rate) / (float(n) * float(serial_rate))


def project(
    work,
    cpu_rate,
    *,
    flops_per_unit,
    gpu_tflops: float = A100_BF16_TFLOPS,
    utilisation: float = GPU_UTILISATION,
    n_gpus: int = 8,
    efficiency: float = MULTI_GPU_EFFICIENCY,
) -> dict:
    """**Projected** hours of ``work`` units (arrays broadcast):

    * ``cpu_hours`` = work / ``cpu_rate`` (units/s measured on this machine), i.e. the
      measured rate scaled linearly by work;
    * ``gpu_hours`` = work x ``flops_per_unit`` / (``gpu_tflops`` x 1e12 x ``utilisation``);
    * ``n_gpu_hours`` = ``gpu_hours`` / (``n_gpus`` x ``efficiency``).

    Defaults: ``gpu_tflops`` 312, an A100's peak dense BF16 tensor-core rate (NVIDIA's A100
    datasheet); ``utilisation`` 0.35, within the 21-46 % of peak that large well-tuned
    trainings sustain (PaLM, Chowdhery et al. 2022, Table 3); ``efficiency`` 0.9 on
    ``n_gpus`` 8, the data-parallel scaling efficiency Goyal et al. (2017) report. The
    result repeats the assumptions and says ``"kind": "projected"``. Chapter 06."""
    _positive(work, "work")
    _positive(cpu_rate, "cpu_rate")
    _positive(flops_per_unit, "flops_per_unit")
    _positive(gpu_tflops, "gpu_tflops")
    if not 0 < utilisation <= 1 or not 0 < efficiency <= 1:
        raise ValueError(
            f"utilisation and efficiency must be in (0, 1], got {utilisation}, {efficiency}"
        )
    if isinstance(n_gpus, bool) or not isinstance(n_gpus, int) or n_gpus < 1:
        raise ValueError(f"n_gpus must be an integer >= 1, got {n_gpus!r}")
    work = np.asarray(work, dtype=float)
    gpu_s = work * np.asarray(flops_per_unit, dtype=float) / (gpu_tflops * 1e12 * utilisation)
    return {
        "kind": "projected",
        "cpu_hours": work / np.asarray(cpu_rate, dtype=float) / 3600,
        "gpu_hours": gpu_s / 3600,
        "n_gpu_hours": gpu_s / 3600 / (n_gpus * efficiency),
        "assumptions": {"gpu_tflops": gpu_tflops, "utilisation": utilisation,
                        "n_gpus": n_gpus, "efficiency": efficiency,
                        "cpu": "the measured rate, scaled linearly by work"},
    }  # fmt: skip


#: What each column of :func:`projection_table` is: from the papers, counted, measured or
#: projected.
COLUMN_KINDS = {
    "count": "from the papers",
    "gflops_per_unit": "counted",
    "cpu_units_per_s": "measured",
    "cpu_hours": "projected",
    "gpu_hours": "projected",
    "n_gpu_hours": "projected",
}


def projection_table(work, rates, **assumptions):
    """One row per job of ``work`` (:func:`paper_work`) with ``gflops_per_unit`` (counted
    forward FLOPs x ``passes_per_unit``), ``cpu_units_per_s`` (this CPU's measured forward
    FLOP/s of the job's model, ``rates`` from :func:`cpu_rates`, divided by the FLOPs of a
    unit) and the hours :func:`project` gives with ``assumptions``; ``basis`` says which
    number is of which kind (:data:`COLUMN_KINDS`). Chapter 06."""
    keyed = rates.set_index([rates.model, rates.input_hw.map(tuple)])
    index = list(zip(work.model, work.input_hw.map(tuple), strict=True))
    table = work.copy()
    table["gflops_per_unit"] = keyed.gflops.loc[index].to_numpy() * work.passes_per_unit
    table["cpu_units_per_s"] = (
        keyed.cpu_gflops_per_s.loc[index].to_numpy() / table.gflops_per_unit.to_numpy()
    )
    hours = project(table["count"].to_numpy(), table.cpu_units_per_s.to_numpy(),
                    flops_per_unit=table.gflops_per_unit.to_numpy() * 1e9, **assumptions)  # fmt: skip
    for key in ("cpu_hours", "gpu_hours", "n_gpu_hours"):
        table[key] = hours[key]
    table["basis"] = "; ".join(f"{k}: {v}" for k, v in COLUMN_KINDS.items())
    return table


def chapter_summary(table):
    """Per chapter of a :func:`projection_table`: total work in PFLOP (counted), this CPU's
    effective GFLOP/s on the chapter's models (measured: total FLOPs / total CPU seconds)
    and the summed projected hours. Chapter 06."""
    flops = table["count"] * table.gflops_per_unit * 1e9
    frame = table.assign(pflop=flops / 1e15, cpu_s=table.cpu_hours * 3600, flops=flops)
    out = frame.groupby("chapter", sort=False)[["pflop", "flops", "cpu_s", "cpu_hours",
                                                "gpu_hours", "n_gpu_hours"]].sum()  # fmt: skip
    out["cpu_gflops_per_s"] = out.flops / out.cpu_s / 1e9
    out["basis"] = ("pflop: from the papers x counted FLOPs; cpu_gflops_per_s: measured; "
                    "hours: projected")  # fmt: skip
    return out.drop(columns=["flops", "cpu_s"]).reset_index()


# ------------------------------------------------------------------------ training throughput
#: The training job :func:`training_throughput` runs under ``torchrun``.
TRAIN_JOB = "mammo_helpers.scaling:throughput_job"


def synthetic_images(n: int, size: int, seed: int):
    """``(x (n, 1, size, size), y (n,))`` float tensors: smoothed noise, and in the images
    with ``y == 1`` a bright disc in the middle (a learnable, phantom-like toy task)."""
    import torch
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(seed)
    x = F.avg_pool2d(torch.rand(n, 1, size, size, generator=g), 5, 1, 2)
    y = (torch.rand(n, generator=g) < 0.5).float()
    grid = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    disc = (grid[:, None] ** 2 + grid[None, :] ** 2 < (size / 6) ** 2).float()
    return x + 0.5 * y[:, None, None, None] * disc, y


def _bce(model, batch):
    import torch.nn.functional as F

    return F.binary_cross_entropy_with_logits(model(batch[0]).squeeze(1), batch[1])


def _batches(x, y, batch_size: int, seed: int):
    """Seeded shuffled global batches of every epoch (the last partial batch dropped)."""
    import torch

    n = len(x) - len(x) % batch_size

    def batches(epoch: int):
        order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed * 1000 + epoch))
        return [(x[i], y[i]) for i in order[:n].split(batch_size)]

    return batches


def throughput_job(*, out, images, epochs, batch_size, image_size, seed, width=16) -> dict:
    """Train chapter 00's small CNN (:func:`mammo_helpers.learnability.small_cnn`) on
    :func:`synthetic_images` with :func:`mammo_helpers.training.fit` (DDP under
    ``torchrun``, the global batch shared by the ranks) and time the fit only. Rank 0 writes
    ``{"seconds", "samples", "world_size", "threads", "final_loss"}`` atomically to ``out``
    (JSON). Run by :func:`training_throughput`, in this process or under ``torchrun``."""
    import torch

    from mammo_helpers import distributed, learnability, training
    from mammo_helpers.paths import atomic_write

    ctx = distributed.context()
    x, y = synthetic_images(images, image_size, seed)
    torch.manual_seed(seed)
    model = learnability.small_cnn(width=width)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    distributed.barrier(ctx)
    start = time.perf_counter()
    history = training.fit(model, _batches(x, y, batch_size, seed), _bce, optimizer, epochs=epochs)
    seconds = time.perf_counter() - start
    result = {"seconds": seconds, "samples": (images - images % batch_size) * epochs,
              "world_size": ctx.world_size, "threads": torch.get_num_threads(),
              "final_loss": history.rows[-1]["loss"]}  # fmt: skip
    if ctx.is_main and out is not None:
        with atomic_write(out, "w") as fh:
            json.dump(result, fh)
    return result


def training_throughput(
    nproc: int, *, images: int, epochs: int, batch_size: int, image_size: int, seed: int = 0,
    width: int = 16,
) -> dict:  # fmt: skip
    """**Measured** training throughput of :func:`throughput_job`: in this process with one
    torch thread for ``nproc`` 1, else under ``torchrun`` (gloo on the CPU, one thread per
    process) through :func:`mammo_helpers.distributed.launch`, with the same global batch.
    Returns ``samples_per_s`` (the fit only, timed inside the job), ``wall_samples_per_s``
    and ``wall_s`` (including process start-up), ``fit_s``, ``samples``, ``nproc``,
    ``final_loss``. Chapter 06 and ``tests/bench_parallel.py``."""
    from mammo_helpers import devices, distributed

    if batch_size < nproc or images < batch_size:
        raise ValueError(f"need images >= batch_size >= nproc, got {images}, {batch_size}, {nproc}")
    settings = {"images": images, "epochs": epochs, "batch_size": batch_size,
                "image_size": image_size, "seed": seed, "width": width}  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="mammo-throughput-") as folder:
        out = str(Path(folder) / "result.json")
        start = time.perf_counter()
        if nproc == 1:
            with devices.torch_threads(1):
                throughput_job(out=out, **settings)
        else:
            env = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
            distributed.launch(TRAIN_JOB, settings | {"out": out}, nproc=nproc, env=env)
        wall = time.perf_counter() - start
        result = json.loads(Path(out).read_text())
    samples = result["samples"]
    return {"nproc": nproc, "samples": samples, "fit_s": result["seconds"], "wall_s": wall,
            "samples_per_s": samples / result["seconds"], "wall_samples_per_s": samples / wall,
            "final_loss": result["final_loss"]}  # fmt: skip


# ------------------------------------------------------------------------ explanation throughput
def phantom_like_image(hw, seed: int):
    """``(image (H, W, 3) float32 in [0, 1], breast (H, W) bool)``: smooth random tissue in
    a half-ellipse breast against the left edge, with a bright blob (a lesion stand-in)."""
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    h, w = hw
    tissue = gaussian_filter(rng.random((h, w)), max(h, w) / 32)
    tissue = (tissue - tissue.min()) / max(np.ptp(tissue), 1e-12)
    yy, xx = np.mgrid[:h, :w]
    breast = ((yy - h / 2) / (h / 2)) ** 2 + (xx / (0.95 * w)) ** 2 <= 1
    cy, cx = rng.integers(h // 4, 3 * h // 4), rng.integers(0, max(1, w // 2))
    blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * (min(h, w) / 12) ** 2))
    image = (0.6 * tissue + 0.4 * blob) * breast
    return np.repeat(image[..., None], 3, axis=-1).astype(np.float32), breast


def _warm_up() -> int:
    """Imported on every worker before the timing (a fresh worker imports torch once)."""
    import torch

    from mammo_helpers.xai import relax, windows  # noqa: F401

    return torch.get_num_threads()


def _max_difference(a: dict, b: dict) -> float:
    return max(
        float(np.max(np.abs(np.asarray(a[k][n]) - np.asarray(b[k][n]))))
        for k in a
        for n in ("dist", "corr")
    )


def explanation_throughput(
    workers: int, *, images: int, window: int, stride: int, n_masks: int, seed: int = 0,
    scheduler="local", image_hw=None, cells: int = 8, backbone: str = "small_cnn",
) -> dict:  # fmt: skip
    """**Measured** CorRELAX throughput on ``images`` :func:`phantom_like_image` images of
    ``image_hw`` (default ``2 window`` x ``window``), ``window`` px windows every ``stride``,
    ``n_masks`` masks of ``cells`` x ``cells``, on a random ``backbone``: once serially and
    once on a dask cluster (``scheduler``: ``"local"`` for a ``LocalCluster`` of ``workers``,
    an address or a ``distributed.Client``), each through :func:`mammo_helpers.tasks.run_tasks`
    into a temporary ``TaskStore``, every task with one torch thread. Returns ``serial_s``,
    ``parallel_s`` (the tasks; the cluster's start-up and worker warm-up are ``startup_s``),
    ``wall_s`` (the cluster run with its start-up), ``serial_images_per_s``, ``parallel_images_per_s``, ``forwards_per_image``
    and ``max_abs_difference`` between the serial and the cluster maps (0 when identical).
    Chapter 06 and ``tests/bench_parallel.py``."""
    from mammo_helpers import tasks
    from mammo_helpers.data.crops import crop_labels
    from mammo_helpers.models.classifiers import build_classifier
    from mammo_helpers.xai.relax import MaskBank, image_maps

    hw = tuple(image_hw or (2 * window, window))
    ids = [f"image_{i:04d}" for i in range(images)]
    items = {i: (*phantom_like_image(hw, seed + n), i) for n, i in enumerate(ids)}
    model = build_classifier(backbone, crop_labels(), seed=seed).eval()
    bank = MaskBank(n_masks, cells, 0.5, window, seed=seed)
    common = {"method": "correlax", "model_hash": f"bench-{seed}", "progress": False,
              "settings": {"window": window, "stride": stride, "n_masks": n_masks, "hw": list(hw)},
              "shared": {"model": model, "bank": bank, "stride": stride}}  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="mammo-xai-bench-") as folder:
        start = time.perf_counter()
        serial = tasks.run_tasks(image_maps, items, store=tasks.TaskStore(Path(folder) / "serial"),
                                 scheduler="serial", **common)  # fmt: skip
        serial_s, start = time.perf_counter() - start, time.perf_counter()
        with tasks.client(scheduler, workers) as client:
            client.run(_warm_up)
            ready = time.perf_counter()
            store = tasks.TaskStore(Path(folder) / "cluster")
            parallel = tasks.run_tasks(image_maps, items, store=store, scheduler=client, **common)
            parallel_s = time.perf_counter() - ready
        wall_s = time.perf_counter() - start
    forwards = np.mean([m["n_windows"] for m in serial.values()]) * (n_masks + 1)
    return {"workers": workers, "images": images, "image_hw": hw, "serial_s": serial_s,
            "parallel_s": parallel_s, "startup_s": ready - start, "wall_s": wall_s,
            "serial_images_per_s": images / serial_s, "parallel_images_per_s": images / parallel_s,
            "forwards_per_image": float(forwards),
            "max_abs_difference": _max_difference(serial, parallel)}  # fmt: skip


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages (``os.getloadavg``), to report beside a timing
    (another job on the machine slows it); empty where the system has none."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return []
