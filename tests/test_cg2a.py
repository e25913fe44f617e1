"""SVEA and CG2A agents: the gradient each writes before its optimizer step, the ablation switches, gamma,
checkpoints, config validation, and a CLI smoke run whose train.csv carries the grad/ diagnostics."""

from __future__ import annotations

import copy
import itertools

import numpy as np
import pandas as pd
import pytest
import torch

from unseen.cli import main
from unseen.config import validate
from unseen.errors import UserError
from unseen.grad import combine
from unseen.grad_report import grad_log, grad_summary

from conftest import batch, new_agent, tiny_config, tiny_overrides


def gradient_at_step(agent, b):
    """The critic gradient the agent hands to its optimizer in one update (captured at `step`)."""
    captured = []
    step = agent.critic_optimizer.step

    def capture():
        captured.append(torch.cat([p.grad.reshape(-1) for p in agent.critic_parameters()]))
        step()

    agent.critic_optimizer.step = capture
    metrics = agent.update(b)
    return captured[0], metrics


def view_gradients(agent, b, views):
    """g_i of every view, each by its own forward and torch.autograd.grad."""
    target = agent.td_target(b)
    rows = []
    for view in views(agent, b["obs"]):
        loss = agent.critic_loss(agent.trunk(view), b["action"], target)
        grads = torch.autograd.grad(loss, agent.critic_parameters())
        rows.append(torch.cat([g.reshape(-1) for g in grads]))
    return torch.stack(rows)


@pytest.mark.parametrize("gas, sgs", list(itertools.product((False, True), repeat=2)))
@pytest.mark.parametrize("rule", ["agree", "literal"])
def test_cg2a_writes_the_combined_gradient_of_its_ablation(gas, sgs, rule):
    agent = new_agent(
        "cg2a", cg2a_gas=gas, cg2a_sgs=sgs, sgs_rule=rule, precision="float32", channels_last=False, grad_log_every=1
    )
    twin = copy.deepcopy(agent)
    b = batch()
    written, metrics = gradient_at_step(agent, b)
    J = view_gradients(twin, b, lambda a, obs: a.views(obs))  # same generator stream: target, then views
    gamma = 0.22 + 0.06 * torch.rand((), generator=twin.generator).item()
    assert metrics["grad/gamma"] == pytest.approx(gamma) and 0.22 <= gamma <= 0.28
    expected = combine(J, gas=gas, sgs=sgs, gamma=gamma, rule=rule)
    torch.testing.assert_close(written, expected, rtol=1e-4, atol=1e-6)
    if not gas and not sgs:
        torch.testing.assert_close(written, J.mean(0), rtol=1e-4, atol=1e-6)  # AC only: the mean


def test_cg2a_vmap_and_sequential_agree():
    fields = dict(precision="float32", channels_last=False)
    a, _ = gradient_at_step(new_agent("cg2a", grad_method="sequential", **fields), batch())
    b, _ = gradient_at_step(new_agent("cg2a", grad_method="vmap", **fields), batch())
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_svea_loss_is_alpha_shift_plus_beta_conv():
    from unseen.augment import random_conv

    agent = new_agent("svea", svea_alpha=0.3, svea_beta=0.7, precision="float32", channels_last=False)
    twin = copy.deepcopy(agent)
    b = batch()
    written, metrics = gradient_at_step(agent, b)

    def views(a, obs):
        shifted = a.augment(obs)
        return [shifted, random_conv(shifted.float(), generator=a.generator)]  # float: agent.svea_float_conv

    J = view_gradients(twin, b, views)
    torch.testing.assert_close(written, 0.3 * J[0] + 0.7 * J[1], rtol=1e-4, atol=1e-6)
    assert "critic_loss_conv" in metrics


def test_fixed_gamma_and_diagnostic_names():
    agent = new_agent("cg2a", sgs_gamma_low=0.2, sgs_gamma_high=0.2, cg2a_augmentations="conv,cutout", grad_log_every=1)
    metrics = agent.update(batch())
    assert metrics["grad/gamma"] == pytest.approx(0.2)
    assert agent.overlays is None  # no overlay in the set: no image pool
    expected = {"grad/norm/shift", "grad/norm/conv", "grad/norm/cutout", "grad/weight/cutout", "grad/cos/shift-conv",
                "grad/cos/shift-cutout", "grad/cos/conv-cutout", "grad/conflict_fraction", "grad/gamma"}
    assert expected <= set(metrics)
    weights = [metrics[f"grad/weight/{n}"] for n in ("shift", "conv", "cutout")]
    assert sum(abs(w) for w in weights) == pytest.approx(1.0)


