"""The DeepMind Control family's registry entry: dm_control's benchmarking suite under the DMControl-GB and
Distracting Control Suite shifts. It loads neither MuJoCo nor dm_control (the environments are `unseen.envs.dmc`, the
names `unseen.envs.dmc_tasks`): listing tasks, shifts and command-line flags stays cheap and works without a GL
backend."""

from __future__ import annotations

from typing import Any

from unseen.envs.dmc_tasks import SHIFTS, SOURCE_HELP, SUITE, default_action_repeat
from unseen.envs.family import EnvFamily


def make(task: str, shift: str = "none", seed: int = 0, **options: Any) -> Any:
    """`unseen.envs.dmc.make_dmc`, imported on first use (it loads MuJoCo and the GL backend)."""
    from unseen.envs.dmc import make_dmc

    return make_dmc(task, shift, seed, **options)


def shift_record(shift: str, **sources: Any) -> dict[str, Any]:
    """What runs record about `shift`'s data (`ShiftConfig.record`), checked and loaded as `make` would."""
    from unseen.envs.shifts import resolve_shift

    return resolve_shift(shift, **sources).record


FAMILY = EnvFamily(
    name="dmc",
    title="DMControl",
    tasks=tuple(SUITE),
    shifts=SHIFTS,
    make=make,
    action_repeat=default_action_repeat,
    # A reward of at most 1 per simulator step over the suite's 1000-step episodes.
    score_range=(0.0, 1000.0),
    source_options=tuple(SOURCE_HELP),
    option_help=SOURCE_HELP,
    shift_record=shift_record,
)
