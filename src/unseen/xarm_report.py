"""CG2A's Table 3 (generalization on the xArm manipulation tasks) in Markdown, CSV and LaTeX: the report section
`unseen.report` adds when a study has runs of xArm tasks.

Rows are methods; columns are, for each task, its training scene ("train") and the test scenes test1-3. A cell is
what the generalization table's is (`unseen.tables.table`): the mean over seeds of each seed's mean return, ± the
standard deviation across seeds (ddof=0), here with one decimal as the paper prints it; the success rate (the share
of evaluation episodes that reached the goal) follows in the same layout. Byte-identical for the same runs.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from unseen.envs import family_of
from unseen.runs import method_order
from unseen.tables import (
    LATEX,
    MARKDOWN,
    best_flags,
    caption,
    cell,
    formatted_cells,
    latex_escape,
    markdown_table,
    table,
    write_text,
)

DIGITS = 1
"""Decimals of a return (Table 3 prints one: 39.6 ± 4)."""
TRAIN = "train"
"""Table 3's name for the training scene (shift `none`)."""


def columns(runs: pd.DataFrame) -> pd.MultiIndex:
    """(task, shift) of every evaluated scene: tasks in the family's order, each task's shifts in its order."""
    family = family_of(runs["task"].iloc[0])
    present = set(zip(runs["task"], runs["shift"], strict=True))
    return pd.MultiIndex.from_tuples(
        [(task, shift) for task in family.tasks for shift in family.shifts if (task, shift) in present],
        names=["task", "shift"],
    )


def by_method(runs: pd.DataFrame, value: str) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Means, stds and seed counts of `value` ("return" or "success"): rows methods in `method_order`, columns
    (task, shift)."""
    cells = table(runs, value)
    order = method_order(runs)
    means, stds, seeds = (
        cells.pivot(index="method", columns=["task", "shift"], values=v).reindex(index=order, columns=columns(runs))
        for v in ("mean", "std", "seeds")
    )
    return means, stds, seeds


def has_success(runs: pd.DataFrame) -> bool:
    return "success" in runs.columns and runs["success"].notna().any()


def return_cell(mean: float, std: float, seeds: int) -> str:
    return cell(mean, std, seeds, DIGITS)


def success_cell(mean: float, std: float, seeds: int) -> str:
    """A success rate in percent: `90%`, or `85 ± 5%` over seeds."""
    return f"{100 * mean:.0f}%" if seeds == 1 else f"{100 * mean:.0f} ± {100 * std:.0f}%"


def blocks(runs: pd.DataFrame, style: tuple) -> list[tuple[str, list[list[str]]]]:
    """Per block (the return, then the success rate where the runs report it) its name and its rows of cell texts,
    the best mean of each column bold (as printed)."""
    found = []
    for value, text, digits, name in (("return", return_cell, DIGITS, "return"),
                                      ("success", success_cell, 2, "success rate")):
        if value == "success" and not has_success(runs):
            continue
        means, stds, seeds = by_method(runs, value)
        best = best_flags(means, axis=0, digits=digits)
        found.append((name, formatted_cells(means, stds, seeds, best, style, text)))
    return found


def header(runs: pd.DataFrame) -> list[str]:
    return [f"{task} {TRAIN if shift == 'none' else shift}" for task, shift in columns(runs)]


def table3_caption(runs: pd.DataFrame) -> str:
    success = (" The success rate is the share of a seed's evaluation episodes that reached the goal (the gripper or "
               "peg within the task's distance of it at some step), averaged over seeds, ± its standard deviation "
               "across seeds." if has_success(runs) else "")
    return (
        "Generalization on the xArm manipulation tasks (CG2A's Table 3): rows are methods, columns each task's "
        f"training scene ({TRAIN}) and its test scenes. " + caption(runs, best="of each column") + success
    )


def table3_markdown(runs: pd.DataFrame) -> str:
    order = method_order(runs)
    parts = []
    for name, rows in blocks(runs, MARKDOWN):
        body = [[method, *cells] for method, cells in zip(order, rows, strict=True)]
        parts.append(f"**{name}**\n\n" + markdown_table(["method", *header(runs)], body))
    return "\n".join(parts) + "\n" + table3_caption(runs) + "\n"


def table3_latex(runs: pd.DataFrame) -> str:
    """A booktabs table: tasks as column groups, the return's rows, then the success rate's under their own rule."""
    order = method_order(runs)
    scenes = columns(runs)
    tasks = list(dict.fromkeys(scenes.get_level_values("task")))
    spans, start = [], 2
    for task in tasks:
        width = int((scenes.get_level_values("task") == task).sum())
        spans.append((task, start, start + width - 1))
        start += width
    lines = [
        r"% unseen report; needs \usepackage{booktabs} and \usepackage{amssymb}",
        r"\begin{table}[t]",
        r"\centering",
        r"\caption{" + latex_escape(table3_caption(runs)) + "}",
        r"\label{tab:xarm}",
        r"\begin{tabular}{l" + "r" * len(scenes) + "}",
        r"\toprule",
        " & ".join(["", *(rf"\multicolumn{{{b - a + 1}}}{{c}}{{{latex_escape(t)}}}" for t, a, b in spans)]) + r" \\",
        " ".join(rf"\cmidrule(lr){{{a}-{b}}}" for _, a, b in spans),
        " & ".join(["Method", *(latex_escape(TRAIN if s == "none" else s) for _, s in scenes)]) + r" \\",
    ]
    for name, rows in blocks(runs, LATEX):
        lines.append(r"\midrule")
        lines.append(rf"\multicolumn{{{len(scenes) + 1}}}{{l}}{{\emph{{{latex_escape(name)}}}}} \\")
        lines += [" & ".join([latex_escape(method), *cells]) + r" \\" for method, cells in zip(order, rows,
                                                                                               strict=True)]
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def table3_csv(runs: pd.DataFrame) -> str:
    """Per method and scene: the return's mean, std and seed count, whether it is the column's best, and (where the
    runs report it) the success rate's mean and std."""
    means, stds, seeds = by_method(runs, "return")
    best = best_flags(means, axis=0, digits=DIGITS)
    parts = {"mean": means, "std": stds, "seeds": seeds, "best": best}
    if has_success(runs):
        success_means, success_stds, _ = by_method(runs, "success")
        parts |= {"success mean": success_means, "success std": success_stds}
    frame = pd.DataFrame(index=means.index)
    for task, shift in means.columns:
        for stat, values in parts.items():
            frame[f"{task} {TRAIN if shift == 'none' else shift} {stat}"] = values[(task, shift)]
    return frame.reset_index().to_csv(index=False, float_format="%.6g")


def sections(runs: pd.DataFrame, out: Path) -> list[str]:
    """The report's Table 3 section (table3.md, .csv, .tex in `out`) for the runs of xArm tasks."""
    if runs.empty:
        return []
    write_text(out / "table3.tex", table3_latex(runs))
    write_text(out / "table3.csv", table3_csv(runs))
    return ["## Table 3: xArm manipulation\n", write_text(out / "table3.md", table3_markdown(runs)).read_text()]

