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
