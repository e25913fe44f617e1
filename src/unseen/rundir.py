"""The run directory: its file names, opening a run and restoring its agent, and reading and writing its files safely.

Every file of a run is read here, and checked as it is read: `read_config`, `read_summary`, `read_eval`, `read_train`
and `read_checkpoint` return what they read or raise one `UserError` line that names the file, what is wrong with it
(cut short, not text, a missing key or column, a value of the wrong kind, a checkpoint of another version) and what
to do about it; `load_agent_state` says which keys a checkpoint's agent lacks or has too many of.
"""

from __future__ import annotations

import csv
import errno
import fcntl
import io
import json
import math
import os
import shutil
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import yaml

from unseen.agents import Agent, make_agent
from unseen.config import RunConfig, check, from_dict
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
    """The torch device a run trains on (`train.device`; "auto": CUDA when available, else the CPU); a `UserError`
    when it asks for CUDA on a machine without, before the run makes anything."""
    if cfg.train.device == "cuda" and not torch.cuda.is_available():
        raise UserError("train.device=cuda, but torch finds no CUDA device on this machine; "
                        "use train.device=auto or cpu, or a machine with a GPU")
    if cfg.train.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(cfg.train.device)


def restore(
    cfg: RunConfig, state: dict[str, Any], obs_shape: tuple[int, int, int], action_dim: int,
    device: torch.device | None = None, source: str | Path = "the checkpoint",
) -> Agent:
    """The agent of `cfg` with its checkpointed `state` (`load_agent_state`; `source` names it in errors), for
    observations `obs_shape` and `action_dim` actions, on `device` (default: the run's own where this machine has
    it, else the CPU: a run trained on a GPU is read anywhere)."""
    if device is None:
        device = device_of(cfg) if cfg.train.device != "cuda" or torch.cuda.is_available() else torch.device("cpu")
    agent = make_agent(cfg.algo, obs_shape, action_dim, cfg.agent, device, cfg.seed)
    load_agent_state(agent, state, source)
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
        return restore(self.cfg, self.checkpoint["agent"], env.obs_shape, env.action_space.shape[0], device,
                       self.path / CHECKPOINT_FILE)


def open_run(run_dir: Path) -> OpenRun:
    """The config and latest checkpoint of `run_dir` (`UserError` naming what is missing or broken)."""
    return OpenRun(run_dir, read_config(run_dir), read_checkpoint(run_dir))


