"""CG2A (Conflict-aware Gradient Agreement Augmentation), docs/methods.md "CG2A", equation by equation.

One critic update:
  1. TD target `y` on the non-augmented next observation (docs/methods.md; the paper's Eq. 2 `max_a Q` read as
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

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from unseen.agents.base import Metrics, Variants
from unseen.agents.drq import DrQConfig
from unseen.agents.overlays import OverlayPool, check_overlay_dir
from unseen.agents.sac import SAC
from unseen.augment import USES_IMAGES, VIEWS, random_shift
from unseen.envs.sources import OVERLAY_SOURCES
from unseen.errors import UserError
from unseen.grad import (
    GRAD_METHODS,
    SGS_RULES,
    combine,
    diagnostics,
    gas_weights,
    per_loss_gradients,
    uniform_weights,
    write_gradients,
)
from unseen.schema import param

if TYPE_CHECKING:
    from unseen.config import EnvConfig


@dataclass
class CG2AConfig(DrQConfig):
    """DrQ's fields (the random shift is tau_0) and CG2A's views, gradient agreement and surgery (docs/methods.md,
    "CG2A")."""

    cg2a_augmentations: str = "conv,overlay,overlay_s"
    """CG2A: tau_1..tau_N applied on top of the random shift tau_0, comma-separated names from unseen.augment.VIEWS."""
    cg2a_gas: bool = True
    """CG2A: weight the gradients by the Gradient Agreement Solver, Eq. (8); false gives their mean (Table 4)."""
    cg2a_sgs: bool = True
    """CG2A: apply Soft Gradient Surgery, Algorithm 1 (Table 4)."""
    sgs_gamma_low: float = param(0.22, ge=0, le=1)
    """CG2A: SGS damping factor gamma ~ U(low, high), drawn each update; equal bounds fix gamma (Figure 4)."""
    sgs_gamma_high: float = param(0.28, ge=0, le=1)
    """CG2A: upper bound of gamma's uniform distribution (the paper's beta)."""
    sgs_rule: str = param("agree", choices=SGS_RULES)
    """CG2A: SGS agreement, "agree" (all signs equal, docs/methods.md) or "literal" (all positive, as printed in
    Eq. 9)."""
    gas_clamp: bool = False
    """CG2A: clamp negative GAS weights to 0 and renormalise (ours; the paper's weights can be negative)."""
    grad_method: str = param("sequential", choices=GRAD_METHODS)
    """CG2A: per-augmentation gradients by "sequential" passes (cheapest on CPU) or one "vmap" pass."""
    grad_log_every: int = param(10, ge=0)
    """CG2A: compute the grad/ diagnostics (Figure 1) every this many updates (each costs ~5% of one); 0 never."""
    overlay_source: str = param("photos", choices=OVERLAY_SOURCES)
    """CG2A: overlay images without `overlay_dir`: "photos" (offline, fresh crops per sample) or "procedural"."""
    overlay_dir: str = param("", path=True)
    """Folder of overlay images at any depth (Places365: paper-comparable numbers); overrides `overlay_source`."""
    overlay_pool: int = param(1000, gt=0)
    """Overlay images drawn once from `overlay_dir` or the procedural source; each overlay samples from them."""

    @property
    def augmentations(self) -> list[str]:
        """tau_1..tau_N as a list of names (`cg2a_augmentations` split at commas)."""
        return [name.strip() for name in self.cg2a_augmentations.split(",") if name.strip()]

    def check(self, env: EnvConfig) -> None:
        super().check(env)
        names = self.augmentations
        if [name for name in names if name not in VIEWS] or not names or len(set(names)) != len(names):
            raise UserError(
                f"agent.cg2a_augmentations={self.cg2a_augmentations!r} must list distinct names from: "
                f"{', '.join(VIEWS)}"
            )
        if self.sgs_gamma_low > self.sgs_gamma_high:
            raise UserError("agent.sgs_gamma_low and agent.sgs_gamma_high must satisfy 0 <= low <= high <= 1")
        if self.grad_method == "vmap" and self.channels_last:
            raise UserError(
                "agent.grad_method=vmap cannot run channels-last convolutions; set agent.channels_last=false"
            )

    def check_data(self) -> None:
        check_overlay_dir(self.overlay_dir)


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

    cfg: CG2AConfig

    def __init__(
        self, obs_shape: tuple[int, int, int], action_dim: int, cfg: CG2AConfig, device: torch.device, seed: int
    ) -> None:
        super().__init__(obs_shape, action_dim, cfg, device, seed)
        self.names = ["shift", *cfg.augmentations]
        self.view_loss = ViewLoss(self)
        # Overlay pictures whenever a view uses them (a view without says so).
        self.overlays = (
            OverlayPool(cfg.overlay_dir, cfg.overlay_source, cfg.overlay_pool, obs_shape[1], self.generator, device)
            if USES_IMAGES & set(self.names) else None
        )

    def augment(self, obs: torch.Tensor) -> torch.Tensor:
        """tau_0: DrQ's random shift."""
        return random_shift(obs, pad=self.cfg.shift_pad, generator=self.generator)

    def views(self, obs: torch.Tensor) -> torch.Tensor:
        """`(N+1, B, C, H, W)`: tau_0 = random shift, then each named augmentation of tau_0."""
        shifted = self.augment(obs)
        views = [shifted]
        for name in self.names[1:]:
            images = self.overlays.draw(len(obs), self.generator) if name in USES_IMAGES and self.overlays else None
            views.append(VIEWS[name](shifted, images, self.generator))
        return torch.stack(views)

    def update_critic(self, batch: dict[str, torch.Tensor]) -> tuple[Metrics, torch.Tensor, torch.Tensor]:
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
        metrics: Metrics = {"critic_loss": losses.mean().detach(), "q_target": target.mean().detach()}
        if cfg.grad_log_every and self.updates % cfg.grad_log_every == 0:
            weights = gas_weights(grads, cfg.gas_clamp) if cfg.cg2a_gas else uniform_weights(grads)
            metrics |= diagnostics(grads, self.names, weights, gamma)
        return metrics, features[0], views[0]


# ----- how reports name a CG2A run ---------------------------------------------------------------------------

_DEFAULTS = CG2AConfig()


def switches(config: dict[str, Any]) -> dict[str, Any]:
    """CG2A's ablation switches (Table 4: GAS, SGS; Figure 4: gamma; ours: the views tau_1..tau_N, "+"-joined) of a
    run's flattened config.

    A config written before a switch existed ran the full method, so a missing field reads as its default.
    """
    low = config.get("agent.sgs_gamma_low", _DEFAULTS.sgs_gamma_low)
    high = config.get("agent.sgs_gamma_high", _DEFAULTS.sgs_gamma_high)
    sgs = bool(config.get("agent.cg2a_sgs", _DEFAULTS.cg2a_sgs))
    gamma = (f"{low:g}" if low == high else f"U({low:g},{high:g})") if sgs else None
    views = CG2AConfig(cg2a_augmentations=config.get("agent.cg2a_augmentations", _DEFAULTS.cg2a_augmentations))
    return {"gas": bool(config.get("agent.cg2a_gas", _DEFAULTS.cg2a_gas)), "sgs": sgs, "gamma": gamma,
            "views": "+".join(views.augmentations)}


DEFAULT_GAMMA = f"U({_DEFAULTS.sgs_gamma_low:g},{_DEFAULTS.sgs_gamma_high:g})"
DEFAULT_VIEWS = "+".join(_DEFAULTS.augmentations)


def ablation_parts(switch: dict[str, Any]) -> list[str]:
    """The label parts of a CG2A ablation: `AC[+GAS][+SGS]` unless both are on, `gamma=...` unless the default,
    `views=...` unless the default three."""
    parts = [] if switch["gas"] and switch["sgs"] else ["AC" + "+GAS" * switch["gas"] + "+SGS" * switch["sgs"]]
    parts += [f"gamma={switch['gamma']}"] if switch["sgs"] and switch["gamma"] != DEFAULT_GAMMA else []
    return parts + ([f"views={switch['views']}"] if switch["views"] != DEFAULT_VIEWS else [])


def table4_rank(switch: dict[str, Any]) -> tuple:
    """Table 4's order (AC, AC+GAS, AC+SGS, CG2A), each before its runs with another gamma; runs with other views
    after all of those, in the same order."""
    return (switch["views"] != DEFAULT_VIEWS, 2 * switch["sgs"] + switch["gas"],
            switch["sgs"] and switch["gamma"] != DEFAULT_GAMMA)


VARIANTS = Variants(columns=("gas", "sgs", "gamma", "views"), of=switches, label=ablation_parts, rank=table4_rank)
"""CG2A's ablations as reports name and order them (its registry entry's `variants`)."""
