"""Zero-shot evaluation: the deterministic policy on environments seeded apart from training."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import imageio.v2 as imageio
import numpy as np
import torch

from unseen.agents import SAC, make_agent
from unseen.config import RunConfig, load_config
from unseen.envs import SHIFTS, make_env, resolve_sources
from unseen.errors import UserError
from unseen.logs import CsvLog
from unseen.rundir import CONFIG_FILE, SUMMARY_FILE, read_checkpoint, summary_entry, write_json

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
    agent: SAC,
    cfg: RunConfig,
    shift: str,
    episodes: int,
    video_path: Path | None = None,
    sources: dict[str, str] | None = None,
) -> EvalResult:
    """Run `episodes` episodes of the mean action on `shift`; record the first one to `video_path` (mp4).

    `sources`: the shifts' data options of `make_env` (video_dir, color_file, intensity, ...).
    """
    env = make_env(
        cfg.env.task,
        shift,
        seed=cfg.seed,
        image_size=cfg.env.image_size,
        frame_stack=cfg.env.frame_stack,
        action_repeat=cfg.env.action_repeat,
        render_shadows=cfg.env.render_shadows,
        **(sources or {}),
    )
    returns = []
    try:
        for episode, seed in enumerate(eval_seeds(cfg.seed, episodes)):
            obs, _ = env.reset(seed=seed)
            frames = [env.render()] if video_path is not None and episode == 0 else None
            total, done = 0.0, False
            while not done:
                obs, reward, terminated, truncated, _ = env.step(agent.act(obs, deterministic=True))
                total += reward
                done = terminated or truncated
                if frames is not None:
                    frames.append(env.render())
            returns.append(total)
            if frames is not None:
                write_video(video_path, frames)
    finally:
        env.close()
    return EvalResult(shift, returns, env.shift.record)


def write_video(path: Path, frames: list[np.ndarray], scale: int = 4, fps: int = 30) -> None:
    """Write RGB frames as an mp4, enlarged `scale` times (nearest neighbour) so small frames stay visible."""
    path.parent.mkdir(parents=True, exist_ok=True)
    big = [frame.repeat(scale, axis=0).repeat(scale, axis=1) for frame in frames]
    imageio.mimwrite(path, big, fps=fps, macro_block_size=1)


def evaluate_run(run_dir: Path, shifts: list[str], episodes: int, sources: dict[str, str] | None = None) -> list[dict]:
    """Evaluate a run's latest checkpoint on `shifts`; append to eval.csv and add to summary.json's returns.

    `sources`: the shifts' data options of `make_env`; all of them are checked before the first episode.
    """
    unknown = [shift for shift in shifts if shift not in SHIFTS]
    if unknown:
        raise UserError(f"unknown shift(s) {', '.join(unknown)}; valid shifts: {', '.join(SHIFTS)}")
    if episodes <= 0:
        raise UserError(f"--episodes must be positive, got {episodes}")
    for shift in shifts:
        resolve_sources(shift, **(sources or {}))
    checkpoint = read_checkpoint(run_dir)
    cfg = load_config(run_dir / CONFIG_FILE)
    probe = make_env(cfg.env.task, image_size=cfg.env.image_size, frame_stack=cfg.env.frame_stack)
    obs_shape, action_dim = probe.observation_space.shape, probe.action_space.shape[0]
    probe.close()
    agent = make_agent(cfg.algo, obs_shape, action_dim, cfg.agent, torch.device("cpu"), cfg.seed)
    agent.load_state_dict(checkpoint["agent"])
    step = checkpoint["step"]
    log = CsvLog(run_dir / "eval.csv")
    summary_path = run_dir / SUMMARY_FILE
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {
        "algo": cfg.algo, "task": cfg.env.task, "preset": cfg.preset, "seed": cfg.seed,
        "frames": step * cfg.env.action_repeat, "steps": step, "returns": {},
    }
    rows = []
    for shift in shifts:
        video = run_dir / "videos" / f"{shift}_step{step}_eval.mp4" if cfg.train.video else None
        result = evaluate(agent, cfg, shift, episodes, video, sources)
        row = {"step": step, "frames": step * cfg.env.action_repeat, **result.row}
        log.write(row)
        summary["returns"][shift] = summary_entry(row)
        rows.append(row)
    write_json(summary_path, summary)
    return rows
