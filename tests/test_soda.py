"""SODA: the EMA target, BatchNorm on running statistics outside its step, what its optimizer owns, its own batch."""

from __future__ import annotations

import torch
from torch import nn

from unseen.agents.soda import SODAConfig, soda_loss

from conftest import batch, changed, new_agent, snapshot


def batch_norms(agent) -> list[nn.BatchNorm1d]:
    return [m for module in (agent.soda, agent.soda_projection_target) for m in module.modules()
            if isinstance(m, nn.BatchNorm1d)]


def test_published_defaults():
    cfg = SODAConfig()
    assert (cfg.soda_lr, cfg.soda_beta1, cfg.soda_update_every, cfg.soda_batch_size, cfg.soda_tau) == (
        3e-4, 0.9, 2, 256, 0.005)
    assert cfg.aux_batch == (256, 2)


def test_target_is_the_ema_of_the_online_trunk_and_projection():
    agent = new_agent("soda")
    agent.update(batch(8))  # the targets move away from the online networks
    obs = batch(8, seed=1)["obs"]
    before = [p.detach().clone() for p in (*agent.soda_trunk_target.parameters(),
                                          *agent.soda_projection_target.parameters())]
    critic_target = snapshot(agent.trunk_target)
    agent.update_soda(obs)
    tau = agent.cfg.soda_tau
    online = [*agent.trunk.parameters(), *agent.soda.projection.parameters()]
    after = [*agent.soda_trunk_target.parameters(), *agent.soda_projection_target.parameters()]
    for t, p, t0 in zip(after, online, before, strict=True):
        assert torch.equal(t, tau * p.detach() + (1 - tau) * t0)
    assert not changed(agent.trunk_target, critic_target), "the SODA step leaves SAC's target trunk alone"
    assert not any(p.requires_grad for p in after)


def test_its_optimizer_owns_the_trunk_and_the_soda_head_only():
    agent = new_agent("soda")
    owned = {id(p) for group in agent.soda_optimizer.param_groups for p in group["params"]}
    expected = [*agent.trunk.parameters(), *agent.soda.parameters()]
    assert owned == {id(p) for p in expected} and len(owned) == len(expected)
    assert agent.soda_optimizer.defaults["lr"] == 3e-4


def test_loss_compares_normalised_rows():
    prediction, target = torch.tensor([[3.0, 4.0]]), torch.tensor([[0.0, 2.0]])
    # (0.6, 0.8) against (0, 1): ((0.6)^2 + (0.2)^2) / 2
    torch.testing.assert_close(soda_loss(prediction, target), torch.tensor(0.2))


def test_batch_norm_in_eval_mode_outside_the_soda_step():
    agent = new_agent("soda")
    assert batch_norms(agent) and not any(m.training for m in batch_norms(agent))
    stats = [m.running_mean.clone() for m in batch_norms(agent)]
    agent.update(batch(8))
    agent.update(batch(8, seed=1))  # a SODA step: batch statistics inside, running statistics updated
    assert not any(m.training for m in batch_norms(agent)), "back in eval mode after the step"
    moved = [m.running_mean.clone() for m in batch_norms(agent)]
    assert all(not torch.equal(a, b) for a, b in zip(stats, moved, strict=True))
    obs = batch(1, seed=2)["obs"]
    agent.act(obs[0].numpy(), deterministic=True)
    agent.act(obs[0].numpy(), deterministic=False)
    with torch.no_grad():  # one observation through the predictor works on running statistics (train mode: error)
        crop = agent.augment(obs)
        single = agent.soda.predictor(agent.soda.projection(agent.trunk(crop).float()))
        pair = agent.soda.predictor(agent.soda.projection(agent.trunk(torch.cat([crop, crop.flip(0)])).float()))
    torch.testing.assert_close(single[0], pair[0])
    assert all(torch.equal(m.running_mean, s) for m, s in zip(batch_norms(agent), moved, strict=True))


def test_soda_step_every_second_update_on_its_own_batch(monkeypatch):
    agent = new_agent("soda")
    seen = []
    step = agent.update_soda
    monkeypatch.setattr(agent, "update_soda", lambda obs: seen.append(obs.shape) or step(obs))
    aux = batch(5, seed=9)["obs"]
    assert "soda_loss" not in agent.update(batch(8) | {"aux_obs": aux})
    assert "soda_loss" in agent.update(batch(8, seed=1) | {"aux_obs": aux})
    agent.update(batch(8, seed=2))
    agent.update(batch(8, seed=3))  # without a batch of its own, the step takes the update's observations
    assert seen == [aux.shape, batch(8)["obs"].shape]
