"""Overlay images for the agents that train on overlaid views (CG2A, SODA, SGQN).

DMControl-GB's `random_overlay` blends each observation with a Places365 picture at alpha 0.5. unseen's agents draw a
fresh photograph crop per sample from `unseen.envs.sources.image_source` (`overlay_source=photos`, the default), or,
from a directory `overlay_dir` or the procedural source, a pool of `overlay_pool` pictures drawn when they are built,
one picked per sample from the agent's generator: the pool is a function of the seed, so it is rebuilt, not
checkpointed.
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
    """Overlay pictures `(n, 3, side, side)` uint8 on `device`: fresh from the source for every sample when the source
    is cheap to draw from (the photographs, as DMControl-GB draws a new Places365 crop per sample), else picked from
    `size` pictures drawn once by `generator` (a directory, the procedural source)."""

    def __init__(
        self, overlay_dir: str, source_name: str, size: int, side: int, generator: torch.Generator,
        device: torch.device,
    ) -> None:
        source = image_source(overlay_dir or None, source_name)
        self.description = source.description
        self.side, self.device = side, device
        self.source = source if source.per_update else None
        self.images = None if source.per_update else source.batch(size, side, generator).to(device)

    def draw(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """`n` pictures: new ones from the source, or picked uniformly with replacement from the pool."""
        if self.images is None:
            assert self.source is not None
            return self.source.batch(n, self.side, generator).to(self.device)
        pick = torch.randint(len(self.images), (n,), generator=generator, device=self.images.device)
        return self.images[pick]
