"""The xArm family's names: its tasks, its scenes and what runs record about each scene. Plain data, read by the
family's registry entry (`unseen.envs.xarm_family`) and by the environments (`unseen.envs.xarm`)."""

from __future__ import annotations

TASKS: tuple[str, ...] = ("xarm_reach", "xarm_peg_in_box")
SHIFTS: tuple[str, ...] = ("none", "test1", "test2", "test3")
"""`none` is the training scene; `test<i>` is SGQN's `*_test<i>.xml` (`registration.py` 30-42, 84-96)."""

SOURCES: dict[str, str] = {
    "none": "none",
    "test1": "SGQN test1 scene",
    "test2": "SGQN test2 scene",
    "test3": "SGQN test3 scene (stand-in table texture)",
}
"""What runs record as each scene's data source (`shift.source`): the test3 table picture is ours (docs/xarm.md)."""
