"""Batched image augmentations: pure functions of a tensor and an explicit `torch.Generator`.

Every function takes `x` of shape `(B, C, H, W)`, `C = 3k` (k stacked RGB frames), pixel values in
[0, 255] as uint8 or float, and returns a tensor of the same shape and dtype (`random_crop` alone changes
the side, to `size`). Integer results are rounded and clamped to [0, 255]. The random choices are drawn
per sample from `generator`, shared by the frames of a stack, with batched tensor operations (no loop
over samples); the same generator state gives the same output. Overlays take their images as a tensor,
so they stay pure: the caller draws them from an image source (`unseen.envs.sources`).

`VIEWS` names the augmentations that CG2A's augmentation set can hold, with one calling convention.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch.nn import functional as F


def random_shift(x: torch.Tensor, *, pad: int = 4, generator: torch.Generator | None = None) -> torch.Tensor:
    """DrQ's random shift: replicate-pad by `pad` pixels, then crop back to `H x W` at a random offset.

    One integer offset per sample, shared by all channels (so every frame of a stack moves together).
    Replicate padding is the same as clamping the source index to the border, so no padded copy is made.
    """
    if pad == 0:
        return x
    batch, _, height, width = x.shape
    offsets = torch.randint(0, 2 * pad + 1, (batch, 2), generator=generator, device=x.device) - pad
    rows = (torch.arange(height, device=x.device) + offsets[:, :1]).clamp_(0, height - 1)  # (B, H)
    cols = (torch.arange(width, device=x.device) + offsets[:, 1:]).clamp_(0, width - 1)  # (B, W)
    return _window(x, rows, cols)


def random_shift_bilinear(x: torch.Tensor, *, pad: int = 4, generator: torch.Generator | None = None) -> torch.Tensor:
    """DrQ-v2's random shift (`RandomShiftsAug` in its `drqv2.py`): replicate-pad by `pad`, then resample the
    `H x W` frame with bilinear `grid_sample` at a grid moved by a random whole number of pixels per sample.

    The grid points sit on the padded image's pixel centres (align_corners=False) and move by multiples of one
    pixel, so this is `random_shift` with bilinear weights that are 0 or 1 up to float rounding (tested: the same
    generator state gives the same shifts); the computation is DrQ-v2's. Square frames only, as there.
    """
    batch, _, height, width = x.shape
    if height != width:
        raise ValueError(f"the bilinear random shift takes square frames, got {height}x{width}")
    if pad == 0:
        return x
    side = height + 2 * pad
    padded = F.pad(_float(x), (pad, pad, pad, pad), mode="replicate")
    centres = torch.linspace(-1.0 + 1.0 / side, 1.0 - 1.0 / side, side, device=x.device, dtype=padded.dtype)[:height]
    base = torch.stack([centres.expand(height, height), centres[:, None].expand(height, height)], dim=-1)  # (H, W, xy)
    # (row, column) offsets drawn as `random_shift` draws them, so one generator state gives both the same shifts;
    # the grid's last axis is (x, y), column first.
    shift = torch.randint(0, 2 * pad + 1, (batch, 2), generator=generator, device=x.device).flip(1)
    grid = base + shift.to(padded.dtype).view(batch, 1, 1, 2) * (2.0 / side)
    return _like(F.grid_sample(padded, grid, mode="bilinear", padding_mode="zeros", align_corners=False), x)


def random_crop(
    x: torch.Tensor, *, size: int, generator: torch.Generator | None = None, last_window: bool = True
) -> torch.Tensor:
    """RAD's / DMControl-GB's random crop: a `size x size` window at a random position, one per sample.

    The output is `(B, C, size, size)`: DMControl-GB renders 100x100 and crops to 84x84. The window's top-left
    corner is uniform over the `H - size + 1` rows (and columns) it can take; `last_window=False` leaves out the
    last of them, as DMControl-GB's `augmentations.random_crop` does (its offsets come from `random_(0, H - size)`):
    for 100 -> 84, offsets 0..15 and never 16.
    """
    batch, _, height, width = x.shape
    if not 0 < size <= min(height, width):
        raise ValueError(f"crop size {size} must lie in [1, {min(height, width)}]")
    rows, cols = (max(side - size + last_window, 1) for side in (height, width))
    top = torch.randint(0, rows, (batch, 1), generator=generator, device=x.device)
    left = torch.randint(0, cols, (batch, 1), generator=generator, device=x.device)
    span = torch.arange(size, device=x.device)
    return _window(x, top + span, left + span)


def _window(x: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """`out[b, c, i, j] = x[b, c, rows[b, i], cols[b, j]]`, one gather for the whole batch."""
    batch, channels, _, width = x.shape
    flat_index = (rows[:, :, None] * width + cols[:, None, :]).view(batch, 1, -1)
    picked = x.reshape(batch, channels, -1).gather(2, flat_index.expand(batch, channels, -1))
    return picked.view(batch, channels, rows.shape[1], cols.shape[1])


def _float(x: torch.Tensor) -> torch.Tensor:
    return x if x.is_floating_point() else x.float()


def _like(y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Float pixel values `y` (a fresh tensor, changed in place) in the dtype of `x`: rounded and clamped for
    integers."""
    if x.is_floating_point():
        return y.to(x.dtype)
    return y.round_().clamp_(0, 255).to(x.dtype)


