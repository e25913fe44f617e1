"""Worker processes end with the process that started them: `unseen eval --workers 2` stopped by SIGTERM or killed by
SIGKILL leaves no worker (about 870 MB each at the paper's scale) behind."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest


def children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (/proc: psutil is not a dependency)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            # The name in /proc/PID/stat is in parentheses and may hold spaces: the parent pid is the 2nd field after.
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except (OSError, ValueError):
            continue  # not a process, or one that ended meanwhile
        if entry.name.isdigit() and int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie has ended: only its parent's wait is missing)."""
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


def ignores_sigint(pid: int) -> bool:
    """Whether `pid` ignores SIGINT: an evaluation worker does from its set-up on, right after asking to die with its
    parent."""
    for line in (Path("/proc") / str(pid) / "status").read_text().splitlines():
        if line.startswith("SigIgn:"):
            return bool(int(line.split()[1], 16) & (1 << (signal.SIGINT - 1)))
    return False


def workers_of(process: subprocess.Popen, count: int, seconds: float = 120.0) -> list[int]:
    """The `count` pool workers of `process` once each has set itself up (generous, for a loaded machine)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[1]
        ready = [pid for pid in children(process.pid) if alive(pid) and ignores_sigint(pid)]
        if len(ready) >= count:
            return ready
        time.sleep(0.1)
    raise AssertionError(f"the evaluation never had {count} workers")


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL])
def test_no_worker_outlives_a_stopped_evaluation(tmp_path, tiny_run, signum):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    log = (run / "eval.csv").read_bytes()
    command = [sys.executable, "-m", "unseen.cli", "eval", str(run), "--workers", "2", "--episodes", "200"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               env=os.environ | {"OMP_NUM_THREADS": "1"})
    try:
        workers = workers_of(process, 2)
        every_child = children(process.pid)  # the workers and multiprocessing's resource tracker
        os.kill(process.pid, signum)
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    if signum == signal.SIGTERM:  # it had its say: one line, and nothing written
        assert process.returncode == 128 + signum
        assert err.strip().splitlines()[-1] == "unseen eval: stopped by signal 15; nothing was written, run it again"
    else:
        assert process.returncode == -signum
    deadline = time.monotonic() + 30
    while any(alive(pid) for pid in every_child) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in every_child if alive(pid)], f"children of the evaluation survive it ({workers})"
    assert (run / "eval.csv").read_bytes() == log
