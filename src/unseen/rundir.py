"""The run directory: its file names, opening a run and restoring its agent, and reading and writing files safely."""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from unseen.agents import Agent, make_agent
from unseen.config import RunConfig, load_config
from unseen.errors import UserError

CONFIG_FILE = "config.yaml"
CHECKPOINT_FILE = Path("checkpoints") / "latest.pt"
SUMMARY_FILE = "summary.json"
TRAIN_LOG = "train.csv"
EVAL_LOG = "eval.csv"
TRAIN_LOCK = "train.lock"
REPLAY_DIR = "replay"
VIDEO_DIR = "videos"
TENSORBOARD_DIR = "tensorboard"


def device_of(cfg: RunConfig) -> torch.device:
    """The torch device a run asks for (`train.device`; "auto": CUDA when available, else the CPU)."""
    if cfg.train.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(cfg.train.device)


def restore(
    cfg: RunConfig, state: dict[str, Any], obs_shape: tuple[int, int, int], action_dim: int,
    device: torch.device | None = None,
) -> Agent:
    """The agent of `cfg` with its checkpointed `state`, for observations `obs_shape` and `action_dim` actions, on
    `device` (default: the run's own, `device_of`)."""
    agent = make_agent(cfg.algo, obs_shape, action_dim, cfg.agent, device or device_of(cfg), cfg.seed)
    agent.load_state_dict(state)
    return agent


@dataclass(frozen=True)
class OpenRun:
    """A run directory read for use after training: its config and its latest checkpoint."""

    path: Path
    cfg: RunConfig
    checkpoint: dict[str, Any]

    @property
    def step(self) -> int:
        """Agent steps the checkpoint was taken at."""
        return int(self.checkpoint["step"])

    def restore(self, env: Any, device: torch.device | None = None) -> Agent:
        """The run's agent at the checkpoint, shaped by `env` (any environment of the run's task: its observation
        shape and action size), on `device` (default: the run's own)."""
        return restore(self.cfg, self.checkpoint["agent"], env.obs_shape, env.action_space.shape[0], device)


def open_run(run_dir: Path) -> OpenRun:
    """The config and latest checkpoint of `run_dir` (`UserError` naming what is missing or broken)."""
    checkpoint = read_checkpoint(run_dir)
    return OpenRun(run_dir, load_config(run_dir / CONFIG_FILE), checkpoint)


def prepare_run_dir(run_dir: Path) -> None:
    """Create `run_dir` for a new run; refuse one that already holds a run or cannot be written."""
    if (run_dir / CONFIG_FILE).exists():
        raise UserError(f"{run_dir} already holds a run; continue it with --resume {run_dir} or choose another --out")
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(f"cannot create the run directory {run_dir}: {error.strerror}; choose another --out") from None
    if not os.access(run_dir, os.W_OK):
        raise UserError(f"the run directory {run_dir} is not writable; choose another --out")


@contextmanager
def exclusive(path: Path, busy: str) -> Iterator[None]:
    """Hold an advisory lock on the file `path` for the block, or raise `UserError(busy)` if another process
    holds it. The kernel releases it when the holder ends, however it ends (no stale lock after SIGKILL)."""
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError(busy) from None
        yield


def held(path: Path) -> bool:
    """Whether another process holds the lock that `exclusive` takes on the file `path`."""
    if not path.is_file():
        return False
    try:
        with exclusive(path, "held"):
            return False
    except UserError:
        return True


def require_run(run_dir: Path) -> None:
    """Refuse, with a `UserError`, a directory that `unseen train` did not make."""
    if not (run_dir / CONFIG_FILE).exists():
        raise UserError(f"{run_dir} is not a run directory (no {CONFIG_FILE}); pass a directory made by unseen train")


def read_checkpoint(run_dir: Path) -> dict[str, Any]:
    """The latest checkpoint of `run_dir`, or a `UserError` naming what is missing or broken."""
    require_run(run_dir)
    path = run_dir / CHECKPOINT_FILE
    if not path.exists():
        raise UserError(f"{run_dir} has no checkpoint ({CHECKPOINT_FILE}); start the run again with unseen train")
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:
        raise UserError(f"the checkpoint {path} is corrupt ({type(error).__name__}); start the run again") from None


def summary_entry(row: dict[str, Any]) -> dict[str, Any]:
    """A shift's entry in summary.json's returns: the numbers, and the shift's data source (and intensity)."""
    entry = {"mean": row["return_mean"], "std": row["return_std"], "episodes": row["episodes"], "step": row["step"]}
    return {**entry, **{key: row[key] for key in ("source", "intensity") if key in row}}


def write_json(path: Path, data: dict[str, Any]) -> None:
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(temporary, path)


