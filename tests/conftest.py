"""Shared fixtures and helpers: a tiny run configuration that trains in seconds (and as --set arguments), tiny agents
and batches, the benchmark data directory, environment rollouts, run directories' states and logs, and sweep files."""

from __future__ import annotations

import copy
import dataclasses
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from unseen.agents import make_agent
from unseen.config import RunConfig, make_config, to_dict
from unseen.envs import make_env
from unseen.rundir import CHECKPOINT_FILE

SHARED = Path(__file__).resolve().parents[2] / "shared"


def tiny_config(algo: str = "drq", steps: int = 60, seed: int = 0, task: str = "cartpole_swingup") -> RunConfig:
    """A run of a minute's fraction: 32x32 frames, 2 conv layers, small MLPs and latents, short schedule."""
    cfg = make_config(algo, task, "smoke", seed=seed, steps=steps)
    cfg.env.image_size = 32
    cfg.agent.encoder_layers = 2
    cfg.agent.encoder_filters = 8
    cfg.agent.projection_dim = 16
    cfg.agent.hidden_dim = 32
    own = {field.name for field in dataclasses.fields(cfg.agent)}
    for name, value in {"alda_mlp_dim": 32, "alda_embedding_dim": 16, "sac_ae_latent_dim": 8, "pad_head_layers": 1,
                        "soda_batch_size": 8, "overlay_pool": 16, "adapt_batch_size": 4}.items():
        if name in own:  # the algorithm's own small latents and batches
            setattr(cfg.agent, name, value)
    cfg.train.seed_steps = 20
    cfg.train.seed_updates = min(cfg.train.seed_updates, 20)  # DMControl-GB's burst; 1 where the algorithm has none
    cfg.train.batch_size = 8
    cfg.train.eval_every = 70
    cfg.train.eval_episodes = 1
    cfg.train.final_eval_episodes = 1
    cfg.train.checkpoint_every = 25
    cfg.train.tensorboard = False
    cfg.train.video = False
    return cfg


def tiny_overrides(cfg: RunConfig) -> list[str]:
    """The tiny config as --set arguments for the command line."""
    data = to_dict(cfg)
    return [f"{section}.{key}={value}" for section in ("env", "agent", "train") for key, value in data[section].items()]


OBS = (9, 32, 32)
"""Observation shape of the tiny agents: a stack of three 32x32 frames."""


def new_agent(algo: str = "sac", **agent_fields: Any) -> Any:
    """A tiny agent of `algo` on the CPU with 2-dimensional actions; `agent_fields` must be fields of its config."""
    cfg = tiny_config(algo).agent
    own = {field.name for field in dataclasses.fields(cfg)}
    for key, value in agent_fields.items():
        assert key in own, f"{algo} has no config field {key}"
        setattr(cfg, key, value)
    return make_agent(algo, OBS, 2, cfg, torch.device("cpu"), seed=0)


def batch(size: int = 8, seed: int = 0) -> dict[str, torch.Tensor]:
    """A replay batch of random observations, actions and rewards for the tiny agents."""
    g = torch.Generator().manual_seed(seed)
    return {
        "obs": torch.randint(0, 256, (size, *OBS), generator=g, dtype=torch.uint8),
        "action": torch.rand(size, 2, generator=g) * 2 - 1,
        "reward": torch.rand(size, generator=g),
        "discount": torch.ones(size),
        "next_obs": torch.randint(0, 256, (size, *OBS), generator=g, dtype=torch.uint8),
    }


def snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return copy.deepcopy(module.state_dict())


def changed(module: torch.nn.Module, before: dict[str, torch.Tensor]) -> bool:
    return any(not torch.equal(value, before[name]) for name, value in module.state_dict().items())


@pytest.fixture
def tiny() -> RunConfig:
    return tiny_config()


@pytest.fixture
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"the benchmark data directory {SHARED} is absent (it sits beside the project in CI)")
    return SHARED


