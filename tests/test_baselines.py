"""RAD, CURL, DrQ-v2, SODA, PAD and SGQN end to end (issue 22): every preset builds and updates, training is
deterministic, a resumed run equals an uninterrupted one, and the command line trains each under the smoke preset."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from unseen import train
from unseen.agents import make_agent
from unseen.cli import main
from unseen.config import make_config, validate
from unseen.replay import ReplayBuffer

from conftest import agent_state, assert_same_state, tiny_config

ALGOS = ("rad", "curl", "drqv2", "soda", "pad", "sgqn")
STEPS = 60






@pytest.mark.parametrize("algo", ALGOS)
@pytest.mark.parametrize("preset", ["paper", "cpu"])
def test_every_preset_builds_and_updates(algo, preset):
    """The preset's agent at the preset's frame size, one update on a batch of its replay (4 transitions: the
    update, not the batch size, is what is checked)."""
    cfg = validate(make_config(algo, "cartpole_swingup", preset))
    cfg.agent.precision = "float32"
    size, stack = cfg.env.image_size, cfg.env.frame_stack
    agent = make_agent(algo, (3 * stack, size, size), 1, cfg.agent, torch.device("cpu"), seed=0)
    replay = ReplayBuffer(16, (3, size, size), 1, stack)
    rng = np.random.default_rng(0)
    replay.add_first(rng.integers(0, 256, (3, size, size), dtype=np.uint8))
    for _ in range(10):
        replay.add(rng.uniform(-1, 1, 1), 1.0, 1.0, rng.integers(0, 256, (3, size, size), dtype=np.uint8))
    metrics = agent.update(replay.sample(4, rng, cfg.agent.return_steps, cfg.agent.discount))
    assert np.isfinite(float(metrics["critic_loss"]))
    assert agent.act(replay.sample(1, rng)["obs"][0].numpy(), deterministic=False).shape == (1,)


@pytest.fixture(scope="module", params=ALGOS)
def uninterrupted(request, tmp_path_factory):
    run = tmp_path_factory.mktemp(request.param) / "run"
    return request.param, run, train.start(tiny_config(request.param, steps=STEPS), run)


def test_training_twice_gives_identical_runs(tmp_path, uninterrupted):
    algo, first, _ = uninterrupted
    train.start(tiny_config(algo, steps=STEPS), tmp_path / "again")
    assert_same_state(agent_state(first), agent_state(tmp_path / "again"))
    expected_updates = STEPS - 20  # after the tiny config's 20 seed steps
    if algo == "drqv2":
        expected_updates //= 2  # one update every 2 agent steps
    else:
        expected_updates += 20 - 1  # RAD and CURL: DMControl-GB's burst, 20 updates at step 20 in place of one
    assert agent_state(first)["updates"] == expected_updates


def test_resume_equals_uninterrupted(tmp_path, uninterrupted):
    algo, whole, summary = uninterrupted
    assert train.start(tiny_config(algo, steps=STEPS), tmp_path / "split", stop_at=37) is None
    resumed = train.resume(tmp_path / "split")
    assert_same_state(agent_state(whole), agent_state(tmp_path / "split"))
    assert resumed["returns"] == summary["returns"]


@pytest.mark.parametrize("algo", ALGOS)
def test_smoke_run_through_the_command_line(algo, tmp_path):
    run = tmp_path / "run"
    code = main([
        # the smoke preset's networks and batch as a user runs them; 5 updates: the actor's and the targets' too
        "train", "--algo", algo, "--task", "cartpole_swingup", "--preset", "smoke", "--steps", "44",
        "--out", str(run), "--set", "train.seed_steps=40", "train.seed_updates=1", "train.eval_every=0",
        "train.final_eval_episodes=1", "train.video=false", "train.tensorboard=false",
    ])
    assert code == 0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["algo"] == algo and summary["steps"] == 44 and np.isfinite(summary["returns"]["none"]["mean"])
