"""Training and evaluation end to end: the CLI, determinism, exact resume, signals, and bad input."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from unseen import train
from unseen.agents import DrQ
from unseen.config import apply_overrides
from unseen.errors import Interrupted
from unseen.evaluate import make_run_env
from unseen.rundir import CONFIG_FILE, TRAIN_LOCK, exclusive, open_run, read_config

from conftest import agent_state, assert_same_state, logs_without_time, run_cli, tiny_config, tiny_overrides

STEPS = 140  # past the end of the first 125-step cartpole episode








def test_cli_trains_evaluates_and_writes_the_run_directory(tmp_path):
    cfg = tiny_config(steps=STEPS)
    cfg.train.video = True
    cfg.train.tensorboard = True
    cfg.train.eval_shifts = "none,color_hard"
    run = tmp_path / "run"
    unseen = Path(sys.executable).parent / "unseen"
    command = [str(unseen), "train", "--algo", "drq", "--task", "cartpole_swingup", "--preset", "smoke",
               "--seed", "0", "--steps", str(STEPS), "--out", str(run), "--set", *tiny_overrides(cfg)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    assert f"run directory: {run}" in done.stdout
    for name in ("config.yaml", "train.csv", "eval.csv", "summary.json", "checkpoints/latest.pt"):
        assert (run / name).is_file(), name
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))
    for shift in ("none", "color_hard"):
        assert (run / "videos" / f"{shift}_step{STEPS}.mp4").stat().st_size > 1000
    summary = json.loads((run / "summary.json").read_text())
    assert {k: summary[k] for k in ("algo", "task", "preset", "seed", "steps", "frames")} == {
        "algo": "drq", "task": "cartpole_swingup", "preset": "smoke", "seed": 0, "steps": STEPS, "frames": STEPS * 8}
    assert summary["returns"].keys() == {"none", "color_hard"}
    assert summary["returns"]["none"]["episodes"] == 1
    assert {"torch", "mujoco", "dm_control", "unseen_commit"} <= set(summary["versions"])
    assert summary["wall_time_s"] > 0
    # precision "auto" is resolved when the run starts: the config holds what ran, the summary the hardware.
    chosen = read_config(run).agent.precision
    assert chosen == ("bf16" if summary["hardware"]["native_bf16"] else "float32")
    assert f"precision {chosen}" in done.stderr and summary["hardware"]["cpu"]
    train_log = pd.read_csv(run / "train.csv")
    assert list(train_log["step"]) == [125] and train_log["frames"][0] == 1000
    assert {"critic_loss", "actor_loss", "alpha", "episode_return"} <= set(train_log.columns)
    evaluations = pd.read_csv(run / "eval.csv")
    assert list(evaluations["step"]) == [0, 0, 70, 70, STEPS, STEPS]
    assert list(evaluations["shift"]) == ["none", "color_hard"] * 3

    evaluated = subprocess.run(
        [str(unseen), "eval", str(run), "--episodes", "2"], capture_output=True, text=True, timeout=600, check=False
    )
    assert evaluated.returncode == 0, evaluated.stderr
    assert "none" in evaluated.stdout
    assert json.loads((run / "summary.json").read_text())["returns"]["none"]["episodes"] == 2


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> tuple[Path, dict]:
    run = tmp_path_factory.mktemp("uninterrupted") / "run"
    return run, train.start(tiny_config(steps=STEPS), run)


def test_training_twice_gives_identical_runs(tmp_path, uninterrupted):
    first, _ = uninterrupted
    train.start(tiny_config(steps=STEPS), tmp_path / "again")
    assert_same_state(agent_state(first), agent_state(tmp_path / "again"))
    for log in ("train.csv", "eval.csv"):
        pd.testing.assert_frame_equal(logs_without_time(first, log), logs_without_time(tmp_path / "again", log))


def test_other_seed_gives_another_run(tmp_path, uninterrupted):
    train.start(tiny_config(steps=30, seed=1), tmp_path / "other")
    a, b = agent_state(uninterrupted[0]), agent_state(tmp_path / "other")
    assert not torch.equal(a["trunk"]["convs.0.weight"], b["trunk"]["convs.0.weight"])


@pytest.mark.parametrize("stop_at", [13, 100])  # among the seed steps; mid-episode, between checkpoints
def test_resume_equals_uninterrupted(tmp_path, uninterrupted, stop_at):
    whole, summary = uninterrupted
    assert train.start(tiny_config(steps=STEPS), tmp_path / "split", stop_at=stop_at) is None
    assert torch.load(tmp_path / "split" / train.CHECKPOINT_FILE, weights_only=False)["step"] == stop_at
    resumed = train.resume(tmp_path / "split")
    assert_same_state(agent_state(whole), agent_state(tmp_path / "split"))
    assert resumed["returns"] == summary["returns"]
    for log in ("train.csv", "eval.csv"):
        pd.testing.assert_frame_equal(logs_without_time(whole, log), logs_without_time(tmp_path / "split", log))


def test_resume_inside_the_seed_burst_equals_uninterrupted(tmp_path, uninterrupted, monkeypatch):
    """A stop signal during the updates at the end of the seed steps checkpoints mid-burst; the resumed run makes the
    rest of them, then acts with the action drawn before the burst, and ends as the uninterrupted run does."""
    whole, summary = uninterrupted
    update = DrQ.update

    def signalled(agent, batch, step=None):
        if agent.updates == 7:
            os.kill(os.getpid(), signal.SIGTERM)
        return update(agent, batch, step)

    monkeypatch.setattr(DrQ, "update", signalled)
    with pytest.raises(Interrupted):
        train.start(tiny_config(steps=STEPS), tmp_path / "split")
    checkpoint = torch.load(tmp_path / "split" / train.CHECKPOINT_FILE, weights_only=False)
    assert checkpoint["step"] == 20 and checkpoint["agent"]["updates"] == 8
    assert checkpoint["pending_action"] is not None
    monkeypatch.setattr(DrQ, "update", update)
    resumed = train.resume(tmp_path / "split")
    assert_same_state(agent_state(whole), agent_state(tmp_path / "split"))
    assert resumed["returns"] == summary["returns"]
    for log in ("train.csv", "eval.csv"):
        pd.testing.assert_frame_equal(logs_without_time(whole, log), logs_without_time(tmp_path / "split", log))


def test_the_seed_burst_makes_seed_updates_updates_on_the_schedule_of_its_step(tmp_path, monkeypatch):
    """DMControl-GB's train.py: `init_steps` updates at `step == init_steps`, each testing that step for the actor's
    and the targets' turn (all of them when it is a multiple of the periods, none when not), then one per step."""
    calls: list[tuple[int, int]] = []  # (the agent's update count, 0 for the actor's turn or 1 for the targets')
    update_actor, update_targets = DrQ.update_actor_and_alpha, DrQ.update_targets
    monkeypatch.setattr(DrQ, "update_actor_and_alpha", lambda a, f: calls.append((a.updates, 0)) or update_actor(a, f))
    monkeypatch.setattr(DrQ, "update_targets", lambda a: calls.append((a.updates, 1)) or update_targets(a))
    for seed_steps, burst_turns in ((20, 20), (21, 0)):
        calls.clear()
        cfg = tiny_config(steps=seed_steps + 4)
        cfg.train.seed_steps = cfg.train.seed_updates = seed_steps
        cfg.train.eval_every = 0
        train.start(cfg, tmp_path / str(seed_steps))
        state = torch.load(tmp_path / str(seed_steps) / train.CHECKPOINT_FILE, weights_only=False)
        assert state["agent"]["updates"] == seed_steps + 3  # the burst, then one per step
        for kind in (0, 1):
            turns = [n for n, k in calls if k == kind]
            assert len([n for n in turns if n <= seed_steps]) == burst_turns
            # After a burst of seed_steps updates the counter has the step's parity (DMC-GB: step % 2).
            after = [seed_steps + i for i in (1, 2, 3)]
            assert [n for n in turns if n > seed_steps] == [n for n in after if n % 2 == 0]


