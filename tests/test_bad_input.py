"""Bad input through the real command line, as a careless user gives it: each mistake ends with a non-zero exit and
one line on stderr saying what is wrong (no traceback), and leaves the user's files as they were."""

from __future__ import annotations

import fcntl
import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from conftest import run_cli, sweep_file

RANDOM = bytes(range(256)) * 4
"""Bytes that are no text, no YAML, no JSON, no CSV and no checkpoint."""


def write(name: str, data: bytes | str) -> Callable[[Path, Path], None]:
    """Replace the run's file `name` with `data`."""
    def corrupt(run: Path, case: Path) -> None:
        (run / name).write_bytes(data if isinstance(data, bytes) else data.encode())
    return corrupt


def edit(name: str, change: Callable[[str], str]) -> Callable[[Path, Path], None]:
    """Rewrite the run's text file `name` by `change`."""
    def corrupt(run: Path, case: Path) -> None:
        (run / name).write_text(change((run / name).read_text()))
    return corrupt


def summary(**changes: Any) -> Callable[[Path, Path], None]:
    """Change keys of the run's summary.json."""
    return edit("summary.json", lambda text: json.dumps(json.loads(text) | changes))


def checkpoint(change: Callable[[dict], None], drop_summary: bool = False) -> Callable[[Path, Path], None]:
    """Change the run's checkpoint, as another version of unseen might have written it."""
    def corrupt(run: Path, case: Path) -> None:
        path = run / "checkpoints" / "latest.pt"
        state = torch.load(path, weights_only=False)
        change(state)
        torch.save(state, path)
        if drop_summary:
            (run / "summary.json").unlink()
    return corrupt


def foreign_agent(state: dict) -> None:
    """The agent's state of another version: a parameter renamed."""
    critic = state["agent"]["critic"]
    name = next(iter(critic))
    critic[f"renamed_{name}"] = critic.pop(name)


def sweep(**changes: Any) -> Callable[[Path, Path], None]:
    """A tiny sweep file `case/sweep.yaml` with `changes`."""
    return lambda run, case: sweep_file(case, **changes) and None


def training_elsewhere(run: Path, case: Path) -> Any:
    """Another process holds the run's lock (as training does): the open handle keeps it."""
    handle = (run / "train.lock").open("a")
    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return handle


def nothing(run: Path, case: Path) -> None:
    pass


TRAIN = ["train", "--algo", "drq", "--task", "cartpole_swingup", "--preset", "smoke", "--out", "{case}/new", "--set"]
REPORT = ["report", "tables", "{run}", "--out", "{case}/report"]
EVAL = ["eval", "{run}", "--workers", "1", "--episodes", "1"]
DRY_RUN = ["sweep", "{case}/sweep.yaml", "--dry-run"]
SHOW = ["show", "--task", "cartpole_swingup", "--shifts", "none", "--image-size", "32"]

