"""Benchmark of the book's two parallel engines on this machine (issue 11 §4): training in
one process against ``--nproc`` processes under ``torchrun`` (DistributedDataParallel,
gloo on the CPU), and CorRELAX maps serially against ``--workers`` Dask workers of a
``LocalCluster``, with the parallel efficiency of each (chapter 06 shows the same
measurements at the book's scales).

Not part of the test-suite (the name does not start with ``test_``); run it on demand::

    python tests/bench_parallel.py                       # 64 px images and windows, 3 repeats
    python tests/bench_parallel.py --repeats 5 --masks 256
    python tests/bench_parallel.py --json results/bench_parallel.json

Each number is the median of ``--repeats`` runs (one thread per process, worker or task).
Samples/s time the training loop inside the job (process start-up excluded); the wall time
includes starting the processes. The cluster's start-up and the workers' first import of
PyTorch are timed apart from the tasks. The machine's load average is printed before and
after: another job on the same cores slows every number.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

import mammo_helpers as mh


def _median(runs: list[dict]) -> dict:
    """Per key, the median of the numeric values of ``runs`` (the first run's other values)."""
    out = dict(runs[0])
    for key, value in runs[0].items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            out[key] = float(np.median([run[key] for run in runs]))
    return out


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nproc", type=int, default=2, help="training processes (torchrun)")
    parser.add_argument("--workers", type=int, default=2, help="dask workers (LocalCluster)")
    parser.add_argument("--train-images", type=int, default=2048)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--images", type=int, default=8, help="images explained by CorRELAX")
    parser.add_argument("--window", type=int, default=64)
    parser.add_argument("--stride", type=int, default=32)
    parser.add_argument("--masks", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)

    scaling = mh.scaling
    load_before = scaling.load_average()
    sizes = {"images": args.train_images, "epochs": args.epochs, "batch_size": args.batch_size,
             "image_size": args.image_size, "seed": args.seed}  # fmt: skip
    train = {
        n: _median([scaling.training_throughput(n, **sizes) for _ in range(args.repeats)])
        for n in (1, args.nproc)
    }
    xai = _median([
        scaling.explanation_throughput(
            args.workers, images=args.images, window=args.window, stride=args.stride,
            n_masks=args.masks, seed=args.seed,
        )
        for _ in range(args.repeats)
    ])  # fmt: skip
    load_after = scaling.load_average()
    efficiency = {
        "training": scaling.parallel_efficiency(
            train[1]["samples_per_s"], train[args.nproc]["samples_per_s"], args.nproc
        ),
        "explanations": scaling.parallel_efficiency(
            xai["serial_images_per_s"], xai["parallel_images_per_s"], args.workers
        ),
    }
    rows = [
        ("training, 1 process", train[1]["samples_per_s"], "samples/s", train[1]["wall_s"]),
        (f"training, {args.nproc} processes (torchrun)", train[args.nproc]["samples_per_s"],
         "samples/s", train[args.nproc]["wall_s"]),
        ("CorRELAX, serial", xai["serial_images_per_s"], "images/s", xai["serial_s"]),
        (f"CorRELAX, {args.workers} dask workers", xai["parallel_images_per_s"], "images/s",
         xai["wall_s"]),
    ]  # fmt: skip
    print(f"median of {args.repeats} runs; load average before {load_before}, after {load_after}")
    print(f"{'run':<36} {'rate':>10} {'unit':<10} {'wall s':>8}")
    for name, rate, unit, wall in rows:
        print(f"{name:<36} {rate:>10.1f} {unit:<10} {wall:>8.2f}")
    print(
        f"parallel efficiency: training {efficiency['training']:.2f}, "
        f"CorRELAX {efficiency['explanations']:.2f}; cluster start-up {xai['startup_s']:.1f} s; "
        f"largest serial-vs-cluster map difference {xai['max_abs_difference']:.3g}"
    )
    result = {"settings": vars(args) | {"json": None}, "training": train, "explanations": xai,
              "parallel_efficiency": efficiency,
              "load_average": {"before": load_before, "after": load_after}}  # fmt: skip
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2, default=str) + "\n")
    return result


if __name__ == "__main__":
    main()