def rollout(env, actions, seed=None) -> tuple[np.ndarray, np.ndarray]:
    """Observations (from the reset on) and rewards of `actions` played from `env.reset(seed=seed)`."""
    frames = [env.reset(seed=seed)[0]]
    rewards = []
    for action in actions:
        obs, reward, *_ = env.step(action)
        frames.append(obs)
        rewards.append(reward)
    return np.stack(frames), np.array(rewards)


def random_actions(env, n, seed=0) -> np.ndarray:
    """`n` uniform random actions for `env`, from a seeded generator."""
    return np.random.default_rng(seed).uniform(-1, 1, (n, *env.action_space.shape)).astype(np.float32)


def assert_set_state_continues(task: str, shift: str = "none", split: int = 3, steps: int = 10) -> None:
    """A state taken mid-episode, set into an environment of another seed that has moved on, continues the
    episode exactly: the same observations and rewards for the same actions."""
    env = make_env(task, shift, seed=2, image_size=32)
    actions = random_actions(env, steps, seed=5)
    env.reset()
    for action in actions[:split]:
        env.step(action)
    state = env.get_state()
    first = [env.step(action) for action in actions[split:]]
    fresh = make_env(task, shift, seed=11, image_size=32)
    fresh.reset()
    fresh.step(actions[0])
    fresh.set_state(state)
    second = [fresh.step(action) for action in actions[split:]]
    env.close()
    fresh.close()
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a[0], b[0])
        assert a[1] == b[1]


# ----- run directories and sweep files ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """A finished tiny DrQ run (30 steps on cartpole_swingup), made once per session: copy it before changing it."""
    from unseen import train

    run = tmp_path_factory.mktemp("tiny") / "run"
    train.start(tiny_config(steps=30), run)
    return run


def agent_state(run_dir: Path) -> dict:
    """The agent's state in a run directory's latest checkpoint."""
    return torch.load(run_dir / CHECKPOINT_FILE, weights_only=False)["agent"]


def assert_same_state(a: Any, b: Any, where: str = "agent") -> None:
    """Equal nested state dicts: every tensor of every module and optimizer, and every number."""
    if isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            assert_same_state(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, list | tuple):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same_state(x, y, f"{where}[{i}]")
    elif isinstance(a, torch.Tensor):
        assert torch.equal(a, b), f"{where} differs"
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def logs_without_time(run_dir: Path, name: str) -> pd.DataFrame:
    """A run's CSV log without its wall-clock column (the one thing two equal runs may differ in)."""
    return pd.read_csv(run_dir / name).drop(columns=["wall_time_s"], errors="ignore")


TINY_SWEEP = ["env.image_size=32", "agent.encoder_layers=2", "agent.encoder_filters=8", "agent.projection_dim=16",
              "agent.hidden_dim=32", "train.seed_steps=20", "train.seed_updates=20", "train.batch_size=8",
              "train.eval_every=70", "train.eval_episodes=1", "train.final_eval_episodes=1",
              "train.checkpoint_every=25", "train.tensorboard=false", "train.video=false"]
"""A sweep's overrides that make each of its runs train in seconds."""


def sweep_file(tmp_path: Path, **changes: Any) -> Path:
    """A tiny sweep file (DrQ on cartpole_swingup, seeds 1 and 2, 40 steps) with `changes`; a None value drops a key."""
    spec = {
        "preset": "smoke", "algos": ["drq"], "tasks": ["cartpole_swingup"], "seeds": [1, 2], "steps": 40,
        "overrides": TINY_SWEEP, "eval": {"shifts": ["none", "color_easy"], "episodes": 1},
        "out": str(tmp_path / "runs"), "export": str(tmp_path / "export"), "report": str(tmp_path / "report"),
    }
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump({k: v for k, v in (spec | changes).items() if v is not None}))
    return path


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    """`unseen ARGV...` in this process: its exit code, stdout and stderr (stripped)."""
    from unseen.cli import main

    try:
        code = main(list(argv))
    except SystemExit as exit_:  # argparse's usage errors
        code = exit_.code if isinstance(exit_.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err.strip()


def wait_for(path: Path, seconds: float = 120.0) -> None:
    """Wait until `path` exists (a child process's sign of life); generous, for a loaded machine."""
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)
