"""unseen.grad: GAS (Eq. 8), SGS (Algorithm 1) and their combination, by hand and by property
(in the manner of torchjd's aggregator tests), and per-loss gradients against torch.autograd.grad."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from torch import nn

from unseen.grad import (
    agreement_mask,
    combine,
    diagnostics,
    gas_weights,
    per_loss_gradients,
    soft_surgery,
    write_gradients,
)

SETTINGS = [dict(gas=g, sgs=s) for g, s in itertools.product((False, True), repeat=2)]


def random_matrices(count=20, seed=0):
    """Gradient matrices of 2 to 5 rows, with some exact zeros and shared signs mixed in."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(count):
        k = int(torch.randint(2, 6, (), generator=g))
        p = int(torch.randint(1, 40, (), generator=g))
        m = torch.randn(k, p, generator=g, dtype=torch.float64)
        agreeing = torch.rand(p, generator=g) < 0.3
        m[:, agreeing] = m[:, agreeing].abs()
        m[torch.rand(k, p, generator=g) < 0.1] = 0.0
        out.append(m)
    return out


def test_gas_two_gradients_by_hand():
    J = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    # Gramian [[1, 1], [1, 2]]: s = (2, 3), w = s / 5
    torch.testing.assert_close(gas_weights(J), torch.tensor([0.4, 0.6]))


def test_gas_three_gradients_by_hand_with_a_negative_weight():
    J = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-3.0, 0.0]])
    # Gramian [[1, 0, -3], [0, 1, 0], [-3, 0, 9]]: s = (-2, 1, 6), sum |s| = 9
    torch.testing.assert_close(gas_weights(J), torch.tensor([-2.0, 1.0, 6.0]) / 9)
    # clamped: (0, 1, 6) / 7
    torch.testing.assert_close(gas_weights(J, clamp=True), torch.tensor([0.0, 1.0, 6.0]) / 7)


def test_sgs_three_gradients_by_hand():
    J = torch.tensor([[1.0, -1.0, 2.0, 0.0, -1.0], [2.0, -3.0, -1.0, 1.0, -2.0], [3.0, -1.0, 1.0, 1.0, -1.0]])
    agree = torch.tensor([1.0, 1.0, 0.5, 0.5, 1.0])  # col 2 mixed signs, col 3 has a zero
    literal = torch.tensor([1.0, 0.5, 0.5, 0.5, 0.5])  # only all-positive columns survive
    torch.testing.assert_close(soft_surgery(J, 0.5, "agree"), J * agree)
    torch.testing.assert_close(soft_surgery(J, 0.5, "literal"), J * literal)


def test_combine_by_hand():
    J = torch.tensor([[1.0, 2.0], [3.0, -2.0]])
    # Gramian [[5, -1], [-1, 13]]: s = (4, 12), w = (0.25, 0.75); column 1 conflicts -> scaled by 0.2
    torch.testing.assert_close(combine(J, gas=False, sgs=False, gamma=0.2), torch.tensor([2.0, 0.0]))
    torch.testing.assert_close(combine(J, gas=True, sgs=False, gamma=0.2), torch.tensor([2.5, -1.0]))
    torch.testing.assert_close(combine(J, gas=False, sgs=True, gamma=0.2), torch.tensor([2.0, 0.0]))
    torch.testing.assert_close(combine(J, gas=True, sgs=True, gamma=0.2), torch.tensor([2.5, 0.25 * 0.4 - 0.75 * 0.4]))


@pytest.mark.parametrize("J", random_matrices())
def test_gas_weights_absolute_values_sum_to_one_and_are_scale_invariant(J):
    w = gas_weights(J)
    torch.testing.assert_close(w.abs().sum(), torch.tensor(1.0, dtype=J.dtype))
    for c in (1e-3, 0.5, 7.0):
        torch.testing.assert_close(gas_weights(c * J), w)
    clamped = gas_weights(J, clamp=True)
    assert torch.all(clamped >= 0)
    torch.testing.assert_close(clamped.sum(), torch.tensor(1.0, dtype=J.dtype))


