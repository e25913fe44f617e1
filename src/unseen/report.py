"""Tables from run directories: mean +- std over seeds of each seed's mean return, per task, shift and method."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from unseen.envs.shifts import SHIFTS
from unseen.errors import UserError
from unseen.rundir import SUMMARY_FILE


def collect(dirs: list[Path]) -> pd.DataFrame:
    """One row per (run, shift) from every summary.json at any depth under `dirs`."""
    rows = []
    for root in dirs:
        if not root.exists():
            raise UserError(f"{root} does not exist; pass run directories or folders that hold them")
        for path in sorted(root.rglob(SUMMARY_FILE)):
            summary = json.loads(path.read_text())
            for shift, result in summary["returns"].items():
                rows.append(
                    {
                        "run": str(path.parent),
                        "algo": summary["algo"],
                        "task": summary["task"],
                        "preset": summary["preset"],
                        "seed": summary["seed"],
                        "frames": summary["frames"],
                        "shift": shift,
                        "return": result["mean"],
                        "episodes": result["episodes"],
                        "source": result.get("source", "none" if shift == "none" else "unrecorded"),
                        "wall_time_min": summary["wall_time_s"] / 60,
                    }
                )
    if not rows:
        raise UserError(f"no finished runs ({SUMMARY_FILE}) under {', '.join(map(str, dirs))}")
    frame = pd.DataFrame(rows)
    presets = sorted(frame["preset"].unique())
    if len(presets) > 1:
        raise UserError(f"runs of different presets ({', '.join(presets)}) cannot share a table; report them apart")
    return frame


def table(runs: pd.DataFrame) -> pd.DataFrame:
    """Rows (task, shift) with shifts in benchmark order, per method: mean and std across seeds, seed count."""
    grouped = runs.groupby(["task", "shift", "algo"])["return"]
    stats = pd.DataFrame({"mean": grouped.mean(), "std": grouped.std(ddof=0), "seeds": grouped.size()}).reset_index()
    order = {shift: i for i, shift in enumerate(SHIFTS)}
    return stats.sort_values(["task", "shift", "algo"], key=lambda c: c.map(order) if c.name == "shift" else c)


def markdown(runs: pd.DataFrame) -> str:
    """The table as Markdown, `mean +- std` per cell, with a caption saying what the numbers are."""
    stats = table(runs)
    stats["cell"] = stats.apply(lambda r: f"{r['mean']:.0f} ± {r['std']:.0f}", axis=1)
    wide = stats.pivot(index=["task", "shift"], columns="algo", values="cell").reindex(
        pd.MultiIndex.from_frame(stats[["task", "shift"]].drop_duplicates())
    ).reset_index()
    header = "| " + " | ".join(wide.columns) + " |"
    lines = [header, "|" + "---|" * len(wide.columns)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in wide.itertuples(index=False)]
    seeds = ", ".join(f"{algo}: {n}" for algo, n in runs.groupby("algo")["seed"].nunique().items())
    low, high = runs["episodes"].min(), runs["episodes"].max()
    episodes = f"{low}" if low == high else f"{low} to {high}"
    caption = (
        f"Preset `{runs['preset'].iloc[0]}`, {runs['frames'].max():,} environment frames; each cell is the mean over "
        f"seeds ({seeds}) of each seed's mean return over {episodes} evaluation episodes, ± the standard deviation "
        f"across seeds (numpy's, ddof=0). Data: "
        + "; ".join(
            f"{shift}: {', '.join(sorted(group['source'].unique()))}"
            for shift, group in runs.groupby("shift", sort=False)
            if shift != "none"
        )
        + "."
    )
    return "\n".join(lines) + "\n\n" + caption + "\n"


def write_report(dirs: list[Path], out: Path) -> Path:
    """Write `table.md`, `table.csv` and `runs.csv` into `out`; returns the Markdown file."""
    runs = collect(dirs)
    out.mkdir(parents=True, exist_ok=True)
    runs.to_csv(out / "runs.csv", index=False)
    table(runs).to_csv(out / "table.csv", index=False)
    path = out / "table.md"
    path.write_text(markdown(runs))
    return path
