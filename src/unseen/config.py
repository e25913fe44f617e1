"""Typed run configuration, the three presets of PROTOCOL.md, overrides and validation.

A run is described by one `RunConfig`. `make_config(algo, task, preset, ...)` resolves a preset into a
complete config; `apply_overrides` changes single fields from `section.field=value` strings; `validate`
fails early with one line that says what is wrong and how to fix it. The resolved config is saved as
`config.yaml` in every run directory and read back by `load_config`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from unseen.errors import UserError
from unseen.hardware import PRECISIONS

ALGOS = ("sac", "drq", "svea", "cg2a", "alda", "sac_ae")
OVERLAY_SOURCES = ("photos", "procedural")
"""Overlay image sources that need no data of the user's (`agent.overlay_source`, `unseen.envs.sources`)."""
PRESETS = ("paper", "cpu", "smoke")


@dataclass
class EnvConfig:
    """What the agent sees and how often it acts."""

    task: str = "cartpole_swingup"
    """DMControl task, `domain_task` (see `unseen.envs.TASKS`)."""
    image_size: int = 84
    """Height and width of every rendered frame, in pixels."""
    frame_stack: int = 3
    """Number of consecutive RGB frames stacked on the channel axis."""
    action_repeat: int = 0
    """Simulator steps per agent step; 0 means the task's default (cartpole 8, finger 2, others 4)."""
    render_shadows: bool = False
    """Render shadows and reflections (4x slower on CPU; off in every preset, recorded per run)."""


