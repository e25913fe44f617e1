"""ALDA's quantized latent with associative (Hopfield) retrieval, docs/methods.md "ALDA".

Every latent dimension `i` has its own scalar codebook `v[i, 1..n]`. Retrieval is one step of a modern
Hopfield network with negative-L1 similarity, softmax separation and identity projection:

    z_q[b, i] = sum_j v[i, j] * softmax_j(-beta * |z[b, i] - v[i, j]|)

As `beta -> inf` the softmax becomes a one-hot on the nearest value: QLAE's hard quantization, the
argmin of `|z - v|`. `QuantizedLatent` is the learnable module: a codebook initialised at
`linspace(-1, 1, n)` per dimension, retrieval on the *detached* latent (so the encoder never learns
through the retrieval), the straight-through `z_hat = z + (z_q - z).detach()` for the decoder, and the
commitment and quantization losses. This follows the public reference code of ALDA.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from unseen.errors import InputError

RETRIEVALS = ("softmax", "argmin")


def associative_retrieval(z: torch.Tensor, values: torch.Tensor, beta: float) -> torch.Tensor:
    """`(B, D)` latents and `(D, n)` codebooks -> `(B, D)` retrieved values; `beta = inf`: the nearest value.

    Finite `beta`: the softmax-weighted mean above. The logits are shifted by the smallest distance before
    the softmax (the nearest value gets logit 0), so any finite `beta`, however large, gives no NaN; the
    result tends to the nearest value as `beta` grows. `beta = inf`: the value of `argmin_j |z - v[i, j]|`
    (the first one on a tie). Gradients flow to `values` in both cases, and to `z` for finite `beta`.
    """
    if z.ndim != 2 or values.ndim != 2 or z.shape[1] != values.shape[0]:
        raise InputError(
            f"associative_retrieval needs z (B, D) and values (D, n); got {tuple(z.shape)} and {tuple(values.shape)}"
        )
    if math.isnan(beta) or beta <= 0:
        raise InputError(f"beta must be positive (inf for the hard nearest value), got {beta}")
    distance = (z[:, :, None] - values[None]).abs()  # (B, D, n)
    if math.isinf(beta):
        nearest = distance.argmin(dim=-1, keepdim=True)
        return values.expand_as(distance).gather(-1, nearest).squeeze(-1)
    excess = distance - distance.min(dim=-1, keepdim=True).values
    weights = torch.softmax(-beta * excess, dim=-1)
    return (weights * values).sum(dim=-1)


@dataclass
class Quantized:
    """What `QuantizedLatent` returns: the continuous latent, the retrieved one, and the decoder's input."""

    z: torch.Tensor
    """The encoder's continuous latent `(B, D)`."""
    z_q: torch.Tensor
    """The retrieval from the detached `z`: gradients reach the codebook only."""
    z_hat: torch.Tensor
    """Straight-through `z + (z_q - z).detach()`: the value of `z_q`, the gradient of `z`."""


class QuantizedLatent(nn.Module):
    """One learnable scalar codebook per latent dimension, read by associative retrieval.

    `retrieval="softmax"` is ALDA's (inverse temperature `beta`); `"argmin"` is QLAE's hard nearest
    value (`beta = inf`), the ablation of the paper.
    """

    def __init__(self, latents: int, values: int, beta: float, retrieval: str = "softmax") -> None:
        super().__init__()
        if retrieval not in RETRIEVALS:
            raise InputError(f"retrieval must be one of {', '.join(RETRIEVALS)}, got {retrieval!r}")
        self.values = nn.Parameter(torch.linspace(-1.0, 1.0, values).repeat(latents, 1))
        self.beta = math.inf if retrieval == "argmin" else beta

    def retrieve(self, z: torch.Tensor, codebook_grad: bool = True) -> torch.Tensor:
        """`z_q` of the detached `z`; `codebook_grad=False` also cuts the codebook out of the graph."""
        values = self.values if codebook_grad else self.values.detach()
        return associative_retrieval(z.detach(), values, self.beta)

    def forward(self, z: torch.Tensor) -> Quantized:
        z_q = self.retrieve(z)
        return Quantized(z, z_q, z + (z_q - z).detach())


def commitment_loss(out: Quantized) -> torch.Tensor:
    """`mean((z - sg(z_q))^2)`: pulls the encoder's latent towards its retrieved value."""
    return (out.z - out.z_q.detach()).pow(2).mean()


def quantization_loss(out: Quantized) -> torch.Tensor:
    """`mean((sg(z) - z_q)^2)`: pulls the codebook towards the encoder's latents."""
    return (out.z.detach() - out.z_q).pow(2).mean()
