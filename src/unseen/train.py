"""The training loop: collect, update, evaluate, log, checkpoint, resume.

A run directory holds everything about one run (docs/architecture.md): `config.yaml`, `train.csv` (a row per
episode), `eval.csv` (a row per evaluation and shift), `tensorboard/`, `videos/`, `replay/` (the
memory-mapped replay buffer), `checkpoints/latest.pt` and, once finished, `summary.json`.

A checkpoint holds the agent's state_dicts (networks, targets, optimizers, temperature, generator), the
replay buffer's valid extent, the training environment's exact state (physics, task RNG, frame stack),
the loop's counters and every RNG state, so a resumed run continues exactly where it stopped: a run
stopped at step N and resumed ends with the same parameters as one that never stopped (tested).
"""

from __future__ import annotations

import dataclasses
import math
import os
import random
import signal
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from unseen import hardware, runtime
from unseen.agents import make_agent
from unseen.config import RunConfig, eval_shift_names, save_config, validate
from unseen.errors import Interrupted, UserError
from unseen.evaluate import evaluate, make_run_env
from unseen.logs import MetricMeans, RunLogger
from unseen.replay import ReplayBuffer
from unseen.rundir import (
    CHECKPOINT_FILE,
    CONFIG_FILE,
    REPLAY_DIR,
    SUMMARY_FILE,
    TRAIN_LOCK,
    VIDEO_DIR,
    device_of,
    exclusive,
    load_agent_state,
    prepare_run_dir,
    read_checkpoint,
    read_config,
    require_run,
    summary_entry,
    write_json,
)


