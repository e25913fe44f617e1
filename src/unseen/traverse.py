"""`unseen report traverse RUN_DIR`: latent traversals of an agent with a decoder (ALDA, SAC+AE).

One picture for one observation: a row per latent, that latent swept over a range of values while every other
latent keeps the observation's own value, each cell the decoded newest frame. The first two columns are the
observation's newest frame and its reconstruction (all latents at their own values), for reference.
  - ALDA: every latent, swept over its codebook (sorted): exactly the values its retrieval can return.
  - SAC+AE (no codebook): `VALUES` evenly spaced values from each latent's minimum to its maximum over a batch
    of `BATCH` observations, for the `ROWS` latents with the largest variance over that batch (of 50).
Observations come from the run's replay buffer (`RUN_DIR/replay/`) when it holds transitions, else from an
episode of seeded random actions in the run's training environment. The observation and the batch are
drawn with a fixed seed, so the picture of a checkpoint is always the same.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from unseen.agents import REGISTRY, Agent, Decoding
from unseen.config import RunConfig
from unseen.envs import Env
from unseen.errors import UserError
from unseen.evaluate import make_run_env
from unseen.replay import ReplayBuffer
from unseen.rundir import REPLAY_DIR, open_run, output_folder

BATCH = 256
"""Observations drawn: the first one is traversed; all of them give SAC+AE's latent ranges and variances."""
ROWS = 12
"""SAC+AE: latents shown, those of largest variance over the batch (ALDA shows all of its latents)."""
VALUES = 12
"""SAC+AE: values per sweep (ALDA sweeps its codebook: 12 values by default)."""
SEED = 0
"""Seed of the observations' sampling (or of the random actions that render them)."""


def traversable_algos() -> list[str]:
    """The algorithms whose agents have a decoder (`AgentSpec.decodes`)."""
    return [name for name, spec in REGISTRY.items() if spec.decodes]


def replay_observations(run_dir: Path, cfg: RunConfig, replay_state: dict, count: int) -> torch.Tensor | None:
    """`count` observation stacks sampled from the run's replay buffer, or None if it holds no transition."""
    directory = run_dir / REPLAY_DIR
    if not (directory / "frames.npy").is_file():
        return None
    frames = np.load(directory / "frames.npy", mmap_mode="r")
    actions = np.load(directory / "actions.npy", mmap_mode="r")
    replay = ReplayBuffer(len(frames), frames.shape[1:], actions.shape[1], cfg.env.frame_stack, directory)
    replay.load_state_dict(replay_state)
    if replay.transitions == 0:
        return None
    return replay.sample(count, np.random.default_rng(SEED))["obs"]


def rendered_observations(env: Env, count: int) -> torch.Tensor:
    """`count` observation stacks of `env` (the run's training environment) under seeded random actions."""
    rng = np.random.default_rng(SEED)
    obs, _ = env.reset(seed=SEED)
    stacks = []
    for _ in range(count):
        stacks.append(obs)
        obs, _, terminated, truncated, _ = env.step(rng.uniform(-1, 1, env.action_space.shape).astype(np.float32))
        if terminated or truncated:
            obs, _ = env.reset()
    return torch.from_numpy(np.stack(stacks))


def sweep_grid(latent: torch.Tensor, rows: list[int], values: torch.Tensor) -> torch.Tensor:
    """`(R, V, D)` latents: row r is `latent (D,)` with dimension `rows[r]` set to each of `values[r] (V,)`."""
    grid = latent.repeat(len(rows), values.shape[1], 1)
    grid[torch.arange(len(rows)), :, torch.tensor(rows)] = values
    return grid


