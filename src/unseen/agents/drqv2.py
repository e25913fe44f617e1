"""DrQ-v2 (Yarats et al., 2021) as facebookresearch/drqv2 implements it (`drqv2.py`, `replay_buffer.py`, `cfgs/`):
DDPG from pixels with clipped double Q, n-step returns, a scheduled exploration noise and random shifts.

Networks (`drqv2.py`): an encoder of 4 3x3 convs with 32 channels (the first with stride 2, ReLU after each; pixels
scaled to [-0.5, 0.5]; 32 * 35 * 35 features at 84x84, no LayerNorm), trained by the critic only; an actor and a
critic, each with its own trunk Linear -> LayerNorm -> tanh to `projection_dim` (DrQ-v2's feature_dim, 50) and MLPs
of `hidden_dim` (1024). The actor is deterministic, mu(s) = tanh(MLP(trunk(h))). There is no target encoder: the
target critic (trunk and Q heads) reads the online encoder's features of the next observation.

Exploration: a = clamp(mu(s) + eps, -1 + 1e-6, 1 - 1e-6), eps ~ N(0, sigma_t^2), the clamp passing gradients
straight through (DrQ-v2's `TruncatedNormal`); in the updates eps is clipped to [-c, c], c = `std_clip` (0.3). The
standard deviation follows DrQ-v2's `linear(start, end, duration)` schedule,
    sigma_t = start + min(t / duration, 1) * (end - start),
with t = `steps_per_update` x updates done: the agent steps since learning began (DrQ-v2's clock starts at its
first seed step, 2000 steps earlier at its action repeat of 2).

One update (DrQ-v2's `update`, on every `update_every_steps`-th agent step), on an n-step batch (`nstep` = 3):
  1. Shift `obs` and `next_obs` at random (pad `shift_pad` = 4, each its own shift) and encode both with the online
     encoder, the next ones without gradient.
  2. TD target, a' = mu(s_n) + clip(eps, -c, c) clamped as above, with the target critic:
       y = R_n + gamma^n (d_0 ... d_{n-1}) min(Q1', Q2')(s_n, a'),   R_n = sum_{k<n} gamma^k r_k
     (`unseen.replay.nstep_returns`; windows are cut short at episode ends, where DrQ-v2 never draws them).
  3. Critic loss ||Q1(s, a) - y||^2 + ||Q2(s, a) - y||^2, one Adam step of encoder and critic (DrQ-v2 steps the
     encoder with an Adam of its own and the same settings: per parameter the same step).
  4. Actor loss -min(Q1, Q2)(s, a~), a~ = mu(s) + clip(eps, -c, c) on the detached step-1 features (computed before
     the critic's step, as there); one Adam step of the actor.
  5. Polyak averaging of the whole target critic at `critic_tau` (0.01).

Where unseen differs: the shift. With `fast_kernels` (the users' path) it is `unseen.augment.random_shift`, an integer
gather; without, DrQ-v2's bilinear `grid_sample` (`random_shift_bilinear`). Both move every pixel by the same whole
number of pixels for one generator state and agree to float rounding (tested); the gather is 7x faster on CPU. The
seed phase and batch sizes are set by the `preset` hook below from DrQ-v2's `cfgs/config.yaml` and `cfgs/task/*`.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from unseen.agents.base import AgentConfig, Metrics, seeded
from unseen.augment import random_shift, random_shift_bilinear
from unseen.errors import UserError
from unseen.nets import ConvTrunk, Critic, Projection, mlp
from unseen.schema import param

if TYPE_CHECKING:
    from unseen.config import EnvConfig, RunConfig


@dataclass
class DrQV2Config(AgentConfig):
    """DrQ-v2's hyperparameters (its `cfgs/config.yaml`, easy tasks). Of the common fields, `encoder_tau` has no
    use here (no target encoder) and the actor and target critic learn on every update."""

    encoder_layers: int = param(4, gt=0)
    """Conv layers of DrQ-v2's encoder (3x3, 32 channels, the first with stride 2)."""
    projection_dim: int = param(50, gt=0)
    """DrQ-v2's feature_dim: width of the actor's and the critic's trunk (Linear, LayerNorm, tanh)."""
    actor_lr: float = param(1e-4, gt=0)
    """Adam learning rate of the actor (DrQ-v2's lr)."""
    critic_lr: float = param(1e-4, gt=0)
    """Adam learning rate of the encoder and the critic (DrQ-v2's lr)."""
    actor_update_every: int = param(1, gt=0)
    """Update the actor every this many critic updates (DrQ-v2: every update)."""
    target_update_every: int = param(1, gt=0)
    """Update the target critic every this many critic updates (DrQ-v2: every update)."""
    nstep: int = param(3, gt=0)
    """n of the n-step returns (DrQ-v2: 3; 1 on walker tasks)."""
    update_every_steps: int = param(2, gt=0)
    """Update on every this-many-th agent step (DrQ-v2: 2)."""
    std_start: float = param(1.0, gt=0)
    """Exploration noise's standard deviation when learning begins."""
    std_end: float = param(0.1, gt=0)
    """Exploration noise's standard deviation once the schedule has run."""
    std_decay_steps: int = param(100_000, gt=0)
    """Agent steps over which the standard deviation falls linearly from `std_start` to `std_end` (DrQ-v2: 100k on
    its easy tasks, 500k medium, 2M hard; the `preset` hook scales it to the run)."""
    std_clip: float = param(0.3, gt=0)
    """Bound of the noise added to the actions of the TD target and the actor loss."""
    shift_pad: int = param(4, ge=0)
    """Padding (pixels) of the random shift."""

    @property
    def return_steps(self) -> int:
        return self.nstep

    @property
    def steps_per_update(self) -> int:
        return self.update_every_steps

    def check(self, env: EnvConfig) -> None:
        super().check(env)
        if self.std_end > self.std_start:
            raise UserError("agent.std_end must not exceed agent.std_start (the noise decays)")