@dataclass
class AgentConfig:
    """SAC from pixels with the DMControl-GB architecture (METHODS.md, "Common base")."""

    encoder_layers: int = 11
    """Conv layers of the shared trunk (3x3; the first has stride 2)."""
    encoder_filters: int = 32
    """Channels of every conv layer."""
    projection_dim: int = 100
    """Width of the actor's and the critic's own projection (Linear, LayerNorm, tanh)."""
    hidden_dim: int = 1024
    """Width of the two hidden layers of the actor and of each Q network."""
    actor_lr: float = 1e-3
    """Adam learning rate of the actor."""
    critic_lr: float = 1e-3
    """Adam learning rate of the critic (conv trunk, critic projection, Q heads)."""
    alpha_lr: float = 1e-4
    """Adam learning rate of the entropy temperature."""
    alpha_beta1: float = 0.5
    """Adam beta1 of the entropy temperature."""
    init_temperature: float = 0.1
    """Initial entropy temperature alpha."""
    discount: float = 0.99
    """Discount factor gamma of the TD target."""
    critic_tau: float = 0.01
    """Polyak rate of the target Q heads."""
    encoder_tau: float = 0.05
    """Polyak rate of the target conv trunk and projection."""
    actor_update_every: int = 2
    """Update the actor and temperature every this many critic updates."""
    target_update_every: int = 2
    """Update the target critic every this many critic updates."""
    log_std_min: float = -10.0
    """Lower bound of the actor's log standard deviation."""
    log_std_max: float = 2.0
    """Upper bound of the actor's log standard deviation."""
    shift_pad: int = 4
    """Padding (pixels) of the random shift augmentation (DrQ, SVEA, CG2A's tau_0)."""
    svea_alpha: float = 0.5
    """SVEA: weight of the critic loss on the shifted view (DMControl-GB: 0.5)."""
    svea_beta: float = 0.5
    """SVEA: weight of the critic loss on the shifted + random-conv view (DMControl-GB: 0.5)."""
    cg2a_augmentations: str = "conv,overlay,overlay_s"
    """CG2A: tau_1..tau_N applied on top of the random shift tau_0, comma-separated names from unseen.augment.VIEWS."""
    cg2a_gas: bool = True
    """CG2A: weight the gradients by the Gradient Agreement Solver, Eq. (8); false gives their mean (Table 4)."""
    cg2a_sgs: bool = True
    """CG2A: apply Soft Gradient Surgery, Algorithm 1 (Table 4)."""
    sgs_gamma_low: float = 0.22
    """CG2A: SGS damping factor gamma ~ U(low, high), drawn each update; equal bounds fix gamma (Figure 4)."""
    sgs_gamma_high: float = 0.28
    """CG2A: upper bound of gamma's uniform distribution (the paper's beta)."""
    sgs_rule: str = "agree"
    """CG2A: SGS agreement, "agree" (all signs equal, METHODS.md) or "literal" (all positive, as printed in Eq. 9)."""
    gas_clamp: bool = False
    """CG2A: clamp negative GAS weights to 0 and renormalise (ours; the paper's weights can be negative)."""
    grad_method: str = "sequential"
    """CG2A: per-augmentation gradients by "sequential" passes (cheapest on CPU) or one "vmap" pass."""
    grad_log_every: int = 10
    """CG2A: compute the grad/ diagnostics (Figure 1) every this many updates (each costs ~5% of one); 0 never."""
    overlay_source: str = "photos"
    """Overlay images when `overlay_dir` is empty: "photos" (the photographs installed with unseen's dependencies,
    random resized crop + flip per sample, as DMC-GB draws Places365) or "procedural" (seeded synthetic pictures)."""
    overlay_dir: str = ""
    """Folder of overlay images at any depth (Places365: what paper-comparable numbers need); overrides
    `overlay_source`."""
    overlay_pool: int = 1000
    """Overlay images drawn once from the procedural source or `overlay_dir` when the agent is built; each overlay
    samples from them (photos are drawn afresh for every sample)."""
    alda_latents: int = 12
    """ALDA: continuous latents |z_d| per frame, one scalar codebook each (METHODS.md "ALDA")."""
    alda_values: int = 12
    """ALDA: values per codebook, initialised linspace(-1, 1, n)."""
    alda_beta: float = 100.0
    """ALDA: inverse temperature beta of the softmax retrieval."""
    alda_retrieval: str = "softmax"
    """ALDA: "softmax" (associative retrieval) or "argmin" (QLAE's hard nearest value, beta = inf: the ablation)."""
    alda_mlp_dim: int = 256
    """ALDA: width of the per-frame encoder's MLP (conv features -> 256 -> 256 -> latents) and its mirror in the
    decoder."""
    alda_embedding_dim: int = 256
    """ALDA: output of the temporal fusion (1D-CNN) and width of the actor's and critic's projections."""
    alda_reconstruction: float = 1.0
    """ALDA: weight of the reconstruction loss (BCE with logits of the newest frame)."""
    alda_commitment: float = 0.01
    """ALDA: weight of the commitment loss mean((z - sg(z_q))^2)."""
    alda_quantization: float = 0.0
    """ALDA: weight of the quantization loss mean((sg(z) - z_q)^2); 0 = off (the paper; the reference uses 0.01 on
    finger_spin)."""
    alda_lr: float = 1e-3
    """ALDA: AdamW learning rate of the per-frame encoder and the decoder."""
    alda_weight_decay: float = 0.1
    """ALDA: AdamW weight decay of the per-frame encoder and the decoder."""
    alda_codebook_lr: float = 1e-3
    """ALDA: Adam learning rate of the codebooks."""
    alda_critic_to_codebook: bool = False
    """ALDA: let the critic's gradient reach the codebooks (the paper's figure); false: the reference code's routing."""
    sac_ae_latent_dim: int = 50
    """SAC+AE: width of the autoencoder latent (Linear, LayerNorm, tanh) shared with the critic, and of the actor's
    projection."""
    sac_ae_latent_lambda: float = 1e-6
    """SAC+AE: weight of the L2 penalty 0.5 * ||latent||^2 in the reconstruction loss."""
    sac_ae_encoder_lr: float = 1e-3
    """SAC+AE: Adam learning rate of the encoder (conv trunk + latent) for the reconstruction loss."""
    sac_ae_decoder_lr: float = 1e-3
    """SAC+AE: Adam learning rate of the decoder."""
    sac_ae_decoder_weight_decay: float = 1e-7
    """SAC+AE: L2 weight decay of the decoder's Adam."""
    sac_ae_update_every: int = 1
    """SAC+AE: update the autoencoder every this many updates."""
    sac_ae_bits: int = 5
    """SAC+AE: bit depth of the reconstruction target (pixels quantised to this many bits, plus uniform noise)."""
    precision: str = "auto"
    """"bf16": every conv stack (trunk, ALDA's encoder, decoders) and the projections' Linear layers under bfloat16
    autocast (LayerNorm, MLPs, losses, targets, optimizers stay float32); "float32": all float32; "auto": bf16 where
    the hardware computes it natively (AMX, AVX512-BF16, recent GPUs), else float32, resolved when the run starts."""
    channels_last: bool = True
    """Keep conv activations in channels-last memory layout (faster oneDNN kernels on CPU)."""
    fast_kernels: bool = True
    """Fused Adam/AdamW and in-place ReLUs in the conv trunk; false: PyTorch's default optimizer loop and
    out-of-place ReLUs."""
    # DMControl-GB's behaviours (issue 18, docs/dmcontrol-gb.md). Defaults: DMC-GB's, for the SAC family;
    # `make_config` sets each agent's own reference; a config.yaml without them loads with `PRE_DMCGB` (`upgraded`).
    trunk_final_relu: bool = False
    """ReLU after the trunk's last conv; false: the features are the last conv's output (DMC-GB's `SharedCNN`)."""
    actor_recompute: bool = True
    """Actor and temperature see the trunk re-run on obs after the critic step (DMC-GB); false: the critic's
    pre-step features."""
    exact_log_det: bool = False
    """tanh correction of the log-prob: exact log(1 - tanh(u)^2); false: DMC-GB's log(relu(1 - tanh(u)^2) + 1e-6)."""
    svea_float_conv: bool = True
    """SVEA: the random-conv view in float, as DMC-GB computes it; false: rounded to uint8 pixels."""

    @property
    def bf16(self) -> bool:
        """Whether the fast path computes in bfloat16 (`precision` resolved, `unseen.hardware.resolve_precision`)."""
        if self.precision == "auto":
            raise ValueError("agent.precision=auto is resolved for a device first (unseen.hardware.resolve_precision)")
        return self.precision == "bf16"


