"""Reports from run directories: the CG2A paper's tables, learning curves and rliable's aggregate statistics.

`unseen report tables DIR... --out DIR` finds every finished run (`summary.json`) at any depth and writes
(docs/reports.md says what each number means):
  table.md / .csv / .tex      Tables 1-2 of the CG2A paper: rows shift and task, columns methods, each cell the
                              mean over seeds of each seed's mean return, +- the standard deviation across seeds
  ablation.md / .csv / .tex   Table 4 (AC, AC+GAS, AC+SGS, full, other gamma, other views), when such runs exist
  table3.md / .csv / .tex     Table 3 when runs of xArm tasks exist: rows methods, columns each task's train and
                              test1-3 scenes, returns (mean +- std over seeds) and success rates
  retention.csv               per shift, task and method: the mean over seeds of return under the shift / return
                              on the training environment (in report.md with the tables)
  curves_<task>.png           return against environment frames, one panel per shift, mean and 95% bootstrap band
  aggregate.csv, improvement.csv, iqm.png, optimality_gap.png, improvement.png
                              IQM, optimality gap and probability of improvement with stratified bootstrap CIs
  report.md                   all of the above with their captions; runs.csv: one row per run and shift

The jobs are split: `unseen.runs` collects the runs and names their METHODs, `unseen.tables` formats the tables,
this module computes the aggregate statistics and writes everything; an algorithm's or an environment family's own
tables are a section hook (`ALGORITHM_SECTIONS`: CG2A's ablations, `unseen.cg2a_report`; `FAMILY_SECTIONS`: the
xArm tasks' Table 3, `unseen.xarm_report`). Runs of different presets are never reported
together. Runs of several studies are: the tables show every task,
and the aggregates compare methods only over tasks each of them has (`comparisons`); the same seed of a method in two
folders makes two methods, labelled by folder. Text outputs are byte-identical for the same inputs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from unseen import cg2a_report, stats, xarm_report
from unseen.config import ReportConfig
from unseen.envs import families_of, family_of
from unseen.rundir import output_folder
from unseen.runs import all_variant_columns, collect, method_order, shift_order
from unseen.tables import (
    generalization,
    latex,
    markdown,
    markdown_table,
    retention,
    retention_markdown,
    wide_csv,
    write_text,
)

ALGORITHM_SECTIONS: dict[str, Callable[[pd.DataFrame, Path], list[str]]] = {"cg2a": cg2a_report.sections}
"""Report sections of one algorithm's own (its runs and the output folder -> Markdown sections, files written)."""
FAMILY_SECTIONS: dict[str, Callable[[pd.DataFrame, Path], list[str]]] = {"xarm": xarm_report.sections}
"""Report sections of one environment family's own (the runs of its tasks and the output folder -> Markdown sections,
files written): the xArm tasks' Table 3."""

# ----- aggregate statistics (rliable) ------------------------------------------------------------------------


@dataclass(frozen=True)
class Comparison:
    """Methods compared on one shift over one set of tasks, each of which every one of them has runs on."""

    shift: str
    tasks: tuple[str, ...]
    scores: dict[str, list[np.ndarray]]
    """Per method one array of normalised per-seed scores (`EnvFamily.normalised`: DMControl's return / 1000) per
    task, in the order of `tasks`."""
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
                m: [family_of(t).normalised(
                        rows.loc[(rows["method"] == m) & (rows["task"] == t)].sort_values("seed")["return"].to_numpy())
                    for t in sorted(tasks)]
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
    for shift in sorted(runs["shift"].unique(), key=shift_order().__getitem__):
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
        parts.append(f"**{metric}** of normalised scores ({score_formula(runs)}), 95% CI\n\n"
                     + markdown_table(header, body))
    for comparison, rows in improvements.groupby("comparison", sort=False):
        text = {(r.x, r.y): improvement_cell(r.probability, r.ci_low, r.ci_high, r.p_value) for r in rows.itertuples()}
        present = [m for m in order if m in set(rows["x"])]
        body = [[x, *(text.get((x, y), "—") for y in present)] for x in present]
        parts.append(f"**P(row > column)** on {comparison}, 95% CI\n\n" + markdown_table(["X / Y", *present], body))
    listed = "".join(f"\n- {note}" for note in notes)
    caption = stats_caption(runs, aggregates, named, options)
    return "\n".join(parts) + "\n" + caption + "\n" + listed + "\n" * bool(notes)


def retention_floors(runs: pd.DataFrame) -> str:
    """The caption's sentence on families whose lowest return is not 0 (`tables.retention`), or ""."""
    floored = [f for f in families_of(runs["task"].unique()) if f.score_range[0] != 0]
    return " ".join(
        f"For {f.title or f.name} tasks both returns are counted from the lowest return of the family's score range, "
        f"{f.score_range[0]:g}: (return - ({f.score_range[0]:g})) / (training return - ({f.score_range[0]:g}))."
        for f in floored
    )


def score_formula(runs: pd.DataFrame) -> str:
    """How the scores of `runs` come from returns, per environment family of their tasks: "return / 1000"."""
    return "; ".join(family.score_formula() for family in families_of(runs["task"].unique()))


def stats_caption(runs: pd.DataFrame, aggregates: pd.DataFrame, named: bool, options: ReportConfig) -> str:
    narrow = aggregates.groupby("shift", sort=False)["tasks"].min()
    covered = (
        "The methods were not all run on the same tasks, so each aggregate covers the tasks its row or matrix names, "
        "with every method that has runs on all of them: methods are only compared over tasks each of them has."
        if named else
        f"Tasks per shift: {', '.join(f'{s}: {n}' for s, n in narrow.items())} (those every method was evaluated on)."
    )
    scores = "; ".join(family.score_note() for family in families_of(runs["task"].unique()))
    return (
        f"Scores are {scores}. IQM: the mean of the middle 50% of all runs' scores; "
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
    output_folder(out)
    runs.drop(columns=["stream", *all_variant_columns()]).to_csv(out / "runs.csv", index=False)
    means, stds, seeds, best = generalization(runs)
    write_text(out / "table.csv", wide_csv(means, stds, seeds, best))
    write_text(out / "table.tex", latex(runs))
    table_path = write_text(out / "table.md", markdown(runs))
    sections = [f"# Report ({runs['preset'].iloc[0]} preset)\n", "## Generalization\n", table_path.read_text()]
    if (runs["shift"] != "none").any() and (runs["shift"] == "none").any():
        kept = retention(runs, lambda task: family_of(task).score_range[0])
        sections += ["## Kept under each shift\n", retention_markdown(kept, retention_floors(runs))]
        kept.reset_index().to_csv(out / "retention.csv", index=False, float_format="%.6g")
    for family in families_of(runs["task"].unique()):
        if family.name in FAMILY_SECTIONS:
            sections += FAMILY_SECTIONS[family.name](runs[runs["task"].isin(family.tasks)], out)
    for algo, section in ALGORITHM_SECTIONS.items():
        sections += section(runs[runs["algo"] == algo], out) if (runs["algo"] == algo).any() else []
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
