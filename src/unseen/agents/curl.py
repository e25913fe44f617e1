"""CURL (Laskin, Srinivas & Abbeel, 2020) as DMControl-GB implements it (`src/algorithms/curl.py`,
`src/algorithms/modules.py` `CURLHead`, `src/utils.py` `ReplayBuffer.sample_curl`, `src/arguments.py`): RAD with a
contrastive auxiliary loss on the critic's encoder.

Each update crops `obs` twice at random (DMControl-GB draws the positive's crop first, then the anchor's, then
`next_obs`'s): the anchor crop is the one the critic learns from (RAD), the positive is another view of the same
observation. Every `curl_update_every` updates, after the SAC updates of critic, actor and targets:
    z_a   = g(f(anchor))            online trunk f, critic projection g (with gradient)
    z_pos = g'(f'(positive))        target trunk f', target projection g' (the momentum encoder, no gradient)
    logits_ij = z_a_i W z_pos_j - max_k z_a_i W z_pos_k
    L_CURL = cross_entropy(logits, labels = 0..B-1)     (the diagonal pairs are the positives)
with W a learned `projection_dim x projection_dim` matrix initialised U[0, 1) (`torch.rand`, as DMControl-GB).

Its optimizer (DMControl-GB's `curl_optimizer = Adam(curl_head.parameters())`, lr `aux_lr` 1e-3, betas
(`aux_beta` 0.9, 0.999)) owns exactly: W, the conv trunk and the critic's projection (`curl_head.encoder` is
`critic.encoder`: shared CNN, head CNN, critic projection). It keeps moments of its own for the trunk and the
projection, which the critic's optimizer steps as well. The targets follow by SAC's Polyak averaging.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from unseen.agents.base import Metrics
from unseen.agents.rad import RAD, RADConfig
from unseen.schema import param


@dataclass
class CURLConfig(RADConfig):
    """RAD's fields and CURL's auxiliary optimizer (DMControl-GB's `aux_*` arguments)."""

    curl_lr: float = param(1e-3, gt=0)
    """Adam learning rate of the contrastive loss (DMControl-GB: aux_lr)."""
    curl_beta1: float = param(0.9, ge=0, lt=1)
    """Adam beta1 of the contrastive loss (DMControl-GB: aux_beta)."""
    curl_update_every: int = param(2, gt=0)
    """Take a contrastive step every this many updates (DMControl-GB: aux_update_freq)."""


def curl_logits(z_anchor: torch.Tensor, z_positive: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """`(B, B)` bilinear similarities `z_a W z_pos^T`, each row minus its maximum (DMControl-GB's
    `CURLHead.compute_logits`); row i's positive is column i."""
    logits = z_anchor @ (w @ z_positive.T)
    return logits - logits.max(dim=1, keepdim=True).values


def curl_loss(z_anchor: torch.Tensor, z_positive: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of `curl_logits` with the diagonal as labels."""
    logits = curl_logits(z_anchor, z_positive, w)
    return F.cross_entropy(logits, torch.arange(logits.shape[0], device=logits.device))


class CURLHead(nn.Module):
    """CURL's bilinear matrix W."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.rand(dim, dim))


class CURL(RAD):
    """RAD + CURL's contrastive loss on the trunk and critic projection (module docstring)."""

    cfg: CURLConfig

    def __init__(
        self, obs_shape: tuple[int, int, int], action_dim: int, cfg: CURLConfig, device: torch.device, seed: int
    ) -> None:
        super().__init__(obs_shape, action_dim, cfg, device, seed)
        self.curl_head = CURLHead(self.projection_dim).to(device)
        self.curl_optimizer = torch.optim.Adam(
            self.curl_parameters(), lr=cfg.curl_lr, betas=(cfg.curl_beta1, 0.999), fused=cfg.fast_kernels
        )

    def curl_parameters(self) -> list[nn.Parameter]:
        """What the contrastive optimizer steps: W, the conv trunk and the critic's projection."""
        return [*self.curl_head.parameters(), *self.trunk.parameters(), *self.critic.projection.parameters()]

    def update(self, batch: dict[str, torch.Tensor], step: int | None = None) -> Metrics:
        """Crop the positive, then the anchor and next observation (the critic's views), then RAD's update and, every
        `curl_update_every` updates (by `step` when given, as DMControl-GB's `step % aux_update_freq`), the
        contrastive step."""
        batch = {key: value.to(self.device, non_blocking=True) for key, value in batch.items()}
        positive = self.augment(batch["obs"])
        views = batch | {"obs": self.augment(batch["obs"]), "next_obs": self.augment_next(batch["next_obs"])}
        metrics = super().update(views, step)  # crops pass `augment` unchanged
        if (self.updates if step is None else step) % self.cfg.curl_update_every == 0:
            metrics |= self.update_curl(views["obs"], positive)
        return metrics

    def update_curl(self, anchor: torch.Tensor, positive: torch.Tensor) -> Metrics:
        z_anchor = self.critic.projection(self.trunk(anchor))
        with torch.no_grad():
            z_positive = self.critic_target.projection(self.trunk_target(positive))
        loss = curl_loss(z_anchor, z_positive, self.curl_head.w)
        self.curl_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.curl_optimizer.step()
        return {"curl_loss": loss.detach()}

    def modules(self) -> dict[str, torch.nn.Module | torch.optim.Optimizer]:
        return super().modules() | {"curl_head": self.curl_head, "curl_optimizer": self.curl_optimizer}