@dataclass
class TrainConfig:
    """The training loop: how long, how often to learn, evaluate, log and checkpoint."""

    steps: int = 500_000
    """Agent steps to train for (environment frames = steps x action repeat)."""
    seed_steps: int = 1000
    """Initial steps with uniformly random actions and no updates."""
    seed_updates: int = 1000
    """Updates at the first step after the seed steps, then one per step (DMC-GB: as many as seed steps); 1: one
    per step from the first."""
    batch_size: int = 128
    """Transitions per update."""
    replay_capacity: int = 0
    """Frames the replay buffer holds; 0 means enough for the whole run (nothing is ever overwritten)."""
    eval_every: int = 10_000
    """Evaluate on the training environment every this many agent steps (0 disables)."""
    eval_episodes: int = 10
    """Episodes of each periodic evaluation, on each shift of `eval_shifts`."""
    eval_shifts: str = "none"
    """Shifts of every periodic and the final evaluation, comma-separated names from unseen.envs.SHIFTS."""
    final_eval_episodes: int = 100
    """Episodes of the final evaluation written to summary.json."""
    checkpoint_every: int = 10_000
    """Write a checkpoint every this many agent steps (and always at the end and on SIGINT/SIGTERM)."""
    tensorboard: bool = True
    """Write TensorBoard event files beside the CSV logs."""
    video: bool = True
    """Save an mp4 of the first episode of every evaluation."""
    device: str = "auto"
    """Torch device: "auto" (CUDA when available, else CPU), "cpu" or "cuda"."""
    threads: int = 0
    """Intra-op CPU threads; 0: OMP_NUM_THREADS if set, else the cores free when the run starts (saved with the run)."""


