"""`unseen bench`: what this machine can do and how much of it unseen gets, as ratios measured in one run.

The machine is shared and noisy, so no absolute time is compared with a threshold: every figure that
matters is a ratio of two measurements taken in the same process (or, for thread sharing, the same run),
interleaved round by round (A, B, A, B, ...) and summarised by their medians, so that a slow moment hurts
both sides alike. The machine's own figures (matmul and conv peaks per precision, the precision
`agent.precision=auto` picks on it) are measured in the same run, so an update's share of the peak is a
ratio of two measurements too.
"""

from __future__ import annotations

import dataclasses
import os
import re
import statistics
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import partial
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from unseen import hardware, runtime
from unseen.agents import AGENTS, CG2A, Agent, make_agent
from unseen.config import make_config
from unseen.envs import make_env
from unseen.envs.dmc import suite
from unseen.envs.dmc_tasks import SHIFTS
from unseen.envs.speed import step_times
from unseen.evaluate import evaluate_parallel
from unseen.grad import per_loss_gradients
from unseen.replay import ReplayBuffer

CPU = torch.device("cpu")


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


def _update_setup(algo: str, preset: str, fast: bool, batch_size: int) -> tuple[Agent, dict[str, torch.Tensor]]:
    """An agent of `preset` on the fast path (precision auto: the one native to this machine, the preset's memory
    layout, fused Adam, in-place ReLUs) or the straightforward reference (float32, NCHW, PyTorch's default Adam loop),
    and a batch of random frames from a replay buffer."""
    cfg = make_config(algo, "walker_walk", preset)
    cfg.agent.precision = "auto" if fast else "float32"
    cfg.agent.fast_kernels = fast
    cfg.agent.channels_last = fast and cfg.agent.channels_last
    size, stack = cfg.env.image_size, cfg.env.frame_stack
    agent = make_agent(algo, (3 * stack, size, size), 6, cfg.agent, CPU, seed=0)
    replay = ReplayBuffer(batch_size * 4, (3, size, size), 6, stack)
    rng = np.random.default_rng(0)
    replay.add_first(rng.integers(0, 256, (3, size, size), dtype=np.uint8))
    for _ in range(batch_size * 4 - 1):
        replay.add(rng.uniform(-1, 1, 6), 1.0, 1.0, rng.integers(0, 256, (3, size, size), dtype=np.uint8))
    batch = replay.sample(batch_size, rng)
    return agent, batch


def full_update(agent: Agent, batch: dict[str, torch.Tensor], count: int = 1) -> None:
    """`count` updates on `batch`, each including the actor's and temperature's step (and the targets').

    In training every `actor_update_every`-th update does (a tenth of DrQ's FLOPs at the `cpu` preset: the actor's
    projection and the critic's heads on its action); timing and counting this update means an update's time and
    its FLOPs describe the same work. CG2A's diagnostics (every `grad_log_every` updates) are not part of it.
    """
    for _ in range(count):
        agent.updates = agent.cfg.actor_update_every - 1
        agent.update(batch)


class _PrecisionTracking:
    """Stands in for `FlopCounterMode`'s module tracker, which counts FLOPs per module through backward hooks on
    module inputs; those hooks raise inside SGQN's guided backpropagation (`torch.autograd.grad` from a forward hook's
    tensor hook). `_FlopsByPrecision` names the one "parent" an operation's FLOPs go to: its precision."""

    def __init__(self) -> None:
        self.parents = {"float32"}

    def __enter__(self) -> _PrecisionTracking:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


class _FlopsByPrecision(FlopCounterMode):
    """torch's FLOP counter with the counts kept per precision: the dtype of each counted operation's first tensor
    argument (under autocast, the dtype it ran in)."""

    def __init__(self) -> None:
        super().__init__(display=False)
        self.mod_tracker = _PrecisionTracking()  # type: ignore[assignment]

    def _count_flops(self, func_packet: Any, out: Any, args: Any, kwargs: Any) -> Any:
        tensor = next((arg for arg in args if isinstance(arg, torch.Tensor)), None)
        if tensor is not None:
            self.mod_tracker.parents = {PRECISION_NAMES.get(tensor.dtype, str(tensor.dtype))}
        return super()._count_flops(func_packet, out, args, kwargs)

    def by_precision(self) -> dict[str, float]:
        return {name: float(sum(counts.values())) for name, counts in self.get_flop_counts().items() if counts}


