"""SAC's pieces: the soft TD target, the squashed Gaussian, the temperature's direction, gradient routing, targets."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch

from unseen.agents import AGENTS
from unseen.config import ALGOS
from unseen.nets import Actor

from conftest import batch, new_agent


class Constant(torch.nn.Module):
    def __init__(self, *outputs):
        super().__init__()
        self.outputs = outputs

    def forward(self, *args, **kwargs):
        n = args[0].shape[0]
        return tuple(o.expand(n, *o.shape[1:]) if o is not None else None for o in self.outputs)


def test_registry_matches_the_config_names():
    assert tuple(AGENTS) == ALGOS


def test_soft_td_target_by_hand():
    agent = new_agent(init_temperature=0.1, discount=0.99)
    agent.actor = Constant(torch.zeros(1, 2), torch.full((1, 1), -2.0))  # a', log pi(a'|s') = -2
    agent.critic_target = Constant(torch.full((1, 1), 3.0), torch.full((1, 1), 5.0))  # Q1', Q2'
    b = batch(2)
    b["reward"] = torch.tensor([1.0, 1.0])
    b["discount"] = torch.tensor([1.0, 0.0])  # the second transition is terminal
    target = agent.td_target(b)
    # y = r + gamma * (min(Q1', Q2') - alpha * log pi) = 1 + 0.99 * (3 + 0.1 * 2); a terminal one is just r.
    torch.testing.assert_close(target, torch.tensor([[1 + 0.99 * 3.2], [1.0]]))


def test_squashed_gaussian_log_prob_matches_torch_distributions():
    actor = Actor(5, 4, 16, 3, -10.0, 2.0, exact_log_det=True)
    features = torch.randn(64, 5)
    g = torch.Generator().manual_seed(1)
    action, log_prob = actor(features, g)
    mu, log_std = actor.net(actor.projection(features)).chunk(2, dim=-1)
    log_std = -10 + 0.5 * 12 * (torch.tanh(log_std) + 1)
    dist = torch.distributions.TransformedDistribution(
        torch.distributions.Normal(mu, log_std.exp()), [torch.distributions.TanhTransform(cache_size=1)]
    )
    clipped = action.clamp(-1 + 1e-6, 1 - 1e-6)
    expected = dist.log_prob(clipped).sum(-1, keepdim=True)
    torch.testing.assert_close(log_prob, expected, rtol=1e-3, atol=1e-3)
    mean, none = actor(features, deterministic=True)
    assert none is None and torch.equal(mean, torch.tanh(mu))


@pytest.mark.parametrize("log_prob, direction", [(5.0, 1), (-5.0, -1)])
def test_temperature_rises_when_entropy_is_below_target_and_falls_above(log_prob, direction):
    agent = new_agent()
    agent.actor = Constant(torch.zeros(1, 2), torch.full((1, 1), log_prob, requires_grad=True))
    before = agent.alpha.item()
    agent.update_actor_and_alpha(torch.zeros(4, agent.trunk.out_dim))
    # target entropy is -|A| = -2: entropy -log pi = -5 is below it (alpha up), 5 above it (alpha down)
    assert np.sign(agent.alpha.item() - before) == direction


def saturated_actor(exact: bool) -> tuple[Actor, torch.Tensor]:
    """An actor whose every pre-tanh sample is about 20 (far past float32's tanh = 1), and its input."""
    actor = Actor(5, 4, 16, 3, -10.0, 2.0, exact_log_det=exact)
    with torch.no_grad():
        last = actor.net[-1]
        last.weight.zero_()
        last.bias.copy_(torch.tensor([20.0, -20.0, 20.0, -10.0, -10.0, -10.0]))  # mu, then log std (tanh'd: -10)
    return actor, torch.randn(4, 5)


def test_log_prob_of_a_saturated_action_is_dmcontrol_gbs_floored_formula():
    actor, features = saturated_actor(exact=False)
    action, log_prob = actor(features, torch.Generator().manual_seed(0))
    assert torch.equal(action.abs(), torch.ones_like(action))
    noise = torch.randn(4, 3, generator=torch.Generator().manual_seed(0))  # the draw the actor made
    log_std = -10 + 0.5 * 12 * (torch.tanh(torch.full((4, 3), -10.0)) + 1)
    gaussian = (-0.5 * noise.pow(2) - log_std).sum(-1, keepdim=True) - 1.5 * math.log(2 * math.pi)
    # Every dimension's tanh term is log(relu(1 - 1) + 1e-6) = log(1e-6), whatever u is.
    torch.testing.assert_close(log_prob, gaussian - 3 * math.log(1e-6))
    exact, _ = saturated_actor(exact=True)
    exact.load_state_dict(actor.state_dict())
    _, exact_log_prob = exact(features, torch.Generator().manual_seed(0))
    # The exact correction keeps falling with |u| (2 log 2 - 2|u| per dimension): tens of nats apart here.
    assert (exact_log_prob - log_prob).min() > 20


def test_trunk_features_can_be_negative_unless_it_ends_on_a_relu():
    obs = batch()["obs"]
    dmcgb = new_agent(precision="float32").trunk(obs)
    assert (dmcgb < 0).float().mean() > 0.2
    assert (new_agent(precision="float32", trunk_final_relu=True).trunk(obs) >= 0).all()


@pytest.mark.parametrize("algo", ["sac", "drq", "svea", "cg2a"])
def test_actor_learns_from_the_features_after_the_critic_step(algo, monkeypatch):
    """DMControl-GB re-encodes the actor's obs after the critic step; `actor_recompute=false` reuses the features
    the critic step started from."""
    seen = {}
    for recompute in (True, False):
        agent = new_agent(algo, actor_update_every=1, precision="float32", actor_recompute=recompute)
        views = []
        update_critic = agent.update_critic

        def recording(data, update_critic=update_critic, views=views):
            metrics, features, view = update_critic(data)
            views.append((features.detach().clone(), view))
            return metrics, features, view

        agent.update_critic = recording
        agent.update_actor_and_alpha = lambda features, r=recompute: seen.__setitem__(r, features) or {}
        agent.update(batch())
        before, view = views[0]
        with torch.no_grad():
            after = agent.trunk(view)
        assert not torch.equal(before, after)  # the critic step moved the trunk
        assert torch.equal(seen[recompute], after if recompute else before)


def test_actor_loss_never_reaches_the_conv_trunk():
    agent = new_agent(critic_lr=0.0, actor_update_every=1)
    assert not {id(p) for p in agent.trunk.parameters()} & {
        id(p) for group in agent.actor_optimizer.param_groups for p in group["params"]
    }
    trunk = copy.deepcopy(agent.trunk.state_dict())
    actor = copy.deepcopy(agent.actor.state_dict())
    metrics = agent.update(batch())
    assert "actor_loss" in metrics
    for name, value in agent.trunk.state_dict().items():
        torch.testing.assert_close(value, trunk[name], rtol=0, atol=0)  # moved by nothing (critic lr is 0)
    assert any(not torch.equal(v, actor[k]) for k, v in agent.actor.state_dict().items())


def test_critic_loss_trains_the_conv_trunk():
    agent = new_agent()
    trunk = copy.deepcopy(agent.trunk.state_dict())
    agent.update(batch())
    assert any(not torch.equal(v, trunk[k]) for k, v in agent.trunk.state_dict().items())


def test_polyak_targets_by_hand():
    agent = new_agent(critic_tau=0.25, encoder_tau=0.5)
    for module in (agent.critic, agent.trunk):
        for p in module.parameters():
            p.data.fill_(1.0)
    for module in (agent.critic_target, agent.trunk_target):
        for p in module.parameters():
            p.data.fill_(0.0)
    agent.update_targets()
    assert all(torch.all(p == 0.25) for p in agent.critic_target.q1.parameters())
    assert all(torch.all(p == 0.25) for p in agent.critic_target.q2.parameters())
    assert all(torch.all(p == 0.5) for p in agent.critic_target.projection.parameters())
    assert all(torch.all(p == 0.5) for p in agent.trunk_target.parameters())


def test_actor_and_target_update_schedule():
    agent = new_agent(actor_update_every=2, target_update_every=2)
    target = copy.deepcopy(agent.critic_target.state_dict())
    first = agent.update(batch())
    assert "actor_loss" not in first
    assert all(torch.equal(v, target[k]) for k, v in agent.critic_target.state_dict().items())
    second = agent.update(batch(seed=1))
    assert "actor_loss" in second
    assert any(not torch.equal(v, target[k]) for k, v in agent.critic_target.state_dict().items())


@pytest.mark.parametrize("algo", ALGOS)
def test_state_dict_round_trip_continues_identically(algo):
    a = new_agent(algo)
    a.update(batch())
    b = new_agent(algo)
    b.load_state_dict(copy.deepcopy(a.state_dict()))
    ma, mb = a.update(batch(seed=3)), b.update(batch(seed=3))
    assert ma == mb


def test_fast_path_agrees_with_the_reference_path():
    fast = new_agent(precision="bf16", channels_last=True)
    reference = new_agent(precision="float32", channels_last=False, fast_kernels=False)
    reference.load_state_dict(copy.deepcopy(fast.state_dict()))
    data = batch(16)
    features = fast.trunk(data["obs"])
    assert features.dtype == torch.bfloat16 and reference.trunk(data["obs"]).dtype == torch.float32
    torch.testing.assert_close(features.float(), reference.trunk(data["obs"]), rtol=0.05, atol=0.02)
    # Downstream of the projection everything is float32 again, and the Q values agree closely.
    q_fast = torch.cat(fast.critic(features, data["action"]))
    q_reference = torch.cat(reference.critic(reference.trunk(data["obs"]), data["action"]))
    assert q_fast.dtype == torch.float32
    torch.testing.assert_close(q_fast, q_reference, rtol=0.05, atol=0.02)
    # Whole updates (critic, actor, temperature) from the same state give close losses.
    fast.updates = reference.updates = fast.cfg.actor_update_every - 1
    metrics_fast, metrics_reference = fast.update(data), reference.update(data)
    assert metrics_fast.keys() == metrics_reference.keys()
    for key, value in metrics_reference.items():
        assert float(metrics_fast[key]) == pytest.approx(float(value), rel=0.05, abs=0.02), key


def test_act_returns_bounded_actions_for_one_or_many_observations():
    agent = new_agent()
    obs = batch(4)["obs"].numpy()
    one = agent.act(obs[0], deterministic=True)
    many = agent.act(obs, deterministic=False)
    assert one.shape == (2,) and many.shape == (4, 2)
    assert np.all(np.abs(many) <= 1)
    np.testing.assert_array_equal(agent.act(obs[0], deterministic=True), one)
