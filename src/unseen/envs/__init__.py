"""Pixel environments: `make_env(task, shift, seed, **options)`, and the names in `TASKS` and `SHIFTS`."""

from __future__ import annotations

import os
from typing import Any

# The GL backend is chosen when mujoco and dm_control are first imported: EGL renders headless on Mesa.
os.environ.setdefault("MUJOCO_GL", "egl")

from unseen.envs.dmc import PixelEnv, suite
from unseen.envs.shifts import INTENSITIES, SHIFTS, VIDEO_MODES, ShiftConfig, resolve_shift
from unseen.envs.sources import ImageSource, image_source
from unseen.errors import InputError

# Every task of dm_control's benchmarking suite, named `domain_task` as DMControl-GB and DrQ name them.
_SUITE = {f"{domain}_{task}": (domain, task) for domain, task in suite.BENCHMARKING}
TASKS: tuple[str, ...] = tuple(sorted(_SUITE))

_OPTIONS = ("image_size", "frame_stack", "action_repeat", "render_shadows", "true_factors")
SOURCE_OPTIONS = ("video_dir", "image_dir", "color_file", "intensity", "video_mode")
"""Options about a shift's data; every shift accepts them and uses those that concern it."""


def resolve_sources(shift: str, **sources: Any) -> tuple[ShiftConfig, ImageSource]:
    """Check `shift` and its data options (`SOURCE_OPTIONS`) and load what they name; `ValueError` if bad."""
    overlays = image_source(sources.pop("image_dir", None))
    return resolve_shift(shift, **sources), overlays


def make_env(task: str, shift: str = "none", seed: int = 0, **options: Any) -> PixelEnv:
    """A DMControl `task` seen through pixels under distribution `shift` (see `SHIFTS`, docs/shifts.md).

    Options: `image_size` (84), `frame_stack` (3), `action_repeat` (the task's default: cartpole 8,
    finger 2, others 4), `render_shadows` (False), `true_factors` (False: True puts the factors of the newest
    frame in the info of `reset` and `step`, see `PixelEnv.factors`); and the data of the shifts: `video_dir`
    (a directory in DMControl-GB's video format; default: procedural videos), `color_file` (a colour table in the format
    of DMControl-GB's `color_*.json`; default: our generated tables), `intensity` (distracting_cs: one of
    `INTENSITIES` or easy/medium/hard; default 0.1), `video_mode` ("fast" or "fidelity", video shifts),
    `image_dir` (overlay images for augmentations, `env.image_source`; default: procedural). The same seed
    and the same actions give the same observations and rewards. Bad input raises `ValueError`.
    """
    from unseen.config import default_action_repeat

    if task not in _SUITE:
        raise InputError(f"unknown task {task!r}; valid tasks: {', '.join(TASKS)}")
    unknown = sorted(set(options) - set(_OPTIONS) - set(SOURCE_OPTIONS))
    if unknown:
        valid = ", ".join(_OPTIONS + SOURCE_OPTIONS)
        raise InputError(f"unknown option(s) {', '.join(unknown)}; valid options: {valid}")
    config, overlays = resolve_sources(shift, **{name: options.pop(name) for name in SOURCE_OPTIONS if name in options})
    options.setdefault("action_repeat", default_action_repeat(task))
    domain, name = _SUITE[task]
    return PixelEnv(domain, name, seed=seed, shift=config, image_source=overlays, **options)


__all__ = ["INTENSITIES", "SHIFTS", "SOURCE_OPTIONS", "TASKS", "VIDEO_MODES", "PixelEnv", "make_env", "resolve_sources"]
