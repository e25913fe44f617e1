"""Overlay images for the agents that train on overlaid views (SODA, SGQN): a pool drawn once from the image source.

DMControl-GB's `random_overlay` blends each observation with a Places365 picture at alpha 0.5. unseen's agents draw a
pool of `overlay_pool` pictures from `unseen.envs.sources.image_source` when they are built (the directory
`overlay_dir`, else the seeded procedural source; CG2A's convention) and pick one per sample from the agent's
generator: the pool is a function of the seed, so it is rebuilt, not checkpointed.
"""

from __future__ import annotations

from pathlib import Path

import torch

from unseen.envs.sources import image_source
from unseen.errors import UserError


def check_overlay_dir(overlay_dir: str) -> None:
    """A one-line error unless `overlay_dir` is empty or a directory."""
    if overlay_dir and not Path(overlay_dir).expanduser().is_dir():
        raise UserError(
            f"agent.overlay_dir={overlay_dir!r} is not a directory; pass a folder of images or leave it empty"
        )


class OverlayPool:
    """`size` overlay pictures `(size, 3, side, side)` uint8 on `device`, drawn once by `generator`."""

    def __init__(
        self, overlay_dir: str, size: int, side: int, generator: torch.Generator, device: torch.device
    ) -> None:
        source = image_source(overlay_dir or None)
        self.description = source.description
        self.images = source.batch(size, side, generator).to(device)

    def draw(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """`n` pictures picked uniformly with replacement, `(n, 3, side, side)` uint8."""
        pick = torch.randint(len(self.images), (n,), generator=generator, device=self.images.device)
        return self.images[pick]
