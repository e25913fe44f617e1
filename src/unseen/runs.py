"""Runs for reports: finding every finished run under some folders, reading each one's summary and config, and
naming its METHOD.

A run's METHOD is its algorithm, plus its variant as the algorithm's registry entry names it (CG2A's ablation
switches when they are not the full method: `AgentSpec.variants`), plus any other
config field in which it differs from runs of the same algorithm on the same task (fields that cannot change what
a run learns, `UNCOMPARED_FIELDS`, aside): runs are averaged together only when their configs agree. The same seed
of a method in two folders makes two methods, labelled by folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from unseen.agents import REGISTRY, algos
from unseen.config import to_dict
from unseen.envs import all_shifts
from unseen.errors import UserError
from unseen.rundir import CONFIG_FILE, EVAL_LOG, SUMMARY_FILE, read_config, read_eval, read_summary

UNCOMPARED_FIELDS = frozenset(
    {
        "seed",  # what seeds are for
        "train.tensorboard", "train.video", "train.device",  # outputs and hardware
        "train.threads",  # the order of floating-point sums, like the hardware: not what a method is
        "train.checkpoint_every",  # a resumed run equals an uninterrupted one (tests/test_train.py)
        "train.eval_episodes", "train.final_eval_episodes", "train.eval_shifts",  # what is measured, not learned
        "agent.grad_log_every",  # diagnostics read gradients, never change them
    }
)
"""Config fields that cannot change what a run learns: runs that differ only in these are one method."""


def collect(dirs: list[Path]) -> pd.DataFrame:
    """One row per (run, shift) from every summary.json at any depth under `dirs`, with the run's METHOD (and its
    success rate where the run's family reports one). A run found under two of `dirs` (`results results/cpu`) is one
    run, never a second seed."""
    found: dict[Path, Path] = {}
    for root in dirs:
        if not root.exists():
            raise UserError(f"{root} does not exist; pass run directories or folders that hold them")
        for path in sorted(root.rglob(SUMMARY_FILE)):
            found.setdefault(path.parent.resolve(), path.parent)
    runs = [load_run(run_dir) for run_dir in found.values()]
    if not runs:
        raise UserError(f"no finished runs ({SUMMARY_FILE}) under {', '.join(map(str, dirs))}")
    presets = sorted({run.summary["preset"] for run in runs})
    if len(presets) > 1:
        raise UserError(f"runs of different presets ({', '.join(presets)}) cannot share a table; report them apart")
    labels = method_labels(runs)
    rows = []
    for run in runs:
        summary = run.summary
        method, stream = labels[run.path]
        for shift, result in summary["returns"].items():
            rows.append(
                {
                    "run": run.path,
                    "algo": run.algo,
                    "method": method,
                    "stream": stream,
                    "task": summary["task"],
                    "preset": summary["preset"],
                    "seed": summary["seed"],
                    "frames": summary["frames"],
                    "shift": shift,
                    "return": result["mean"],
                    "episodes": result["episodes"],
                    **({"success": result["success"]} if "success" in result else {}),
                    "source": result.get("source", "none" if shift == "none" else "unrecorded"),
                    "intensity": result.get("intensity", np.nan),
                    "wall_time_min": summary["wall_time_s"] / 60 if "wall_time_s" in summary else np.nan,
                    "precision": run.config.get("agent.precision", "unrecorded"),
                    **variant_columns(run.algo, run.config),
                }
            )
    return with_success_after_episodes(pd.DataFrame(rows))


def with_success_after_episodes(runs: pd.DataFrame) -> pd.DataFrame:
    """`runs` with its `success` column (the success rate of families that report one, NaN for others' runs) right
    after `episodes`; without one when no run reports success (DMControl's): their reports are what they were."""
    if "success" not in runs.columns:
        return runs
    columns = [c for c in runs.columns if c != "success"]
    at = columns.index("episodes") + 1
    return runs[[*columns[:at], "success", *columns[at:]]]


@dataclass(frozen=True)
class Run:
    """A finished run: where it is, its summary.json, and its config.yaml flattened to `section.field` keys (read
    through `unseen.config.upgraded`: fields added since take the values older runs computed with)."""

    path: str
    summary: dict[str, Any]
    config: dict[str, Any]

    @property
    def algo(self) -> str:
        return self.summary["algo"]


def load_run(run_dir: Path) -> Run:
    """A finished run's files, every one checked (`unseen.rundir`'s readers) before a report writes anything: its
    config, its summary (of the run's last step: older versions' `unseen eval` wrote one for unfinished runs too)
    and its evaluations."""
    if not (run_dir / CONFIG_FILE).is_file():
        raise UserError(
            f"{run_dir} has {SUMMARY_FILE} but no {CONFIG_FILE}; reports need the config to tell methods apart"
        )
    cfg = read_config(run_dir)
    summary = read_summary(run_dir, cfg)
    if summary["steps"] != cfg.train.steps:
        raise UserError(
            f"{run_dir / SUMMARY_FILE} is of step {summary['steps']} of the run's {cfg.train.steps}: the run is "
            f"unfinished; delete the file and finish it (unseen train --resume {run_dir}), or leave it out"
        )
    if (run_dir / EVAL_LOG).exists():
        read_eval(run_dir)
    return Run(str(run_dir), summary, flatten(to_dict(cfg)))


def flatten(config: dict[str, Any]) -> dict[str, Any]:
    """`{"agent": {"hidden_dim": 8}, "seed": 1}` -> `{"agent.hidden_dim": 8, "seed": 1}`."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, dict):
            flat |= {f"{key}.{name}": inner for name, inner in value.items()}
        else:
            flat[key] = value
    return flat


def method_labels(runs: list[Run]) -> dict[str, tuple[str, str]]:
    """Each run's METHOD and the name its bootstrap draws are seeded by.

    The METHOD is `algo`, then in brackets its variant (CG2A's ablation) and every compared config field in which
    it differs from another run of the same algorithm, variant and task, then, when runs so named share a seed on a
    task, the folder each comes from: one seed twice is two studies (the same method re-run on other code, say),
    never two seeds to average. The seeding name leaves the folder out, so that a study's intervals in a report of
    several studies are those of its own report.
    """
    def base(run: Run) -> tuple[str, ...]:
        variants = REGISTRY[run.algo].variants if run.algo in REGISTRY else None
        return (run.algo, *(variants.label(variants.of(run.config)) if variants else ()))

    groups: dict[tuple, list[Run]] = {}
    for run in runs:
        groups.setdefault((run.summary["task"], base(run)), []).append(run)
    parts: dict[str, list[str]] = {}
    for group in groups.values():
        shared = set.intersection(*(set(run.config) for run in group)) - UNCOMPARED_FIELDS
        differing = sorted(key for key in shared if len({repr(run.config[key]) for run in group}) > 1)
        for run in group:
            parts[run.path] = [*base(run), *(f"{key}={show_value(run.config[key])}" for key in differing)]
    named: dict[tuple, list[Run]] = {}
    for run in runs:
        named.setdefault((run.summary["task"], *parts[run.path]), []).append(run)
    labels = {}
    for group in named.values():
        seeds = [run.summary["seed"] for run in group]
        folder = {run.path: Path(run.path).resolve().parent for run in group}
        names = folder_names(list(folder.values()))
        split = len(set(seeds)) < len(seeds) and len(names) > 1
        for run in group:
            stream = bracketed(parts[run.path])
            labels[run.path] = (bracketed([*parts[run.path], names[folder[run.path]]]) if split else stream, stream)
    return labels


def bracketed(parts: list[str]) -> str:
    """`["drq", "a=1", "b=2"]` -> `drq[a=1, b=2]`; `["drq"]` -> `drq`."""
    algo, *rest = parts
    return f"{algo}[{', '.join(rest)}]" if rest else algo


def folder_names(folders: list[Path]) -> dict[Path, str]:
    """Each folder by what follows the path components all of them share (at least its own name), ending in `/` so
    that it reads as a folder, never as a config field: `results/cpu/runs` -> `cpu/runs/` beside `results/old/runs`."""
    unique = sorted(set(folders))
    shared = 0
    while shared < min(len(f.parts) for f in unique) - 1 and len({f.parts[shared] for f in unique}) == 1:
        shared += 1
    return {folder: "/".join(folder.parts[shared:]) + "/" for folder in unique}


def show_value(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return f"{value:g}" if isinstance(value, float) else str(value)


def method_order(runs: pd.DataFrame) -> list[str]:
    """Methods in a fixed order: by algorithm as registered, its variants in the order its registry entry gives
    (CG2A's ablations as in Table 4), then by name."""
    methods = runs.drop_duplicates("method")

    def key(row: dict[str, Any]) -> tuple:
        algo_rank = algos().index(row["algo"]) if row["algo"] in algos() else len(algos())
        variants = REGISTRY[row["algo"]].variants if row["algo"] in REGISTRY else None
        return algo_rank, row["algo"], variants.rank(row) if variants else (), row["method"]

    return [row["method"] for row in sorted(methods.to_dict("records"), key=key)]


def all_variant_columns() -> tuple[str, ...]:
    """Every registered algorithm's variant columns, each once: the columns `collect` adds to every row."""
    return tuple(dict.fromkeys(
        column for spec in REGISTRY.values() if spec.variants for column in spec.variants.columns
    ))


def variant_columns(algo: str, config: dict[str, Any]) -> dict[str, Any]:
    """A run's values of every variant column: its algorithm's from its config, None in the others."""
    columns: dict[str, Any] = dict.fromkeys(all_variant_columns())
    variants = REGISTRY[algo].variants if algo in REGISTRY else None
    return columns | (variants.of(config) if variants else {})


def shift_order() -> dict[str, int]:
    """Shifts in benchmark order: every registered family's, "none" first."""
    return {shift: i for i, shift in enumerate(all_shifts())}
