"""`unseen bench`: throughput of the fast paths, each as a ratio against a baseline measured beside it.

The machine is shared and noisy, so no absolute time is compared with a threshold: every figure that
matters is a ratio of two measurements taken in the same process, interleaved round by round (A, B,
A, B, ...) and summarised by their medians, so that a slow moment hurts both sides alike.
"""

from __future__ import annotations

import dataclasses
import os
import platform
import statistics
import time
from collections import deque
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from unseen import runtime
from unseen.agents import AGENTS, make_agent
from unseen.config import make_config
from unseen.envs import SHIFTS, make_env
from unseen.envs.dmc import suite
from unseen.evaluate import evaluate_parallel
from unseen.grad import per_loss_gradients
from unseen.replay import ReplayBuffer


def interleaved(candidates: Mapping[str, Callable[[], Any]], rounds: int) -> dict[str, float]:
    """Median seconds per call of each candidate, timed in alternation after one warm-up call each."""
    for run in candidates.values():
        run()
    times: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(rounds):
        for name, run in candidates.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def bench_render(steps: int, rounds: int) -> dict[str, float]:
    """Agent steps per second of our walker_walk (84x84, stack 3) against dm_control's `physics.render`.

    Both do the same work per agent step: 4 simulator steps (the action repeat), one 84x84 frame from
    camera 0, a 3-frame stack.
    """
    ours = make_env("walker_walk", seed=0, image_size=84)
    ours.reset()
    baseline = suite.load("walker", "walk", task_kwargs={"random": 0})
    baseline.reset()
    frames: deque[np.ndarray] = deque(maxlen=3)
    actions = np.random.default_rng(0).uniform(-1, 1, (steps, 6))

    def run_ours() -> None:
        for action in actions:
            _, _, terminated, truncated, _ = ours.step(action)
            if terminated or truncated:
                ours.reset()

    def run_baseline() -> None:
        for action in actions:
            for _ in range(4):
                if baseline.step(action).last():
                    baseline.reset()
            frames.append(baseline.physics.render(84, 84, camera_id=0).transpose(2, 0, 1))
            np.concatenate(frames)

    seconds = interleaved({"ours": run_ours, "baseline": run_baseline}, rounds)
    ours.close()
    return {
        "render_fps": steps / seconds["ours"],
        "render_fps_baseline": steps / seconds["baseline"],
        "render_speedup": seconds["baseline"] / seconds["ours"],
    }


def _update_setup(algo: str, preset: str, fast: bool, batch_size: int):
    cfg = make_config(algo, "walker_walk", preset)
    cfg.agent.precision = "auto" if fast else "float32"  # the fast path: the precision native to this machine
    cfg.agent.fast_kernels = fast
    cfg.agent.channels_last = fast and cfg.agent.channels_last  # the fast path is the preset's own layout
    size, stack = cfg.env.image_size, cfg.env.frame_stack
    agent = make_agent(algo, (3 * stack, size, size), 6, cfg.agent, torch.device("cpu"), seed=0)
    replay = ReplayBuffer(batch_size * 4, (3, size, size), 6, stack)
    rng = np.random.default_rng(0)
    replay.add_first(rng.integers(0, 256, (3, size, size), dtype=np.uint8))
    for _ in range(batch_size * 4 - 1):
        replay.add(rng.uniform(-1, 1, 6), 1.0, 1.0, rng.integers(0, 256, (3, size, size), dtype=np.uint8))
    batch = replay.sample(batch_size, rng)
    return agent, batch


def update_flops(algo: str, preset: str, batch_size: int) -> float:
    """FLOPs of one update with an actor step, counted from the layer shapes by torch's FLOP counter."""
    agent, batch = _update_setup(algo, preset, fast=False, batch_size=batch_size)
    agent.updates = agent.cfg.actor_update_every - 1  # the next update includes the actor's
    with FlopCounterMode(display=False) as counter:
        agent.update(batch)
    return float(counter.get_total_flops())