MEDIUM = frozenset({
    "acrobot_swingup", "cartpole_swingup_sparse", "cheetah_run", "finger_turn_easy", "finger_turn_hard", "hopper_hop",
    "quadruped_run", "quadruped_walk", "reach_duplo", "reacher_easy", "reacher_hard", "walker_run",
})
"""DrQ-v2's medium tasks (`cfgs/task/*.yaml` with `defaults: medium`)."""
HARD = frozenset({"humanoid_run", "humanoid_stand", "humanoid_walk"})
"""DrQ-v2's hard tasks."""
DECAY_STEPS = {"easy": 100_000, "medium": 500_000, "hard": 2_000_000}
"""The duration of the noise schedule by difficulty (`cfgs/task/{easy,medium,hard}.yaml`)."""
PAPER_STEPS = 500_000
"""Agent steps of the `paper` preset: DrQ-v2's easy tasks train as long (1M frames at action repeat 2)."""
SEED_FRAMES = 4000
"""DrQ-v2's num_seed_frames: uniformly random actions and no updates before."""


def difficulty(task: str) -> str:
    """DrQ-v2's difficulty of `task`: easy, medium or hard (tasks it did not run are easy)."""
    return "hard" if task in HARD else "medium" if task in MEDIUM else "easy"


def preset(cfg: RunConfig) -> None:
    """DrQ-v2's protocol in a resolved preset: its per-task settings always (walker: 1-step returns and batches of
    512; humanoid: lr 8e-5 and feature_dim 100), its batch size under `paper` and `cpu` (256), its seed frames
    under `paper`, and the noise schedule's duration scaled from the paper's length to the preset's steps."""
    agent = cfg.agent
    assert isinstance(agent, DrQV2Config)
    task = cfg.env.task
    if task.startswith("walker_"):
        agent.nstep = 1
    if task in HARD:
        agent.actor_lr = agent.critic_lr = 8e-5
        agent.projection_dim = 100
    decay = DECAY_STEPS[difficulty(task)]
    agent.std_decay_steps = max(1, round(decay * cfg.train.steps / PAPER_STEPS))
    if cfg.preset in ("paper", "cpu"):
        cfg.train.batch_size = 512 if task.startswith("walker_") else 256
    if cfg.preset == "paper":
        cfg.train.seed_steps = math.ceil(SEED_FRAMES / cfg.env.action_repeat)
    # DrQ-v2's loop updates on its schedule from the end of the seed frames on: no burst of updates there.
    cfg.train.seed_updates = 1


def exploration_std(step: float, start: float, end: float, duration: float) -> float:
    """DrQ-v2's `linear(start, end, duration)` schedule at `step`."""
    mix = min(max(step / duration, 0.0), 1.0)
    return (1.0 - mix) * start + mix * end


