"""The fast path's pixel conversion: exact values in the conv's dtype and layout, and a reused conversion only while
its input is the same memory, unchanged."""

from __future__ import annotations

import pytest
import torch

from unseen.nets import FastPath


def reference(obs: torch.Tensor, fast: FastPath) -> torch.Tensor:
    dtype = torch.bfloat16 if fast.bf16 else torch.float32
    return obs.contiguous(memory_format=fast.memory_format).to(dtype) / 255.0


def pixels(seed: int = 0, dtype: torch.dtype = torch.uint8) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (4, 9, 16, 16), generator=generator).to(dtype)


@pytest.mark.parametrize("bf16", [True, False])
@pytest.mark.parametrize("channels_last", [True, False])
@pytest.mark.parametrize("source", [torch.uint8, torch.float32])
def test_pixels_are_the_plain_conversion_bit_for_bit_in_the_fast_layout(bf16, channels_last, source):
    fast = FastPath(bf16, channels_last)
    obs = pixels(dtype=source)
    if source.is_floating_point:
        obs += 0.4  # values between the integers round as the plain conversion rounds them
    original = obs.clone()
    got, expected = fast.pixels(obs), reference(obs, fast)
    assert got.dtype == expected.dtype and torch.equal(got, expected)
    assert torch.equal(obs, original), "the input is never converted in place"
    assert got.is_contiguous(memory_format=fast.memory_format)


def test_the_same_pixels_reuse_one_conversion_across_fast_paths_and_views():
    obs = pixels()
    first = FastPath(True, True).pixels(obs)
    assert FastPath(True, True).pixels(obs) is first, "the target trunk reuses the online trunk's conversion"
    assert FastPath(True, True).pixels(obs.view(obs.shape)) is first, "a view of the same memory is the same pixels"
    assert FastPath(False, True).pixels(obs) is not first, "another dtype is another conversion"


def test_changed_pixels_are_converted_again():
    fast = FastPath(True, True)
    obs = pixels()
    first = fast.pixels(obs)
    obs[0, 0, 0, 0] = 255 - obs[0, 0, 0, 0]
    assert torch.equal(fast.pixels(obs), reference(obs, fast)), "an in-place write to the input is seen"
    equal_copy = obs.clone()
    assert fast.pixels(equal_copy) is not first
    converted = fast.pixels(equal_copy)
    converted.zero_()
    assert torch.equal(fast.pixels(equal_copy), reference(obs, fast)), "a conversion its user changed is not reused"


def test_pixels_that_require_a_gradient_pass_it_back():
    fast = FastPath(False, True)
    obs = pixels(dtype=torch.float32).requires_grad_()
    (gradient,) = torch.autograd.grad(fast.pixels(obs).sum(), obs)
    assert torch.allclose(gradient, torch.full_like(obs, 1 / 255.0))


def test_pixels_inside_vmap_are_converted_per_sample():
    fast = FastPath(False, False)
    obs = pixels()
    assert torch.equal(torch.func.vmap(fast.pixels)(obs), reference(obs, fast))
