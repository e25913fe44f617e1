"""The training loop: collect, update, evaluate, log, checkpoint, resume.

A run directory holds everything about one run (docs/architecture.md): `config.yaml`, `train.csv` (a row per
episode), `eval.csv` (a row per evaluation and shift), `tensorboard/`, `videos/`, `replay/` (the
memory-mapped replay buffer), `checkpoints/latest.pt` and, once finished, `summary.json`.

A checkpoint holds the agent's state_dicts (networks, targets, optimizers, temperature, generator), the
replay buffer's valid extent, the training environment's exact state (physics, task RNG, frame stack),
the loop's counters and every RNG state, so a resumed run continues exactly where it stopped: a run
stopped at step N and resumed ends with the same parameters as one that never stopped (tested).

It also records what it counts on in the other files, and a resume checks them before it changes anything: the
replay files whole and their newest entries unchanged (`ReplayBuffer.load_state_dict`), each log holding at least
the rows it had then (more are rows written after the checkpoint: dropped). A damaged file is refused with one line
naming it and the ways out: restore the file, or start the run again from its saved config (`restart`, which
deletes only the files unseen wrote: `rundir.RUN_FILES`). A checkpoint written before these records existed is
resumed without them. It also records the intra-op thread count: a resume with another one says that the run will
not equal an uninterrupted one bit for bit (1 and 2 threads sum floats in other orders).
"""

from __future__ import annotations

import dataclasses
import io
import math
import random
import signal
import sys
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from unseen import hardware, runtime
from unseen.agents import make_agent
from unseen.config import RunConfig, config_text, eval_shift_names, validate
from unseen.envs.family import Env
from unseen.errors import Damaged, DiskFull, Interrupted, UserError
from unseen.evaluate import evaluate, make_run_env
from unseen.logs import MetricMeans, RunLogger
from unseen.replay import ReplayBuffer, bytes_to_reserve
from unseen.rundir import (
    CHECKPOINT_FILE,
    CONFIG_FILE,
    REPLAY_DIR,
    SUMMARY_FILE,
    TRAIN_LOCK,
    VIDEO_DIR,
    device_of,
    disk_full,
    exclusive,
    load_agent_state,
    prepare_run_dir,
    read_checkpoint,
    read_config,
    remove_run_files,
    require_run,
    require_space,
    restart_hint,
    summary_entry,
    write_atomic,
    write_json,
)
from unseen.schema import absolute_paths