BEFORE_ISSUE_18 = ["agent.trunk_final_relu=true", "agent.actor_recompute=false", "agent.exact_log_det=true",
                   "agent.svea_float_conv=false", "train.seed_updates=1"]
"""How SVEA computed before DMControl-GB's behaviours were fields (`unseen.config.ADDED_FIELDS`)."""


def test_a_run_made_before_the_dmcontrol_gb_fields_resumes_with_its_old_behaviour(tmp_path):
    """A run directory whose config.yaml lacks issue 18's fields resumes, and is restored, with the update it was
    trained with: the resumed agent equals an uninterrupted run's with the old values set."""
    train.start(apply_overrides(tiny_config("svea", steps=30), BEFORE_ISSUE_18), tmp_path / "whole")
    split = tmp_path / "split"
    assert train.start(apply_overrides(tiny_config("svea", steps=30), BEFORE_ISSUE_18), split, stop_at=25) is None
    saved = yaml.safe_load((split / CONFIG_FILE).read_text())
    for item in BEFORE_ISSUE_18:
        section, name = item.partition("=")[0].split(".")
        del saved[section][name]
    (split / CONFIG_FILE).write_text(yaml.safe_dump(saved, sort_keys=False))
    train.resume(split)
    assert_same_state(agent_state(tmp_path / "whole"), agent_state(split))
    run = open_run(split)
    assert (run.cfg.agent.trunk_final_relu, run.cfg.agent.actor_recompute, run.cfg.agent.exact_log_det) == (
        True, False, True
    )
    assert not run.cfg.agent.svea_float_conv and run.cfg.train.seed_updates == 1
    env = make_run_env(run.cfg, "none")
    agent = run.restore(env)
    env.close()
    assert isinstance(agent.trunk.convs[-1], torch.nn.ReLU) and agent.actor.exact_log_det