def test_diagnostics_every_k_updates():
    agent = new_agent("cg2a", grad_log_every=2)
    assert "grad/gamma" not in agent.update(batch())
    assert "grad/gamma" in agent.update(batch(seed=1))


@pytest.mark.parametrize("float_conv", [True, False])
def test_svea_conv_view_is_float_as_dmcontrol_gbs_unless_rounded(float_conv):
    agent = new_agent("svea", svea_float_conv=float_conv)
    seen = []
    trunk = agent.trunk.forward
    agent.trunk.forward = lambda obs: seen.append(obs) or trunk(obs)
    agent.update_critic({k: v for k, v in batch().items()})
    views = seen[-1].chunk(2)[1]  # the critic's batch: shifted, then conv
    rounded = torch.equal(views, views.round())
    assert views.is_floating_point() == float_conv and rounded != float_conv


def test_train_image_dir_sets_the_overlay_directory(tmp_path, monkeypatch, capsys):
    from unseen import train

    started = []
    summary = {"returns": {"none": {"mean": 0.0, "std": 0.0, "episodes": 1}}, "frames": 0, "wall_time_s": 0.0}
    monkeypatch.setattr(train, "start", lambda cfg, run_dir: started.append(cfg) or summary)
    (tmp_path / "places" / "a").mkdir(parents=True)
    main(["train", "--algo", "cg2a", "--task", "cartpole_swingup", "--image-dir", str(tmp_path / "places"),
          "--out", str(tmp_path / "run")])
    assert started[0].agent.overlay_dir == str(tmp_path / "places")
    assert main(["train", "--algo", "drq", "--task", "cartpole_swingup", "--image-dir", str(tmp_path / "places")]) == 2
    assert "--image-dir sets the overlay images of agents that overlay, not drq's" in capsys.readouterr().err


def test_cg2a_overlays_fresh_photos_every_update_and_a_procedural_pool_once():
    photos = new_agent("cg2a", overlay_source="photos")
    assert photos.overlays.source is not None and photos.overlays.images is None
    first, second = photos.views(batch()["obs"]), photos.views(batch()["obs"])
    overlay = photos.names.index("overlay")
    assert not torch.equal(first[overlay], second[overlay])
    procedural = new_agent("cg2a", overlay_source="procedural", overlay_pool=5)
    assert procedural.overlays.source is None and procedural.overlays.images.shape[0] == 5


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("cg2a_augmentations", "conv,blur", "distinct names from"),
        ("cg2a_augmentations", "conv,conv", "distinct names from"),
        ("sgs_gamma_low", 0.5, "0 <= low <= high <= 1"),
        ("sgs_rule", "positive", "agree, literal"),
        ("grad_method", "vmap", "agent.channels_last=false"),
        ("svea_alpha", -1.0, "agent.svea_alpha must be zero or positive"),
        ("overlay_dir", "/nonexistent/places", "not a directory"),
        ("overlay_source", "places", "agent.overlay_source must be one of photos, procedural"),
    ],
)
def test_bad_cg2a_settings_are_refused_with_the_fix(field, value, message):
    cfg = tiny_config("svea" if field.startswith("svea") else "cg2a")
    setattr(cfg.agent, field, value)
    with pytest.raises(UserError, match=message):
        validate(cfg)


