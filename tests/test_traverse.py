"""ALDA and SAC+AE end to end: CLI smoke runs, determinism, exact resume of every module, and their latent
traversals (`unseen report --traverse`)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from unseen import train
from unseen.agents import AGENTS
from unseen.cli import main
from unseen.evaluate import make_run_env
from unseen.traverse import BATCH, ROWS, rendered_observations, replay_observations, sweep_grid, sweeps, write_traversal

from conftest import agent_state, assert_same_state, tiny_config, tiny_overrides

STEPS = 45
AUTOENCODERS = ("alda", "sac_ae")






@pytest.fixture(scope="module", params=AUTOENCODERS)
def cli_run(request, tmp_path_factory):
    """A tiny run of each algorithm through the command line."""
    algo = request.param
    run = tmp_path_factory.mktemp(algo) / "run"
    cfg = tiny_config(algo, steps=STEPS)
    code = main(["train", "--algo", algo, "--task", "cartpole_swingup", "--preset", "smoke", "--steps", str(STEPS),
                 "--out", str(run), "--set", *tiny_overrides(cfg)])
    assert code == 0
    return algo, run


def test_cli_run_checkpoints_the_autoencoders(cli_run):
    algo, run = cli_run
    summary = json.loads((run / "summary.json").read_text())
    assert (summary["algo"], summary["steps"]) == (algo, STEPS)
    extra = {"alda": {"alda_optimizer", "codebook_optimizer"}, "sac_ae": {"encoder_optimizer", "decoder_optimizer"}}
    assert {"decoder", "critic_optimizer", "actor_optimizer", *extra[algo]} <= set(agent_state(run))


def test_training_twice_gives_identical_runs(cli_run, tmp_path):
    algo, run = cli_run
    train.start(tiny_config(algo, steps=STEPS), tmp_path / "again")
    assert_same_state(agent_state(run), agent_state(tmp_path / "again"))


def test_resume_equals_uninterrupted(cli_run, tmp_path):
    algo, run = cli_run
    split = tmp_path / "split"
    assert train.start(tiny_config(algo, steps=STEPS), split, stop_at=33) is None  # after the seed steps
    train.resume(split)
    assert_same_state(agent_state(run), agent_state(split))


@pytest.mark.parametrize("algo", AUTOENCODERS)
def test_checkpoint_holds_every_module_and_optimizer(algo):
    from conftest import new_agent

    agent = new_agent(algo)
    held = {id(module) for module in agent.modules().values()}
    owned = [name for name, value in vars(agent).items() if isinstance(value, torch.nn.Module | torch.optim.Optimizer)]
    assert [name for name in owned if id(getattr(agent, name)) not in held] == []


def test_traversal_picture_from_the_run(cli_run, capsys):
    _, run = cli_run
    assert main(["report", "--traverse", str(run)]) == 0
    path = run / "traversal" / "traversal.png"
    assert f"written to {path}" in capsys.readouterr().out
    width, height = Image.open(path).size
    assert width > 500 and height > 300
    before = path.read_bytes()
    write_traversal(run, run / "traversal")
    assert path.read_bytes() == before  # fixed seeds: the same checkpoint gives the same picture


def test_traversal_without_a_replay_buffer_renders_observations(cli_run, tmp_path):
    algo, run = cli_run
    copy = tmp_path / "copy"
    shutil.copytree(run, copy, ignore=shutil.ignore_patterns("replay"))
    cfg = tiny_config(algo, steps=STEPS)
    state = torch.load(copy / train.CHECKPOINT_FILE, weights_only=False)["replay"]
    assert replay_observations(copy, cfg, state, 4) is None
    assert replay_observations(run, cfg, state, 4).shape == (4, 9, 32, 32)
    env = make_run_env(cfg, "none", None)
    rendered = rendered_observations(env, 5)
    env.close()
    assert rendered.shape == (5, 9, 32, 32) and rendered.dtype == torch.uint8
    assert write_traversal(copy, tmp_path / "out").is_file()


def test_traversal_of_a_run_without_decoder_is_one_line(tmp_path, capsys):
    run = tmp_path / "drq"
    train.start(tiny_config("drq", steps=25), run)
    capsys.readouterr()
    assert main(["report", "--traverse", str(run)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "is a drq run, which has no decoder to traverse; use a run of alda, sac_ae" in err
    assert main(["report", "--traverse", str(run), str(run)]) == 2
    assert main(["report", str(run)]) == 2 and "--out is required" in capsys.readouterr().err
    assert [name for name, agent in AGENTS.items() if hasattr(agent, "decode")] == list(AUTOENCODERS)


def test_sweep_grid_changes_one_latent_per_row():
    latent = torch.tensor([0.1, 0.2, 0.3])
    values = torch.tensor([[-1.0, 0.0, 1.0, 2.0], [5.0, 6.0, 7.0, 8.0]])
    grid = sweep_grid(latent, [2, 0], values)
    assert grid.shape == (2, 4, 3)
    assert torch.equal(grid[0, :, 2], values[0]) and torch.equal(grid[1, :, 0], values[1])
    assert torch.equal(grid[0, :, :2], latent[:2].expand(4, 2)) and torch.equal(grid[1, :, 1:], latent[1:].expand(4, 2))


def test_sweeps_without_codebook_take_the_most_varied_latents_over_their_range():
    g = torch.Generator().manual_seed(0)
    scale = 1.5 ** torch.randperm(20, generator=g)  # spread far enough for the sample variances to keep the order
    latents = torch.randn(BATCH, 20, generator=g) * scale
    rows, values, origin = sweeps(object(), latents)
    assert rows == scale.argsort(descending=True)[:ROWS].tolist()
    assert torch.equal(values[:, 0], latents.min(0).values[rows])
    torch.testing.assert_close(values[:, -1], latents.max(0).values[rows])
    assert np.all(np.diff(values.numpy(), axis=1) > 0)
    assert f"{BATCH} observations" in origin
