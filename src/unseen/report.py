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


def grad_diagnostics(run_dir: Path) -> tuple[pd.Series, pd.DataFrame]:
    """CG2A's Figure 1 from a run's train.csv: the mean normalised gradient magnitude per augmentation
    (each row's `||g_i|| / sum_j ||g_j||`, averaged over rows) and every logged pairwise cosine."""
    path = run_dir / "train.csv"
    if not path.is_file():
        raise UserError(f"{path} does not exist; pass a run directory made by unseen train --algo cg2a")
    log = pd.read_csv(path)
    norms = log[[c for c in log.columns if c.startswith("grad/norm/")]].dropna()
    cosines = log[[c for c in log.columns if c.startswith("grad/cos/")]]
    if norms.empty:
        raise UserError(f"{path} has no grad/ columns; gradient diagnostics come from CG2A runs (agent.grad_log_every > 0)")
    norms.columns = [c.removeprefix("grad/norm/") for c in norms.columns]
    cosines.columns = [c.removeprefix("grad/cos/") for c in cosines.columns]
    magnitude = norms.div(norms.sum(axis=1).where(lambda s: s > 0), axis=0).mean()
    return magnitude, cosines


def write_grad_report(run_dir: Path, out: Path) -> list[Path]:
    """`grad_magnitude.png` (bars per augmentation) and `grad_cosine.png` (histogram of pairwise cosines)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    magnitude, cosines = grad_diagnostics(run_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = len(cosines.dropna(how="all"))
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.bar(magnitude.index, magnitude.values, color="tab:green")
    ax.set_ylabel("normalised gradient magnitude")
    ax.set_title(f"mean of ||g_i|| / sum_j ||g_j|| over {rows} logged updates", fontsize=9)
    fig.tight_layout()
    bars = out / "grad_magnitude.png"
    fig.savefig(bars, dpi=120)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(5, 3.5))
    values = [cosines[c].dropna().values for c in cosines.columns]
    ax.hist(values, bins=20, range=(-1, 1), stacked=True, label=list(cosines.columns))
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_xlabel("cosine of the two gradients (< 0: conflict)")
    ax.set_ylabel("logged updates")
    ax.legend(fontsize=7)
    fig.tight_layout()
    histogram = out / "grad_cosine.png"
    fig.savefig(histogram, dpi=120)
    plt.close(fig)
    return [bars, histogram]
