"""Nothing lost: a resume refuses files damaged since its checkpoint, a full disk is one line with the last checkpoint
intact, no folder is left that can neither resume nor start again, other people's files are never written over, and a
run killed at any moment (SIGKILL, during checkpoint and log writes too) resumes to exactly the uninterrupted run."""

from __future__ import annotations

import csv
import errno
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

from unseen import logs, rundir, sweep, train
from unseen.config import RunConfig, make_config, save_config
from unseen.errors import Damaged
from unseen.rundir import CHECKPOINT_FILE, read_config, remove_run_files

from conftest import (
    assert_same_state,
    logs_without_time,
    run_cli,
    sweep_file,
    tiny_config,
    tiny_overrides,
)

STEPS = 80


def short_config(steps: int = STEPS) -> RunConfig:
    """The tiny config with 63-step episodes and one thread: checkpoints at 25, 50 and 75, a train.csv row at 63,
    evaluations at 0, 70 and 80 (the final one)."""
    cfg = tiny_config(steps=steps)
    cfg.env.action_repeat = 16
    cfg.train.threads = 1
    return cfg


@pytest.fixture(scope="module")
def whole(tmp_path_factory) -> Path:
    """The run trained without a stop."""
    run = tmp_path_factory.mktemp("whole") / "run"
    train.start(short_config(), run)
    return run


@pytest.fixture(scope="module")
def stopped(tmp_path_factory) -> Path:
    """The same run stopped at step 75 (rows in both logs, a checkpoint), not to be changed: tests copy it."""
    run = tmp_path_factory.mktemp("stopped") / "run"
    assert train.start(short_config(), run, stop_at=75) is None
    return run


def copy_of(run: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(run, tmp_path / "run"))