@dataclass
class RunConfig:
    """Everything that defines one training run; saved as config.yaml in the run directory."""

    algo: str = "drq"
    """Algorithm: one of `unseen.config.ALGOS`."""
    preset: str = "cpu"
    """Preset the defaults came from (PROTOCOL.md); reports never mix presets."""
    seed: int = 0
    """Seed of everything random in the run."""
    env: EnvConfig = field(default_factory=EnvConfig)
    agent: AgentConfig = field(default_factory=AgentConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


@dataclass(frozen=True)
class ReportConfig:
    """How `unseen report` estimates its intervals (docs/reports.md)."""

    reps: int = 10_000
    """Bootstrap resamples of every confidence interval and curve band."""
    seed: int = 0
    """Seed of the bootstrap generators: the same runs give the same intervals."""


def default_action_repeat(task: str) -> int:
    """Action repeat of the DMControl-GB protocol: cartpole 8, finger 2, everything else 4."""
    domain = task.split("_")[0]
    return {"cartpole": 8, "finger": 2}.get(domain, 4)


def alda_action_repeat(task: str) -> int:
    """Action repeat of ALDA's reference code: finger 2, everything else (cartpole included) 4."""
    return 2 if task.split("_")[0] == "finger" else 4


CPU_FRAMES = 100_000


def make_config(algo: str, task: str, preset: str = "cpu", seed: int = 0, steps: int | None = None) -> RunConfig:
    """Resolve a preset (PROTOCOL.md) for an algorithm and task into a complete config."""
    if preset not in PRESETS:
        raise UserError(f"unknown preset {preset!r}; choose one of: {', '.join(PRESETS)}")
    cfg = RunConfig(algo=algo, preset=preset, seed=seed, env=EnvConfig(task=task))
    cfg.env.action_repeat = default_action_repeat(task)
    if preset in ("paper", "cpu"):
        from unseen.envs import SHIFTS  # imported on use: importing the environments checks the GL backend

        # Learning curves on every shift, and a run that finishes evaluated on all of them.
        cfg.train.eval_shifts = ",".join(SHIFTS)
    if algo == "alda":
        # ALDA's reference code is not DMControl-GB's: its update keeps the behaviour unseen had before issue 18.
        cfg.agent.actor_recompute, cfg.agent.exact_log_det = False, True
        cfg.train.seed_updates = 1
    if algo == "sac_ae":
        # SAC-AE's reference (pytorch_sac_ae, encoder.py's PixelEncoder) has a ReLU after every conv, the last too;
        # its actor step, log-prob and first-step burst are DMControl-GB's (which descends from it).
        cfg.agent.trunk_final_relu = True
    if algo == "alda":
        # GroupNorm's channels-last CPU kernels are several times slower than its NCHW ones (bf16): a whole
        # ALDA update took 2.6-2.8x longer channels-last (docs/alda.md); the convs gain nothing from it here.
        cfg.agent.channels_last = False
    if preset == "paper" and algo == "alda":
        # ALDA's published protocol (METHODS.md "ALDA"): 64x64 frames and its reference code's action repeat
        # (cartpole 4). Under `cpu` and `smoke` ALDA sees exactly what every other method sees.
        cfg.env.image_size = 64
        cfg.env.action_repeat = alda_action_repeat(task)
    if preset == "paper" and algo == "sac_ae":
        # SAC-AE's published encoder (Yarats et al.): 4 conv layers of 32 filters at 84x84.
        cfg.agent.encoder_layers = 4
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
    if steps is not None:
        cfg.train.steps = steps
    return cfg


def to_dict(cfg: RunConfig) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def from_dict(data: dict[str, Any]) -> RunConfig:
    """Inverse of `to_dict`; unknown keys are an error (a config from a newer or older unseen)."""
    return _build(RunConfig, upgraded(data), "")


PRE_DMCGB = {
    "agent": {
        "trunk_final_relu": True,
        "actor_recompute": False,
        "exact_log_det": True,
        "svea_float_conv": False,
        "overlay_source": "procedural",
    },
    "train": {"seed_updates": 1},
}
"""What runs made before DMControl-GB's behaviours were fields computed (issue 18): a config.yaml lacking a field
loads with this value, so resumes and reports of those runs keep the behaviour they were trained with."""


def upgraded(data: dict[str, Any]) -> dict[str, Any]:
    """A saved config under the current field names: configs written before `agent.precision` existed say
    `agent.bf16: true|false`, which is precision "bf16" or "float32"; fields added since take `PRE_DMCGB`'s values."""
    data = dict(data)
    agent = data.get("agent", {})
    if "bf16" in agent:
        renamed = {key: value for key, value in agent.items() if key != "bf16"}
        data["agent"] = renamed | {"precision": "bf16" if agent["bf16"] else "float32"}
    for section, fields in PRE_DMCGB.items():
        if section in data:
            data[section] = fields | data[section]
    return data


def _build(cls: type, data: dict[str, Any], prefix: str) -> Any:
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise UserError(f"unknown config field(s) {', '.join(prefix + u for u in unknown)}")
    kwargs = {}
    for name, value in data.items():
        sub = _SECTIONS.get(name) if cls is RunConfig else None
        kwargs[name] = _build(sub, value, f"{name}.") if sub else _coerce(value, known[name].default, prefix + name)
    return cls(**kwargs)


def _coerce(value: Any, default: Any, key: str) -> Any:
    """`value` as the type of the field's default: YAML reads `1e-6` as a string and `1` where a float is due."""
    kind = type(default)
    if default is dataclasses.MISSING or (isinstance(value, kind) and type(value) is not bool) or kind is type(value):
        return value
    if kind is float and type(value) is int:
        return float(value)
    if isinstance(value, str):
        return _parse(value, kind, key)
    raise UserError(f"{key}={value!r} is not a valid {kind.__name__}")


_SECTIONS = {"env": EnvConfig, "agent": AgentConfig, "train": TrainConfig}


def save_config(cfg: RunConfig, path: Path) -> None:
    path.write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))


