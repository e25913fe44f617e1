"""The seam for environment families: what a family declares (`EnvFamily`) and what the rest of unseen uses of
the environments it makes (`Env`).

A family is one simulator's set of tasks seen through pixels, e.g. DMControl (`unseen.envs.dmc.FAMILY`). It is
registered in `unseen.envs` (`register_family`); `make_env`, `TASKS`, the shifts a task has, action repeats, score
normalisation, plot limits and the command line's data-source flags are all read from the registry. This module
imports nothing heavy, so that registering a family never loads a simulator it does not need.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol

import numpy as np

from unseen.errors import InputError


class Env(Protocol):
    """What the trainer, the evaluator and the reports use of an environment (`unseen.envs.dmc.PixelEnv` is the
    reference): gymnasium's `reset`/`step`/`render`/`close` with uint8 `(3 * frame_stack, H, W)` observations and
    actions in [-1, 1], plus full-state checkpoints and the true factors of each frame."""

    action_space: Any
    """`gymnasium.spaces.Box(-1, 1, (A,), float32)`."""
    observation_space: Any
    """`gymnasium.spaces.Box(0, 255, obs_shape, uint8)`."""
    shift: Any
    """The shift shown, with its data; `shift.name` and `shift.record` (what runs record about its source)."""
    episode_steps: int
    """Agent steps taken in the current episode."""
    factor_names: tuple[str, ...]
    """Names of the true factors of a frame (`info["factors"]` with `true_factors=True`)."""
    angle_factors: tuple[str, ...]
    """Factors that are unbounded angles: the picture repeats every 2 pi of them."""

    @property
    def obs_shape(self) -> tuple[int, int, int]: ...

    @property
    def max_episode_steps(self) -> int: ...

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]: ...

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]: ...

    def observation(self) -> np.ndarray:
        """The current frame stack."""
        ...

    def get_state(self) -> dict[str, Any]: ...

    def set_state(self, state: dict[str, Any]) -> None: ...

    def render(self) -> np.ndarray: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class EnvFamily:
    """One family of pixel environments and everything the rest of unseen needs to know about it."""

    name: str
    """Short name, e.g. "dmc"."""
    tasks: tuple[str, ...]
    """Task names; unique across all registered families."""
    shifts: tuple[str, ...]
    """Distribution shifts of the family's tasks, "none" (the training environment) first."""
    make: Callable[..., Any]
    """`make(task, shift="none", seed=0, **options) -> Env`; bad input raises `unseen.errors.InputError`."""
    action_repeat: Callable[[str], int]
    """Default action repeat of a task (simulator steps per agent step)."""
    score_range: tuple[float, float]
    """(low, high) of an episode's return: scores are normalised to (return - low) / (high - low), plots span it."""
    source_options: tuple[str, ...]
    """`make` options naming the data of the shifts (videos, colour tables, ...); the command line offers each as a
    `--flag`."""
    title: str = ""
    """How reports name the family, e.g. "DMControl" (empty: `name`)."""
    task_ranges: Mapping[str, tuple[float, float]] = field(default_factory=lambda: MappingProxyType({}))
    """Per task, (low, high) of its own returns where they are narrower than `score_range`: its curves span that
    (scores stay normalised by `score_range`, so one scale holds across the family's tasks)."""
    option_help: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    """Command-line help of each of `source_options`."""
    shift_record: Callable[..., Mapping[str, Any]] | None = None
    """`shift_record(shift, **source_options)`: check a shift's data options and say what runs record about its data
    (e.g. `{"source": "procedural"}`) without making an environment; None: the family's shifts need no data."""
    frame_stack: int = 3
    """Default frames stacked per observation (`EnvConfig.frame_stack` of every preset): DMControl-GB's 3."""
    presets: Mapping[str, Mapping[str, Any]] = field(default_factory=lambda: MappingProxyType({}))
    """Per preset (`unseen.config.PRESETS`), the config fields (`section.field` -> value) in which the family's
    published protocol differs from the common preset; `unseen.config.make_config` applies them after the preset and
    before the algorithm's own hook. Empty: the common presets (DMControl's)."""
    success: bool = False
    """Whether its environments put `success` (the episode reached its goal) in every step's info: evaluations then
    record each shift's success rate beside its return."""

    def check_shift(self, shift: str, **sources: Any) -> dict[str, Any]:
        """What runs record about `shift`'s data; `InputError` for a shift the family does not have or bad options."""
        if shift not in self.shifts:
            raise InputError(f"unknown shift {shift!r} for {self.name} tasks; valid shifts: {', '.join(self.shifts)}")
        return dict(self.shift_record(shift, **sources)) if self.shift_record else {"source": "none"}

    def curve_range(self, task: str) -> tuple[float, float]:
        """The y-range of `task`'s learning curves: its own range in `task_ranges`, else `score_range`."""
        return self.task_ranges.get(task, self.score_range)

    def normalised(self, value: Any) -> Any:
        """`value` (a return, or an array of them) as a fraction of the score range: a score."""
        low, high = self.score_range
        return (value - low) / (high - low)

    def score_formula(self, noun: str = "return") -> str:
        """How a score is computed from `noun`, e.g. "return / 1000"."""
        low, high = self.score_range
        return f"{noun} / {high:g}" if low == 0 else f"({noun} - {low:g}) / {high - low:g}"

    def score_note(self) -> str:
        """The formula with what the range is, for captions, e.g. "returns / 1000 (DMControl's maximum)"."""
        low, high = self.score_range
        what = "maximum" if low == 0 else f"range [{low:g}, {high:g}]"
        return f"{self.score_formula('returns')} ({self.title or self.name}'s {what})"
