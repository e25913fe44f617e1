"""Reports from run directories: the CG2A paper's tables, learning curves and rliable's aggregate statistics.

`unseen report DIR... --out DIR` finds every finished run (`summary.json`) at any depth and writes (docs/reports.md
says what each number means):
  table.md / .csv / .tex      Tables 1-2 of the CG2A paper: rows shift and task, columns methods, each cell the
                              mean over seeds of each seed's mean return, +- the standard deviation across seeds
  ablation.md / .csv / .tex   Table 4 (AC, AC+GAS, AC+SGS, full, and fixed or other gamma), when such runs exist
  retention.csv               per shift, task and method: the mean over seeds of return under the shift / return
                              on the training environment (in report.md with the tables)
  curves_<task>.png           return against environment frames, one panel per shift, mean and 95% bootstrap band
  aggregate.csv, improvement.csv, iqm.png, optimality_gap.png, improvement.png
                              IQM, optimality gap and probability of improvement with stratified bootstrap CIs
  report.md                   all of the above with their captions; runs.csv: one row per run and shift

A run's METHOD is its algorithm, plus CG2A's ablation switches when they are not the full method, plus any other
config field in which it differs from runs of the same algorithm on the same task (fields that cannot change what
a run learns, `UNCOMPARED_FIELDS`, aside): runs are averaged together only when their configs agree.
Runs of different presets are never reported together. Runs of several studies are: the tables show every task,
and the aggregates compare methods only over tasks each of them has (`comparisons`); the same seed of a method in two
folders makes two methods, labelled by folder. Text outputs are byte-identical for the same inputs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from unseen import stats
from unseen.config import ALGOS, AgentConfig, ReportConfig, upgraded
from unseen.envs.shifts import SHIFTS
from unseen.errors import UserError
from unseen.rundir import CONFIG_FILE, SUMMARY_FILE

SHIFT_ORDER = {shift: i for i, shift in enumerate(SHIFTS)}

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

_DEFAULT = AgentConfig()


# ----- collecting runs and naming their methods -------------------------------------------------------------


def collect(dirs: list[Path]) -> pd.DataFrame:
    """One row per (run, shift) from every summary.json at any depth under `dirs`, with the run's METHOD. A run found
    under two of `dirs` (`results results/cpu`) is one run, never a second seed."""
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
                    "source": result.get("source", "none" if shift == "none" else "unrecorded"),
                    "intensity": result.get("intensity", np.nan),
                    "wall_time_min": summary["wall_time_s"] / 60 if "wall_time_s" in summary else np.nan,
                    "precision": run.config.get("agent.precision", "unrecorded"),
                    **switches(run.config),
                }
            )
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class Run:
    """A finished run: where it is, its summary.json, and its config.yaml flattened to `section.field` keys (read
    through `upgraded`: DMControl-GB's switches take the values older runs computed with; other fields added since
    are absent)."""

    path: str
    summary: dict[str, Any]
    config: dict[str, Any]

    @property
    def algo(self) -> str:
        return self.summary["algo"]


def load_run(run_dir: Path) -> Run:
    path = run_dir / CONFIG_FILE
    if not path.is_file():
        raise UserError(
            f"{run_dir} has {SUMMARY_FILE} but no {CONFIG_FILE}; reports need the config to tell methods apart"
        )
    summary = json.loads((run_dir / SUMMARY_FILE).read_text())
    return Run(str(run_dir), summary, flatten(upgraded(yaml.safe_load(path.read_text()))))


def flatten(config: dict[str, Any]) -> dict[str, Any]:
    """`{"agent": {"hidden_dim": 8}, "seed": 1}` -> `{"agent.hidden_dim": 8, "seed": 1}`."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, dict):
            flat |= {f"{key}.{name}": inner for name, inner in value.items()}
        else:
            flat[key] = value
    return flat


