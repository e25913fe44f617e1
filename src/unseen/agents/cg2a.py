"""CG2A (Conflict-aware Gradient Agreement Augmentation), METHODS.md "CG2A", equation by equation.

One critic update:
  1. TD target `y` on the non-augmented next observation (METHODS.md; the paper's Eq. 2 `max_a Q` read as
     SAC's soft target): `SAC.td_target`.
  2. Augmentation combination: `tau_0` = random shift of `o_t` (the SAC+shift baseline's view), and
     `tau_i = aug_i(tau_0(o_t))` for the names in `agent.cg2a_augmentations` (default random conv, overlay
     with mu = 0.5, overlay-S with mu ~ U(0.05, 0.2) per sample; overlay images drawn afresh for every sample
     from the photographs (`agent.overlay_source=photos`, the default), else sampled from a pool drawn once from
     the procedural source or `agent.overlay_dir`). Every view has the same `(o_t, a_t)` and target.
  3. Per-view critic losses, Eq. (3) without weights: `L_i = ||Q1(tau_i(o_t), a_t) - y||^2 + ||Q2 - y||^2`,
     and their gradients `g_i` over every parameter the critic optimizer steps (trunk, projection, Q heads),
     the `(N+1, P)` matrix `J` (`unseen.grad.per_loss_gradients`).
  4. `gamma ~ U(sgs_gamma_low, sgs_gamma_high)` from the agent's seeded generator (fixed if equal), then
     `g_bar = sum_i w_i SGS(g)_i` (`unseen.grad.combine`: GAS Eq. 8, SGS Algorithm 1, each switchable for the
     Table 4 ablations), written into `.grad` once, one Adam step.
The actor and temperature are SAC's, on the detached trunk features of `tau_0` (re-encoded after the critic step by
default, as in DMControl-GB's SAC, which CG2A builds on); targets are SAC's.
Every `grad_log_every` updates the metrics carry Figure 1's diagnostics under `grad/`.
"""

from __future__ import annotations

import torch
from torch import nn

from unseen.agents.sac import SAC
from unseen.augment import USES_IMAGES, VIEWS, random_shift
from unseen.config import AgentConfig, augmentation_names
from unseen.envs.sources import ImageSource, image_source
from unseen.grad import (
    combine,
    diagnostics,
    gas_weights,
    per_loss_gradients,
    uniform_weights,
    write_gradients,
)


class ViewLoss(nn.Module):
    """The critic loss of one view and its trunk features; its parameters are exactly the critic optimizer's."""

    def __init__(self, agent: SAC) -> None:
        super().__init__()
        self.trunk, self.critic = agent.trunk, agent.critic
        self.agent = [agent]  # a list, so the agent's modules are not registered twice

    def forward(
        self, obs: torch.Tensor, action: torch.Tensor, target: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.trunk(obs)
        return self.agent[0].critic_loss(features, action, target), features


class CG2A(SAC):
    """SAC whose critic steps along the GAS-weighted, SGS-damped combination of per-augmentation gradients."""

    def __init__(
        self, obs_shape: tuple[int, int, int], action_dim: int, cfg: AgentConfig, device: torch.device, seed: int
    ) -> None:
        super().__init__(obs_shape, action_dim, cfg, device, seed)
        self.names = ["shift", *augmentation_names(cfg)]
        self.view_loss = ViewLoss(self)
        self.overlay_images: torch.Tensor | None = None
        self.overlay_source: ImageSource | None = None
        if USES_IMAGES & set(self.names):
            source = image_source(cfg.overlay_dir or None, cfg.overlay_source)
            if source.per_update:
                self.overlay_source = source  # fresh pictures for every sample, as DMControl-GB's overlay draws
            else:
                self.overlay_images = source.batch(cfg.overlay_pool, obs_shape[1], self.generator).to(device)

    def augment(self, obs: torch.Tensor) -> torch.Tensor:
        """tau_0: DrQ's random shift."""
        return random_shift(obs, pad=self.cfg.shift_pad, generator=self.generator)

    def views(self, obs: torch.Tensor) -> torch.Tensor:
        """`(N+1, B, C, H, W)`: tau_0 = random shift, then each named augmentation of tau_0."""
        shifted = self.augment(obs)
        views = [shifted]
        for name in self.names[1:]:
            images = None
            # The source or the pool exists whenever a view uses images (__init__); without, the view says so.
            if name in USES_IMAGES and self.overlay_source is not None:
                images = self.overlay_source.batch(len(obs), obs.shape[-1], self.generator).to(obs.device)
            elif name in USES_IMAGES and self.overlay_images is not None:
                pick = torch.randint(
                    len(self.overlay_images), (len(obs),), generator=self.generator, device=obs.device
                )
                images = self.overlay_images[pick]
            views.append(VIEWS[name](shifted, images, self.generator))
        return torch.stack(views)

    def update_critic(self, batch: dict[str, torch.Tensor]) -> tuple[dict[str, float], torch.Tensor, torch.Tensor]:
        cfg = self.cfg
        target = self.td_target(batch)
        views = self.views(batch["obs"])
        grads, losses, features = per_loss_gradients(
            self.view_loss, views, batch["action"], target, method=cfg.grad_method
        )
        low, high = cfg.sgs_gamma_low, cfg.sgs_gamma_high
        gamma = low + (high - low) * torch.rand((), generator=self.generator, device=self.device).item()
        direction = combine(
            grads, gas=cfg.cg2a_gas, sgs=cfg.cg2a_sgs, gamma=gamma, rule=cfg.sgs_rule, clamp=cfg.gas_clamp
        )
        self.critic_optimizer.zero_grad(set_to_none=True)
        write_gradients(self.critic_parameters(), direction)
        self.critic_optimizer.step()
        metrics = {"critic_loss": losses.mean().item(), "q_target": target.mean().item()}
        if cfg.grad_log_every and self.updates % cfg.grad_log_every == 0:
            weights = gas_weights(grads, cfg.gas_clamp) if cfg.cg2a_gas else uniform_weights(grads)
            metrics |= diagnostics(grads, self.names, weights, gamma)
        return metrics, features[0], views[0]