def contents(folder: Path) -> dict[str, bytes]:
    """Every file of `folder` (but the lock, which a refused command may create) and its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
            and p.name != rundir.TRAIN_LOCK}


def assert_equal_runs(a: Path, b: Path) -> None:
    """The same agent, replay extent and newest replay data, logs (but for wall time) and returns."""
    state_a, state_b = (torch.load(run / CHECKPOINT_FILE, weights_only=False) for run in (a, b))
    assert_same_state(state_a["agent"], state_b["agent"])
    assert_same_state(state_a["replay"], state_b["replay"], "replay")
    for log in ("train.csv", "eval.csv"):
        pd.testing.assert_frame_equal(logs_without_time(a, log), logs_without_time(b, log))


def cut(path: Path, keep: float) -> None:
    path.write_bytes(path.read_bytes()[: int(path.stat().st_size * keep)])


def zero_newest_frames(run: Path) -> None:
    """What an older unseen did to a cut frames.npy: the same size again, zeros where the newest frames were."""
    frames = np.load(run / "replay" / "frames.npy", mmap_mode="r+")
    frames[60:] = 0
    frames.flush()


def drop_last_row(path: Path) -> None:
    path.write_bytes(b"".join(path.read_bytes().splitlines(keepends=True)[:-1]))


# ----- 1. damaged files: refused with one line naming the file and the ways out, nothing changed ---------------------


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda run: cut(run / "replay" / "frames.npy", 0.5), "replay/frames.npy is cut short"),
        (lambda run: (run / "replay" / "actions.npy").unlink(), "replay/actions.npy is missing"),
        (zero_newest_frames, "replay/frames.npy differs from what the checkpoint recorded"),
        (lambda run: cut(run / "train.csv", 0.8), "train.csv holds 0 complete rows, the checkpoint counted 1"),
        (lambda run: drop_last_row(run / "eval.csv"), "eval.csv holds 1 complete rows, the checkpoint counted 2"),
        (lambda run: (run / "eval.csv").unlink(), "eval.csv is missing, the checkpoint counted 2"),
        (lambda run: (run / CHECKPOINT_FILE).write_bytes(b"\x00"), "is corrupt"),
        (lambda run: (run / CHECKPOINT_FILE).unlink(), "has no checkpoint"),
    ],
    ids=["frames cut", "actions deleted", "frames zeroed", "train.csv cut", "eval.csv row lost", "eval.csv deleted",
         "checkpoint corrupt", "checkpoint deleted"],
)
def test_a_damaged_run_is_refused_and_left_as_it_is(capsys, tmp_path, stopped, damage, message):
    run = copy_of(stopped, tmp_path)
    damage(run)
    before = contents(run)
    code, _, err = run_cli(capsys, "train", "--resume", str(run))
    assert code == 2 and len(err.splitlines()) == 1, err
    assert message in err and err.endswith(f"unseen train --restart {run}")
    assert contents(run) == before


def test_restart_trains_again_from_the_saved_config_and_keeps_other_files(capsys, tmp_path, stopped, whole):
    run = copy_of(stopped, tmp_path)
    cut(run / "replay" / "frames.npy", 0.5)
    mine = {"notes.txt": b"my notes", "videos/mine.mp4": b"my video", "replay/README": b"my replay notes"}
    for name, data in mine.items():
        (run / name).parent.mkdir(exist_ok=True)
        (run / name).write_bytes(data)
    code, _, err = run_cli(capsys, "train", "--restart", str(run))
    assert code == 0, err
    assert_equal_runs(whole, run)
    assert {name: (run / name).read_bytes() for name in mine} == mine


def test_a_checkpoint_from_before_the_records_still_resumes_and_another_thread_count_is_said(
    capsys, tmp_path, stopped, whole
):
    run = copy_of(stopped, tmp_path)
    checkpoint = torch.load(run / CHECKPOINT_FILE, weights_only=False)
    del checkpoint["logs"], checkpoint["replay"]["checked"]
    checkpoint["threads"] = 2  # as if an earlier session had computed with two
    torch.save(checkpoint, run / CHECKPOINT_FILE)
    code, _, err = run_cli(capsys, "train", "--resume", str(run))
    assert code == 0, err
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "computed with 2 thread(s) up to step 75, this session with 1" in warnings[0]
    assert_equal_runs(whole, run)


def test_logs_keep_exactly_the_rows_of_the_checkpoint(tmp_path):
    """Rows written after a checkpoint (a half-written one too) are dropped, whatever their step; fewer rows than the
    checkpoint counted are damage."""
    path = tmp_path / "eval.csv"
    log = logs.CsvLog(path)
    for step in (0, 70, 80):
        log.write({"step": step, "return_mean": step / 3})
    assert log.rows == 3
    with path.open("a") as handle:
        handle.write("90,3")  # cut off while it was written
    assert logs.CsvLog(path).rows == 3
    kept = logs.CsvLog(path).kept(step=80, rows=2)
    assert kept is not None and kept.decode().splitlines() == ["step,return_mean", "0,0.0", f"70,{70 / 3}"]
    assert logs.CsvLog(path).kept(step=70, rows=None) == kept  # a checkpoint without the count: rows up to its step
    assert logs.CsvLog(tmp_path / "train.csv").kept(step=70, rows=None) is None  # no episode had ended
    with pytest.raises(Damaged, match=r"holds 3 complete rows, the checkpoint counted 4"):
        logs.CsvLog(path).kept(step=80, rows=4)


# ----- 2. a full disk: one line saying what is needed and free, the last checkpoint intact ---------------------------


def free_bytes(monkeypatch, free: int) -> None:
    """Make every free-space check see `free` bytes."""
    total = 10**12
    monkeypatch.setattr(rundir.shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(total, total - free, free))


def test_a_replay_larger_than_the_free_space_is_refused_before_anything_is_written(capsys, tmp_path, monkeypatch):
    free_bytes(monkeypatch, 10**9)
    run = tmp_path / "run"
    code, _, err = run_cli(capsys, "train", "--algo", "drq", "--task", "cartpole_swingup", "--steps", "100000000",
                        "--out", str(run))
    assert code == 2 and len(err.splitlines()) == 1, err
    assert "the replay buffer (100,800,001 frames of 3x64x64) needs 1.2 TB of disk space, 1.0 GB free on" in err
    assert err.endswith("keep fewer frames with --set train.replay_capacity=N (now 0: every frame of the run), train "
                        "fewer --steps, or free some space")
    assert not run.exists()


def disk_full_at_write(monkeypatch) -> None:
    """Any write flushed to disk fails as on a full disk."""
    def fsync(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(rundir.os, "fsync", fsync)


def disk_full_at_log_row(monkeypatch) -> None:
    """A log row (or header) fails as on a full disk."""
    class FullDisk(csv.DictWriter):
        def writerow(self, rowdict: Any) -> Any:
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(logs.csv, "DictWriter", FullDisk)


def error_line(err: str) -> str:
    """The error that ended a command that trained for a while (its progress lines before): one line, no traceback."""
    assert "Traceback" not in err, err
    assert err.splitlines()[-1].startswith("unseen train: error: "), err
    return err.splitlines()[-1]


@pytest.mark.parametrize(
    ("fill", "message", "kept"),
    [
        (lambda monkeypatch: free_bytes(monkeypatch, 0), "checkpoints/latest.pt needs", 25),
        (disk_full_at_write, "no space left on the disk for", 25),
        (disk_full_at_log_row, "no space left on the disk of", 50),  # the train.csv row at 63
    ],
    ids=["no room for the checkpoint", "full while writing the checkpoint", "full while writing a log row"],
)
def test_a_full_disk_is_one_line_and_the_last_checkpoint_stays(capsys, tmp_path, monkeypatch, fill, message, kept):
    run = tmp_path / "run"
    assert train.start(short_config(), run, stop_at=25) is None
    fill(monkeypatch)
    code, _, err = run_cli(capsys, "train", "--resume", str(run))
    line = error_line(err)
    assert code == 2 and message in line
    assert line.endswith(f"free some space, then continue with: unseen train --resume {run}")
    assert not (run / "checkpoints" / "latest.tmp").exists()
    assert torch.load(run / CHECKPOINT_FILE, weights_only=False)["step"] == kept
    monkeypatch.undo()
    assert train.resume(run, stop_at=kept + 5) is None  # space freed: it goes on
    assert torch.load(run / CHECKPOINT_FILE, weights_only=False)["step"] == kept + 5


def test_a_full_disk_before_the_first_checkpoint_names_the_restart(capsys, tmp_path, monkeypatch):
    cfg = short_config(steps=30)
    disk_full_at_log_row(monkeypatch)  # the evaluation at step 0 writes the first row
    run = tmp_path / "run"
    code, _, err = run_cli(capsys, "train", "--algo", "drq", "--task", "cartpole_swingup", "--preset", "smoke",
                        "--steps", "30", "--out", str(run), "--set", *tiny_overrides(cfg))
    assert code == 2 and error_line(err).endswith(
        f"free some space, then start it again from its saved config with: unseen train --restart {run}"
    )


# ----- 3. no dead ends: nothing left by a start that fails, a way out named by every refusal -------------------------


def test_a_seed_out_of_range_fails_before_anything_is_written(capsys, tmp_path):
    run = tmp_path / "run"
    code, _, err = run_cli(capsys, "train", "--algo", "drq", "--task", "cartpole_swingup", "--seed", str(2**32),
                        "--out", str(run))
    assert code == 2 and "seed must lie in 0..4294967295, got 4294967296" in err and not run.exists()


@pytest.mark.parametrize("folder", ["new", "empty"])
def test_a_start_stopped_before_its_trainer_exists_leaves_the_folder_as_it_was(capsys, tmp_path, monkeypatch, folder):
    run = tmp_path / "run"
    if folder == "empty":
        run.mkdir()

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt  # Ctrl-C while the agent is made

    monkeypatch.setattr(train, "make_agent", interrupted)
    cfg = short_config(steps=30)
    code, _, err = run_cli(capsys, "train", "--algo", "drq", "--task", "cartpole_swingup", "--preset", "smoke",
                        "--out", str(run), "--set", *tiny_overrides(cfg))
    assert code == 128 + signal.SIGINT and err == "unseen train: interrupted"
    assert (folder == "empty") == run.exists() and not (run.exists() and any(run.iterdir()))


def test_a_run_without_a_checkpoint_can_be_restarted_and_nothing_else_is_deleted(capsys, tmp_path):
    """A run killed before its first checkpoint: --resume and --out name the restart, which trains from step 0 with
    the saved config and deletes only what unseen wrote."""
    run = tmp_path / "run"
    run.mkdir()
    cfg = short_config(steps=30)
    cfg.agent.precision = "float32"  # as a run saves it: resolved
    save_config(cfg, run / "config.yaml")
    (run / "eval.csv").write_text("step,return_mean\n0,1.0\n10,2.0\n")  # rows of the killed attempt
    (run / "notes.txt").write_text("mine")
    code, _, err = run_cli(capsys, "train", "--resume", str(run))
    assert code == 2 and "has no checkpoint" in err and err.endswith(f"unseen train --restart {run}")
    code, _, err = run_cli(capsys, "train", "--algo", "drq", "--task", "cartpole_swingup", "--out", str(run))
    assert code == 2 and "already holds a run" in err and f"--restart {run}" in err
    code, _, err = run_cli(capsys, "train", "--restart", str(run))
    assert code == 0, err
    assert list(pd.read_csv(run / "eval.csv")["step"]) == [0, 30] and (run / "notes.txt").read_text() == "mine"
    assert read_config(run) == cfg


def test_restart_deletes_exactly_the_files_unseen_writes(tmp_path):
    ours = ["config.yaml", "train.csv", "eval.csv", "summary.json", "train.lock", "checkpoints/latest.pt",
            "checkpoints/latest.tmp", "summary.tmp", "train.tmp", "replay/frames.npy", "replay/positions.npy",
            "videos/none_step0.mp4", "videos/color_hard_step70_eval.mp4", "tensorboard/events.out.tfevents.1.host"]
    theirs = ["notes.txt", "train.csv.bak", "replay/mine.npy", "videos/holiday.mp4", "tensorboard/notes",
              "checkpoints/best.pt", "disentangle/disentangle.md", "plots/train.csv"]
    for name in ours + theirs:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(name)
    remove_run_files(tmp_path, keep=("config.yaml",))
    left = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert left == sorted(["config.yaml", *theirs])


# ----- 4. other people's files: never written over -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("names", "listed"),
    [(["train.csv"], "(train.csv)"), (["a", "b", "c", "d", "e"], "(a, b, c and 2 more)")],
)
def test_out_refuses_a_folder_of_other_files(capsys, tmp_path, names, listed):
    for name in names:
        (tmp_path / name).write_text("step,x\n1,2\n")
    before = contents(tmp_path)
    code, _, err = run_cli(capsys, "train", "--algo", "drq", "--task", "cartpole_swingup", "--out", str(tmp_path))
    assert code == 2 and len(err.splitlines()) == 1
    assert f"holds files that are not an unseen run's {listed}; choose a new or empty folder for --out" in err
    assert contents(tmp_path) == before


def test_a_sweep_restarts_a_run_without_a_checkpoint_through_train_restart(tmp_path):
    spec = sweep.load_spec(sweep_file(tmp_path, seeds=[1]))
    job = sweep.plan(spec)[0]
    job.run_dir.mkdir(parents=True)
    save_config(sweep.job_config(job, spec), job.run_dir / "config.yaml")
    (job.run_dir / "notes.txt").write_text("mine")
    commands: list[list[str]] = []
    records = sweep.shift_records(spec)
    sweep.run_cell(job, spec, records, 1, lambda command: commands.append(command) or False)
    assert commands[0][3:] == ["train", "--restart", str(job.run_dir)]
    assert (job.run_dir / "notes.txt").read_text() == "mine"  # the sweep itself deleted nothing


# ----- 5. settings a resume cannot change; paths that hold from any folder --------------------------------------------


@pytest.mark.parametrize("flag", ["--resume", "--restart"])
@pytest.mark.parametrize(("given", "dropped"), [(["--seed", "3"], "--seed"), (["--preset", "paper"], "--preset"),
                                                (["--set", "train.steps=9"], "--set")])
def test_a_resume_or_restart_refuses_new_settings(capsys, tmp_path, flag, given, dropped):
    code, _, err = run_cli(capsys, "train", flag, str(tmp_path), *given)
    assert code == 2 and f"{flag} takes the run's saved config; drop {dropped}" in err


def test_paths_of_a_run_are_saved_absolute(tmp_path, monkeypatch):
    (tmp_path / "pictures").mkdir()
    monkeypatch.chdir(tmp_path)
    cfg = make_config("cg2a", "cartpole_swingup", "smoke")
    cfg.env.image_size = 32
    cfg.agent.overlay_dir = "pictures"
    resolved, env = train.resolved(cfg, tmp_path / "run")
    env.close()
    assert resolved.agent.overlay_dir == str((tmp_path / "pictures").resolve())


# ----- 6. SIGKILL at random (seeded) moments, during checkpoint and log writes too -----------------------------------

KILLED = """
import os, signal, sys
from unseen import logs, rundir, train
from unseen.cli import main

