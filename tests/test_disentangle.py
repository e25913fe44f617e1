"""Disentanglement metrics on codes with a known answer, and `unseen report --disentangle` on a tiny run."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from unseen.agents import make_agent
from unseen.disentangle import (
    Estimation,
    discretize,
    group_permutation,
    infoc,
    infom,
    mig,
    mutual_information,
    normalized_mutual_information,
    score,
)

from conftest import run_cli

N = 2000


@pytest.fixture(scope="module")
def factors() -> np.ndarray:
    return np.random.default_rng(0).uniform(size=(N, 4))


def disentangled(f: np.ndarray) -> np.ndarray:
    """Latent i a strictly monotone function of factor i (one of them decreasing)."""
    return np.stack([f[:, 0] ** 3, np.exp(f[:, 1]), 1 - 2 * f[:, 2], np.tanh(f[:, 3])], axis=1)


def rotated(f: np.ndarray) -> np.ndarray:
    """Factors (0, 1) and (2, 3) mixed by 45-degree rotations: every latent is half of two factors."""
    c = math.sqrt(0.5)
    return c * np.stack([f[:, 0] + f[:, 1], f[:, 0] - f[:, 1], f[:, 2] + f[:, 3], f[:, 2] - f[:, 3]], axis=1)


def metrics(result) -> tuple[float, float, float]:
    return result.mig, result.infom, result.infoc


def test_equal_frequency_bins_keep_ties_together_and_few_values_as_they_are():
    x = np.random.default_rng(1).permutation(100).astype(float)
    assert np.bincount(discretize(x[:, None], 4)[:, 0]).tolist() == [25, 25, 25, 25]
    ties = np.array([0.0] * 50 + list(range(1, 51)))[:, None]
    codes = discretize(ties, 4)[:, 0]
    assert len(set(codes[:50])) == 1 and codes[50] != codes[0]
    few = np.array([[7.0], [3.0], [7.0], [5.0]])
    assert discretize(few, 4)[:, 0].tolist() == [2, 0, 2, 1]


def test_mutual_information_by_hand():
    x = np.array([[0], [0], [0], [1]])
    y = np.array([[0], [0], [1], [1]])
    h_x = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    h_joint = -(0.5 * math.log(0.5) + 2 * 0.25 * math.log(0.25))
    assert mutual_information(x, y, bins=2)[0, 0] == pytest.approx(h_x + math.log(2) - h_joint)
    assert mutual_information(y, y, bins=2)[0, 0] == pytest.approx(math.log(2))
    assert mutual_information(np.array([[0], [1], [0], [1]]), y, bins=2)[0, 0] == pytest.approx(0.0)


def test_group_permutation_moves_whole_groups_to_groups_of_the_same_size():
    groups = np.array([0, 0, 1, 1, 2, 2, 3, 3, 3, 4])
    rng = np.random.default_rng(0)
    for _ in range(20):
        permutation = group_permutation(groups, rng)
        assert sorted(permutation) == list(range(10))
        for group in range(5):
            assert len(set(groups[permutation[groups == group]])) == 1  # one group's samples go to one group
        assert set(permutation[groups == 3]) == {6, 7, 8} and permutation[9] == 9  # the only groups of sizes 3 and 1


def test_chance_level_and_significance():
    rng = np.random.default_rng(4)
    factor = rng.uniform(size=(N, 1))
    noise = rng.uniform(size=(N, 1))
    assert normalized_mutual_information(factor, factor)[0, 0] == pytest.approx(1.0)
    assert normalized_mutual_information(noise, factor)[0, 0] == 0.0
    small = rng.uniform(size=(8, 1))
    # 8 samples: not significant
    assert normalized_mutual_information(small, small + rng.normal(0, 0.5, (8, 1)))[0, 0] == 0.0
    weak = factor + rng.normal(0, 1.0, (N, 1))
    assert 0 < normalized_mutual_information(weak, factor)[0, 0] < 0.2
    # only chance
    assert 0 <= normalized_mutual_information(noise, factor, estimation=Estimation(alpha=1.0))[0, 0] < 0.01


def test_per_episode_factors_are_measured_against_episodes_not_samples():
    """100 episodes of 20 samples; 3 factors drawn once per episode, each encoded exactly by its own latent.
    Tested against independent samples, every latent looks half-informative about the other factors (it tells
    the episodes apart); against permutations of whole episodes, the code is perfect."""
    rng = np.random.default_rng(5)
    episodes = np.repeat(np.arange(100), 20)
    per_episode = rng.uniform(size=(100, 3))[episodes]
    naive, grouped = score(per_episode, per_episode), score(per_episode, per_episode, groups=episodes)
    assert (naive.nmi[~np.eye(3, dtype=bool)] > 0.3).all() and naive.infom < 0.6
    np.testing.assert_allclose(grouped.nmi, np.eye(3))
    assert metrics(grouped) == pytest.approx((1.0, 1.0, 1.0))


def test_metrics_of_a_matrix_by_hand():
    nmi = np.array([[1.0, 0.0], [0.6, 0.2], [0.0, 0.5]])
    assert mig(nmi) == pytest.approx(((1 - 0.6) + (0.5 - 0.2)) / 2)
    rows = np.mean([1.0, 0.6 / 0.8, 1.0])
    assert infom(nmi) == pytest.approx((rows - 1 / 2) / (1 - 1 / 2))
    columns = np.mean([1.0 / 1.6, 0.5 / 0.7])
    assert infoc(nmi) == pytest.approx((columns - 1 / 3) / (1 - 1 / 3))
    assert infom(nmi[:, :1]) == 1.0 and infoc(nmi[:1]) == 1.0  # one factor, one latent: nothing to spread over
    assert (mig(np.zeros((3, 2))), infom(np.zeros((3, 2))), infoc(np.zeros((3, 2)))) == (0.0, 0.0, 0.0)


def test_a_disentangled_code_scores_near_one_and_a_rotated_one_clearly_lower(factors):
    perfect, mixed = score(disentangled(factors), factors), score(rotated(factors), factors)
    assert min(metrics(perfect)) > 0.95
    assert np.allclose(np.diag(perfect.nmi), 1.0)
    assert mixed.mig < 0.1 and mixed.infom < 0.5 and mixed.infoc < 0.5
    assert (mixed.nmi[:2, :2] > 0.1).all()  # each of the first two latents informs both of the first two factors


def test_a_noise_latent_contributes_nothing(factors):
    code = disentangled(factors)
    noise = np.random.default_rng(2).normal(size=(N, 1))
    with_noise = score(np.hstack([code, noise]), factors)
    assert metrics(with_noise) == metrics(score(code, factors))
    assert not with_noise.active[-1] and (with_noise.nmi[-1] == 0).all()


def test_invariant_to_strictly_increasing_rescaling_of_a_latent(factors):
    code = rotated(factors) + np.random.default_rng(3).normal(0, 0.05, (N, 4))
    rescaled = code.copy()
    rescaled[:, 0] = np.exp(code[:, 0])
    rescaled[:, 2] = 3 * code[:, 2] ** 3 - 4
    a, b = score(code, factors), score(rescaled, factors)
    np.testing.assert_array_equal(a.nmi, b.nmi)
    assert metrics(a) == metrics(b)
    # Hsu et al.'s activity rule compares ranges: a latent stretched 20-fold leaves the others inactive.
    stretched = code.copy()
    stretched[:, 0] = np.exp(3 * code[:, 0])
    c = score(stretched, factors)
    np.testing.assert_array_equal(a.nmi, c.nmi)
    assert c.mig == a.mig and c.active.sum() < 4
    assert metrics(score(stretched, factors, min_range_fraction=0)) == metrics(
        score(code, factors, min_range_fraction=0)
    )


def test_constant_and_duplicate_factors_are_skipped_without_nan(factors):
    code = disentangled(factors)
    extended = np.hstack([factors, np.full((N, 1), 0.5), 2 * factors[:, 1:2] + 1])
    result = score(code, extended)
    assert result.constant.tolist() == [False] * 4 + [True, False]
    assert result.duplicate_of.tolist() == [-1] * 5 + [1]
    assert (result.nmi[:, 4] == 0).all()
    assert metrics(result) == metrics(score(code, factors))
    assert not np.isnan(metrics(result)).any()


def test_tensors_are_accepted(factors):
    assert metrics(score(torch.from_numpy(disentangled(factors)), torch.from_numpy(factors))) == metrics(
        score(disentangled(factors), factors)
    )


def test_sac_latents_are_the_critic_projection(tiny):
    agent = make_agent("drq", (9, 32, 32), 1, tiny.agent, torch.device("cpu"), seed=0)
    obs = torch.randint(0, 256, (5, 9, 32, 32), dtype=torch.uint8)
    latents = agent.latents(obs)
    assert latents.shape == (5, tiny.agent.projection_dim) and latents.dtype == torch.float32
    assert not latents.requires_grad and latents.abs().max() <= 1  # tanh
    torch.testing.assert_close(latents, agent.critic.projection(agent.trunk(obs)))


# ----- the command ---------------------------------------------------------------------------------------

SHIFTS = ("none", "color_hard", "distracting_cs")


def report(capsys, run: Path, out: Path) -> dict:
    code, _, err = run_cli(
        capsys, "report", "--disentangle", str(run), "--out", str(out), "--samples", "40", "--per-episode", "40"
    )
    assert code == 0, err
    return json.loads((out / "disentangle.json").read_text())


def test_report_writes_the_files_with_metrics_in_range_and_is_deterministic(capsys, tiny_run, tmp_path):
    first = report(capsys, tiny_run, tmp_path / "a")
    names = {"disentangle.md", "disentangle.csv", "disentangle.json", *(f"nmi_{shift}.png" for shift in SHIFTS)}
    assert {path.name for path in (tmp_path / "a").iterdir()} == names
    assert list(first["shifts"]) == list(SHIFTS)
    for entry in first["shifts"].values():
        assert all(0 <= entry[key] <= 1 for key in ("mig", "infom", "infoc"))
        assert entry["samples"] == 40 and entry["episodes"] == 1 and entry["latents"] == 16
        assert np.asarray(entry["nmi"]).shape == (16, entry["factors"])
    colours = [name for name in first["shifts"]["color_hard"]["factor_names"] if name.startswith("color/")]
    assert len(colours) == 12 and set(colours) <= set(first["shifts"]["color_hard"]["constant_factors"])  # one episode
    assert "camera/roll" in first["shifts"]["distracting_cs"]["factor_names"]
    table = pd.read_csv(tmp_path / "a" / "disentangle.csv")
    assert table["shift"].tolist() == list(SHIFTS)
    assert "| none |" in (tmp_path / "a" / "disentangle.md").read_text()
    second = report(capsys, tiny_run, tmp_path / "b")
    assert second == first


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--shift", "rain"], "unknown shift(s) rain"),
        (["--samples", "0"], "--samples must be positive, got 0"),
        (["--per-episode", "500"], "--per-episode must be at most 126"),
        (["--bins", "1"], "--bins must be at least 2"),
    ],
)
def test_report_bad_input_is_one_line(capsys, tiny_run, tmp_path, extra, message):
    code, _, err = run_cli(capsys, "report", "--disentangle", str(tiny_run), "--out", str(tmp_path), *extra)
    assert code == 2 and len(err.splitlines()) == 1 and message in err, err


def test_report_of_a_directory_that_is_not_a_run(capsys, tmp_path):
    code, _, err = run_cli(capsys, "report", "--disentangle", str(tmp_path))
    assert code == 2 and len(err.splitlines()) == 1 and "is not a run directory" in err


def test_tables_still_need_out_and_disentangle_takes_one_run(capsys, tmp_path):
    code, _, err = run_cli(capsys, "report", str(tmp_path))
    assert code == 2 and err.endswith("--out is required: the folder for the tables (or the plots)")
    code, _, err = run_cli(capsys, "report", "--disentangle", str(tmp_path), str(tmp_path))
    assert code == 2 and "measures one run" in err