def bench_update(preset: str, updates: int, rounds: int) -> dict[str, float]:
    """DrQ update time of the straightforward reference (float32, NCHW, PyTorch's default Adam loop, out-of-place
    ReLUs: every fast-path switch off) over the fast path (bf16 trunk and projections, channels-last, fused Adam,
    in-place ReLUs). Both compute the same FLOPs on the same batch."""
    batch_size = make_config("drq", "walker_walk", preset).train.batch_size
    agents = {fast: _update_setup("drq", preset, fast, batch_size) for fast in (True, False)}
    candidates = {
        name: (lambda agent=agent, batch=batch: [agent.update(batch) for _ in range(updates)])
        for name, (agent, batch) in (("fast", agents[True]), ("reference", agents[False]))
    }
    seconds = {name: value / updates for name, value in interleaved(candidates, rounds).items()}
    flops = update_flops("drq", preset, batch_size)
    return {
        "update_ms": 1000 * seconds["fast"],
        "update_ms_reference": 1000 * seconds["reference"],
        "update_speedup": seconds["reference"] / seconds["fast"],
        "update_gflops": flops / seconds["fast"] / 1e9,
        "update_gflop_per_update": flops / 1e9,
    }


def bench_peak(dtype: torch.dtype, size: int, rounds: int) -> float:
    """GFLOP/s of a square matrix product of the given dtype: the machine's practical peak."""
    a = torch.randn(size, size).to(dtype)
    b = torch.randn(size, size).to(dtype)
    seconds = interleaved({"mm": lambda: torch.mm(a, b)}, rounds)["mm"]
    return 2 * size**3 / seconds / 1e9


def bench_algos(
    presets: tuple[str, ...], updates: int, algos: tuple[str, ...] = tuple(AGENTS), rounds: int = 1
) -> dict[str, dict[str, float]]:
    """Updates per second of every registered algorithm (or of `algos`) at each preset (fast path): `updates`
    updates per call, the algorithms of a preset interleaved round by round."""
    result: dict[str, dict[str, float]] = {algo: {} for algo in algos}
    for preset in presets:
        setups = {
            algo: _update_setup(algo, preset, True, make_config(algo, "walker_walk", preset).train.batch_size)
            for algo in algos
        }
        candidates = {
            algo: (lambda agent=agent, batch=batch: [agent.update(batch) for _ in range(updates)])
            for algo, (agent, batch) in setups.items()
        }
        for algo, seconds in interleaved(candidates, rounds).items():
            result[algo][preset] = updates / seconds
    return result


COST_RATIOS = (("cg2a", "svea"), ("cg2a", "drq"), ("alda", "drq"), ("sac_ae", "drq"))
"""Pairs (a, b) whose update-time ratio `a_over_b` `unseen bench` reports."""


