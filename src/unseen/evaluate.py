"""Zero-shot evaluation: the deterministic policy on environments seeded apart from training.

Agents with test-time adaptation (`unseen.agents.Adapting`, PAD) can also be evaluated adapted (`unseen eval --adapt`):
each episode then runs a fresh copy of the agent that learns from the episode's own transitions (`run_episode`), and
its rows are told apart by `adapted` = True in eval.csv and by summary.json's `adapted_returns` (`returns` stays the
agent as trained, the number every method has; rows without the column are not adapted).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections.abc import Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import imageio.v2 as imageio
import numpy as np
import torch
from numpy.typing import ArrayLike
from tqdm import tqdm

from unseen import hardware
from unseen.agents import REGISTRY, Adapting, Agent, spec_of
from unseen.children import die_with_parent, ending_children_on_signals
from unseen.config import RunConfig
from unseen.envs import Env, check_shifts, family_of, make_env
from unseen.errors import UserError
from unseen.logs import CsvLog
from unseen.rundir import (
    EVAL_LOG,
    SUMMARY_FILE,
    TRAIN_LOCK,
    VIDEO_DIR,
    OpenRun,
    exclusive,
    open_run,
    read_eval,
    read_summary,
    require_run,
    restore,
    summary_entry,
    write_json,
)

# Evaluation seeds are drawn from a stream of their own so that no evaluation episode replays a training one.
_EVAL_STREAM = 1
ADAPTED_RETURNS = "adapted_returns"
"""summary.json's key of the adapted returns per shift (`unseen eval --adapt`)."""


def eval_seeds(seed: int, episodes: int) -> list[int]:
    """Seeds of the `episodes` evaluation episodes of a run with seed `seed`: distinct from it, fixed per run."""
    return [int(s) for s in np.random.SeedSequence([seed, _EVAL_STREAM]).generate_state(episodes)]


@dataclass
class EvalResult:
    """Returns of the episodes of one evaluation on one shift, whether each reached its goal (families that report
    success, `EnvFamily.success`; else None), and what the shift's data was (`ShiftConfig.record`)."""

    shift: str
    returns: list[float]
    record: dict[str, str | float]
    successes: list[bool] | None = None

    @property
    def row(self) -> dict[str, float | int | str]:
        """eval.csv's row: return statistics, episodes, the success rate (a fraction of the episodes; only for
        families that report success) and the shift's data record."""
        returns = np.asarray(self.returns)
        success = {} if self.successes is None else {"success": float(np.mean(self.successes))}
        return {
            "shift": self.shift,
            "return_mean": float(returns.mean()),
            "return_std": float(returns.std()),
            "return_min": float(returns.min()),
            "return_max": float(returns.max()),
            "episodes": len(returns),
            **success,
            **self.record,
        }


def evaluate(agent: Agent, cfg: RunConfig, env: Env, episodes: int, video_path: Path | None = None) -> EvalResult:
    """Run `episodes` episodes of the mean action on `env` (`make_run_env` of the run `cfg` under a shift); record
    the first one to `video_path` (mp4). The episodes' seeds (`eval_seeds`) make them: not what `env` played before."""
    played = [
        play_episode(agent, env, seed, video_path if i == 0 else None)
        for i, seed in enumerate(eval_seeds(cfg.seed, episodes))
    ]
    return result_of(cfg, env.shift.name, played, env.shift.record)


def result_of(cfg: RunConfig, shift: str, played: list[tuple[float, bool]], record: dict) -> EvalResult:
    """The `EvalResult` of episodes `played` (return, success), success kept where the run's family reports it."""
    successes = [success for _, success in played] if family_of(cfg.env.task).success else None
    return EvalResult(shift, [ret for ret, _ in played], record, successes)


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


def run_episode(agent: Agent, env: Env, seed: int, video_path: Path | None = None, adapt: bool = False) -> float:
    """The return of one episode of the mean action from `env.reset(seed=seed)`; the same for any env reused."""
    return play_episode(agent, env, seed, video_path, adapt)[0]


def play_episode(
    agent: Agent, env: Env, seed: int, video_path: Path | None = None, adapt: bool = False
) -> tuple[float, bool]:
    """The return of one episode of the mean action from `env.reset(seed=seed)`, and whether it reached its goal
    (`info["success"]` at its end; False where the environment reports none).

    `adapt`: act with `agent.adapter(seed)`, a copy that learns from each transition after it is made (the agent
    itself is left as it is)."""
    actor = adapter_of(agent, seed) if adapt else None
    obs, info = env.reset(seed=seed)
    frames = [env.render()] if video_path is not None else []
    total, done = 0.0, False
    while not done:
        action = (actor or agent).act(obs, deterministic=True)
        next_obs, reward, terminated, truncated, info = env.step(action)
        if actor is not None:
            actor.observe(obs, action, next_obs)
        obs = next_obs
        total += reward
        done = terminated or truncated
        if video_path is not None:
            frames.append(env.render())
    if video_path is not None:
        write_video(video_path, frames)
    return total, bool(info.get("success", False))


