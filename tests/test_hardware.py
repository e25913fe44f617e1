"""Precision by hardware: what `auto` chooses on which CPU, explicit choices, and configs from before it existed."""

from __future__ import annotations

import pytest
import torch

from unseen import hardware
from unseen.config import from_dict, make_config, to_dict, validate
from unseen.errors import UserError

AVX2 = {"avx2": True, "avx512": False, "avx512_bf16": False, "amx_tile": False}
CPUS = {
    "AVX2 only (AMD EPYC)": (AVX2, "float32"),
    "AVX512 without bf16": (AVX2 | {"avx512": True}, "float32"),
    "AVX512-BF16": (AVX2 | {"avx512": True, "avx512_bf16": True}, "bf16"),
    "AMX (Sapphire Rapids)": (AVX2 | {"avx512": True, "avx512_bf16": True, "amx_tile": True}, "bf16"),
}
CPU = torch.device("cpu")


@pytest.mark.parametrize("cpu", list(CPUS))
def test_auto_chooses_bf16_only_where_the_cpu_computes_it_natively(cpu, monkeypatch):
    features, expected = CPUS[cpu]
    monkeypatch.setattr(hardware, "cpu_features", lambda: features)
    assert hardware.resolve_precision("auto", CPU) == expected
    native, why = hardware.native_bf16(CPU)
    assert native == (expected == "bf16") and hardware.cpu_name() in why
    # An explicit choice is kept whatever the CPU: bf16 where it is emulated is slow, not wrong.
    assert hardware.resolve_precision("bf16", CPU) == "bf16"
    assert hardware.resolve_precision("float32", CPU) == "float32"


def test_this_machine_is_described_as_pytorch_sees_it():
    record = hardware.describe(CPU)
    assert record["device"] == "cpu" and record["cpu"] == hardware.cpu_name() != ""
    assert record["cpu_features"].keys() == set(hardware.CPU_FEATURES)
    assert record["native_bf16"] == (torch.cpu._is_amx_tile_supported() or torch.cpu._is_avx512_bf16_supported())


def test_unknown_precision_fails_with_the_choices():
    with pytest.raises(ValueError, match="auto, bf16, float32"):
        hardware.resolve_precision("fp16", CPU)
    cfg = make_config("drq", "cartpole_swingup", "smoke")
    cfg.agent.precision = "fp16"
    with pytest.raises(UserError, match=r"agent\.precision must be one of auto, bf16, float32"):
        validate(cfg)


def test_an_unresolved_precision_cannot_build_networks():
    with pytest.raises(ValueError, match="resolved for a device first"):
        _ = make_config("drq", "cartpole_swingup", "smoke").agent.bf16


@pytest.mark.parametrize("bf16, precision", [(True, "bf16"), (False, "float32")])
def test_configs_from_before_precision_read_their_bf16_switch(bf16, precision):
    data = to_dict(make_config("svea", "cartpole_swingup", "cpu"))
    data["agent"] = {key: value for key, value in data["agent"].items() if key != "precision"} | {"bf16": bf16}
    cfg = from_dict(data)
    assert cfg.agent.precision == precision and cfg.agent.bf16 is bf16


def proc_stat(monkeypatch, snapshots: list[dict[str, tuple[int, int]]], cpus: set[int]) -> None:
    """`free_cores` reads (idle, total) ticks twice: give it `snapshots` on a machine whose process may use `cpus`."""
    readings = iter(snapshots)
    monkeypatch.setattr(hardware, "_cpu_times", lambda: next(readings))
    monkeypatch.setattr(hardware.time, "sleep", lambda seconds: None)
    monkeypatch.setattr(hardware.os, "sched_getaffinity", lambda pid: cpus)
    monkeypatch.setattr(hardware, "usable_cores", lambda: len(cpus))


@pytest.mark.parametrize(
    "idle_ticks, free",
    [
        ((100, 100), 2),  # nobody else: both cores
        ((0, 100), 1),  # one busy process: the other core
        ((0, 0), 1),  # both busy: still one thread
        ((60, 70), 1),  # 1.3 cores idle rounds to 1
        ((90, 80), 2),  # background noise: 1.7 rounds to 2
    ],
)
def test_free_cores_counts_the_idle_share_of_this_process_cpus(monkeypatch, idle_ticks, free):
    before = {"cpu0": (0, 0), "cpu1": (0, 0), "cpu2": (0, 0)}
    # cpu2 is idle but outside this process's affinity: it does not count.
    after = {"cpu0": (idle_ticks[0], 100), "cpu1": (idle_ticks[1], 100), "cpu2": (100, 100)}
    proc_stat(monkeypatch, [before, after], {0, 1})
    assert hardware.free_cores() == free


def test_threads_are_asked_for_then_omp_num_threads_then_the_free_cores(monkeypatch):
    monkeypatch.setattr(hardware, "free_cores", lambda: 1)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert hardware.resolve_threads(0) == 1
    assert hardware.resolve_threads(3) == 3
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert hardware.resolve_threads(0) == 2
    assert hardware.resolve_threads(4) == 4
    with pytest.raises(ValueError, match="threads must be >= 0"):
        hardware.resolve_threads(-1)


def test_this_machine_has_free_cores_within_its_usable_ones():
    assert 1 <= hardware.free_cores(interval=0.05) <= hardware.usable_cores()


def test_negative_threads_fail_validation():
    cfg = make_config("drq", "cartpole_swingup", "smoke")
    cfg.train.threads = -1
    with pytest.raises(UserError, match=r"train\.threads must be zero or positive"):
        validate(cfg)


@pytest.mark.parametrize("quota, cores", [("max 100000", 2), ("150000 100000", 2), ("100000 100000", 1),
                                          ("50000 100000", 1)])
def test_usable_cores_are_the_affinity_capped_by_a_container_quota(tmp_path, monkeypatch, quota, cores):
    (tmp_path / "cpu.max").write_text(quota + "\n")
    monkeypatch.setattr(hardware, "CGROUP_CPU_MAX", tmp_path / "cpu.max")
    monkeypatch.setattr(hardware.os, "sched_getaffinity", lambda pid: {0, 1})
    assert hardware.usable_cores() == cores
