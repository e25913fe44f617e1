"""Presets, overrides and validation: every mistake ends in a UserError that names the fix."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

import pytest

from unseen import schema
from unseen.config import apply_overrides, from_dict, make_config, save_config, to_dict, validate
from unseen.errors import UserError
from unseen.rundir import read_config

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
    assert read_config(tmp_path) == cfg
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
        (lambda c: setattr(c.train, "seed_steps", -1), "train.seed_steps must be at least 1"),
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


def test_the_dmcontrol_gb_switches_belong_to_the_agents_they_apply_to():
    from unseen.agents import CG2AConfig, DrQConfig, SACConfig, SVEAConfig

    switches = {"trunk_final_relu", "actor_recompute", "exact_log_det"}
    assert switches <= {field.name for field in dataclasses.fields(SACConfig)}  # every SAC-derived agent's
    assert "svea_float_conv" in {field.name for field in dataclasses.fields(SVEAConfig)}
    assert "overlay_source" in {field.name for field in dataclasses.fields(CG2AConfig)}
    assert not {"svea_float_conv", "overlay_source"} & {field.name for field in dataclasses.fields(DrQConfig)}
    with pytest.raises(UserError, match=r"drq has no field 'agent.svea_float_conv' \(only svea\)"):
        apply_overrides(make_config("drq", "cartpole_swingup", "smoke"), ["agent.svea_float_conv=false"])
    with pytest.raises(UserError, match=r"train\.seed_updates must be at least 1, got 0"):
        validate(apply_overrides(make_config("drq", "cartpole_swingup", "smoke"), ["train.seed_updates=0"]))


@pytest.mark.parametrize("algo", ["sac", "drq", "svea", "cg2a", "rad", "curl"])
def test_new_runs_of_the_sac_family_behave_as_dmcontrol_gb(algo):
    for preset, burst in (("paper", 1000), ("cpu", 1000), ("smoke", 250)):
        cfg = validate(make_config(algo, "walker_walk", preset))
        assert not cfg.agent.trunk_final_relu and cfg.agent.actor_recompute and not cfg.agent.exact_log_det
        assert cfg.train.seed_updates == cfg.train.seed_steps == burst
        assert getattr(cfg.agent, "svea_float_conv", algo == "svea") == (algo == "svea")
        assert getattr(cfg.agent, "overlay_source", None) == ("photos" if algo == "cg2a" else None)


def test_alda_and_sac_ae_follow_their_own_reference_code():
    alda, sac_ae = make_config("alda", "walker_walk", "paper"), make_config("sac_ae", "walker_walk", "paper")
    assert (alda.agent.actor_recompute, alda.agent.exact_log_det, alda.train.seed_updates) == (False, True, 1)
    assert sac_ae.agent.trunk_final_relu and sac_ae.agent.actor_recompute and not sac_ae.agent.exact_log_det
    assert sac_ae.train.seed_updates == 1000


PRE_DMCGB_VALUES = {"agent.trunk_final_relu": True, "agent.actor_recompute": False, "agent.exact_log_det": True,
                    "agent.svea_float_conv": False, "agent.overlay_source": "procedural", "train.seed_updates": 1}
"""The behaviour of every run made before issue 18, by field."""


@pytest.mark.parametrize("algo", ["sac", "drq", "svea", "cg2a", "alda", "sac_ae", "rad", "curl", "drqv2"])
def test_a_config_written_before_the_dmcontrol_gb_fields_loads_with_the_old_behaviour(algo):
    data = to_dict(make_config(algo, "cartpole_swingup", "cpu"))
    removed = [key for key in PRE_DMCGB_VALUES if key.split(".")[1] in data[key.split(".")[0]]]
    assert len(removed) == (1 if algo == "drqv2" else 4 + (algo in ("svea", "cg2a")))  # DrQ-v2: seed_updates only
    for key in removed:
        section, name = key.split(".")
        del data[section][name]
    data["agent"]["bf16"] = True  # and the older rename still applies
    del data["agent"]["precision"]
    cfg = from_dict(data)
    for key in removed:
        section, name = key.split(".")
        assert getattr(getattr(cfg, section), name) == PRE_DMCGB_VALUES[key], key
    assert cfg.agent.precision == "bf16"
    fresh = make_config(algo, "cartpole_swingup", "cpu")
    assert from_dict(to_dict(fresh)) == fresh  # a config that has the fields keeps them


def test_a_saved_config_lacks_only_fields_added_later():
    data = to_dict(make_config("drq", "cartpole_swingup", "cpu"))
    for section, name in (("agent", "fast_kernels"), ("train", "threads"), ("train", "eval_shifts")):
        del data[section][name]
    cfg = from_dict(data)
    assert (cfg.agent.fast_kernels, cfg.train.threads, cfg.train.eval_shifts) == (True, 0, "none")
    del data["agent"]["shift_pad"]
    with pytest.raises(UserError, match=r"agent\.shift_pad is missing: the file is incomplete"):
        from_dict(data)
    with pytest.raises(UserError, match=r"^train is missing"):
        from_dict({key: value for key, value in to_dict(make_config("drq", "cartpole_swingup")).items()
                   if key != "train"})


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
    loaded = read_config(tmp_path)
    assert loaded.agent.critic_lr == 1e-3 and type(loaded.agent.critic_lr) is float
    assert loaded.agent.discount == 1.0 and type(loaded.agent.discount) is float
    (tmp_path / "config.yaml").write_text(text.replace("batch_size: 64", "batch_size: many"))
    with pytest.raises(UserError, match=re.escape("train.batch_size='many' is not a valid int")):
        read_config(tmp_path)


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


@pytest.mark.parametrize(
    "override, message",
    [
        ("agent.actor_lr=-0.5", "agent.actor_lr must be positive, got -0.5"),
        ("agent.init_temperature=-1", "agent.init_temperature must be positive, got -1.0"),
        ("agent.alpha_beta1=1", r"agent.alpha_beta1 must lie in \[0, 1\), got 1.0"),
        ("agent.critic_lr=nan", "agent.critic_lr must be a finite number"),
        ("env.frame_stack=0", "env.frame_stack must be positive, got 0"),
        ("agent.precision=fp8", "agent.precision must be one of auto, bf16, float32, got 'fp8'"),
    ],
)
def test_every_numeric_field_has_its_range_checked(override, message):
    cfg = apply_overrides(make_config("drq", "cartpole_swingup", "smoke"), [override])
    with pytest.raises(UserError, match=message):
        validate(cfg)


def test_a_field_of_another_algorithm_is_a_one_line_error():
    with pytest.raises(UserError, match=r"drq has no field 'agent.alda_latents' \(only alda\); drop the override"):
        apply_overrides(make_config("drq", "cartpole_swingup", "smoke"), ["agent.alda_latents=8"])
    assert not hasattr(make_config("drq", "cartpole_swingup").agent, "alda_latents")
    assert apply_overrides(make_config("alda", "cartpole_swingup"), ["agent.alda_latents=8"]).agent.alda_latents == 8


def test_legacy_flat_agent_sections_load_when_foreign_fields_hold_their_defaults():
    from unseen.config import legacy_defaults

    data = to_dict(make_config("drq", "cartpole_swingup", "cpu"))
    flat = legacy_defaults() | data["agent"]  # every algorithm's fields, as configs were written before issue 19
    flat.pop("precision")
    data["agent"] = flat | {"bf16": False}
    expected = make_config("drq", "cartpole_swingup", "cpu")
    expected.agent.precision = "float32"
    assert from_dict(data) == expected
    data["agent"]["alda_latents"] = 8
    with pytest.raises(UserError, match=r"agent\.alda_latents=8 belongs to another algorithm than drq"):
        from_dict(data)


def test_the_default_run_config_is_the_paper_preset():
    from unseen.config import RunConfig

    assert to_dict(validate(RunConfig())) == to_dict(make_config("drq", "cartpole_swingup", "paper")) | {
        "train": to_dict(RunConfig())["train"]
    }


@dataclass
class Inner:
    name: str = schema.param()
    rate: float = schema.param(0.5, gt=0, le=1)


@dataclass
class Outer:
    sizes: list[int] = schema.param(nonempty=True, ge=1)
    inner: Inner = schema.param(factory=lambda: Inner(name="x"))
    named: dict[str, Inner] = schema.param(factory=dict)
    limit: int | None = schema.param(None, gt=0)
    flag: bool = False


def test_one_schema_engine_reads_nested_typed_data_and_checks_every_rule():
    outer = schema.build(Outer, {"sizes": [1, 2], "inner": {"rate": "1e-1", "name": "a"},
                                 "named": {"b": {"name": "b", "rate": 1}}, "limit": None, "flag": "yes"})
    schema.check(outer)
    assert outer == Outer([1, 2], Inner("a", 0.1), {"b": Inner("b", 1.0)}, None, True)
    assert type(outer.named["b"].rate) is float
    bad = [
        ({"sizes": [1, True]}, "sizes[1]=True is not a valid int"),
        ({"sizes": 3}, "sizes must be a list, got 3"),
        ({"sizes": [1], "inner": {"rate": 0.5}}, "inner.name is required"),
        ({"sizes": [1], "named": {"b": {"name": "b", "speed": 1}}}, "unknown key(s) named.b.speed in named.b"),
        ({"sizes": [1], "inner": []}, "inner must be a mapping with keys from: name, rate"),
        ({"sizes": [1], "limit": 2.5}, "limit=2.5 is not a valid int"),
    ]
    for data, message in bad:
        with pytest.raises(UserError, match=re.escape(message)):
            schema.build(Outer, data)
    broken = [
        (Outer([]), "sizes must be a non-empty list"),
        (Outer([2, 0]), "sizes[1] must be at least 1, got 0"),
        (Outer([1], Inner("a", 1.5)), "inner.rate must lie in (0, 1], got 1.5"),
        (Outer([1], named={"c": Inner("c", float("nan"))}), "named.c.rate must be a finite number, got nan"),
        (Outer([1], limit=0), "limit must be positive, got 0"),
    ]
    for obj, message in broken:
        with pytest.raises(UserError, match=re.escape(message)):
            schema.check(obj)
