"""SAC from pixels, DMControl-GB style: the base every other agent of unseen builds on.

Soft actor-critic (Haarnoja et al., 2018) with clipped double Q, a learned entropy temperature aimed at
the target entropy -|A|, a tanh-squashed Gaussian actor with bounded log std, Polyak-averaged targets,
and the DMControl-GB networks (docs/methods.md, "Common base"): a conv trunk shared by actor and critic and
trained by the critic only (the actor sees detached features), a separate projection each.

One update (`update`):
  1. TD target on the *non-augmented* next observation (`augment_next` is the identity here; DrQ shifts it):
       y = r + discount * gamma * (min(Q1', Q2')(s', a') - alpha * log pi(a'|s')),  a' ~ pi(.|s')
     with the target critic (its own trunk, projection and heads) and the online actor.
  2. Critic loss  sum_i ||Q_i(s, a) - y||^2  (mean over the batch), one Adam step of trunk, critic
     projection and heads.
  3. Every `actor_update_every` updates: actor loss  E[alpha * log pi(a|s) - min(Q1, Q2)(s, a)],  a ~ pi(.|s),
     on detached trunk features of the critic's view of `obs`: re-encoded after the critic's step, as DMControl-GB
     does (`agent.actor_recompute`), or those of step 2 (as DrQ-v2 does, one trunk pass fewer); and temperature
     loss  E[alpha * (-log pi - target_entropy)]. The log-prob's tanh correction is DMControl-GB's floored one
     unless `agent.exact_log_det` (`unseen.nets.Actor`).
  4. Every `target_update_every` updates: Polyak averaging, heads at `critic_tau`, trunk and projection
     at `encoder_tau`.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch.nn import functional as F

from unseen.agents.base import AgentConfig, Metrics, seeded
from unseen.errors import UserError
from unseen.nets import Actor, ConvTrunk, Critic
from unseen.schema import param

if TYPE_CHECKING:
    from unseen.config import EnvConfig


@dataclass
class SACConfig(AgentConfig):
    """SAC's entropy temperature and squashed Gaussian actor on top of the common base."""

    alpha_lr: float = param(1e-4, gt=0)
    """Adam learning rate of the entropy temperature."""
    alpha_beta1: float = param(0.5, ge=0, lt=1)
    """Adam beta1 of the entropy temperature."""
    init_temperature: float = param(0.1, gt=0)
    """Initial entropy temperature alpha (its logarithm is what is learned)."""
    log_std_min: float = -10.0
    """Lower bound of the actor's log standard deviation."""
    log_std_max: float = 2.0
    """Upper bound of the actor's log standard deviation."""
    # DMControl-GB's behaviours (issue 18, docs/dmcontrol-gb.md): its choice by default, the earlier one by a switch;
    # a config.yaml without them loads with the earlier one (`unseen.config.ADDED_FIELDS`).
    trunk_final_relu: bool = False
    """A ReLU after the trunk's last conv; false: the features are the last conv's output (DMControl-GB's)."""
    actor_recompute: bool = True
    """Actor and temperature see obs re-encoded after the critic step (DMControl-GB's); false: the critic's features."""
    exact_log_det: bool = False
    """The log-prob's tanh term exact; false: DMControl-GB's floored log(relu(1 - tanh(u)^2) + 1e-6)."""

    def check(self, env: EnvConfig) -> None:
        super().check(env)
        if self.log_std_min >= self.log_std_max:
            raise UserError("agent.log_std_min must be below agent.log_std_max")