def load_config(path: Path) -> RunConfig:
    return from_dict(yaml.safe_load(path.read_text()))


def apply_overrides(cfg: RunConfig, overrides: list[str]) -> RunConfig:
    """Set fields from `section.field=value` strings, e.g. `agent.batch_size=64`, parsed by the field's type."""
    for item in overrides:
        key, sep, raw = item.partition("=")
        section_name, dot, name = key.partition(".")
        section = getattr(cfg, section_name, None) if dot else None
        if not sep or not dataclasses.is_dataclass(section):
            raise UserError(f"bad override {item!r}; write section.field=value with section one of env, agent, train")
        fields = {f.name: f for f in dataclasses.fields(section)}
        if name not in fields:
            raise UserError(f"unknown config field {key!r}; {section_name} has: {', '.join(fields)}")
        setattr(section, name, _parse(raw, type(getattr(section, name)), key))
    return cfg


def _parse(raw: str, kind: type, key: str) -> Any:
    try:
        if kind is bool:
            if raw.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError
            return raw.lower() in ("true", "1", "yes")
        return kind(raw)
    except ValueError:
        raise UserError(f"{key}={raw!r} is not a valid {kind.__name__}") from None


def validate(cfg: RunConfig) -> RunConfig:
    """Check every field a user can get wrong; raise `UserError` with one line that names the fix."""
    from unseen.envs import SHIFTS, TASKS

    if cfg.algo not in ALGOS:
        raise UserError(f"unknown algorithm {cfg.algo!r}; choose one of: {', '.join(ALGOS)}")
    if cfg.preset not in PRESETS:
        raise UserError(f"unknown preset {cfg.preset!r}; choose one of: {', '.join(PRESETS)}")
    if cfg.env.task not in TASKS:
        raise UserError(f"unknown task {cfg.env.task!r}; choose one of: {', '.join(TASKS)}")
    positive = {
        "train.steps": cfg.train.steps,
        "train.batch_size": cfg.train.batch_size,
        "train.eval_episodes": cfg.train.eval_episodes,
        "train.final_eval_episodes": cfg.train.final_eval_episodes,
        "env.image_size": cfg.env.image_size,
        "env.frame_stack": cfg.env.frame_stack,
        "env.action_repeat": cfg.env.action_repeat,
        "agent.encoder_layers": cfg.agent.encoder_layers,
        "agent.encoder_filters": cfg.agent.encoder_filters,
        "agent.projection_dim": cfg.agent.projection_dim,
        "agent.hidden_dim": cfg.agent.hidden_dim,
        "agent.actor_update_every": cfg.agent.actor_update_every,
        "agent.target_update_every": cfg.agent.target_update_every,
        "agent.overlay_pool": cfg.agent.overlay_pool,
        "agent.alda_latents": cfg.agent.alda_latents,
        "agent.alda_values": cfg.agent.alda_values,
        "agent.alda_beta": cfg.agent.alda_beta,
        "agent.alda_mlp_dim": cfg.agent.alda_mlp_dim,
        "agent.alda_embedding_dim": cfg.agent.alda_embedding_dim,
        "agent.sac_ae_latent_dim": cfg.agent.sac_ae_latent_dim,
        "agent.sac_ae_update_every": cfg.agent.sac_ae_update_every,
        "train.seed_updates": cfg.train.seed_updates,
    }
    for key, value in positive.items():
        if value <= 0:
            raise UserError(f"{key} must be positive, got {value}")
    non_negative = {
        "train.seed_steps": cfg.train.seed_steps,
        "train.replay_capacity": cfg.train.replay_capacity,
        "train.eval_every": cfg.train.eval_every,
        "train.checkpoint_every": cfg.train.checkpoint_every,
        "train.threads": cfg.train.threads,
        "agent.shift_pad": cfg.agent.shift_pad,
        "agent.svea_alpha": cfg.agent.svea_alpha,
        "agent.svea_beta": cfg.agent.svea_beta,
        "agent.grad_log_every": cfg.agent.grad_log_every,
        "agent.alda_reconstruction": cfg.agent.alda_reconstruction,
        "agent.alda_commitment": cfg.agent.alda_commitment,
        "agent.alda_quantization": cfg.agent.alda_quantization,
        "agent.alda_lr": cfg.agent.alda_lr,
        "agent.alda_weight_decay": cfg.agent.alda_weight_decay,
        "agent.alda_codebook_lr": cfg.agent.alda_codebook_lr,
        "agent.sac_ae_latent_lambda": cfg.agent.sac_ae_latent_lambda,
        "agent.sac_ae_encoder_lr": cfg.agent.sac_ae_encoder_lr,
        "agent.sac_ae_decoder_lr": cfg.agent.sac_ae_decoder_lr,
        "agent.sac_ae_decoder_weight_decay": cfg.agent.sac_ae_decoder_weight_decay,
    }
    for key, value in non_negative.items():
        if value < 0:
            raise UserError(f"{key} must be zero or positive, got {value}")
    for key in ("discount", "critic_tau", "encoder_tau"):
        value = getattr(cfg.agent, key)
        if not 0 <= value <= 1:
            raise UserError(f"agent.{key} must lie in [0, 1], got {value}")
    if cfg.agent.log_std_min >= cfg.agent.log_std_max:
        raise UserError("agent.log_std_min must be below agent.log_std_max")
    validate_autoencoder_agents(cfg)
    smallest = 4 * cfg.agent.encoder_layers - 1  # stride-2 first layer, then 3x3 valid convs; ALDA has its own encoder
    if cfg.algo != "alda" and cfg.env.image_size < smallest:
        raise UserError(
            f"env.image_size={cfg.env.image_size} is too small for {cfg.agent.encoder_layers} conv layers; "
            f"use at least {smallest} or fewer agent.encoder_layers"
        )
    validate_augmentation_agents(cfg.agent)
    shifts = eval_shift_names(cfg.train)
    if not shifts or len(set(shifts)) != len(shifts) or not set(shifts) <= set(SHIFTS):
        raise UserError(
            f"train.eval_shifts={cfg.train.eval_shifts!r} must list distinct names from: {', '.join(SHIFTS)}"
        )
    if cfg.agent.precision not in PRECISIONS:
        raise UserError(f"agent.precision must be one of {', '.join(PRECISIONS)}, got {cfg.agent.precision!r}")
    if cfg.train.device not in ("auto", "cpu", "cuda"):
        raise UserError(f"train.device must be auto, cpu or cuda, got {cfg.train.device!r}")
    return cfg


