"""The report's figures: learning curves per task, and rliable's interval and probability-of-improvement plots.

Curves use whatever (shift, step) evaluations each run has in its eval.csv: periodic ones (the training
environment, and other shifts when `train.eval_shifts` asked for them) and the final ones of `unseen eval`.
A method with a single evaluation on a shift is drawn as one point with its interval and named in the panel's
title and the caption, so a missing curve is never mistaken for a flat one.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pandas as pd

from unseen import stats
from unseen.config import ReportConfig
from unseen.envs import all_shifts, families_of, family_of
from unseen.rundir import EVAL_LOG, read_eval

PANEL_COLUMNS = 3
TITLE_WIDTH = 24
"""Characters per line of an interval panel's title: a comparison named by its tasks wraps, a shift's name fits."""


def pyplot():
    """matplotlib without a display, imported on first use (the CLI answers --help without it)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    return plt


def colors(order: list[str]) -> dict[str, tuple]:
    """One colour per method, the same in every figure."""
    palette = pyplot().get_cmap("tab10")
    return {method: palette(i % 10) for i, method in enumerate(order)}


def evaluations(runs: pd.DataFrame) -> pd.DataFrame:
    """Every evaluation row of every run's eval.csv with its task, method and seed; the last row wins where a
    (frames, shift) point was evaluated twice (eval.csv is append-only: a re-evaluation replaces the first)."""
    frames = []
    for run in runs.drop_duplicates("run").itertuples():
        if (Path(run.run) / EVAL_LOG).is_file():
            rows = read_eval(Path(run.run))
            if "adapted" in rows:  # test-time adaptation's rows (`unseen eval --adapt`) are not the curve's
                rows = rows[~rows["adapted"].eq(True)]
            rows = rows[["frames", "shift", "return_mean"]]
            rows = rows.drop_duplicates(["frames", "shift"], keep="last")
            frames.append(rows.assign(task=run.task, method=run.method, seed=run.seed))
    if not frames:
        return pd.DataFrame(columns=["frames", "shift", "return_mean", "task", "method", "seed"])
    return pd.concat(frames)


def curve(
    rows: pd.DataFrame, options: ReportConfig, *names: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int] | None:
    """Frames, mean over seeds, 95% bootstrap band and seed count at the points every seed evaluated; None if
    there is no such point."""
    table = rows.pivot(index="seed", columns="frames", values="return_mean").dropna(axis=1)
    if table.empty:
        return None
    mean, low, high = stats.mean_band(table.to_numpy(), options.reps, stats.generator(options.seed, *names))
    return table.columns.to_numpy(), mean, low, high, len(table)


