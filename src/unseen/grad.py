"""Per-loss gradients and their combination: CG2A's GAS (Eq. 8) and SGS (Algorithm 1, Eqs. 9-10).

Pure functions on a gradient matrix `grads` of shape `(K, P)`: row `i` is the flattened gradient `g_i` of
loss `L_i` over all `P` parameters an optimizer steps (docs/methods.md, "Per-augmentation gradients").
`per_loss_gradients` builds that matrix from a loss module and `K` inputs; `write_gradients` puts the
combined direction into the parameters' `.grad` for the optimizer step.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
from torch import nn
from torch.func import functional_call, grad_and_value, vmap

SGS_RULES = ("agree", "literal")
GRAD_METHODS = ("sequential", "vmap")


def gas_weights(grads: torch.Tensor, clamp: bool = False) -> torch.Tensor:
    """Gradient Agreement Solver, CG2A Eq. (8): `w_i = s_i / sum_k |s_k|` with `s_i = sum_j g_i . g_j`.

    `s` are the row sums of the Gramian `J J^T`. Weights can be negative (the paper's formula). When
    `sum_k |s_k| = 0` (docs/methods.md: all gradients zero; it happens exactly when `sum_j g_j = 0`) the weights
    are uniform, `1/K`. `clamp` (ours, docs/methods.md) sets negative weights to 0 and renormalises the rest to
    sum 1; since `sum_i s_i = ||sum_j g_j||^2 >= 0`, some weight stays positive whenever any is nonzero.
    """
    scores = (grads @ grads.T).sum(dim=1)
    if clamp:
        scores = scores.clamp(min=0)
    total = scores.abs().sum()
    nonzero = total > 0
    return torch.where(nonzero, scores / torch.where(nonzero, total, 1.0), uniform_weights(grads))


def column_extremes(grads: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Smallest and largest of the `K` gradients in each component, `(P,)` each.

    A loop over the `K` rows: contiguous elementwise passes, several times faster on CPU than a
    reduction over dim 0 of a `(K, P)` tensor with millions of columns.
    """
    low, high = grads[0].clone(), grads[0].clone()
    for row in grads[1:]:
        torch.minimum(low, row, out=low)
        torch.maximum(high, row, out=high)
    return low, high


def agreement_mask(grads: torch.Tensor, rule: str = "agree") -> torch.Tensor:
    """SGS's element mask, CG2A Eq. (9): True where the components of all `K` gradients agree in sign.

    `"agree"` (docs/methods.md's default, the paper's text): all strictly positive or all strictly negative,
    `|sum_i sign(g_i^j)| = K`. `"literal"` (the printed condition): `sum_i sign(g_i^j) = K`, all strictly
    positive only. A zero component is never an agreement.
    """
    if rule not in SGS_RULES:
        raise ValueError(f"unknown SGS rule {rule!r}; choose one of: {', '.join(SGS_RULES)}")
    low, high = column_extremes(grads)
    return (low > 0) | (high < 0) if rule == "agree" else low > 0


def surgery_scale(grads: torch.Tensor, gamma: float, rule: str = "agree") -> torch.Tensor:
    """`(P,)`: 1 where the gradients agree (`agreement_mask`), `gamma` where they conflict."""
    return torch.where(agreement_mask(grads, rule), 1.0, gamma).to(grads.dtype)


def soft_surgery(grads: torch.Tensor, gamma: float, rule: str = "agree") -> torch.Tensor:
    """Soft Gradient Surgery, CG2A Algorithm 1 / Eq. (10): `g_i <- mask * g_i + gamma * (1 - mask) * g_i`.

    Components where the gradients agree (`agreement_mask`) are kept; conflicting ones are scaled by the
    damping factor `gamma` (the caller draws it, docs/methods.md: `U(0.22, 0.28)` once per update). `gamma = 1`
    leaves the gradients unchanged, `gamma = 0` removes every conflicting component.
    """
    return grads * surgery_scale(grads, gamma, rule)


def combine(
    grads: torch.Tensor, *, gas: bool, sgs: bool, gamma: float, rule: str = "agree", clamp: bool = False
) -> torch.Tensor:
    """CG2A's update direction `g_bar = sum_i w_i * SGS(g)_i` (docs/methods.md, "Final update").

    Weights and mask both come from the raw gradients ("the two modules can be computed independently").
    The switches give the ablations of the paper's Table 4: neither = AC only (the mean of the `K`
    gradients), `gas` only = AC+GAS, `sgs` only = AC+SGS (mean of the surgered gradients), both = CG2A.
    SGS scales whole components, so `sum_i w_i (scale * g_i) = scale * sum_i w_i g_i` is computed in that
    order, without the surgered `(K, P)` matrix.
    """
    weights = gas_weights(grads, clamp) if gas else uniform_weights(grads)
    direction = weights @ grads
    return direction * surgery_scale(grads, gamma, rule) if sgs else direction


def uniform_weights(grads: torch.Tensor) -> torch.Tensor:
    """`1/K` for each of the `K` gradients: the plain mean of augmentation combination (AC)."""
    return torch.full((grads.shape[0],), 1.0 / grads.shape[0], dtype=grads.dtype, device=grads.device)


def per_loss_gradients(
    loss: nn.Module, inputs: torch.Tensor, *shared: torch.Tensor, method: str = "sequential"
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gradients of `K` losses over every parameter of `loss`: `(J (K, P), losses (K,), aux (K, ...))`.

    `loss(inputs[i], *shared)` returns `(L_i, aux_i)`; row `i` of `J` is `dL_i / d theta`, the parameters
    flattened in `loss.parameters()` order, a parameter without a gradient counting as zeros. Nothing
    accumulates from one loss into the next, and no `.grad` is touched.

    - `"sequential"`: one forward and one `torch.autograd.grad` per input. The same FLOPs as one pass over
      the concatenated batch, and the cheapest on CPU (docs/cg2a.md has the measurements).
    - `"vmap"`: one forward over the `K` inputs stacked, `torch.func.vmap` over `grad`, so every layer
      runs once on the concatenated batch and its weight gradients come out per input. Exact only for
      networks that treat samples independently (LayerNorm is per sample; no BatchNorm). Tensors must not
      change memory format inside the network (`vmap` refuses channels-last).
    """
    if method not in GRAD_METHODS:
        raise ValueError(f"unknown gradient method {method!r}; choose one of: {', '.join(GRAD_METHODS)}")
    params = dict(loss.named_parameters())
    sizes = [p.numel() for p in params.values()]
    if method == "vmap":
        detached = {name: p.detach() for name, p in params.items()}

        def loss_at(p: dict[str, torch.Tensor], x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            return functional_call(loss, p, (x, *shared))

        grads, (values, aux) = vmap(grad_and_value(loss_at, has_aux=True), in_dims=(None, 0))(detached, inputs)
        matrix = torch.cat([g.reshape(len(inputs), -1) for g in grads.values()], dim=1)
        return matrix, values.detach(), aux.detach()
    matrix = torch.empty(len(inputs), sum(sizes), device=inputs.device)
    values, auxes = [], []
    for row, x in zip(matrix, inputs, strict=True):
        value, aux = loss(x, *shared)
        grads = torch.autograd.grad(value, list(params.values()), allow_unused=True, materialize_grads=True)
        torch.cat([g.reshape(-1) for g in grads], out=row)
        values.append(value.detach())
        auxes.append(aux.detach())
    return matrix, torch.stack(values), torch.stack(auxes)


def write_gradients(params: Sequence[torch.Tensor], direction: torch.Tensor) -> None:
    """Set each parameter's `.grad` to its slice of the flat `direction` (in `params` order, each slice in the
    parameter's logical element order, as `per_loss_gradients` flattens it), replacing any.

    Each gradient is laid out in memory like its parameter (a channels-last conv weight gets a channels-last
    gradient): optimizers may pair gradient and parameter by memory position, and torch's fused CPU Adam does,
    so a gradient in another layout would move other weights than its own (issue 16).
    """
    for p, chunk in zip(params, direction.split([p.numel() for p in params]), strict=True):
        p.grad = torch.empty_like(p).copy_(chunk.view(p.shape))


def diagnostics(grads: torch.Tensor, names: Sequence[str], weights: torch.Tensor, gamma: float) -> dict[str, float]:
    """The quantities of CG2A's Figure 1, as `grad/...` metrics named by augmentation.

    `grad/norm/<name>` = `||g_i||`, `grad/weight/<name>` = the `w_i` used, `grad/cos/<a>-<b>` every pairwise
    cosine (0 when either gradient is zero), `grad/conflict_fraction` the fraction of components where some
    gradient is strictly positive and another strictly negative, `grad/gamma` the damping factor.
    """
    gram = grads @ grads.T
    norms = gram.diagonal().clamp(min=0).sqrt()
    denominator = norms[:, None] * norms[None, :]
    cosines = torch.where(denominator > 0, gram / torch.where(denominator > 0, denominator, 1.0), 0.0)
    low, high = column_extremes(grads)
    conflict = ((low < 0) & (high > 0)).float().mean()
    metrics = {f"grad/norm/{name}": norm for name, norm in zip(names, norms.tolist(), strict=True)}
    metrics |= {f"grad/weight/{name}": w for name, w in zip(names, weights.tolist(), strict=True)}
    for (i, a), (j, b) in itertools.combinations(enumerate(names), 2):
        metrics[f"grad/cos/{a}-{b}"] = cosines[i, j].item()
    return metrics | {"grad/conflict_fraction": conflict.item(), "grad/gamma": float(gamma)}