def eval_shift_names(train: TrainConfig) -> list[str]:
    """The shifts of every evaluation during training (`train.eval_shifts` split at commas)."""
    return [name.strip() for name in train.eval_shifts.split(",") if name.strip()]


def validate_autoencoder_agents(cfg: RunConfig) -> None:
    """ALDA's frame size and retrieval, SAC+AE's bit depth; their other numbers are checked with every other field."""
    from unseen.latent import RETRIEVALS

    if cfg.algo == "alda" and cfg.env.image_size % 16:
        raise UserError(
            f"env.image_size={cfg.env.image_size} does not suit ALDA's encoder (4 stride-2 convs); "
            "use a multiple of 16, e.g. 64"
        )
    if cfg.agent.alda_latents < 2:
        raise UserError(
            f"agent.alda_latents must be at least 2 (the fusion convolves over them), got {cfg.agent.alda_latents}"
        )
    if cfg.agent.alda_retrieval not in RETRIEVALS:
        raise UserError(
            f"agent.alda_retrieval must be one of {', '.join(RETRIEVALS)}, got {cfg.agent.alda_retrieval!r}"
        )
    if not 1 <= cfg.agent.sac_ae_bits <= 8:
        raise UserError(f"agent.sac_ae_bits must lie in 1..8, got {cfg.agent.sac_ae_bits}")


