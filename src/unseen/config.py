"""Typed run configuration, the presets (docs/protocol.md), overrides and validation.

A run is described by one `RunConfig`: its environment (`EnvConfig`), its algorithm's own config (a subclass of
`unseen.agents.AgentConfig`, from the registry in `unseen.agents`) and the training loop (`TrainConfig`).
`make_config(algo, task, preset, ...)` resolves a preset into a complete config; `apply_overrides` changes single
fields from `section.field=value` strings; `validate` fails early with one line that says what is wrong and how to
fix it. The resolved config is saved as `config.yaml` in every run directory and read back by
`unseen.rundir.read_config` through `from_dict`, which also reads the configs of older versions (`upgraded`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from unseen import schema
from unseen.agents import REGISTRY, AgentConfig, DrQConfig, algos, spec_of
from unseen.errors import UserError
from unseen.schema import param

PRESETS = ("paper", "cpu", "smoke")
DEVICES = ("auto", "cpu", "cuda")


def __getattr__(name: str) -> Any:
    # `ALGOS` follows the registry, which may grow after this module is imported.
    if name == "ALGOS":
        return algos()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass
class EnvConfig:
    """What the agent sees and how often it acts."""

    task: str = "cartpole_swingup"
    """Task of a registered environment family (`unseen.envs.all_tasks()`), e.g. DMControl's `domain_task`."""
    image_size: int = param(84, gt=0)
    """Height and width of every rendered frame, in pixels."""
    frame_stack: int = param(3, gt=0)
    """Number of consecutive RGB frames stacked on the channel axis."""
    action_repeat: int = param(4, gt=0)
    """Simulator steps per agent step (`make_config` sets the task's default: its family's; DMControl: cartpole 8,
    finger 2, others 4)."""
    render_shadows: bool = False
    """Render shadows and reflections (4x slower on CPU; off in every preset, recorded per run)."""


@dataclass
class TrainConfig:
    """The training loop: how long, how often to learn, evaluate, log and checkpoint."""

    steps: int = param(500_000, gt=0)
    """Agent steps to train for (environment frames = steps x action repeat)."""
    seed_steps: int = param(1000, ge=1, why="the first update samples what they collected")
    """Initial steps with uniformly random actions and no updates."""
    seed_updates: int = param(1000, ge=1)
    """Updates at the first step after the seed steps, then one per step (DMControl-GB: as many as seed steps)."""
    batch_size: int = param(128, gt=0)
    """Transitions per update."""
    replay_capacity: int = param(0, ge=0)
    """Frames the replay buffer holds; 0 means enough for the whole run (nothing is ever overwritten)."""
    eval_every: int = param(10_000, ge=0)
    """Evaluate on the training environment every this many agent steps (0 disables)."""
    eval_episodes: int = param(10, gt=0)
    """Episodes of each periodic evaluation, on each shift of `eval_shifts`."""
    eval_shifts: str = "none"
    """Shifts of every periodic and the final evaluation, comma-separated names from the task's family's shifts."""
    final_eval_episodes: int = param(100, gt=0)
    """Episodes of the final evaluation written to summary.json."""
    checkpoint_every: int = param(10_000, ge=0)
    """Write a checkpoint every this many agent steps (and always at the end and on SIGINT/SIGTERM)."""
    tensorboard: bool = True
    """Write TensorBoard event files beside the CSV logs."""
    video: bool = True
    """Save an mp4 of the first episode of every evaluation."""
    device: str = param("auto", choices=DEVICES)
    """Torch device: "auto" (CUDA when available, else CPU), "cpu" or "cuda"."""
    threads: int = param(0, ge=0)
    """Intra-op CPU threads; 0: OMP_NUM_THREADS if set, else the cores free when the run starts (saved with the run)."""