def switches(config: dict[str, Any]) -> dict[str, Any]:
    """CG2A's ablation switches (Table 4: GAS, SGS; Figure 4: gamma) of a run; empty for other algorithms.

    A config written before a switch existed ran the full method, so a missing field reads as its default.
    """
    if config["algo"] != "cg2a":
        return {"gas": None, "sgs": None, "gamma": None}
    low = config.get("agent.sgs_gamma_low", _DEFAULT.sgs_gamma_low)
    high = config.get("agent.sgs_gamma_high", _DEFAULT.sgs_gamma_high)
    sgs = bool(config.get("agent.cg2a_sgs", _DEFAULT.cg2a_sgs))
    gamma = (f"{low:g}" if low == high else f"U({low:g},{high:g})") if sgs else None
    return {"gas": bool(config.get("agent.cg2a_gas", _DEFAULT.cg2a_gas)), "sgs": sgs, "gamma": gamma}


DEFAULT_GAMMA = f"U({_DEFAULT.sgs_gamma_low:g},{_DEFAULT.sgs_gamma_high:g})"


def ablation_parts(switch: dict[str, Any]) -> list[str]:
    """The label parts of a CG2A ablation: `AC[+GAS][+SGS]` unless both are on, `gamma=...` unless the default."""
    if switch["gas"] is None:
        return []
    parts = [] if switch["gas"] and switch["sgs"] else ["AC" + "+GAS" * switch["gas"] + "+SGS" * switch["sgs"]]
    return parts + ([f"gamma={switch['gamma']}"] if switch["sgs"] and switch["gamma"] != DEFAULT_GAMMA else [])


def method_labels(runs: list[Run]) -> dict[str, tuple[str, str]]:
    """Each run's METHOD and the name its bootstrap draws are seeded by.

    The METHOD is `algo`, then in brackets its CG2A ablation and every compared config field in which it differs
    from another run of the same algorithm, ablation and task (fields a config lacks are not compared), then, when
    runs so named share a seed on a task, the folder each comes from: one seed twice is two studies (the same
    method re-run on other code, say), never two seeds to average. The seeding name leaves the folder out, so that
    a study's intervals in a report of several studies are those of its own report.
    """
    def base(run: Run) -> tuple[str, ...]:
        return (run.algo, *ablation_parts(switches(run.config)))

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
    """Methods in a fixed order: by algorithm as registered, CG2A's ablations as in Table 4, then by name."""
    methods = runs.drop_duplicates("method")

    def key(row: Any) -> tuple:
        algo_rank = ALGOS.index(row.algo) if row.algo in ALGOS else len(ALGOS)
        table4 = 0 if row.gas is None else 2 * bool(row.sgs) + bool(row.gas)  # AC, AC+GAS, AC+SGS, full
        other_gamma = isinstance(row.gamma, str) and row.gamma != DEFAULT_GAMMA
        return algo_rank, row.algo, table4, other_gamma, row.method

    return [row.method for row in sorted(methods.itertuples(), key=key)]


# ----- the generalization table (Tables 1 and 2) -------------------------------------------------------------


