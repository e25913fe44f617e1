"""Pixel environments: `make_env(task, shift, seed, **options)`, and the names in `TASKS` and `SHIFTS`."""

from __future__ import annotations

import os
from typing import Any

# The GL backend is chosen when mujoco and dm_control are first imported: EGL renders headless on Mesa.
os.environ.setdefault("MUJOCO_GL", "egl")

from unseen.envs.dmc import PixelEnv, suite  # noqa: E402

# Every task of dm_control's benchmarking suite, named `domain_task` as DMControl-GB and DrQ name them.
_SUITE = {f"{domain}_{task}": (domain, task) for domain, task in suite.BENCHMARKING}
TASKS: tuple[str, ...] = tuple(sorted(_SUITE))

# The distribution shifts that exist in this version (the benchmark's colour, video and distracting
# shifts land with their own issue).
SHIFTS: tuple[str, ...] = ("none",)

_OPTIONS = ("image_size", "frame_stack", "action_repeat", "render_shadows")


def make_env(task: str, shift: str = "none", seed: int = 0, **options: Any) -> PixelEnv:
    """A DMControl `task` seen through pixels under distribution `shift`.

    Options: `image_size` (84), `frame_stack` (3), `action_repeat` (the task's default: cartpole 8,
    finger 2, others 4), `render_shadows` (False). The same seed and the same actions give the same
    observations and rewards.
    """
    from unseen.config import default_action_repeat

    if task not in _SUITE:
        raise ValueError(f"unknown task {task!r}; valid tasks: {', '.join(TASKS)}")
    if shift not in SHIFTS:
        raise ValueError(f"unknown shift {shift!r}; valid shifts: {', '.join(SHIFTS)}")
    unknown = sorted(set(options) - set(_OPTIONS))
    if unknown:
        raise ValueError(f"unknown option(s) {', '.join(unknown)}; valid options: {', '.join(_OPTIONS)}")
    options.setdefault("action_repeat", default_action_repeat(task))
    domain, name = _SUITE[task]
    return PixelEnv(domain, name, seed=seed, **options)


__all__ = ["SHIFTS", "TASKS", "PixelEnv", "make_env"]
