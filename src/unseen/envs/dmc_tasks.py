"""DeepMind Control's names: the benchmarking suite's tasks, the benchmark's shifts, the shifts' data options and
the protocol's action repeats. Plain data, read by the family's registry entry (`unseen.envs.dmc_family`) and by
the environments (`unseen.envs.dmc`, `unseen.envs.shifts`)."""

from __future__ import annotations

SUITE: dict[str, tuple[str, str]] = {
    f"{domain}_{task}": (domain, task)
    for domain, task in (
        ("acrobot", "swingup"), ("acrobot", "swingup_sparse"), ("ball_in_cup", "catch"), ("cartpole", "balance"),
        ("cartpole", "balance_sparse"), ("cartpole", "swingup"), ("cartpole", "swingup_sparse"), ("cheetah", "run"),
        ("finger", "spin"), ("finger", "turn_easy"), ("finger", "turn_hard"), ("fish", "swim"), ("fish", "upright"),
        ("hopper", "hop"), ("hopper", "stand"), ("humanoid", "run"), ("humanoid", "stand"), ("humanoid", "walk"),
        ("manipulator", "bring_ball"), ("pendulum", "swingup"), ("point_mass", "easy"), ("reacher", "easy"),
        ("reacher", "hard"), ("swimmer", "swimmer15"), ("swimmer", "swimmer6"), ("walker", "run"),
        ("walker", "stand"), ("walker", "walk"),
    )
}
"""Every task of dm_control's benchmarking suite (`suite.BENCHMARKING`, checked by a test), named `domain_task` as
DMControl-GB and DrQ name them, with its (domain, task)."""

SHIFTS: tuple[str, ...] = ("none", "color_easy", "color_hard", "video_easy", "video_hard", "distracting_cs")
"""The benchmark's shifts (`unseen.envs.shifts`)."""

SOURCE_HELP = {
    "video_dir": "videos in DMControl-GB's format (video0.mp4, ...) for video_* and distracting_cs",
    "color_file": "a colour table in the format of DMControl-GB's color_*.json for color_*",
    "intensity": "distracting_cs: 0.025 0.05 0.1 0.15 0.2 0.3 0.4 0.5 or easy/medium/hard (default: 0.1)",
    "video_mode": "video_*: fast (segmentation, default) or fidelity (DMControl-GB's green screen)",
}
"""Options about a shift's data, with their command-line help; every shift accepts them and uses those that
concern it."""


def default_action_repeat(task: str) -> int:
    """Action repeat of the DMControl-GB protocol: cartpole 8, finger 2, everything else 4."""
    domain = task.split("_")[0]
    return {"cartpole": 8, "finger": 2}.get(domain, 4)
