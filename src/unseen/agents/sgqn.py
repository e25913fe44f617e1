"""SGQN (Bertoin et al., 2022, "Look where you look! Saliency-guided Q-networks for generalization in visual RL") as
its code implements it: SuReLI/SGQN `DMC/src/algorithms/sgsac.py` (`SGSAC`), `rl_utils.py` (`compute_attribution`,
`compute_attribution_mask`), `modules.py` (`AttributionDecoder`, `AttributionPredictor`), `augmentations.py`
(`random_overlay`), `utils.py` (`ReplayBuffer.sample_drq`), `arguments.py` and `scripts/sgsac.sh`.

Each update draws DrQ's random shift of `obs` and of `next_obs` (`sample_drq`: obs first); SAC learns on the shifted
views. Saliency: the guided-backpropagation attribution of the critic's first Q head to the pixels,
    M(o, a) = d Q1(o, a) / d o    with every ReLU passing back only positive gradients (Springenberg et al., 2015;
                                  captum's `GuidedBackprop`, which SGQN calls, on every `nn.ReLU` of trunk and critic)
and its mask keeps, per frame of the stack, the pixels whose largest |M| over R, G, B reaches that frame's
`sgqn_quantile` quantile (`torch.quantile`, linear interpolation; 0.9 by default: about a tenth of the pixels kept).
Critic loss, with the SAC target y on the shifted next observation:
    L_Q = sum_i ||Q_i(o, a) - y||^2 + w * sum_i ||Q_i(o, a) - Q_i(o_m, a)||^2,     w = 0.5 (SGQN's constant)
    o_m = o where the mask (of the critic before its step) keeps it, else one value u ~ U(min o, max o) per batch
(the consistency term; both Q's carry gradient, as there). After the critic, actor and target steps, every
`sgqn_update_every` updates: the attribution predictor, the critic's trunk and projection followed by a decoder
(Linear to 32 maps of side/4, ReLU, conv 3x3 to 128, 2x nearest upsampling, ReLU, conv to 64, 2x upsampling, ReLU, conv
to 3k channels: one logit per pixel and channel), learns the mask of the *updated* critic from an overlaid view,
    L_A = BCE_with_logits(decoder(g(f(overlay(o))), a), mask(M(o, a)))
with its own Adam (lr `sgqn_lr` 3e-4, betas (0.9, 0.999), SGQN's aux_lr/aux_beta) over trunk, critic projection and
decoder. The mask is of `sgqn_quantile`: SGQN's default argument is 0.9 (its scripts/sgsac.sh runs cartpole at 0.98).

Where unseen differs: the decoder's maps are side/4 for any frame side (SGQN's are fixed at 21 for 84x84); the mask of
the attribution step is computed when that step runs (SGQN computes it every update and uses it every second; nothing
else reads it, and no randomness is drawn); SGQN's unused `features_decoder` and its TensorBoard image grids are left
out; the overlay pictures are offline photographs or a pool (`agents.overlays`) and the overlay is computed in
float, as there.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from unseen.agents.base import Metrics
from unseen.agents.drq import DrQConfig
from unseen.agents.overlays import OverlayPool, check_overlay_dir
from unseen.agents.sac import SAC
from unseen.augment import random_overlay, random_shift
from unseen.envs.sources import OVERLAY_SOURCES
from unseen.nets import FastPath
from unseen.schema import param


@dataclass
class SGQNConfig(DrQConfig):
    """DrQ's fields (the random shift of `sample_drq`) and SGQN's saliency terms (its `arguments.py`)."""

    sgqn_quantile: float = param(0.9, gt=0, lt=1)
    """Quantile of each frame's attributions above which pixels are kept (SGQN: sgqn_quantile, default 0.9)."""
    sgqn_consistency: bool = True
    """Add the consistency term between Q on the masked and on the full observation (SGQN: consistency 1)."""
    sgqn_consistency_weight: float = param(0.5, ge=0)
    """Weight w of the consistency term (SGQN's constant 0.5)."""
    sgqn_lr: float = param(3e-4, gt=0)
    """Adam learning rate of the attribution predictor (SGQN: aux_lr)."""
    sgqn_beta1: float = param(0.9, ge=0, lt=1)
    """Adam beta1 of the attribution predictor (SGQN: aux_beta)."""
    sgqn_update_every: int = param(2, gt=0)
    """Take an attribution-predictor step every this many updates (SGQN: aux_update_freq)."""
    overlay_source: str = param("photos", choices=OVERLAY_SOURCES)
    """Overlay images without `overlay_dir`: "photos" (offline, fresh crops per sample) or "procedural"."""
    overlay_dir: str = param("", path=True)
    """Folder of overlay images at any depth (Places365: paper-comparable numbers); overrides `overlay_source`."""
    overlay_pool: int = param(1000, gt=0)
    """Overlay images drawn once from `overlay_dir` or the procedural source; each overlay samples from them."""

    def check_data(self) -> None:
        check_overlay_dir(self.overlay_dir)


