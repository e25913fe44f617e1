"""unseen sweep: the plan of a sweep file, one-line errors, what each run directory still needs, a real tiny sweep
that skips finished runs and resumes stopped ones, and signals forwarded to the children."""

from __future__ import annotations

import json
import signal
import sys
import threading
import time

import pytest

from unseen import sweep
from unseen.cli import main
from unseen.config import save_config
from unseen.rundir import TRAIN_LOCK, exclusive
from unseen.sweep import Sweep, available_cores, job_config, load_spec, plan, run_sweep, state

from conftest import TINY_SWEEP, sweep_file, wait_for

# tests/conftest.py's tiny config as overrides of the smoke preset




def test_dry_run_prints_the_plan_and_touches_nothing(tmp_path, capsys):
    path = sweep_file(tmp_path, algos=["sac", "drq"], tasks=["cartpole_swingup", "walker_walk"],
                      variants={"drq-wide": {"algo": "drq", "overrides": ["agent.hidden_dim=64"]}})
    assert main(["sweep", str(path), "--dry-run", "--workers", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"12 runs, 2 at a time, OMP_NUM_THREADS={max(1, available_cores() // 2)} each")
    names = [line.split()[1].rstrip(":") for line in lines[1:]]
    assert names[:6] == ["sac-cartpole_swingup-seed1", "drq-cartpole_swingup-seed1", "drq-wide-cartpole_swingup-seed1",
                         "sac-walker_walk-seed1", "drq-walker_walk-seed1", "drq-wide-walker_walk-seed1"]
    assert names[6] == "sac-cartpole_swingup-seed2"  # seeds outermost
    wide = lines[3]
    assert wide.startswith("new      drq-wide-cartpole_swingup-seed1: unseen train --algo drq --task cartpole_swingup")
    assert "--steps 40 --set env.image_size=32" in wide and wide.split(" && ")[0].endswith("agent.hidden_dim=64")
    # training's own final evaluation covers `none` (1 episode, as the sweep asks): only color_easy is left
    assert wide.split(" && ")[1].startswith("unseen eval ") and "--shifts color_easy --episodes 1" in wide
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"preset": "gpu"}, "preset must be one of paper, cpu, smoke, got 'gpu'"),
        ({"algos": ["drq", "nope"]}, "method 'nope': unknown algorithm 'nope'"),
        ({"tasks": ["cartpole_swing"]}, "unknown task(s) cartpole_swing"),
        ({"seeds": [1, 1]}, "seeds lists 1 twice; name each once"),
        ({"seeds": [-1]}, "seeds[0] must lie in 0..4294967295, got -1"),
        ({"seeds": [2**32]}, "seeds[0] must lie in 0..4294967295, got 4294967296"),
        ({"seeds": [1, "x"]}, "seeds[1]='x' is not a valid int"),
        ({"seeds": [True]}, "seeds[0]=True is not a valid int"),
        ({"seeds": []}, "seeds must be a non-empty list"),
        ({"overrides": ["agent.hiden_dim=3"]}, "unknown config field 'agent.hiden_dim'"),
        ({"overrides": ["train.batch_size=0"]}, "train.batch_size must be positive"),
        ({"variants": {"x": {"algo": "drq", "overides": []}}}, "unknown key(s) variants.x.overides in variants.x"),
        ({"variants": {"a/b": {"algo": "drq"}}}, "variant name 'a/b' must be"),
        ({"variants": {"drq": {"algo": "drq"}}}, "variant 'drq' has the name of an algorithm"),
        ({"algos": [], "variants": None}, "name at least one method"),
        ({"eval": {"shifts": ["video_medium"]}}, "unknown shift(s) video_medium"),
        ({"eval": {"episodes": 0}}, "eval.episodes must be positive"),
        ({"eval": {"video_dir": "/nonexistent"}}, "/nonexistent"),
        ({"out": None}, "out is required"),
        ({"steps": 0}, "steps must be positive"),
        ({"tasks": "walker_walk"}, "tasks must be a list, got 'walker_walk'"),
        ({"variants": ["x"]}, "variants must be a mapping"),
        ({"variants": {"x": {"overrides": []}}}, "variants.x.algo is required"),
        ({"eval": {"shifts": []}}, "eval.shifts must be a non-empty list"),
        ({"eval": {"intensity": [1]}}, "eval.intensity=[1]: a shift's data option is a string or number"),
        ({"seed": 3}, "unknown key(s) seed in the file; valid keys: preset, tasks"),
    ],
)
def test_invalid_files_fail_with_one_line(tmp_path, capsys, change, message):
    path = sweep_file(tmp_path, **change)
    assert main(["sweep", str(path), "--dry-run"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and error.startswith(f"unseen sweep: error: {path}: ") and message in error


def test_unreadable_files_and_bad_workers(tmp_path, capsys):
    (tmp_path / "bad.yaml").write_text("preset: [cpu\n")
    assert main(["sweep", str(tmp_path / "bad.yaml")]) == 2
    assert "is not valid YAML (line" in capsys.readouterr().err
    assert main(["sweep", str(tmp_path / "missing.yaml")]) == 2
    assert main(["sweep", str(sweep_file(tmp_path)), "--workers", "0"]) == 2
    assert "--workers must be positive" in capsys.readouterr().err


def test_what_each_run_directory_needs(tmp_path):
    spec = load_spec(sweep_file(tmp_path, seeds=[1]))
    job = plan(spec)[0]
    records = {"none": {"source": "none"}, "color_easy": {"source": "generated (seed 20201109)"}}
    assert state(job, spec, records) == sweep.State("new", ["color_easy"])
    job.run_dir.mkdir(parents=True)
    save_config(job_config(job, spec), job.run_dir / "config.yaml")
    assert state(job, spec, records).train == "restart"  # stopped before its first checkpoint
    (job.run_dir / "checkpoints").mkdir()
    (job.run_dir / "checkpoints" / "latest.pt").touch()
    assert state(job, spec, records).train == "resume"
    with exclusive(job.run_dir / TRAIN_LOCK, "held by the test"):
        assert state(job, spec, records) == sweep.State("running", [])  # another process trains it
        assert Sweep(spec, [job], 1).describe()[1] == (
            f"running  {job.name}: another process is training it (train.lock is held)"
        )
        assert run_sweep(sweep_file(tmp_path, seeds=[1])) == 1  # left alone, and the sweep says it is not complete
        assert not (tmp_path / "runs" / "logs" / f"{job.name}.log").exists()  # no child started
    assert state(job, spec, records).train == "resume"  # the lock went with its holder
    result = {"mean": 100.0, "std": 0.0, "episodes": 1}
    summary = {"algo": "drq", "task": "cartpole_swingup", "preset": "smoke", "seed": 1, "frames": 320, "steps": 40,
               "returns": {"none": result, "color_easy": result | {"source": "procedural"}}}
    (job.run_dir / "summary.json").write_text(json.dumps(summary))
    assert state(job, spec, records) == sweep.State("", ["color_easy"])  # evaluated on other data: again
    summary["returns"]["color_easy"]["source"] = "generated (seed 20201109)"
    (job.run_dir / "summary.json").write_text(json.dumps(summary))
    assert state(job, spec, records).done
    other = load_spec(sweep_file(tmp_path, seeds=[1], overrides=[*TINY_SWEEP, "agent.hidden_dim=64"]))
    with pytest.raises(sweep.UserError, match=r"holds a run with another config .agent.hidden_dim: 32 there, 64"):
        state(plan(other)[0], other, records)
    video_off = load_spec(sweep_file(tmp_path, seeds=[1], overrides=[*TINY_SWEEP, "train.video=true"]))
    assert state(plan(video_off)[0], video_off, records).done  # outputs are not part of what a run learns


def test_tiny_sweep_runs_resumes_skips_and_reports(tmp_path, capsys, monkeypatch):
    from unseen import train

    monkeypatch.setattr(sweep, "available_cores", lambda: 1)  # the children run with one thread: a 1-core machine

    path = sweep_file(tmp_path)
    spec = load_spec(path)
    stopped = plan(spec)[1]  # seed 2: stopped at step 20, with only a checkpoint
    assert train.start(job_config(stopped, spec), stopped.run_dir, stop_at=20) is None
    assert run_sweep(path) == 0
    out = capsys.readouterr().out
    assert "start  drq-cartpole_swingup-seed1 (new)" in out and "start  drq-cartpole_swingup-seed2 (resume)" in out
    assert "report of 2 runs written to" in out and "sweep complete" in out
    for seed in (1, 2):
        name = f"drq-cartpole_swingup-seed{seed}"
        summary = json.loads((tmp_path / "runs" / name / "summary.json").read_text())
        assert summary["steps"] == 40 and set(summary["returns"]) == {"none", "color_easy"}
        assert summary["runtime"]["torch_threads"] == 1  # OMP_NUM_THREADS = cores // workers
        exported = {"config.yaml", "eval.csv", "summary.json"}  # no train.csv: 40 steps end no episode
        assert {p.name for p in (tmp_path / "export" / name).iterdir()} == exported
    assert "| color_easy | cartpole_swingup | **" in (tmp_path / "report" / "table.md").read_text()
    log = (tmp_path / "runs" / "sweep.log").read_text()
    assert log.count("done   drq-cartpole_swingup-seed") == 2 and "finished in" in log
    assert "unseen.cli train --resume" in (tmp_path / "runs" / "logs" / "drq-cartpole_swingup-seed2.log").read_text()
    # again: nothing left to do, no child started
    children = {p: p.stat().st_size for p in (tmp_path / "runs" / "logs").iterdir()}
    assert run_sweep(path) == 0
    assert capsys.readouterr().out.count("already done") == 2
    assert {p: p.stat().st_size for p in (tmp_path / "runs" / "logs").iterdir()} == children


# Files appear whole (written, then renamed): a test that waits for one never reads it half-written.
SLOW_CHILD = """
import os, signal, sys, time
def write(path, text):
    open(path + ".tmp", "w").write(text)
    os.replace(path + ".tmp", path)
for sig in (signal.SIGINT, signal.SIGTERM):
    signal.signal(sig, lambda signum, _: (write(sys.argv[1], str(signum)), sys.exit(128 + signum)))
write(sys.argv[2], "started")
time.sleep(30)
"""


def slow_children(monkeypatch, tmp_path):
    """Replace training by a child that writes `started`, then on SIGINT/SIGTERM writes the signal to `stopped`."""
    started, stopped = tmp_path / "started", tmp_path / "stopped"
    monkeypatch.setattr(sweep, "train_command", lambda job, spec, train: [
        sys.executable, "-c", SLOW_CHILD, str(stopped), str(started)])
    return started, stopped




def test_a_stop_is_forwarded_to_the_children_and_starts_nothing_new(tmp_path, monkeypatch, capsys):
    spec = load_spec(sweep_file(tmp_path, report=None, export=None))
    started, stopped = slow_children(monkeypatch, tmp_path)
    runner = Sweep(spec, plan(spec), workers=1)

    def stop_when_started() -> None:
        wait_for(started)
        runner.request_stop(signal.SIGINT, None)

    threading.Thread(target=stop_when_started, daemon=True).start()
    begin = time.monotonic()
    assert runner.run() == 128 + signal.SIGINT
    assert time.monotonic() - begin < 20 and stopped.read_text() == str(int(signal.SIGINT))
    out = capsys.readouterr().out
    assert "start  drq-cartpole_swingup-seed1" in out and "seed2" not in out and "failed" not in out
    assert "run the same command again to continue" in out


KILLED_SWEEP = """
import sys
from pathlib import Path
from unseen import sweep
sweep.train_command = lambda job, spec, train: [sys.executable, "-c", sys.argv[2], sys.argv[3], sys.argv[4]]
spec = sweep.load_spec(Path(sys.argv[1]))
sys.exit(sweep.Sweep(spec, sweep.plan(spec), 1).run())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="children die with the sweep on Linux only")
def test_children_of_a_killed_sweep_are_stopped_too(tmp_path):
    import os
    import subprocess

    started, stopped = tmp_path / "started", tmp_path / "stopped"
    path = sweep_file(tmp_path, report=None, export=None)
    parent = subprocess.Popen([sys.executable, "-c", KILLED_SWEEP, str(path), SLOW_CHILD, str(stopped), str(started)],
                              stdout=subprocess.DEVNULL)
    wait_for(started)
    with pytest.raises(sweep.UserError, match="another sweep is running"):
        sweep.Sweep(load_spec(path), [], 1).run()
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    wait_for(stopped)
    assert stopped.read_text() == str(int(signal.SIGTERM))  # on which training checkpoints and exits
