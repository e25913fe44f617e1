"""CG2A's ablation table (the paper's Table 4: AC, AC+GAS, AC+SGS, full, fixed or other gamma, and other views) in
Markdown, LaTeX and CSV: the report section `unseen.report` adds when a study has CG2A ablation runs."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from unseen.agents.cg2a import ablation_parts
from unseen.runs import method_order, shift_order
from unseen.tables import (
    LATEX,
    MARKDOWN,
    best_flags,
    caption,
    formatted_cells,
    grouped_by_shift,
    latex_escape,
    latex_table,
    markdown_table,
    table,
    write_text,
)


def ablation_runs(runs: pd.DataFrame) -> pd.DataFrame | None:
    """The CG2A runs when at least one of them is an ablation (AC, AC+GAS, AC+SGS, another gamma or other views),
    else None."""
    cg2a = runs[runs["gas"].notna()]
    switch = cg2a[["gas", "sgs", "gamma", "views"]].to_dict("records")
    return cg2a if any(ablation_parts(s) for s in switch) else None


def ablation(runs: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame, list[list[str]]]:
    """Table 4: rows (shift, method), columns tasks: means, stds, seed counts; best mean per (shift, task) column;
    and each row's switches."""
    cells = table(runs)
    order = method_order(runs)
    switch = runs.drop_duplicates("method").set_index("method")
    marks = {method: ["✓", "✓" if switch.at[method, "gas"] else "", "✓" if switch.at[method, "sgs"] else "",
                      switch.at[method, "gamma"] if isinstance(switch.at[method, "gamma"], str) else "—",
                      switch.at[method, "views"]]
             for method in order}
    tasks = sorted(cells["task"].unique())
    means, stds, seeds = (
        cells.pivot(index=["shift", "method"], columns="task", values=v) for v in ("mean", "std", "seeds")
    )
    rows = sorted(means.index, key=lambda key: (shift_order()[key[0]], order.index(key[1])))
    means, stds, seeds = (frame.reindex(index=rows, columns=tasks) for frame in (means, stds, seeds))
    best = pd.concat([best_flags(group, axis=0) for _, group in means.groupby(level="shift", sort=False)])
    return means, stds, seeds, best.reindex(index=rows), [marks[method] for _, method in rows]


ABLATION_HEADER = ["AC", "GAS", "SGS", "γ", "views"]


def ablation_caption(runs: pd.DataFrame) -> str:
    return (
        "CG2A's ablations (the paper's Table 4 and Figure 4): AC = the augmentation combination alone (the mean of the "
        "per-view critic gradients), GAS = Gradient Agreement Solver weights (Eq. 8), SGS = Soft Gradient Surgery "
        "(Algorithm 1) with gamma drawn from U(low, high) or fixed, views = the augmentations tau_1..tau_N applied "
        "on top of the random shift tau_0 (the paper's: conv+overlay+overlay_s); the paper's first row (no AC) is the "
        "SAC/DrQ baselines of the generalization table. " + caption(runs, best="of each shift and task")
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
    return latex_table(header, groups, "llccccc" + "r" * len(means.columns), ablation_caption(runs), "ablation")


def ablation_csv(runs: pd.DataFrame) -> str:
    means, stds, _, best, marks = ablation(runs)
    frame = pd.DataFrame([[m == "✓" for m in mark[:3]] + mark[3:] for mark in marks], index=means.index,
                         columns=["ac", "gas", "sgs", "gamma", "views"])
    for task in means.columns:
        frame[f"{task} mean"], frame[f"{task} std"] = means[task], stds[task]
        frame[f"{task} best"] = best[task]
    return frame.reset_index().to_csv(index=False, float_format="%.6g")


def sections(runs: pd.DataFrame, out: Path) -> list[str]:
    """The report's CG2A ablation section (ablation.md, .tex, .csv in `out`), or nothing without ablation runs."""
    cg2a = ablation_runs(runs)
    if cg2a is None:
        return []
    write_text(out / "ablation.tex", ablation_latex(cg2a))
    write_text(out / "ablation.csv", ablation_csv(cg2a))
    return ["## CG2A ablations\n", write_text(out / "ablation.md", ablation_markdown(cg2a)).read_text()]
