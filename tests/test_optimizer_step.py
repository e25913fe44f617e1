"""The effect of every agent's update on its parameters: fast path against plain path (issue 16).

A fast path is a second implementation. CG2A once wrote NCHW-ordered gradients into `.grad` of channels-last
conv weights, and fused Adam paired them with the weights by memory position: every filter moved along a
permuted gradient while every test that looked at `.grad` passed. These tests look at what users get, the
parameters after whole updates, for every agent in the registry (a new agent is covered by registering it).
"""

from __future__ import annotations

import copy
from itertools import pairwise

import pytest
import torch
from torch import nn

from unseen.agents import AGENTS

from conftest import batch, new_agent, tiny_config

UPDATES = 4  # two actor, temperature and target updates at the default every-2 schedule
PLAIN = dict(precision="float32", channels_last=False, fast_kernels=False)
"""The reference path: float32, NCHW weights and activations, PyTorch's per-tensor optimizer loop."""


def users_fast_path(algo: str, precision: str) -> dict[str, bool | str]:
    """The layout and kernels a user of `algo` runs (its preset's; ALDA's convs are not channels-last)."""
    agent = tiny_config(algo).agent
    return dict(precision=precision, channels_last=agent.channels_last, fast_kernels=agent.fast_kernels)


def parameters(agent) -> dict[str, torch.Tensor]:
    """Every tensor an update can move, by name: all modules' parameters (targets too) and the floating-point tensors
    an agent's state_dict holds beside them (SAC's temperature; DrQ-v2 has none)."""
    tensors = {
        name: value.detach().clone() for name, value in agent.state_dict().items()
        if isinstance(value, torch.Tensor) and value.is_floating_point()
    }
    for name, module in agent.modules().items():
        if isinstance(module, nn.Module):
            tensors |= {f"{name}.{key}": p.detach().clone() for key, p in module.named_parameters()}
    return tensors


# Parameters of SODA whose auxiliary gradient is (nearly) removed by a BatchNorm further on, so that its Adam turns
# rounding noise into steps of random sign (measured, float32 fast against plain, four updates of the tiny agents): the
# trunk's last conv bias (and its two EMA copies) feeds Linear -> BatchNorm through the trunk's final ReLU, which passes
# nearly all of it (2-5% of the step's norm); the SODA projection's output bias feeds the predictor's Linear ->
# BatchNorm (an exact zero, two layers apart).
NOISE_STEPS = {
    "soda": {
        "trunk.convs.2.bias", "trunk_target.convs.2.bias", "soda_trunk_target.convs.2.bias", "soda.projection.3.bias",
        "soda_projection_target.3.bias",
    },
}
# Fast-against-plain bounds above the common 1e-3, measured: SODA 1.4e-3 (the actor's hidden layer, downstream of the
# noise steps above), PAD 2.5e-3 (one of the 1024 weights of the tiny inverse-dynamics MLP's hidden layer, a unit whose
# gradient is at noise level). A permuted gradient gives 0.5-1.25.
BOUND = {"soda": 5e-3, "pad": 5e-3}


def normalised_away(agent) -> set[str]:
    """Parameters whose gradient is zero in exact arithmetic: the bias of a conv followed by a GroupNorm with one
    channel per group (ALDA's blocks), which subtracts each channel's mean, bias included, and of a Linear followed by
    a BatchNorm1d (SODA's MLPs), which subtracts the batch's mean. Their gradients are rounding noise, and Adam turns
    noise into full-size steps of random sign, so no path agrees with another on them; they change no output."""
    names = set()
    for name, module in agent.modules().items():
        if not isinstance(module, nn.Module):
            continue
        for prefix, sequence in module.named_modules():
            if not isinstance(sequence, nn.Sequential):
                continue
            for (key, conv), (_, norm) in pairwise(sequence.named_children()):
                per_channel = isinstance(norm, nn.GroupNorm) and norm.num_groups == norm.num_channels
                if isinstance(conv, nn.Conv2d | nn.ConvTranspose2d) and per_channel and conv.bias is not None:
                    names.add(f"{name}.{prefix}.{key}.bias")
                if isinstance(conv, nn.Linear) and isinstance(norm, nn.BatchNorm1d) and conv.bias is not None:
                    names.add(f"{name}.{prefix}.{key}.bias".replace("..", "."))
    return names


def twin_steps(algo: str, fast: dict, plain: dict) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """What `UPDATES` updates on fixed batches did to each tensor (value after minus value before) of two agents
    in identical states, built with the `fast` and the `plain` settings; tensors `normalised_away` left out."""
    a, b = new_agent(algo, **fast), new_agent(algo, **plain)
    b.load_state_dict(copy.deepcopy(a.state_dict()))
    start = parameters(a)
    for agent in (a, b):
        for seed in range(UPDATES):
            agent.update(batch(seed=seed))
    noise = normalised_away(a)
    assert noise == set() or algo in ("alda", "soda"), f"{algo} has biases that a norm removes: {sorted(noise)}"
    noise |= NOISE_STEPS.get(algo, set())
    steps = [{k: after - start[k] for k, after in parameters(agent).items() if k not in noise} for agent in (a, b)]
    return steps[0], steps[1]


def cosine(x: torch.Tensor, y: torch.Tensor) -> float:
    return nn.functional.cosine_similarity(x.flatten().double(), y.flatten().double(), dim=0).item()