CASES = [
    # garbled results are refused, never used or added to
    ("eval.csv cut mid-line, report", REPORT, edit("eval.csv", lambda t: t[:-7]), "eval.csv is cut short"),
    ("eval.csv cut mid-line, eval", EVAL, edit("eval.csv", lambda t: t[:-7]), "eval.csv is cut short"),
    ("eval of an unfinished run", EVAL, lambda run, case: (run / "summary.json").unlink(), "is not finished"),
    ("eval of a run in training", EVAL, training_elsewhere, "another process is training or evaluating"),
    ("report of an unfinished run", REPORT, summary(steps=25), "the run is unfinished"),
    ("config.yaml cut before train:, report", REPORT, edit("config.yaml", lambda t: t[: t.index("train:")]),
     "config.yaml: train is missing"),
    ("config.yaml cut before train:, eval", EVAL, edit("config.yaml", lambda t: t[: t.index("train:")]),
     "config.yaml: train is missing"),
    ("config.yaml without a field", REPORT, edit("config.yaml", lambda t: t.replace("  shift_pad: 4\n", "")),
     "agent.shift_pad is missing"),
    ("config.yaml with a bad value", EVAL, edit("config.yaml", lambda t: t.replace("actor_lr: 0.001", "actor_lr: -1")),
     "agent.actor_lr must be positive"),
    # values that used to crash later are refused before anything is made
    ("negative learning rate", [*TRAIN, "agent.actor_lr=-1"], nothing, "agent.actor_lr must be positive"),
    ("NaN learning rate", [*TRAIN, "agent.critic_lr=nan"], nothing, "agent.critic_lr must be a finite number"),
    ("infinite learning rate", [*TRAIN, "agent.alpha_lr=inf"], nothing, "agent.alpha_lr must be a finite number"),
    ("alpha_beta1 above 1", [*TRAIN, "agent.alpha_beta1=1.5"], nothing, "agent.alpha_beta1 must lie in [0, 1)"),
    ("negative temperature", [*TRAIN, "agent.init_temperature=-1"], nothing, "agent.init_temperature must be positive"),
    ("NaN log std", [*TRAIN, "agent.log_std_min=nan"], nothing, "agent.log_std_min must be a finite number"),
    ("log std bounds crossed", [*TRAIN, "agent.log_std_min=5"], nothing, "log_std_min must be below"),
    ("no seed steps", [*TRAIN, "train.seed_steps=0"], nothing, "train.seed_steps must be at least 1"),
    ("replay of a stack", [*TRAIN, "train.replay_capacity=3"], nothing, "must exceed env.frame_stack=3"),
    ("no seed steps, sweep", DRY_RUN, sweep(overrides=["train.seed_steps=0"]), "train.seed_steps must be at least 1"),
    ("small replay, sweep", DRY_RUN, sweep(overrides=["train.replay_capacity=2"]), "must exceed env.frame_stack"),
    ("NaN learning rate, sweep", DRY_RUN, sweep(overrides=["agent.actor_lr=nan"]), "must be a finite number"),
    # corrupt files of a run, and other files the user passes
    ("random summary.json", REPORT, write("summary.json", RANDOM), "summary.json is not a text file"),
    ("summary.json cut short", EVAL, edit("summary.json", lambda t: t[: len(t) // 2]),
     "summary.json is not valid JSON"),
    ("summary.json without returns", REPORT, summary(returns={}), "has no results in 'returns'"),
    ("summary.json of another run", REPORT, summary(seed=7), "the two files are of different runs"),
    ("random config.yaml", EVAL, write("config.yaml", RANDOM), "config.yaml is not a text file"),
    ("config.yaml no YAML", REPORT, write("config.yaml", "algo: [drq\n"), "config.yaml is not valid YAML"),
    ("config.yaml a list", REPORT, write("config.yaml", "- drq\n"), "config.yaml: the file must be a mapping"),
    ("random eval.csv", REPORT, write("eval.csv", RANDOM), "eval.csv is not a text file"),
    ("eval.csv with text for a number", REPORT, edit("eval.csv", lambda t: t.replace(",none,", ",none,abc", 1)),
     "row 2 of"),
    ("random train.csv", ["report", "grad", "{run}", "--out", "{case}/grad"], write("train.csv", RANDOM),
     "train.csv is not a text file"),
    ("random colour file", [*EVAL, "--shifts", "color_easy", "--color-file", "{case}/colors.json"],
     lambda run, case: (case / "colors.json").write_bytes(RANDOM), "the colour file"),
    ("random sweep file", DRY_RUN, lambda run, case: (case / "sweep.yaml").write_bytes(RANDOM),
     "sweep.yaml is not a text file"),
    ("random checkpoint", EVAL, write("checkpoints/latest.pt", RANDOM), "latest.pt is corrupt"),
    ("checkpoint without a key", EVAL, checkpoint(lambda state: state.pop("rng")), "latest.pt lacks rng"),
    ("checkpoint without a key, resume", ["train", "--resume", "{run}"],
     checkpoint(lambda state: state.pop("rng"), drop_summary=True), "latest.pt lacks rng"),
    ("agent of another version", EVAL, checkpoint(foreign_agent), "does not fit the DrQ agent"),
    # and the smaller slips
    ("a task twice in a sweep", DRY_RUN, sweep(tasks=["cartpole_swingup", "cartpole_swingup"]),
     "tasks lists 'cartpole_swingup' twice"),
    ("a variant named like an algorithm", DRY_RUN, sweep(variants={"sac": {"algo": "drq"}}),
     "variant 'sac' has the name of an algorithm"),
    ("a shift twice", [*EVAL, "--shifts", "none", "none"], nothing, "shift none is named twice"),
    ("show without .png", [*SHOW, "--out", "{case}/gallery"], nothing, "--out must name a .png file"),
    ("show of a million frames", [*SHOW, "--frames", "1000000", "--out", "{case}/g.png"], nothing,
     "--frames must lie in 1..20"),
    ("show into a file", [*SHOW, "--out", "{run}/summary.json/g.png"], nothing, "cannot create the folder"),
    ("report into a file", ["report", "tables", "{run}", "--out", "{run}/summary.json"], nothing,
     "cannot create the folder"),
]
if not torch.cuda.is_available():
    CASES += [
        ("CUDA without a GPU", [*TRAIN, "train.device=cuda"], nothing, "finds no CUDA device"),
        ("CUDA without a GPU, sweep", DRY_RUN, sweep(overrides=["train.device=cuda"]), "finds no CUDA device"),
    ]


def contents(folder: Path) -> dict[str, str]:
    """Every file and folder under `folder`, files with the hash of their bytes."""
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "folder"
        for path in sorted(folder.rglob("*"))
    }


@pytest.mark.parametrize("argv, corrupt, phrase", [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_a_mistake_is_one_line_and_changes_nothing(capsys, tmp_path, tiny_run, argv, corrupt, phrase):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    keep = corrupt(run, tmp_path)  # noqa: F841 (a lock stays held while its handle lives)
    before = contents(tmp_path)
    code, _, err = run_cli(capsys, *(arg.format(run=run, case=tmp_path) for arg in argv))
    assert code != 0
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert phrase in err, err
    assert contents(tmp_path) == before, "the user's files changed"