@dataclass
class RunConfig:
    """Everything that defines one training run; saved as config.yaml in the run directory. The defaults are the
    `paper` preset's for DrQ on cartpole_swingup (`make_config` resolves the others)."""

    algo: str = "drq"
    """Algorithm: one of `unseen.agents.algos()`; `agent` is its config."""
    preset: str = param("paper", choices=PRESETS)
    """Preset the defaults came from (docs/protocol.md); reports never mix presets."""
    seed: int = param(0, ge=0, le=2**32 - 1)
    """Seed of everything random in the run (NumPy's global generator takes 0..2^32-1)."""
    env: EnvConfig = field(default_factory=lambda: EnvConfig(action_repeat=8))
    """The environment (cartpole's default action repeat is 8)."""
    agent: AgentConfig = field(default_factory=DrQConfig)
    """The algorithm's own config: the `config_cls` of `algo` in `unseen.agents.REGISTRY`."""
    train: TrainConfig = field(default_factory=TrainConfig)
    """The training loop."""


@dataclass(frozen=True)
class ReportConfig:
    """How `unseen report` estimates its intervals (docs/reports.md)."""

    reps: int = 10_000
    """Bootstrap resamples of every confidence interval and curve band."""
    seed: int = 0
    """Seed of the bootstrap generators: the same runs give the same intervals."""


def default_action_repeat(task: str) -> int:
    """The default action repeat of `task`, as its environment family declares it (DMControl-GB's for DMControl)."""
    from unseen.envs import family_of  # imported on use: importing the environments checks the GL backend

    return family_of(task).action_repeat(task)


CPU_FRAMES = 100_000


def make_config(algo: str, task: str, preset: str = "cpu", seed: int = 0, steps: int | None = None) -> RunConfig:
    """Resolve a preset (docs/protocol.md) for an algorithm and task into a complete config: the preset's values with
    the task's family's defaults (action repeat, frame stack), then the family's own changes to the preset
    (`EnvFamily.presets`), then the algorithm's (its registry entry's `preset` hook)."""
    from unseen.envs import family_of

    if preset not in PRESETS:
        raise UserError(f"unknown preset {preset!r}; choose one of: {', '.join(PRESETS)}")
    spec = spec_of(algo)
    family = family_of(task)
    cfg = RunConfig(algo=algo, preset=preset, seed=seed, env=EnvConfig(task=task), agent=spec.config_cls())
    cfg.env.action_repeat = family.action_repeat(task)
    cfg.env.frame_stack = family.frame_stack
    if preset in ("paper", "cpu"):
        # Learning curves on every shift, and a run that finishes evaluated on all of them.
        cfg.train.eval_shifts = ",".join(family.shifts)
    if preset == "cpu":
        # 64x64 frames and the 4-layer trunk of SAC-AE/DrQ: one update costs ~75 ms here instead of ~240 ms
        # for the 11-layer trunk at 84x84 (docs/presets.md has the measurements).
        cfg.env.image_size = 64
        cfg.agent.encoder_layers = 4
        cfg.train.steps = math.ceil(CPU_FRAMES / cfg.env.action_repeat)
        cfg.train.eval_every = math.ceil(10_000 / cfg.env.action_repeat)
        cfg.train.eval_episodes = 5
        cfg.train.final_eval_episodes = 10
        cfg.train.checkpoint_every = cfg.train.eval_every
    elif preset == "smoke":
        cfg.env.image_size = 64
        cfg.agent.encoder_layers = 4
        cfg.agent.hidden_dim = 256
        cfg.train.steps = 1500
        cfg.train.seed_steps = 250
        cfg.train.seed_updates = min(cfg.train.seed_updates, cfg.train.seed_steps)
        cfg.train.batch_size = 64
        cfg.train.eval_every = 750
        cfg.train.eval_episodes = 2
        cfg.train.final_eval_episodes = 5
        cfg.train.checkpoint_every = 750
    set_fields(cfg, family.presets.get(preset, {}))
    if spec.preset is not None:
        spec.preset(cfg)
    if steps is not None:
        cfg.train.steps = steps
    return cfg


