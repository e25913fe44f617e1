"""Environment steps per second under each shift: `python -m unseen.envs.speed [--task T] [--steps N]`.

The shifts are timed in interleaved rounds (none, color_easy, ..., none, color_easy, ...), so that other
work on the machine slows them all alike. Each is reported by wall-clock steps per second and by CPU
time per step (this process, all its threads: steadier than wall time on a busy machine), with its
ratio to "none".
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from unseen.envs import make_env
from unseen.envs.dmc_tasks import SHIFTS


def step_times(task: str, shifts: list[str], steps: int, rounds: int, **options) -> dict[str, tuple[float, float]]:
    """Seconds of (wall-clock, CPU) time per agent step of random actions on each shift, `rounds` rounds of
    `steps` steps each, after a first reset and step (decoding and caches excluded), resets untimed."""
    envs = {shift: make_env(task, shift, seed=0, **options) for shift in shifts}
    elapsed = {shift: np.zeros(2) for shift in shifts}
    try:
        for env in envs.values():
            env.reset()
            env.step(np.zeros(env.action_space.shape))  # first use: decoding, caches
        rng = np.random.default_rng(0)
        for _ in range(rounds):
            for shift, env in envs.items():
                if env.episode_steps + steps > env.max_episode_steps:
                    env.reset()  # untimed: resets are per episode, not per step
                actions = rng.uniform(-1, 1, (steps, *env.action_space.shape))
                start = np.array([time.perf_counter(), time.process_time()])
                for action in actions:
                    env.step(action)
                elapsed[shift] += np.array([time.perf_counter(), time.process_time()]) - start
    finally:
        for env in envs.values():
            env.close()
    return {shift: tuple(elapsed[shift] / (rounds * steps)) for shift in shifts}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="walker_walk")
    parser.add_argument("--shifts", nargs="+", default=list(SHIFTS))
    parser.add_argument("--steps", type=int, default=30, help="steps per shift and round (default 30)")
    parser.add_argument("--rounds", type=int, default=10, help="rounds, interleaving the shifts (default 10)")
    parser.add_argument("--image-size", type=int, default=84)
    parser.add_argument("--video-mode", default="fast")
    parser.add_argument("--video-dir")
    args = parser.parse_args()
    options = {"image_size": args.image_size, "video_mode": args.video_mode, "video_dir": args.video_dir}
    times = step_times(args.task, args.shifts, args.steps, args.rounds, **options)
    print(f"{args.task}, {args.image_size}x{args.image_size}, video_mode={args.video_mode}, "
          f"video_dir={args.video_dir or 'procedural'}, {args.rounds} x {args.steps} steps per shift")
    print(f"{'shift':<16}{'steps/s':>9}{'(x none)':>10}{'CPU ms/step':>13}{'(x none)':>10}")
    base = times.get("none")
    for shift, (wall, cpu) in times.items():
        ratios = [
            f"{value / reference:.2f}x" if base else ""
            for value, reference in zip((wall, cpu), base or (1, 1), strict=True)
        ]
        print(f"{shift:<16}{1 / wall:>9.0f}{ratios[0]:>10}{cpu * 1e3:>13.2f}{ratios[1]:>10}")


if __name__ == "__main__":
    main()
