"""DrQ-v2: the n-step TD target, the exploration schedule and clipped noise, gradient routing, its presets."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from unseen.agents.drqv2 import DrQV2, exploration_std, noisy_action
from unseen.config import make_config
from unseen.replay import nstep_returns

from conftest import batch, changed, new_agent, snapshot


class Constant(torch.nn.Module):
    def __init__(self, *outputs):
        super().__init__()
        self.outputs = outputs

    def forward(self, *args):
        n = args[0].shape[0]
        out = tuple(o.expand(n, *o.shape[1:]) for o in self.outputs)
        return out[0] if len(out) == 1 else out


def test_nstep_td_target_by_hand():
    """Three rewards folded by the replay, then y = R_3 + gamma^3 min(Q1', Q2')(s_3, a'); a terminal window is R."""
    agent = new_agent("drqv2", discount=0.9)
    assert isinstance(agent, DrQV2) and agent.cfg.return_steps == 3
    agent.actor = Constant(torch.zeros(1, 2))
    agent.critic_target = Constant(torch.full((1, 1), 3.0), torch.full((1, 1), 5.0))
    rewards = np.array([[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]])
    reward, discount = nstep_returns(rewards, np.array([[1.0, 1.0, 1.0], [1.0, 0.0, 1.0]]), np.array([3, 3]), 0.9)
    b = {"reward": torch.from_numpy(reward), "discount": torch.from_numpy(discount)}
    target = agent.td_target(b, torch.zeros(2, agent.encoder.out_dim), std=0.5)
    expected = [1 + 0.9 + 0.81 + 0.9**3 * 3.0, 1 + 0.9]
    torch.testing.assert_close(target.squeeze(1), torch.tensor(expected))


def test_noise_schedule_is_linear_then_flat():
    assert exploration_std(0, 1.0, 0.1, 100_000) == 1.0
    assert exploration_std(50_000, 1.0, 0.1, 100_000) == pytest.approx(0.55)
    assert exploration_std(100_000, 1.0, 0.1, 100_000) == pytest.approx(0.1)
    assert exploration_std(10**7, 1.0, 0.1, 100_000) == pytest.approx(0.1)
    agent = new_agent("drqv2", std_decay_steps=100)
    assert agent.std == 1.0
    agent.updates = 25  # 50 agent steps at one update every 2
    assert agent.std == pytest.approx(0.55)
    agent.updates = 1000
    assert agent.std == pytest.approx(0.1)


def test_noise_is_clipped_and_clamped_with_a_straight_through_gradient():
    mu = torch.tensor([[0.0, 0.99, -0.99]] * 2000, requires_grad=True)
    g = torch.Generator().manual_seed(0)
    action = noisy_action(mu, std=5.0, clip=0.3, generator=g)
    assert (action - mu).abs().max() <= 0.3 + 1e-6
    assert action.abs().max() <= 1 - 1e-6
    assert (action[:, 1] < 1).all() and (action[:, 1] > 0.69 - 1e-6).all()
    action.sum().backward()
    assert torch.equal(mu.grad, torch.ones_like(mu))  # clamped or not, d action / d mu = 1
    unclipped = noisy_action(mu.detach(), std=5.0, clip=None, generator=g)
    assert (unclipped - mu).abs().max() > 1  # acting draws unclipped noise


def test_acting_deterministically_is_the_mean_and_sampling_spreads_by_the_schedule():
    agent = new_agent("drqv2", std_decay_steps=10)
    obs = batch(4)["obs"].numpy()
    mean = agent.act(obs, deterministic=True)
    with torch.no_grad():
        torch.testing.assert_close(torch.from_numpy(mean), agent.actor(agent.encoder(torch.from_numpy(obs))))
    agent.updates = 10**6
    spread = np.stack([agent.act(obs, deterministic=False) for _ in range(200)]) - mean
    assert 0.07 < spread.std() < 0.13


def test_critic_trains_the_encoder_actor_does_not_and_targets_follow():
    agent = new_agent("drqv2")
    encoder, actor, target = snapshot(agent.encoder), snapshot(agent.actor), snapshot(agent.critic_target)
    agent.update_actor(agent.encoder(batch(8)["obs"]).detach(), std=0.2)
    assert not changed(agent.encoder, encoder) and changed(agent.actor, actor)
    agent.update(batch(8, seed=1))
    assert changed(agent.encoder, encoder) and changed(agent.critic_target, target)
    assert not {"log_alpha", "alpha_optimizer"} & set(agent.state_dict())  # no temperature


def test_state_dict_round_trip_continues_identically():
    a = new_agent("drqv2")
    a.update(batch(8))
    b = new_agent("drqv2")
    b.load_state_dict(copy.deepcopy(a.state_dict()))
    ma, mb = a.update(batch(8, seed=2)), b.update(batch(8, seed=2))
    assert ma["critic_loss"] == mb["critic_loss"] and ma["std"] == mb["std"]


def test_presets_carry_drqv2s_protocol():
    paper = make_config("drqv2", "cartpole_swingup", "paper")
    assert (paper.train.batch_size, paper.train.seed_steps) == (256, 500)  # 4000 seed frames at action repeat 8
    assert (paper.agent.nstep, paper.agent.std_decay_steps, paper.agent.projection_dim) == (3, 100_000, 50)
    assert (paper.agent.actor_lr, paper.agent.critic_lr, paper.agent.critic_tau) == (1e-4, 1e-4, 0.01)
    assert (paper.agent.encoder_layers, paper.agent.update_every_steps, paper.agent.std_clip) == (4, 2, 0.3)
    cpu = make_config("drqv2", "cartpole_swingup", "cpu")
    assert cpu.agent.std_decay_steps == 2500  # 100k of the paper's 500k steps, scaled to 12,500
    walker = make_config("drqv2", "walker_walk", "paper")
    assert (walker.agent.nstep, walker.train.batch_size) == (1, 512)
    cheetah = make_config("drqv2", "cheetah_run", "paper")
    assert cheetah.agent.std_decay_steps == 500_000
    humanoid = make_config("drqv2", "humanoid_run", "paper")
    assert (humanoid.agent.actor_lr, humanoid.agent.projection_dim, humanoid.agent.std_decay_steps) == (
        8e-5, 100, 2_000_000)


def test_drqv2_keeps_its_own_encoder_and_loop_beside_dmcontrol_gbs_switches():
    """DrQ-v2's convnet ends on a ReLU (ConvTrunk's default since issue 18 ends on the conv), its loop has no burst
    of updates after the seed frames, and DMControl-GB's SAC switches are not its fields."""
    agent = new_agent("drqv2", precision="float32")
    assert isinstance(agent.encoder.convs[-1], torch.nn.ReLU)
    assert (agent.encoder(batch()["obs"]) >= 0).all()
    for preset in ("paper", "cpu", "smoke"):
        cfg = make_config("drqv2", "cartpole_swingup", preset)
        assert cfg.train.seed_updates == 1 and not hasattr(cfg.agent, "actor_recompute")