def _frames(x: torch.Tensor) -> torch.Tensor:
    """`(B, 3k, H, W)` seen as `(B, k, 3, H, W)`."""
    batch, channels, height, width = x.shape
    if channels % 3:
        raise ValueError(f"expected stacked RGB frames (3k channels), got {channels} channels")
    return x.view(batch, channels // 3, 3, height, width)


def random_conv(x: torch.Tensor, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """Random convolution (Lee et al., 2020) as DMControl-GB implements it (docs/methods.md lets us choose).

    One random 3x3 RGB-to-RGB kernel per sample, weights ~ N(0, 1) (DMControl-GB's, not N(0, 1/fan_in)),
    shared by the frames of its stack; input scaled to [0, 1], replicate-padded by 1, output
    `sigmoid(conv) * 255`. All samples at once as one grouped convolution (groups = batch).
    """
    batch, channels, height, width = x.shape
    frames = channels // 3
    weights = torch.randn(batch * 3, 3, 3, 3, generator=generator, device=x.device)
    stacks = (_float(_frames(x)) / 255.0).transpose(0, 1).reshape(frames, batch * 3, height, width)
    out = torch.sigmoid(F.conv2d(F.pad(stacks, (1, 1, 1, 1), mode="replicate"), weights.to(stacks.dtype), groups=batch))
    out = (out * 255.0).view(frames, batch, 3, height, width).transpose(0, 1).reshape(batch, channels, height, width)
    return _like(out, x)


def random_overlay(x: torch.Tensor, images: torch.Tensor, *, mu: float | torch.Tensor = 0.5) -> torch.Tensor:
    """Random overlay (DMControl-GB; CG2A Eq. 11 as docs/methods.md writes it): `(1 - mu) * x + mu * image`.

    `images` is `(B, 3, H, W)`, one picture per sample, laid over every frame of its stack. `mu` is a number
    or one value per sample `(B,)`; CG2A's overlay uses `mu = 0.5`.
    """
    frames = _float(_frames(x))  # (B, k, 3, H, W)
    mu = torch.as_tensor(mu, device=x.device, dtype=frames.dtype).reshape(-1, 1, 1, 1, 1)
    mixed = (1 - mu) * frames
    mixed += mu * images[:, None].to(frames.dtype)  # one picture, broadcast over the frames
    return _like(mixed.view(x.shape), x)


def overlay_s(
    x: torch.Tensor,
    images: torch.Tensor,
    *,
    low: float = 0.05,
    high: float = 0.2,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """CG2A's overlay-S: a random overlay with a small `mu ~ U(low, high)` per sample (ours, docs/methods.md)."""
    mu = low + (high - low) * torch.rand(x.shape[0], generator=generator, device=x.device)
    return random_overlay(x, images, mu=mu)


def cutout(
    x: torch.Tensor, *, min_frac: float = 10 / 84, max_frac: float = 30 / 84, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Cutout (DeVries & Taylor, 2017), RAD's sizes: zero one rectangle per sample, in every frame.

    Height and width of the rectangle are drawn independently between `min_frac` and `max_frac` of the
    side (RAD: 10 to 30 pixels of 84), its position uniformly so that it lies inside the image.
    """
    batch, _, height, width = x.shape
    sides = torch.tensor([height, width], device=x.device)
    frac = min_frac + (max_frac - min_frac) * torch.rand(batch, 2, generator=generator, device=x.device)
    extent = (frac * sides).round().long().clamp_(min=1)
    start = (torch.rand(batch, 2, generator=generator, device=x.device) * (sides - extent + 1)).long()
    rows = torch.arange(height, device=x.device)
    cols = torch.arange(width, device=x.device)
    in_rows = (rows >= start[:, :1]) & (rows < start[:, :1] + extent[:, :1])  # (B, H)
    in_cols = (cols >= start[:, 1:]) & (cols < start[:, 1:] + extent[:, 1:])  # (B, W)
    return x.masked_fill((in_rows[:, :, None] & in_cols[:, None, :])[:, None], 0)


# RGB -> YIQ (NTSC); the hue rotation turns the (I, Q) plane.
_YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
_GRAY = _YIQ[0]


def color_jitter(
    x: torch.Tensor,
    *,
    brightness: float = 0.4,
    contrast: float = 0.4,
    saturation: float = 0.4,
    hue: float = 0.5,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Colour jitter with RAD's strengths, one draw per sample shared by its frames, in a fixed order.

    Brightness `x * b`, contrast `(x - mean gray) * c + mean gray` (mean per frame), saturation
    `(x - gray) * s + gray`, with `b, c, s ~ U(1 - strength, 1 + strength)`, then a hue rotation by
    `2 pi h`, `h ~ U(-hue, hue)`, in the YIQ colour plane (a linear stand-in for torchvision's HSV hue
    shift); values clamped to [0, 1] after each step, as torchvision does.
    """
    frames = _float(_frames(x)) / 255.0  # (B, k, 3, H, W)
    batch = x.shape[0]

    def factor(strength: float) -> torch.Tensor:
        return 1 + strength * (2 * torch.rand(batch, 1, 1, 1, 1, generator=generator, device=x.device) - 1)

    b, c, s = factor(brightness), factor(contrast), factor(saturation)
    angle = 2 * math.pi * hue * (2 * torch.rand(batch, generator=generator, device=x.device) - 1)
    gray_weights = _GRAY.to(frames).view(1, 1, 3, 1, 1)
    frames = (frames * b).clamp(0, 1)
    mean = (frames * gray_weights).sum(2, keepdim=True).mean((3, 4), keepdim=True)
    frames = ((frames - mean) * c + mean).clamp(0, 1)
    gray = (frames * gray_weights).sum(2, keepdim=True)
    frames = ((frames - gray) * s + gray).clamp(0, 1)
    cos, sin = torch.cos(angle), torch.sin(angle)
    rotation = torch.zeros(batch, 3, 3, device=x.device, dtype=frames.dtype)
    rotation[:, 0, 0] = 1
    rotation[:, 1, 1], rotation[:, 1, 2], rotation[:, 2, 1], rotation[:, 2, 2] = cos, -sin, sin, cos
    yiq = _YIQ.to(frames)
    matrix = torch.linalg.inv(yiq) @ rotation @ yiq  # (B, 3, 3): RGB -> YIQ, rotate, back
    frames = torch.einsum("bij,bkjhw->bkihw", matrix, frames).clamp(0, 1)
    return _like(frames.reshape(x.shape) * 255.0, x)


def mixup(x: torch.Tensor, *, max_weight: float = 0.5, generator: torch.Generator | None = None) -> torch.Tensor:
    """MixUp (Zhang et al., 2018) of observations: `(1 - lam) * x_i + lam * x_j`, `j` a random partner.

    The partner is a random permutation of the batch and `lam ~ U(0, max_weight)` per sample, so every
    sample stays the larger part of its mixture (its action and TD target are kept; ours, the paper does
    not say how it mixes).
    """
    partner = torch.randperm(x.shape[0], generator=generator, device=x.device)
    lam = max_weight * torch.rand(x.shape[0], 1, 1, 1, generator=generator, device=x.device)
    xf = _float(x)
    return _like((1 - lam) * xf + lam * xf[partner], x)


View = Callable[[torch.Tensor, torch.Tensor | None, torch.Generator], torch.Tensor]
"""An augmentation by name: `(x, overlay images or None, generator) -> augmented x`."""


def given(images: torch.Tensor | None) -> torch.Tensor:
    """The overlay images of a view in `USES_IMAGES`, which cannot do without them."""
    if images is None:
        raise ValueError("the overlay augmentations need overlay images; none were given")
    return images


VIEWS: dict[str, View] = {
    "conv": lambda x, images, g: random_conv(x, generator=g),
    "overlay": lambda x, images, g: random_overlay(x, given(images)),
    "overlay_s": lambda x, images, g: overlay_s(x, given(images), generator=g),
    "cutout": lambda x, images, g: cutout(x, generator=g),
    "color_jitter": lambda x, images, g: color_jitter(x, generator=g),
    "mixup": lambda x, images, g: mixup(x, generator=g),
}
USES_IMAGES = frozenset({"overlay", "overlay_s"})
"""The names in `VIEWS` that need overlay images."""