def set_fields(cfg: RunConfig, values: Mapping[str, Any]) -> None:
    """Set `section.field` -> value pairs of a family's preset changes; a field the config lacks is a bug of the
    family's declaration (`ValueError`)."""
    for key, value in values.items():
        section_name, _, name = key.partition(".")
        section = getattr(cfg, section_name, None)
        if not dataclasses.is_dataclass(section) or name not in field_names(type(section)):
            raise ValueError(f"a family's preset sets {key!r}, which is no config field")
        setattr(section, name, value)


def to_dict(cfg: RunConfig) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def from_dict(data: Any) -> RunConfig:
    """Inverse of `to_dict`, reading older configs too (`upgraded`): every section and field must be there (a saved
    config is written whole: one that lacks a field was cut short or edited), unknown keys are an error."""
    data = upgraded(data)
    sections = {
        "env": lambda value, prefix: schema.build(EnvConfig, value, prefix, complete=True),
        # `algo` is read (and known) before `agent`: fields are built in order.
        "agent": lambda value, prefix: schema.build(spec_of(data["algo"]).config_cls, value, prefix, complete=True),
        "train": lambda value, prefix: schema.build(TrainConfig, value, prefix, complete=True),
    }
    return schema.build(RunConfig, data, "", sections, complete=True)


ADDED_FIELDS: dict[str, dict[str, Any]] = {
    "agent": {
        "fast_kernels": True,  # fused Adam and in-place ReLUs were always on before the switch
        # DMControl-GB's behaviours (issue 18, docs/dmcontrol-gb.md): unseen computed otherwise before them.
        "trunk_final_relu": True,
        "actor_recompute": False,
        "exact_log_det": True,
        "svea_float_conv": False,
        "overlay_source": "procedural",
    },
    "train": {
        "eval_shifts": "none",  # periodic evaluations were on the training environment only
        "threads": 0,  # resolved anew at every start, as before the count was saved
        "seed_updates": 1,  # issue 18: one update per step from the first
    },
}
"""Fields added after runs were first saved, with the value every run made before the field existed computed with:
a config.yaml that lacks one of these fields (of its algorithm's config) loads with this value, so that resumes and
reports of those runs keep the behaviour they were trained with. Any other missing field is an error."""


def upgraded(data: Any) -> Any:
    """A saved config in the current layout. Configs written before `agent.precision` existed say
    `agent.bf16: true|false`, which is precision "bf16" or "float32". Configs written before each algorithm had its
    own config carry every algorithm's fields in `agent:`: a field of another algorithm is dropped when it holds that
    algorithm's default (it never reached the agent), and is an error otherwise (the run's meaning is unclear).
    Fields of the run's algorithm and of `train:` added since runs were first saved that a config lacks take
    `ADDED_FIELDS`' values. Anything but a mapping with a known algorithm is left for `from_dict` to refuse."""
    if not isinstance(data, dict):
        return data
    if isinstance(data.get("train"), dict):
        data = data | {"train": ADDED_FIELDS["train"] | data["train"]}
    algo = data.get("algo")
    if not isinstance(algo, str) or algo not in REGISTRY or not isinstance(data.get("agent"), dict):
        return data
    agent = dict(data["agent"])
    if "bf16" in agent:
        agent["precision"] = "bf16" if agent.pop("bf16") else "float32"
    own = field_names(REGISTRY[algo].config_cls)
    agent = {name: value for name, value in ADDED_FIELDS["agent"].items() if name in own} | agent
    defaults = legacy_defaults()
    for name in [name for name in agent if name not in own and name in defaults]:
        value = schema.coerce(agent[name], type(defaults[name]), f"agent.{name}")
        if value != defaults[name]:
            raise UserError(
                f"agent.{name}={value!r} belongs to another algorithm than {algo}; remove it from config.yaml"
            )
        del agent[name]
    return data | {"agent": agent}


