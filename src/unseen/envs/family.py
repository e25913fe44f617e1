"""The seam between `make_env` and a family of environments (DMControl, xArm, ...): what each family tells it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class EnvFamily:
    """One family of pixel environments: its names, its constructor and its defaults."""

    name: str
    """The family's name ("dmc", "xarm")."""
    tasks: tuple[str, ...]
    """Its tasks, as `make_env` and the command line name them."""
    shifts: tuple[str, ...]
    """Its shifts; the first, "none", is the training scene."""
    make: Callable[..., Any]
    """`make(task, shift="none", seed=0, **options) -> env`."""
    action_repeat: Callable[[str], int]
    """The default action repeat of a task."""
    score_range: tuple[float, float]
    """(low, high) of an episode return: the normaliser and the plot limits."""
    source_options: tuple[str, ...]
    """The data options its shifts accept (`make` options; none for a family whose shifts need no data)."""