def sweeps(agent: Agent, latents: torch.Tensor) -> tuple[list[int], torch.Tensor, str]:
    """Rows (latent indices), their values `(R, V)` and a phrase saying where the values come from."""
    if hasattr(agent, "codebook"):
        values = agent.codebook().sort(dim=1).values
        return list(range(len(values))), values, "its codebook values"
    rows = latents.var(dim=0).argsort(descending=True)[:ROWS].tolist()
    low, high = latents.min(dim=0).values[rows], latents.max(dim=0).values[rows]
    values = low[:, None] + (high - low)[:, None] * torch.linspace(0, 1, VALUES)
    return rows, values, f"its range over {len(latents)} observations ({len(rows)} of largest variance shown)"


def mosaic(cells: torch.Tensor, gap: int = 2) -> np.ndarray:
    """`(R, C, 3, H, W)` pictures in [0, 1] -> one `(R (H + gap) - gap, C (W + gap) - gap, 3)` image on white."""
    rows, columns, _, height, width = cells.shape
    image = np.ones((rows * (height + gap) - gap, columns * (width + gap) - gap, 3), np.float32)
    for r in range(rows):
        for c in range(columns):
            top, left = r * (height + gap), c * (width + gap)
            image[top : top + height, left : left + width] = cells[r, c].permute(1, 2, 0).clamp(0, 1).numpy()
    return image


def write_traversal(run_dir: Path, out: Path) -> Path:
    """Draw the traversal of `run_dir`'s latest checkpoint into `out/traversal.png`; returns the file."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    run = open_run(run_dir)
    cfg = run.cfg
    if cfg.algo not in traversable_algos():
        raise UserError(
            f"{run_dir} is a {cfg.algo} run, which has no decoder to traverse; "
            f"use a run of {', '.join(traversable_algos())}"
        )
    output_folder(out)
    env = make_run_env(cfg, "none", None)
    try:
        agent = run.restore(env)
        obs, source = replay_observations(run_dir, cfg, run.checkpoint["replay"], BATCH), "replay buffer"
        if obs is None:
            obs, source = rendered_observations(env, BATCH), f"random-action episode (seed {SEED})"
    finally:
        env.close()
    if not isinstance(agent, Decoding):  # the algo check above rules this out; the check tells the type checker
        raise TypeError(f"a {cfg.algo} agent has no decoder")
    obs = obs.to(agent.device)
    latents = agent.latents(obs)
    rows, values, origin = sweeps(agent, latents)
    swept = agent.decode(sweep_grid(latents[0], rows, values).flatten(0, 1))
    swept = swept.view(len(rows), values.shape[1], 3, *obs.shape[2:])
    reference = torch.stack([obs[0, -3:].float() / 255.0, agent.decode(latents[:1])[0]])
    cells = torch.cat([reference.expand(len(rows), -1, -1, -1, -1), swept], dim=1).cpu()

    height, width, gap = *obs.shape[2:], 2
    figure, axis = plt.subplots(figsize=(0.55 * cells.shape[1] + 0.8, 0.55 * len(rows) + 0.8))
    axis.imshow(mosaic(cells, gap), interpolation="nearest")
    axis.set_xticks([(c + 0.5) * (width + gap) for c in range(2)], ["input", "reconstruction"], fontsize=6)
    axis.set_yticks([(r + 0.5) * (height + gap) for r in range(len(rows))], [f"z{index}" for index in rows], fontsize=6)
    axis.tick_params(length=0)
    for r, row_values in enumerate(values.tolist()):
        for c, value in enumerate(row_values, start=2):
            axis.text(c * (width + gap) + 1, r * (height + gap) + 1, f"{value:.2f}", fontsize=3.5, color="white",
                      va="top", bbox={"facecolor": "black", "alpha": 0.45, "pad": 0.4, "linewidth": 0})
    axis.set_title(
        f"{cfg.algo} on {cfg.env.task}, step {run.step}: each row sweeps one latent over {origin},\n"
        f"the others held at the observation's own values (observations: {source})",
        fontsize=6,
    )
    figure.tight_layout()
    path = out / "traversal.png"
    figure.savefig(path, dpi=200)
    plt.close(figure)
    return path