@pytest.mark.parametrize("algo", list(AGENTS))
def test_users_fast_path_moves_every_parameter_as_the_plain_path(algo):
    """float32 both: the users' layout, fused optimizers and in-place ReLUs change the order of the arithmetic,
    never which weight a gradient moves. Every tensor's step equals the plain path's to float tolerance."""
    fast, plain = twin_steps(algo, users_fast_path(algo, precision="float32"), PLAIN)
    moved = [name for name, step in plain.items() if step.any()]
    assert len(moved) > len(plain) // 2, "most tensors should move in four updates"
    for name, step in plain.items():
        if not step.any():
            assert not fast[name].any(), f"{name}: moved on the fast path only"
            continue
        # Measured: at most 7e-5 (SAC). CG2A's permuted conv gradients gave 0.5-1.25.
        error = ((fast[name] - step).norm() / step.norm()).item()
        bound = BOUND.get(algo, 1e-3)
        assert error < bound, f"{name}: the fast step differs from the plain one by {error:.2e} of its norm"


BF16_DIRECTION_LOST = pytest.mark.xfail(
    strict=True,
    reason="measured: ALDA's bf16 steps of its per-frame encoder and decoder point elsewhere than float32's (cosine "
    "0.02-0.6), through its sharp retrieval (beta = 100), not through a layout (float32 paths agree); docs/alda.md",
)


@pytest.mark.parametrize("algo", [pytest.param(a, marks=BF16_DIRECTION_LOST) if a == "alda" else a for a in AGENTS])
def test_bf16_keeps_every_step_direction_of_float32(algo):
    """bfloat16 autocast keeps 8 mantissa bits in the conv stacks and projections; after four Adam steps each
    tensor still moves the way float32 moves it. Measured on batches of seeds 0-3 and 10-13: the smallest cosine
    over every tensor of SAC, DrQ, SVEA, CG2A and SAC+AE is 0.88 (a Q head's last layer, an actor projection); of
    RAD, CURL and DrQ-v2 0.79 (a first conv's bias, seeds 0-3; 0.81-0.99 on seeds 10-13 and 20-23: batch noise, not
    a layout); CG2A's permuted conv gradients gave 0.22-0.5. The bound, 0.75, sits between.

    The actor of the SAC family learns from the critic step's own features here (`actor_recompute=false`):
    re-encoding obs after the critic step hands the actor a trunk moved by Adam's first, sign-like steps, where
    bf16's rounding flips the sign of the smallest gradients; with it the smallest cosine is 0.71-0.77 (the actor's
    biases of SAC, SVEA, SAC+AE), the trunk's steps stay above 0.89. The re-encoding path is checked in float32
    above, where layouts would show."""
    reuse = {"actor_recompute": False} if hasattr(tiny_config(algo).agent, "actor_recompute") else {}
    fast, plain = twin_steps(algo, users_fast_path(algo, "bf16") | reuse, PLAIN | reuse)
    for name, step in plain.items():
        if step.any():
            similarity = cosine(fast[name], step)
            assert similarity > 0.75, f"{name}: the bf16 step's cosine with float32's is {similarity:.3f}"


def checked_step(optimizer: torch.optim.Optimizer, checked: list[int]) -> None:
    """Replace `optimizer.step` by one that first steps NCHW clones of its parameters, with their gradients and
    the optimizer's state, by PyTorch's plain per-tensor loop, then takes the real step and requires every
    parameter to equal its clone: each gradient moves exactly its own weight, whatever the memory layouts."""
    step = optimizer.step

    def step_and_check() -> None:
        originals = [p for group in optimizer.param_groups for p in group["params"]]
        clones = [p.detach().clone(memory_format=torch.contiguous_format).requires_grad_() for p in originals]
        for clone, p in zip(clones, originals, strict=True):
            clone.grad = None if p.grad is None else p.grad.clone(memory_format=torch.contiguous_format)
        groups, start = [], 0
        for group in optimizer.param_groups:
            groups.append({"params": clones[start:start + len(group["params"])]})
            start += len(group["params"])
        reference = type(optimizer)(groups, lr=1.0)
        reference.load_state_dict(copy.deepcopy(optimizer.state_dict()))  # hyperparameters and moments
        for group in reference.param_groups:
            group["fused"], group["foreach"] = False, False
        reference.step()
        step()
        for clone, p in zip(clones, originals, strict=True):
            torch.testing.assert_close(p.detach(), clone.detach(), rtol=1e-6, atol=1e-7)
        checked.append(len(originals))

    optimizer.step = step_and_check  # type: ignore[method-assign]


@pytest.mark.parametrize("algo", list(AGENTS))
def test_every_optimizer_step_moves_each_weight_by_its_own_gradient(algo):
    """Every agent with channels-last weights everywhere (ALDA's too) and fused optimizers: each optimizer step
    equals the plain per-tensor Adam step of each parameter with its gradient, exactly. This is the seam the
    CG2A bug crossed; forward and backward arithmetic play no part in it."""
    agent = new_agent(algo, precision="float32", channels_last=True, fast_kernels=True)
    checked: list[int] = []
    optimizers = [m for m in agent.modules().values() if isinstance(m, torch.optim.Optimizer)]
    for optimizer in optimizers:
        assert all(group["fused"] for group in optimizer.param_groups), "the fast path's optimizers are fused"
        checked_step(optimizer, checked)
    for seed in range(UPDATES):
        agent.update(batch(seed=seed))
    assert len(checked) >= len(optimizers), "every optimizer stepped"