def update_flops(algo: str, preset: str, batch_size: int) -> dict[str, float]:
    """FLOPs of `full_update` on the fast path, per precision they run in ("float32", "bf16"; their sum is the
    update's FLOPs, the same on either path), counted from the layer shapes by torch's FLOP counter."""
    agent, batch = _update_setup(algo, preset, fast=True, batch_size=batch_size)
    with _FlopsByPrecision() as counter:
        full_update(agent, batch)
    return counter.by_precision()


def bench_update(preset: str, updates: int, rounds: int) -> dict[str, float]:
    """DrQ update time of the straightforward reference (float32, NCHW, PyTorch's default Adam loop, out-of-place
    ReLUs: every fast-path switch off) over the fast path (precision auto, the preset's channels-last layout, fused
    Adam, in-place ReLUs). Both compute the same FLOPs (`full_update`s) on the same batch."""
    batch_size = make_config("drq", "walker_walk", preset).train.batch_size
    candidates = {
        name: partial(full_update, *_update_setup("drq", preset, fast, batch_size), updates)
        for name, fast in (("fast", True), ("reference", False))
    }
    seconds = {name: value / updates for name, value in interleaved(candidates, rounds).items()}
    return {
        "update_ms": 1000 * seconds["fast"],
        "update_ms_reference": 1000 * seconds["reference"],
        "update_speedup": seconds["reference"] / seconds["fast"],
    }


PRECISION_DTYPES = {"float32": torch.float32, "bf16": torch.bfloat16}
PRECISION_NAMES = {dtype: name for name, dtype in PRECISION_DTYPES.items()}

CONV_PEAK_CHANNELS = 128
CONV_PEAK_SIZE = 32
"""The conv of `bench_conv_peak`: 3x3, 128 -> 128 channels, 32x32 images (batch from the plan)."""

EMULATED_SHRINK = (4, 16)
"""Where bf16 is emulated (`hardware.native_bf16` false), its peaks are measured on a matmul this many times
smaller per side and a conv batch this many times smaller: an AVX2 EPYC ran emulated bf16 at 0.1-4 GFLOP/s, so
the full sizes took minutes per call. That peak only shows the gap; `auto` never picks it there."""


def bench_peak(dtype: torch.dtype, size: int, rounds: int) -> float:
    """GFLOP/s of a square matrix product of the given dtype: the machine's practical matmul peak."""
    a = torch.randn(size, size).to(dtype)
    b = torch.randn(size, size).to(dtype)
    seconds = interleaved({"mm": lambda: torch.mm(a, b)}, rounds)["mm"]
    return 2 * size**3 / seconds / 1e9


def bench_conv_peak(dtype: torch.dtype, batch: int, rounds: int) -> float:
    """GFLOP/s of a forward 3x3 convolution, 128 -> 128 channels, `batch` 32x32 images ("same" padding),
    channels-last: the machine's practical conv peak.

    Why this conv: as a GEMM it is batch*32*32 output pixels x 128 output channels x 1152 (128 * 9) products
    each, so every vector register (8 float32 lanes on AVX2, 16 on AVX512) and AMX tile (16 x 32 bf16) of
    oneDNN's kernels is full and, at batch 64 (19.3 GFLOP a call), 65,536 pixels keep any number of threads
    busy for tens of milliseconds even at several TFLOP/s. Channels-last is the layout oneDNN computes in (the
    fast path's). The agents' convs are 32 channels wide, too narrow for full tiles: this is the kernel's peak.
    """
    channels, size = CONV_PEAK_CHANNELS, CONV_PEAK_SIZE
    images = torch.randn(batch, channels, size, size).to(dtype).contiguous(memory_format=torch.channels_last)
    weight = torch.randn(channels, channels, 3, 3).to(dtype).contiguous(memory_format=torch.channels_last)
    seconds = interleaved({"conv": lambda: F.conv2d(images, weight, padding=1)}, rounds)["conv"]
    return 2 * batch * size * size * channels * channels * 9 / seconds / 1e9


