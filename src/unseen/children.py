"""Child processes that end with their parent, however it ends.

A worker pool's processes (`unseen eval`'s, about 870 MB each) and a sweep's children must not outlive the process
that started them: killed by SIGKILL, a parent runs no code, so the kernel must end them (`die_with_parent`, Linux's
PR_SET_PDEATHSIG); stopped by SIGINT or SIGTERM, it ends them first (`ending_children_on_signals`). Deliberately
light (no torch): `LAUNCHER` imports it before replacing itself with a sweep's command.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from unseen.errors import Stopped

PR_SET_PDEATHSIG = 1
"""prctl option: the signal the kernel sends this process when the thread that started it ends (linux/prctl.h)."""


def die_with_parent(parent: int, signum: int = signal.SIGKILL) -> None:
    """Have the kernel send `signum` to this process when its parent `parent` ends, and end at once if it already
    has (it may have ended before the request); Linux only, elsewhere nothing. The request outlives `exec`."""
    if sys.platform != "linux":
        return
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signum)
    if os.getppid() != parent:
        os._exit(128 + signum)


LAUNCHER = (
    "import os, signal, sys; from unseen.children import die_with_parent; "
    "die_with_parent(int(sys.argv[1]), signal.SIGTERM); os.execv(sys.argv[2], sys.argv[2:])"
)
"""`python -c LAUNCHER PARENT_PID COMMAND...`: COMMAND, which the kernel sends SIGTERM when PARENT_PID's thread that
started it ends (training checkpoints on SIGTERM and exits)."""


@contextmanager
def ending_children_on_signals() -> Iterator[None]:
    """In the block, SIGINT and SIGTERM end every child process of multiprocessing's (a worker pool's), then raise
    `Stopped` (the command line says so in one line): the block must write its results after it. Further signals are
    ignored while the block unwinds. In threads other than the main one (which cannot set handlers) the block runs
    as it is: `die_with_parent` still ends the children when the process dies."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: FrameType | None) -> None:
        for name in SIGNALS:
            signal.signal(name, signal.SIG_IGN)
        for child in multiprocessing.active_children():
            child.kill()
        raise Stopped(signum)

    previous = {signum: signal.signal(signum, stop) for signum in SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


SIGNALS = (signal.SIGINT, signal.SIGTERM)
"""The signals that stop a command (a terminal's Ctrl-C, a scheduler's or a sweep's SIGTERM)."""
