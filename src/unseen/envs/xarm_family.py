"""The xArm family's registry entry: the Reach and Peg in Box scenes of Look Closer with SGQN's test scenes (CG2A's
Table 3), and the protocol they were trained with. Plain data, like `unseen.envs.dmc_family`: it loads no simulator
(the environments are `unseen.envs.xarm`, imported when one is made). docs/xarm.md has the sources of every number.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from unseen.envs.family import EnvFamily
from unseen.envs.xarm_tasks import SHIFTS, SOURCES, TASKS

PRESETS: dict[str, dict[str, Any]] = {
    # CG2A §5.2: "We train all agents for 250,000 steps" (SGQN's scripts/*.sh: --train_steps 250k). Everything else is
    # the common `paper` preset, which is SGQN's robot arguments.py too (batch 128, 1,000 seed steps, an evaluation
    # every 10k steps, the 11-layer trunk, 1024-unit MLPs), but for its 30 episodes per evaluation.
    "paper": {"train.steps": 250_000, "train.eval_episodes": 30},
    # Measured on the 2-core AMD EPYC (docs/presets.md, "xArm"): the common cpu preset's 64x64 frames and 4-layer
    # trunk, 7,000 agent steps (140 episodes), about 1.5 h of one core for SAC.
    "cpu": {
        "train.steps": 7_000, "train.eval_every": 1_000, "train.checkpoint_every": 1_000, "train.eval_episodes": 5,
        "train.final_eval_episodes": 10,
    },
    # A few episodes: the smoke preset's purpose (does it run end to end) at 55 ms of rendering per step.
    "smoke": {
        "train.steps": 300, "train.seed_steps": 100, "train.eval_every": 150, "train.checkpoint_every": 150,
        "train.final_eval_episodes": 2,
    },
}
"""Where the family's protocol differs from the common presets (`EnvFamily.presets`)."""


def make(task: str, shift: str = "none", seed: int = 0, **options: Any) -> Any:
    """`unseen.envs.xarm.make`, imported on first use (it loads MuJoCo and the GL backend)."""
    from unseen.envs.xarm import make as make_xarm

    return make_xarm(task, shift, seed, **options)


def shift_record(shift: str, **sources: Any) -> dict[str, Any]:
    """What runs record about a scene: its name as `SOURCES` gives it (the scenes need no data options)."""
    return {"source": SOURCES[shift]}


FAMILY = EnvFamily(
    name="xarm",
    title="xArm",
    tasks=TASKS,
    shifts=SHIFTS,
    make=make,
    # No action repeat in the original code; one frame per observation (SGQN arguments.py line 11; CG2A §5.1: "a
    # single frame" for the manipulation tasks).
    action_repeat=lambda task: 1,
    frame_stack=1,
    # Bounds of a 50-step return, from the rewards and the workspace (d_xy <= ~0.6 m): Reach -165 (x-y-z
    # actions; -140 x-y) to 50; Peg in Box -270 (-220) to 500 (372 under x-y, where the peg hangs >= 0.128 m
    # above the goal point). One range serves both tasks' scores: the lowest low, the highest high; Reach's curves
    # span its own range.
    score_range=(-270.0, 500.0),
    task_ranges=MappingProxyType({"xarm_reach": (-165.0, 50.0)}),
    source_options=(),
    shift_record=shift_record,
    presets=MappingProxyType({name: MappingProxyType(values) for name, values in PRESETS.items()}),
    success=True,
)
