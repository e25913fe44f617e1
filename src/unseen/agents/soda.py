"""SODA (Hansen & Wang, 2021) as DMControl-GB implements it (`src/algorithms/soda.py`, `src/algorithms/modules.py`
`SODAMLP`, `SODAPredictor`, `src/utils.py` `ReplayBuffer.sample_soda`, `src/augmentations.py` `random_overlay`,
`scripts/soda.sh`, `src/arguments.py`): RAD plus a representation that maps overlaid views onto clean ones.

The RL part is RAD's (random crops of frames rendered larger, `agents.rad`). Every `soda_update_every` updates, after
the SAC updates, one SODA step on a *separate* batch of `soda_batch_size` observations (DMControl-GB's `sample_soda`;
the trainer passes it as `batch["aux_obs"]`, `AgentConfig.aux_batch`), each cropped twice at random, the second crop
overlaid with a picture at alpha 0.5:
    x = crop(o),   x~ = overlay(crop(o)) = 0.5 x' + 0.5 image
    z  = h(g(f(x~)))                   online: conv trunk f (the critic's), projection g, predictor h
    z' = g'(f'(x))                     target: EMA copies f', g' (no gradient)
    L_SODA = || z / ||z|| - z' / ||z'|| ||^2   (mean over batch and dimensions, DMControl-GB's `F.mse_loss`)
g and h are DMControl-GB's `SODAMLP`s: Linear -> BatchNorm1d -> ReLU -> Linear, `projection_dim` wide. The SODA
optimizer (Adam, lr `soda_lr` = 3e-4 of scripts/soda.sh, betas (0.9, 0.999)) steps f, g and h; then
    theta' <- soda_tau * theta + (1 - soda_tau) * theta'    (soda_tau = 0.005; parameters only, as `soft_update_params`)
for f' and g'. The target's BatchNorm runs on batch statistics in the step, as there (its running statistics are its
own and are not averaged).

BatchNorm mode. DMControl-GB's `SODA.train(training)` switches `self.soda_predictor`, an attribute that never exists,
so its predictor never leaves training mode: any use of it outside the update normalises with the statistics of
whatever batch it is given (and a single observation fails). unseen keeps g, h and the target in eval mode (running
statistics) everywhere but inside the SODA step. Acting never reads the predictor (the actor sees the trunk through its
own projection), so returns are the same either way; what differs is any read of the predictor outside training.

Where unseen differs from DMControl-GB: without a separate batch (an `update` called on a replay batch alone) the
step uses the batch's own `obs`; the target trunk starts equal to the online trunk (DMControl-GB's `SODAPredictor`
re-initialises the shared trunk after the critic's target copied it, so its target trunks start elsewhere); the
target's predictor h', never read there, is not kept; the overlay pictures are offline photographs or a pool
(`agents.overlays`).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from unseen.agents.base import Metrics
from unseen.agents.overlays import OverlayPool, check_overlay_dir
from unseen.agents.rad import RAD, RADConfig
from unseen.augment import random_overlay
from unseen.envs.sources import OVERLAY_SOURCES
from unseen.nets import ConvTrunk, orthogonal_init
from unseen.schema import param


@dataclass
class SODAConfig(RADConfig):
    """RAD's fields and SODA's auxiliary step (DMControl-GB's `aux_*` and `soda_*` arguments, scripts/soda.sh)."""

    soda_lr: float = param(3e-4, gt=0)
    """Adam learning rate of the SODA step (DMControl-GB: aux_lr, 3e-4 in scripts/soda.sh)."""
    soda_beta1: float = param(0.9, ge=0, lt=1)
    """Adam beta1 of the SODA step (DMControl-GB: aux_beta)."""
    soda_update_every: int = param(2, gt=0)
    """Take a SODA step every this many updates (DMControl-GB: aux_update_freq)."""
    soda_batch_size: int = param(256, gt=0)
    """Observations in the SODA step's own replay batch (DMControl-GB: soda_batch_size)."""
    soda_tau: float = param(0.005, ge=0, le=1)
    """EMA rate of the SODA target trunk and projection (DMControl-GB: soda_tau)."""
    overlay_source: str = param("photos", choices=OVERLAY_SOURCES)
    """Overlay images without `overlay_dir`: "photos" (offline, fresh crops per sample) or "procedural"."""
    overlay_dir: str = param("", path=True)
    """Folder of overlay images at any depth (Places365: paper-comparable numbers); overrides `overlay_source`."""
    overlay_pool: int = param(1000, gt=0)
    """Overlay images drawn once from `overlay_dir` or the procedural source; each overlay samples from them."""

    @property
    def aux_batch(self) -> tuple[int, int]:
        return self.soda_batch_size, self.soda_update_every

    def check_data(self) -> None:
        check_overlay_dir(self.overlay_dir)


class SODAMLP(nn.Sequential):
    """DMControl-GB's `SODAMLP`: Linear -> BatchNorm1d -> ReLU -> Linear, orthogonal init."""

    def __init__(self, in_dim: int, hidden_dim: int, out_dim: int) -> None:
        super().__init__(
            nn.Linear(in_dim, hidden_dim), nn.BatchNorm1d(hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, out_dim)
        )
        self.apply(orthogonal_init)


class SODAHead(nn.Module):
    """SODA's projection g (trunk features -> `dim`) and predictor h (`dim` -> `dim`)."""

    def __init__(self, feature_dim: int, dim: int) -> None:
        super().__init__()
        self.projection = SODAMLP(feature_dim, dim, dim)
        self.predictor = SODAMLP(dim, dim, dim)


def soda_loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error between the L2-normalised rows of `prediction` and `target`."""
    return F.mse_loss(F.normalize(prediction, p=2, dim=1), F.normalize(target, p=2, dim=1))


@torch.no_grad()
def ema_(target: nn.Module, online: nn.Module, tau: float) -> None:
    """`t <- tau * p + (1 - tau) * t` for every parameter (not the buffers), DMControl-GB's `soft_update_params`."""
    targets: list[torch.Tensor] = list(target.parameters())
    scaled = list(torch._foreach_mul(list(online.parameters()), tau))
    torch._foreach_mul_(targets, 1 - tau)
    torch._foreach_add_(targets, scaled)


class SODA(RAD):
    """RAD + SODA's EMA-target predictor on overlaid views (module docstring)."""

    cfg: SODAConfig

    def __init__(
        self, obs_shape: tuple[int, int, int], action_dim: int, cfg: SODAConfig, device: torch.device, seed: int
    ) -> None:
        super().__init__(obs_shape, action_dim, cfg, device, seed)
        assert isinstance(self.trunk, ConvTrunk)
        self.soda = SODAHead(self.trunk.out_dim, self.projection_dim).to(device)
        self.soda_trunk_target = copy.deepcopy(self.trunk).requires_grad_(False)
        self.soda_projection_target = copy.deepcopy(self.soda.projection).requires_grad_(False)
        self.soda_eval()
        self.soda_optimizer = torch.optim.Adam(
            self.soda_parameters(), lr=cfg.soda_lr, betas=(cfg.soda_beta1, 0.999), fused=cfg.fast_kernels
        )
        self.overlays = OverlayPool(
            cfg.overlay_dir, cfg.overlay_source, cfg.overlay_pool, self.crop, self.generator, device
        )

    def soda_parameters(self) -> list[nn.Parameter]:
        """What the SODA optimizer steps: the conv trunk, SODA's projection and predictor."""
        return [*self.trunk.parameters(), *self.soda.parameters()]

    def soda_eval(self) -> None:
        """BatchNorm on running statistics: SODA's modules outside the SODA step."""
        self.soda.eval()
        self.soda_projection_target.eval()

    @contextmanager
    def soda_training(self) -> Iterator[None]:
        """BatchNorm on batch statistics (online and target, as DMControl-GB) inside the SODA step only."""
        self.soda.train()
        self.soda_projection_target.train()
        try:
            yield
        finally:
            self.soda_eval()

    def update(self, batch: dict[str, torch.Tensor], step: int | None = None) -> Metrics:
        """RAD's update, then every `soda_update_every` updates (by `step` when given, as DMControl-GB's
        `step % aux_update_freq`) a SODA step on `batch["aux_obs"]` (else `obs`)."""
        aux = batch.get("aux_obs", batch["obs"])
        metrics = super().update({key: value for key, value in batch.items() if key != "aux_obs"}, step)
        if (self.updates if step is None else step) % self.cfg.soda_update_every == 0:
            metrics |= self.update_soda(aux.to(self.device, non_blocking=True))
        return metrics

    def soda_views(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The clean crop and the overlaid crop of each observation (DMControl-GB's order: clean crop first)."""
        clean = self.augment(obs)
        overlaid = self.augment(obs)
        images = self.overlays.draw(len(obs), self.generator)
        return clean, random_overlay(overlaid.float(), images)  # in float, as DMControl-GB's overlay returns it

    def update_soda(self, obs: torch.Tensor) -> Metrics:
        clean, overlaid = self.soda_views(obs)
        with self.soda_training():
            prediction = self.soda.predictor(self.soda.projection(self.trunk(overlaid).float()))
            with torch.no_grad():
                target = self.soda_projection_target(self.soda_trunk_target(clean).float())
            loss = soda_loss(prediction, target)
        self.soda_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.soda_optimizer.step()
        ema_(self.soda_trunk_target, self.trunk, self.cfg.soda_tau)
        ema_(self.soda_projection_target, self.soda.projection, self.cfg.soda_tau)
        return {"soda_loss": loss.detach()}

    def modules(self) -> dict[str, torch.nn.Module | torch.optim.Optimizer]:
        return super().modules() | {
            "soda": self.soda,
            "soda_trunk_target": self.soda_trunk_target,
            "soda_projection_target": self.soda_projection_target,
            "soda_optimizer": self.soda_optimizer,
        }