def output_folder(path: Path, what: str = "folder") -> Path:
    """Make the folder `path` (and its parents) for a command's outputs, or a `UserError`: a file stands in the way,
    or it cannot be made or written."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:  # FileExistsError: a file at `path`; NotADirectoryError: a file on the way to it
        raise UserError(f"cannot create the {what} {path} ({error.strerror}); choose another --out") from None
    if not os.access(path, os.W_OK):
        raise UserError(f"the {what} {path} is not writable; choose another --out")
    return path


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
    output_folder(run_dir, "run directory")
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


# ----- reading the run's files ----------------------------------------------------------------------------------

CONFIG_FIX = "restore it from a copy (a sweep's export holds one); the run cannot be read without it"
CHECKPOINT_KEYS = ("step", "episode", "episode_return", "last_eval_step", "wall_time", "agent", "replay", "env", "rng")
"""What every checkpoint unseen ever wrote holds (`unseen.train.Trainer.state_dict`)."""
SUMMARY_KEYS: dict[str, type] = {"algo": str, "task": str, "preset": str, "seed": int, "frames": int, "steps": int,
                                 "returns": dict}
RESULT_KEYS: dict[str, type] = {"mean": float, "std": float, "episodes": int}
"""What every summary.json holds, and each of its results per shift."""
KINDS = {str: "text", int: "a whole number", float: "a number", dict: "a mapping"}
"""How errors name the kinds of `SUMMARY_KEYS` and `RESULT_KEYS`."""
EVAL_COLUMNS: dict[str, type] = {"step": float, "frames": float, "shift": str, "return_mean": float}
TRAIN_COLUMNS: dict[str, type] = {"step": float}
"""Columns of eval.csv and train.csv that their readers use, and what each holds in every row (float: a finite
number)."""


def read_text(path: Path, fix: str) -> str:
    """The UTF-8 text of `path`, or a `UserError` naming it (missing, unreadable, not text) and `fix`."""
    try:
        return path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise UserError(f"{path} does not exist; {fix}") from None
    except OSError as error:
        raise UserError(f"cannot read {path} ({error.strerror}); {fix}") from None
    except UnicodeDecodeError as error:
        raise UserError(f"{path} is not a text file (byte {error.start} is not UTF-8): it is corrupt; {fix}") from None


def read_yaml(path: Path, fix: str) -> Any:
    """The parsed YAML of `path`, or a `UserError` naming it (`read_text`'s cases, or not YAML: with the line) and
    `fix`."""
    text = read_text(path, fix)
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        raise UserError(f"{path} is not valid YAML{where}; {fix}") from None


def read_config(run_dir: Path) -> RunConfig:
    """The run's config.yaml: complete (what older versions lacked added by `unseen.config.upgraded`), of known
    fields and valid values (`unseen.config.check`)."""
    require_run(run_dir)
    path = run_dir / CONFIG_FILE
    data = read_yaml(path, f"it is corrupt; {CONFIG_FIX}")
    try:
        return check(from_dict(data))
    except UserError as error:
        raise UserError(f"{path}: {error}") from None


def read_summary(run_dir: Path, cfg: RunConfig | None = None) -> dict[str, Any]:
    """The run's summary.json: a JSON object with `SUMMARY_KEYS`, every result per shift with `RESULT_KEYS`; with
    `cfg`, of the same run (algorithm, task, preset and seed)."""
    path = run_dir / SUMMARY_FILE
    fix = f"delete it: unseen train --resume {run_dir} evaluates the finished run again and writes it anew"
    text = read_text(path, fix)
    try:
        summary = json.loads(text)
    except json.JSONDecodeError as error:
        raise UserError(f"{path} is not valid JSON ({error.msg}, line {error.lineno}): it is corrupt; {fix}") from None
    problem = summary_problem(summary)
    if problem is None and cfg is not None:
        expected = {"algo": cfg.algo, "task": cfg.env.task, "preset": cfg.preset, "seed": cfg.seed}
        key = next((key for key, value in expected.items() if summary[key] != value), None)
        problem = None if key is None else (f"says {key} {summary[key]!r} where {CONFIG_FILE} says {expected[key]!r}: "
                                            "the two files are of different runs")
    if problem is not None:
        raise UserError(f"{path} {problem}; {fix}")
    return summary


def summary_problem(summary: Any) -> str | None:
    """What is wrong with a parsed summary.json, or None."""
    if not isinstance(summary, dict):
        return "is not a JSON object"
    for key, kind in SUMMARY_KEYS.items():
        if not holds(summary.get(key), kind):
            return f"has no {key!r} ({KINDS[kind]})"
    if not summary["returns"]:
        return "has no results in 'returns'"
    for shift, result in summary["returns"].items():
        if not isinstance(result, dict):
            return f"has no mapping of results for {shift!r} in 'returns'"
        for key, kind in RESULT_KEYS.items():
            if not holds(result.get(key), kind):
                return f"has no {key!r} ({KINDS[kind]}) in the returns of {shift!r}"
    if "wall_time_s" in summary and not holds(summary["wall_time_s"], float):
        return "has no number in 'wall_time_s'"
    return None


def holds(value: Any, kind: type) -> bool:
    """Whether a JSON value is of `kind` (float: any finite number; a bool is never a number)."""
    if kind is float:
        return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    return isinstance(value, kind) and not (kind is int and isinstance(value, bool))


def read_eval(run_dir: Path) -> pd.DataFrame:
    """The run's eval.csv (`read_log`)."""
    return read_log(run_dir / EVAL_LOG, EVAL_COLUMNS, "restore it from a copy, or delete it (the run's learning "
                    "curves are lost; unseen eval writes the file anew)")


def read_train(run_dir: Path) -> pd.DataFrame:
    """The run's train.csv (`read_log`)."""
    return read_log(run_dir / TRAIN_LOG, TRAIN_COLUMNS, "restore it from a copy, or delete it (the run's losses are "
                    "lost)")


def read_log(path: Path, columns: dict[str, type], fix: str) -> pd.DataFrame:
    """A CSV log: text ending in a whole line, a header with `columns`, every row as many fields as the header, and
    in every row a value of each of `columns` of its kind (float: a finite number; str: any text)."""
    text = read_text(path, fix)
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        raise UserError(f"{path} is empty; {fix}")
    if not text.endswith("\n"):
        raise UserError(f"the last line of {path} is cut short (its writer was stopped mid-line); delete that line")
    header = rows[0]
    missing = [column for column in columns if column not in header]
    if missing:
        raise UserError(f"{path} has no column {', '.join(missing)}: it is not a log of unseen; {fix}")
    for line, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise UserError(f"row {line} of {path} has {len(row)} fields where its header has {len(header)}; {fix}")
    frame = pd.read_csv(io.StringIO(text))
    for column, kind in columns.items():
        if kind is str:
            bad = frame[column].isna().to_numpy()
        else:
            frame[column] = pd.to_numeric(frame[column], errors="coerce")
            bad = ~np.isfinite(frame[column].to_numpy(dtype=float))
        if bad.any():
            what = "number" if kind is float else "value"
            raise UserError(f"row {int(bad.argmax()) + 2} of {path} has no {what} in {column}; {fix}")
    return frame


def read_checkpoint(run_dir: Path) -> dict[str, Any]:
    """The latest checkpoint of `run_dir`, with `CHECKPOINT_KEYS`, or a `UserError` naming what is missing or
    broken."""
    require_run(run_dir)
    path = run_dir / CHECKPOINT_FILE
    if not path.exists():
        raise UserError(f"{run_dir} has no checkpoint ({CHECKPOINT_FILE}): it stopped before its first; "
                        f"{restart_hint(run_dir)}")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:  # whatever unpickling random bytes raises
        raise UserError(f"the checkpoint {path} is corrupt ({type(error).__name__}); restore it from a copy, or "
                        f"{restart_hint(run_dir)}") from None
    missing = [key for key in CHECKPOINT_KEYS if not isinstance(checkpoint, dict) or key not in checkpoint]
    if missing or not holds(checkpoint["step"], int) or not isinstance(checkpoint["agent"], dict):
        raise UserError(f"the checkpoint {path} lacks {', '.join(missing) or 'a valid step or agent'}: it is no "
                        f"checkpoint of unseen; {restart_hint(run_dir)}")
    return checkpoint


def load_agent_state(agent: Agent, state: Any, source: str | Path) -> None:
    """Load a checkpointed `state` into `agent`, or a `UserError` naming the keys it lacks or has too many of, and
    the tensors whose shapes differ (a checkpoint of another version of unseen, or of another config)."""
    differences = state_differences(agent.state_dict(), state)
    if differences:
        shown = "; ".join(differences[:3]) + (f"; {len(differences) - 3} more" if len(differences) > 3 else "")
        raise UserError(f"{source} does not fit the {type(agent).__name__} agent this version of unseen builds "
                        f"({shown}); use the version that trained it (summary.json: versions.unseen_commit)")
    agent.load_state_dict(state)


def state_differences(expected: Any, found: Any, prefix: str = "") -> list[str]:
    """Where a saved state differs in structure from a fresh agent's `expected` one: keys missing or unexpected at
    any depth, tensors of other shapes. An empty mapping (an optimizer's state before its first step) is not
    compared: it grows with training."""
    if isinstance(expected, Mapping) and expected:
        if not isinstance(found, Mapping):
            return [f"{prefix.rstrip('.') or 'the state'} is not a mapping"]
        differences = [f"missing {prefix}{key}" for key in expected if key not in found]
        differences += [f"unexpected {prefix}{key}" for key in found if key not in expected]
        for key in [key for key in expected if key in found]:
            differences += state_differences(expected[key], found[key], f"{prefix}{key}.")
        return differences
    if isinstance(expected, torch.Tensor) and (not isinstance(found, torch.Tensor) or found.shape != expected.shape):
        shape = tuple(found.shape) if isinstance(found, torch.Tensor) else type(found).__name__
        return [f"{prefix.rstrip('.')} is {shape}, not {tuple(expected.shape)}"]
    return []


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