def adapter_of(agent: Agent, seed: int) -> Any:
    """`agent.adapter(seed)`; a one-line error for an agent without test-time adaptation."""
    if not isinstance(agent, Adapting):
        raise UserError(f"{type(agent).__name__} has no test-time adaptation (unseen.agents.Adapting)")
    return agent.adapter(seed)


def write_video(path: Path, frames: list[np.ndarray], scale: int = 4, fps: int = 30) -> None:
    """Write RGB frames as an mp4, enlarged `scale` times (nearest neighbour) so small frames stay visible."""
    path.parent.mkdir(parents=True, exist_ok=True)
    big: list[ArrayLike] = [frame.repeat(scale, axis=0).repeat(scale, axis=1) for frame in frames]
    imageio.mimwrite(path, big, fps=fps, macro_block_size=1)


def evaluate_run(
    run_dir: Path,
    shifts: list[str],
    episodes: int,
    sources: dict[str, str] | None = None,
    workers: int = 0,
    adapt: bool = False,
) -> list[dict]:
    """Evaluate a finished run's last checkpoint on `shifts`; append to eval.csv and add to summary.json's returns.

    `sources`: the shifts' data options of `make_env`; they, the run's files and the checkpoint's fit to this
    version's agent are all checked before the first episode. `workers`: processes running episodes (0: one per
    core). `adapt`: also evaluate with test-time adaptation (module docstring); its rows follow the others'. The
    checkpoint is only read. The run's lock (`TRAIN_LOCK`) is held throughout: no training or other evaluation
    writes the run's files meanwhile.
    """
    if episodes <= 0:
        raise UserError(f"--episodes must be positive, got {episodes}")
    if workers < 0:
        raise UserError(f"--workers must be 0 (one per core) or positive, got {workers}")
    require_run(run_dir)  # before the lock, which would otherwise leave its file in any directory
    with exclusive(run_dir / TRAIN_LOCK, f"another process is training or evaluating {run_dir}; wait for it to end"):
        run = open_run(run_dir)
        check_shifts(run.cfg.env.task, shifts, sources)
        if adapt and not spec_of(run.cfg.algo).adapts:
            names = ", ".join(name for name, spec in REGISTRY.items() if spec.adapts)
            raise UserError(f"--adapt needs an algorithm with test-time adaptation ({names}); {run_dir} is "
                            f"{run.cfg.algo}")
        summary = finished_summary(run)
        return evaluate_finished(run, summary, shifts, episodes, sources or {}, workers, adapt)


def finished_summary(run: OpenRun) -> dict[str, Any]:
    """The summary.json of a run trained to its last step, its eval.csv whole, its checkpoint fitting this version's
    agent (checked here, before any worker starts); a `UserError` otherwise."""
    run_dir, cfg = run.path, run.cfg
    if run.step < cfg.train.steps or not (run_dir / SUMMARY_FILE).exists():
        lacking = "" if (run_dir / SUMMARY_FILE).exists() else f", no {SUMMARY_FILE}"
        raise UserError(f"{run_dir} is not finished (its checkpoint is of step {run.step} of {cfg.train.steps}"
                        f"{lacking}); finish it with unseen train --resume {run_dir}, then evaluate it")
    summary = read_summary(run_dir, cfg)
    if (run_dir / EVAL_LOG).exists():
        read_eval(run_dir)  # rows are appended to a whole file only
    probe = make_run_env(cfg, "none")
    try:
        run.restore(probe, torch.device("cpu"))
    finally:
        probe.close()
    return summary


def evaluate_finished(
    run: OpenRun, summary: dict[str, Any], shifts: list[str], episodes: int, sources: dict[str, str], workers: int,
    adapt: bool,
) -> list[dict]:
    """`evaluate_run` of a checked, finished run, its lock held: the episodes, then eval.csv's rows and `summary`'s
    entries, written at the end only."""
    run_dir, cfg, step = run.path, run.cfg, run.step
    log = CsvLog(run_dir / EVAL_LOG)
    videos = {
        shift: run_dir / VIDEO_DIR / f"{shift}_step{step}_eval.mp4" if cfg.train.video else None for shift in shifts
    }
    rows = []
    for adapted in (False, True) if adapt else (False,):
        results = evaluate_parallel(
            run.checkpoint["agent"], cfg, shifts, episodes, videos if not adapted else dict.fromkeys(shifts),
            sources, workers, adapt=adapted,
        )
        rows += [{"step": step, "frames": step * cfg.env.action_repeat, **results[shift].row,
                  **({"adapted": True} if adapted else {})} for shift in shifts]
    for row in rows:
        log.write(row)
        summary.setdefault(ADAPTED_RETURNS if row.get("adapted") else "returns", {})[row["shift"]] = summary_entry(row)
    write_json(run_dir / SUMMARY_FILE, summary)
    return rows


