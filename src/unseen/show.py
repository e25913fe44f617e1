"""`unseen show`: a picture of what the agent sees under each shift, one row per shift."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from unseen.envs import check_shifts, family_of, make_env
from unseen.errors import InputError
from unseen.rundir import output_folder

MAX_FRAMES = 20
"""Frames per row at most: a picture a screen shows whole (1.6 inches each), all within the first quarter of every
family's episodes."""


def episode_frames(
    task: str, shift: str, frames: int, seed: int, **options: Any
) -> tuple[list[np.ndarray], list[int], str]:
    """`frames` frames `(H, W, 3)` of one episode under random actions (seeded), spread over its first
    quarter (random actions soon push cartpole's cart out of view), the agent steps they were taken at, and
    the shift's data source."""
    env = make_env(task, shift, seed=seed, **options)
    try:
        stride = max(1, env.max_episode_steps // (4 * frames))
        actions = np.random.default_rng(seed).uniform(-1, 1, (stride * (frames - 1), *env.action_space.shape))
        env.reset(seed=seed)
        pictures, steps = [env.render()], [0]
        for step, action in enumerate(actions, start=1):
            env.step(action)
            if step % stride == 0:
                pictures.append(env.render())
                steps.append(step)
        return pictures, steps, env.shift.source
    finally:
        env.close()


def draw_gallery(task: str, shifts: list[str], out: Path, frames: int = 5, seed: int = 0, **options: Any) -> Path:
    """Write a PNG to `out`: a row of `frames` frames per shift, labelled with the shift, its data source and
    the agent step of each frame. The arguments, the shifts' data and `out`'s folder are checked first."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    if out.suffix.lower() != ".png":
        raise InputError(f"--out must name a .png file, got {out}")
    if not 1 <= frames <= MAX_FRAMES:
        raise InputError(f"--frames must lie in 1..{MAX_FRAMES}, got {frames}")
    check_shifts(task, shifts, {k: v for k, v in options.items() if k in family_of(task).source_options})
    output_folder(out.parent)
    rows = [episode_frames(task, shift, frames, seed, **options) for shift in shifts]
    figure, axes = plt.subplots(len(shifts), frames, figsize=(1.6 * frames + 1.2, 1.75 * len(shifts)), squeeze=False)
    for (pictures, steps, source), shift, row in zip(rows, shifts, axes, strict=True):
        for axis, picture, step in zip(row, pictures, steps, strict=True):
            axis.imshow(picture, interpolation="nearest")
            axis.set_xticks([])
            axis.set_yticks([])
            axis.set_title(f"step {step}", fontsize=7, pad=2)
        label = shift if source == "none" else f"{shift}\n{Path(source).name if '/' in source else source}"
        row[0].set_ylabel(label, fontsize=8)
    figure.suptitle(f"{task}, seed {seed}: what the agent sees under each shift", fontsize=9)
    figure.tight_layout()
    try:
        figure.savefig(out, dpi=110)
    except OSError as error:
        raise InputError(f"cannot write {out} ({error.strerror}); choose another --out") from None
    finally:
        plt.close(figure)
    return out
