"""The run directory: its file names, opening a run and restoring its agent, and reading and writing files safely."""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from unseen.agents import Agent, make_agent
from unseen.config import RunConfig, load_config
from unseen.errors import DiskFull, UserError
from unseen.replay import ARRAYS

CONFIG_FILE = "config.yaml"
CHECKPOINT_FILE = Path("checkpoints") / "latest.pt"
SUMMARY_FILE = "summary.json"
TRAIN_LOG = "train.csv"
EVAL_LOG = "eval.csv"
TRAIN_LOCK = "train.lock"
REPLAY_DIR = "replay"
VIDEO_DIR = "videos"
TENSORBOARD_DIR = "tensorboard"


def temporary(path: Path) -> Path:
    """Where `write_atomic` writes `path` before renaming it over."""
    return path.with_suffix(".tmp")


ATOMIC_FILES = (CONFIG_FILE, TRAIN_LOG, EVAL_LOG, SUMMARY_FILE, str(CHECKPOINT_FILE))
"""Run files (re)written whole or not at all (`write_atomic`), each with its `temporary` while it is written."""

RUN_FILES = (
    *ATOMIC_FILES, *(str(temporary(Path(name))) for name in ATOMIC_FILES), TRAIN_LOCK,
    *(f"{REPLAY_DIR}/{name}.npy" for name in ARRAYS),
    f"{VIDEO_DIR}/*_step[0-9]*.mp4",  # evaluations' videos: {shift}_step{N}.mp4, unseen eval's {shift}_step{N}_eval.mp4
    f"{TENSORBOARD_DIR}/events.out.tfevents.*",  # the names torch's SummaryWriter gives its event files
)
"""Glob patterns of every file `unseen train` and `unseen eval` write in a run directory, relative to it:
`unseen train --restart` deletes these and nothing else."""


def restart_hint(run_dir: Path) -> str:
    """The way out of a run directory that cannot be resumed, as every refusal names it."""
    return f"start it again from its saved config with: unseen train --restart {run_dir}"


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


def prepare_run_dir(run_dir: Path) -> bool:
    """Create `run_dir` for a new run, or take an empty folder; refuse one that already holds a run, holds anything
    else (a file unseen did not write for a run would be mixed into it or overwritten) or cannot be written. Returns
    whether it created the folder."""
    if (run_dir / CONFIG_FILE).exists():
        raise UserError(f"{run_dir} already holds a run; continue it with --resume {run_dir}, start it again with "
                        f"--restart {run_dir}, or choose another --out")
    foreign = sorted(entry.name for entry in run_dir.iterdir() if entry.name != TRAIN_LOCK) if run_dir.is_dir() else []
    if foreign:
        listed = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        raise UserError(f"{run_dir} holds files that are not an unseen run's ({listed}); choose a new or empty folder "
                        "for --out")
    created = not run_dir.exists()
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(f"cannot create the run directory {run_dir}: {error.strerror}; choose another --out") from None
    if not os.access(run_dir, os.W_OK):
        raise UserError(f"the run directory {run_dir} is not writable; choose another --out")
    return created


def run_files(run_dir: Path) -> list[Path]:
    """The files of `run_dir` that unseen wrote (`RUN_FILES`)."""
    return sorted({path for pattern in RUN_FILES for path in run_dir.glob(pattern) if path.is_file()})


def remove_run_files(run_dir: Path, keep: tuple[str, ...] = ()) -> None:
    """Delete the files unseen wrote in `run_dir` (`run_files`) but those named in `keep`, then the folders that
    emptied; anything else in it stays."""
    for path in run_files(run_dir):
        if str(path.relative_to(run_dir)) not in keep:
            path.unlink()
    for folder in (REPLAY_DIR, VIDEO_DIR, TENSORBOARD_DIR, CHECKPOINT_FILE.parent):
        if (run_dir / folder).is_dir() and not any((run_dir / folder).iterdir()):
            (run_dir / folder).rmdir()


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
        raise UserError(f"{run_dir} has no checkpoint ({CHECKPOINT_FILE}): it stopped before its first; "
                        f"{restart_hint(run_dir)}")
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:
        raise UserError(f"the checkpoint {path} is corrupt ({type(error).__name__}); restore it from a copy, or "
                        f"{restart_hint(run_dir)}") from None


def summary_entry(row: dict[str, Any]) -> dict[str, Any]:
    """A shift's entry in summary.json's returns: the numbers, the success rate (families that report success), and
    the shift's data source (and intensity)."""
    entry = {"mean": row["return_mean"], "std": row["return_std"], "episodes": row["episodes"], "step": row["step"]}
    return {**entry, **{key: row[key] for key in ("success", "source", "intensity") if key in row}}


def write_json(path: Path, data: dict[str, Any], remedy: str = "free some space and run the command again") -> None:
    """Write `data` to `path` as indented JSON, whole or not at all (`write_atomic`)."""
    write_atomic(path, (json.dumps(data, indent=2) + "\n").encode(), remedy)


def write_atomic(path: Path, data: bytes, remedy: str = "free some space and run the command again") -> None:
    """Write `data` to `path` whole or not at all: checked against the free disk space, written to a temporary
    file, flushed to disk, then renamed over `path`. On any failure the temporary file is removed and `path` is as
    it was; a full disk is a `DiskFull` that ends with `remedy`."""
    require_space(path.parent, len(data), str(path), remedy)
    try:
        with temporary(path).open("wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary(path), path)
    except BaseException as error:
        temporary(path).unlink(missing_ok=True)
        if isinstance(error, OSError) and disk_full(error):
            raise DiskFull(f"no space left on the disk for {path} ({size_text(len(data))}); {remedy}") from None
        raise


def disk_full(error: OSError) -> bool:
    """Whether `error` says the disk (or the user's quota) is full."""
    return error.errno in (errno.ENOSPC, errno.EDQUOT)


def require_space(directory: Path, needed: int, what: str, remedy: str) -> None:
    """Raise `DiskFull` (naming `what`, the bytes needed and free, and `remedy`) unless the disk that holds
    `directory` (or its nearest existing parent) has `needed` bytes free."""
    existing = next(path for path in (directory.absolute(), *directory.absolute().parents) if path.exists())
    free = shutil.disk_usage(existing).free
    if needed > free:
        raise DiskFull(
            f"{what} needs {size_text(needed)} of disk space, {size_text(free)} free on {existing}; {remedy}"
        )


def size_text(size: int) -> str:
    """A byte count for people: 1.2 TB, 74.3 GB, 512.0 MB, 3.1 kB."""
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} B"