def noisy_action(
    mu: torch.Tensor, std: float, clip: float | None, generator: torch.Generator | None = None
) -> torch.Tensor:
    """`mu + eps`, eps ~ N(0, std^2) clipped to [-clip, clip] (no clip: None), clamped into (-1, 1) by 1e-6 with the
    gradient of the unclamped sum (DrQ-v2's `TruncatedNormal.sample`)."""
    eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype) * std
    if clip is not None:
        eps = eps.clamp(-clip, clip)
    action = mu + eps
    return action + (action.detach().clamp(-1.0 + 1e-6, 1.0 - 1e-6) - action.detach())


def drqv2_init(module: nn.Module) -> None:
    """DrQ-v2's `utils.weight_init`: orthogonal weights (conv kernels whole, with ReLU's gain), zero biases."""
    if isinstance(module, nn.Linear):
        nn.init.orthogonal_(module.weight)
        nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Conv2d):
        nn.init.orthogonal_(module.weight, gain=nn.init.calculate_gain("relu"))
        if module.bias is not None:
            nn.init.zeros_(module.bias)


class DrQV2Encoder(ConvTrunk):
    """DrQ-v2's encoder: the conv trunk of unseen with DrQ-v2's input scaling (pixels / 255 - 0.5) and its
    initialisation."""

    def __init__(
        self, in_channels: int, image_size: int, layers: int, filters: int, bf16: bool, channels_last: bool,
        inplace_relu: bool = True,
    ) -> None:
        # DrQ-v2's convnet has a ReLU after every conv, the last too (ConvTrunk's default ends on the conv).
        super().__init__(in_channels, image_size, layers, filters, bf16, channels_last, inplace_relu, final_relu=True)
        self.to(memory_format=torch.contiguous_format)  # type: ignore[call-overload]  # init on NCHW weights
        self.apply(drqv2_init)
        self.fast.lay_out(self)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.fast.run(self.convs, self.fast.pixels(obs) - 0.5, dtype=None).flatten(1)


class DeterministicActor(nn.Module):
    """DrQ-v2's actor: trunk (Linear, LayerNorm, tanh), MLP, tanh: the mean action mu(s)."""

    def __init__(self, feature_dim: int, projection_dim: int, hidden_dim: int, action_dim: int) -> None:
        super().__init__()
        self.projection = Projection(feature_dim, projection_dim)
        self.net = mlp(projection_dim, hidden_dim, action_dim)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.net(self.projection(features)))


