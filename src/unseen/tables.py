"""The report's tables as text: the generalization table (the CG2A paper's Tables 1-2) in Markdown, CSV and LaTeX
(booktabs), its caption, and what each seed keeps of its training return under each shift. Byte-identical for the
same runs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from unseen.runs import method_order, shift_order

# ----- the generalization table (Tables 1 and 2) -------------------------------------------------------------


def table(runs: pd.DataFrame, value: str = "return") -> pd.DataFrame:
    """One row per (shift, task, method), shifts in benchmark order: mean and std (ddof=0) across seeds of each
    seed's mean return (or other per-run `value`, e.g. its success rate), the number of seeds and of evaluation
    episodes per seed."""
    grouped = runs.groupby(["shift", "task", "method"])
    cells = pd.DataFrame(
        {
            "mean": grouped[value].mean(),
            "std": grouped[value].std(ddof=0),
            "seeds": grouped.size(),
            "episodes": grouped["episodes"].min(),
        }
    ).reset_index()
    order = {method: i for i, method in enumerate(method_order(runs))}
    keys = {"shift": shift_order(), "method": order}
    return cells.sort_values(["shift", "task", "method"], key=lambda c: c.map(keys[c.name]) if c.name in keys else c)


def cell(mean: float, std: float, seeds: int, digits: int = 0) -> str:
    # One seed has no spread to report: "± 0" would read as a measured, perfectly stable result.
    return f"{mean:.{digits}f}" if seeds == 1 else f"{mean:.{digits}f} ± {std:.{digits}f}"


def best_flags(values: pd.DataFrame, axis: int, digits: int = 0) -> pd.DataFrame:
    """True where a mean is the best of its row (axis=1) or column (axis=0) as printed (rounded to `digits`), ties
    all best."""
    rounded = values.round(digits)
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
    means: pd.DataFrame, stds: pd.DataFrame, seeds: pd.DataFrame, best: pd.DataFrame, style: tuple,
    text: Callable[[float, float, int], str] = cell,
) -> list[list[str]]:
    """Each cell as text in a `style` (MARKDOWN or LATEX): `text(mean, std, seeds)`, by default `mean ± std` (the mean
    alone from one seed), bold where best, a dash where missing."""
    bold, missing, escape = style
    return [
        [missing if np.isnan(m) else (bold if b else "{}").format(escape(text(m, s, n)))
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
    for shift in sorted(set(runs["shift"]) - {"none"}, key=shift_order().__getitem__):
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


def retention(runs: pd.DataFrame, floor: Callable[[str], float] = lambda task: 0.0) -> pd.DataFrame:
    """Rows (shift, task) for every shift but `none`, columns methods: the mean over seeds of each seed's return
    under the shift divided by the same seed's return on the training environment (NaN where that is not positive),
    both measured from the task's lowest return `floor(task)`: (return - floor) / (training return - floor).
    With DMControl's floor of 0 that is return / training return; a family whose returns go negative (xArm's)
    needs its floor, or a negative return under a shift would read as a negative share."""
    runs = runs.assign(above=runs["return"] - runs["task"].map(floor))
    trained = runs[runs["shift"] == "none"].set_index("run")["above"]
    shifted = runs[runs["shift"] != "none"].copy()
    shifted["kept"] = shifted["above"] / shifted["run"].map(trained.where(trained > 0))
    kept = shifted.groupby(["shift", "task", "method"])["kept"].mean().unstack("method")
    rows = sorted(kept.index, key=lambda key: (shift_order()[key[0]], key[1]))
    return kept.reindex(index=rows, columns=[m for m in method_order(runs) if m in kept.columns])


def retention_markdown(kept: pd.DataFrame, floors: str = "") -> str:
    """`retention`'s table as Markdown, with its caption; `floors`: a sentence on the floors other than 0."""
    body = [
        [shift, task, *("—" if np.isnan(v) else f"{v:.0%}" for v in row)]
        for (shift, task), row in zip(kept.index, kept.values, strict=True)
    ]
    return markdown_table(["shift", "task", *kept.columns], body) + "\n" + (
        "Share of its training-environment return that each seed keeps under each shift (that seed's return under "
        "the shift / its return on the training environment), averaged over seeds. Read it beside the training "
        "return in the first row of the generalization table: a policy that learned little has little to lose, "
        "and one that keeps 100% of a low return is robust only in a weak sense." + (f" {floors}" if floors else "")
        + "\n"
    )


def write_text(path: Path, text: str) -> Path:
    path.write_text(text)
    return path
