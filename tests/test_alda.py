"""The ALDA agent: shapes through folding and fusion, gradient routing, the ALDA loss's inputs, frame
sharing between obs and next_obs, optimizers, presets and validation."""

from __future__ import annotations

import dataclasses
import re

import pytest
import torch
from torch import nn

from unseen.agents.alda import ALDAEncoder, FrameDecoder, FrameEncoder, TemporalFusion
from unseen.config import make_config, validate
from unseen.errors import UserError

from conftest import OBS, batch, changed, new_agent, snapshot, tiny_config


def overlapping_batch(size=8, seed=0):
    """A batch whose next_obs is obs moved on by one frame, as the replay buffer's stacks are."""
    b = batch(size, seed)
    g = torch.Generator().manual_seed(seed + 100)
    newest = torch.randint(0, 256, (size, 3, *OBS[1:]), generator=g, dtype=torch.uint8)
    b["next_obs"] = torch.cat([b["obs"][:, 3:], newest], dim=1)
    return b


def test_frames_fold_oldest_first_and_shapes_through_fusion():
    encoder = ALDAEncoder(OBS, dataclasses.replace(tiny_config("alda").agent, precision="bf16"))
    obs = batch(4)["obs"]
    frames = encoder.fold(obs)
    assert frames.shape == (4, 3, 3, 32, 32)
    for f in range(3):
        assert torch.equal(frames[:, f], obs[:, 3 * f : 3 * f + 3])
    z = encoder.encode(obs)
    assert z.shape == (4, 3, 12) and z.dtype == torch.float32
    assert encoder(obs).shape == (4, 16)
    assert FrameDecoder(32, 12, 32, True, False)(z[:, -1]).shape == (4, 3, 32, 32)
    assert FrameDecoder(64, 12, 32, True, False)(z[:, -1]).shape == (4, 3, 64, 64)


@pytest.mark.parametrize("latents, flat", [(12, 64), (20, 96), (32, 144), (64, 272), (128, 528)])
def test_fusion_flattens_like_the_reference_code(latents, flat):
    # The reference code's table of the 1D-CNN's flattened width per number of latents.
    fusion = TemporalFusion(3, latents, 256)
    assert fusion.net[-1].in_features == flat
    assert fusion(torch.zeros(5, 3, latents)).shape == (5, 256)


def test_frame_encoder_at_64_pixels_flattens_256x4x4():
    agent = dataclasses.replace(make_config("alda", "walker_walk", "cpu").agent, precision="bf16")
    encoder = ALDAEncoder((9, 64, 64), agent)
    assert encoder.frames.mlp[0].in_features == 256 * 4 * 4
    assert [m.out_features for m in encoder.frames.mlp if isinstance(m, nn.Linear)] == [256, 256, 12]
    assert not isinstance(encoder.frames.mlp[-1], nn.Tanh | nn.GELU)  # a linear head: no tanh


def without_alda_loss(agent):
    """The agent with its ALDA step removed: what remains of an update is the RL losses' doing."""
    agent.update_alda = lambda z, frame: {}
    return agent


@pytest.mark.parametrize("critic_to_codebook", [False, True])
def test_rl_gradient_stops_at_the_quantizer(critic_to_codebook):
    agent = without_alda_loss(new_agent("alda", actor_update_every=1, alda_critic_to_codebook=critic_to_codebook))
    frames, fusion = snapshot(agent.trunk.frames), snapshot(agent.trunk.fusion)
    agent.update(overlapping_batch())
    # Neither the critic's nor the actor's loss reaches the per-frame conv encoder ...
    assert all(p.grad is None for p in agent.trunk.frames.parameters())
    assert not changed(agent.trunk.frames, frames)
    # ... the critic's reaches the fusion, and the codebook only in the paper's routing.
    assert changed(agent.trunk.fusion, fusion)
    codebook_grad = agent.trunk.quantizer.values.grad
    if critic_to_codebook:
        assert codebook_grad is not None and codebook_grad.abs().sum() > 0
    else:
        assert codebook_grad is None


def test_alda_loss_trains_the_conv_encoder_and_decoder_not_the_codebook_by_default():
    agent = new_agent("alda")
    frames, decoder, codebook = snapshot(agent.trunk.frames), snapshot(agent.decoder), snapshot(agent.trunk.quantizer)
    metrics = agent.update(overlapping_batch())
    assert changed(agent.trunk.frames, frames) and changed(agent.decoder, decoder)
    assert not changed(agent.trunk.quantizer, codebook)  # no quantization loss, no RL gradient
    assert {"alda_loss", "reconstruction_loss", "commitment_loss", "quantization_loss"} <= set(metrics)
    quantizing = new_agent("alda", alda_quantization=0.01)
    quantizing.update(overlapping_batch())
    assert changed(quantizing.trunk.quantizer, codebook)


def test_paper_routing_moves_the_codebook_through_the_critic():
    agent = new_agent("alda", alda_critic_to_codebook=True)
    codebook = snapshot(agent.trunk.quantizer)
    agent.update(overlapping_batch())
    assert changed(agent.trunk.quantizer, codebook)


def test_alda_loss_sees_the_newest_frame_and_its_latents():
    agent = new_agent("alda")
    seen = {}
    agent.update_alda = lambda z, frame: seen.update(z=z, frame=frame) or {}
    b = overlapping_batch()
    agent.update(b)
    assert torch.equal(seen["frame"], b["obs"][:, -3:])
    assert seen["z"].requires_grad
    with torch.no_grad():
        torch.testing.assert_close(seen["z"], agent.trunk.frames(b["obs"][:, -3:]))  # the encoder has not moved