class DrQV2:
    """DDPG from pixels with n-step returns and scheduled exploration noise (module docstring)."""

    def __init__(
        self, obs_shape: tuple[int, int, int], action_dim: int, cfg: DrQV2Config, device: torch.device, seed: int
    ) -> None:
        self.cfg = cfg
        self.device = device
        self.generator = seeded(seed, device)
        self.encoder = DrQV2Encoder(
            obs_shape[0], obs_shape[1], cfg.encoder_layers, cfg.encoder_filters, cfg.bf16, cfg.channels_last,
            cfg.fast_kernels,
        ).to(device)
        dim = self.encoder.out_dim
        self.actor = DeterministicActor(dim, cfg.projection_dim, cfg.hidden_dim, action_dim).to(device)
        self.critic = Critic(dim, cfg.projection_dim, cfg.hidden_dim, action_dim).to(device)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.actor_optimizer = torch.optim.Adam(self.actor.parameters(), lr=cfg.actor_lr, fused=cfg.fast_kernels)
        self.critic_optimizer = torch.optim.Adam(
            [*self.encoder.parameters(), *self.critic.parameters()], lr=cfg.critic_lr, fused=cfg.fast_kernels
        )
        self.updates = 0

    @property
    def std(self) -> float:
        """The exploration noise's standard deviation now (the schedule at the agent steps learnt over so far)."""
        cfg = self.cfg
        return exploration_std(self.updates * cfg.update_every_steps, cfg.std_start, cfg.std_end, cfg.std_decay_steps)

    def augment(self, obs: torch.Tensor) -> torch.Tensor:
        """A randomly shifted view: the gather on the fast path, DrQ-v2's bilinear resampling on the plain one."""
        if self.cfg.fast_kernels:
            return random_shift(obs, pad=self.cfg.shift_pad, generator=self.generator)
        return random_shift_bilinear(obs.float(), pad=self.cfg.shift_pad, generator=self.generator)

    @torch.no_grad()
    def act(self, obs: np.ndarray, deterministic: bool) -> np.ndarray:
        """Actions for one observation `(C, H, W)` or a batch: mu(s), or mu(s) plus the scheduled noise."""
        batch = torch.as_tensor(obs, device=self.device)
        single = batch.ndim == 3
        mu = self.actor(self.encoder(batch[None] if single else batch))
        action = mu if deterministic else noisy_action(mu, self.std, None, self.generator)
        result = action.cpu().numpy()
        return result[0] if single else result

    @torch.no_grad()
    def latents(self, obs: torch.Tensor) -> torch.Tensor:
        """The critic trunk's output (Linear, LayerNorm, tanh) of the encoder's features, `(B, projection_dim)`."""
        return self.critic.projection(self.encoder(obs))

    def update(self, batch: dict[str, torch.Tensor], step: int | None = None) -> Metrics:
        """One DrQ-v2 update on an (n-step) batch of uint8 observations. Its actor and target schedules count its own
        updates (`step`, the clock of a burst of `train.seed_updates`, is not used: DrQ-v2 has no burst)."""
        batch = {key: value.to(self.device, non_blocking=True) for key, value in batch.items()}
        std = self.std
        self.updates += 1
        features = self.encoder(self.augment(batch["obs"]))
        with torch.no_grad():
            next_features = self.encoder(self.augment(batch["next_obs"]))
        target = self.td_target(batch, next_features, std)
        q1, q2 = self.critic(features, batch["action"])
        critic_loss = F.mse_loss(q1, target) + F.mse_loss(q2, target)
        self.critic_optimizer.zero_grad(set_to_none=True)
        critic_loss.backward()
        self.critic_optimizer.step()
        metrics: Metrics = {"critic_loss": critic_loss.detach(), "q_target": target.mean().detach(), "std": std}
        if self.updates % self.cfg.actor_update_every == 0:
            metrics |= self.update_actor(features.detach(), std)
        if self.updates % self.cfg.target_update_every == 0:
            with torch.no_grad():
                online, followers = tuple(self.critic.parameters()), tuple(self.critic_target.parameters())
                torch._foreach_lerp_(followers, online, self.cfg.critic_tau)
        return metrics

    @torch.no_grad()
    def td_target(self, batch: dict[str, torch.Tensor], next_features: torch.Tensor, std: float) -> torch.Tensor:
        """y = R + gamma * discount * min(Q1', Q2')(s', a'), a' the clipped-noise action (the batch's discount
        holds gamma^(n-1) and the episode's survival, `unseen.replay.nstep_returns`)."""
        next_action = noisy_action(self.actor(next_features), std, self.cfg.std_clip, self.generator)
        target_q1, target_q2 = self.critic_target(next_features, next_action)
        bootstrap = batch["discount"][:, None] * self.cfg.discount * torch.min(target_q1, target_q2)
        return batch["reward"][:, None] + bootstrap

    def update_actor(self, features: torch.Tensor, std: float) -> Metrics:
        action = noisy_action(self.actor(features), std, self.cfg.std_clip, self.generator)
        # The actor's gradient flows through the critic to the action; the critic's own weights need none.
        self.critic.requires_grad_(False)
        q1, q2 = self.critic(features, action)
        self.critic.requires_grad_(True)
        actor_loss = -torch.min(q1, q2).mean()
        self.actor_optimizer.zero_grad(set_to_none=True)
        actor_loss.backward()
        self.actor_optimizer.step()
        return {"actor_loss": actor_loss.detach()}

    def modules(self) -> dict[str, torch.nn.Module | torch.optim.Optimizer]:
        """Everything with a state_dict that a checkpoint must hold."""
        return {
            "encoder": self.encoder,
            "actor": self.actor,
            "critic": self.critic,
            "critic_target": self.critic_target,
            "actor_optimizer": self.actor_optimizer,
            "critic_optimizer": self.critic_optimizer,
        }

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {name: module.state_dict() for name, module in self.modules().items()}
        return state | {"generator": self.generator.get_state(), "updates": self.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name, module in self.modules().items():
            module.load_state_dict(state[name])
        self.generator.set_state(state["generator"])
        self.updates = state["updates"]
