"""SGQN: the mask keeps exactly the quantile's share of a hand-built attribution, guided backpropagation by hand, the
consistency loss on a tiny case, the masked view, and what each optimizer owns."""

from __future__ import annotations

import torch
from torch import nn

from unseen.agents.sgqn import SGQNConfig, attribution_mask, consistency_loss, guided_backprop, masked_view

from conftest import batch, new_agent


def test_published_defaults():
    cfg = SGQNConfig()
    assert (cfg.sgqn_quantile, cfg.sgqn_consistency, cfg.sgqn_consistency_weight) == (0.9, True, 0.5)
    assert (cfg.sgqn_lr, cfg.sgqn_beta1, cfg.sgqn_update_every, cfg.shift_pad) == (3e-4, 0.9, 2, 4)


def test_mask_keeps_exactly_the_quantiles_share_of_each_frame():
    g = torch.Generator().manual_seed(0)
    # Two samples, two frames of 10x10: distinct strengths 0..99 in a random order per frame, on a random channel,
    # with a random sign; the other two channels weaker.
    attribution = torch.zeros(2, 6, 10, 10)
    for sample in range(2):
        for frame in range(2):
            strength = torch.randperm(100, generator=g).float().view(10, 10) + 1
            channel = torch.randint(3, (10, 10), generator=g)
            sign = torch.where(torch.rand(10, 10, generator=g) < 0.5, -1.0, 1.0)
            for c in range(3):
                attribution[sample, 3 * frame + c] = torch.where(channel == c, sign * strength, 0.5 * strength)
    for quantile, kept in ((0.9, 10), (0.5, 50), (0.98, 2)):
        mask = attribution_mask(attribution, quantile)
        assert mask.dtype == torch.bool and mask.shape == attribution.shape
        per_frame = mask.view(2, 2, 3, 10, 10)
        red = per_frame[:, :, 0]
        assert torch.equal(red, per_frame[:, :, 1]) and torch.equal(red, per_frame[:, :, 2])
        assert (per_frame[:, :, 0].sum(dim=(2, 3)) == kept).all(), f"quantile {quantile}"
        strongest = attribution.abs().view(2, 2, 3, 10, 10).amax(2)
        assert (strongest[per_frame[:, :, 0]] > 100 - kept).all(), "the strongest pixels are the ones kept"


def test_consistency_loss_of_a_tiny_case():
    q = (torch.tensor([[1.0], [2.0]]), torch.tensor([[0.0], [0.0]]))
    q_masked = (torch.tensor([[0.0], [0.0]]), torch.tensor([[1.0], [1.0]]))
    # Q1: (1 + 4) / 2, Q2: (1 + 1) / 2
    assert consistency_loss(q, q_masked).item() == 3.5


class TinyCritic(nn.Module):
    """Q1(x) = w2 . relu(W1 x); Q2 = 0."""

    def __init__(self) -> None:
        super().__init__()
        self.hidden = nn.Sequential(nn.Linear(2, 2, bias=False), nn.ReLU())
        self.out = nn.Linear(2, 1, bias=False)
        with torch.no_grad():
            self.hidden[0].weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
            self.out.weight.copy_(torch.tensor([[1.0, -1.0]]))

    def forward(self, features, action):
        q1 = self.out(self.hidden(features))
        return q1, torch.zeros_like(q1)


def test_guided_backprop_passes_only_positive_gradients_through_relus():
    obs = torch.tensor([[1.0, 2.0], [-1.0, 3.0]])
    attribution = guided_backprop(nn.Identity(), TinyCritic(), obs, torch.zeros(2, 1))
    # gradient at the ReLU output (1, -1): guided keeps (1, 0), then the ReLU's own gate (x > 0)
    torch.testing.assert_close(attribution, torch.tensor([[1.0, 0.0], [0.0, 0.0]]))
    critic = TinyCritic()
    plain = obs.clone().requires_grad_()
    critic(plain, None)[0].sum().backward()
    torch.testing.assert_close(plain.grad, torch.tensor([[1.0, -1.0], [0.0, -1.0]]))  # the vanilla gradient differs
    assert not any(m._forward_hooks for m in critic.modules()), "the hooks are gone"


def test_masked_view_keeps_the_mask_and_fills_one_value():
    obs = torch.arange(16, dtype=torch.uint8).view(1, 1, 4, 4).expand(2, 3, 4, 4)
    mask = torch.rand(2, 3, 4, 4, generator=torch.Generator().manual_seed(1)) < 0.3
    view = masked_view(obs, mask, torch.Generator().manual_seed(2))
    assert torch.equal(view[mask], obs.float()[mask])
    fill = view[~mask].unique()
    assert len(fill) == 1 and 0 <= fill.item() <= 15


def test_optimizers_and_the_updates_losses():
    agent = new_agent("sgqn")
    owned = {id(p) for group in agent.attribution_optimizer.param_groups for p in group["params"]}
    expected = [*agent.trunk.parameters(), *agent.critic.projection.parameters(), *agent.decoder.parameters()]
    assert owned == {id(p) for p in expected} and len(owned) == len(expected)
    assert agent.attribution_optimizer.defaults["lr"] == 3e-4
    first = agent.update(batch(8))
    assert "consistency_loss" in first and "attribution_loss" not in first
    second = agent.update(batch(8, seed=1))
    assert "attribution_loss" in second
    assert abs(float(second["mask_kept"]) - 0.1) < 0.02
    logits = agent.predict_attribution(batch(2)["obs"], torch.zeros(2, 2))
    assert logits.shape == (2, *batch(2)["obs"].shape[1:])
