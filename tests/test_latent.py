"""ALDA's associative retrieval and quantized latent: hand-computed cases, limits, gradient routing."""

from __future__ import annotations

import math

import pytest
import torch

from unseen.latent import QuantizedLatent, associative_retrieval, commitment_loss, quantization_loss

VALUES = torch.tensor([[-1.0, 0.0, 1.0], [0.0, 1.0, 2.0]])  # 2 latents, 3 values each


def test_retrieval_by_hand():
    # beta = ln 2, so each weight is 2^-distance before normalising.
    # z = 0.5 against (-1, 0, 1): weights 2^-1.5, 2^-0.5, 2^-0.5 -> (2^-0.5 - 2^-1.5) / (2^-1.5 + 2 * 2^-0.5) = 1/5
    # z = 0.0 against (0, 1, 2):  weights 1, 1/2, 1/4 -> (0 + 1/2 + 2/4) / (7/4) = 4/7
    # z = 1.0 against (-1, 0, 1): weights 1/4, 1/2, 1 -> (-1/4 + 0 + 1) / (7/4) = 3/7
    # z = 1.0 against (0, 1, 2):  weights 1/2, 1, 1/2 -> (0 + 1 + 1) / 2 = 1
    z = torch.tensor([[0.5, 0.0], [1.0, 1.0]])
    retrieved = associative_retrieval(z, VALUES, math.log(2))
    torch.testing.assert_close(retrieved, torch.tensor([[1 / 5, 4 / 7], [3 / 7, 1.0]]))


def test_retrieval_tends_to_the_nearest_value_as_beta_grows():
    g = torch.Generator().manual_seed(0)
    z = torch.rand(64, 2, generator=g) * 4 - 1.5
    nearest = VALUES[torch.arange(2), (z[:, :, None] - VALUES[None]).abs().argmin(-1)]
    errors = [(associative_retrieval(z, VALUES, beta) - nearest).abs().max().item() for beta in (1, 10, 100, 1e3, 1e5)]
    assert errors == sorted(errors, reverse=True) and errors[0] > 0.1
    assert errors[-1] < 1e-4
    huge = associative_retrieval(z, VALUES, 1e38)  # -beta * distance overflows to -inf but for the nearest
    assert not huge.isnan().any()
    torch.testing.assert_close(huge, nearest)


def test_infinite_beta_is_the_argmin():
    z = torch.tensor([[0.4, 1.6], [-7.0, 0.49], [0.6, 9.0]])
    hard = associative_retrieval(z, VALUES, float("inf"))
    assert torch.equal(hard, torch.tensor([[0.0, 2.0], [-1.0, 0.0], [1.0, 2.0]]))
    tie = associative_retrieval(torch.tensor([[0.5, 1.5]]), VALUES, float("inf"))
    assert torch.equal(tie, torch.tensor([[0.0, 1.0]]))  # a tie takes the first nearest value


def test_retrieval_rejects_bad_input():
    with pytest.raises(ValueError, match="beta must be positive"):
        associative_retrieval(torch.zeros(1, 2), VALUES, 0.0)
    with pytest.raises(ValueError, match="beta must be positive"):
        associative_retrieval(torch.zeros(1, 2), VALUES, float("nan"))
    with pytest.raises(ValueError, match=r"z \(B, D\) and values \(D, n\)"):
        associative_retrieval(torch.zeros(1, 3), VALUES, 1.0)


def test_codebook_starts_evenly_spaced_and_argmin_is_infinite_beta():
    latent = QuantizedLatent(4, 12, 100.0)
    assert latent.values.shape == (4, 12)
    assert torch.equal(latent.values[3], torch.linspace(-1, 1, 12))
    assert latent.beta == 100.0 and QuantizedLatent(4, 12, 100.0, "argmin").beta == math.inf
    with pytest.raises(ValueError, match="retrieval must be one of softmax, argmin"):
        QuantizedLatent(4, 12, 100.0, "nearest")


@pytest.mark.parametrize("retrieval", ["softmax", "argmin"])
def test_straight_through_passes_the_gradient_to_z_unchanged(retrieval):
    latent = QuantizedLatent(2, 3, 100.0, retrieval)
    z = torch.tensor([[0.3, -0.8], [0.9, 0.1]], requires_grad=True)
    out = latent(z)
    torch.testing.assert_close(out.z_hat, out.z_q)  # the decoder sees the retrieved values
    upstream = torch.tensor([[1.0, -2.0], [3.0, 0.5]])
    (out.z_hat * upstream).sum().backward()
    assert torch.equal(z.grad, upstream)  # identity Jacobian
    assert latent.values.grad is None  # the straight-through path carries no codebook gradient


def test_retrieval_gets_no_gradient_from_z_but_reaches_the_codebook():
    latent = QuantizedLatent(2, 3, 2.0)
    z = torch.tensor([[0.3, -0.8]], requires_grad=True)
    out = latent(z)
    assert out.z_q.grad_fn is not None
    out.z_q.sum().backward()
    assert z.grad is None
    assert latent.values.grad is not None and latent.values.grad.abs().sum() > 0
    assert latent.retrieve(z, codebook_grad=False).grad_fn is None


def test_commitment_trains_the_encoder_and_quantization_the_codebook():
    latent = QuantizedLatent(2, 3, float("inf"), "argmin")
    z = torch.tensor([[0.3, -0.8]], requires_grad=True)
    out = latent(z)  # nearest values 0.0 and -1.0: differences 0.3 and 0.2
    commitment = commitment_loss(out)
    torch.testing.assert_close(commitment, torch.tensor((0.3**2 + 0.2**2) / 2))
    commitment.backward()
    torch.testing.assert_close(z.grad, torch.tensor([[0.3, 0.2]]))  # d/dz mean((z - v)^2) = (z - v)
    assert latent.values.grad is None
    z.grad = None
    quantization = quantization_loss(latent(z))
    torch.testing.assert_close(quantization, commitment.detach())
    quantization.backward()
    assert z.grad is None
    expected = torch.zeros(2, 3)
    expected[0, 1], expected[1, 0] = -0.3, -0.2  # only the retrieved values move, towards z
    torch.testing.assert_close(latent.values.grad, expected)
