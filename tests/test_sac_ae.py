"""The SAC+AE agent: what trains its encoder, the reconstruction target, the decoder's shapes, schedule, presets."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from unseen.agents.sac import SACConfig
from unseen.agents.sac_ae import PixelDecoder, reconstruction_target
from unseen.config import make_config, validate
from unseen.nets import ConvTrunk

from conftest import batch, changed, new_agent, snapshot


def test_reconstruction_trains_encoder_and_latent_only():
    agent = new_agent("sac_ae")
    agent.update_autoencoder(batch()["obs"])
    for module in (agent.trunk, agent.critic.projection, agent.decoder):
        assert all(p.grad is not None for p in module.parameters())
        assert sum(p.grad.abs().sum() for p in module.parameters()) > 0
    for module in (agent.actor, agent.critic.q1, agent.critic.q2):
        assert all(p.grad is None for p in module.parameters())


def test_actor_loss_does_not_reach_the_encoder():
    # No critic and no reconstruction step: the trunk and the latent could only move by the actor's loss.
    agent = new_agent("sac_ae", critic_lr=0.0, sac_ae_encoder_lr=0.0, actor_update_every=1)
    trunk, latent, actor = snapshot(agent.trunk), snapshot(agent.critic.projection), snapshot(agent.actor)
    metrics = agent.update(batch())
    assert "actor_loss" in metrics and "reconstruction_loss" in metrics
    assert not changed(agent.trunk, trunk) and not changed(agent.critic.projection, latent)
    assert changed(agent.actor, actor)


def test_reconstruction_moves_the_encoder():
    agent = new_agent("sac_ae", critic_lr=0.0)
    trunk, latent = snapshot(agent.trunk), snapshot(agent.critic.projection)
    agent.update(batch())
    assert changed(agent.trunk, trunk) and changed(agent.critic.projection, latent)


def test_reconstruction_target_is_five_bit_pixels_with_one_bin_of_noise():
    obs = torch.tensor([0, 7, 8, 100, 255], dtype=torch.uint8).repeat(1000)
    target = reconstruction_target(obs, 5, torch.Generator().manual_seed(0))
    bins = torch.tensor([0, 0, 1, 12, 31]).repeat(1000) / 32 - 0.5  # floor(o / 8) / 32, centred
    noise = target - bins
    assert noise.min() >= 0 and noise.max() < 1 / 32
    assert noise.mean().item() == pytest.approx(1 / 64, rel=0.05)
    same = reconstruction_target(obs, 5, torch.Generator().manual_seed(0))
    assert torch.equal(target, same)
    assert reconstruction_target(obs, 8, torch.Generator()).min() >= -0.5


@pytest.mark.parametrize("size, layers", [(84, 4), (64, 4), (65, 4), (32, 2), (84, 11)])
def test_decoder_mirrors_the_trunk_to_the_stack(size, layers):
    trunk = ConvTrunk(9, size, layers, 8, True, True)
    decoder = PixelDecoder(7, trunk, (9, size, size), layers, True, True)
    assert decoder(torch.zeros(2, 7)).shape == (2, 9, size, size)


def test_latents_penalty_and_pictures():
    agent = new_agent("sac_ae")
    obs = batch(5)["obs"]
    latents = agent.latents(obs)
    assert latents.shape == (5, 8) and latents.dtype == torch.float32 and not latents.requires_grad
    assert latents.abs().max() <= 1  # tanh
    metrics = agent.update_autoencoder(obs)
    assert metrics["latent_penalty"] == pytest.approx((0.5 * latents.pow(2).sum(1)).mean().item(), rel=1e-5)
    pictures = agent.decode(latents)
    assert pictures.shape == (5, 3, 32, 32) and pictures.min() >= 0 and pictures.max() <= 1


def test_optimizers_and_autoencoder_schedule():
    agent = new_agent("sac_ae", sac_ae_update_every=2)

    def stepped(optimizer):
        return {id(p) for group in optimizer.param_groups for p in group["params"]}

    encoder_parameters = {id(p) for m in (agent.trunk, agent.critic.projection) for p in m.parameters()}
    assert stepped(agent.encoder_optimizer) == encoder_parameters
    assert stepped(agent.decoder_optimizer) == {id(p) for p in agent.decoder.parameters()}
    assert agent.decoder_optimizer.param_groups[0]["weight_decay"] == 1e-7
    assert "reconstruction_loss" not in agent.update(batch())
    assert "reconstruction_loss" in agent.update(batch(seed=1))


def test_presets():
    paper = validate(make_config("sac_ae", "walker_walk", "paper"))
    assert (paper.env.image_size, paper.agent.encoder_layers, paper.agent.sac_ae_latent_dim) == (84, 4, 50)
    cpu, drq = make_config("sac_ae", "walker_walk", "cpu"), make_config("drq", "walker_walk", "cpu")
    assert (cpu.env, cpu.train) == (drq.env, drq.train)
    assert cpu.agent.trunk_final_relu and not drq.agent.trunk_final_relu  # SAC-AE's PixelEncoder ends on a ReLU
    drq.agent.trunk_final_relu = True
    shared = [field.name for field in dataclasses.fields(SACConfig)]  # SAC's fields: what the two configs share
    assert [getattr(cpu.agent, name) for name in shared] == [getattr(drq.agent, name) for name in shared]