def test_cli_smoke_run_logs_gradient_diagnostics_and_reports_them(tmp_path, capsys):
    cfg = tiny_config("cg2a", steps=140)  # past the end of the first 125-step cartpole episode
    run = tmp_path / "run"
    code = main(["train", "--algo", "cg2a", "--task", "cartpole_swingup", "--preset", "smoke", "--steps", "140",
                 "--out", str(run), "--set", *tiny_overrides(cfg)])
    assert code == 0
    log = pd.read_csv(run / "train.csv")
    columns = {"grad/norm/overlay", "grad/weight/conv", "grad/cos/conv-overlay", "grad/conflict_fraction", "grad/gamma"}
    assert columns <= set(log.columns) and log[sorted(columns)].notna().all().all()
    assert main(["report", "--grad", str(run), "--out", str(tmp_path / "plots")]) == 0
    for name in ("grad_magnitude.png", "grad_cosine.png", "grad_over_training.png"):
        assert (tmp_path / "plots" / name).stat().st_size > 1000
    summary = pd.read_csv(tmp_path / "plots" / "grad_summary.csv")
    shares = summary[summary.quantity == "magnitude share"]
    assert sorted(shares["of"]) == ["conv", "overlay", "overlay_s", "shift"]
    assert shares["mean"].sum() == pytest.approx(1.0, abs=4e-6)  # four shares, each written to 6 significant digits
    assert set(summary[summary.quantity == "cosine"]["of"]) == {c.removeprefix("grad/cos/") for c in log if "cos/" in c}
    conflict = summary[summary.quantity == "conflict fraction"]
    assert conflict["of"].tolist() == ["whole run"]  # one logged row: no halves to compare
    assert conflict[["min", "max"]].stack().between(0, 1).all() and conflict["negative"].isna().all()
    assert "| weight | conv |" in (tmp_path / "plots" / "grad_summary.md").read_text()
    assert main(["report", "--grad", str(tmp_path), "--out", str(tmp_path / "x")]) == 2
    assert "does not exist" in capsys.readouterr().err


def hand_written_log() -> pd.DataFrame:
    return pd.DataFrame({
        "step": [100, 200, 300, 400, 500],
        "episode_return": [1.0] * 5,
        "grad/norm/a": [1.0, 3.0, 1.0, 1.0, None],  # the last row logged no diagnostics
        "grad/norm/b": [3.0, 1.0, 1.0, 3.0, None],
        "grad/weight/a": [0.5, -0.25, 0.5, 0.25, None],
        "grad/weight/b": [0.5, 0.75, 0.5, 0.75, None],
        "grad/cos/a-b": [-0.5, 0.5, 1.0, -1.0, None],
        "grad/conflict_fraction": [0.1, 0.2, 0.3, 0.4, None],
        "grad/gamma": [0.22, 0.24, 0.26, 0.28, None],
    })


def test_grad_summary_on_a_hand_written_log(tmp_path):
    log = hand_written_log()
    log.to_csv(tmp_path / "train.csv", index=False)
    summary = grad_summary(grad_log(tmp_path)).set_index(["quantity", "of"])
    assert summary.loc[("magnitude share", "a"), "mean"] == pytest.approx((0.25 + 0.75 + 0.5 + 0.25) / 4)
    assert summary.loc[("weight", "a"), ["mean", "min", "max", "negative"]].tolist() == pytest.approx(
        [0.25, -0.25, 0.5, 0.25])
    assert summary.loc[("cosine", "a-b"), "negative"] == pytest.approx(0.5)
    assert summary.loc[("conflict fraction", "first half"), "mean"] == pytest.approx(0.15)
    assert summary.loc[("conflict fraction", "second half"), "mean"] == pytest.approx(0.35)
    assert np.isnan(summary.loc[("gamma", "whole run"), "negative"])


def test_grad_report_of_several_seeds(tmp_path, capsys):
    runs = [tmp_path / "seed1", tmp_path / "seed2"]
    for run, shift in zip(runs, (0.0, 0.2), strict=True):
        run.mkdir()
        log = hand_written_log()
        log["grad/conflict_fraction"] += shift  # seed 2's conflicts are 0.2 higher
        log.to_csv(run / "train.csv", index=False)
    assert main(["report", "--grad", *map(str, runs), "--out", str(tmp_path / "out")]) == 0
    for run in runs:
        assert (tmp_path / "out" / run.name / "grad_summary.csv").exists()
    seeds = pd.read_csv(tmp_path / "out" / "grad_seeds.csv").set_index(["quantity", "of"])
    whole = seeds.loc[("conflict fraction", "whole run")]
    assert whole[["seed1", "seed2", "mean", "std", "runs"]].tolist() == pytest.approx([0.25, 0.45, 0.35, 0.1, 2])
    assert seeds.loc[("weight", "a"), "std"] == 0.0  # the same weights in both runs
    md = (tmp_path / "out" / "grad_seeds.md").read_text()
    assert "| conflict fraction | whole run | 0.350 ± 0.100 | 0.250 | 0.450 |" in md
    assert main(["report", "--grad", str(runs[0]), str(runs[0]), "--out", str(tmp_path / "out")]) == 2
    assert "distinct directory names" in capsys.readouterr().err
