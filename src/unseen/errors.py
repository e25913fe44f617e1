"""Exceptions the command line turns into one line and an exit code."""


class UserError(Exception):
    """Bad input a user can fix: the message says what is wrong and how to fix it."""


class InputError(UserError, ValueError):
    """A bad argument to the library (unknown name, missing or corrupt data): a `ValueError` for Python
    callers, as the `make_env` contract says, and a `UserError` that the command line prints as one line."""


class Stopped(Exception):
    """A command stopped on a signal before writing anything (its child processes ended first); `signum` is the
    signal."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"stopped by signal {signum}")
        self.signum = signum


class Interrupted(Exception):
    """Training stopped on a signal after writing a checkpoint; `signum` is the signal."""

    def __init__(self, signum: int, step: int) -> None:
        super().__init__(f"stopped by signal {signum} at step {step}")
        self.signum, self.step = signum, step


class Damaged(InputError):
    """A file of a run directory that its checkpoint counts on is missing, cut short or changed since: resuming
    would train on other data than the run had (the message names the file; `unseen.train.resume` adds the way out)."""


class DiskFull(UserError):
    """Not enough free disk space for what a run must write; the message says how much is needed and free."""
