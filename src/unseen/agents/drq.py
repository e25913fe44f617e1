"""DrQ (Kostrikov et al., 2021) with K = M = 1: SAC whose critic and TD target see randomly shifted views.

Each of `obs` and `next_obs` gets its own random shift (replicate pad `shift_pad` = 4, random crop back to
the frame size), drawn from the agent's seeded generator. Everything else is `SAC`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from unseen.agents.sac import SAC, SACConfig
from unseen.augment import random_shift
from unseen.schema import param


@dataclass
class DrQConfig(SACConfig):
    """SAC's fields and the random shift's padding."""

    shift_pad: int = param(4, ge=0)
    """Padding (pixels) of the random shift augmentation (DrQ, SVEA, CG2A's tau_0)."""


class DrQ(SAC):
    """SAC + random shift of obs and next_obs."""

    cfg: DrQConfig

    def augment(self, obs: torch.Tensor) -> torch.Tensor:
        return random_shift(obs, pad=self.cfg.shift_pad, generator=self.generator)

    def augment_next(self, next_obs: torch.Tensor) -> torch.Tensor:
        return self.augment(next_obs)
