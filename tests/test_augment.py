"""Augmentations: shape and dtype kept, determinism under a generator, the random shift's exact semantics."""

from __future__ import annotations

import torch
from torch.nn import functional as F

from unseen.augment import random_shift


def images(batch=6, channels=9, size=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (batch, channels, size, size), generator=g, dtype=torch.uint8)


def test_random_shift_keeps_shape_and_dtype():
    for dtype in (torch.uint8, torch.float32):
        x = images().to(dtype)
        y = random_shift(x, pad=4, generator=torch.Generator().manual_seed(0))
        assert y.shape == x.shape and y.dtype == dtype


def test_random_shift_is_a_crop_of_the_replicate_padded_image_shared_by_all_channels():
    x = images(batch=20)
    y = random_shift(x, pad=2, generator=torch.Generator().manual_seed(1))
    padded = F.pad(x.float(), (2, 2, 2, 2), mode="replicate")
    size = x.shape[-1]
    offsets = set()
    for i in range(len(x)):
        matches = [
            (dy, dx)
            for dy in range(5)
            for dx in range(5)
            if torch.equal(padded[i, :, dy : dy + size, dx : dx + size], y[i].float())
        ]
        assert matches, f"sample {i} is not a crop of its padded image"
        offsets.add(matches[0])
    assert len(offsets) > 5  # offsets vary across the batch


def test_random_shift_is_reproducible_and_zero_pad_is_identity():
    x = images()
    a = random_shift(x, generator=torch.Generator().manual_seed(3))
    b = random_shift(x, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    assert torch.equal(random_shift(x, pad=0), x)