def test_a_run_keeps_the_threads_it_started_with(tmp_path, monkeypatch):
    # 1 and 2 threads sum floats in other orders: a resume computes as the run did, whatever the machine offers now.
    run = tmp_path / "run"
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    train.start(tiny_config(steps=30), run, stop_at=10)
    assert read_config(run).train.threads == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    try:
        summary = train.resume(run)
    finally:
        torch.set_num_threads(1)
    assert summary["runtime"]["torch_threads"] == 1


def test_logs_written_after_the_checkpoint_are_dropped_on_resume(tmp_path):
    run = tmp_path / "run"
    train.start(tiny_config(steps=STEPS), run, stop_at=100)
    # A crash after the checkpoint leaves rows the resumed run will write again.
    repeated = pd.concat([pd.read_csv(run / "eval.csv")] * 2).assign(step=lambda f: f.step + 200)
    repeated.to_csv(run / "eval.csv", mode="a", header=False, index=False)
    train.resume(run)
    steps = list(pd.read_csv(run / "eval.csv")["step"])
    assert steps == sorted(set(steps)) and max(steps) == STEPS


def test_sigint_writes_a_checkpoint_and_says_how_to_resume(tmp_path):
    cfg = tiny_config(steps=100_000)
    run = tmp_path / "run"
    command = [sys.executable, "-m", "unseen.cli", "train", "--algo", "drq", "--task", "cartpole_swingup",
               "--preset", "smoke", "--steps", "100000", "--out", str(run), "--set", *tiny_overrides(cfg)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while not (run / train.CHECKPOINT_FILE).exists() and time.time() < deadline and process.poll() is None:
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGINT, err
    assert f"continue with: unseen train --resume {run}" in err
    checkpoint = torch.load(run / train.CHECKPOINT_FILE, weights_only=False)
    assert 25 <= checkpoint["step"] < 100_000
    assert not (run / "checkpoints" / "latest.tmp").exists()


# ----- bad input: one line, a non-zero exit, nothing of an existing run overwritten --------------------


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--algo", "drq", "--task", "walker_fly"], "unknown task 'walker_fly'"),
        (["train", "--algo", "ppo", "--task", "walker_walk"], "invalid choice: 'ppo'"),
        (["train", "--algo", "drq", "--task", "walker_walk", "--preset", "huge"], "invalid choice: 'huge'"),
        (["train", "--algo", "drq", "--task", "walker_walk", "--steps", "0"], "--steps must be positive, got 0"),
        (["train", "--algo", "drq", "--task", "walker_walk", "--steps", "-3"], "--steps must be positive, got -3"),
        (["train", "--task", "walker_walk"], "--algo and --task are required"),
        (["train", "--algo", "drq", "--task", "walker_walk", "--set", "agent.hiden_dim=3"], "unknown config field"),
        (["eval", "/nonexistent/run"], "is not a run directory"),
    ],
)
def test_bad_arguments_fail_with_one_line(capsys, argv, message):
    code, _, err = run_cli(capsys, *argv)
    assert code != 0
    assert len(err.splitlines()) == 1, err
    assert message in err


