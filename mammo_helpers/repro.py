"""Reproducibility of a chapter run: one seed for every generator and a record of what the
numbers were produced with (package versions, device, seed, commit, time).

Used by every chapter's setup cell (00-05): ``mh.repro.seed_everything(SEED)``,
``mh.repro.provenance(...)``; the device is chosen by :mod:`mammo_helpers.devices`.
"""

from __future__ import annotations

import os
import platform
import random
import subprocess
import sys
import time
from datetime import UTC, datetime
from importlib import metadata

import numpy as np

from mammo_helpers.paths import project_root

#: Packages whose versions a chapter's provenance lists.
PACKAGES: tuple[str, ...] = (
    "mammo_helpers",
    "numpy",
    "scipy",
    "pandas",
    "scikit-learn",
    "scikit-image",
    "opencv-python-headless",
    "pydicom",
    "torch",
    "torchvision",
    "timm",
    "open_clip_torch",
    "captum",
    "matplotlib",
)


def check_seed(seed, name: str = "SEED") -> int:
    """``seed`` as an int in [0, 2**32), else ``ValueError`` naming the parameter."""
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or not 0 <= seed < 2**32:
        raise ValueError(f"{name} must be an integer in [0, 2**32), got {seed!r}")
    return int(seed)


def seed_everything(seed: int, *, deterministic: bool = True) -> int:
    """Seed Python's ``random``, NumPy's global generator and torch (CPU and every GPU).

    With ``deterministic`` (default) cuDNN picks deterministic kernels and does not benchmark,
    so the same seed gives the same weights on the same hardware and software. Returns the
    seed. Code that takes its own ``rng`` / ``seed`` argument stays seeded by that argument.
    """
    seed = check_seed(seed)
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 - libraries that draw from the global generator
    import torch

    torch.manual_seed(seed)  # also seeds every CUDA device
    if deterministic:
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
    return seed


def package_versions(packages=PACKAGES) -> dict[str, str]:
    """Installed version of each package (``'not installed'`` when missing)."""
    out = {}
    for name in packages:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def _git(root, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=root, capture_output=True, text=True, timeout=10, check=True
    ).stdout.strip()


def git_commit(root=None) -> str:
    """The project's git commit (``+dirty`` when files differ), or 'unknown' outside git."""
    root = project_root() if root is None else root
    try:
        head = _git(root, "rev-parse", "--short=12", "HEAD")
        dirty = _git(root, "status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{head}+dirty" if dirty else head


def provenance(*, seed: int | None = None, device=None, started: float | None = None) -> dict:
    """What produced a chapter's numbers: versions, device, seed, commit, times.

    ``started`` is a ``time.time()`` stamp (e.g. ``Recorder.started``); with it the wall time
    so far is included.
    """
    import torch

    info = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": str(device) if device is not None else "not used",
        "seed": seed,
        "git_commit": git_commit(),
        "finished_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "packages": package_versions(),
    }
    if started is not None:
        info["wall_time_s"] = round(time.time() - started, 1)
    return info