def cost_ratios(updates_per_s: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """Update time of a over b for every pair of `COST_RATIOS` at each preset, from their updates per second."""
    return {
        f"{a}_over_{b}": {preset: updates_per_s[b][preset] / updates_per_s[a][preset] for preset in updates_per_s[a]}
        for a, b in COST_RATIOS
    }


def bench_grad_extraction(preset: str, rounds: int) -> dict[str, float]:
    """CG2A's per-augmentation gradients (K = N+1 views) against one forward+backward of the concatenated batch.

    Fast path (bf16, channels-last): `sequential` only (`vmap` refuses channels-last); float32 NCHW: both
    methods, each against the concatenated pass of the same layout. The TD target and views are fixed.
    """
    batch_size = make_config("cg2a", "walker_walk", preset).train.batch_size
    result: dict[str, float] = {}
    for layout, methods in (("fast", ("sequential",)), ("nchw", ("sequential", "vmap"))):
        result |= _grad_extraction_on(layout, methods, preset, batch_size, rounds)
    return result


def _grad_extraction_on(
    layout: str, methods: tuple[str, ...], preset: str, batch_size: int, rounds: int
) -> dict[str, float]:
    """`bench_grad_extraction` on one layout ("fast" or "nchw")."""
    agent, batch = _update_setup("cg2a", preset, layout == "fast", batch_size)
    target = agent.td_target(batch)
    views = agent.views(batch["obs"])
    action, k = batch["action"], len(views)
    params = agent.critic_parameters()

    def concat() -> None:
        loss, _ = agent.view_loss(views.flatten(0, 1), action.repeat(k, 1), target.repeat(k, 1))
        torch.autograd.grad(loss, params)

    candidates: dict[str, Callable[[], Any]] = {"concat": concat}
    for method in methods:
        candidates[method] = partial(per_loss_gradients, agent.view_loss, views, action, target, method=method)
    seconds = interleaved(candidates, rounds)
    result = {f"{layout}_concat_ms": 1000 * seconds["concat"]}
    for method in methods:
        result[f"{layout}_{method}_ms"] = 1000 * seconds[method]
        result[f"{layout}_{method}_over_concat"] = seconds[method] / seconds["concat"]
    return result


def bench_replay() -> dict[str, float]:
    """Bytes per transition of our buffer against storing obs and next_obs stacks (84x84, stack 3, 6-dim action)."""
    buffer = ReplayBuffer(8, (3, 84, 84), 6, 3)
    stacked = 2 * 3 * 3 * 84 * 84 + 6 * 4 + 4 + 4
    return {
        "replay_bytes_per_transition": buffer.bytes_per_frame,
        "replay_bytes_per_transition_stacked": stacked,
        "replay_saving": stacked / buffer.bytes_per_frame,
    }


def machine() -> dict[str, Any]:
    model = platform.processor()
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as handle:
            names = [line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")]
        model = names[0] if names else model
    return {**runtime.versions(), **runtime.configure(), "cores": os.cpu_count(), "cpu": model}


@dataclasses.dataclass
class BenchPlan:
    """How much to measure: `quick` finishes in a few minutes on 2 cores."""

    render_steps: int
    update_count: int
    rounds: int
    peak_size: int
    presets: tuple[str, ...]
    eval_episodes: int
    """Evaluation episodes per shift (walker_walk, every shift)."""


def bench_eval(episodes: int, preset: str = "paper") -> dict[str, float]:
    """`unseen eval`'s path (worker processes, one per core) on walker_walk: `episodes` on every shift.

    The agent has the preset's networks at initialisation: the time per episode does not depend on training.
    """
    cfg = make_config("drq", "walker_walk", preset)
    cfg.train.video = False
    size, stack = cfg.env.image_size, cfg.env.frame_stack
    agent = make_agent("drq", (3 * stack, size, size), 6, cfg.agent, torch.device("cpu"), seed=0)
    start = time.perf_counter()
    evaluate_parallel(agent.state_dict(), cfg, list(SHIFTS), episodes, dict.fromkeys(SHIFTS), {})
    minutes = (time.perf_counter() - start) / 60
    per_minute = episodes * len(SHIFTS) / minutes
    return {"eval_episodes_per_min": per_minute, "eval_minutes_10_episodes_6_shifts": 10 * len(SHIFTS) / per_minute}


def run(quick: bool) -> dict[str, Any]:
    plan = (
        BenchPlan(100, 2, 3, 2048, ("cpu", "paper"), 2) if quick else BenchPlan(250, 5, 5, 4096, ("cpu", "paper"), 10)
    )
    result: dict[str, Any] = {"machine": machine(), "quick": quick}
    result |= bench_render(plan.render_steps, plan.rounds)
    for preset in plan.presets:
        result[f"update_{preset}"] = bench_update(preset, plan.update_count, plan.rounds)
    result |= {key: value for key, value in result[f"update_{plan.presets[-1]}"].items()}
    result["peak_gflops_bf16"] = bench_peak(torch.bfloat16, plan.peak_size, plan.rounds)
    result["peak_gflops_fp32"] = bench_peak(torch.float32, plan.peak_size, plan.rounds)
    result["update_gflops_share_of_bf16_peak"] = result["update_gflops"] / result["peak_gflops_bf16"]
    result |= bench_replay()
    result["updates_per_s"] = bench_algos(plan.presets, plan.update_count, rounds=plan.rounds)
    result |= cost_ratios(result["updates_per_s"])
    result["grad_extraction_cpu"] = bench_grad_extraction("cpu", plan.rounds)
    result |= bench_eval(plan.eval_episodes)
    return result