@pytest.mark.parametrize("J", random_matrices(seed=1))
@pytest.mark.parametrize("setting", SETTINGS)
def test_permuting_rows_permutes_weights_and_keeps_the_combination(J, setting):
    perm = torch.randperm(len(J), generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(gas_weights(J[perm]), gas_weights(J)[perm])
    torch.testing.assert_close(combine(J[perm], gamma=0.25, **setting), combine(J, gamma=0.25, **setting))


@pytest.mark.parametrize("J", random_matrices(seed=3))
@pytest.mark.parametrize("setting", SETTINGS)
@pytest.mark.parametrize("rule", ["agree", "literal"])
def test_combination_is_positively_homogeneous(J, setting, rule):
    for c in (1e-3, 0.5, 7.0):
        torch.testing.assert_close(
            combine(c * J, gamma=0.25, rule=rule, **setting), c * combine(J, gamma=0.25, rule=rule, **setting)
        )


@pytest.mark.parametrize("J", random_matrices(seed=4))
def test_all_components_agreeing_gives_the_plain_weighted_sum(J):
    J = J.abs() + 0.1  # every column strictly positive
    w = gas_weights(J)
    torch.testing.assert_close(combine(J, gas=True, sgs=True, gamma=0.25), w @ J)
    torch.testing.assert_close(combine(-J, gas=True, sgs=True, gamma=0.25, rule="agree"), -(w @ J))


@pytest.mark.parametrize("J", random_matrices(seed=5))
@pytest.mark.parametrize("rule", ["agree", "literal"])
def test_gamma_one_is_no_surgery(J, rule):
    torch.testing.assert_close(soft_surgery(J, 1.0, rule), J)
    torch.testing.assert_close(
        combine(J, gas=True, sgs=True, gamma=1.0, rule=rule), combine(J, gas=True, sgs=False, gamma=0.0)
    )


@pytest.mark.parametrize("setting", SETTINGS)
def test_all_zero_gradients_give_uniform_weights_and_a_zero_direction(setting):
    J = torch.zeros(4, 10)
    torch.testing.assert_close(gas_weights(J), torch.full((4,), 0.25))
    direction = combine(J, gamma=0.25, **setting)
    assert torch.equal(direction, torch.zeros(10)) and not torch.isnan(direction).any()
    metrics = diagnostics(J, ["a", "b", "c", "d"], gas_weights(J), 0.25)
    assert not any(math.isnan(v) for v in metrics.values())
    assert metrics["grad/cos/a-b"] == 0.0 and metrics["grad/conflict_fraction"] == 0.0


def test_cancelling_gradients_give_uniform_weights():
    J = torch.tensor([[1.0, -2.0], [-1.0, 2.0]])  # s = 0 for both: sum |s| = 0
    torch.testing.assert_close(gas_weights(J), torch.tensor([0.5, 0.5]))


def test_all_negative_columns_agree_kept_literal_damped():
    J = -torch.rand(3, 6, generator=torch.Generator().manual_seed(0)) - 0.1
    assert agreement_mask(J, "agree").all() and not agreement_mask(J, "literal").any()
    torch.testing.assert_close(soft_surgery(J, 0.3, "agree"), J)
    torch.testing.assert_close(soft_surgery(J, 0.3, "literal"), 0.3 * J)


def test_zero_component_is_not_an_agreement():
    J = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    assert agreement_mask(J).tolist() == [True, False]


def test_unknown_rule_is_refused():
    with pytest.raises(ValueError, match="agree, literal"):
        soft_surgery(torch.ones(2, 2), 0.2, "sometimes")


class TwoLayer(nn.Module):
    """A per-sample network with LayerNorm and an unused parameter."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(5, 7), nn.LayerNorm(7), nn.Tanh(), nn.Linear(7, 1))
        self.unused = nn.Parameter(torch.ones(3))

    def forward(self, x: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.net[:3](x)
        return ((self.net[3](h) - target) ** 2).mean(), h


@pytest.mark.parametrize("method", ["sequential", "vmap"])
def test_per_loss_gradients_equal_separate_autograd_grads(method):
    torch.manual_seed(0)
    model = TwoLayer()
    inputs = torch.randn(3, 8, 5)
    target = torch.randn(8, 1)
    J, losses, aux = per_loss_gradients(model, inputs, target, method=method)
    params = list(model.parameters())
    assert J.shape == (3, sum(p.numel() for p in params)) and aux.shape == (3, 8, 7)
    for i in range(3):
        loss, h = model(inputs[i], target)
        expected = torch.autograd.grad(loss, params, allow_unused=True, materialize_grads=True)
        torch.testing.assert_close(J[i], torch.cat([g.reshape(-1) for g in expected]))
        torch.testing.assert_close(losses[i], loss.detach())
        torch.testing.assert_close(aux[i], h.detach())
    assert next(model.named_parameters())[0] == "unused"
    assert torch.all(J[:, :3] == 0)  # the unused parameter (first in parameters() order) counts as zeros
    assert all(p.grad is None for p in params)  # nothing accumulated into .grad


def test_write_gradients_sets_each_parameter_once():
    model = TwoLayer()
    params = list(model.parameters())
    direction = torch.arange(sum(p.numel() for p in params), dtype=torch.float32)
    for p in params:
        p.grad = torch.ones_like(p)
    write_gradients(params, direction)
    torch.testing.assert_close(torch.cat([p.grad.reshape(-1) for p in params]), direction)