def bench_trunk_conv(preset: str, rounds: int) -> dict[str, Any]:
    """GFLOP/s of the widest conv of `preset`'s trunk (the second: 3x3, filters -> filters, on the first layer's
    output) at its batch, channels-last, in the precision `auto` picks: forward alone, and forward with the two
    backward products a critic update needs (input and weight gradients, each as many FLOPs as the forward).

    This is the ceiling of the agents' own convs, which are narrower than `bench_conv_peak`'s: with 32 channels a
    3x3 conv is a GEMM of only 288 products per output, too short to keep oneDNN's kernels at their peak.
    """
    cfg = make_config("drq", "walker_walk", preset)
    channels, batch = cfg.agent.encoder_filters, cfg.train.batch_size
    size = (cfg.env.image_size - 3) // 2 + 1  # the stride-2 first layer's output
    dtype = PRECISION_DTYPES[hardware.resolve_precision("auto", CPU)]
    images = torch.randn(batch, channels, size, size).to(dtype).contiguous(memory_format=torch.channels_last)
    weight = torch.randn(channels, channels, 3, 3).to(dtype).contiguous(memory_format=torch.channels_last)
    images.requires_grad_(True)
    weight.requires_grad_(True)

    def forward() -> None:
        with torch.no_grad():
            F.conv2d(images, weight)

    def training() -> None:
        F.conv2d(images, weight).sum().backward()

    seconds = interleaved({"forward": forward, "training": training}, rounds)
    flop = 2 * batch * (size - 2) ** 2 * channels * channels * 9
    return {
        "shape": f"3x3 {channels}->{channels}, {batch}x{size}x{size}",
        "forward": flop / seconds["forward"] / 1e9,
        "forward_backward": 3 * flop / seconds["training"] / 1e9,
    }


