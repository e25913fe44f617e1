"""CG2A's gradient diagnostics as pictures and tables (the paper's Figure 1): `unseen report grad RUN_DIR...`.

A CG2A run logs, every `agent.grad_log_every` updates, each view's critic-gradient norm, the weights applied,
the pairwise cosines, the conflict fraction and gamma (`unseen.grad.diagnostics`, into train.csv under `grad/`).
This module reads them back: per run `grad_magnitude.png`, `grad_cosine.png`, `grad_over_training.png` and
`grad_summary.md`/`.csv`; across several runs (seeds) `grad_seeds.md`/`.csv`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from unseen.errors import UserError
from unseen.rundir import TRAIN_LOG, output_folder, read_train
from unseen.tables import write_text


def grad_log(run_dir: Path) -> pd.DataFrame:
    """The rows of a CG2A run's train.csv that hold gradient diagnostics: `step` and every `grad/` column."""
    path = run_dir / TRAIN_LOG
    if not path.is_file():
        raise UserError(f"{path} does not exist; pass a run directory made by unseen train --algo cg2a")
    log = read_train(run_dir)
    columns = [c for c in log.columns if c.startswith("grad/")]
    if not any(c.startswith("grad/norm/") for c in columns):
        raise UserError(
            f"{path} has no grad/ columns; gradient diagnostics come from CG2A runs (agent.grad_log_every > 0)"
        )
    return log[["step", *columns]].dropna(subset=[c for c in columns if c.startswith("grad/norm/")])


def _strip(frame: pd.DataFrame, prefix: str) -> pd.DataFrame:
    columns = [c for c in frame.columns if c.startswith(prefix)]
    return frame[columns].rename(columns=lambda c: c.removeprefix(prefix))


def grad_diagnostics(log: pd.DataFrame) -> tuple[pd.Series, pd.DataFrame]:
    """CG2A's Figure 1 from a run's `grad_log`: the mean normalised gradient magnitude per augmentation
    (each row's `||g_i|| / sum_j ||g_j||`, averaged over rows) and every logged pairwise cosine."""
    norms = _strip(log, "grad/norm/")
    magnitude = norms.div(norms.sum(axis=1).where(lambda s: s > 0), axis=0).mean()
    return magnitude, _strip(log, "grad/cos/")


def grad_summary(log: pd.DataFrame) -> pd.DataFrame:
    """One row per augmentation (magnitude share, GAS weight) and per pair (cosine), each with the share of
    logged rows where it was negative, and the conflict fraction and gamma: what `grad_summary.md` prints."""
    magnitude, cosines = grad_diagnostics(log)
    weights = _strip(log, "grad/weight/")
    rows = [{"quantity": "magnitude share", "of": name, "mean": magnitude[name], "min": np.nan, "max": np.nan,
             "negative": np.nan} for name in magnitude.index]
    half = len(log) // 2
    conflict = log["grad/conflict_fraction"]
    named = [("weight", name, weights[name]) for name in weights.columns]
    named += [("cosine", pair, cosines[pair]) for pair in cosines.columns]
    named += [("conflict fraction", "whole run", conflict)]
    if half:  # whether conflicts grow or fade as the critic learns
        named += [("conflict fraction", "first half", conflict.iloc[:half]),
                  ("conflict fraction", "second half", conflict.iloc[half:])]
    named += [("gamma", "whole run", log["grad/gamma"])]
    for quantity, of, series in named:
        values = series.dropna()
        signed = quantity in ("weight", "cosine")  # the only quantities whose sign means something
        rows.append({"quantity": quantity, "of": of, "mean": values.mean(), "min": values.min(), "max": values.max(),
                     "negative": (values < 0).mean() if signed else np.nan})
    return pd.DataFrame(rows)


def number(value: float, digits: int = 3) -> str:
    """A table cell: the value with `digits` decimals, empty where there is none."""
    return "" if pd.isna(value) else f"{value:.{digits}f}"


def grad_summary_markdown(summary: pd.DataFrame, run_dir: Path, rows: int) -> str:
    lines = [f"# Gradient diagnostics of `{run_dir.name}`\n",
             "| quantity | of | mean | min | max | share of rows < 0 |", "|---|---|---|---|---|---|"]
    lines += [f"| {r.quantity} | {r.of} | {number(r.mean)} | {number(r.min)} | {number(r.max)} "
              f"| {number(r.negative, 2)} |"
              for r in summary.itertuples()]
    lines += ["", f"{rows} rows of train.csv, one per episode. Each holds the mean of the diagnostics over that "
              "episode's logged updates (every `agent.grad_log_every`-th), or the latest logged update's values in "
              "runs made before unseen's commit 251c8c4 (`versions.unseen_commit` in summary.json), such as the "
              "`cpu` study's. "
              "Min and max are over these rows. Magnitude share: `||g_i|| / sum_j ||g_j||` averaged over rows "
              "(grad_magnitude.png). Weight: the `w_i` applied (GAS, Eq. 8, or uniform). Cosine: between the two "
              "views' critic gradients over every parameter the critic's optimizer steps (grad_cosine.png). Conflict "
              "fraction: the share of gradient components whose signs disagree across views (what Soft Gradient "
              "Surgery damps by gamma). grad_over_training.png draws them against the training step.", ""]
    return "\n".join(lines)


