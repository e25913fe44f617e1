"""Batched image augmentations: pure functions of a tensor and an explicit `torch.Generator`.

Every function takes `x` of shape `(B, C, H, W)` (uint8 or float) and returns a tensor of the same shape
and dtype. The random choices are drawn once per sample from `generator`, so the same generator state
gives the same output.
"""

from __future__ import annotations

import torch


def random_shift(x: torch.Tensor, *, pad: int = 4, generator: torch.Generator | None = None) -> torch.Tensor:
    """DrQ's random shift: replicate-pad by `pad` pixels, then crop back to `H x W` at a random offset.

    One integer offset per sample, shared by all channels (so every frame of a stack moves together).
    Replicate padding is the same as clamping the source index to the border, so no padded copy is made.
    """
    if pad == 0:
        return x
    batch, channels, height, width = x.shape
    offsets = torch.randint(0, 2 * pad + 1, (batch, 2), generator=generator, device=x.device) - pad
    rows = (torch.arange(height, device=x.device) + offsets[:, :1]).clamp_(0, height - 1)  # (B, H)
    cols = (torch.arange(width, device=x.device) + offsets[:, 1:]).clamp_(0, width - 1)  # (B, W)
    flat_index = (rows[:, :, None] * width + cols[:, None, :]).view(batch, 1, height * width)
    shifted = x.reshape(batch, channels, height * width).gather(2, flat_index.expand(batch, channels, -1))
    return shifted.view(batch, channels, height, width)
