"""The report's table: mean and std across seeds of each seed's mean return; presets never mixed."""

from __future__ import annotations

import json

import pytest

from unseen.errors import UserError
from unseen.report import collect, markdown, table, write_report


def fake_run(root, algo, seed, returns, preset="cpu"):
    run = root / f"{algo}-seed{seed}"
    run.mkdir(parents=True)
    summary = {
        "algo": algo, "task": "cartpole_swingup", "preset": preset, "seed": seed, "frames": 100_000,
        "steps": 12_500, "wall_time_s": 60.0,
        "returns": {
            shift: {"mean": value, "std": 1.0, "episodes": 10, "source": "procedural" if shift != "none" else "none"}
            for shift, value in returns.items()
        },
    }
    (run / "summary.json").write_text(json.dumps(summary))


def test_table_by_hand(tmp_path):
    fake_run(tmp_path / "a", "drq", 1, {"none": 600.0, "color_hard": 100.0})
    fake_run(tmp_path / "a", "drq", 2, {"none": 800.0, "color_hard": 300.0})
    fake_run(tmp_path / "b" / "deeper", "sac", 1, {"none": 250.0})
    runs = collect([tmp_path])
    stats = table(runs).set_index(["shift", "algo"])
    assert stats.loc[("none", "drq"), "mean"] == 700.0
    assert stats.loc[("none", "drq"), "std"] == 100.0  # population std of 600 and 800
    assert stats.loc[("color_hard", "drq"), "seeds"] == 2
    text = markdown(runs)
    assert "| cartpole_swingup | none | 700 ± 100 | 250 ± 0 |" in text
    assert "drq: 2, sac: 1" in text and "over 10 evaluation episodes" in text
    assert text.index("| none |") < text.index("| color_hard |")  # benchmark order, not alphabetical
    assert "Data: color_hard: procedural." in text
    write_report([tmp_path], tmp_path / "out")
    assert {p.name for p in (tmp_path / "out").iterdir()} == {"table.md", "table.csv", "runs.csv"}


def test_presets_are_never_mixed(tmp_path):
    fake_run(tmp_path, "drq", 1, {"none": 1.0}, preset="cpu")
    fake_run(tmp_path, "sac", 1, {"none": 1.0}, preset="smoke")
    with pytest.raises(UserError, match="different presets"):
        collect([tmp_path])


def test_nothing_to_report(tmp_path):
    with pytest.raises(UserError, match="no finished runs"):
        collect([tmp_path])
    with pytest.raises(UserError, match="does not exist"):
        collect([tmp_path / "missing"])
