"""The run directory: its file names, and reading and writing them safely."""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from unseen.errors import UserError

CONFIG_FILE = "config.yaml"
CHECKPOINT_FILE = Path("checkpoints") / "latest.pt"
SUMMARY_FILE = "summary.json"
TRAIN_LOCK = "train.lock"


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