def bench_peaks(matmul_size: int, conv_batch: int, rounds: int) -> dict[str, dict[str, float]]:
    """Matmul and conv peak GFLOP/s in float32 and bf16, with all the threads this process has; bf16 at
    `EMULATED_SHRINK` sizes where this CPU emulates it."""
    peaks: dict[str, dict[str, float]] = {}
    for precision, dtype in PRECISION_DTYPES.items():
        emulated = precision == "bf16" and not hardware.native_bf16(CPU)[0]
        matmul_shrink, conv_shrink = EMULATED_SHRINK if emulated else (1, 1)
        peaks[precision] = {
            "matmul": bench_peak(dtype, max(1, matmul_size // matmul_shrink), rounds),
            "conv": bench_conv_peak(dtype, max(1, conv_batch // conv_shrink), rounds),
        }
    return peaks


def chosen_peak(peaks: Mapping[str, Mapping[str, float]]) -> dict[str, Any]:
    """The peak an update is held against: the larger of the matmul and conv peaks in the precision
    `agent.precision=auto` picks on this machine (the fast path's)."""
    precision = hardware.resolve_precision("auto", CPU)
    kernel = max(peaks[precision], key=lambda name: peaks[precision][name])
    return {
        "precision": precision,
        "kernel": kernel,
        "gflops": peaks[precision][kernel],
        "rule": "the larger of the matmul and conv peaks in the precision agent.precision=auto picks here",
    }


def bench_algos(
    presets: tuple[str, ...], updates: int, algos: tuple[str, ...] = tuple(AGENTS), rounds: int = 1
) -> dict[str, dict[str, float]]:
    """Updates per second of every registered algorithm (or of `algos`) at each preset (fast path): `updates`
    `full_update`s per call, the algorithms of a preset interleaved round by round."""
    result: dict[str, dict[str, float]] = {algo: {} for algo in algos}
    for preset in presets:
        setups = {
            algo: _update_setup(algo, preset, True, make_config(algo, "walker_walk", preset).train.batch_size)
            for algo in algos
        }
        candidates = {algo: partial(full_update, agent, batch, updates) for algo, (agent, batch) in setups.items()}
        for algo, seconds in interleaved(candidates, rounds).items():
            result[algo][preset] = updates / seconds
    return result


def mix_peak(gflop_by_precision: Mapping[str, float], peaks: Mapping[str, Mapping[str, float]]) -> float:
    """GFLOP/s of an update whose FLOPs run in several precisions with each precision's at its peak (the larger of
    its matmul and conv peaks): the update's FLOPs over the time that takes. With one precision, its peak."""
    seconds = sum(gflop / max(peaks[precision].values()) for precision, gflop in gflop_by_precision.items())
    return sum(gflop_by_precision.values()) / seconds


def update_efficiency(
    updates_per_s: Mapping[str, float],
    gflop_by_precision: Mapping[str, Mapping[str, float]],
    peaks: Mapping[str, Mapping[str, float]],
    peak_gflops: float,
) -> dict[str, dict[str, Any]]:
    """Per algorithm: GFLOP per update (in all and per precision), ms per update, achieved GFLOP/s, its share of
    `peak_gflops` and its share of the precision-mix peak (`mix_peak`)."""
    result = {}
    for algo, rate in updates_per_s.items():
        gflop = sum(gflop_by_precision[algo].values())
        achieved, mixed = gflop * rate, mix_peak(gflop_by_precision[algo], peaks)
        result[algo] = {
            "gflop_per_update": gflop,
            "gflop_by_precision": dict(gflop_by_precision[algo]),
            "update_ms": 1000 / rate,
            "gflops": achieved,
            "share_of_peak": achieved / peak_gflops,
            "mix_peak_gflops": mixed,
            "share_of_mix_peak": achieved / mixed,
        }
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
    assert isinstance(agent, CG2A)
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
    """What the figures were measured on: versions, thread settings, the CPU's name and features, and the precision
    `agent.precision=auto` picks on it (the fast path's, and the one whose peak the updates are held against)."""
    return {
        **runtime.versions(),
        **runtime.configure(),
        "cores": os.cpu_count(),
        **hardware.describe(CPU),
        "precision_auto": hardware.resolve_precision("auto", CPU),
        "precision_auto_why": hardware.native_bf16(CPU)[1],
    }


def machine_slug(record: Mapping[str, Any]) -> str:
    """A file name for a `machine()` record: the CPU's name, its widest vector feature and its cores, e.g.
    "amd-epyc-avx2-2cores". Two CPUs may share a name (a cloud's "AMD EPYC" with and without AVX512-BF16), not
    also their features and cores."""
    name = re.sub(r"\((r|tm)\)|\bcpu\b|@.*", "", str(record["cpu"]).lower())
    widest = next((feature for feature in reversed(hardware.CPU_FEATURES) if record["cpu_features"][feature]), "")
    parts = [*re.findall(r"[a-z0-9]+", name), *re.findall(r"[a-z0-9]+", widest), f"{record['cores']}cores"]
    return "-".join(parts)


def bench_env_speed(
    sizes: Sequence[int], steps: int, rounds: int, shifts: Sequence[str] = SHIFTS
) -> dict[str, dict[str, float]]:
    """Agent steps per second (wall clock, random actions, resets untimed) of walker_walk under every shift, at each
    frame size: `unseen.envs.speed`'s measurement, the shifts interleaved round by round."""
    result = {}
    for size in sizes:
        times = step_times("walker_walk", list(shifts), steps, rounds, image_size=size)
        result[f"{size}x{size}"] = {shift: 1 / wall for shift, (wall, _) in times.items()}
    return result


def update_worker(preset: str, batch_size: int, rounds: int) -> None:
    """The body of one `updates_side_by_side` process: set up a DrQ agent, say "ready", wait for a line on stdin,
    then print the median seconds of `rounds` `full_update`s (after one warm-up) on the fast path and its threads."""
    threads = runtime.configure()["torch_threads"]  # as `unseen train` starts: OMP_NUM_THREADS, else the free cores
    agent, batch = _update_setup("drq", preset, True, batch_size)
    print("ready", flush=True)
    sys.stdin.readline()
    print(interleaved({"update": partial(full_update, agent, batch)}, rounds)["update"], threads, flush=True)


def updates_side_by_side(
    threads: Sequence[int], preset: str, batch_size: int, rounds: int
) -> list[tuple[float, int]]:
    """Median seconds per DrQ update, and the intra-op threads it ran with, of one process per entry of `threads`
    (its threads; 0: chosen as `unseen train` chooses them, from the free cores), run at once.

    Each process sets itself up (imports, agent, batch) before any starts timing, so the timed updates overlap.
    """
    code = f"from unseen.bench import update_worker; update_worker({preset!r}, {batch_size}, {rounds})"
    inherited = {name: value for name, value in os.environ.items() if name != "OMP_NUM_THREADS"}
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", code], env=inherited | ({"OMP_NUM_THREADS": str(count)} if count else {}),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        for count in threads
    ]
    try:
        for worker in workers:
            assert worker.stdout is not None and worker.stdin is not None
            if worker.stdout.readline().strip() != "ready":
                raise RuntimeError(f"a bench worker stopped before its updates (exit code {worker.wait()})")
        for worker in workers:
            assert worker.stdin is not None
            worker.stdin.write("go\n")
            worker.stdin.flush()
        seconds = []
        for worker in workers:
            output, _ = worker.communicate()
            if worker.returncode != 0:
                raise RuntimeError(f"a bench worker failed (exit code {worker.returncode})")
            median, used = output.split()
            seconds.append((float(median), int(used)))
        return seconds
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()


@contextmanager
def busy_process() -> Iterator[subprocess.Popen[bytes]]:
    """A process spinning on one core for the duration (output to /dev/null: nothing ever waits on it)."""
    busy = subprocess.Popen(
        [sys.executable, "-c", "while True: pass"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        yield busy
    finally:
        busy.kill()
        busy.wait()


def bench_sharing(preset: str, rounds: int, batch_size: int | None = None) -> dict[str, Any]:
    """How DrQ updates of `preset` (its batch unless `batch_size`) share the machine, each case in subprocesses.

    (a) a 1-thread process alone against two 1-thread processes side by side: each should lose < 20%
    (`side_by_side_over_alone` < 1.2 for both). (b) beside one busy process, a run's own choice of threads (from
    the free cores, `unseen.hardware.resolve_threads`) against 1 thread: it should never be slower
    (`auto_over_one_thread_beside_busy` <= 1); 2 threads forced there, for comparison. OpenMP threads that spin
    while waiting (OMP_WAIT_POLICY=ACTIVE) took 1.76x in (b), passive ones (unseen's default) 0.99-1.27x.
    """
    batch_size = batch_size or make_config("drq", "walker_walk", preset).train.batch_size
    alone = updates_side_by_side([1], preset, batch_size, rounds)[0][0]
    pair = [seconds for seconds, _ in updates_side_by_side([1, 1], preset, batch_size, rounds)]
    with busy_process():
        auto, auto_threads = updates_side_by_side([0], preset, batch_size, rounds)[0]
        two = updates_side_by_side([2], preset, batch_size, rounds)[0][0]
        one = updates_side_by_side([1], preset, batch_size, rounds)[0][0]
    return {
        "update_ms_1_thread_alone": 1000 * alone,
        "update_ms_1_thread_side_by_side": [1000 * seconds for seconds in pair],
        "side_by_side_over_alone": [seconds / alone for seconds in pair],
        "threads_auto_beside_busy": auto_threads,
        "update_ms_auto_beside_busy": 1000 * auto,
        "auto_over_one_thread_beside_busy": auto / one,
        "update_ms_2_threads_beside_busy": 1000 * two,
        "update_ms_1_thread_beside_busy": 1000 * one,
        "two_over_one_thread_beside_busy": two / one,
    }


@dataclasses.dataclass
class BenchPlan:
    """How much to measure: `quick` finishes in about 5 minutes on 2 idle cores."""

    render_steps: int
    update_count: int
    """Updates per timed call (`bench_update`, `bench_algos`)."""
    rounds: int
    peak_size: int
    """Side of the peak's matrix product."""
    conv_batch: int
    """Images per call of the peak's conv (`bench_conv_peak`)."""
    presets: tuple[str, ...]
    """Presets of the fast path against the reference (`bench_update`)."""
    algo_presets: tuple[str, ...]
    """Presets of every agent's updates per second and their cost ratios (`bench_algos`); include "cpu", whose
    figures give `efficiency_cpu`."""
    eval_episodes: int
    """Evaluation episodes per shift (walker_walk, every shift)."""
    env_steps: int
    """Environment steps per shift and round (`bench_env_speed`)."""


QUICK = BenchPlan(100, 1, 3, 2048, 64, ("cpu", "paper"), ("cpu",), 2, 20)
"""One update per timed call (every timed update is the same `full_update`) and the six agents at the `cpu` preset
only: on a 2-core AVX2 CPU (float32) their `paper`-preset rounds alone took about a quarter of the run."""
FULL = BenchPlan(250, 5, 5, 4096, 64, ("cpu", "paper"), ("cpu", "paper"), 10, 50)

EFFICIENCY_PRESET = "cpu"
"""The preset of the per-algorithm GFLOP figures: the default one."""

EFFICIENCY_TARGET = {"drq": 0.5, "cg2a": 0.5}
"""Share of the chosen peak the default updates should reach (issue 17)."""


def bench_eval(episodes: int, preset: str = "paper") -> dict[str, float]:
    """`unseen eval`'s path (worker processes, one per core) on walker_walk: `episodes` on every shift.

    The agent has the preset's networks at initialisation: the time per episode does not depend on training.
    """
    cfg = make_config("drq", "walker_walk", preset)
    cfg.train.video = False
    size, stack = cfg.env.image_size, cfg.env.frame_stack
    agent = make_agent("drq", (3 * stack, size, size), 6, cfg.agent, CPU, seed=0)
    start = time.perf_counter()
    evaluate_parallel(agent.state_dict(), cfg, list(SHIFTS), episodes, dict.fromkeys(SHIFTS), {})
    minutes = (time.perf_counter() - start) / 60
    per_minute = episodes * len(SHIFTS) / minutes
    return {"eval_episodes_per_min": per_minute, "eval_minutes_10_episodes_6_shifts": 10 * len(SHIFTS) / per_minute}


def run(quick: bool) -> dict[str, Any]:
    plan = QUICK if quick else FULL
    started = time.perf_counter()
    result: dict[str, Any] = {"machine": machine(), "quick": quick, "plan": dataclasses.asdict(plan)}
    result |= bench_render(plan.render_steps, plan.rounds)
    result["peak_gflops"] = bench_peaks(plan.peak_size, plan.conv_batch, plan.rounds)
    result["chosen_peak"] = chosen_peak(result["peak_gflops"])
    result[f"trunk_conv_{EFFICIENCY_PRESET}"] = bench_trunk_conv(EFFICIENCY_PRESET, plan.rounds)
    for preset in plan.presets:
        result[f"update_{preset}"] = bench_update(preset, plan.update_count, plan.rounds)
    result["updates_per_s"] = bench_algos(plan.algo_presets, plan.update_count, rounds=plan.rounds)
    result |= cost_ratios(result["updates_per_s"])
    batch_sizes = {algo: make_config(algo, "walker_walk", EFFICIENCY_PRESET).train.batch_size for algo in AGENTS}
    gflop_by_precision = {
        algo: {precision: flops / 1e9 for precision, flops in update_flops(algo, EFFICIENCY_PRESET, batch).items()}
        for algo, batch in batch_sizes.items()
    }
    result[f"efficiency_{EFFICIENCY_PRESET}"] = update_efficiency(
        {algo: rates[EFFICIENCY_PRESET] for algo, rates in result["updates_per_s"].items()},
        gflop_by_precision,
        result["peak_gflops"],
        result["chosen_peak"]["gflops"],
    )
    result |= bench_replay()
    result["grad_extraction_cpu"] = bench_grad_extraction("cpu", plan.rounds)
    sizes = [make_config("drq", "walker_walk", preset).env.image_size for preset in ("paper", "cpu")]
    result["env_steps_per_s"] = bench_env_speed(sizes, plan.env_steps, plan.rounds)
    result |= bench_eval(plan.eval_episodes)
    result["sharing_cpu"] = bench_sharing("cpu", plan.rounds)
    result["minutes"] = (time.perf_counter() - started) / 60
    return result


def _table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    """A Markdown table's lines."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]


def markdown(result: Mapping[str, Any]) -> str:
    """`run`'s result as Markdown tables: what `unseen bench` prints and `--out` writes beside the JSON."""
    info, peaks, chosen, plan = result["machine"], result["peak_gflops"], result["chosen_peak"], result["plan"]
    trunk, peak = result[f"trunk_conv_{EFFICIENCY_PRESET}"], chosen["gflops"]
    features = ", ".join(name for name, present in info["cpu_features"].items() if present) or "none of them"
    lines = [
        f"# unseen bench on {info['cpu']} ({info['cores']} cores)",
        "",
        f"CPU features ({', '.join(hardware.CPU_FEATURES)}): {features}. `agent.precision=auto` picks "
        f"**{info['precision_auto']}**: {info['precision_auto_why']}.",
        f"torch {info['torch']}, {info['torch_threads']} intra-op threads, OMP_WAIT_POLICY "
        f"{info['omp_wait_policy']}, unseen commit `{info['unseen_commit']}`; "
        f"{'--quick, ' if result['quick'] else ''}{result['minutes']:.1f} minutes.",
        "",
        f"## Peaks (GFLOP/s, {info['torch_threads']} threads)",
        "",
    ]
    emulated = "" if info["native_bf16"] else " (emulated here: a smaller problem, `EMULATED_SHRINK`)"
    lines += _table(
        ["kernel", "float32", f"bf16{emulated}"],
        [
            [f"matmul {plan['peak_size']}x{plan['peak_size']}", *(f"{peaks[p]['matmul']:.1f}" for p in peaks)],
            [
                f"conv 3x3 {CONV_PEAK_CHANNELS}->{CONV_PEAK_CHANNELS}, {plan['conv_batch']}x{CONV_PEAK_SIZE}x"
                f"{CONV_PEAK_SIZE}, channels-last",
                *(f"{peaks[p]['conv']:.1f}" for p in peaks),
            ],
        ],
    )
    lines += [
        "",
        f"Chosen peak: **{chosen['gflops']:.1f} GFLOP/s** ({chosen['kernel']}, {chosen['precision']}): "
        f"{chosen['rule']}.",
        "",
        f"The agents' own widest conv (`{EFFICIENCY_PRESET}` trunk, {trunk['shape']}, channels-last, "
        f"{chosen['precision']}): forward {trunk['forward']:.1f} GFLOP/s ({trunk['forward'] / peak:.0%} of the "
        f"chosen peak), forward and both backward products {trunk['forward_backward']:.1f} GFLOP/s "
        f"({trunk['forward_backward'] / peak:.0%}): the ceiling of the updates' convs on this machine.",
        "",
        f"## Updates, `{EFFICIENCY_PRESET}` preset, fast path ({chosen['precision']}), each with the actor's step",
        "",
    ]
    efficiency = result[f"efficiency_{EFFICIENCY_PRESET}"]
    lines += _table(
        [
            "algo", "GFLOP/update", "of it in bf16", "ms/update", "GFLOP/s", "% of chosen peak", "target (issue 17)",
            "% of its precision-mix peak",
        ],
        [
            [
                algo, f"{row['gflop_per_update']:.1f}",
                f"{row['gflop_by_precision'].get('bf16', 0.0) / row['gflop_per_update']:.0%}",
                f"{row['update_ms']:.0f}", f"{row['gflops']:.1f}", f"{100 * row['share_of_peak']:.0f}%",
                f">= {100 * EFFICIENCY_TARGET[algo]:.0f}%" if algo in EFFICIENCY_TARGET else "",
                f"{100 * row['share_of_mix_peak']:.0f}% of {row['mix_peak_gflops']:.0f}",
            ]
            for algo, row in efficiency.items()
        ],
    )
    lines += [
        "",
        "The precision-mix peak: each precision's FLOPs at that precision's peak (`mix_peak`). The fast path runs the "
        "convs and the projections' matrix products in the precision `auto` picks, and the actor's and critics' "
        "MLPs in float32, as DMControl-GB computes them (`unseen.nets`).",
    ]
    lines += ["", "## Fast path over the reference (DrQ; float32, NCHW, default Adam, out-of-place ReLUs)", ""]
    lines += _table(
        ["preset", "fast ms", "reference ms", "update_speedup"],
        [
            [preset, f"{update['update_ms']:.0f}", f"{update['update_ms_reference']:.0f}",
             f"{update['update_speedup']:.2f}"]
            for preset in plan["presets"]
            for update in [result[f"update_{preset}"]]
        ],
    )
    lines += ["", "## Update time ratios (fast path)", ""]
    presets = plan["algo_presets"]
    lines += _table(
        ["ratio", *presets],
        [[f"{a}_over_{b}", *(f"{result[f'{a}_over_{b}'][preset]:.2f}" for preset in presets)] for a, b in COST_RATIOS],
    )
    speeds = result["env_steps_per_s"]
    lines += ["", "## Environment steps/s (walker_walk, random actions)", ""]
    lines += _table(
        ["shift", *speeds], [[shift, *(f"{speeds[size][shift]:.0f}" for size in speeds)] for shift in SHIFTS]
    )
    sharing = result["sharing_cpu"]
    lines += ["", "## Thread sharing (DrQ `cpu`-preset update, each case in processes of its own)", ""]
    lines += _table(
        ["case", "ms/update", "ratio", "target"],
        [
            ["1 thread alone", f"{sharing['update_ms_1_thread_alone']:.0f}", "", ""],
            [
                "two 1-thread processes side by side",
                " / ".join(f"{ms:.0f}" for ms in sharing["update_ms_1_thread_side_by_side"]),
                " / ".join(f"{ratio:.2f}" for ratio in sharing["side_by_side_over_alone"]),
                "< 1.2 each",
            ],
            [f"threads chosen from the free cores ({sharing['threads_auto_beside_busy']}) beside a busy process",
             f"{sharing['update_ms_auto_beside_busy']:.0f}", f"{sharing['auto_over_one_thread_beside_busy']:.2f}",
             "<= 1"],
            ["2 threads forced beside the busy process", f"{sharing['update_ms_2_threads_beside_busy']:.0f}",
             f"{sharing['two_over_one_thread_beside_busy']:.2f}", ""],
            ["1 thread beside the busy process", f"{sharing['update_ms_1_thread_beside_busy']:.0f}", "", ""],
        ],
    )
    grad = result["grad_extraction_cpu"]
    lines += [
        "",
        "## Other figures",
        "",
        f"- evaluation: {result['eval_episodes_per_min']:.1f} episodes/min (walker_walk, `paper` networks, one "
        f"worker per core): {result['eval_minutes_10_episodes_6_shifts']:.2f} min for 10 episodes x 6 shifts",
        f"- render_speedup: {result['render_speedup']:.2f} ({result['render_fps']:.0f} vs "
        f"{result['render_fps_baseline']:.0f} steps/s, our walker_walk over `physics.render`)",
        f"- replay_saving: {result['replay_saving']:.2f} ({result['replay_bytes_per_transition']:,} bytes per "
        f"transition against {result['replay_bytes_per_transition_stacked']:,})",
        f"- CG2A's per-augmentation gradients over one pass of the concatenated batch (`cpu`, fast path): "
        f"{grad['fast_sequential_over_concat']:.2f}",
    ]
    return "\n".join(lines) + "\n"
