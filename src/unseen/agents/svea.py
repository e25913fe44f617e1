"""SVEA (Hansen et al., 2021) as DMControl-GB implements it: the critic learns from two views of each sample.

Both `obs` and `next_obs` are randomly shifted (DrQ); the TD target comes from the shifted next
observation. We follow DMControl-GB's code here rather than the paper's "unaugmented" target because its
replay buffer (`sample_svea`) crops both observations before `update_critic` sees them, and SVEA's
published numbers come from that code; CG2A, which cites SVEA for the unaugmented target, uses SAC's.
Critic loss, the target `y` shared by both views:
    L = alpha * L(shift(o)) + beta * L(conv(shift(o))),   L(v) = ||Q1(v, a) - y||^2 + ||Q2(v, a) - y||^2
with `alpha = beta = 0.5` (`agent.svea_alpha`, `agent.svea_beta`), computed as DMControl-GB does when they are
equal: one MSE over both views' 2B samples, times alpha + beta; the conv view is `random_conv` of the same shifted
observation. Both views pass the trunk as one concatenated batch (exact: the networks treat
samples independently). The actor and temperature learn from the shifted view, as in DrQ (DMControl-GB's
`SVEA.update` passes the shifted obs to `update_actor_and_alpha`, which encodes it again after the critic step).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F

from unseen.agents.base import Metrics
from unseen.agents.drq import DrQ, DrQConfig
from unseen.augment import random_conv
from unseen.schema import param


@dataclass
class SVEAConfig(DrQConfig):
    """DrQ's fields, the weights of SVEA's two views and the conv view's number type."""

    svea_alpha: float = param(0.5, ge=0)
    """SVEA: weight of the critic loss on the shifted view (DMControl-GB: 0.5)."""
    svea_beta: float = param(0.5, ge=0)
    """SVEA: weight of the critic loss on the shifted + random-conv view (DMControl-GB: 0.5)."""
    svea_float_conv: bool = True
    """SVEA: the random-conv view in float, as DMControl-GB's random_conv returns it; false: rounded to uint8."""


class SVEA(DrQ):
    """DrQ whose critic also trains on a random-conv view against the same target."""

    cfg: SVEAConfig

    def update_critic(self, batch: dict[str, torch.Tensor]) -> tuple[Metrics, torch.Tensor, torch.Tensor]:
        target = self.td_target(batch)
        shifted = self.augment(batch["obs"])
        # DMControl-GB's `random_conv` returns floats; on uint8 input ours rounds to pixels (`agent.svea_float_conv`).
        conv = random_conv(shifted.float() if self.cfg.svea_float_conv else shifted, generator=self.generator)
        features = self.trunk(torch.cat([shifted.to(conv.dtype), conv]))
        clean, conv = features.chunk(2)
        alpha, beta = self.cfg.svea_alpha, self.cfg.svea_beta
        if alpha == beta:
            # DMControl-GB's `SVEA.update_critic` (src/algorithms/svea.py) with alpha == beta: one MSE over the
            # 2B views, times alpha + beta; equal to the weighted sum below but for its rounding.
            q1, q2 = self.critic(features, batch["action"].repeat(2, 1))
            targets = target.repeat(2, 1)
            loss = (alpha + beta) * (F.mse_loss(q1, targets) + F.mse_loss(q2, targets))
            with torch.no_grad():
                conv_loss = F.mse_loss(q1[len(clean):], target) + F.mse_loss(q2[len(clean):], target)
        else:
            clean_loss = self.critic_loss(clean, batch["action"], target)
            conv_loss = self.critic_loss(conv, batch["action"], target)
            loss = alpha * clean_loss + beta * conv_loss
        self.critic_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.critic_optimizer.step()
        metrics: Metrics = {
            "critic_loss": loss.detach(), "critic_loss_conv": conv_loss.detach(), "q_target": target.mean().detach()
        }
        return metrics, clean, shifted
