"""Zero-shot evaluation: the deterministic policy on environments seeded apart from training."""

from __future__ import annotations

import json
import multiprocessing
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import imageio.v2 as imageio
import numpy as np
import torch
from numpy.typing import ArrayLike
from tqdm import tqdm

from unseen import hardware
from unseen.agents import Agent
from unseen.config import RunConfig
from unseen.envs import Env, check_shifts, make_env
from unseen.errors import UserError
from unseen.logs import CsvLog
from unseen.rundir import EVAL_LOG, SUMMARY_FILE, VIDEO_DIR, open_run, restore, summary_entry, write_json

# Evaluation seeds are drawn from a stream of their own so that no evaluation episode replays a training one.
_EVAL_STREAM = 1


def eval_seeds(seed: int, episodes: int) -> list[int]:
    """Seeds of the `episodes` evaluation episodes of a run with seed `seed`: distinct from it, fixed per run."""
    return [int(s) for s in np.random.SeedSequence([seed, _EVAL_STREAM]).generate_state(episodes)]


@dataclass
class EvalResult:
    """Returns of the episodes of one evaluation on one shift, and what the shift's data was (`ShiftConfig.record`)."""

    shift: str
    returns: list[float]
    record: dict[str, str | float]

    @property
    def row(self) -> dict[str, float | int | str]:
        returns = np.asarray(self.returns)
        return {
            "shift": self.shift,
            "return_mean": float(returns.mean()),
            "return_std": float(returns.std()),
            "return_min": float(returns.min()),
            "return_max": float(returns.max()),
            "episodes": len(returns),
            **self.record,
        }


def evaluate(
    agent: Agent,
    cfg: RunConfig,
    shift: str,
    episodes: int,
    video_path: Path | None = None,
    sources: dict[str, str] | None = None,
) -> EvalResult:
    """Run `episodes` episodes of the mean action on `shift`; record the first one to `video_path` (mp4).

    `sources`: the shifts' data options of `make_env` (video_dir, color_file, intensity, ...).
    """
    env = make_run_env(cfg, shift, sources)
    try:
        seeds = eval_seeds(cfg.seed, episodes)
        returns = [run_episode(agent, env, seed, video_path if i == 0 else None) for i, seed in enumerate(seeds)]
    finally:
        env.close()
    return EvalResult(shift, returns, env.shift.record)


def make_run_env(cfg: RunConfig, shift: str, sources: Mapping[str, str | bool] | None = None) -> Env:
    """An environment of the run's task as it trained on it (frame size, stack, action repeat, shadows) under
    `shift`, seeded with the run's seed; `sources`: the shift's data options."""
    return make_env(
        cfg.env.task,
        shift,
        seed=cfg.seed,
        image_size=cfg.env.image_size,
        frame_stack=cfg.env.frame_stack,
        action_repeat=cfg.env.action_repeat,
        render_shadows=cfg.env.render_shadows,
        **(sources or {}),
    )


def run_episode(agent: Agent, env: Env, seed: int, video_path: Path | None = None) -> float:
    """The return of one episode of the mean action from `env.reset(seed=seed)`; the same for any env reused."""
    obs, _ = env.reset(seed=seed)
    frames = [env.render()] if video_path is not None else []
    total, done = 0.0, False
    while not done:
        obs, reward, terminated, truncated, _ = env.step(agent.act(obs, deterministic=True))
        total += reward
        done = terminated or truncated
        if video_path is not None:
            frames.append(env.render())
    if video_path is not None:
        write_video(video_path, frames)
    return total


def write_video(path: Path, frames: list[np.ndarray], scale: int = 4, fps: int = 30) -> None:
    """Write RGB frames as an mp4, enlarged `scale` times (nearest neighbour) so small frames stay visible."""
    path.parent.mkdir(parents=True, exist_ok=True)
    big: list[ArrayLike] = [frame.repeat(scale, axis=0).repeat(scale, axis=1) for frame in frames]
    imageio.mimwrite(path, big, fps=fps, macro_block_size=1)