def legacy_defaults() -> dict[str, Any]:
    """Every registered algorithm's config fields with their defaults (the one flat `agent:` section of old
    configs)."""
    defaults: dict[str, Any] = {}
    for spec in REGISTRY.values():
        defaults |= {f.name: f.default for f in dataclasses.fields(spec.config_cls)}
    return defaults


def save_config(cfg: RunConfig, path: Path) -> None:
    path.write_text(config_text(cfg))


def config_text(cfg: RunConfig) -> str:
    """`cfg` as config.yaml holds it."""
    return yaml.safe_dump(to_dict(cfg), sort_keys=False)


def apply_overrides(cfg: RunConfig, overrides: list[str]) -> RunConfig:
    """Set fields from `section.field=value` strings, e.g. `agent.hidden_dim=64`, parsed by the field's type; a
    field the run's algorithm does not have is a one-line error."""
    for item in overrides:
        key, sep, raw = item.partition("=")
        section_name, dot, name = key.partition(".")
        section = getattr(cfg, section_name, None) if dot else None
        if not sep or not dataclasses.is_dataclass(section):
            raise UserError(f"bad override {item!r}; write section.field=value with section one of env, agent, train")
        fields = {f.name: f for f in dataclasses.fields(section)}
        if name not in fields:
            owners = [algo for algo, spec in REGISTRY.items() if name in field_names(spec.config_cls)]
            if section_name == "agent" and owners:
                raise UserError(f"{cfg.algo} has no field {key!r} (only {', '.join(owners)}); drop the override")
            raise UserError(f"unknown config field {key!r}; {section_name} has: {', '.join(fields)}")
        setattr(section, name, schema.parse(raw, type(getattr(section, name)), key))
    return cfg


def field_names(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def check(cfg: RunConfig) -> RunConfig:
    """Check every value a user can get wrong: each field's declared range, then the rules between fields, all at
    once before anything is made; raise `UserError` with one line that names the fix. What a saved run's config
    must satisfy to be read (`unseen.rundir.read_config`)."""
    from unseen.envs import all_tasks, family_of

    spec = spec_of(cfg.algo)
    if not isinstance(cfg.agent, spec.config_cls):
        raise UserError(f"the agent config of {cfg.algo} must be a {spec.config_cls.__name__}")
    if cfg.env.task not in all_tasks():
        raise UserError(f"unknown task {cfg.env.task!r}; choose one of: {', '.join(all_tasks())}")
    schema.check(cfg)
    cfg.agent.check(cfg.env)
    if 0 < cfg.train.replay_capacity <= cfg.env.frame_stack:
        raise UserError(
            f"train.replay_capacity={cfg.train.replay_capacity} must exceed env.frame_stack={cfg.env.frame_stack} "
            "(a stack of frames and the next one); raise it, or 0 for the whole run"
        )
    shift_names = family_of(cfg.env.task).shifts
    shifts = eval_shift_names(cfg.train)
    if not shifts or len(set(shifts)) != len(shifts) or not set(shifts) <= set(shift_names):
        raise UserError(
            f"train.eval_shifts={cfg.train.eval_shifts!r} must list distinct names from: {', '.join(shift_names)}"
        )
    return cfg


def validate(cfg: RunConfig) -> RunConfig:
    """`check`, and the data training reads on this machine (`AgentConfig.check_data`: agent.overlay_dir): what a
    run must satisfy to start or resume. (Whether the machine has the `train.device` is `unseen.rundir.device_of`'s
    to say, where the run is made.)"""
    check(cfg)
    cfg.agent.check_data()
    return cfg


def eval_shift_names(train: TrainConfig) -> list[str]:
    """The shifts of every evaluation during training (`train.eval_shifts` split at commas)."""
    return [name.strip() for name in train.eval_shifts.split(",") if name.strip()]
