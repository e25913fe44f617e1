"""What every agent shares: the config fields of the common base (`AgentConfig`), the interface the trainer,
evaluator and reports use (`Agent`, `Decoding`), and the registry entry of an algorithm (`AgentSpec`).

An algorithm is one file under `agents/`: its agent class, its config dataclass (subclassing `AgentConfig`, or a
config of the algorithm it extends; one docstring per field, constraints declared with `unseen.schema.param`) and,
if its published protocol differs from the common presets, a preset hook; `unseen.agents` registers it in one line.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
import torch

from unseen.errors import UserError
from unseen.hardware import PRECISIONS
from unseen.schema import param

if TYPE_CHECKING:
    from unseen.config import EnvConfig, RunConfig

Metrics = dict[str, torch.Tensor | float]
"""An update's losses and diagnostics by name: scalar tensors left on the device (the trainer averages them over a
logging interval and reads them once), or floats."""


@dataclass
class AgentConfig:
    """The fields every agent of unseen has: the DMControl-GB conv trunk and heads, the actor-critic optimisation
    (docs/methods.md, "Common base") and the fast path."""

    encoder_layers: int = param(11, gt=0)
    """Conv layers of the shared trunk (3x3; the first has stride 2)."""
    encoder_filters: int = param(32, gt=0)
    """Channels of every conv layer."""
    projection_dim: int = param(100, gt=0)
    """Width of the actor's and the critic's own projection (Linear, LayerNorm, tanh)."""
    hidden_dim: int = param(1024, gt=0)
    """Width of the two hidden layers of the actor and of each Q network."""
    actor_lr: float = param(1e-3, gt=0)
    """Adam learning rate of the actor."""
    critic_lr: float = param(1e-3, gt=0)
    """Adam learning rate of the critic (conv trunk, critic projection, Q heads)."""
    discount: float = param(0.99, ge=0, le=1)
    """Discount factor gamma of the TD target."""
    critic_tau: float = param(0.01, ge=0, le=1)
    """Polyak rate of the target Q heads."""
    encoder_tau: float = param(0.05, ge=0, le=1)
    """Polyak rate of the target conv trunk and projection."""
    actor_update_every: int = param(2, gt=0)
    """Update the actor every this many critic updates."""
    target_update_every: int = param(2, gt=0)
    """Update the target critic every this many critic updates."""
    precision: str = param("auto", choices=PRECISIONS)
    """"bf16": every conv stack (trunk, ALDA's encoder, decoders) and the projections' Linear layers under bfloat16
    autocast (LayerNorm, MLPs, losses, targets, optimizers stay float32); "float32": all float32; "auto": bf16 where
    the hardware computes it natively (AMX, AVX512-BF16, recent GPUs), else float32, resolved when the run starts."""
    channels_last: bool = True
    """Keep conv activations in channels-last memory layout (faster oneDNN kernels on CPU)."""
    fast_kernels: bool = True
    """Fused Adam/AdamW and in-place ReLUs in the conv trunk; false: PyTorch's default optimizer loop and
    out-of-place ReLUs."""

    @property
    def return_steps(self) -> int:
        """n of the n-step returns the agent learns from: the trainer samples n-step transitions discounted by
        `discount` (`unseen.replay.nstep_returns`); 1 but for agents with n-step returns (DrQ-v2)."""
        return 1

    @property
    def steps_per_update(self) -> int:
        """Agent steps per update after the seed steps: the trainer updates on every this-many-th step; 1 but for
        agents that update less often (DrQ-v2: every 2)."""
        return 1

    @property
    def aux_batch(self) -> tuple[int, int]:
        """`(size, every)`: the trainer passes a second replay batch of `size` observations as `batch["aux_obs"]` to
        every `every`-th update (SODA's separate batch); `(0, 1)`, none, but for agents with such a batch."""
        return 0, 1

    @property
    def bf16(self) -> bool:
        """Whether the fast path computes in bfloat16 (`precision` resolved, `unseen.hardware.resolve_precision`)."""
        if self.precision == "auto":
            raise ValueError("agent.precision=auto is resolved for a device first (unseen.hardware.resolve_precision)")
        return self.precision == "bf16"

    def check(self, env: EnvConfig) -> None:
        """Constraints between fields, and with the frames (`unseen.schema.check` has done each field's own range).
        Subclasses add theirs after `super().check(env)`."""
        self.check_frames(env)

    def check_data(self) -> None:
        """That the data training reads exists on this machine (an overlay image folder, say): checked before a run
        starts or resumes (`unseen.config.validate`), never when a saved run is read for an evaluation or a report;
        nothing but for agents that read data."""

    def check_frames(self, env: EnvConfig) -> None:
        """That `env`'s frames suit the encoder: large enough for the conv trunk's `encoder_layers`."""
        smallest = 4 * self.encoder_layers - 1  # stride-2 first layer, then 3x3 valid convs
        if env.image_size < smallest:
            raise UserError(
                f"env.image_size={env.image_size} is too small for {self.encoder_layers} conv layers; "
                f"use at least {smallest} or fewer agent.encoder_layers"
            )


def seeded(seed: int, device: torch.device) -> torch.Generator:
    """An agent's one generator on `device`, seeded with `seed`; seeds torch's global generator too, which the
    networks' initialisation draws from, so one seed fixes both."""
    torch.manual_seed(seed)
    generator = torch.Generator(device=device)
    generator.manual_seed(seed)
    return generator


@runtime_checkable
class Agent(Protocol):
    """What the trainer, the evaluator, checkpoints and reports use of an agent."""

    cfg: Any
    """The agent's config (its algorithm's `AgentConfig` subclass)."""
    updates: int
    """Updates done so far."""
    device: torch.device
    """Where its networks live; `latents` and `update` take tensors there."""
    generator: torch.Generator
    """Its one source of randomness (augmentations, sampled actions): reseeding it replays them."""

    def act(self, obs: np.ndarray, deterministic: bool) -> np.ndarray:
        """The action for one uint8 observation `(C, H, W)`: the policy's mean if `deterministic`, else a sample."""
        ...

    def update(self, batch: dict[str, torch.Tensor], step: int | None = None) -> Metrics:
        """One learning step on a replay batch; its losses and diagnostics by name. `step`: the clock of any schedule
        the agent keeps (every n-th update does this or that), given as the environment step by the training loop's
        burst of `train.seed_updates` updates after the seed steps (DMControl-GB tests that one step for all of
        them); None: the agent's own count of updates."""
        ...

    def latents(self, obs: torch.Tensor) -> torch.Tensor:
        """`(B, D)` representation of a batch of uint8 observations (what disentanglement is measured on)."""
        ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


@runtime_checkable
class Adapter(Protocol):
    """One test episode's copy of an agent that learns while it acts (PAD's test-time adaptation)."""

    def act(self, obs: np.ndarray, deterministic: bool) -> np.ndarray:
        """The action for one uint8 observation `(C, H, W)`, from the parameters adapted so far."""
        ...

    def observe(self, obs: np.ndarray, action: np.ndarray, next_obs: np.ndarray) -> None:
        """Learn from the transition just made (self-supervised: no reward)."""
        ...


@runtime_checkable
class Adapting(Agent, Protocol):
    """An agent with test-time adaptation: `unseen eval --adapt` runs each episode with a fresh `adapter`."""

    def adapter(self, seed: int) -> Adapter:
        """A copy of the agent for one episode, its randomness seeded by `seed`; the agent itself is left unchanged."""
        ...


@runtime_checkable
class Decoding(Agent, Protocol):
    """An agent with a decoder: its latents can be drawn back into frames (latent traversals)."""

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """`(B, 3, H, W)` frames in [0, 1] drawn from `(B, D)` latents."""
        ...


@dataclass(frozen=True)
class Variants:
    """How reports tell an algorithm's variants apart (CG2A's ablations, say) and order them."""

    columns: tuple[str, ...]
    """Report columns describing a run's variant (CG2A: gas, sgs, gamma, views); empty in other algorithms' rows."""
    of: Callable[[dict[str, Any]], dict[str, Any]]
    """`of(config)`: a run's values of `columns` from its flattened config (`section.field` keys; a config written
    before a switch existed reads as the switch's default)."""
    label: Callable[[dict[str, Any]], list[str]]
    """The METHOD label's parts after the algorithm's name for those values; none for the full method."""
    rank: Callable[[dict[str, Any]], tuple]
    """Sort key of those values among the algorithm's methods (CG2A: Table 4's order)."""


@dataclass(frozen=True)
class AgentSpec:
    """One algorithm as the registry knows it (`unseen.agents.register_agent`)."""

    name: str
    """The `--algo` name, also the `algo:` of config.yaml and the first word of a report's METHOD."""
    agent_cls: Callable[..., Agent]
    """`agent_cls(obs_shape, action_dim, cfg, device, seed)`."""
    config_cls: type[AgentConfig]
    """The algorithm's config dataclass (config.yaml's `agent:` section)."""
    preset: Callable[[RunConfig], None] | None = None
    """Changes the algorithm's published protocol makes to a resolved preset (`unseen.config.make_config`)."""
    variants: Variants | None = None
    """How reports name and order the algorithm's variants; None: every run is the algorithm itself (plus the
    config fields in which runs differ)."""

    @property
    def adapts(self) -> bool:
        """Whether its agents are `Adapting` (have test-time adaptation): `unseen eval --adapt` can run them."""
        return callable(getattr(self.agent_cls, "adapter", None))

    @property
    def decodes(self) -> bool:
        """Whether its agents are `Decoding` (have a decoder): latent traversals can draw them."""
        return callable(getattr(self.agent_cls, "decode", None))