def write_grad_report(run_dir: Path, out: Path) -> tuple[list[Path], pd.DataFrame]:
    """`grad_magnitude.png` (bars per augmentation), `grad_cosine.png` (histogram of pairwise cosines),
    `grad_over_training.png` (weights and conflict fraction against the step) and `grad_summary.md`/`.csv`;
    returns the files written and the summary."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    log = grad_log(run_dir)
    magnitude, cosines = grad_diagnostics(log)
    output_folder(out)
    rows = len(cosines.dropna(how="all"))
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.bar(magnitude.index, magnitude.values, color="tab:green")
    ax.set_ylabel("normalised gradient magnitude")
    ax.set_title(f"mean of ||g_i|| / sum_j ||g_j|| over {rows} episodes", fontsize=9)
    fig.tight_layout()
    bars = out / "grad_magnitude.png"
    fig.savefig(bars, dpi=120)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(5, 3.5))
    values = [cosines[c].dropna().values for c in cosines.columns]
    ax.hist(values, bins=20, range=(-1, 1), stacked=True, label=list(cosines.columns))
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_xlabel("cosine of the two gradients (< 0: conflict)")
    ax.set_ylabel("episodes (rows of train.csv)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    histogram = out / "grad_cosine.png"
    fig.savefig(histogram, dpi=120)
    plt.close(fig)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(6, 5), sharex=True)
    for name, series in _strip(log, "grad/weight/").items():
        top.plot(log["step"], series, label=name, linewidth=1)
    top.axhline(0, color="black", linewidth=0.6)
    top.set_ylabel("weight w_i")
    top.legend(fontsize=7, ncol=4)
    bottom.plot(log["step"], log["grad/conflict_fraction"], color="tab:red", linewidth=1)
    bottom.set_ylabel("conflict fraction")
    bottom.set_xlabel("agent step")
    fig.tight_layout()
    over_time = out / "grad_over_training.png"
    fig.savefig(over_time, dpi=120)
    plt.close(fig)
    summary = grad_summary(log)
    table = out / "grad_summary.csv"
    summary.to_csv(table, index=False, float_format="%.6g")
    text = write_text(out / "grad_summary.md", grad_summary_markdown(summary, run_dir, rows))
    return [bars, histogram, over_time, table, text], summary


def grad_seeds(summaries: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Per (quantity, of) of the runs' `grad_summary`s: the mean and std (ddof=0) across runs of each run's mean,
    the number of runs that have it, and each run's mean (a column per run name)."""
    means = pd.concat({name: summary.set_index(["quantity", "of"])["mean"] for name, summary in summaries.items()},
                      axis=1, sort=False)
    spread = pd.DataFrame(
        {"mean": means.mean(axis=1), "std": means.std(axis=1, ddof=0), "runs": means.notna().sum(axis=1)}
    )
    return pd.concat([spread, means], axis=1).reset_index()


def grad_seeds_markdown(seeds: pd.DataFrame, names: list[str]) -> str:
    lines = ["# Gradient diagnostics across runs\n", "| quantity | of | mean ± std | " + " | ".join(names) + " |",
             "|---|---|---|" + "---|" * len(names)]
    lines += [f"| {r['quantity']} | {r['of']} | {number(r['mean'])} ± {number(r['std'])} | "
              + " | ".join(number(r[name]) for name in names) + " |" for _, r in seeds.iterrows()]
    lines += ["", f"Each run's mean over its rows of train.csv (its own `<run>/grad_summary.md`), then the mean and "
              f"the standard deviation (ddof=0) of those means across the {len(names)} runs.", ""]
    return "\n".join(lines)


def write_grad_reports(run_dirs: list[Path], out: Path) -> list[Path]:
    """One run: `write_grad_report` into `out`. Several (say, the seeds of one method): each run's report in
    `out/<run name>` and `grad_seeds.md`/`.csv` in `out`, every summary quantity across runs."""
    if len(run_dirs) == 1:
        return write_grad_report(run_dirs[0], out)[0]
    names = [run_dir.name for run_dir in run_dirs]
    if len(set(names)) < len(names):
        raise UserError(
            f"--grad runs need distinct directory names (their reports go to {out}/<name>); got {', '.join(names)}"
        )
    written, summaries = [], {}
    for run_dir in run_dirs:
        files, summaries[run_dir.name] = write_grad_report(run_dir, out / run_dir.name)
        written += files
    seeds = grad_seeds(summaries)
    seeds.to_csv(out / "grad_seeds.csv", index=False, float_format="%.6g")
    return [*written, out / "grad_seeds.csv", write_text(out / "grad_seeds.md", grad_seeds_markdown(seeds, names))]
