"""Process-wide settings for fast, reproducible CPU training, applied once at start-up and recorded."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from unseen import hardware

# glibc mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4


def configure_allocator() -> dict[str, object]:
    """Keep freed memory in the process instead of returning it to the kernel.

    Conv activations of 40-55 MB exceed glibc's largest dynamic mmap threshold, so by default every
    such allocation maps fresh pages from the kernel and every free unmaps them; on this machine that
    made one SAC update about 2x slower. Equivalent to MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=<large>.
    """
    if not sys.platform.startswith("linux") or ctypes.util.find_library("c") is None:
        return {"allocator": "default"}
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    ok = bool(libc.mallopt(_M_MMAP_MAX, 0)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, 2**30))
    return {"allocator": "glibc mmap_max=0 trim_threshold=1GiB" if ok else "default (mallopt failed)"}


def configure_threads(threads: int = 0) -> dict[str, object]:
    """Compute with `threads` intra-op threads (0: `hardware.resolve_threads` chooses: OMP_NUM_THREADS, else the
    free cores)."""
    threads = hardware.resolve_threads(threads)
    torch.set_num_threads(threads)
    return {"torch_threads": threads, "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "default")}


def configure(threads: int = 0) -> dict[str, object]:
    """Apply the allocator and thread settings; returns what was set, for the run's records."""
    return configure_allocator() | configure_threads(threads)


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators (unseen itself draws from explicit ones)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def source_commit() -> str:
    """The git commit the running unseen code comes from ("+dirty" with uncommitted changes), or "unknown"."""
    source = Path(__file__).resolve().parent
    try:
        # check=False: a failing git is no error here; the return code below turns it into "unknown".
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=source, capture_output=True, text=True, timeout=10, check=False
        )
        status = subprocess.run(
            ["git", "status", "--porcelain", "--", "."], cwd=source, capture_output=True, text=True, timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if commit.returncode != 0:
        return "unknown"
    return commit.stdout.strip() + ("+dirty" if status.stdout.strip() else "")


def versions() -> dict[str, str]:
    """Versions of everything that can change a number, for summary.json."""
    from importlib.metadata import version

    return {
        **{name: version(name) for name in ("unseen", "torch", "mujoco", "dm_control", "numpy", "gymnasium")},
        "unseen_commit": source_commit(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": hardware.cpu_name(),
    }
