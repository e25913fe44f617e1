"""Shared fixtures: a tiny run configuration that trains in seconds, and the benchmark data directory."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from unseen.config import RunConfig, make_config
from unseen.envs import make_env

SHARED = Path(__file__).resolve().parents[2] / "shared"


def tiny_config(algo: str = "drq", steps: int = 60, seed: int = 0) -> RunConfig:
    """A run of a minute's fraction: 32x32 frames, 2 conv layers, small MLPs and latents, short schedule."""
    cfg = make_config(algo, "cartpole_swingup", "smoke", seed=seed, steps=steps)
    cfg.env.image_size = 32
    cfg.agent.encoder_layers = 2
    cfg.agent.encoder_filters = 8
    cfg.agent.projection_dim = 16
    cfg.agent.hidden_dim = 32
    cfg.agent.alda_mlp_dim = 32
    cfg.agent.alda_embedding_dim = 16
    cfg.agent.sac_ae_latent_dim = 8
    cfg.train.seed_steps = 20
    cfg.train.seed_updates = 20
    cfg.train.batch_size = 8
    cfg.train.eval_every = 70
    cfg.train.eval_episodes = 1
    cfg.train.final_eval_episodes = 1
    cfg.train.checkpoint_every = 25
    cfg.train.tensorboard = False
    cfg.train.video = False
    return cfg


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
