"""RAD (Laskin et al., 2020) as DMControl-GB implements it (`src/algorithms/rad.py`, `src/utils.py`
`ReplayBuffer.sample`, `src/augmentations.py` `random_crop`, `src/arguments.py`): SAC on random crops.

Frames are rendered larger than the networks see them, `S` pixels a side, and every update crops each of `obs` and
`next_obs` to `s = round(crop_fraction * S)` at its own random position (DMControl-GB: S = 100, s = 84):
    o~ = o[:, t : t + s, l : l + s],   t, l ~ U{0, ..., S - s - 1}
(DMControl-GB's offsets never reach S - s: its window never touches the last row or column). The critic learns from
the crop of `obs`, the TD target is computed on the crop of `next_obs`, the actor on the critic's features (SAC).
Acting, evaluation and latents see the centre crop, offset (S - s) // 2 (DMControl-GB's `CenterCrop` in the
encoder: 8 of 100). Everything else, hyperparameters included, is `SAC`.

The `preset` hook renders at `round(side / crop_fraction)` for the preset's side: 100 for 84 (paper), 76 for 64
(`cpu`, `smoke`): the networks see what every other method of the preset sees, cropped from a frame 1/0.84 as wide.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from unseen.agents.sac import SAC, SACConfig
from unseen.augment import random_crop
from unseen.errors import UserError
from unseen.schema import param

if TYPE_CHECKING:
    from unseen.config import EnvConfig, RunConfig


@dataclass
class RADConfig(SACConfig):
    """SAC's fields and the random crop's size."""

    crop_fraction: float = param(0.84, gt=0, le=1)
    """Side of the random crop as a fraction of the rendered side, rounded to pixels (DMControl-GB: 84 of 100)."""

    def crop_side(self, side: int) -> int:
        """The side of the crop of a `side x side` frame."""
        return max(1, round(self.crop_fraction * side))

    def check(self, env: EnvConfig) -> None:
        super().check(env)
        crop = self.crop_side(env.image_size)
        smallest = 4 * self.encoder_layers - 1
        if crop < smallest:
            raise UserError(
                f"the {crop}x{crop} crop of env.image_size={env.image_size} is too small for {self.encoder_layers} "
                f"conv layers; raise env.image_size or agent.crop_fraction to give at least {smallest} pixels"
            )


def preset(cfg: RunConfig) -> None:
    """RAD's frames: rendered at the preset's side over `crop_fraction` (DMControl-GB: 100 for 84)."""
    assert isinstance(cfg.agent, RADConfig)
    cfg.env.image_size = round(cfg.env.image_size / cfg.agent.crop_fraction)


def centre_crop(obs: np.ndarray | torch.Tensor, side: int) -> np.ndarray | torch.Tensor:
    """The central `side x side` window of `(..., H, W)` frames, top-left at (H - side) // 2 (DMControl-GB's
    `CenterCrop`); frames of that side already pass unchanged."""
    height, width = obs.shape[-2:]
    top, left = (height - side) // 2, (width - side) // 2
    return obs[..., top:top + side, left:left + side]


class RAD(SAC):
    """SAC whose critic and TD target see random crops; acting and latents see the centre crop."""

    cfg: RADConfig

    def __init__(
        self, obs_shape: tuple[int, int, int], action_dim: int, cfg: RADConfig, device: torch.device, seed: int
    ) -> None:
        channels, height, _ = obs_shape
        self.crop = cfg.crop_side(height)
        super().__init__((channels, self.crop, self.crop), action_dim, cfg, device, seed)

    def augment(self, obs: torch.Tensor) -> torch.Tensor:
        """A random crop; frames already of the crop's side pass unchanged (as in DMControl-GB)."""
        if obs.shape[-1] == self.crop:
            return obs
        return random_crop(obs, size=self.crop, generator=self.generator, last_window=False)

    def augment_next(self, next_obs: torch.Tensor) -> torch.Tensor:
        return self.augment(next_obs)

    def act(self, obs: np.ndarray, deterministic: bool) -> np.ndarray:
        return super().act(np.ascontiguousarray(centre_crop(obs, self.crop)), deterministic)

    def latents(self, obs: torch.Tensor) -> torch.Tensor:
        cropped = centre_crop(obs, self.crop)
        assert isinstance(cropped, torch.Tensor)
        return super().latents(cropped)
