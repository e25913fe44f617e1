"""What the machine can do fast: the CPU's name and vector features, and the precision `auto` chooses.

bfloat16 pays only where the hardware computes it natively: CPUs with AMX or AVX512-BF16, CUDA GPUs with bf16
units (compute capability 8.0 and later). Elsewhere PyTorch emulates it, and on an AVX2-only CPU a bf16 update
of the `cpu` preset took 5-8x as long as a float32 one (docs/presets.md). So `agent.precision=auto` (the
default) is resolved once, when a run starts, to "bf16" on such hardware and "float32" everywhere else; the
run's config.yaml holds the choice, its summary.json the hardware it was made on.

Threads follow the same rule: `train.threads=0` (the default) is resolved when a run starts to OMP_NUM_THREADS when
that is set, else to the cores nobody else is using at that moment (`free_cores`), and saved with the run. A run
that shares the machine with a busy process then takes the one free core instead of fighting for both (2 threads
beside a busy process took 1.27x as long per update as 1 thread on an AMD EPYC), and a resume computes with the
threads the run was made with: results differ in the last digits between 1 and 2 threads.
"""

from __future__ import annotations

import math
import os
import platform
import time
from functools import cache
from pathlib import Path

import torch

PRECISIONS = ("auto", "bf16", "float32")

CPU_FEATURES = ("avx2", "avx512", "avx512_bf16", "amx_tile")
"""The CPU features that decide conv speed, as PyTorch's own CPU detection reports them (`torch.cpu`)."""


@cache
def cpu_name() -> str:
    """The CPU's model name ("AMD EPYC", "Intel(R) Xeon(R) Platinum 8480+", ...), or the architecture if unknown."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    return platform.processor() or platform.machine()


def cpu_features() -> dict[str, bool]:
    """Which of `CPU_FEATURES` this CPU has."""
    probes = {
        "avx2": torch.cpu._is_avx2_supported,
        "avx512": torch.cpu._is_avx512_supported,
        "avx512_bf16": torch.cpu._is_avx512_bf16_supported,
        "amx_tile": torch.cpu._is_amx_tile_supported,
    }
    return {name: bool(probe()) for name, probe in probes.items()}


def native_bf16(device: torch.device) -> tuple[bool, str]:
    """Whether `device` computes bfloat16 natively, and why in a few words."""
    if device.type == "cuda":
        native = torch.cuda.is_bf16_supported(including_emulation=False)
        gpu = torch.cuda.get_device_name(device)
        return native, f"{gpu} {'has' if native else 'lacks'} bf16 units"
    if device.type != "cpu":
        return False, f"bf16 is not known to be native on {device.type}"
    features = cpu_features()
    units = [name.upper().replace("_", "-") for name in ("amx_tile", "avx512_bf16") if features[name]]
    if units:
        return True, f"{cpu_name()} has {' and '.join(units)}"
    best = "AVX512" if features["avx512"] else "AVX2" if features["avx2"] else "no AVX2"
    return False, f"{cpu_name()} has {best}, no AMX or AVX512-BF16: bf16 would be emulated"


def resolve_precision(requested: str, device: torch.device) -> str:
    """"auto" becomes "bf16" where `device` computes it natively, else "float32"; an explicit choice stays as it is
    (bf16 on hardware that emulates it is honoured: slow, but what was asked)."""
    if requested not in PRECISIONS:
        raise ValueError(f"unknown precision {requested!r}; choose one of: {', '.join(PRECISIONS)}")
    if requested == "auto":
        return "bf16" if native_bf16(device)[0] else "float32"
    return requested


def describe(device: torch.device) -> dict[str, object]:
    """The hardware a run is made on, for its summary.json."""
    record: dict[str, object] = {"device": str(device), "cpu": cpu_name(), "cpu_features": cpu_features()}
    if device.type == "cuda":
        record["gpu"] = torch.cuda.get_device_name(device)
    record["native_bf16"] = native_bf16(device)[0]
    return record


CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")
"""A container's CPU quota (cgroup v2): "<microseconds> <period>", or "max <period>" for none."""


def usable_cores() -> int:
    """Cores this process may run on: its CPU affinity, capped by a cgroup CPU quota (containers) if there is one."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    if CGROUP_CPU_MAX.is_file():
        limit, _, period = CGROUP_CPU_MAX.read_text().partition(" ")
        if limit != "max" and period.strip():
            cores = min(cores, max(1, math.ceil(int(limit) / int(period))))
    return cores


def _cpu_times() -> dict[str, tuple[int, int]]:
    """(idle, total) clock ticks of every CPU in /proc/stat, by name ("cpu0", ...)."""
    times = {}
    for line in Path("/proc/stat").read_text().splitlines():
        name, *fields = line.split()
        if name.startswith("cpu") and name != "cpu":
            ticks = [int(field) for field in fields[:8]]  # user nice system idle iowait irq softirq steal
            times[name] = (ticks[3] + ticks[4], sum(ticks))
    return times


def free_cores(interval: float = 0.3) -> int:
    """The cores nobody else is using: the idle share of this process's CPUs over `interval` seconds, rounded
    (at least 1, at most `usable_cores`). Without /proc/stat (not Linux), every usable core."""
    cores = usable_cores()
    if not Path("/proc/stat").is_file() or not hasattr(os, "sched_getaffinity"):
        return cores
    mine = {f"cpu{index}" for index in os.sched_getaffinity(0)}
    before = _cpu_times()
    time.sleep(interval)
    after = _cpu_times()
    idle = 0.0
    for name in mine & before.keys() & after.keys():
        ticks = after[name][1] - before[name][1]
        idle += (after[name][0] - before[name][0]) / ticks if ticks > 0 else 1.0
    return max(1, min(cores, round(idle)))


def resolve_threads(requested: int) -> int:
    """Intra-op threads for a run: `requested` when positive, else OMP_NUM_THREADS when set, else `free_cores()`."""
    if requested < 0:
        raise ValueError(f"threads must be >= 0 (0: choose from the free cores), got {requested}")
    if requested:
        return requested
    if os.environ.get("OMP_NUM_THREADS", "").isdigit() and int(os.environ["OMP_NUM_THREADS"]) > 0:
        return int(os.environ["OMP_NUM_THREADS"])
    return free_cores()
