"""Exceptions the command line turns into one line and an exit code."""


class UserError(Exception):
    """Bad input a user can fix: the message says what is wrong and how to fix it."""


class Interrupted(Exception):
    """Training stopped on a signal after writing a checkpoint; `signum` is the signal."""

    def __init__(self, signum: int, step: int) -> None:
        super().__init__(f"stopped by signal {signum} at step {step}")
        self.signum, self.step = signum, step
