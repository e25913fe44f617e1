"""Pixel environments from every registered family: `make_env(task, shift, seed, **options)`, the names in `TASKS`
and `SHIFTS`, and the registry of families (`FAMILIES`, `register_family`, `family_of`).

A family (`unseen.envs.family.EnvFamily`) declares its tasks, shifts, constructor, default action repeat, score range
and data-source options; everything here is derived from the registry, so a new family is one module and one
`register_family` line below.
"""

from __future__ import annotations

import os
from typing import Any

# The GL backend is chosen when mujoco and dm_control are first imported: EGL renders headless on Mesa.
os.environ.setdefault("MUJOCO_GL", "egl")

from unseen.envs import dmc_family, xarm_family
from unseen.envs.family import Env, EnvFamily
from unseen.errors import InputError

FAMILIES: dict[str, EnvFamily] = {}
"""Every registered family by name, in registration order."""


def register_family(family: EnvFamily) -> EnvFamily:
    """Add `family` to the registry; its name and task names must be new and its shifts start with "none"."""
    if family.name in FAMILIES:
        raise ValueError(f"an environment family named {family.name!r} is registered already")
    taken = sorted(set(family.tasks) & set(all_tasks()))
    if taken:
        raise ValueError(f"tasks {', '.join(taken)} of family {family.name!r} belong to another family")
    if not family.shifts or family.shifts[0] != "none":
        raise ValueError(f"the shifts of family {family.name!r} must start with 'none' (the training environment)")
    low, high = family.score_range
    if not low < high:
        raise ValueError(f"score_range of family {family.name!r} must be (low, high) with low < high")
    for task, (task_low, task_high) in family.task_ranges.items():
        if task not in family.tasks or not low <= task_low < task_high <= high:
            raise ValueError(f"task_ranges of family {family.name!r}: {task!r} must be one of its tasks, with a range "
                             f"(low, high), low < high, inside its score_range {family.score_range}")
    FAMILIES[family.name] = family
    return family


def all_tasks() -> tuple[str, ...]:
    """Every task of every registered family, family by family."""
    return tuple(task for family in FAMILIES.values() for task in family.tasks)


def all_shifts() -> tuple[str, ...]:
    """Every shift of some family, "none" first, each once, in registration order."""
    return tuple(dict.fromkeys(shift for family in FAMILIES.values() for shift in family.shifts))


def all_source_options() -> dict[str, str]:
    """Every family's data-source options with their command-line help."""
    return {name: family.option_help.get(name, f"{family.name}: {name}")
            for family in FAMILIES.values() for name in family.source_options}


def source_flag(option: str) -> str:
    """The command-line flag of a data-source option: `video_dir` is `--video-dir`."""
    return "--" + option.replace("_", "-")


def family_of(task: str) -> EnvFamily:
    """The family `task` belongs to; `InputError` listing every task if none."""
    for family in FAMILIES.values():
        if task in family.tasks:
            return family
    raise InputError(f"unknown task {task!r}; valid tasks: {', '.join(all_tasks())}")


def families_of(tasks: Any) -> list[EnvFamily]:
    """The families of `tasks`, each once, in registration order."""
    wanted = {family_of(task).name for task in tasks}
    return [family for family in FAMILIES.values() if family.name in wanted]


def shift_record(task: str, shift: str, **sources: Any) -> dict[str, Any]:
    """Check `shift` of `task`'s family and the data options that family takes (others are an error), without making
    an environment; returns what runs record about the shift's data."""
    family = family_of(task)
    foreign = sorted(set(sources) - set(family.source_options))
    if foreign:
        raise InputError(f"{family.name} tasks take no data option(s) {', '.join(foreign)}; "
                         f"valid: {', '.join(family.source_options)}")
    return family.check_shift(shift, **sources)


def check_shifts(task: str, shifts: list[str], sources: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """Check every shift of `shifts` against `task`'s family and the data options for each; returns per shift what
    runs record about its data (`shift_record`). Fails on the first problem (a shift named twice is one), before
    anything runs."""
    family = family_of(task)
    unknown = [shift for shift in shifts if shift not in family.shifts]
    if unknown:
        raise InputError(f"unknown shift(s) {', '.join(unknown)}; valid shifts: {', '.join(family.shifts)}")
    twice = [shift for i, shift in enumerate(shifts) if shift in shifts[:i]]
    if twice:
        raise InputError(f"shift {twice[0]} is named twice; name each shift once")
    return {shift: shift_record(task, shift, **(sources or {})) for shift in shifts}


def make_env(task: str, shift: str = "none", seed: int = 0, **options: Any) -> Env:
    """`task` seen through pixels under distribution `shift`, made by the task's family.

    DMControl (`unseen.envs.dmc`; see docs/shifts.md) takes: `image_size` (84), `frame_stack` (3), `action_repeat`
    (the task's default: cartpole 8, finger 2, others 4), `render_shadows` (False), `true_factors` (False: True puts
    the factors of the newest frame in the info of `reset` and `step`, see `PixelEnv.factors`); and the data of the
    shifts: `video_dir` (a directory in DMControl-GB's video format; default: procedural videos), `color_file` (a
    colour table in the format of DMControl-GB's `color_*.json`; default: our generated tables), `intensity`
    (distracting_cs: one of `INTENSITIES` or easy/medium/hard; default 0.1), `video_mode` ("fast" or "fidelity",
    video shifts). The same seed and the same actions give the same observations and rewards. (Overlay images are
    the agents' data, not the environment's: `agent.overlay_dir`, `unseen train --image-dir`.) Bad input raises
    `ValueError` (`InputError`).

    xArm (`unseen.envs.xarm`; see docs/xarm.md), tasks `xarm_reach` and `xarm_peg_in_box`, shifts none, test1, test2,
    test3, takes `image_size` (84), `frame_stack` (1), `action_repeat` (1), `render_shadows`, `true_factors` and
    `action_space` ("xy" or "xyz"); its info has `success`.
    """
    return family_of(task).make(task, shift, seed, **options)


register_family(dmc_family.FAMILY)
register_family(xarm_family.FAMILY)

TASKS: tuple[str, ...] = all_tasks()
"""Every task when this module was imported (families registered later: `all_tasks()`)."""
SHIFTS: tuple[str, ...] = all_shifts()
"""Every shift when this module was imported (families registered later: `all_shifts()`)."""
SOURCE_OPTIONS: tuple[str, ...] = tuple(all_source_options())
"""Every family's data-source option names when this module was imported."""



def __getattr__(name: str) -> Any:
    # DMControl's environment class and option values load MuJoCo and the GL backend: on first use, not on import.
    if name in ("PixelEnv", "INTENSITIES", "VIDEO_MODES"):
        from unseen.envs import dmc, shifts

        return getattr(dmc if name == "PixelEnv" else shifts, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "FAMILIES", "INTENSITIES", "SHIFTS", "SOURCE_OPTIONS", "TASKS", "VIDEO_MODES", "Env", "EnvFamily", "PixelEnv",
    "all_shifts", "all_source_options", "all_tasks", "family_of", "make_env", "register_family", "shift_record",
]