def test_decoder_gets_the_retrieved_values_and_the_loss_is_bce_plus_commitment():
    agent = new_agent("alda", alda_commitment=0.5)
    b = overlapping_batch()
    z = agent.trunk.frames(b["obs"][:, -3:])
    with torch.no_grad():
        z_q = agent.trunk.quantizer.retrieve(z)
        logits = agent.decoder(z_q)
        bce = nn.functional.binary_cross_entropy_with_logits(logits, b["obs"][:, -3:].float() / 255)
        commitment = (z - z_q).pow(2).mean()
    metrics = agent.update_alda(z, b["obs"][:, -3:])
    assert metrics["reconstruction_loss"] == pytest.approx(bce.item(), rel=1e-5)
    assert metrics["commitment_loss"] == pytest.approx(commitment.item(), rel=1e-5)
    assert metrics["alda_loss"] == pytest.approx(bce.item() + 0.5 * commitment.item(), rel=1e-5)


@pytest.mark.parametrize("make", [overlapping_batch, batch])
def test_shared_frames_give_the_latents_of_encoding_next_obs_anew(make):
    agent = new_agent("alda", precision="float32")
    b = make()
    z, z_next, newest = agent.encode_batch(b["obs"], b["next_obs"])
    with torch.no_grad():
        torch.testing.assert_close(z, agent.trunk.encode(b["obs"]))
        torch.testing.assert_close(z_next, agent.trunk.encode(b["next_obs"]))
        torch.testing.assert_close(newest, z[:, -1])


def test_optimizers_step_what_the_routing_says():
    agent = new_agent("alda")

    def ids(params):
        return {id(p) for p in params}

    def stepped(optimizer):
        return ids(p for group in optimizer.param_groups for p in group["params"])

    assert stepped(agent.critic_optimizer) == ids([*agent.trunk.fusion.parameters(), *agent.critic.parameters()])
    assert stepped(agent.alda_optimizer) == ids([*agent.trunk.frames.parameters(), *agent.decoder.parameters()])
    assert stepped(agent.codebook_optimizer) == {id(agent.trunk.quantizer.values)}
    assert isinstance(agent.alda_optimizer, torch.optim.AdamW)
    assert agent.alda_optimizer.param_groups[0]["weight_decay"] == 0.1
    assert agent.alda_optimizer.param_groups[0]["lr"] == agent.codebook_optimizer.param_groups[0]["lr"] == 1e-3
    assert isinstance(agent.critic.q1[1], nn.GELU) and isinstance(agent.actor.net[1], nn.GELU)
    assert agent.alpha.item() == pytest.approx(0.1)


def test_latents_are_the_newest_frames_retrieved_values():
    agent = new_agent("alda", alda_retrieval="argmin")
    obs = batch(6)["obs"]
    latents = agent.latents(obs)
    assert latents.shape == (6, 12) and latents.dtype == torch.float32 and not latents.requires_grad
    codebook = agent.codebook()
    assert all(torch.isin(latents[:, i], codebook[i]).all() for i in range(12))
    changed_older = obs.clone()
    changed_older[:, :6] = 0
    assert torch.equal(agent.latents(changed_older), latents)
    assert agent.decode(latents).shape == (6, 3, 32, 32)


def test_presets_give_alda_its_protocol_only_in_paper():
    paper = validate(make_config("alda", "cartpole_balance", "paper"))
    assert (paper.env.image_size, paper.env.action_repeat, paper.train.steps) == (64, 4, 500_000)
    assert make_config("alda", "finger_spin", "paper").env.action_repeat == 2
    for preset in ("cpu", "smoke"):
        alda, drq = make_config("alda", "cartpole_balance", preset), make_config("drq", "cartpole_balance", preset)
        assert alda.train.seed_updates == 1  # ALDA keeps its loop: its reference code is not DMControl-GB's
        drq.train.seed_updates = 1
        assert (alda.env, alda.train) == (drq.env, drq.train)


def test_alda_keeps_its_update_from_before_issue_18():
    """ALDA's reference code is not DMControl-GB's: its actor learns from the critic step's features and its log-prob
    takes the exact tanh term (the config's defaults, which its actor must follow)."""
    agent = new_agent("alda")
    assert not agent.cfg.actor_recompute and agent.cfg.exact_log_det and agent.actor.exact_log_det
    assert not new_agent("alda", exact_log_det=False).actor.exact_log_det


def test_alda_frames_must_halve_four_times():
    cfg = tiny_config("alda")
    cfg.env.image_size = 72
    with pytest.raises(UserError, match=re.escape("env.image_size=72 does not suit ALDA's encoder")):
        validate(cfg)


def test_fast_path_agrees_with_the_reference_path():
    obs = batch(16)["obs"][:, -3:]
    reference = FrameEncoder(32, 12, 32, bf16=False, channels_last=False)
    for bf16, channels_last, tolerance in ((False, True, 1e-5), (True, False, 0.05), (True, True, 0.05)):
        fast = FrameEncoder(32, 12, 32, bf16=bf16, channels_last=channels_last)
        fast.load_state_dict(reference.state_dict())
        torch.testing.assert_close(fast(obs), reference(obs), rtol=tolerance, atol=tolerance)
    decoder = FrameDecoder(32, 12, 32, bf16=False, channels_last=False)
    fast_decoder = FrameDecoder(32, 12, 32, bf16=True, channels_last=False)
    fast_decoder.load_state_dict(decoder.state_dict())
    z = reference(obs)
    logits = decoder(z)
    # Logits reach tens at initialisation; bfloat16 keeps about 3 significant digits of each.
    assert ((fast_decoder(z) - logits).norm() / logits.norm()).item() < 0.02
