"""Augmentations: shape and dtype kept, determinism under a generator, and each one's defining property."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from unseen.augment import (
    USES_IMAGES,
    VIEWS,
    color_jitter,
    cutout,
    mixup,
    overlay_s,
    random_conv,
    random_crop,
    random_overlay,
    random_shift,
)


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


def overlay_images(batch=6, size=12, seed=9):
    return images(batch, 3, size, seed)


@pytest.mark.parametrize("name", sorted(VIEWS))
@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
def test_every_view_keeps_shape_and_dtype_and_is_reproducible(name, dtype):
    x = images().to(dtype)
    pictures = overlay_images() if name in USES_IMAGES else None
    a = VIEWS[name](x, pictures, torch.Generator().manual_seed(4))
    b = VIEWS[name](x, pictures, torch.Generator().manual_seed(4))
    c = VIEWS[name](x, pictures, torch.Generator().manual_seed(5))
    assert a.shape == x.shape and a.dtype == dtype
    assert torch.equal(a, b)
    assert name == "overlay" or not torch.equal(a, c)  # the fixed-mu overlay draws nothing itself
    assert a.min() >= 0 and a.max() <= 255


def test_random_crop_is_a_window_of_the_image():
    x = images(batch=10, size=12)
    y = random_crop(x, size=8, generator=torch.Generator().manual_seed(0))
    assert y.shape == (10, 9, 8, 8) and y.dtype == x.dtype
    for i in range(10):
        assert any(torch.equal(x[i, :, r : r + 8, c : c + 8], y[i]) for r in range(5) for c in range(5))
    assert torch.equal(y, random_crop(x, size=8, generator=torch.Generator().manual_seed(0)))
    with pytest.raises(ValueError):
        random_crop(x, size=13)


def test_overlay_is_exactly_the_convex_mix_with_the_image():
    x = images().float()
    pictures = overlay_images().float()
    expected = (1 - 0.5) * x + 0.5 * pictures.repeat(1, 3, 1, 1)
    assert torch.equal(random_overlay(x, pictures), expected)
    mu = torch.linspace(0.05, 0.2, 6)
    expected = (1 - mu.view(-1, 1, 1, 1)) * x + mu.view(-1, 1, 1, 1) * pictures.repeat(1, 3, 1, 1)
    assert torch.equal(random_overlay(x, pictures, mu=mu), expected)


def test_overlay_s_draws_a_small_mu_per_sample():
    x = torch.zeros(50, 3, 4, 4)
    y = overlay_s(x, torch.full((50, 3, 4, 4), 100.0), generator=torch.Generator().manual_seed(0))
    mu = y[:, 0, 0, 0] / 100  # (1 - mu) * 0 + mu * 100
    assert torch.all(mu >= 0.05) and torch.all(mu <= 0.2) and mu.std() > 0.02
    assert torch.all(y == y[:, :1, :1, :1])  # one mu per sample


def test_random_conv_shares_its_kernel_across_the_frames_of_a_stack():
    frame = images(batch=4, channels=3)
    x = frame.repeat(1, 3, 1, 1)  # three identical frames per stack
    y = random_conv(x, generator=torch.Generator().manual_seed(0))
    assert torch.equal(y[:, 0:3], y[:, 3:6]) and torch.equal(y[:, 3:6], y[:, 6:9])


def test_random_conv_is_the_dmcontrol_gb_loop():
    x = images(batch=3).float()
    y = random_conv(x, generator=torch.Generator().manual_seed(2))
    g = torch.Generator().manual_seed(2)
    weights = torch.randn(3 * 3, 3, 3, 3, generator=g).view(3, 3, 3, 3, 3)
    for i in range(3):
        frames = F.pad(x[i].view(3, 3, 12, 12) / 255.0, (1, 1, 1, 1), mode="replicate")
        expected = torch.sigmoid(F.conv2d(frames, weights[i])) * 255.0
        torch.testing.assert_close(y[i], expected.reshape(9, 12, 12), rtol=1e-5, atol=1e-3)


def test_cutout_zeroes_one_rectangle_in_every_frame():
    x = images(batch=20, size=16).clamp(min=1)  # no zeros before
    y = cutout(x, generator=torch.Generator().manual_seed(0))
    for i in range(20):
        zero = y[i] == 0
        assert torch.equal(zero, zero[:1].expand_as(zero))  # the same rectangle in every channel
        rows, cols = zero[0].any(1).nonzero().flatten(), zero[0].any(0).nonzero().flatten()
        assert len(rows) >= 1 and len(cols) >= 1
        box = torch.zeros_like(zero[0])
        box[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1] = True
        assert torch.equal(zero[0], box)  # a filled rectangle
        assert torch.equal(y[i][~zero], x[i][~zero])  # untouched elsewhere


def test_mixup_is_a_convex_combination_with_another_sample():
    values = torch.arange(8, dtype=torch.float32) * 30  # sample i is the constant image 30 i
    x = values.view(8, 1, 1, 1).expand(8, 6, 5, 5).contiguous()
    y = mixup(x, generator=torch.Generator().manual_seed(0))
    for i in range(8):
        v = y[i].unique()
        assert len(v) == 1
        # v = (1 - lam) * x_i + lam * x_j for some partner j and lam in [0, 0.5]
        lams = [(v - values[i]) / (values[j] - values[i]) for j in range(8) if j != i]
        assert v == values[i] or any(0 <= lam <= 0.5 + 1e-6 for lam in lams)


def test_color_jitter_with_zero_strength_is_the_identity():
    x = images().float()
    y = color_jitter(x, brightness=0, contrast=0, saturation=0, hue=0, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(y, x, rtol=0, atol=1e-3)


def test_random_crop_follows_dmcgb_offsets_on_a_tiny_array():
    """`last_window=False` is DMControl-GB's `random_crop`: per sample the window `x[:, t:t+s, l:l+s]` with its row
    offset t and column offset l drawn from 0..S-s-1 (its windows are `view_as_windows` of NHWC, indexed
    [n, t, l]), written here with numpy's sliding windows."""
    import numpy as np

    batch, side, size = 400, 7, 4
    x = torch.arange(batch * 2 * side * side).reshape(batch, 2, side, side)  # every pixel unique
    y = random_crop(x, size=size, generator=torch.Generator().manual_seed(0), last_window=False)
    assert y.shape == (batch, 2, size, size) and y.dtype == x.dtype
    corner = (y[:, 0, 0, 0] - torch.arange(batch) * 2 * side * side).numpy()
    top, left = corner // side, corner % side
    windows = np.lib.stride_tricks.sliding_window_view(x.permute(0, 2, 3, 1).numpy(), (size, size), axis=(1, 2))
    np.testing.assert_array_equal(y.numpy(), windows[np.arange(batch), top, left])
    assert set(top) == set(left) == set(range(side - size))  # 0..S-s-1, never S-s
    whole = random_crop(x, size=size, generator=torch.Generator().manual_seed(0))
    corner = (whole[:, 0, 0, 0] - torch.arange(batch) * 2 * side * side).numpy()
    assert set(corner // side) == set(range(side - size + 1))  # the default reaches the last window


def test_bilinear_shift_is_the_integer_shift_of_the_same_draws():
    """DrQ-v2's grid_sample shift samples pixel centres: the same generator state gives `random_shift`'s output to
    float rounding."""
    from unseen.augment import random_shift_bilinear

    x = images(batch=32, size=16)
    a = random_shift_bilinear(x.float(), pad=4, generator=torch.Generator().manual_seed(3))
    b = random_shift(x, pad=4, generator=torch.Generator().manual_seed(3))
    assert a.dtype == torch.float32 and a.shape == x.shape
    torch.testing.assert_close(a, b.float(), rtol=0, atol=0.01)
    assert torch.equal(random_shift_bilinear(x, pad=4, generator=torch.Generator().manual_seed(3)), b)
    with pytest.raises(ValueError, match="square"):
        random_shift_bilinear(x[..., :10])
