"""CURL: the bilinear logits and loss by hand, the encoders that anchor and positive pass, what its optimizer owns."""

from __future__ import annotations

import math

import torch

from unseen.agents.curl import curl_logits, curl_loss

from conftest import batch, changed, new_agent, snapshot


def test_logits_and_loss_of_a_hand_built_batch():
    z_anchor = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    z_positive = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    w = torch.tensor([[1.0, 2.0], [0.0, 1.0]])
    # z_a W z_pos^T = [[1, 4], [0, 2]]; minus each row's maximum
    logits = curl_logits(z_anchor, z_positive, w)
    assert torch.equal(logits, torch.tensor([[-3.0, 0.0], [-2.0, 0.0]]))
    # cross-entropy with labels 0, 1: row 0's positive scores -3, row 1's 0
    expected = ((3 + math.log(1 + math.exp(-3))) + math.log(1 + math.exp(-2))) / 2
    assert curl_loss(z_anchor, z_positive, w).item() == torch.tensor(expected).item()


def test_its_optimizer_owns_w_the_trunk_and_the_critic_projection_only():
    agent = new_agent("curl")
    owned = {id(p) for group in agent.curl_optimizer.param_groups for p in group["params"]}
    expected = [agent.curl_head.w, *agent.trunk.parameters(), *agent.critic.projection.parameters()]
    assert owned == {id(p) for p in expected} and len(owned) == len(expected)
    assert agent.curl_optimizer.defaults["lr"] == 1e-3 and agent.curl_optimizer.defaults["betas"] == (0.9, 0.999)
    assert agent.curl_head.w.shape == (agent.projection_dim, agent.projection_dim)


def test_anchor_passes_the_online_encoder_and_positive_the_target():
    agent = new_agent("curl")
    agent.update(batch(8))  # the targets move away from the online networks
    anchor, positive = agent.augment(batch(8, seed=1)["obs"]), agent.augment(batch(8, seed=2)["obs"])
    with torch.no_grad():
        z_a = agent.critic.projection(agent.trunk(anchor))
        z_pos = agent.critic_target.projection(agent.trunk_target(positive))
        expected = curl_loss(z_a, z_pos, agent.curl_head.w)
    before = {name: snapshot(getattr(agent, name)) for name in (
        "trunk", "curl_head", "actor", "critic_target", "trunk_target")}
    q_heads = [p.detach().clone() for p in agent.critic.q1.parameters()]
    projection = snapshot(agent.critic.projection)
    loss = agent.update_curl(anchor, positive)["curl_loss"]
    torch.testing.assert_close(loss, expected)
    assert changed(agent.trunk, before["trunk"]) and changed(agent.curl_head, before["curl_head"])
    assert changed(agent.critic.projection, projection)
    for name in ("actor", "critic_target", "trunk_target"):
        assert not changed(getattr(agent, name), before[name]), f"{name} moved"
    assert all(torch.equal(p, q) for p, q in zip(agent.critic.q1.parameters(), q_heads, strict=True))


def test_contrastive_step_every_second_update():
    agent = new_agent("curl")
    assert "curl_loss" not in agent.update(batch(8))
    assert "curl_loss" in agent.update(batch(8, seed=1))