class Trainer:
    """One run: its environment, agent, replay buffer, logs and loop state."""

    def __init__(self, cfg: RunConfig, run_dir: Path, checkpoint: dict[str, Any] | None = None) -> None:
        self.cfg = cfg  # validated by `start` and `resume`
        self.run_dir = run_dir
        self.runtime = runtime.configure(cfg.train.threads)
        runtime.seed_everything(cfg.seed)
        self.device = device_of(cfg)
        self.hardware = hardware.describe(self.device)
        print(f"{cfg.algo} on {self.device}: precision {cfg.agent.precision} ({hardware.native_bf16(self.device)[1]}), "
              f"{self.runtime['torch_threads']} thread(s)", file=sys.stderr, flush=True)
        self.env = make_run_env(cfg, "none")
        obs_shape = self.env.obs_shape
        self.action_dim = self.env.action_space.shape[0]
        self.agent = make_agent(cfg.algo, obs_shape, self.action_dim, cfg.agent, self.device, cfg.seed)
        episodes = math.ceil(cfg.train.steps / self.env.max_episode_steps)
        capacity = cfg.train.replay_capacity or cfg.train.steps + episodes + 1
        self.replay = ReplayBuffer(
            capacity, (3, *obs_shape[1:]), self.action_dim, cfg.env.frame_stack, run_dir / REPLAY_DIR
        )
        # One generator for the loop's own randomness: replay sampling and the seed steps' random actions.
        self.rng = np.random.default_rng(cfg.seed)
        self.step = 0
        self.episode = 0
        self.episode_return = 0.0
        self.last_eval_step = -1
        self.pending_action: np.ndarray | None = None
        self.wall_time = 0.0
        self.metrics = MetricMeans()
        self.last_return: float | None = None
        if checkpoint is None:
            self.obs, _ = self.env.reset()
            self.replay.add_first(self.obs[-3:])
        else:
            self.load_state_dict(checkpoint)
            self.obs = self.env.observation()
        self.logger = RunLogger(run_dir, cfg.train.tensorboard, resume_step=None if checkpoint is None else self.step)
        self._stop_signal: int | None = None
        self._session_start = time.perf_counter()

    # ----- the loop -----------------------------------------------------------------------------------

    def run(self, stop_at: int | None = None) -> dict[str, Any] | None:
        """Train to `train.steps`, evaluate and write summary.json; or stop early at `stop_at` with a checkpoint.

        Returns the summary, or None when stopped at `stop_at`. On SIGINT/SIGTERM it writes a checkpoint and
        raises `Interrupted`.
        """
        cfg = self.cfg.train
        previous = {sig: signal.signal(sig, self._request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        # In a terminal the bar refreshes every second; in a log file (nohup, CI) once a minute.
        bar = tqdm(
            total=cfg.steps, initial=self.step, unit="step", dynamic_ncols=True,
            mininterval=1.0 if sys.stderr.isatty() else 60.0,
        )
        start = self.step
        try:
            while self.step < cfg.steps:
                if cfg.eval_every and self.step % cfg.eval_every == 0 and self.last_eval_step < self.step:
                    self.evaluate_now(cfg.eval_episodes)
                if cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0 and self.step > start:
                    self.save_checkpoint()
                if self._stop_signal is not None:
                    self.save_checkpoint()
                    raise Interrupted(self._stop_signal, self.step)
                if stop_at is not None and self.step >= stop_at:
                    self.save_checkpoint()
                    return None
                self.train_step()
                bar.update(1)
                if self.last_return is not None:
                    bar.set_postfix(ret=f"{self.last_return:.0f}", refresh=False)
            return self.finish()
        finally:
            bar.close()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self.close()

    def _request_stop(self, signum: int, frame: Any) -> None:
        self._stop_signal = signum

    def train_step(self) -> None:
        cfg = self.cfg.train
        if self.step < cfg.seed_steps:
            action = self.rng.uniform(-1.0, 1.0, self.action_dim).astype(np.float32)
        else:
            action = self.pending_action if self.pending_action is not None else self.agent.act(self.obs, False)
            agent = self.cfg.agent
            if self.step == cfg.seed_steps and cfg.seed_updates > 1:
                self.seed_burst(action)
            elif self.step % agent.steps_per_update == 0:
                batch = self.replay.sample(cfg.batch_size, self.rng, agent.return_steps, agent.discount)
                size, every = agent.aux_batch
                if size and (self.agent.updates + 1) % every == 0:  # the update about to run takes one
                    batch["aux_obs"] = self.replay.sample(size, self.rng)["obs"]
                self.metrics.add(self.agent.update(batch))
        self.obs, reward, terminated, truncated, _ = self.env.step(action)
        self.replay.add(action, reward, 0.0 if terminated else 1.0, self.obs[-3:])
        self.episode_return += reward
        self.step += 1
        if terminated or truncated:
            self.episode += 1
            self.last_return = self.episode_return
            self.logger.log_train(
                {
                    "step": self.step,
                    "frames": self.frames,
                    "episode": self.episode,
                    "episode_return": self.episode_return,
                    "episode_length": self.env.episode_steps,
                    **self.metrics.take(),
                    "wall_time_s": round(self.elapsed, 1),
                }
            )
            self.episode_return = 0.0
            self.obs, _ = self.env.reset()
            self.replay.add_first(self.obs[-3:])

    def seed_burst(self, action: np.ndarray) -> None:
        """`train.seed_updates` updates at the first step after the seed steps, as DMControl-GB's train.py runs
        `init_steps` of them at `step == init_steps` (after drawing that step's action), each on the schedule of
        that step. A stop signal between two of them checkpoints the updates done (the agent's count: it made none
        before) and the drawn action, and the resumed run continues the burst where it stopped."""
        cfg, agent = self.cfg.train, self.cfg.agent
        self.pending_action = action
        while self.agent.updates < cfg.seed_updates:
            if self._stop_signal is not None:
                self.save_checkpoint()
                raise Interrupted(self._stop_signal, self.step)
            batch = self.replay.sample(cfg.batch_size, self.rng, agent.return_steps, agent.discount)
            self.metrics.add(self.agent.update(batch, step=self.step))
        self.pending_action = None

    @property
    def frames(self) -> int:
        return self.step * self.cfg.env.action_repeat

    @property
    def elapsed(self) -> float:
        return self.wall_time + time.perf_counter() - self._session_start

    def evaluate_now(self, episodes: int) -> list[dict[str, Any]]:
        """Evaluate on every shift of `train.eval_shifts`; one eval.csv row each."""
        rows = []
        for shift in eval_shift_names(self.cfg.train):
            video = self.run_dir / VIDEO_DIR / f"{shift}_step{self.step}.mp4" if self.cfg.train.video else None
            result = evaluate(self.agent, self.cfg, shift, episodes, video)
            rows.append({"step": self.step, "frames": self.frames, **result.row})
            self.logger.log_eval(rows[-1])
        self.last_eval_step = self.step
        return rows

    def finish(self) -> dict[str, Any]:
        rows = self.evaluate_now(self.cfg.train.final_eval_episodes)
        self.save_checkpoint()
        summary = {
            "algo": self.cfg.algo,
            "task": self.cfg.env.task,
            "preset": self.cfg.preset,
            "seed": self.cfg.seed,
            "frames": self.frames,
            "steps": self.step,
            "returns": {row["shift"]: summary_entry(row) for row in rows},
            "wall_time_s": round(self.elapsed, 1),
            "versions": runtime.versions(),
            "runtime": self.runtime,
            "hardware": self.hardware,
        }
        write_json(self.run_dir / SUMMARY_FILE, summary)
        return summary

    # ----- checkpoints ----------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "episode": self.episode,
            "episode_return": self.episode_return,
            "last_eval_step": self.last_eval_step,
            "pending_action": self.pending_action,
            "wall_time": self.elapsed,
            "metric_means": self.metrics.state_dict(),
            "last_return": self.last_return,
            "agent": self.agent.state_dict(),
            "replay": self.replay.state_dict(),
            "env": self.env.get_state(),
            "rng": {
                "loop": self.rng.bit_generator.state,
                "python": random.getstate(),
                "numpy": np.random.get_state(),
                "torch": torch.get_rng_state(),
            },
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step, self.episode = state["step"], state["episode"]
        self.episode_return, self.last_eval_step = state["episode_return"], state["last_eval_step"]
        self.wall_time = state["wall_time"]
        if "metric_means" in state:
            self.metrics.load_state_dict(state["metric_means"])
            self.last_return = state["last_return"]
        else:  # a checkpoint from before the means: its interval's mean starts at the resume
            self.last_return = state["metrics"].get("episode_return")
        self.pending_action = state.get("pending_action")  # absent from checkpoints written before the burst existed
        load_agent_state(self.agent, state["agent"], self.run_dir / CHECKPOINT_FILE)
        self.replay.load_state_dict(state["replay"])
        self.env.set_state(state["env"])
        self.rng.bit_generator.state = state["rng"]["loop"]
        random.setstate(state["rng"]["python"])
        np.random.set_state(state["rng"]["numpy"])
        torch.set_rng_state(state["rng"]["torch"])

    def save_checkpoint(self) -> None:
        """Write the checkpoint atomically: to a temporary file, flushed to disk, then renamed over the old one."""
        self.replay.flush()
        path = self.run_dir / CHECKPOINT_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        with temporary.open("wb") as handle:
            torch.save(self.state_dict(), handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)

    def close(self) -> None:
        self.env.close()
        self.logger.close()


def start(cfg: RunConfig, run_dir: Path, stop_at: int | None = None) -> dict[str, Any] | None:
    """Start a new run in `run_dir` (which must not hold one) and train it. `agent.precision=auto` and
    `train.threads=0` are resolved for this machine first, so that config.yaml, and every resume on any machine,
    holds the precision and thread count the run computes with."""
    validate(cfg)
    # Make the training environment once before anything is written: a missing GL backend or bad shift data then
    # fails with nothing left behind (environment families load their simulator only when they make one).
    make_run_env(cfg, "none").close()
    precision = hardware.resolve_precision(cfg.agent.precision, device_of(cfg))
    threads = hardware.resolve_threads(cfg.train.threads)
    cfg = dataclasses.replace(
        cfg, agent=dataclasses.replace(cfg.agent, precision=precision),
        train=dataclasses.replace(cfg.train, threads=threads),
    )
    prepare_run_dir(run_dir)
    with exclusive(run_dir / TRAIN_LOCK, busy(run_dir)):
        prepare_run_dir(run_dir)  # again under the lock: another process may have started a run here meanwhile
        save_config(cfg, run_dir / CONFIG_FILE)
        return Trainer(cfg, run_dir).run(stop_at)


def resume(run_dir: Path, stop_at: int | None = None) -> dict[str, Any] | None:
    """Continue a stopped run from its latest checkpoint."""
    require_run(run_dir)  # before the lock, which would otherwise leave its file in any directory
    with exclusive(run_dir / TRAIN_LOCK, busy(run_dir)):
        checkpoint = read_checkpoint(run_dir)
        cfg = validate(read_config(run_dir))
        if checkpoint["step"] >= cfg.train.steps and (run_dir / SUMMARY_FILE).exists():
            raise UserError(f"{run_dir} is already complete ({checkpoint['step']} steps); see its {SUMMARY_FILE}")
        return Trainer(cfg, run_dir, checkpoint).run(stop_at)


def busy(run_dir: Path) -> str:
    # Two trainers on one directory would interleave checkpoints and logs: the second one stops before it starts.
    return f"another process is training {run_dir}; wait for it or stop it (it checkpoints on SIGTERM)"
