"""Presets, overrides and validation: every mistake ends in a UserError that names the fix."""

from __future__ import annotations

import re

import pytest

from unseen.config import apply_overrides, from_dict, load_config, make_config, save_config, to_dict, validate
from unseen.errors import UserError

from conftest import tiny_config


@pytest.mark.parametrize("task, repeat", [("cartpole_swingup", 8), ("finger_spin", 2), ("walker_walk", 4)])
def test_cpu_preset_trains_100k_frames(task, repeat):
    cfg = validate(make_config("drq", task, "cpu"))
    assert cfg.env.action_repeat == repeat
    assert cfg.train.steps * repeat == pytest.approx(100_000, abs=repeat)
    assert cfg.train.final_eval_episodes == 10
    assert cfg.train.eval_shifts == "none,color_easy,color_hard,video_easy,video_hard,distracting_cs"


def test_paper_preset_is_the_dmcontrol_gb_protocol():
    cfg = validate(make_config("sac", "walker_walk", "paper"))
    assert (cfg.env.image_size, cfg.env.frame_stack, cfg.agent.encoder_layers) == (84, 3, 11)
    assert (cfg.train.steps, cfg.train.batch_size, cfg.train.final_eval_episodes) == (500_000, 128, 100)
    assert (cfg.agent.critic_tau, cfg.agent.encoder_tau, cfg.agent.init_temperature) == (0.01, 0.05, 0.1)


def test_yaml_round_trip(tmp_path):
    cfg = apply_overrides(make_config("drq", "cartpole_swingup", "smoke"), ["agent.hidden_dim=64", "train.video=false"])
    save_config(cfg, tmp_path / "config.yaml")
    assert load_config(tmp_path / "config.yaml") == cfg
    assert cfg.agent.hidden_dim == 64 and cfg.train.video is False


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["agent.hidden"], "section.field=value"),
        (["agent.hidden=3"], "unknown config field 'agent.hidden'"),
        (["nothing.x=1"], "section.field=value"),
        (["train.steps=many"], "not a valid int"),
        (["train.video=maybe"], "not a valid bool"),
    ],
)
def test_bad_overrides(overrides, message):
    with pytest.raises(UserError, match=message):
        apply_overrides(make_config("drq", "cartpole_swingup"), overrides)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda c: setattr(c, "algo", "ppo"), "unknown algorithm 'ppo'; choose one of: sac, drq"),
        (lambda c: setattr(c.env, "task", "walker_fly"), "unknown task 'walker_fly'"),
        (lambda c: setattr(c.train, "steps", 0), "train.steps must be positive, got 0"),
        (lambda c: setattr(c.train, "steps", -5), "train.steps must be positive"),
        (lambda c: setattr(c.train, "seed_steps", -1), "train.seed_steps must be zero or positive"),
        (lambda c: setattr(c.agent, "discount", 1.5), r"agent.discount must lie in \[0, 1\]"),
        (lambda c: setattr(c.env, "image_size", 20), "too small for 11 conv layers"),
        (lambda c: setattr(c.train, "device", "tpu"), "train.device must be"),
        (lambda c: setattr(c.train, "eval_shifts", "none,fog"),
         "train.eval_shifts='none,fog' must list distinct names"),
        (lambda c: setattr(c.train, "eval_shifts", "none,none"), "must list distinct names"),
        (lambda c: setattr(c.train, "eval_shifts", ""), "must list distinct names"),
    ],
)
def test_validation_names_the_problem(change, message):
    cfg = make_config("drq", "cartpole_swingup", "paper")
    change(cfg)
    with pytest.raises(UserError, match=message):
        validate(cfg)


DMCGB_FIELDS = {"agent.trunk_final_relu", "agent.actor_recompute", "agent.exact_log_det", "agent.svea_float_conv",
                "agent.overlay_source", "train.seed_updates"}


@pytest.mark.parametrize("algo", ["sac", "drq", "svea", "cg2a"])
def test_new_runs_of_the_sac_family_behave_as_dmcontrol_gb(algo):
    for preset, burst in (("paper", 1000), ("cpu", 1000), ("smoke", 250)):
        cfg = validate(make_config(algo, "walker_walk", preset))
        assert not cfg.agent.trunk_final_relu and cfg.agent.actor_recompute and not cfg.agent.exact_log_det
        assert cfg.train.seed_updates == cfg.train.seed_steps == burst
        assert cfg.agent.overlay_source == "photos"