def table(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per (shift, task, method), shifts in benchmark order: mean and std (ddof=0) across seeds of each
    seed's mean return, the number of seeds and of evaluation episodes per seed."""
    grouped = runs.groupby(["shift", "task", "method"])
    cells = pd.DataFrame(
        {
            "mean": grouped["return"].mean(),
            "std": grouped["return"].std(ddof=0),
            "seeds": grouped.size(),
            "episodes": grouped["episodes"].min(),
        }
    ).reset_index()
    order = {method: i for i, method in enumerate(method_order(runs))}
    keys = {"shift": SHIFT_ORDER, "method": order}
    return cells.sort_values(["shift", "task", "method"], key=lambda c: c.map(keys[c.name]) if c.name in keys else c)


def cell(mean: float, std: float, seeds: int) -> str:
    # One seed has no spread to report: "± 0" would read as a measured, perfectly stable result.
    return f"{mean:.0f}" if seeds == 1 else f"{mean:.0f} ± {std:.0f}"


def best_flags(values: pd.DataFrame, axis: int) -> pd.DataFrame:
    """True where a mean is the best of its row (axis=1) or column (axis=0) as printed (rounded), ties all best."""
    rounded = values.round(0)
    return rounded.eq(rounded.max(axis=axis), axis=1 - axis) & values.notna()


def generalization(runs: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Means, stds, seed counts and best flags, rows (shift, task), columns methods in `method_order`."""
    cells = table(runs)
    rows = pd.MultiIndex.from_frame(cells[["shift", "task"]].drop_duplicates())
    columns = method_order(runs)
    means, stds, seeds = (
        cells.pivot(index=["shift", "task"], columns="method", values=v).reindex(index=rows, columns=columns)
        for v in ("mean", "std", "seeds")
    )
    return means, stds, seeds, best_flags(means, axis=1)


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows]) + "\n"


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "±": r"$\pm$",
                  "—": "--", "`": "", "✓": r"$\checkmark$", "γ": r"$\gamma$"}


def latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(char, char) for char in str(text))


MARKDOWN = ("**{}**", "—", str)
LATEX = (r"\textbf{{{}}}", "--", latex_escape)


def formatted_cells(
    means: pd.DataFrame, stds: pd.DataFrame, seeds: pd.DataFrame, best: pd.DataFrame, style: tuple
) -> list[list[str]]:
    """Each cell as text in a `style` (MARKDOWN or LATEX): `mean ± std` (the mean alone from one seed), bold where
    best, a dash where missing."""
    bold, missing, escape = style
    return [
        [missing if np.isnan(m) else (bold if b else "{}").format(escape(cell(m, s, n)))
         for m, s, n, b in zip(mrow, srow, nrow, brow, strict=True)]
        for mrow, srow, nrow, brow in zip(means.values, stds.values, seeds.values, best.values, strict=True)
    ]


def markdown(runs: pd.DataFrame) -> str:
    """The generalization table as Markdown, best mean per row in bold, with its caption."""
    means, stds, seeds, best = generalization(runs)
    body = formatted_cells(means, stds, seeds, best, MARKDOWN)
    rows = [[shift, task, *cells] for (shift, task), cells in zip(means.index, body, strict=True)]
    return markdown_table(["shift", "task", *means.columns], rows) + "\n" + caption(runs) + "\n"


def wide_csv(means: pd.DataFrame, stds: pd.DataFrame, seeds: pd.DataFrame, best: pd.DataFrame) -> str:
    """The table as CSV: per method its mean, std and seed count, and the best method(s) of the row."""
    frame = pd.concat({"mean": means, "std": stds, "seeds": seeds}, axis=1).swaplevel(axis=1)
    frame = frame[[(method, stat) for method in means.columns for stat in ("mean", "std", "seeds")]]
    frame.columns = [f"{method} {stat}" for method, stat in frame.columns]
    frame["best"] = [";".join(means.columns[flags]) for flags in best.values]
    return frame.reset_index().to_csv(index=False, float_format="%.6g")


def caption(runs: pd.DataFrame, best: str = "of each row") -> str:
    """What the numbers are: preset, frames, episodes, seeds per method, and where each shift's data came from."""
    seeds = ", ".join(
        f"{m}: {span(runs[runs['method'] == m].groupby('task')['seed'].nunique())}" for m in method_order(runs)
    )
    frames = span(runs["frames"], thousands=True)
    episodes = span(runs["episodes"])
    return (
        f"Preset `{runs['preset'].iloc[0]}`, {frames} environment frames; each cell is the mean over seeds ({seeds}) "
        f"of each seed's mean return over {episodes} evaluation episodes, ± the standard deviation across seeds "
        f"(numpy's, ddof=0; none is printed for one seed); the best mean {best} (as printed) in bold. "
        f"Data: {sources(runs)}.{precisions(runs)}"
    )


def precisions(runs: pd.DataFrame) -> str:
    """A sentence naming each precision and its methods when the runs differ in it (bf16 and float32 runs are
    different computations, agent.precision), else nothing."""
    used = runs.groupby("precision", sort=True)["method"].unique()
    if len(used) < 2:
        return ""
    order = method_order(runs)
    named = [f"{precision} ({', '.join(sorted(methods, key=order.index))})" for precision, methods in used.items()]
    return f" Precision differs: {'; '.join(named)}."


def span(values: pd.Series, thousands: bool = False) -> str:
    """`n` when every value is n, else `low to high`."""
    text = "{:,}" if thousands else "{}"
    low, high = values.min(), values.max()
    return text.format(low) if low == high else f"{text.format(low)} to {text.format(high)}"


def sources(runs: pd.DataFrame) -> str:
    """Per shift (benchmark order) the data sources its evaluations used, with distracting_cs's intensity."""
    parts = []
    for shift in sorted(set(runs["shift"]) - {"none"}, key=SHIFT_ORDER.__getitem__):
        rows = runs[runs["shift"] == shift]
        used = sorted(rows["source"].unique())
        intensities = sorted(rows["intensity"].dropna().unique())
        levels = f" (intensity {', '.join(f'{i:g}' for i in intensities)})" if intensities else ""
        parts.append(f"{shift}: {', '.join(used)}{levels}")
    return "; ".join(parts) or "train environment only"


# ----- LaTeX (booktabs) ----------------------------------------------------------------------------------------


def latex_table(header: list[str], groups: list[list[list[str]]], columns: str, text: str, label: str) -> str:
    """A booktabs table: `groups` of rows (cells already LaTeX) separated by \\midrule; needs booktabs and amssymb."""
    lines = [
        r"% unseen report; needs \usepackage{booktabs} and \usepackage{amssymb}",
        r"\begin{table}[t]",
        r"\centering",
        r"\caption{" + latex_escape(text) + "}",
        r"\label{tab:" + label + "}",
        r"\begin{tabular}{" + columns + "}",
        r"\toprule",
        " & ".join(latex_escape(h) for h in header) + r" \\",
    ]
    for group in groups:
        lines.append(r"\midrule")
        lines += [" & ".join(row) + r" \\" for row in group]
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def grouped_by_shift(index: pd.Index, body: list[list[str]]) -> list[list[list[str]]]:
    """Rows grouped by their shift (the first index level); the shift's name on the first row of its group only."""
    groups: dict[str, list[list[str]]] = {}
    for (shift, *rest), cells in zip(index, body, strict=True):
        group = groups.setdefault(shift, [])
        group.append([latex_escape(shift) if not group else "", *map(latex_escape, rest), *cells])
    return list(groups.values())


def latex(runs: pd.DataFrame) -> str:
    """The generalization table in LaTeX (booktabs), shifts as row groups, best mean per row in bold."""
    means, stds, seeds, best = generalization(runs)
    body = formatted_cells(means, stds, seeds, best, LATEX)
    groups = grouped_by_shift(means.index, body)
    return latex_table(["Shift", "Task", *means.columns], groups, "ll" + "r" * len(means.columns), caption(runs),
                       "generalization")


# ----- what each seed keeps of its training return ------------------------------------------------------------


def retention(runs: pd.DataFrame) -> pd.DataFrame:
    """Rows (shift, task) for every shift but `none`, columns methods: the mean over seeds of each seed's return
    under the shift divided by the same seed's return on the training environment (NaN where that is not positive)."""
    trained = runs[runs["shift"] == "none"].set_index("run")["return"]
    shifted = runs[runs["shift"] != "none"].copy()
    shifted["kept"] = shifted["return"] / shifted["run"].map(trained.where(trained > 0))
    kept = shifted.groupby(["shift", "task", "method"])["kept"].mean().unstack("method")
    rows = sorted(kept.index, key=lambda key: (SHIFT_ORDER[key[0]], key[1]))
    return kept.reindex(index=rows, columns=[m for m in method_order(runs) if m in kept.columns])


def retention_markdown(kept: pd.DataFrame) -> str:
    """`retention`'s table as Markdown, with its caption."""
    body = [
        [shift, task, *("—" if np.isnan(v) else f"{v:.0%}" for v in row)]
        for (shift, task), row in zip(kept.index, kept.values, strict=True)
    ]
    return markdown_table(["shift", "task", *kept.columns], body) + "\n" + (
        "Share of its training-environment return that each seed keeps under each shift (that seed's return under "
        "the shift / its return on the training environment), averaged over seeds. Read it beside the training "
        "return in the first row of the generalization table: a policy that learned little has little to lose, "
        "and one that keeps 100% of a low return is robust only in a weak sense.\n"
    )


# ----- the ablation table (Table 4) -------------------------------------------------------------------------


def ablation_runs(runs: pd.DataFrame) -> pd.DataFrame | None:
    """The CG2A runs when at least one of them is an ablation (AC, AC+GAS, AC+SGS or another gamma), else None."""
    cg2a = runs[runs["gas"].notna()]
    switch = cg2a[["gas", "sgs", "gamma"]].to_dict("records")
    return cg2a if any(ablation_parts(s) for s in switch) else None


def ablation(runs: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame, list[list[str]]]:
    """Table 4: rows (shift, method), columns tasks: means, stds, seed counts; best mean per (shift, task) column;
    and each row's switches."""
    cells = table(runs)
    order = method_order(runs)
    switch = runs.drop_duplicates("method").set_index("method")
    marks = {method: ["✓", "✓" if switch.at[method, "gas"] else "", "✓" if switch.at[method, "sgs"] else "",
                      switch.at[method, "gamma"] if isinstance(switch.at[method, "gamma"], str) else "—"]
             for method in order}
    tasks = sorted(cells["task"].unique())
    means, stds, seeds = (
        cells.pivot(index=["shift", "method"], columns="task", values=v) for v in ("mean", "std", "seeds")
    )
    rows = sorted(means.index, key=lambda key: (SHIFT_ORDER[key[0]], order.index(key[1])))
    means, stds, seeds = (frame.reindex(index=rows, columns=tasks) for frame in (means, stds, seeds))
    best = pd.concat([best_flags(group, axis=0) for _, group in means.groupby(level="shift", sort=False)])
    return means, stds, seeds, best.reindex(index=rows), [marks[method] for _, method in rows]


ABLATION_HEADER = ["AC", "GAS", "SGS", "γ"]


def ablation_caption(runs: pd.DataFrame) -> str:
    return (
        "CG2A's ablations (the paper's Table 4 and Figure 4): AC = the augmentation combination alone (the mean of the "
        "per-view critic gradients), GAS = Gradient Agreement Solver weights (Eq. 8), SGS = Soft Gradient Surgery "
        "(Algorithm 1) with gamma drawn from U(low, high) or fixed; the paper's first row (no AC) is the SAC/DrQ "
        "baselines of the generalization table. " + caption(runs, best="of each shift and task")
    )


def ablation_markdown(runs: pd.DataFrame) -> str:
    means, stds, seeds, best, marks = ablation(runs)
    body = formatted_cells(means, stds, seeds, best, MARKDOWN)
    rows = [
        [shift, method, *mark, *cells] for (shift, method), mark, cells in zip(means.index, marks, body, strict=True)
    ]
    header = ["shift", "method", *ABLATION_HEADER, *means.columns]
    return markdown_table(header, rows) + "\n" + ablation_caption(runs) + "\n"


def ablation_latex(runs: pd.DataFrame) -> str:
    means, stds, seeds, best, marks = ablation(runs)
    body = formatted_cells(means, stds, seeds, best, LATEX)
    rows = [[*map(latex_escape, mark), *cells] for mark, cells in zip(marks, body, strict=True)]
    groups = grouped_by_shift(means.index, rows)
    header = ["Shift", "Method", *ABLATION_HEADER, *means.columns]
    return latex_table(header, groups, "llcccc" + "r" * len(means.columns), ablation_caption(runs), "ablation")


def ablation_csv(runs: pd.DataFrame) -> str:
    means, stds, _, best, marks = ablation(runs)
    frame = pd.DataFrame([[m == "✓" for m in mark[:3]] + [mark[3]] for mark in marks], index=means.index,
                         columns=["ac", "gas", "sgs", "gamma"])
    for task in means.columns:
        frame[f"{task} mean"], frame[f"{task} std"] = means[task], stds[task]
        frame[f"{task} best"] = best[task]
    return frame.reset_index().to_csv(index=False, float_format="%.6g")


# ----- aggregate statistics (rliable) ------------------------------------------------------------------------


@dataclass(frozen=True)
class Comparison:
    """Methods compared on one shift over one set of tasks, each of which every one of them has runs on."""

    shift: str
    tasks: tuple[str, ...]
    scores: dict[str, list[np.ndarray]]
    """Per method one array of normalised per-seed scores (return / 1000) per task, in the order of `tasks`."""
    title: str
    """How the report names it: the shift, followed by the tasks when some shift has several comparisons."""

    @property
    def task_set(self) -> str:
        return " + ".join(self.tasks)


def comparisons(runs: pd.DataFrame) -> list[Comparison]:
    """Per shift (benchmark order), one comparison over every set of tasks that some of its methods share
    (`shared_task_sets`), holding every method with runs on all of them; a method without runs on a shift is left
    out of that shift. An aggregate over tasks compares methods fairly only over tasks each of them has: a method
    missing a task is compared over the tasks it has, never scored as if it had failed the others. When all of a
    shift's methods have the same tasks, as in one study, the shift has one comparison and keeps its plain name."""
    found = []
    for shift, has in tasks_by_method(runs).items():
        rows = runs[runs["shift"] == shift]
        for tasks in shared_task_sets(list(has.values())):
            scores = {
                m: [rows.loc[(rows["method"] == m) & (rows["task"] == t)].sort_values("seed")["return"].to_numpy()
                    / stats.NORMALISER for t in sorted(tasks)]
                for m in has if tasks <= has[m]
            }
            found.append(Comparison(shift, tuple(sorted(tasks)), scores, title=shift))
    if several_task_sets(found):
        return [replace(c, title=f"{c.shift} over {c.task_set}") for c in found]
    return found


def tasks_by_method(runs: pd.DataFrame) -> dict[str, dict[str, frozenset[str]]]:
    """Per shift (benchmark order), the tasks each method that has runs on it (in `method_order`) has runs on."""
    order = method_order(runs)
    found = {}
    for shift in sorted(runs["shift"].unique(), key=SHIFT_ORDER.__getitem__):
        rows = runs[runs["shift"] == shift]
        found[shift] = {m: frozenset(rows.loc[rows["method"] == m, "task"]) for m in order if m in set(rows["method"])}
    return found


def shared_task_sets(sets: list[frozenset[str]]) -> list[frozenset[str]]:
    """Each of `sets` and every task set that some of them have in common, the largest first, then by name."""
    found = set(sets)
    while more := {a & b for a in found for b in found} - found - {frozenset()}:
        found |= more
    return sorted(found, key=lambda tasks: (-len(tasks), sorted(tasks)))


def several_task_sets(compared: list[Comparison]) -> bool:
    """Whether some shift has more than one comparison: then every aggregate is named by its tasks."""
    return len({c.shift for c in compared}) < len(compared)


def seeding_names(runs: pd.DataFrame) -> dict[str, str]:
    """Each method's seeding name (`method_labels`)."""
    return dict(zip(runs["method"], runs["stream"], strict=True))


def aggregate(runs: pd.DataFrame, compared: list[Comparison], options: ReportConfig) -> pd.DataFrame:
    """IQM and optimality gap per comparison and method with 95% stratified bootstrap CIs. The draws are seeded by
    shift, method (its seeding name) and metric alone: a method's numbers over some tasks are those of a report of
    its runs on those tasks."""
    streams = seeding_names(runs)
    rows = []
    for comparison in compared:
        for method, score in comparison.scores.items():
            for metric, point, batched in (("IQM", stats.iqm, stats.batched_iqm),
                                           ("optimality gap", stats.optimality_gap, stats.batched_optimality_gap)):
                rng = stats.generator(options.seed, comparison.shift, streams[method], metric)
                low, high = stats.stratified_interval(score, batched, options.reps, rng)
                rows.append({"shift": comparison.shift, "task_set": comparison.task_set,
                             "comparison": comparison.title, "method": method, "metric": metric,
                             "value": point(score), "ci_low": low, "ci_high": high, "tasks": len(comparison.tasks),
                             "runs": sum(map(len, score))})
    return pd.DataFrame(rows)


def improvement(runs: pd.DataFrame, compared: list[Comparison], options: ReportConfig) -> pd.DataFrame:
    """P(X > Y) per comparison for every ordered pair of its methods, with 95% stratified independent bootstrap CIs
    and the one-sided permutation p-value of X scoring above Y (`stats.improvement_p_value`), seeded as in
    `aggregate`."""
    streams = seeding_names(runs)
    rows = []
    for comparison in compared:
        scores = comparison.scores
        for x in scores:
            for y in scores:
                if x != y:
                    rng = stats.generator(options.seed, comparison.shift, streams[x], streams[y])
                    low, high = stats.improvement_interval(scores[x], scores[y], options.reps, rng)
                    rows.append({"shift": comparison.shift, "task_set": comparison.task_set,
                                 "comparison": comparison.title, "x": x, "y": y,
                                 "probability": stats.probability_of_improvement(scores[x], scores[y]),
                                 "ci_low": low, "ci_high": high,
                                 "p_value": stats.improvement_p_value(scores[x], scores[y], options.reps, rng),
                                 "tasks": len(comparison.tasks)})
    return pd.DataFrame(rows, columns=["shift", "task_set", "comparison", "x", "y", "probability", "ci_low", "ci_high",
                                       "p_value", "tasks"])


def stats_csv(frame: pd.DataFrame, named: bool) -> str:
    """`aggregate`'s or `improvement`'s rows as CSV. The task set is a column only when comparisons are `named` by
    their tasks (`several_task_sets`): otherwise the shift decides it and `tasks` counts it, as in one study."""
    return frame.drop(columns=["comparison"] if named else ["comparison", "task_set"]).to_csv(
        index=False, float_format="%.6g")


def not_aggregated(runs: pd.DataFrame, compared: list[Comparison]) -> list[str]:
    """One line per thing the aggregates leave out, with the shifts it holds on: P(X > Y) over a task set only one
    method has all of, and pairs of methods that share no task on a shift (never compared). Nothing when every
    shift has one task set: each of its methods then has all of its tasks."""
    if not several_task_sets(compared):
        return []
    shifts: dict[tuple[str, str], list[str]] = {}
    for comparison in compared:
        if len(comparison.scores) == 1:
            only = next(iter(comparison.scores))
            key = (f"No P(X > Y) over {comparison.task_set}", f"only {only} has runs on all of these tasks")
            shifts.setdefault(key, []).append(comparison.shift)
    for shift, has in tasks_by_method(runs).items():
        methods = list(has)
        apart = {n: [m for m in methods[:i] if not has[m] & has[n]] for i, n in enumerate(methods)}
        if any(apart.values()):
            detail = "; ".join(f"{n} with {', '.join(ms)}" for n, ms in apart.items() if ms)
            shifts.setdefault(("Not compared (no task in common)", detail), []).append(shift)
    return [f"{what} on {', '.join(names)}: {detail}." for (what, detail), names in shifts.items()]


def interval(value: float, low: float, high: float) -> str:
    return f"{value:.2f} (one seed: no CI)" if np.isnan(low) else f"{value:.2f} [{low:.2f}, {high:.2f}]"


def improvement_cell(probability: float, low: float, high: float, p_value: float) -> str:
    """`P [low, high], p value`; the p-value left out where there is no test (one run each)."""
    return interval(probability, low, high) + ("" if np.isnan(p_value) else f", p {p_value:.2g}")


def stats_markdown(runs: pd.DataFrame, aggregates: pd.DataFrame, improvements: pd.DataFrame, named: bool,
                   notes: list[str], options: ReportConfig) -> str:
    """IQM and optimality gap tables (rows shift, and task set when comparisons are `named` by it; columns method),
    a P(X > Y) matrix per comparison, their caption and the `not_aggregated` notes."""
    order = method_order(runs)
    keys = ["shift", "task_set"] if named else ["shift"]
    parts = []
    for metric in ("IQM", "optimality gap"):
        rows = aggregates[aggregates["metric"] == metric]
        text = {(r.comparison, r.method): interval(r.value, r.ci_low, r.ci_high) for r in rows.itertuples()}
        body = [[*first[keys], *(text.get((first.comparison, m), "—") for m in order)]
                for _, first in rows.drop_duplicates("comparison").iterrows()]
        header = ["shift", "tasks"][: len(keys)] + order
        parts.append(f"**{metric}** of normalised scores (return / 1000), 95% CI\n\n" + markdown_table(header, body))
    for comparison, rows in improvements.groupby("comparison", sort=False):
        text = {(r.x, r.y): improvement_cell(r.probability, r.ci_low, r.ci_high, r.p_value) for r in rows.itertuples()}
        present = [m for m in order if m in set(rows["x"])]
        body = [[x, *(text.get((x, y), "—") for y in present)] for x in present]
        parts.append(f"**P(row > column)** on {comparison}, 95% CI\n\n" + markdown_table(["X / Y", *present], body))
    listed = "".join(f"\n- {note}" for note in notes)
    return "\n".join(parts) + "\n" + stats_caption(aggregates, named, options) + "\n" + listed + "\n" * bool(notes)


def stats_caption(aggregates: pd.DataFrame, named: bool, options: ReportConfig) -> str:
    narrow = aggregates.groupby("shift", sort=False)["tasks"].min()
    covered = (
        "The methods were not all run on the same tasks, so each aggregate covers the tasks its row or matrix names, "
        "with every method that has runs on all of them: methods are only compared over tasks each of them has."
        if named else
        f"Tasks per shift: {', '.join(f'{s}: {n}' for s, n in narrow.items())} (those every method was evaluated on)."
    )
    return (
        "Scores are returns / 1000 (DMControl's maximum). IQM: the mean of the middle 50% of all runs' scores; "
        "optimality gap: the mean shortfall of scores below 1 (lower is better); P(X > Y): the probability that a "
        "run of X scores above a run of Y on the same task, averaged over tasks (rliable 1.2.0's metrics). 95% "
        f"percentile intervals from a stratified bootstrap over seeds within each task ({options.reps:,} resamples, "
        f"seed {options.seed}). {covered} With few seeds the intervals are wide and coarse: they say how much the "
        "numbers could move with other seeds, not that differences inside them are real; an interval of [1.00, "
        "1.00] only says that every resample kept the two methods' runs apart. p: the one-sided p-value of X "
        "scoring above Y, from a permutation test that deals each task's pooled runs of X and Y anew (exact when "
        "small); it is small only when seeds leave little room for chance: with 3 seeds each on one task it is "
        "at least 0.05, with 2 at least 0.17."
    )


# ----- writing everything ------------------------------------------------------------------------------------


def write_text(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@dataclass(frozen=True)
class Written:
    """What `write_report` wrote: table.md, and what the aggregates leave out (`not_aggregated`), for the command
    line to print beside the table."""

    table: Path
    notes: list[str]


def write_report(dirs: list[Path], out: Path, options: ReportConfig = ReportConfig()) -> Written:
    """Write every output listed in the module docstring into `out`."""
    from unseen import figures

    runs = collect(dirs)
    out.mkdir(parents=True, exist_ok=True)
    runs.drop(columns=["stream", "gas", "sgs", "gamma"]).to_csv(out / "runs.csv", index=False)
    means, stds, seeds, best = generalization(runs)
    write_text(out / "table.csv", wide_csv(means, stds, seeds, best))
    write_text(out / "table.tex", latex(runs))
    table_path = write_text(out / "table.md", markdown(runs))
    sections = [f"# Report ({runs['preset'].iloc[0]} preset)\n", "## Generalization\n", table_path.read_text()]
    if (runs["shift"] != "none").any() and (runs["shift"] == "none").any():
        kept = retention(runs)
        sections += ["## Kept under each shift\n", retention_markdown(kept)]
        kept.reset_index().to_csv(out / "retention.csv", index=False, float_format="%.6g")
    cg2a = ablation_runs(runs)
    if cg2a is not None:
        sections += ["## CG2A ablations\n", write_text(out / "ablation.md", ablation_markdown(cg2a)).read_text()]
        write_text(out / "ablation.tex", ablation_latex(cg2a))
        write_text(out / "ablation.csv", ablation_csv(cg2a))
    compared = comparisons(runs)
    named, notes = several_task_sets(compared), not_aggregated(runs, compared)
    aggregates, improvements = aggregate(runs, compared, options), improvement(runs, compared, options)
    write_text(out / "aggregate.csv", stats_csv(aggregates, named))
    write_text(out / "improvement.csv", stats_csv(improvements, named))
    sections += ["## Aggregate statistics\n", stats_markdown(runs, aggregates, improvements, named, notes, options)]
    figure_section = figures.write_figures(runs, aggregates, improvements, method_order(runs), out, options)
    sections += ["## Figures\n", figure_section]
    write_text(out / "report.md", "\n".join(sections))
    return Written(table_path, notes)