def draw_curves(
    task: str, rows: pd.DataFrame, order: list[str], streams: dict[str, str], path: Path, options: ReportConfig
) -> dict[str, list[str]]:
    """One figure for `task`: a panel per shift. Returns per shift the methods drawn as a single final point. Each
    band's draws are seeded by the method's seeding name (`report.method_labels`)."""
    plt = pyplot()
    shifts = [s for s in all_shifts() if s in set(rows["shift"])]
    columns = min(PANEL_COLUMNS, len(shifts))
    panel_rows = -(-len(shifts) // columns)
    fig, axes = plt.subplots(panel_rows, columns, figsize=(4.2 * columns, 3.3 * panel_rows), squeeze=False)
    palette = colors(order)
    point_only: dict[str, list[str]] = {}
    for ax, shift in zip(axes.flat, shifts, strict=False):  # the grid's panels beyond the shifts are hidden below
        for method in order:
            found = curve(rows[(rows["shift"] == shift) & (rows["method"] == method)], options, task, shift,
                          streams[method])
            if found is None:
                continue
            frames, mean, low, high, seeds = found
            label = f"{method} ({seeds} seed{'s' * (seeds > 1)})"
            if len(frames) == 1:
                point_only.setdefault(shift, []).append(method)
                ax.errorbar(frames, mean, yerr=[mean - low, high - mean], fmt="o", color=palette[method], capsize=3,
                            label=label + ", final only")
            else:
                ax.plot(frames, mean, color=palette[method], label=label)
                ax.fill_between(frames, low, high, color=palette[method], alpha=0.2, linewidth=0)
        title = shift if shift != "none" else "none (training environment)"
        if shift in point_only:
            title += "\nfinal evaluation only: " + ", ".join(point_only[shift])
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("environment frames")
        ax.set_ylabel("return")
        ax.set_xlim(0, 1.03 * rows["frames"].max())
        ax.xaxis.set_major_formatter(lambda value, _: f"{value / 1000:g}k")
        ax.set_ylim(*family_of(task).curve_range(task))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper left")
    for ax in axes.flat[len(shifts):]:
        ax.set_visible(False)
    fig.suptitle(f"{task}: mean over seeds, 95% bootstrap band over seeds", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return point_only


def draw_intervals(aggregates: pd.DataFrame, metric: str, order: list[str], score: str, path: Path) -> None:
    """rliable's interval plot of one metric: a panel per comparison (shift, and task set where a shift has several),
    a bar (95% CI) and a tick (point) per method."""
    from rliable import plot_utils

    plt = pyplot()
    rows = aggregates[aggregates["metric"] == metric]
    panels = list(dict.fromkeys(rows["comparison"]))
    by = rows.set_index(["method", "comparison"])
    points = {m: np.array([by["value"].get((m, p), np.nan) for p in panels]) for m in order}
    intervals = {
        m: np.array([[by[c].get((m, p), np.nan) for p in panels] for c in ("ci_low", "ci_high")]) for m in order
    }
    titles = [textwrap.fill(panel, TITLE_WIDTH) for panel in panels]
    fig, axes = plot_utils.plot_interval_estimates(
        points, intervals, metric_names=titles, algorithms=order, colors=colors(order), max_ticks=3,
        xlabel=f"{metric} of {score}", row_height=max(0.45, 1.5 / len(order)), subfigure_width=2.6,
        xlabel_y_coordinate=-0.35 / len(order) ** 0.5,
    )
    for ax in np.atleast_1d(axes):
        ax.set_xlim(0, 1)  # one scale for every shift: a bar's width reads the same everywhere
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def draw_improvement(improvements: pd.DataFrame, order: list[str], path: Path) -> bool:
    """rliable's probability-of-improvement plot, a panel per comparison, each unordered pair once (X after Y in the
    method order: newer methods over their baselines); False when no comparison has two methods."""
    from rliable import plot_utils

    plt = pyplot()
    pairs = improvements[improvements["x"].map(order.index) > improvements["y"].map(order.index)]
    panels = list(dict.fromkeys(pairs["comparison"]))
    if not panels:
        return False
    counts = pairs.groupby("comparison", sort=False).size()
    fig, axes = plt.subplots(len(panels), 1, figsize=(6, 0.4 * counts.sum() + 1.2 * len(panels)), squeeze=False,
                             gridspec_kw={"height_ratios": list(counts + 2), "hspace": 0.9})
    for ax, panel in zip(axes.flat, panels, strict=True):
        rows = pairs[pairs["comparison"] == panel]
        keys = [f"{r.x}|{r.y}" for r in rows.itertuples()]
        plot_utils.plot_probability_of_improvement(
            dict(zip(keys, rows["probability"], strict=True)),
            dict(zip(keys, rows[["ci_low", "ci_high"]].to_numpy(), strict=True)),
            pair_separator="|", ax=ax, xticks=[0, 0.25, 0.5, 0.75, 1.0],
        )
        ax.set_title(panel, fontsize="x-large", pad=22)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return True


def write_figures(runs: pd.DataFrame, aggregates: pd.DataFrame, improvements: pd.DataFrame, order: list[str],
                  out: Path, options: ReportConfig) -> str:
    """Write every figure into `out`; returns their Markdown section (images and captions)."""
    evals = evaluations(runs)
    streams = dict(zip(runs["method"], runs["stream"], strict=True))
    parts = []
    for task in sorted(runs["task"].unique()):
        name = f"curves_{task}.png"
        point_only = draw_curves(task, evals[evals["task"] == task], order, streams, out / name, options)
        missing = "; ".join(f"{shift}: {', '.join(methods)}" for shift, methods in point_only.items())
        parts.append(
            f"![{task}]({name})\n\n{task}: return of the deterministic policy against environment frames, one panel "
            "per shift; lines are the mean over seeds of each evaluation, bands the 95% percentile bootstrap interval "
            f"of that mean over seeds ({options.reps:,} resamples), at the points every seed of a method evaluated. "
            + (f"Only a final evaluation (a point with its interval), no curve: {missing}." if missing else "")
        )
    for metric, name in (("IQM", "iqm.png"), ("optimality gap", "optimality_gap.png")):
        score = "; ".join(family.score_formula() for family in families_of(runs["task"].unique()))
        draw_intervals(aggregates, metric, order, score, out / name)
        parts.append(f"![{metric}]({name})\n\n{metric} per shift: point estimate (tick) and 95% stratified bootstrap "
                     "interval (bar); see the aggregate statistics above.")
    if draw_improvement(improvements, order, out / "improvement.png"):
        parts.append("![P(X > Y)](improvement.png)\n\nProbability that a run of the left method scores above a run "
                     "of the right method on the same task, per shift, with 95% stratified bootstrap intervals.")
    return "\n\n".join(parts) + "\n"