def augmentation_names(agent: AgentConfig) -> list[str]:
    """CG2A's tau_1..tau_N as a list of names (`agent.cg2a_augmentations` split at commas)."""
    return [name.strip() for name in agent.cg2a_augmentations.split(",") if name.strip()]


def validate_augmentation_agents(agent: AgentConfig) -> None:
    """The SVEA and CG2A fields (METHODS.md, "CG2A")."""
    from unseen.augment import VIEWS
    from unseen.grad import GRAD_METHODS, SGS_RULES

    names = augmentation_names(agent)
    unknown = [name for name in names if name not in VIEWS]
    if unknown or not names or len(set(names)) != len(names):
        raise UserError(
            f"agent.cg2a_augmentations={agent.cg2a_augmentations!r} must list distinct names from: {', '.join(VIEWS)}"
        )
    if not 0 <= agent.sgs_gamma_low <= agent.sgs_gamma_high <= 1:
        raise UserError("agent.sgs_gamma_low and agent.sgs_gamma_high must satisfy 0 <= low <= high <= 1")
    if agent.sgs_rule not in SGS_RULES:
        raise UserError(f"agent.sgs_rule must be one of {', '.join(SGS_RULES)}, got {agent.sgs_rule!r}")
    if agent.grad_method not in GRAD_METHODS:
        raise UserError(f"agent.grad_method must be one of {', '.join(GRAD_METHODS)}, got {agent.grad_method!r}")
    if agent.grad_method == "vmap" and agent.channels_last:
        raise UserError("agent.grad_method=vmap cannot run channels-last convolutions; set agent.channels_last=false")
    if agent.overlay_source not in OVERLAY_SOURCES:
        raise UserError(
            f"agent.overlay_source must be one of {', '.join(OVERLAY_SOURCES)}, got {agent.overlay_source!r}"
        )
    if agent.overlay_dir and not Path(agent.overlay_dir).expanduser().is_dir():
        raise UserError(
            f"agent.overlay_dir={agent.overlay_dir!r} is not a directory; pass a folder of images or leave it empty"
        )