class SAC:
    """Soft actor-critic from pixels; subclasses change what the critic sees through `augment`."""

    def __init__(
        self, obs_shape: tuple[int, int, int], action_dim: int, cfg: SACConfig, device: torch.device, seed: int
    ) -> None:
        self.cfg = cfg
        self.device = device
        self.generator = seeded(seed, device)
        trunk, actor, critic = self.build_networks(obs_shape, action_dim)
        self.trunk, self.actor, self.critic = trunk.to(device), actor.to(device), critic.to(device)
        self.trunk_target = copy.deepcopy(self.trunk).requires_grad_(False)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.log_alpha = torch.tensor(np.log(cfg.init_temperature), device=device, requires_grad=True)
        self.target_entropy = -float(action_dim)
        # Fused Adam: one kernel over all parameters (half the time of the per-tensor loop on CPU).
        self.actor_optimizer = torch.optim.Adam(self.actor.parameters(), lr=cfg.actor_lr, fused=cfg.fast_kernels)
        self.critic_optimizer = torch.optim.Adam(self.critic_parameters(), lr=cfg.critic_lr, fused=cfg.fast_kernels)
        self.alpha_optimizer = torch.optim.Adam(
            [self.log_alpha], lr=cfg.alpha_lr, betas=(cfg.alpha_beta1, 0.999), fused=cfg.fast_kernels
        )
        self.updates = 0

    def build_networks(self, obs_shape: tuple[int, int, int], action_dim: int) -> tuple[torch.nn.Module, Actor, Critic]:
        """The trunk (uint8 observations -> features with an `out_dim`), the actor and the critic, in this order."""
        cfg = self.cfg
        trunk = ConvTrunk(
            obs_shape[0], obs_shape[1], cfg.encoder_layers, cfg.encoder_filters, cfg.bf16, cfg.channels_last,
            cfg.fast_kernels, final_relu=cfg.trunk_final_relu,
        )
        actor = Actor(
            trunk.out_dim, self.projection_dim, cfg.hidden_dim, action_dim, cfg.log_std_min, cfg.log_std_max,
            exact_log_det=cfg.exact_log_det,
        )
        critic = Critic(trunk.out_dim, self.projection_dim, cfg.hidden_dim, action_dim)
        return trunk, actor, critic

    @property
    def projection_dim(self) -> int:
        """Width of the actor's and the critic's own projections."""
        return self.cfg.projection_dim

    def critic_parameters(self) -> list[torch.nn.Parameter]:
        """Everything the critic's optimizer steps: the shared conv trunk, the critic projection and Q heads."""
        return [*self.trunk.parameters(), *self.critic.parameters()]

    @property
    def alpha(self) -> torch.Tensor:
        return self.log_alpha.exp()

    def augment(self, obs: torch.Tensor) -> torch.Tensor:
        """The view of `obs` the critic is trained on (identity for SAC)."""
        return obs

    def augment_next(self, next_obs: torch.Tensor) -> torch.Tensor:
        """The view of `next_obs` the TD target is computed on (identity: the non-augmented observation)."""
        return next_obs

    @torch.no_grad()
    def act(self, obs: np.ndarray, deterministic: bool) -> np.ndarray:
        """Actions for one observation `(C, H, W)` or a batch `(B, C, H, W)`: the mean, or a sample."""
        batch = torch.as_tensor(obs, device=self.device)
        single = batch.ndim == 3
        action, _ = self.actor(self.trunk(batch[None] if single else batch), self.generator, deterministic)
        action = action.cpu().numpy()
        return action[0] if single else action

    @torch.no_grad()
    def latents(self, obs: torch.Tensor) -> torch.Tensor:
        """The representation whose disentanglement `unseen report disentangle` measures: uint8 `obs`
        `(B, 3k, H, W)` on the agent's device to float32 `(B, D)`. Here the critic's projection (Linear,
        LayerNorm, tanh) of the conv trunk's features, `D = projection_dim`: what the Q heads see, and the
        only projection the trunk is trained through. Agents with a latent of their own override this."""
        return self.critic.projection(self.trunk(obs))

    def update(self, batch: dict[str, torch.Tensor], step: int | None = None) -> Metrics:
        """One SAC update on a batch of uint8 observations; returns scalar metrics.

        `step`: the clock of the actor's and the targets' schedule; None counts this agent's updates. The training
        loop's first-step burst passes its environment step: DMControl-GB's `update(replay_buffer, L, step)` tests
        `step % actor_update_freq` (src/algorithms/sac.py), the same number for every update of the burst.
        """
        batch = {key: value.to(self.device, non_blocking=True) for key, value in batch.items()}
        self.updates += 1
        clock = self.updates if step is None else step
        metrics, features, view = self.update_critic(batch)
        if clock % self.cfg.actor_update_every == 0:
            if self.cfg.actor_recompute:
                # DMControl-GB's `update_actor_and_alpha` (src/algorithms/sac.py) encodes obs again, after the
                # critic's step has changed the trunk.
                with torch.no_grad():
                    features = self.trunk(view)
            metrics |= self.update_actor_and_alpha(features.detach())
        if clock % self.cfg.target_update_every == 0:
            self.update_targets()
        return metrics

    @torch.no_grad()
    def td_target(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        next_obs = self.augment_next(batch["next_obs"])
        return self.soft_target(batch, self.trunk(next_obs), self.trunk_target(next_obs))

    @torch.no_grad()
    def soft_target(
        self, batch: dict[str, torch.Tensor], next_features: torch.Tensor, next_target_features: torch.Tensor
    ) -> torch.Tensor:
        """`y` from the next observation's online and target trunk features (the actor's and the target critic's)."""
        next_action, next_log_prob = self.actor(next_features, self.generator)
        target_q1, target_q2 = self.critic_target(next_target_features, next_action)
        next_value = torch.min(target_q1, target_q2) - self.alpha * next_log_prob
        return batch["reward"][:, None] + batch["discount"][:, None] * self.cfg.discount * next_value

    def critic_loss(self, features: torch.Tensor, action: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        q1, q2 = self.critic(features, action)
        return F.mse_loss(q1, target) + F.mse_loss(q2, target)

    def update_critic(self, batch: dict[str, torch.Tensor]) -> tuple[Metrics, torch.Tensor, torch.Tensor]:
        """One critic step; returns its metrics, the trunk features of the view of `obs` the actor learns from
        (computed before the step) and that view."""
        target = self.td_target(batch)
        view = self.augment(batch["obs"])
        features = self.trunk(view)
        loss = self.critic_loss(features, batch["action"], target)
        self.critic_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.critic_optimizer.step()
        return {"critic_loss": loss.detach(), "q_target": target.mean().detach()}, features, view

    def update_actor_and_alpha(self, features: torch.Tensor) -> Metrics:
        action, log_prob = self.actor(features, self.generator)
        # The actor's gradient flows through the critic to the action; the critic's own weights need none.
        self.critic.requires_grad_(False)
        q1, q2 = self.critic(features, action)
        self.critic.requires_grad_(True)
        actor_loss = (self.alpha.detach() * log_prob - torch.min(q1, q2)).mean()
        self.actor_optimizer.zero_grad(set_to_none=True)
        actor_loss.backward()
        self.actor_optimizer.step()

        alpha_loss = (self.alpha * (-log_prob - self.target_entropy).detach()).mean()
        self.alpha_optimizer.zero_grad(set_to_none=True)
        alpha_loss.backward()
        self.alpha_optimizer.step()
        return {
            "actor_loss": actor_loss.detach(),
            "alpha_loss": alpha_loss.detach(),
            "alpha": self.alpha.detach(),
            "entropy": -log_prob.mean().detach(),
        }

    @torch.no_grad()
    def update_targets(self) -> None:
        pairs = [
            (self.critic.q1, self.critic_target.q1, self.cfg.critic_tau),
            (self.critic.q2, self.critic_target.q2, self.cfg.critic_tau),
            (self.critic.projection, self.critic_target.projection, self.cfg.encoder_tau),
            (self.trunk, self.trunk_target, self.cfg.encoder_tau),
        ]
        for online, target, tau in pairs:
            # DMControl-GB's `soft_update_params` (src/utils.py), tau * p + (1 - tau) * t, with its roundings (a lerp
            # rounds once less: the parity audit's targets then differed in the last bit, and that grew over updates).
            targets: list[torch.Tensor] = list(target.parameters())
            scaled = list(torch._foreach_mul(list(online.parameters()), tau))
            torch._foreach_mul_(targets, 1 - tau)
            torch._foreach_add_(targets, scaled)

    def modules(self) -> dict[str, torch.nn.Module | torch.optim.Optimizer]:
        """Everything with a state_dict that a checkpoint must hold."""
        return {
            "trunk": self.trunk,
            "actor": self.actor,
            "critic": self.critic,
            "trunk_target": self.trunk_target,
            "critic_target": self.critic_target,
            "actor_optimizer": self.actor_optimizer,
            "critic_optimizer": self.critic_optimizer,
            "alpha_optimizer": self.alpha_optimizer,
        }

    def state_dict(self) -> dict:
        state: dict[str, Any] = {name: module.state_dict() for name, module in self.modules().items()}
        state |= {
            "log_alpha": self.log_alpha.detach().clone(),
            "generator": self.generator.get_state(),
            "updates": self.updates,
        }
        return state

    def load_state_dict(self, state: dict) -> None:
        for name, module in self.modules().items():
            module.load_state_dict(state[name])
        with torch.no_grad():
            self.log_alpha.copy_(state["log_alpha"])
        self.generator.set_state(state["generator"])
        self.updates = state["updates"]
