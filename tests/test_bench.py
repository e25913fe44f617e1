"""`unseen bench`'s pieces at tiny sizes: interleaved timing, the ratios it derives, what its two update paths switch,
the peaks and the one updates are held against, the machine record, environment speed, thread sharing, the tables.
Nothing here asserts a time: the machine running the tests may be busy."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
import subprocess

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from unseen import bench, hardware
from unseen.agents import AGENTS
from unseen.envs.dmc_tasks import SHIFTS
from unseen.hardware import resolve_precision
from unseen.replay import ReplayBuffer

CPU = torch.device("cpu")
AVX2 = {"avx2": True, "avx512": False, "avx512_bf16": False, "amx_tile": False}
AVX512_BF16 = AVX2 | {"avx512": True, "avx512_bf16": True}
AMX = AVX512_BF16 | {"amx_tile": True}


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
    native = resolve_precision("auto", CPU) == "bf16"
    assert (agent.cfg.bf16, agent.cfg.channels_last, agent.cfg.fast_kernels) == (fast and native, fast, fast)
    assert agent.critic_optimizer.defaults["fused"] is fast
    assert agent.trunk.convs[1].inplace is fast
    assert batch["obs"].shape[0] == 4


def test_full_update_includes_the_actor_step_in_every_update():
    agent, batch = bench._update_setup("drq", "smoke", False, batch_size=4)
    steps: list[int] = []
    update_actor = agent.update_actor_and_alpha
    agent.update_actor_and_alpha = lambda features: steps.append(agent.updates) or update_actor(features)
    bench.full_update(agent, batch, count=3)
    assert len(steps) == 3
    with FlopCounterMode(display=False) as plain:
        agent.update(batch)  # the count now makes this one critic-only
    assert len(steps) == 3 and sum(bench.update_flops("drq", "smoke", 4).values()) > plain.get_total_flops() > 0


@pytest.mark.parametrize("algo", sorted(AGENTS))
def test_update_flops_counts_every_agents_update_and_grow_with_the_batch(algo):
    assert sum(bench.update_flops(algo, "smoke", 4).values()) > sum(bench.update_flops(algo, "smoke", 2).values()) > 0


@pytest.mark.parametrize("bf16", [True, False])
def test_update_flops_per_precision_add_up_to_the_reference_paths_count(bf16, monkeypatch):
    monkeypatch.setattr(hardware, "cpu_features", lambda: AMX if bf16 else AVX2)
    split = bench.update_flops("drq", "smoke", 4)
    agent, batch = bench._update_setup("drq", "smoke", fast=False, batch_size=4)
    with FlopCounterMode(display=False) as plain:
        bench.full_update(agent, batch)
    assert sum(split.values()) == plain.get_total_flops()
    if bf16:
        # The conv trunk and the projections' products in bf16, the actor's and critics' MLPs in float32.
        assert set(split) == {"bf16", "float32"} and 0 < split["float32"] < split["bf16"]
    else:
        assert set(split) == {"float32"}


def test_mix_peak_spends_each_precisions_flops_at_its_peak():
    peaks = {"float32": {"matmul": 100.0, "conv": 50.0}, "bf16": {"matmul": 300.0, "conv": 400.0}}
    assert bench.mix_peak({"bf16": 8.0}, peaks) == pytest.approx(400.0)
    assert bench.mix_peak({"float32": 3.0}, peaks) == pytest.approx(100.0)
    # 8 GFLOP at 400 (20 ms) and 2 at 100 (20 ms): 10 GFLOP in 40 ms.
    assert bench.mix_peak({"bf16": 8.0, "float32": 2.0}, peaks) == pytest.approx(250.0)


def test_peaks_in_both_precisions_with_the_chosen_one_autos():
    peaks = bench.bench_peaks(matmul_size=32, conv_batch=1, rounds=1)
    assert {precision: set(kernels) for precision, kernels in peaks.items()} == {
        "float32": {"matmul", "conv"}, "bf16": {"matmul", "conv"}
    }
    assert all(gflops > 0 for kernels in peaks.values() for gflops in kernels.values())
    chosen = bench.chosen_peak(peaks)
    assert chosen["precision"] == resolve_precision("auto", CPU)
    assert chosen["gflops"] == max(peaks[chosen["precision"]].values()) == peaks[chosen["precision"]][chosen["kernel"]]


def test_trunk_conv_is_the_smoke_trunks_second_layer_forward_and_backward():
    trunk = bench.bench_trunk_conv("smoke", rounds=1)
    assert trunk["shape"] == "3x3 32->32, 64x31x31"  # 64x64 frames, stride-2 first layer, batch 64
    assert trunk["forward"] > 0 and trunk["forward_backward"] > 0


@pytest.mark.parametrize("features, precision", [(AVX2, "float32"), (AMX, "bf16")])
def test_chosen_peak_is_the_larger_kernel_in_the_precision_auto_picks(features, precision, monkeypatch):
    monkeypatch.setattr(hardware, "cpu_features", lambda: features)
    peaks = {"float32": {"matmul": 120.0, "conv": 150.0}, "bf16": {"matmul": 700.0, "conv": 500.0}}
    chosen = bench.chosen_peak(peaks)
    assert (chosen["precision"], chosen["kernel"]) == (precision, "conv" if precision == "float32" else "matmul")
    assert chosen["gflops"] == max(peaks[precision].values())


def test_share_of_peak_is_achieved_over_peak():
    split = {precision: flops / 1e9 for precision, flops in bench.update_flops("drq", "smoke", 4).items()}
    peaks = {"float32": {"matmul": 20.0, "conv": 25.0}, "bf16": {"matmul": 40.0, "conv": 50.0}}
    efficiency = bench.update_efficiency({"drq": 4.0}, {"drq": split}, peaks, peak_gflops=50.0)["drq"]
    gflop = sum(split.values())
    assert efficiency["gflop_per_update"] == gflop > 0 and efficiency["gflop_by_precision"] == split
    assert efficiency["update_ms"] == pytest.approx(250.0)
    assert efficiency["gflops"] == pytest.approx(4.0 * gflop)
    assert efficiency["share_of_peak"] == pytest.approx(efficiency["gflops"] / 50.0)
    assert efficiency["mix_peak_gflops"] == pytest.approx(bench.mix_peak(split, peaks))
    assert efficiency["share_of_mix_peak"] == pytest.approx(efficiency["gflops"] / efficiency["mix_peak_gflops"])


def test_machine_names_the_cpu_its_features_and_autos_precision():
    record = bench.machine()
    assert record["cpu"] == hardware.cpu_name() and record["cpu_features"].keys() == set(hardware.CPU_FEATURES)
    assert record["precision_auto"] == resolve_precision("auto", CPU)
    assert record["precision_auto_why"] == hardware.native_bf16(CPU)[1]
    assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", bench.machine_slug(record))


def test_machine_slug_tells_apart_cpus_of_one_name():
    intel = {"cpu": "Intel(R) Xeon(R) Platinum 8480+ CPU @ 2.00GHz", "cpu_features": AMX, "cores": 112}
    assert bench.machine_slug(intel) == "intel-xeon-platinum-8480-amx-tile-112cores"
    epyc = {"cpu": "AMD EPYC", "cpu_features": AVX2, "cores": 2}
    assert bench.machine_slug(epyc) == "amd-epyc-avx2-2cores"
    assert bench.machine_slug(epyc | {"cpu_features": AVX512_BF16}) == "amd-epyc-avx512-bf16-2cores"


def test_env_speed_per_frame_size_and_shift():
    speeds = bench.bench_env_speed([16, 24], steps=2, rounds=1, shifts=("none", "color_easy"))
    assert {size: set(shifts) for size, shifts in speeds.items()} == {
        "16x16": {"none", "color_easy"}, "24x24": {"none", "color_easy"}
    }
    assert all(rate > 0 for shifts in speeds.values() for rate in shifts.values())


def test_sharing_runs_its_cases_and_reports_ratios(monkeypatch):
    cases: list[tuple[list[int], bool]] = []
    busy: list[subprocess.Popen] = []
    start_busy = bench.busy_process

    @contextlib.contextmanager
    def watched_busy():
        with start_busy() as process:
            busy.append(process)
            yield process

    def side_by_side(threads, preset, batch_size, rounds):
        cases.append((list(threads), bool(busy) and busy[-1].poll() is None))
        seconds = {(1,): 0.9, (1, 1): 1.0, (2,): 0.8, (0,): 0.85}[tuple(threads)] + 0.1 * bool(busy)
        return [(seconds, count or 1) for count in threads]

    monkeypatch.setattr(bench, "busy_process", watched_busy)
    monkeypatch.setattr(bench, "updates_side_by_side", side_by_side)
    result = bench.bench_sharing("smoke", rounds=1, batch_size=4)
    # alone, side by side, then threads as a run chooses them, 2 and 1 beside the busy process, gone afterwards
    assert cases == [([1], False), ([1, 1], False), ([0], True), ([2], True), ([1], True)]
    assert busy[0].poll() is not None
    assert result["side_by_side_over_alone"] == pytest.approx([1.0 / 0.9] * 2)
    assert result["update_ms_1_thread_side_by_side"] == pytest.approx([1000.0, 1000.0])
    assert result["two_over_one_thread_beside_busy"] == pytest.approx(0.9 / 1.0)
    assert result["auto_over_one_thread_beside_busy"] == pytest.approx(0.95 / 1.0)
    assert result["threads_auto_beside_busy"] == 1


def test_side_by_side_workers_time_real_updates_and_a_failed_one_raises():
    timed = bench.updates_side_by_side([1, 2], "smoke", batch_size=4, rounds=1)
    assert [threads for _, threads in timed] == [1, 2] and all(seconds > 0 for seconds, _ in timed)
    with pytest.raises(RuntimeError, match="stopped before its updates"):
        bench.updates_side_by_side([1], "no-such-preset", batch_size=4, rounds=1)


def test_markdown_shows_every_section(monkeypatch):
    monkeypatch.setattr(bench, "updates_side_by_side", lambda threads, *_: [(0.5, count or 1) for count in threads])
    peaks = {"float32": {"matmul": 120.0, "conv": 150.0}, "bf16": {"matmul": 700.0, "conv": 500.0}}
    chosen = bench.chosen_peak(peaks)
    updates_per_s = {algo: {"cpu": 2.0, "paper": 1.0} for algo in AGENTS}
    update = {"update_ms": 100.0, "update_ms_reference": 200.0, "update_speedup": 2.0}
    result = {
        "machine": bench.machine(), "quick": True, "plan": dataclasses.asdict(bench.QUICK), "minutes": 4.2,
        "render_fps": 260.0, "render_fps_baseline": 58.0, "render_speedup": 4.5,
        "peak_gflops": peaks, "chosen_peak": chosen, "update_cpu": update, "update_paper": update,
        "trunk_conv_cpu": {"shape": "3x3 32->32, 128x31x31", "forward": 75.0, "forward_backward": 60.0},
        "updates_per_s": updates_per_s, **bench.cost_ratios(updates_per_s),
        "efficiency_cpu": bench.update_efficiency(
            {algo: 2.0 for algo in AGENTS},
            {algo: {"bf16": 0.12 * chosen["gflops"], "float32": 0.03 * chosen["gflops"]} for algo in AGENTS},
            peaks,
            chosen["gflops"],
        ),
        **bench.bench_replay(), "grad_extraction_cpu": {"fast_sequential_over_concat": 1.1},
        "env_steps_per_s": {"84x84": dict.fromkeys(SHIFTS, 200.0), "64x64": dict.fromkeys(SHIFTS, 250.0)},
        "eval_episodes_per_min": 30.0, "eval_minutes_10_episodes_6_shifts": 2.0,
        "sharing_cpu": bench.bench_sharing("smoke", rounds=1, batch_size=4),
    }
    json.dumps(result)  # what --json and --out write
    text = bench.markdown(result)
    assert hardware.cpu_name() in text and f"**{resolve_precision('auto', CPU)}**" in text
    assert f"Chosen peak: **{chosen['gflops']:.1f} GFLOP/s** ({chosen['kernel']}, {chosen['precision']})" in text
    assert f"forward 75.0 GFLOP/s ({75 / chosen['gflops']:.0%} of the chosen peak)" in text
    assert all(f"| {algo} | " in text for algo in AGENTS) and text.count("| 30% |") == len(AGENTS)
    mixed = result["efficiency_cpu"]["drq"]["mix_peak_gflops"]
    achieved = 2 * 0.15 * chosen["gflops"]
    assert f"| drq | {0.15 * chosen['gflops']:.1f} | 80% | 500 | {achieved:.1f} | 30% | >= 50% | " in text
    assert f"| {100 * achieved / mixed:.0f}% of {mixed:.0f} |" in text
    assert all(f"| {shift} | 200 | 250 |" in text for shift in SHIFTS)
    assert "| two 1-thread processes side by side | 500 / 500 | 1.00 / 1.00 | < 1.2 each |" in text