kind, n = sys.argv[1], int(sys.argv[2])
calls = []


def die():
    os.kill(os.getpid(), signal.SIGKILL)


def counted():
    calls.append(1)
    return len(calls) == n


if kind == "step":  # before step n
    train_step = train.Trainer.train_step
    train.Trainer.train_step = lambda self: die() if self.step == n else train_step(self)
elif kind in ("in checkpoint", "after checkpoint"):  # the session's n-th checkpoint half-written, or just renamed
    write_atomic = train.write_atomic

    def write(path, data, remedy=""):
        if path.name == "latest.pt" and counted():
            if kind == "in checkpoint":
                rundir.temporary(path).write_bytes(data[: len(data) // 2])
                die()
            write_atomic(path, data, remedy)
            die()
        write_atomic(path, data, remedy)

    train.write_atomic = write
elif kind == "in log row":  # the session's n-th log row half-written
    write_row = logs.CsvLog.write

    def write_half(self, row):
        if counted():
            with self.path.open("a") as handle:
                handle.write(",".join(map(str, row.values()))[:9])
            die()
        write_row(self, row)

    logs.CsvLog.write = write_half
sys.exit(main(sys.argv[3:]))
"""


def test_a_run_killed_at_random_moments_ends_as_the_uninterrupted_one(tmp_path, whole):
    rng = np.random.default_rng(20)
    # From the checkpoint at 25 killed before a step, at 25 again with the next checkpoint half-written, after the
    # checkpoint at 50 or 75 is renamed, then while the next log row is written (train.csv's at 63 or the final
    # evaluation's at 80), before one of the last steps; then to the end.
    kills = [("step", int(rng.integers(26, 50))), ("in checkpoint", 1), ("after checkpoint", int(rng.integers(1, 3))),
             ("in log row", 1), ("step", int(rng.integers(76, 80))), ("none", 0)]
    run = tmp_path / "run"
    start = ["train", "--algo", "drq", "--task", "cartpole_swingup", "--preset", "smoke", "--steps", str(STEPS),
             "--out", str(run), "--set", *tiny_overrides(short_config())]
    for session, (kind, n) in enumerate(kills):
        argv = start if session == 0 else ["train", "--resume", str(run)]
        done = subprocess.run([sys.executable, "-c", KILLED, kind, str(n), *argv], capture_output=True, text=True,
                              timeout=600, check=False)
        assert done.returncode == (0 if kind == "none" else -signal.SIGKILL), (kind, n, done.stderr[-2000:])
        if kind == "in checkpoint":
            assert (run / "checkpoints" / "latest.tmp").exists()  # the half-written checkpoint is left behind
        if kind == "in log row":
            assert any(not (run / log).read_bytes().endswith(b"\n") for log in ("train.csv", "eval.csv"))
    assert_equal_runs(whole, run)