# ----- episodes in worker processes --------------------------------------------------------------------
# Each worker holds the agent and one environment per shift; an episode's return depends only on its seed,
# so results do not depend on which worker ran it, nor on how many there are (tested).


class EpisodePlayer:
    """What an evaluation worker holds: the run's agent on the CPU, made at the first episode (shaped by its
    environment: a probe would cost one renderer more), and one environment per shift, made at its first episode."""

    def __init__(self, agent_state: dict, cfg: RunConfig, sources: dict[str, str]) -> None:
        self.agent_state, self.cfg, self.sources = agent_state, cfg, sources
        self.agent: Agent | None = None
        self.envs: dict[str, Env] = {}

    def play(self, shift: str, seed: int, video_path: Path | None, adapt: bool) -> tuple[tuple[float, bool], dict]:
        """The episode of `seed` on `shift` (`play_episode`), and the shift's data record."""
        if shift not in self.envs:
            self.envs[shift] = make_run_env(self.cfg, shift, self.sources)
        env = self.envs[shift]
        if self.agent is None:
            self.agent = restore(self.cfg, self.agent_state, env.obs_shape, env.action_space.shape[0],
                                 torch.device("cpu"))
        return play_episode(self.agent, env, seed, video_path, adapt), env.shift.record

    def close(self) -> None:
        for env in self.envs.values():
            env.close()


_worker: dict[str, EpisodePlayer] = {}


def _start_worker(parent: int, agent_state: dict, cfg: RunConfig, sources: dict[str, str]) -> None:
    # A worker ends with the evaluation: killed with it (SIGKILL leaves the parent no say), or ended by it on SIGINT
    # and SIGTERM, which the parent alone handles (a terminal's Ctrl-C reaches every process of its group).
    die_with_parent(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # One intra-op thread per worker: the workers are the parallelism, and a fixed thread count keeps
    # every episode bit-for-bit the same whichever process runs it.
    torch.set_num_threads(1)
    _worker["player"] = EpisodePlayer(agent_state, cfg, sources)


def _worker_episode(
    shift: str, seed: int, video_path: Path | None, adapt: bool = False
) -> tuple[tuple[float, bool], dict]:
    return _worker["player"].play(shift, seed, video_path, adapt)


def evaluate_parallel(
    agent_state: dict,
    cfg: RunConfig,
    shifts: list[str],
    episodes: int,
    videos: dict[str, Path | None],
    sources: dict[str, str],
    workers: int = 0,
    adapt: bool = False,
) -> dict[str, EvalResult]:
    """Each shift's result (episodes in seed order), from `workers` processes (0: one per core; one worker is this
    process, with one thread as a worker has); `adapt`: of episodes with test-time adaptation. The processes end
    with this one (`unseen.children`); one that dies is a `UserError`."""
    seeds = eval_seeds(cfg.seed, episodes)
    jobs = [(shift, index) for shift in shifts for index in range(episodes)]
    episode_args = [(shift, seeds[index], videos[shift] if index == 0 else None, adapt) for shift, index in jobs]
    workers = min(workers or hardware.usable_cores(), len(jobs))
    played: dict[str, list[tuple[float, bool]]] = {shift: [(0.0, False)] * episodes for shift in shifts}
    records: dict[str, dict] = {}
    with tqdm(total=len(jobs), unit="episode", desc="evaluating", mininterval=1.0) as bar:
        for job, (outcome, record) in _played_episodes(episode_args, workers, (os.getpid(), agent_state, cfg, sources)):
            shift, index = jobs[job]
            played[shift][index], records[shift] = outcome, record
            bar.update(1)
    return {shift: result_of(cfg, shift, played[shift], records[shift]) for shift in shifts}


def _played_episodes(
    episode_args: list[tuple], workers: int, start: tuple[int, dict, RunConfig, dict[str, str]]
) -> Iterator[tuple[int, tuple[tuple[float, bool], dict]]]:
    """`_worker_episode(*args)` of each of `episode_args`, as (its index, its outcome) in the order they end: in
    `workers` processes started by `_start_worker(*start)`, or in this one for a single worker (no process to start,
    an import of torch and the simulator, for what this one can play)."""
    if workers == 1:
        player, threads = EpisodePlayer(*start[1:]), torch.get_num_threads()
        torch.set_num_threads(1)  # as a worker computes
        try:
            yield from ((job, player.play(*args)) for job, args in enumerate(episode_args))
        finally:
            torch.set_num_threads(threads)
            player.close()
        return
    context = multiprocessing.get_context("spawn")  # no fork: the parent may hold a GL context
    with (
        ending_children_on_signals(),
        ProcessPoolExecutor(workers, context, initializer=_start_worker, initargs=start) as pool,
    ):
        futures = {pool.submit(_worker_episode, *args): job for job, args in enumerate(episode_args)}
        for future in as_completed(futures):
            try:
                yield futures[future], future.result()
            except BrokenProcessPool:
                raise UserError(f"an evaluation worker died (out of memory?); evaluate with fewer --workers "
                                f"than {workers}") from None
