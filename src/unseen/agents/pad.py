"""PAD (Hansen et al., 2021, "Self-Supervised Policy Adaptation during Deployment") as DMControl-GB implements its
training (`src/algorithms/pad.py`, `src/algorithms/modules.py` `HeadCNN`, `InverseDynamics`, `scripts/pad.sh`,
`src/arguments.py`), and its test-time adaptation as the paper and its own repository describe it
(nicklashansen/policy-adaptation-during-deployment `src/eval.py`, `src/arguments.py`).

Networks. The conv trunk of `encoder_layers` = 11 layers is split: the first `encoder_layers - pad_head_layers` = 8
are shared by everything; the last 3 are the actor's and critic's head (DMControl-GB's `num_shared_layers 8
--num_head_layers 3`; the `preset` hook keeps that proportion for shallower trunks: 3 + 1 of the `cpu` preset's 4).
The inverse-dynamics head has 3 conv layers of its own on the shared ones, a projection
(Linear, LayerNorm, tanh) and an MLP:
    e(o) = proj(convs_id(shared(o))),    a^ = MLP([e(o), e(o')])      (no squashing)
    L_ID = || a^ - a ||^2                                               (mean over batch and action dimensions)

Training: RAD (random crops of frames rendered larger, `agents.rad`), and every `pad_update_every` updates one step of
L_ID on the critic's crops of the update's `(o, a, o')` with its own Adam (lr `pad_lr` = 1e-3, betas (0.9, 0.999),
DMControl-GB's aux_lr and aux_beta) over the shared layers and the inverse-dynamics head.

Test-time adaptation (`adapter`, `unseen eval --adapt`). DMControl-GB's `eval.py` copies the agent for each episode
and, after every environment step, calls `augmentations.prepare_pad_batch`, which does not exist in that repository;
PAD's own `eval.py` (and the paper, Sec. 3) does this: after each step, a batch of `adapt_batch_size` = 32 copies of
the transition just made `(o_t, a_t, o_t+1)`, each observation independently random-cropped, and one gradient step of
L_ID. unseen's adapter does exactly that:
  - a deep copy of the agent per episode (the agent, hence the checkpoint, is never touched), with a fresh Adam
    (DMControl-GB's `init_pad_optimizer`: lr `pad_lr`) over the shared layers and the inverse-dynamics head, so the
    actor's and critic's heads, projections and MLPs and every target stay as trained;
  - the crops from the copy's generator seeded with the episode's seed, so an adapted episode is a function of the
    checkpoint and the seed (whichever worker runs it);
  - act with the current (adapted so far) parameters, step, then adapt on that step's transition.

Where unseen differs from DMControl-GB in training: the actor reuses the critic's trunk features (common base); the
trunk's target starts equal to it (DMControl-GB's `InverseDynamics` re-initialises the shared layers after the critic's
target has copied them).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from unseen.agents.base import Metrics
from unseen.agents.rad import RAD, RADConfig
from unseen.agents.rad import preset as rad_preset
from unseen.errors import UserError
from unseen.nets import ConvTrunk, Projection, mlp, orthogonal_init
from unseen.schema import param

if TYPE_CHECKING:
    from unseen.config import EnvConfig, RunConfig


@dataclass
class PADConfig(RADConfig):
    """RAD's fields, the split of the trunk and PAD's inverse-dynamics head (DMControl-GB's scripts/pad.sh, `aux_*`)."""

    pad_head_layers: int = param(3, ge=0)
    """Last conv layers of the trunk that the actor and critic alone use; the inverse-dynamics head has as many of its
    own on the others (DMControl-GB: num_head_layers 3 of 11)."""
    pad_lr: float = param(1e-3, gt=0)
    """Adam learning rate of the inverse-dynamics loss, in training and adaptation (DMControl-GB: aux_lr)."""
    pad_beta1: float = param(0.9, ge=0, lt=1)
    """Adam beta1 of the inverse-dynamics loss (DMControl-GB: aux_beta)."""
    pad_update_every: int = param(2, gt=0)
    """Take an inverse-dynamics step every this many updates (DMControl-GB: aux_update_freq)."""
    adapt_batch_size: int = param(32, gt=0)
    """Copies of the current transition in each adaptation step, each cropped at random (PAD: pad_batch_size)."""

    def check(self, env: EnvConfig) -> None:
        super().check(env)
        if self.pad_head_layers >= self.encoder_layers:
            raise UserError(
                f"agent.pad_head_layers={self.pad_head_layers} must be below agent.encoder_layers="
                f"{self.encoder_layers}: the inverse-dynamics head shares the first layers of the trunk"
            )


PAPER_LAYERS = 11
"""DMControl-GB's trunk depth, of which `pad_head_layers` (3) are the actor's and critic's head."""


def preset(cfg: RunConfig) -> None:
    """RAD's frames (`agents.rad.preset`), and a trunk of another depth split in DMControl-GB's proportion, 3 of 11
    layers the head (at least one): the `cpu` preset's 4 layers are 3 shared and 1 head."""
    rad_preset(cfg)
    assert isinstance(cfg.agent, PADConfig)
    layers = cfg.agent.encoder_layers
    if layers != PAPER_LAYERS:
        cfg.agent.pad_head_layers = max(1, round(cfg.agent.pad_head_layers * layers / PAPER_LAYERS))


class InverseDynamicsHead(nn.Module):
    """Conv layers of its own (ReLU before each, as DMControl-GB's `HeadCNN`), a projection and the MLP that predicts
    the action from two observations' embeddings."""

    def __init__(
        self, convs: list[nn.Module], feature_dim: int, projection_dim: int, hidden_dim: int, action_dim: int
    ) -> None:
        super().__init__()
        self.convs = nn.Sequential(*convs)
        self.convs.apply(orthogonal_init)
        self.projection = Projection(feature_dim, projection_dim)
        self.mlp = mlp(2 * projection_dim, hidden_dim, action_dim)


class PAD(RAD):
    """RAD + an inverse-dynamics head on the shared trunk layers, trained jointly and used to adapt at test time."""

    cfg: PADConfig

    def __init__(
        self, obs_shape: tuple[int, int, int], action_dim: int, cfg: PADConfig, device: torch.device, seed: int
    ) -> None:
        super().__init__(obs_shape, action_dim, cfg, device, seed)
        assert isinstance(self.trunk, ConvTrunk)
        self.fast = self.trunk.fast
        convs = list(self.trunk.convs)  # conv, relu, conv, ..., conv[, relu]
        cut = 2 * (cfg.encoder_layers - cfg.pad_head_layers) - 1  # after the last shared conv
        own = [copy.deepcopy(module) for module in convs[cut:]] if cfg.pad_head_layers else []
        self.shared = convs[:cut] if cfg.pad_head_layers else convs
        head = InverseDynamicsHead(own, self.trunk.out_dim, self.projection_dim, cfg.hidden_dim, action_dim)
        self.fast.lay_out(head.convs)
        self.pad_head = head.to(device)
        # Not a module of the agent: a view of the shared layers and the head's, run as one conv stack.
        self.pad_convs = nn.Sequential(*self.shared, *head.convs)
        self.pad_optimizer = self.new_pad_optimizer()

    def pad_parameters(self) -> list[nn.Parameter]:
        """What the inverse-dynamics optimizer steps: the shared conv layers and the inverse-dynamics head."""
        return [p for module in self.shared for p in module.parameters()] + list(self.pad_head.parameters())

    def new_pad_optimizer(self) -> torch.optim.Adam:
        cfg = self.cfg
        return torch.optim.Adam(
            self.pad_parameters(), lr=cfg.pad_lr, betas=(cfg.pad_beta1, 0.999), fused=cfg.fast_kernels
        )

    def embed(self, obs: torch.Tensor) -> torch.Tensor:
        """e(o): the inverse-dynamics embedding of uint8 observations."""
        features = self.fast.run(self.pad_convs, self.fast.pixels(obs), dtype=None)
        return self.pad_head.projection(features.flatten(1))

    def predict_action(self, obs: torch.Tensor, next_obs: torch.Tensor) -> torch.Tensor:
        """a^ from `(o, o')`, both through one pass of the shared and head layers."""
        embedding, next_embedding = self.embed(torch.cat([obs, next_obs])).chunk(2)
        return self.pad_head.mlp(torch.cat([embedding, next_embedding], dim=1))

    def update(self, batch: dict[str, torch.Tensor], step: int | None = None) -> Metrics:
        """Crop `obs` and `next_obs`, RAD's update on the crops, and every `pad_update_every` updates (by `step` when
        given, as DMControl-GB's `step % aux_update_freq`) an inverse-dynamics step on them."""
        batch = {key: value.to(self.device, non_blocking=True) for key, value in batch.items()}
        obs = self.augment(batch["obs"])  # DMControl-GB's `sample` order: obs, then next_obs
        views = batch | {"obs": obs, "next_obs": self.augment_next(batch["next_obs"])}
        metrics = super().update(views, step)  # crops pass `augment` unchanged
        if (self.updates if step is None else step) % self.cfg.pad_update_every == 0:
            metrics |= self.update_inverse_dynamics(views["obs"], views["action"], views["next_obs"])
        return metrics

    def update_inverse_dynamics(self, obs: torch.Tensor, action: torch.Tensor, next_obs: torch.Tensor) -> Metrics:
        loss = F.mse_loss(self.predict_action(obs, next_obs), action)
        self.pad_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.pad_optimizer.step()
        return {"pad_loss": loss.detach()}

    def adapter(self, seed: int) -> PADAdapter:
        return PADAdapter(self, seed)

    def modules(self) -> dict[str, torch.nn.Module | torch.optim.Optimizer]:
        return super().modules() | {"pad_head": self.pad_head, "pad_optimizer": self.pad_optimizer}


class PADAdapter:
    """One test episode's PAD: a copy of the agent that takes an inverse-dynamics step after every environment step
    (module docstring, "Test-time adaptation")."""

    def __init__(self, agent: PAD, seed: int) -> None:
        self.agent = copy.deepcopy(agent)
        self.agent.pad_optimizer = self.agent.new_pad_optimizer()
        self.agent.generator.manual_seed(seed)
        self.losses: list[float] = []

    def act(self, obs: np.ndarray, deterministic: bool) -> np.ndarray:
        return self.agent.act(obs, deterministic)

    def observe(self, obs: np.ndarray, action: np.ndarray, next_obs: np.ndarray) -> None:
        agent = self.agent
        n, device = agent.cfg.adapt_batch_size, agent.device
        obs_batch = torch.as_tensor(obs, device=device)[None].expand(n, *obs.shape)
        next_batch = torch.as_tensor(next_obs, device=device)[None].expand(n, *next_obs.shape)
        actions = torch.as_tensor(action, device=device, dtype=torch.float32)[None].expand(n, -1)
        cropped, next_cropped = agent.augment(obs_batch), agent.augment(next_batch)  # PAD's order: o, then o'
        self.losses.append(float(agent.update_inverse_dynamics(cropped, actions, next_cropped)["pad_loss"]))