# ----- saliency ------------------------------------------------------------------------------------------------


@contextmanager
def guided_relus(*modules: nn.Module) -> Iterator[None]:
    """Inside: every `nn.ReLU` of `modules` passes back only the positive part of the gradient at its output (guided
    backpropagation; the ReLU's own backward then zeroes where its input was negative)."""

    def guide(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        if output.requires_grad:
            output.register_hook(lambda grad: grad.clamp(min=0))

    handles = [m.register_forward_hook(guide) for module in modules for m in module.modules() if isinstance(m, nn.ReLU)]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def guided_backprop(trunk: nn.Module, critic: nn.Module, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
    """`(B, C, H, W)` float32: the guided-backpropagation attribution of Q1(obs, action) to each pixel value (0-255)."""
    pixels = obs.detach().float().requires_grad_()
    with guided_relus(trunk, critic):
        q1, _ = critic(trunk(pixels), action.detach())
    (attribution,) = torch.autograd.grad(q1.sum(), pixels)
    return attribution


def attribution_mask(attribution: torch.Tensor, quantile: float) -> torch.Tensor:
    """Boolean `(B, C, H, W)`: per sample and frame of the stack, the pixels whose largest |attribution| over the
    frame's R, G, B is at least the frame's `quantile` quantile; all three channels of a pixel alike."""
    batch, channels, height, width = attribution.shape
    strength = attribution.abs().view(batch, channels // 3, 3, height, width).amax(dim=2)  # (B, k, H, W)
    threshold = torch.quantile(strength.flatten(2), quantile, dim=2)  # (B, k)
    keep = strength >= threshold[..., None, None]
    return keep[:, :, None].expand(batch, channels // 3, 3, height, width).reshape(batch, channels, height, width)


def masked_view(obs: torch.Tensor, mask: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Float `obs` where `mask` keeps it, elsewhere one value drawn uniformly between the batch's min and max."""
    obs = obs.float()
    low, high = obs.min(), obs.max()
    fill = low + (high - low) * torch.rand((), generator=generator, device=obs.device)
    return torch.where(mask, obs, fill)


def consistency_loss(q: tuple[torch.Tensor, torch.Tensor], q_masked: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """sum_i mean (Q_i(o) - Q_i(o_m))^2 (gradient through both)."""
    return F.mse_loss(q[0], q_masked[0]) + F.mse_loss(q[1], q_masked[1])


class AttributionDecoder(nn.Module):
    """SGQN's `AttributionDecoder`, for any side: (features, action) -> one logit per pixel and channel."""

    def __init__(
        self, feature_dim: int, action_dim: int, channels: int, side: int, bf16: bool, channels_last: bool
    ) -> None:
        super().__init__()
        self.base = math.ceil(side / 4)
        self.linear = nn.Linear(feature_dim + action_dim, 32 * self.base * self.base)
        self.convs = nn.Sequential(
            nn.ReLU(), nn.Conv2d(32, 128, 3, padding=1), nn.Upsample(size=math.ceil(side / 2)),
            nn.ReLU(), nn.Conv2d(128, 64, 3, padding=1), nn.Upsample(size=side),
            nn.ReLU(), nn.Conv2d(64, channels, 3, padding=1),
        )
        self.fast = FastPath(bf16, channels_last)
        self.fast.lay_out(self.convs)

    def forward(self, features: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        x = self.linear(torch.cat([features, action], dim=1)).view(-1, 32, self.base, self.base)
        return self.fast.run(self.convs, x)


class SGQN(SAC):
    """SAC on DrQ's shifts with SGQN's saliency consistency and attribution predictor (module docstring)."""

    cfg: SGQNConfig

    def __init__(
        self, obs_shape: tuple[int, int, int], action_dim: int, cfg: SGQNConfig, device: torch.device, seed: int
    ) -> None:
        super().__init__(obs_shape, action_dim, cfg, device, seed)
        channels, side, _ = obs_shape
        self.decoder = AttributionDecoder(
            self.projection_dim, action_dim, channels, side, cfg.bf16, cfg.channels_last
        ).to(device)
        self.attribution_optimizer = torch.optim.Adam(
            self.attribution_parameters(), lr=cfg.sgqn_lr, betas=(cfg.sgqn_beta1, 0.999), fused=cfg.fast_kernels
        )
        self.overlays = OverlayPool(cfg.overlay_dir, cfg.overlay_source, cfg.overlay_pool, side, self.generator, device)

    def attribution_parameters(self) -> list[nn.Parameter]:
        """What the attribution optimizer steps: trunk, critic projection and decoder (SGQN's
        `attribution_predictor.parameters()`)."""
        return [*self.trunk.parameters(), *self.critic.projection.parameters(), *self.decoder.parameters()]

    def predict_attribution(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """Logits `(B, C, H, W)` of the mask, from the critic's trunk and projection and the decoder."""
        return self.decoder(self.critic.projection(self.trunk(obs)), action)

    def mask(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """The critic's saliency mask of `(obs, action)` at `sgqn_quantile`."""
        return attribution_mask(guided_backprop(self.trunk, self.critic, obs, action), self.cfg.sgqn_quantile)

    def update(self, batch: dict[str, torch.Tensor], step: int | None = None) -> Metrics:
        """Shift `obs` then `next_obs` (`sample_drq`), SAC's update on the shifted views (with the consistency term),
        and every `sgqn_update_every` updates (by `step` when given, as SGQN's `step % aux_update_freq`) an
        attribution-predictor step."""
        batch = {key: value.to(self.device, non_blocking=True) for key, value in batch.items()}
        pad = self.cfg.shift_pad
        obs = random_shift(batch["obs"], pad=pad, generator=self.generator)
        views = batch | {"obs": obs, "next_obs": random_shift(batch["next_obs"], pad=pad, generator=self.generator)}
        metrics = super().update(views, step)
        if (self.updates if step is None else step) % self.cfg.sgqn_update_every == 0:
            metrics |= self.update_attribution(views["obs"], views["action"])
        return metrics

    def update_critic(self, batch: dict[str, torch.Tensor]) -> tuple[Metrics, torch.Tensor, torch.Tensor]:
        cfg = self.cfg
        target = self.td_target(batch)
        obs, action = batch["obs"], batch["action"]
        if not cfg.sgqn_consistency:
            features = self.trunk(obs)
            loss = self.critic_loss(features, action, target)
            metrics: Metrics = {}
        else:
            masked = masked_view(obs, self.mask(obs, action), self.generator)
            both = self.trunk(torch.cat([obs.float(), masked]))  # one pass: the networks treat samples alike
            features, masked_features = both.chunk(2)
            q, q_masked = self.critic(features, action), self.critic(masked_features, action)
            consistency = consistency_loss(q, q_masked)
            loss = F.mse_loss(q[0], target) + F.mse_loss(q[1], target) + cfg.sgqn_consistency_weight * consistency
            metrics = {"consistency_loss": consistency.detach()}
        self.critic_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.critic_optimizer.step()
        return metrics | {"critic_loss": loss.detach(), "q_target": target.mean().detach()}, features, obs

    def update_attribution(self, obs: torch.Tensor, action: torch.Tensor) -> Metrics:
        mask = self.mask(obs, action)  # of the critic after this update's step, as SGQN
        overlaid = random_overlay(obs.float(), self.overlays.draw(len(obs), self.generator))
        logits = self.predict_attribution(overlaid, action.detach())
        loss = F.binary_cross_entropy_with_logits(logits, mask.float())
        self.attribution_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.attribution_optimizer.step()
        return {"attribution_loss": loss.detach(), "mask_kept": mask.float().mean()}

    def modules(self) -> dict[str, torch.nn.Module | torch.optim.Optimizer]:
        return super().modules() | {"decoder": self.decoder, "attribution_optimizer": self.attribution_optimizer}