class Trainer:
    """One run: its environment, agent, replay buffer, logs and loop state."""

    def __init__(
        self, cfg: RunConfig, run_dir: Path, checkpoint: dict[str, Any] | None = None, env: Env | None = None
    ) -> None:
        """A new run of `cfg` in `run_dir`, or the run continued from its `checkpoint`: then `Damaged` when a file the
        checkpoint counts on is missing, cut short or changed, before any of them is changed. `env`: the training
        environment, fresh from `make_run_env(cfg, "none")` (made here if not given); the trainer closes it."""
        self._session_start = time.perf_counter()  # a session's time counts from here (`elapsed`)
        self.cfg = cfg  # validated by `start`, `restart` and `resume`
        self.run_dir = run_dir
        self.runtime = runtime.configure(cfg.train.threads)
        runtime.seed_everything(cfg.seed)
        self.device = device_of(cfg)
        self.hardware = hardware.describe(self.device)
        self.env = env if env is not None else make_run_env(cfg, "none")
        # One environment per evaluation shift, made at its first evaluation and kept: an episode depends only on
        # its seed (`PixelEnv.reset`), and a new renderer per evaluation costs more than short episodes.
        self.eval_envs: dict[str, Env] = {}
        obs_shape = self.env.obs_shape
        self.action_dim = self.env.action_space.shape[0]
        self.agent = make_agent(cfg.algo, obs_shape, self.action_dim, cfg.agent, self.device, cfg.seed)
        self.replay = open_replay(cfg, replay_layout(cfg, self.env), run_dir, resumed=checkpoint is not None)
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
        self.logger = RunLogger(
            run_dir, cfg.train.tensorboard, resume_step=None if checkpoint is None else self.step,
            rows=None if checkpoint is None else checkpoint.get("logs"),
        )
        self._stop_signal: int | None = None
        self.announce(None if checkpoint is None else checkpoint.get("threads"))

    def announce(self, recorded: int | None) -> None:
        """Say how the session computes (once every check has passed: a refusal is one line), and warn when the run
        computed with another thread count before (`recorded`, from the checkpoint; a config from before
        `train.threads` was resolved at the start leaves the count to each session)."""
        threads = self.runtime["torch_threads"]
        print(f"{self.cfg.algo} on {self.device}: precision {self.cfg.agent.precision} "
              f"({hardware.native_bf16(self.device)[1]}), {threads} thread(s)", file=sys.stderr, flush=True)
        if recorded is not None and recorded != threads:
            print(f"warning: {self.run_dir} computed with {recorded} thread(s) up to step {self.step}, this session "
                  f"with {threads}: floats sum in another order, so it will not end exactly as an uninterrupted run "
                  f"(resume with OMP_NUM_THREADS={recorded} to keep them)", file=sys.stderr, flush=True)

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
        try:
            return self.loop(stop_at, bar)
        except OSError as error:
            if not disk_full(error):
                raise
            where = f" writing {error.filename}" if error.filename else ""
            raise DiskFull(f"no space left on the disk of {self.run_dir}{where}; free some space, then "
                           f"{self.way_on()}") from None
        finally:
            bar.close()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self.close()

    def loop(self, stop_at: int | None, bar: tqdm) -> dict[str, Any] | None:
        """`run`'s steps, evaluations and checkpoints."""
        cfg = self.cfg.train
        start = self.step
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

    def way_on(self) -> str:
        """How to go on after training stopped on an error: resume from the checkpoint, or start again without one."""
        if (self.run_dir / CHECKPOINT_FILE).exists():
            return f"continue with: unseen train --resume {self.run_dir}"
        return restart_hint(self.run_dir)

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
        """Seconds spent making the run's current state (summary.json's and train.csv's `wall_time_s`): every
        session's, each from the start of its `Trainer` (making the environment and the agent, opening the replay)
        up to the checkpoint the next session resumed from, and this one's up to now. A session killed outright
        loses its time after its last checkpoint with the steps it made then: the next session makes those again
        and counts them then. So it is the time the run takes without the work that kills threw away, whatever
        the number of sessions."""
        return self.wall_time + time.perf_counter() - self._session_start

    def evaluate_now(self, episodes: int) -> list[dict[str, Any]]:
        """Evaluate on every shift of `train.eval_shifts`; one eval.csv row each."""
        rows = []
        for shift in eval_shift_names(self.cfg.train):
            video = self.run_dir / VIDEO_DIR / f"{shift}_step{self.step}.mp4" if self.cfg.train.video else None
            if shift not in self.eval_envs:
                self.eval_envs[shift] = make_run_env(self.cfg, shift)
            result = evaluate(self.agent, self.cfg, self.eval_envs[shift], episodes, video)
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
        write_json(self.run_dir / SUMMARY_FILE, summary, remedy=f"free some space, then {self.way_on()}")
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
            "threads": self.runtime["torch_threads"],
            "logs": self.logger.rows(),
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
        """Write the checkpoint whole or not at all (`rundir.write_atomic`: a temporary file, flushed to disk, then
        renamed over the old one); on a full disk the old one stays and the error says how to go on."""
        self.replay.flush()
        path = self.run_dir / CHECKPOINT_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        serialized = io.BytesIO()
        torch.save(self.state_dict(), serialized)
        write_atomic(path, serialized.getvalue(), remedy=f"free some space, then {self.way_on()}")

    def close(self) -> None:
        for env in (self.env, *self.eval_envs.values()):
            env.close()
        self.logger.close()


def start(cfg: RunConfig, run_dir: Path, stop_at: int | None = None) -> dict[str, Any] | None:
    """Start a new run in `run_dir` (new or empty: `rundir.prepare_run_dir`) and train it."""
    cfg, env = resolved(cfg, run_dir)
    with closing(env):
        created = prepare_run_dir(run_dir)
        with exclusive(run_dir / TRAIN_LOCK, busy(run_dir)):
            prepare_run_dir(run_dir)  # again under the lock: another process may have started a run here meanwhile
            return first_session(cfg, run_dir, env, keep=(), remove_folder=created).run(stop_at)


def restart(run_dir: Path, stop_at: int | None = None) -> dict[str, Any] | None:
    """Start the run of `run_dir` again from its saved config: the files unseen wrote there (`rundir.RUN_FILES`) are
    deleted first, anything else stays."""
    require_run(run_dir)  # before the lock, which would otherwise leave its file in any directory
    with exclusive(run_dir / TRAIN_LOCK, busy(run_dir)):
        try:
            cfg = validate(read_config(run_dir))
        except UserError as error:
            raise UserError(f"{run_dir / CONFIG_FILE}: {error}; fix it, or start a new run in another folder") from None
        cfg, env = resolved(cfg, run_dir)
        with closing(env):
            remove_run_files(run_dir, keep=(CONFIG_FILE, TRAIN_LOCK))
            return first_session(cfg, run_dir, env, keep=(CONFIG_FILE,), remove_folder=False).run(stop_at)


def resolved(cfg: RunConfig, run_dir: Path) -> tuple[RunConfig, Env]:
    """`cfg`, checked for a first session in `run_dir`, made to compute the same on any machine and from any folder:
    `agent.precision=auto` and `train.threads=0` resolved for this machine, paths made absolute, so that config.yaml,
    and every resume, holds what the run computes with; and the run's training environment (the caller closes it).
    Nothing is written before: the environment is made first (a missing GL backend or bad shift data fails here;
    environment families load their simulator only when they make one) and the disk must have room for the replay
    buffer (the space of the files a restart deletes counted)."""
    validate(cfg)
    env = make_run_env(cfg, "none")
    try:
        require_replay_space(replay_layout(cfg, env), run_dir, capacity_remedy(cfg))
    except BaseException:
        env.close()
        raise
    precision = hardware.resolve_precision(cfg.agent.precision, device_of(cfg))
    threads = hardware.resolve_threads(cfg.train.threads)
    cfg = dataclasses.replace(
        cfg, agent=dataclasses.replace(cfg.agent, precision=precision),
        train=dataclasses.replace(cfg.train, threads=threads),
    )
    return absolute_paths(cfg), env