def test_unwritable_output_directory(capsys, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    code, _, err = run_cli(
        capsys, "train", "--algo", "drq", "--task", "cartpole_swingup", "--out", str(blocker / "run")
    )
    assert code == 2 and len(err.splitlines()) == 1 and "cannot create the run directory" in err


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("finished") / "run"
    train.start(tiny_config(steps=30), run)
    return run


def test_existing_run_is_never_overwritten(capsys, finished_run):
    before = {p: p.read_bytes() for p in (finished_run / "config.yaml", finished_run / "summary.json")}
    code, _, err = run_cli(capsys, "train", "--algo", "sac", "--task", "walker_walk", "--out", str(finished_run))
    assert code == 2 and "already holds a run" in err and f"--resume {finished_run}" in err
    assert before == {p: p.read_bytes() for p in before}
    code, _, err = run_cli(capsys, "train", "--resume", str(finished_run))
    assert code == 2 and "already complete" in err


def test_resume_of_a_directory_that_is_not_a_run(capsys, tmp_path):
    code, _, err = run_cli(capsys, "train", "--resume", str(tmp_path))
    assert code == 2 and "is not a run directory" in err and len(err.splitlines()) == 1


def test_resume_with_a_corrupt_checkpoint(capsys, tmp_path, finished_run):
    run = tmp_path / "copy"
    shutil.copytree(finished_run, run)
    (run / "summary.json").unlink()
    (run / train.CHECKPOINT_FILE).write_bytes(b"\x00not a checkpoint")
    before = (run / "config.yaml").read_bytes()
    code, _, err = run_cli(capsys, "train", "--resume", str(run))
    assert code == 2 and "is corrupt" in err and len(err.splitlines()) == 1 and f"--restart {run}" in err
    assert (run / "config.yaml").read_bytes() == before


def test_a_run_is_trained_by_one_process_at_a_time(capsys, tmp_path, finished_run):
    stopped = tmp_path / "stopped"
    shutil.copytree(finished_run, stopped)
    (stopped / "summary.json").unlink()  # a run stopped after its last step, before its final evaluation
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    for run, argv in (
        (stopped, ["--resume", str(stopped)]),
        (fresh, ["--algo", "drq", "--task", "cartpole_swingup", "--out", str(fresh)]),
    ):
        with exclusive(run / TRAIN_LOCK, "held by the test"):
            code, _, err = run_cli(capsys, "train", *argv)
        assert code == 2 and len(err.splitlines()) == 1 and f"another process is training {run}" in err
    assert not (fresh / "config.yaml").exists() and not (stopped / "summary.json").exists()
    assert run_cli(capsys, "train", "--resume", str(stopped))[0] == 0  # the lock goes with its holder
    assert (stopped / "summary.json").exists()


def test_resume_refuses_new_settings(capsys, finished_run):
    code, _, err = run_cli(capsys, "train", "--resume", str(finished_run), "--steps", "10")
    assert code == 2 and "drop --steps" in err


def test_eval_rejects_unknown_shifts_and_bad_counts(capsys, finished_run):
    code, _, err = run_cli(capsys, "eval", str(finished_run), "--shifts", "none", "rainbow")
    assert code == 2 and "unknown shift(s) rainbow" in err
    code, _, err = run_cli(capsys, "eval", str(finished_run), "--episodes", "0")
    assert code == 2 and "--episodes must be positive" in err


def test_eval_seeds_are_distinct_from_the_training_seed():
    from unseen.evaluate import eval_seeds

    seeds = eval_seeds(0, 10)
    assert len(set(seeds)) == 10 and 0 not in seeds
    assert seeds == eval_seeds(0, 10) and seeds != eval_seeds(1, 10)
    assert eval_seeds(0, 3) == seeds[:3]


def test_missing_gl_backend_is_one_line_naming_the_fix(tmp_path):
    env = {**os.environ, "MUJOCO_GL": "bogus"}
    command = [sys.executable, "-m", "unseen.cli", "train", "--algo", "drq", "--task", "cartpole_swingup",
               "--out", str(tmp_path / "run")]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300, check=False)
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1
    assert "no OpenGL backend" in done.stderr and "MUJOCO_GL=egl" in done.stderr
    assert not (tmp_path / "run").exists()


def test_evaluation_does_not_depend_on_the_number_of_workers(tmp_path, finished_run):
    from unseen.evaluate import evaluate_parallel, evaluate_run

    run = tmp_path / "copy"
    shutil.copytree(finished_run, run)
    trained = json.loads((run / "summary.json").read_text())["returns"]["none"]["mean"]
    one = evaluate_run(run, ["none", "color_hard"], 3, workers=1)  # in this process
    two = evaluate_run(run, ["none", "color_hard"], 3, workers=2)  # in two worker processes
    assert [r["return_mean"] for r in one] == [r["return_mean"] for r in two]
    assert one[1]["source"].startswith("generated")
    # The training's final evaluation ran one episode in-process: the first of the evaluation's episodes.
    state = torch.load(run / train.CHECKPOINT_FILE, weights_only=False)["agent"]
    results = evaluate_parallel(state, read_config(run), ["none"], 1, {"none": None}, {}, workers=1)
    assert results["none"].returns[0] == trained and results["none"].successes is None  # DMControl: no success


def test_logged_metrics_are_means_over_the_interval_summed_on_the_device():
    from unseen.logs import MetricMeans

    means = MetricMeans()
    means.add({"loss": torch.tensor(1.0), "grad/gamma": 0.25})
    means.add({"loss": torch.tensor(2.0)})
    assert isinstance(means.sums["loss"], torch.Tensor)  # no host sync per update
    saved = MetricMeans()
    saved.load_state_dict(means.state_dict())
    means.add({"loss": torch.tensor(6.0)})
    saved.add({"loss": torch.tensor(6.0)})
    assert means.take() == saved.take() == {"loss": 3.0, "grad/gamma": 0.25}
    assert means.take() == {}