def test_alda_and_sac_ae_follow_their_own_reference_code():
    alda, sac_ae = make_config("alda", "walker_walk", "paper"), make_config("sac_ae", "walker_walk", "paper")
    assert (alda.agent.actor_recompute, alda.agent.exact_log_det, alda.train.seed_updates) == (False, True, 1)
    assert sac_ae.agent.trunk_final_relu and sac_ae.agent.actor_recompute and not sac_ae.agent.exact_log_det
    assert sac_ae.train.seed_updates == 1000


def test_a_config_written_before_the_dmcontrol_gb_fields_loads_with_the_old_behaviour(tmp_path):
    data = to_dict(make_config("drq", "cartpole_swingup", "cpu"))
    for key in DMCGB_FIELDS:
        section, name = key.split(".")
        del data[section][name]
    data["agent"]["bf16"] = True  # and the older rename still applies
    del data["agent"]["precision"]
    cfg = from_dict(data)
    assert cfg.agent.trunk_final_relu and not cfg.agent.actor_recompute and cfg.agent.exact_log_det
    assert not cfg.agent.svea_float_conv
    assert cfg.agent.overlay_source == "procedural" and cfg.train.seed_updates == 1
    assert cfg.agent.precision == "bf16"
    fresh = make_config("drq", "cartpole_swingup", "cpu")
    assert from_dict(to_dict(fresh)) == fresh  # a config that has the fields keeps them


def test_unknown_preset_and_stale_config_fields():
    with pytest.raises(UserError, match="unknown preset 'fast'"):
        make_config("drq", "cartpole_swingup", "fast")
    data = to_dict(make_config("drq", "cartpole_swingup"))
    data["agent"]["lr_schedule"] = "cosine"
    with pytest.raises(UserError, match=re.escape("agent.lr_schedule")):
        from_dict(data)


def test_hand_written_yaml_numbers_take_the_field_types(tmp_path):
    cfg = make_config("drq", "cartpole_swingup", "smoke")
    save_config(cfg, tmp_path / "config.yaml")
    text = (tmp_path / "config.yaml").read_text()
    text = text.replace("critic_lr: 0.001", "critic_lr: 1e-3").replace("discount: 0.99", "discount: 1")
    (tmp_path / "config.yaml").write_text(text)
    loaded = load_config(tmp_path / "config.yaml")
    assert loaded.agent.critic_lr == 1e-3 and type(loaded.agent.critic_lr) is float
    assert loaded.agent.discount == 1.0 and type(loaded.agent.discount) is float
    (tmp_path / "config.yaml").write_text(text.replace("batch_size: 64", "batch_size: many"))
    with pytest.raises(UserError, match=re.escape("train.batch_size='many' is not a valid int")):
        load_config(tmp_path / "config.yaml")


@pytest.mark.parametrize(
    "algo, field, value, message",
    [
        ("alda", "alda_retrieval", "hard", "agent.alda_retrieval must be one of softmax, argmin"),
        ("alda", "alda_latents", 1, "agent.alda_latents must be at least 2"),
        ("alda", "alda_values", 0, "agent.alda_values must be positive"),
        ("alda", "alda_beta", -1.0, "agent.alda_beta must be positive"),
        ("alda", "alda_weight_decay", -0.1, "agent.alda_weight_decay must be zero or positive"),
        ("sac_ae", "sac_ae_bits", 9, "agent.sac_ae_bits must lie in 1..8"),
        ("sac_ae", "sac_ae_latent_dim", 0, "agent.sac_ae_latent_dim must be positive"),
        ("sac_ae", "sac_ae_latent_lambda", -1.0, "agent.sac_ae_latent_lambda must be zero or positive"),
    ],
)
def test_bad_agent_settings_are_refused_with_the_fix(algo, field, value, message):
    cfg = tiny_config(algo)
    setattr(cfg.agent, field, value)
    with pytest.raises(UserError, match=message):
        validate(cfg)