def first_session(cfg: RunConfig, run_dir: Path, env: Env, keep: tuple[str, ...], remove_folder: bool) -> Trainer:
    """The `Trainer` of `cfg` at its first step in `run_dir`, which holds no run files but those in `keep`, training
    on `env` (`resolved`'s); its config saved. Until it exists nothing is trained: a failure (or Ctrl-C) on the way
    removes what it wrote, `keep` stays (and the folder, unless `remove_folder`), so that no folder is left with a
    config and nothing to resume."""
    try:
        write_atomic(run_dir / CONFIG_FILE, config_text(cfg).encode())
        return Trainer(cfg, run_dir, env=env)
    except BaseException:
        remove_run_files(run_dir, keep)
        if remove_folder and not any(run_dir.iterdir()):
            run_dir.rmdir()
        raise


def resume(run_dir: Path, stop_at: int | None = None) -> dict[str, Any] | None:
    """Continue a stopped run from its latest checkpoint; refuse, changing nothing, when a file the checkpoint counts
    on is damaged (`Trainer`)."""
    require_run(run_dir)  # before the lock, which would otherwise leave its file in any directory
    with exclusive(run_dir / TRAIN_LOCK, busy(run_dir)):
        checkpoint = read_checkpoint(run_dir)
        cfg = validate(read_config(run_dir))
        if checkpoint["step"] >= cfg.train.steps and (run_dir / SUMMARY_FILE).exists():
            raise UserError(f"{run_dir} is already complete ({checkpoint['step']} steps); see its {SUMMARY_FILE}")
        try:
            trainer = Trainer(cfg, run_dir, checkpoint)
        except Damaged as error:
            raise Damaged(f"{error}; restore it from a copy, or {restart_hint(run_dir)}") from None
        return trainer.run(stop_at)


@dataclasses.dataclass(frozen=True)
class ReplayLayout:
    """What a run's replay buffer holds: `capacity` entries of a frame and an action each."""

    capacity: int
    frame_shape: tuple[int, int, int]
    action_dim: int


def replay_layout(cfg: RunConfig, env: Env) -> ReplayLayout:
    """The replay buffer of `cfg` with the training environment `env`: by default room for every frame of the run
    (one per step and one per episode start), so that nothing is ever overwritten."""
    episodes = math.ceil(cfg.train.steps / env.max_episode_steps)
    capacity = cfg.train.replay_capacity or cfg.train.steps + episodes + 1
    return ReplayLayout(capacity, (3, *env.obs_shape[1:]), env.action_space.shape[0])


def require_replay_space(layout: ReplayLayout, run_dir: Path, remedy: str) -> None:
    """`DiskFull` ending with `remedy` unless the disk has room for what the replay files of `run_dir` still need."""
    needed = bytes_to_reserve(run_dir / REPLAY_DIR, layout.capacity, layout.frame_shape, layout.action_dim)
    frames = "x".join(map(str, layout.frame_shape))
    require_space(run_dir, needed, f"the replay buffer ({layout.capacity:,} frames of {frames})", remedy)


def capacity_remedy(cfg: RunConfig) -> str:
    """How a new run can do with less disk space for its replay buffer."""
    capacity = f"{cfg.train.replay_capacity}" if cfg.train.replay_capacity else "0: every frame of the run"
    return (f"keep fewer frames with --set train.replay_capacity=N (now {capacity}), train fewer --steps, or free "
            "some space")


def open_replay(cfg: RunConfig, layout: ReplayLayout, run_dir: Path, resumed: bool) -> ReplayBuffer:
    """The replay buffer of a run, its files' disk blocks reserved (a resumed run's files must be there, whole)."""
    resume = f"free some space, then continue with: unseen train --resume {run_dir}"
    remedy = resume if resumed else capacity_remedy(cfg)
    require_replay_space(layout, run_dir, remedy)
    try:
        return ReplayBuffer(layout.capacity, layout.frame_shape, layout.action_dim, cfg.env.frame_stack,
                            run_dir / REPLAY_DIR, existing=resumed)
    except OSError as error:
        if not disk_full(error):
            raise
        raise DiskFull(f"no space left on the disk of {run_dir} for the replay buffer; {remedy}") from None


def busy(run_dir: Path) -> str:
    # Two trainers on one directory would interleave checkpoints and logs: the second one stops before it starts.
    return f"another process is training {run_dir}; wait for it or stop it (it checkpoints on SIGTERM)"
