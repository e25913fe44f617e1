"""`unseen bench`'s pieces: interleaved timing, the ratios it derives, and what its two update paths switch."""

from __future__ import annotations

import pytest
import torch

from unseen import bench
from unseen.hardware import resolve_precision
from unseen.replay import ReplayBuffer


def test_interleaved_warms_up_then_alternates_the_candidates():
    calls: list[str] = []
    seconds = bench.interleaved({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, rounds=3)
    assert calls == ["a", "b"] * 4  # one warm-up call each, then three rounds in alternation
    assert seconds.keys() == {"a", "b"} and all(value >= 0 for value in seconds.values())


def test_cost_ratios_are_update_time_ratios():
    updates_per_s = {algo: {"cpu": rate} for algo, rate in
                     {"drq": 6.0, "svea": 4.0, "cg2a": 2.0, "alda": 1.5, "sac_ae": 3.0, "sac": 6.5}.items()}
    ratios = bench.cost_ratios(updates_per_s)
    assert ratios["cg2a_over_svea"]["cpu"] == pytest.approx(2.0)
    assert ratios["cg2a_over_drq"]["cpu"] == pytest.approx(3.0)


def test_replay_saving_is_measured_from_the_buffer():
    result = bench.bench_replay()
    assert result["replay_bytes_per_transition"] == ReplayBuffer(8, (3, 84, 84), 6, 3).bytes_per_frame
    assert result["replay_saving"] == pytest.approx(
        result["replay_bytes_per_transition_stacked"] / result["replay_bytes_per_transition"]
    )
    assert result["replay_saving"] > 5


@pytest.mark.parametrize("fast", [True, False])
def test_update_paths_switch_every_fast_path_field(fast):
    agent, batch = bench._update_setup("drq", "smoke", fast, batch_size=4)
    native = resolve_precision("auto", torch.device("cpu")) == "bf16"
    assert (agent.cfg.bf16, agent.cfg.channels_last, agent.cfg.fast_kernels) == (fast and native, fast, fast)
    assert agent.critic_optimizer.defaults["fused"] is fast
    assert agent.trunk.convs[1].inplace is fast
    assert batch["obs"].shape[0] == 4
