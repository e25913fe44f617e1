"""The one exception type for mistakes a user can make; the CLI prints its message as one line."""


class UserError(Exception):
    """Bad input a user can fix: the message says what is wrong and how to fix it."""