def evaluate_run(
    run_dir: Path, shifts: list[str], episodes: int, sources: dict[str, str] | None = None, workers: int = 0
) -> list[dict]:
    """Evaluate a run's latest checkpoint on `shifts`; append to eval.csv and add to summary.json's returns.

    `sources`: the shifts' data options of `make_env`; all of them are checked before the first episode.
    `workers`: processes running episodes (0: one per core).
    """
    if episodes <= 0:
        raise UserError(f"--episodes must be positive, got {episodes}")
    if workers < 0:
        raise UserError(f"--workers must be 0 (one per core) or positive, got {workers}")
    run = open_run(run_dir)
    cfg, step = run.cfg, run.step
    check_shifts(cfg.env.task, shifts, sources)
    log = CsvLog(run_dir / EVAL_LOG)
    summary_path = run_dir / SUMMARY_FILE
    summary: dict[str, Any] = json.loads(summary_path.read_text()) if summary_path.exists() else {
        "algo": cfg.algo, "task": cfg.env.task, "preset": cfg.preset, "seed": cfg.seed,
        "frames": step * cfg.env.action_repeat, "steps": step, "returns": {},
    }
    videos = {
        shift: run_dir / VIDEO_DIR / f"{shift}_step{step}_eval.mp4" if cfg.train.video else None for shift in shifts
    }
    returns, records = evaluate_parallel(run.checkpoint["agent"], cfg, shifts, episodes, videos, sources or {}, workers)
    rows = []
    for shift in shifts:
        result = EvalResult(shift, returns[shift], records[shift])
        row = {"step": step, "frames": step * cfg.env.action_repeat, **result.row}
        log.write(row)
        summary["returns"][shift] = summary_entry(row)
        rows.append(row)
    write_json(summary_path, summary)
    return rows


# ----- episodes in worker processes --------------------------------------------------------------------
# Each worker holds the agent and one environment per shift; an episode's return depends only on its seed,
# so results do not depend on which worker ran it, nor on how many there are (tested).

_worker: dict = {}


def _start_worker(agent_state: dict, cfg: RunConfig, sources: dict[str, str]) -> None:
    # One intra-op thread per worker: the workers are the parallelism, and a fixed thread count keeps
    # every episode bit-for-bit the same whichever process runs it.
    torch.set_num_threads(1)
    probe = make_run_env(cfg, "none")
    # On the CPU whatever the run trained on: the workers are one per core.
    agent = restore(cfg, agent_state, probe.obs_shape, probe.action_space.shape[0], torch.device("cpu"))
    probe.close()
    _worker.update(agent=agent, cfg=cfg, sources=sources, envs={})


def _worker_episode(shift: str, seed: int, video_path: Path | None) -> tuple[float, dict]:
    envs = _worker["envs"]
    if shift not in envs:
        envs[shift] = make_run_env(_worker["cfg"], shift, _worker["sources"])
    env = envs[shift]
    return run_episode(_worker["agent"], env, seed, video_path), env.shift.record


def evaluate_parallel(
    agent_state: dict,
    cfg: RunConfig,
    shifts: list[str],
    episodes: int,
    videos: dict[str, Path | None],
    sources: dict[str, str],
    workers: int = 0,
) -> tuple[dict[str, list[float]], dict[str, dict]]:
    """Returns per shift (in episode order) and each shift's data record, from `workers` processes (0: one per core)."""
    seeds = eval_seeds(cfg.seed, episodes)
    jobs = [(shift, index) for shift in shifts for index in range(episodes)]
    workers = min(workers or hardware.usable_cores(), len(jobs))
    returns: dict[str, list[float]] = {shift: [0.0] * episodes for shift in shifts}
    records: dict[str, dict] = {}
    context = multiprocessing.get_context("spawn")  # no fork: the parent may hold a GL context
    with ProcessPoolExecutor(workers, context, initializer=_start_worker, initargs=(agent_state, cfg, sources)) as pool:
        futures = {
            pool.submit(_worker_episode, shift, seeds[index], videos[shift] if index == 0 else None): (shift, index)
            for shift, index in jobs
        }
        with tqdm(total=len(jobs), unit="episode", desc="evaluating", mininterval=1.0) as bar:
            for future in as_completed(futures):
                shift, index = futures[future]
                returns[shift][index], records[shift] = future.result()
                bar.update(1)
    return returns, records
