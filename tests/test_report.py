"""unseen report: the paper's tables from synthetic runs, METHOD labels, presets never mixed, rliable statistics,
curves, and byte-identical text outputs for the same inputs."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.stats
import yaml
from rliable import metrics

from unseen import stats
from unseen.cli import main
from unseen.config import ReportConfig, apply_overrides, make_config, save_config, to_dict
from unseen.errors import UserError
from unseen.report import write_report
from unseen.runs import collect
from unseen.tables import latex, markdown, retention, table

RESULTS = Path(__file__).resolve().parents[1] / "results"

FAST = ReportConfig(reps=300)


def fake_run(root, algo, seed, returns, preset="cpu", task="cartpole_swingup", overrides=(), name=None, curve=(),
             success=None, source="procedural"):
    """A finished run directory: config.yaml (a real resolved config), summary.json, and eval.csv with the periodic
    training-environment returns `curve` (at 50k frames each) and a final row per shift. `success`: per shift a
    success rate (families that report success); `source`: the data source of every shift but `none`."""
    cfg = apply_overrides(make_config(algo, task, preset, seed), list(overrides))
    run = root / (name or f"{algo}-{task}-seed{seed}")
    run.mkdir(parents=True)
    save_config(cfg, run / "config.yaml")
    summary = {
        "algo": algo, "task": task, "preset": preset, "seed": seed,
        "frames": cfg.train.steps * cfg.env.action_repeat, "steps": cfg.train.steps,
        "wall_time_s": 60.0,
        "returns": {
            shift: {"mean": value, "std": 1.0, "episodes": 10,
                    **({"success": success[shift]} if success is not None else {}),
                    "source": source if shift != "none" else "none"}
            for shift, value in returns.items()
        },
    }
    (run / "summary.json").write_text(json.dumps(summary))
    rows = [{"frames": 50_000 * i, "shift": "none", "return_mean": value} for i, value in enumerate(curve)]
    rows += [{"frames": 100_000, "shift": shift, "return_mean": value} for shift, value in returns.items()]
    pd.DataFrame(rows).assign(step=lambda r: r["frames"] // 8).to_csv(run / "eval.csv", index=False)
    return run


def methods(runs):
    return sorted(runs["method"].unique())


# ----- the generalization table ----------------------------------------------------------------------------


def test_table_by_hand(tmp_path):
    fake_run(tmp_path / "a", "drq", 1, {"none": 600.0, "color_hard": 100.0})
    fake_run(tmp_path / "a", "drq", 2, {"none": 800.0, "color_hard": 300.0})
    fake_run(tmp_path / "b" / "deeper", "sac", 1, {"none": 250.0})
    runs = collect([tmp_path])
    cells = table(runs).set_index(["shift", "method"])
    assert cells.loc[("none", "drq"), "mean"] == 700.0
    assert cells.loc[("none", "drq"), "std"] == 100.0  # population std of 600 and 800
    assert cells.loc[("color_hard", "drq"), "seeds"] == 2
    text = markdown(runs)
    assert "| shift | task | sac | drq |" in text  # methods in registry order
    assert "| none | cartpole_swingup | 250 | **700 ± 100** |" in text  # one seed: no spread to print
    assert "| color_hard | cartpole_swingup | — | **200 ± 100** |" in text  # sac has no color_hard: a dash
    assert "(sac: 1, drq: 2)" in text and "over 10 evaluation episodes" in text
    assert text.index("| none |") < text.index("| color_hard |")  # benchmark order, not alphabetical
    assert "Data: color_hard: procedural." in text


def test_retention_is_the_mean_of_each_seeds_ratio(tmp_path):
    fake_run(tmp_path / "runs", "drq", 1, {"none": 800.0, "video_hard": 400.0})  # keeps 50%
    fake_run(tmp_path / "runs", "drq", 2, {"none": 500.0, "video_hard": 100.0})  # keeps 20%
    fake_run(tmp_path / "runs", "sac", 1, {"none": 0.0, "video_hard": 50.0})  # nothing to keep: no ratio
    kept = retention(collect([tmp_path / "runs"]))
    assert list(kept.index) == [("video_hard", "cartpole_swingup")] and list(kept.columns) == ["sac", "drq"]
    assert kept.loc[("video_hard", "cartpole_swingup"), "drq"] == pytest.approx(0.35)  # not 500 / 1300
    assert np.isnan(kept.loc[("video_hard", "cartpole_swingup"), "sac"])
    write_report([tmp_path / "runs"], tmp_path / "out", FAST)
    report = (tmp_path / "out" / "report.md").read_text()
    assert "| video_hard | cartpole_swingup | — | 35% |" in report
    assert pd.read_csv(tmp_path / "out" / "retention.csv").loc[0, "drq"] == pytest.approx(0.35)


def test_retention_counts_from_the_familys_lowest_return_where_returns_go_negative(tmp_path):
    # xArm's score range starts at -270: a return of -28.7 under a shift keeps (-28.7 + 270) / (9.5 + 270) of a
    # training return of 9.5, not -302% of it
    fake_run(tmp_path / "runs", "sac", 1, {"none": 9.5, "test1": -28.7}, task="xarm_reach", source="SGQN test1 scene",
             success={"none": 0.6, "test1": 0.1})
    kept = retention(collect([tmp_path / "runs"]), lambda task: -270.0)
    assert kept.loc[("test1", "xarm_reach"), "sac"] == pytest.approx(241.3 / 279.5)
    write_report([tmp_path / "runs"], tmp_path / "out", FAST)
    report = (tmp_path / "out" / "report.md").read_text()
    assert "| test1 | xarm_reach | 86% |" in report
    assert "For xArm tasks both returns are counted from the lowest return of the family's score range, -270" in report


def test_ties_are_all_bold_and_bold_follows_printed_values(tmp_path):
    fake_run(tmp_path, "sac", 1, {"none": 500.2})
    fake_run(tmp_path, "drq", 1, {"none": 499.9})  # both print as 500
    fake_run(tmp_path, "svea", 1, {"none": 120.0})
    assert "| none | cartpole_swingup | **500** | **500** | 120 |" in markdown(collect([tmp_path]))


def test_latex_is_booktabs_with_one_cell_per_column(tmp_path):
    for seed, (a, b) in enumerate([(600.0, 100.0), (800.0, 300.0)], start=1):
        fake_run(tmp_path, "drq", seed, {"none": a, "video_hard": b})
        fake_run(tmp_path, "svea", seed, {"none": a - 50, "video_hard": b + 50})
    text = latex(collect([tmp_path]))
    lines = text.splitlines()
    assert lines[1] == r"\begin{table}[t]" and lines[-1] == r"\end{table}"
    assert [line for line in lines if line in (r"\toprule", r"\bottomrule")] == [r"\toprule", r"\bottomrule"]
    assert lines.count(r"\midrule") == 2  # one per shift group
    assert r"\begin{tabular}{llrr}" in lines
    rows = [line for line in lines if line.endswith(r"\\")]
    assert all(line.count("&") == 3 for line in rows)  # 4 columns in every row
    assert r"none & cartpole\_swingup & \textbf{700 $\pm$ 100} & 650 $\pm$ 100 \\" in lines
    assert r"video\_hard & cartpole\_swingup & 200 $\pm$ 100 & \textbf{250 $\pm$ 100} \\" in lines
    assert text.count("{") == text.count("}")


def test_latex_compiles(tmp_path):
    compiler = shutil.which("pdflatex")
    if compiler is None:
        pytest.skip(
            "no pdflatex on this machine (apt-get install texlive-latex-recommended); the structure is tested above"
        )
    fake_run(tmp_path / "runs", "cg2a", 1, {"none": 700.0, "distracting_cs": 100.0})
    fake_run(tmp_path / "runs", "cg2a", 2, {"none": 600.0}, overrides=["agent.cg2a_sgs=false"])
    write_report([tmp_path / "runs"], tmp_path / "out", FAST)
    body = "\n".join((tmp_path / "out" / name).read_text() for name in ("table.tex", "ablation.tex"))
    preamble = "\\documentclass{article}\\usepackage{booktabs}\\usepackage{amssymb}\\begin{document}\n"
    document = preamble + body + "\\end{document}\n"
    (tmp_path / "doc.tex").write_text(document)
    done = subprocess.run([compiler, "-interaction=nonstopmode", "-halt-on-error", "doc.tex"], cwd=tmp_path,
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout[-2000:]


def test_presets_are_never_mixed(tmp_path, capsys):
    fake_run(tmp_path, "drq", 1, {"none": 1.0}, preset="cpu")
    fake_run(tmp_path, "sac", 1, {"none": 1.0}, preset="smoke")
    with pytest.raises(UserError, match="different presets"):
        collect([tmp_path])
    assert main(["report", str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_nothing_to_report(tmp_path):
    with pytest.raises(UserError, match="no finished runs"):
        collect([tmp_path])
    with pytest.raises(UserError, match="does not exist"):
        collect([tmp_path / "missing"])
    (fake_run(tmp_path, "drq", 1, {"none": 1.0}) / "config.yaml").unlink()
    with pytest.raises(UserError, match=re.escape("no config.yaml")):
        collect([tmp_path])


# ----- METHOD labels ------------------------------------------------------------------------------------------


def test_ablation_labels_and_table(tmp_path):
    variants = {
        "ac": ["agent.cg2a_gas=false", "agent.cg2a_sgs=false"],
        "gas": ["agent.cg2a_sgs=false"],
        "sgs": ["agent.cg2a_gas=false"],
        "full": [],
        "fixed": ["agent.sgs_gamma_low=0.2", "agent.sgs_gamma_high=0.2"],
        "sgs0": ["agent.cg2a_gas=false", "agent.sgs_gamma_low=0", "agent.sgs_gamma_high=0"],
        "light": ["agent.cg2a_augmentations=overlay_s"],
    }
    for i, (name, overrides) in enumerate(variants.items()):
        fake_run(tmp_path / "runs", "cg2a", 1, {"none": 500.0 + i, "video_hard": 100.0 + 10 * i}, overrides=overrides,
                 name=name)
    fake_run(tmp_path / "runs", "drq", 1, {"none": 900.0, "video_hard": 50.0})
    runs = collect([tmp_path / "runs"])
    assert methods(runs) == sorted(["cg2a[AC]", "cg2a[AC+GAS]", "cg2a[AC+SGS]", "cg2a", "cg2a[gamma=0.2]",
                                    "cg2a[AC+SGS, gamma=0]", "cg2a[views=overlay_s]", "drq"])
    write_report([tmp_path / "runs"], tmp_path / "out", FAST)
    text = (tmp_path / "out" / "ablation.md").read_text()
    rows = [line for line in text.splitlines() if line.startswith("| video_hard")]
    assert [row.split(" | ")[1] for row in rows] == [  # Table 4's order, then gamma, then views variants
        "cg2a[AC]", "cg2a[AC+GAS]", "cg2a[AC+SGS]", "cg2a[AC+SGS, gamma=0]", "cg2a", "cg2a[gamma=0.2]",
        "cg2a[views=overlay_s]"]
    full = "conv+overlay+overlay_s"
    assert rows[0].startswith(f"| video_hard | cg2a[AC] | ✓ |  |  | — | {full} | 100 |")
    assert rows[2].startswith(f"| video_hard | cg2a[AC+SGS] | ✓ |  | ✓ | U(0.22,0.28) | {full} |")
    assert rows[4] == f"| video_hard | cg2a | ✓ | ✓ | ✓ | U(0.22,0.28) | {full} | 130 |"
    assert rows[3] == f"| video_hard | cg2a[AC+SGS, gamma=0] | ✓ |  | ✓ | 0 | {full} | 150 |"
    assert rows[5] == f"| video_hard | cg2a[gamma=0.2] | ✓ | ✓ | ✓ | 0.2 | {full} | 140 |"
    assert rows[6] == "| video_hard | cg2a[views=overlay_s] | ✓ | ✓ | ✓ | U(0.22,0.28) | overlay_s | **160** |"
    assert "drq" not in text.split("\n\n")[0]  # the ablation table holds CG2A's runs only
    csv = pd.read_csv(tmp_path / "out" / "ablation.csv")
    assert list(csv.columns[:7]) == ["shift", "method", "ac", "gas", "sgs", "gamma", "views"]
    assert {p.name for p in (tmp_path / "out").glob("ablation.*")} == {"ablation.md", "ablation.csv", "ablation.tex"}


def test_no_ablation_table_without_ablation_runs(tmp_path):
    fake_run(tmp_path / "runs", "cg2a", 1, {"none": 500.0})
    write_report([tmp_path / "runs"], tmp_path / "out", FAST)
    assert not list((tmp_path / "out").glob("ablation.*"))
    assert "CG2A ablations" not in (tmp_path / "out" / "report.md").read_text()


def test_other_config_differences_are_labelled_apart_never_averaged(tmp_path):
    fake_run(tmp_path, "drq", 1, {"none": 100.0})
    fake_run(tmp_path, "drq", 2, {"none": 300.0}, overrides=["train.video=false", "train.final_eval_episodes=3"])
    fake_run(tmp_path, "drq", 3, {"none": 900.0}, overrides=["train.batch_size=64"])
    fake_run(tmp_path, "sac", 1, {"none": 500.0}, task="walker_walk", overrides=["train.batch_size=64"])
    runs = collect([tmp_path])
    labels = runs.set_index(runs["run"].map(lambda path: path.split("/")[-1]))["method"]
    # outputs and episode counts do not make another method; the batch size does, and only where it differs
    assert labels["drq-cartpole_swingup-seed1"] == labels["drq-cartpole_swingup-seed2"] == "drq[train.batch_size=128]"
    assert labels["drq-cartpole_swingup-seed3"] == "drq[train.batch_size=64]"
    assert labels["sac-walker_walk-seed1"] == "sac"
    cells = table(runs).set_index("method")
    assert cells.loc["drq[train.batch_size=128]", "mean"] == 200.0


def test_a_field_added_later_reads_as_what_older_runs_computed_with(tmp_path):
    old = fake_run(tmp_path, "drq", 1, {"none": 100.0})
    fake_run(tmp_path, "drq", 2, {"none": 300.0})
    saved = to_dict(make_config("drq", "cartpole_swingup", "cpu", 1))
    del saved["agent"]["fast_kernels"]  # fused Adam was always on before the switch
    # Written as save_config writes: JSON would be YAML, but YAML 1.1 reads JSON's 1e-07 as a string.
    (old / "config.yaml").write_text(yaml.safe_dump(saved, sort_keys=False))
    assert set(collect([tmp_path])["method"]) == {"drq"}


def test_runs_made_before_the_dmcontrol_gb_fields_are_named_by_the_behaviour_they_trained_with(tmp_path):
    olds = [fake_run(tmp_path, "drq", seed, {"none": 100.0}) for seed in (1, 2)]
    fake_run(tmp_path, "drq", 3, {"none": 300.0})
    for old in olds:
        saved = yaml.safe_load((old / "config.yaml").read_text())
        for section, name in (("agent", "trunk_final_relu"), ("agent", "actor_recompute"), ("agent", "exact_log_det"),
                              ("train", "seed_updates")):
            del saved[section][name]
        (old / "config.yaml").write_text(yaml.safe_dump(saved, sort_keys=False))
    labels = collect([tmp_path]).groupby("seed")["method"].first()
    before = ("drq[agent.actor_recompute=false, agent.exact_log_det=true, agent.trunk_final_relu=true, "
              "train.seed_updates=1]")
    assert labels[1] == labels[2] == before
    assert labels[3] == "drq[agent.actor_recompute=true, agent.exact_log_det=false, agent.trunk_final_relu=false, "\
        "train.seed_updates=1000]"


# ----- statistics ---------------------------------------------------------------------------------------------


def test_batched_metrics_equal_rliable_on_every_resample():
    rng = np.random.default_rng(3)
    samples = rng.uniform(0, 1.2, size=(50, 7)).round(1)  # rounding makes ties
    others = rng.uniform(0, 1.2, size=(50, 4)).round(1)
    np.testing.assert_allclose(stats.batched_iqm(samples), [metrics.aggregate_iqm(s) for s in samples])
    np.testing.assert_allclose(stats.batched_optimality_gap(samples),
                               [metrics.aggregate_optimality_gap(s, gamma=1) for s in samples])
    np.testing.assert_allclose(stats.batched_improvement(samples, others),
                               [metrics.probability_of_improvement(a[:, None], b[:, None])
                                for a, b in zip(samples, others, strict=True)])


def test_probability_of_improvement_by_hand():
    # pairs (1,0) (1,3) (2,0) (2,3): X wins 2 of 4; a tie counts one half
    assert stats.probability_of_improvement([np.array([1.0, 2.0])], [np.array([0.0, 3.0])]) == 0.5
    assert stats.probability_of_improvement([np.array([1.0])], [np.array([1.0])]) == 0.5
    x, y = [np.array([2.0]), np.array([0.0])], [np.array([1.0]), np.array([1.0])]
    assert stats.probability_of_improvement(x, y) == 0.5


def test_improvement_p_value_by_hand():
    rng = np.random.default_rng(0)
    high, low = np.array([3.0, 4.0, 5.0]), np.array([0.0, 1.0, 2.0])
    # 20 ways to deal 6 runs into 3 + 3; only the observed one puts all of X above all of Y
    assert stats.improvement_p_value([high], [low], 100, rng) == 0.05
    assert stats.improvement_p_value([low], [high], 100, rng) == 1.0
    assert stats.improvement_p_value([high, high], [low, low], 100, rng) == pytest.approx(1 / 400)  # tasks deal apart
    assert stats.improvement_p_value([high[:2]], [low[:2]], 100, rng) == pytest.approx(1 / 6)
    assert np.isnan(stats.improvement_p_value([high[:1]], [low[:1]], 100, rng))  # one run each: no test


def test_improvement_p_value_is_an_exact_permutation_test():
    rng = np.random.default_rng(5)
    for n, m in ((3, 3), (5, 4), (2, 6)):
        x, y = rng.normal(0.5, 1, n), rng.normal(0, 1, m)
        expected = scipy.stats.mannwhitneyu(x, y, alternative="greater", method="exact").pvalue
        assert stats.improvement_p_value([x], [y], 100, rng) == pytest.approx(expected)
        # rank-based: an increasing transformation of the scores changes nothing
        assert stats.improvement_p_value([np.exp(x)], [np.exp(y)], 100, rng) == pytest.approx(expected)
    x, y = np.array([1.0, 2.0, 2.0, 3.0]), np.array([2.0, 0.0, 1.0])  # ties count one half, as in P(X > Y)
    expected = scipy.stats.permutation_test(
        (x, y), lambda a, b: stats.batched_improvement(a[None], b[None])[0], permutation_type="independent",
        alternative="greater", n_resamples=np.inf, vectorized=False).pvalue
    assert stats.improvement_p_value([x], [y], 100, rng) == pytest.approx(expected)


def test_improvement_p_value_samples_deals_when_there_are_too_many(monkeypatch):
    rng = np.random.default_rng(1)
    x, y = [rng.normal(0.3, 1, 5), rng.normal(0.3, 1, 3)], [rng.normal(0, 1, 4), rng.normal(0, 1, 3)]
    exact = stats.improvement_p_value(x, y, 100, rng)
    monkeypatch.setattr(stats, "EXACT_SPLITS", 1)
    sampled = stats.improvement_p_value(x, y, 20_000, np.random.default_rng(2))
    assert sampled == pytest.approx(exact, abs=0.01) and sampled != exact
    assert stats.improvement_p_value(x, y, 20_000, np.random.default_rng(2)) == sampled  # seeded


def test_stratified_bootstrap_resamples_within_tasks():
    rng = np.random.default_rng(0)
    # task 1 always 0, task 2 always 1: every stratified resample has half its runs at 0 and half at 1
    low, high = stats.stratified_interval([np.zeros(4), np.ones(4)], lambda s: s.mean(axis=-1), 200, rng)
    assert low == high == 0.5
    low, high = stats.stratified_interval([np.array([0.2, 0.4, 0.9])], stats.batched_iqm, 2000, rng)
    assert 0.2 <= low < stats.iqm([np.array([0.2, 0.4, 0.9])]) < high <= 0.9


def test_one_run_per_task_has_no_interval():
    rng = np.random.default_rng(0)
    one = [np.array([0.3]), np.array([0.8])]
    assert np.isnan(stats.stratified_interval(one, stats.batched_iqm, 100, rng)).all()
    assert np.isnan(stats.improvement_interval(one, one, 100, rng)).all()
    three = [np.array([0.1, 0.2, 0.9]), np.array([0.5, 0.6, 0.7])]
    low, high = stats.improvement_interval(three, one, 100, rng)  # the three-seed side still varies
    assert 0.0 <= low < high <= 1.0


def test_one_seed_prints_no_spread_and_no_interval(tmp_path):
    fake_run(tmp_path / "runs", "drq", 1, {"none": 700.0})
    fake_run(tmp_path / "runs", "sac", 1, {"none": 300.0})
    write_report([tmp_path / "runs"], tmp_path / "out", FAST)
    report = (tmp_path / "out" / "report.md").read_text()
    assert "| none | cartpole_swingup | 300 | **700** |" in report and "none is printed for one seed" in report
    assert "| none | 0.30 (one seed: no CI) | 0.70 (one seed: no CI) |" in report
    assert "| drq | 1.00 (one seed: no CI) | — |" in report
    assert r"\textbf{700} \\" in (tmp_path / "out" / "table.tex").read_text()
    for name in ("iqm.png", "improvement.png"):
        assert (tmp_path / "out" / name).stat().st_size > 1000


def test_bootstrap_band_contains_the_mean_and_is_seeded():
    samples = np.array([[0.0, 100.0, 300.0], [10.0, 200.0, 500.0], [30.0, 150.0, 900.0]])
    mean, low, high = stats.mean_band(samples, 1000, stats.generator(0, "task", "none", "drq"))
    np.testing.assert_array_equal(mean, samples.mean(axis=0))
    assert np.all(low <= mean) and np.all(mean <= high) and np.all(low < high)
    assert np.all(low >= samples.min(axis=0)) and np.all(high <= samples.max(axis=0))
    again = stats.mean_band(samples, 1000, stats.generator(0, "task", "none", "drq"))
    np.testing.assert_array_equal(np.stack([mean, low, high]), np.stack(again))


def test_aggregate_and_improvement_files(tmp_path):
    for seed in (1, 2, 3):
        fake_run(tmp_path / "runs", "drq", seed, {"none": 500.0 + 100 * seed, "color_hard": 100.0 * seed})
        fake_run(tmp_path / "runs", "sac", seed, {"none": 100.0 * seed})
    write_report([tmp_path / "runs"], tmp_path / "out", FAST)
    aggregates = pd.read_csv(tmp_path / "out" / "aggregate.csv").set_index(["shift", "method", "metric"])
    assert aggregates.loc[("none", "drq", "IQM"), "value"] == pytest.approx(0.7)
    assert aggregates.loc[("none", "sac", "optimality gap"), "value"] == pytest.approx(0.8)
    assert ("color_hard", "sac", "IQM") not in aggregates.index  # no runs of sac there
    improvements = pd.read_csv(tmp_path / "out" / "improvement.csv").set_index(["shift", "x", "y"])
    assert improvements.loc[("none", "drq", "sac"), "probability"] == 1.0  # 600-800 against 100-300
    assert improvements.loc[("none", "sac", "drq"), "probability"] == 0.0
    assert improvements.loc[("none", "drq", "sac"), "p_value"] == pytest.approx(0.05)  # 1 of 20 deals
    assert list(improvements.index.get_level_values("shift").unique()) == ["none"]
    report = (tmp_path / "out" / "report.md").read_text()
    assert "| none | 0.20 [0.10, 0.30] | 0.70 [0.60, 0.80] |" in report  # IQM of 3 runs = their middle one's mean
    assert "| drq | 1.00 [1.00, 1.00], p 0.05 | — |" in report
    for name in ("iqm.png", "optimality_gap.png", "improvement.png", "curves_cartpole_swingup.png"):
        assert (tmp_path / "out" / name).stat().st_size > 1000


def test_curves_say_which_methods_have_only_a_final_point(tmp_path):
    for seed in (1, 2):
        fake_run(tmp_path / "runs", "drq", seed, {"none": 600.0, "video_easy": 200.0}, curve=[0.0, 300.0])
    report_md = write_report([tmp_path / "runs"], tmp_path / "out", FAST).table.with_name("report.md").read_text()
    assert "no curve: video_easy: drq." in report_md
    assert "none:" not in report_md.split("no curve:")[1]  # the training environment has a curve


def test_same_inputs_give_byte_identical_outputs(tmp_path):
    for seed in (1, 2):
        fake_run(tmp_path / "runs", "drq", seed, {"none": 500.0 + seed, "video_hard": 90.0 * seed},
                 curve=[0.0, 200.0 * seed])
        fake_run(tmp_path / "runs", "cg2a", seed, {"none": 400.0 * seed, "video_hard": 100.0 + seed},
                 curve=[1.0, 300.0])
        fake_run(tmp_path / "runs", "cg2a", seed, {"none": 450.0, "video_hard": 10.0 * seed}, name=f"ac{seed}",
                 overrides=["agent.cg2a_gas=false", "agent.cg2a_sgs=false"])
    write_report([tmp_path / "runs"], tmp_path / "first", FAST)
    write_report([tmp_path / "runs"], tmp_path / "second", FAST)
    first = sorted(p.name for p in (tmp_path / "first").iterdir())
    assert first == sorted(p.name for p in (tmp_path / "second").iterdir())
    expected = {"table.md", "table.csv", "table.tex", "ablation.md", "aggregate.csv", "improvement.csv", "report.md"}
    assert expected <= set(first)
    for name in first:
        assert (tmp_path / "first" / name).read_bytes() == (tmp_path / "second" / name).read_bytes(), name


def test_cli_report(tmp_path, capsys):
    fake_run(tmp_path / "runs", "drq", 1, {"none": 700.0})
    assert main(["report", str(tmp_path / "runs"), "--out", str(tmp_path / "out"), "--reps", "50"]) == 0
    assert "| none | cartpole_swingup | **700** |" in capsys.readouterr().out
    assert main(["report", str(tmp_path / "runs"), "--out", str(tmp_path / "out"), "--reps", "0"]) == 2


# ----- several studies in one report ------------------------------------------------------------------------


def mixed_studies(root):
    """Two studies that were never run together: on cartpole_swingup DrQ, CG2A and a one-seed ablation (AC); on
    walker_walk DrQ and a one-seed SAC. DrQ has both tasks, CG2A and SAC one each."""
    ac = ["agent.cg2a_gas=false", "agent.cg2a_sgs=false"]
    for seed in (1, 2):
        fake_run(root / "swingup" / "runs", "drq", seed, {"none": 600.0 + 100 * seed, "video_hard": 100.0 * seed})
        fake_run(root / "swingup" / "runs", "cg2a", seed, {"none": 300.0 * seed, "video_hard": 150.0 + seed})
        fake_run(root / "walker" / "runs", "drq", seed, {"none": 400.0 * seed, "video_hard": 50.0 * seed},
                 task="walker_walk")
    fake_run(root / "swingup" / "runs", "cg2a", 1, {"none": 250.0, "video_hard": 120.0}, overrides=ac, name="ac")
    fake_run(root / "walker" / "runs", "sac", 1, {"none": 900.0, "video_hard": 30.0}, task="walker_walk")


def test_a_mix_of_studies_compares_methods_only_over_tasks_they_share(tmp_path, capsys):
    mixed_studies(tmp_path / "results")
    assert main(["report", str(tmp_path / "results"), "--out", str(tmp_path / "out"), "--reps", "300"]) == 0
    printed = capsys.readouterr().out
    out = tmp_path / "out"
    table_md = (out / "table.md").read_text()
    assert "| shift | task | sac | drq | cg2a[AC] | cg2a |" in table_md
    assert "| none | cartpole_swingup | — | **750 ± 50** | 250 | 450 ± 150 |" in table_md  # one seed: its mean alone
    assert "| none | walker_walk | **900** | 600 ± 200 | — | — |" in table_md
    assert "| video_hard | walker_walk | 30 | **75 ± 25** | — | — |" in table_md
    ablation_md = (out / "ablation.md").read_text()
    assert "| none | cg2a[AC] | ✓ |  |  | — | conv+overlay+overlay_s | 250 |" in ablation_md
    assert "walker_walk" not in ablation_md

    aggregates = pd.read_csv(out / "aggregate.csv")
    iqm = aggregates[aggregates["metric"] == "IQM"]
    covered = iqm[iqm["shift"] == "none"].groupby("task_set", sort=False)["method"].agg(list).to_dict()
    assert covered == {"cartpole_swingup + walker_walk": ["drq"], "cartpole_swingup": ["drq", "cg2a[AC]", "cg2a"],
                       "walker_walk": ["sac", "drq"]}  # the widest task set first; methods in the table's order
    assert (iqm.groupby("method")["shift"].nunique() == 2).all()  # the same on video_hard
    both = iqm.set_index(["shift", "task_set", "method"]).loc[("none", "cartpole_swingup + walker_walk", "drq")]
    assert both["value"] == pytest.approx(stats.iqm([np.array([0.7, 0.8]), np.array([0.4, 0.8])]))
    assert (both["tasks"], both["runs"]) == (2, 4)
    one_seed = iqm.set_index(["shift", "task_set", "method"]).loc[("none", "walker_walk", "sac")]
    assert one_seed["value"] == 0.9 and np.isnan(one_seed["ci_low"])

    improvements = pd.read_csv(out / "improvement.csv")
    pairs = set(zip(improvements["task_set"], improvements["x"], improvements["y"], strict=True))
    assert ("walker_walk", "sac", "drq") in pairs and ("cartpole_swingup", "cg2a", "cg2a[AC]") in pairs
    assert not any("cg2a" in x and y == "sac" for _, x, y in pairs)  # never compared: no task in common
    assert not any(tasks == "cartpole_swingup + walker_walk" for tasks, _, _ in pairs)  # drq alone there
    assert improvements.set_index(["shift", "task_set", "x", "y"]).loc[
        ("none", "walker_walk", "sac", "drq"), "probability"] == 1.0

    report = (out / "report.md").read_text()
    assert "| shift | tasks | sac | drq | cg2a[AC] | cg2a |" in report
    assert "**P(row > column)** on video_hard over walker_walk, 95% CI" in report
    notes = ["No P(X > Y) over cartpole_swingup + walker_walk on none, video_hard: only drq has runs on all of these "
             "tasks.", "Not compared (no task in common) on none, video_hard: cg2a[AC] with sac; cg2a with sac."]
    assert all(f"\n- {note}\n" in report for note in notes)
    assert printed.count("aggregates: ") == 2 and all(f"aggregates: {note}\n" in printed for note in notes)
    for name in ("iqm.png", "improvement.png", "curves_cartpole_swingup.png", "curves_walker_walk.png"):
        assert (out / name).stat().st_size > 1000


def test_each_study_keeps_its_numbers_in_a_report_of_several(tmp_path):
    """The same seeds of one method in two folders are two studies, labelled by folder; every number of a study's
    own report, intervals included, is in the report of all of them."""
    mixed_studies(tmp_path / "results")
    for seed in (1, 2):  # DrQ's seeds once more, on other code, in a third study
        fake_run(tmp_path / "results" / "old" / "runs", "drq", seed, {"none": 500.0 * seed, "video_hard": 90.0})
    write_report([tmp_path / "results"], tmp_path / "all", FAST)
    every_run = pd.read_csv(tmp_path / "all" / "runs.csv").drop_duplicates("run")
    studies = every_run.groupby("method")["run"].agg(lambda runs: sorted({run.split("/")[-3] for run in runs}))
    assert studies.to_dict() == {
        "drq[old/runs/]": ["old"], "drq[swingup/runs/]": ["swingup"],  # told apart: seeds 1 and 2 twice
        "drq": ["walker"], "sac": ["walker"], "cg2a": ["swingup"], "cg2a[AC]": ["swingup"]}
    labels = dict(zip(every_run["run"], every_run["method"], strict=True))
    combined = {name: pd.read_csv(tmp_path / "all" / f"{name}.csv", dtype=str)  # numbers as written
                for name in ("table", "aggregate", "improvement")}
    for study in ("swingup", "walker", "old"):
        write_report([tmp_path / "results" / study / "runs"], tmp_path / study, FAST)
        runs = pd.read_csv(tmp_path / study / "runs.csv").drop_duplicates("run")
        rename = dict(zip(runs["method"], runs["run"].map(labels), strict=True))
        (task,) = runs["task"].unique()
        own = pd.read_csv(tmp_path / study / "table.csv", dtype=str).set_index(["shift", "task"])
        every = combined["table"].set_index(["shift", "task"]).loc[own.index]
        for column in own.columns.drop("best"):
            method, stat = column.rsplit(" ", 1)
            pd.testing.assert_series_equal(own[column], every[f"{rename[method]} {stat}"], check_names=False)
        for name, methods in (("aggregate", ["method"]), ("improvement", ["x", "y"])):
            own = pd.read_csv(tmp_path / study / f"{name}.csv", dtype=str)
            own[methods] = own[methods].replace(rename)
            over_task = combined[name][combined[name]["task_set"] == task].drop(columns="task_set")
            found = own.merge(over_task, how="left", indicator=True)
            assert (found["_merge"] == "both").all(), (study, name)  # "old" has one method: no P(X > Y)


def test_a_run_in_a_second_folder_without_a_shared_seed_is_one_more_seed(tmp_path):
    fake_run(tmp_path / "first", "drq", 1, {"none": 600.0})
    fake_run(tmp_path / "later", "drq", 2, {"none": 800.0})
    assert table(collect([tmp_path])).set_index("method").loc["drq", "seeds"] == 2
    runs = collect([tmp_path, tmp_path / "later"])  # a run found twice is one run
    assert list(runs["run"]) == [str(tmp_path / "first" / "drq-cartpole_swingup-seed1"),
                                 str(tmp_path / "later" / "drq-cartpole_swingup-seed2")]


@pytest.mark.parametrize("results", sorted(p.parent.name for p in RESULTS.glob("*/runs")))
def test_committed_tables_are_rebuilt_from_the_committed_runs(results, tmp_path, monkeypatch):
    """What README and results/ show is what `unseen report <the runs it names> --out results/<dir>` makes, and it
    names every run committed under results/<dir>/runs (an ablation's report adds the full method's runs)."""
    monkeypatch.chdir(RESULTS.parent)  # runs.csv names each run by the path the command was given
    named = list(dict.fromkeys(pd.read_csv(RESULTS / results / "runs.csv")["run"]))  # in the order given
    own = {str(p.parent.relative_to(RESULTS.parent)) for p in (RESULTS / results / "runs").glob("**/summary.json")}
    assert own <= set(named), f"results/{results}/runs has runs its report leaves out: {sorted(own - set(named))}"
    write_report([Path(run) for run in named], tmp_path, FAST)  # the tables do not depend on the bootstrap
    for name in ("table.md", "table.csv", "table.tex", "runs.csv"):
        assert (tmp_path / name).read_text() == (RESULTS / results / name).read_text(), f"results/{results}/{name}"


def test_readme_shows_the_committed_study_table():
    table = (RESULTS / "cpu" / "table.md").read_text().strip()
    assert table in (RESULTS.parent / "README.md").read_text(), (
        "README's results table differs from results/cpu/table.md"
    )


def test_caption_names_the_precisions_when_runs_differ_in_it(tmp_path):
    fake_run(tmp_path / "a", "drq", 1, {"none": 600.0}, overrides=["agent.precision=bf16"])
    fake_run(tmp_path / "a", "cg2a", 1, {"none": 200.0}, overrides=["agent.precision=float32"])
    assert "Precision differs: bf16 (drq); float32 (cg2a)." in markdown(collect([tmp_path / "a"]))
    fake_run(tmp_path / "b", "sac", 1, {"none": 300.0}, overrides=["agent.precision=bf16"])
    assert "Precision" not in markdown(collect([tmp_path / "b"]))  # one precision: nothing to say


def test_a_config_from_before_precision_is_the_same_method_as_its_bf16_twin(tmp_path):
    fake_run(tmp_path, "drq", 1, {"none": 600.0}, overrides=["agent.precision=bf16"])
    legacy = fake_run(tmp_path, "drq", 2, {"none": 800.0}, overrides=["agent.precision=bf16"])
    config = legacy / "config.yaml"
    config.write_text(config.read_text().replace("precision: bf16", "bf16: true"))
    runs = collect([tmp_path])
    assert methods(runs) == ["drq"] and set(runs["precision"]) == {"bf16"}


@pytest.mark.parametrize(
    "old, new",
    [
        (["report", "runs", "--out", "o"], ["report", "tables", "runs", "--out", "o"]),
        (["report", "--grad", "a", "b", "--out", "o"], ["report", "grad", "a", "b", "--out", "o"]),
        (["report", "--disentangle", "a", "--samples", "9"], ["report", "disentangle", "a", "--samples", "9"]),
        (["report", "--traverse", "a"], ["report", "traverse", "a"]),
        (["report", "traverse", "a"], ["report", "traverse", "a"]),
        (["train", "--algo", "drq"], ["train", "--algo", "drq"]),
    ],
)
def test_the_report_flags_before_subcommands_still_work(old, new):
    from unseen.cli import build_parser, report_argv

    assert report_argv(old) == new
    assert build_parser().parse_args(new).command == new[0]


# ----- Table 3: the xArm manipulation tasks ---------------------------------------------------------------------

SCENES = ("none", "test1", "test2", "test3")


def xarm_runs(root):
    """SAC and CG2A on Reach (2 seeds each) and CG2A on Peg in Box (1 seed), every scene, with success rates."""
    for seed in (1, 2):
        fake_run(root, "sac", seed, dict(zip(SCENES, (10.0 * seed, -20.0, -22.0, -43.0), strict=True)),
                 task="xarm_reach", success=dict.fromkeys(SCENES, 0.1 * seed), source="SGQN scene")
        fake_run(root, "cg2a", seed, dict(zip(SCENES, (39.0 + seed, 28.7, 36.7, 35.4), strict=True)),
                 task="xarm_reach", success=dict(zip(SCENES, (1.0, 0.8, 0.9 + 0.1 * (seed - 1), 1.0), strict=True)),
                 source="SGQN scene")
    fake_run(root, "cg2a", 1, dict(zip(SCENES, (189.9, 155.4, 157.8, 174.0), strict=True)), task="xarm_peg_in_box",
             success=dict.fromkeys(SCENES, 0.5), source="SGQN scene")


def test_table3_rows_methods_columns_each_tasks_scenes(tmp_path):
    xarm_runs(tmp_path / "runs")
    fake_run(tmp_path / "runs", "drq", 1, {"none": 700.0})  # a DMControl run: in the generalization table only
    write_report([tmp_path / "runs"], tmp_path / "out", FAST)
    text = (tmp_path / "out" / "table3.md").read_text()
    header = ("| method | xarm_reach train | xarm_reach test1 | xarm_reach test2 | xarm_reach test3 | "
              "xarm_peg_in_box train | xarm_peg_in_box test1 | xarm_peg_in_box test2 | xarm_peg_in_box test3 |")
    assert text.count(header) == 2  # the return, then the success rate
    assert "| sac | 15.0 ± 5.0 | -20.0 ± 0.0 | -22.0 ± 0.0 | -43.0 ± 0.0 | — | — | — | — |" in text
    assert ("| cg2a | **40.5 ± 0.5** | **28.7 ± 0.0** | **36.7 ± 0.0** | **35.4 ± 0.0** | **189.9** | **155.4** | "
            "**157.8** | **174.0** |") in text
    assert "| sac | 15 ± 5% | 15 ± 5% | 15 ± 5% | 15 ± 5% | — | — | — | — |" in text
    assert ("| cg2a | **100 ± 0%** | **80 ± 0%** | **95 ± 5%** | **100 ± 0%** | **50%** | **50%** | **50%** | "
            "**50%** |") in text
    assert "drq" not in text and "Preset `cpu`" in text and "test1: SGQN scene" in text
    csv = pd.read_csv(tmp_path / "out" / "table3.csv").set_index("method")
    assert list(csv.index) == ["sac", "cg2a"]
    assert csv.loc["sac", "xarm_reach train mean"] == 15.0 and csv.loc["sac", "xarm_reach train seeds"] == 2
    assert csv.loc["cg2a", "xarm_reach test2 success mean"] == pytest.approx(0.95)
    assert bool(csv.loc["cg2a", "xarm_reach train best"]) and np.isnan(csv.loc["sac", "xarm_peg_in_box train mean"])
    tex = (tmp_path / "out" / "table3.tex").read_text().splitlines()
    assert r"\begin{tabular}{lrrrrrrrr}" in tex
    assert r" & \multicolumn{4}{c}{xarm\_reach} & \multicolumn{4}{c}{xarm\_peg\_in\_box} \\" in tex
    assert r"\cmidrule(lr){2-5} \cmidrule(lr){6-9}" in tex
    assert all(line.count("&") == 8 for line in tex if line.endswith(r"\\") and "multicolumn" not in line)
    report = (tmp_path / "out" / "report.md").read_text()
    assert "## Table 3: xArm manipulation" in report and "| none | xarm_reach | 15 ± 5 | — |" in report
    runs = pd.read_csv(tmp_path / "out" / "runs.csv")
    assert list(runs.columns[runs.columns.get_loc("episodes"):][:2]) == ["episodes", "success"]
    assert runs.loc[runs["task"] == "cartpole_swingup", "success"].isna().all()
    again = tmp_path / "again"
    write_report([tmp_path / "runs"], again, FAST)
    for name in ("table3.md", "table3.csv", "table3.tex"):
        assert (again / name).read_bytes() == (tmp_path / "out" / name).read_bytes()


def test_no_table3_and_no_success_column_without_xarm_runs(tmp_path):
    fake_run(tmp_path / "runs", "drq", 1, {"none": 700.0, "color_hard": 300.0})
    write_report([tmp_path / "runs"], tmp_path / "out", FAST)
    assert not list((tmp_path / "out").glob("table3.*"))
    assert "success" not in pd.read_csv(tmp_path / "out" / "runs.csv").columns


def test_xarm_reach_curves_span_reachs_own_range_and_dmcontrols_the_familys(tmp_path, monkeypatch):
    from unseen.figures import pyplot

    drawn: list = []
    monkeypatch.setattr(pyplot(), "close", drawn.append)  # keep the figures to look at their axes
    xarm_runs(tmp_path / "runs")
    fake_run(tmp_path / "runs", "sac", 1, {"none": 300.0})
    write_report([tmp_path / "runs"], tmp_path / "out", FAST)
    limits = {fig._suptitle.get_text().split(":")[0]: fig.axes[0].get_ylim() for fig in drawn if fig._suptitle}
    assert limits["xarm_reach"] == (-165.0, 50.0) and limits["cartpole_swingup"] == (0.0, 1000.0)


def test_xarm_scores_and_curves_use_the_familys_range(tmp_path):
    from unseen.report import comparisons

    xarm_runs(tmp_path / "runs")
    runs = collect([tmp_path / "runs"])
    (train,) = [c for c in comparisons(runs) if c.shift == "none" and c.tasks == ("xarm_reach",)]
    np.testing.assert_allclose(train.scores["sac"][0], (np.array([10.0, 20.0]) + 270) / 770)
    assert "(return - -270) / 770" in (write_report([tmp_path / "runs"], tmp_path / "out", FAST).table
                                       .with_name("report.md").read_text())
