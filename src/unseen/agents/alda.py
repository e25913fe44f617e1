"""ALDA (Associative Latent DisentAnglement; Batra & Sukhatme, ICML 2025), docs/methods.md "ALDA", step by step.

Networks (as the public reference code builds them; the paper leaves them open):
  - Frame folding: `(B, 3k, H, W) -> (B*k, 3, H, W)`, every frame encoded on its own.
  - Per-frame encoder `f`: 4 blocks (conv k4 s2 p1, GroupNorm with one group per channel, GELU), channels
    3-32-64-128-256 (64x64 -> 256x4x4 = 4096), then Linear 4096-256, GELU, Linear 256-256, GELU and a
    *linear* head Linear 256-|z_d| (no activation, no tanh): the continuous latents `z`, |z_d| = 12.
  - Quantized latent (`unseen.latent.QuantizedLatent`): a 12-value codebook per latent, initialised
    linspace(-1, 1, 12); `z_q[i] = sum_j v[i, j] softmax_j(-beta |z[i] - v[i, j]|)` on the detached `z`,
    beta = 100 (`alda_retrieval="argmin"`: QLAE's hard nearest value); `z_hat = z + (z_q - z).detach()`.
  - Temporal fusion: the `(B, k, 12)` retrieved latents, frames as channels of a 1D-CNN sliding over the
    latent axis (k-8 k4 s2 p1, GELU, 8-16 k4 s2 p2, GELU, flatten, Linear to 256).
  - Actor and critic as in `unseen.nets`, each with its own projection (Linear 256-256, LayerNorm, tanh),
    their MLPs with GELU as in the reference code.
  - Decoder, the encoder's mirror: Linear |z_d|-256, GELU, 256-256, GELU, 256-4096, GELU, 4 blocks
    (transposed conv k4 s2 p1, GroupNorm, GELU; 256-128-64-32-16), a k3 s1 p1 layer to 3 channels: the logits
    of the newest frame (the reference's transposed conv there, written as the equivalent conv).

One update (`SAC.update` with `update_critic` below):
  1. TD target on the non-augmented next observation, SAC's: the online encoder (per-frame encoder, online
     codebook, fusion) feeds the actor's next action, the target encoder (a Polyak copy of all three) the
     target critic. No augmentation anywhere.
  2. Critic loss `sum_i ||Q_i(s, a) - y||^2` on the fused features of `obs`, one Adam step of the fusion,
     the critic projection and the Q heads. The retrieval reads a detached `z`, so no RL gradient reaches
     the per-frame encoder. The codebook: with `alda_critic_to_codebook=false` (default, the reference code)
     the critic sees `z_q` with the codebook detached too; `true` (the paper's figure) keeps its gradient,
     which the codebook's own Adam step applies in 3.
  3. ALDA loss, once per update on the same batch, on the newest frame of `obs`:
       L = w_rec * BCE_with_logits(decoder(z_hat), pixels / 255) + 0.01 * mean((z - sg(z_q))^2)
           [+ w_q * mean((sg(z) - z_q)^2), off by default: the summary "removes the quantize loss"]
     One AdamW step (lr 1e-3, weight decay 0.1) of the per-frame encoder and the decoder, one Adam step of
     the codebook (with whatever gradient it received in 2 and 3; none at all by default).
  4. Every 2 updates: actor and temperature, SAC's, on the detached fused features of 2 (the reference code
     re-encodes `obs` after the steps; `agent.actor_recompute=false` keeps unseen's update from before issue 18,
     as do the exact tanh log-det and one update per step from the first, docs/dmcontrol-gb.md); targets:
     Q heads at tau 0.01, encoder (per-frame encoder, codebook, fusion) and critic projection at 0.05.
The reference code runs the per-frame encoder on `obs` twice (critic, then ALDA loss); since the critic step
never changes it, here it runs once: the newest frame with gradient (for 3), the older ones without. And as
a replay stack's `next_obs` is its `obs` moved on by one frame, only the newest `next_obs` frame is encoded
anew for the online side of 1 (`encode_batch`). Both are exact; docs/alda.md has the costs.

Alpha starts at 0.1 with lr 1e-4 and beta1 0.5, actor/critic Adam lr 1e-3: the common base's defaults,
which are ALDA's too. Frames are 64x64 with action repeat 4 (finger 2) in the `paper` preset; under `cpu`
and `smoke` ALDA sees exactly what every other method sees (docs/presets.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise
from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.nn import functional as F

from unseen.agents.base import Metrics
from unseen.agents.sac import SAC, SACConfig
from unseen.errors import UserError
from unseen.latent import RETRIEVALS, QuantizedLatent, commitment_loss, quantization_loss
from unseen.nets import Actor, Critic, FastPath, orthogonal_init
from unseen.schema import param

if TYPE_CHECKING:
    from unseen.config import EnvConfig, RunConfig


@dataclass
class ALDAConfig(SACConfig):
    """SAC's fields (its conv trunk fields unused: ALDA has its own encoder) and ALDA's latents, codebooks, fusion
    and decoder (docs/methods.md, "ALDA")."""

    alda_latents: int = param(12, ge=2, why="the fusion convolves over them")
    """ALDA: continuous latents |z_d| per frame, one scalar codebook each."""
    alda_values: int = param(12, gt=0)
    """ALDA: values per codebook, initialised linspace(-1, 1, n)."""
    alda_beta: float = param(100.0, gt=0)
    """ALDA: inverse temperature beta of the softmax retrieval."""
    alda_retrieval: str = param("softmax", choices=RETRIEVALS)
    """ALDA: "softmax" (associative retrieval) or "argmin" (QLAE's hard nearest value, beta = inf: the ablation)."""
    alda_mlp_dim: int = param(256, gt=0)
    """ALDA: width of the per-frame encoder's MLP (conv features -> 256 -> 256 -> latents) and its mirror in the
    decoder."""
    alda_embedding_dim: int = param(256, gt=0)
    """ALDA: output of the temporal fusion (1D-CNN) and width of the actor's and critic's projections."""
    alda_reconstruction: float = param(1.0, ge=0)
    """ALDA: weight of the reconstruction loss (BCE with logits of the newest frame)."""
    alda_commitment: float = param(0.01, ge=0)
    """ALDA: weight of the commitment loss mean((z - sg(z_q))^2)."""
    alda_quantization: float = param(0.0, ge=0)
    """ALDA: weight of the quantization loss mean((sg(z) - z_q)^2); 0 = off (the paper; the reference uses 0.01 on
    finger_spin)."""
    alda_lr: float = param(1e-3, ge=0)
    """ALDA: AdamW learning rate of the per-frame encoder and the decoder."""
    alda_weight_decay: float = param(0.1, ge=0)
    """ALDA: AdamW weight decay of the per-frame encoder and the decoder."""
    alda_codebook_lr: float = param(1e-3, ge=0)
    """ALDA: Adam learning rate of the codebooks."""
    alda_critic_to_codebook: bool = False
    """ALDA: let the critic's gradient reach the codebooks (the paper's figure); false: the reference code's routing."""
    actor_recompute: bool = False
    """ALDA: the actor learns from the critic step's fused features (unseen's update before issue 18, not DMC-GB's)."""
    exact_log_det: bool = True
    """ALDA: the log-prob's tanh term exact (unseen's before issue 18); false: DMControl-GB's floored one."""

    def check_frames(self, env: EnvConfig) -> None:
        # Not the conv trunk's frame-size rule: ALDA's encoder is 4 stride-2 convs.
        if env.image_size % 16:
            raise UserError(
                f"env.image_size={env.image_size} does not suit ALDA's encoder (4 stride-2 convs); "
                "use a multiple of 16, e.g. 64"
            )


def alda_action_repeat(task: str) -> int:
    """Action repeat of ALDA's reference code on DMControl: finger 2, everything else (cartpole included) 4."""
    return 2 if task.split("_")[0] == "finger" else 4


def preset(cfg: RunConfig) -> None:
    """ALDA's changes to a resolved preset."""
    from unseen.envs import family_of

    # GroupNorm's channels-last CPU kernels are several times slower than its NCHW ones (bf16): a whole
    # ALDA update took 2.6-2.8x longer channels-last (docs/alda.md); the convs gain nothing from it here.
    cfg.agent.channels_last = False
    # ALDA's reference code is not DMControl-GB's: one update per step from the first (no burst after the seed steps).
    cfg.train.seed_updates = 1
    if cfg.preset == "paper":
        # ALDA's published protocol (docs/methods.md "ALDA"): 64x64 frames and, on DMControl, its reference code's
        # action repeat (cartpole 4). Under `cpu` and `smoke` ALDA sees exactly what every other method sees.
        cfg.env.image_size = 64
        if family_of(cfg.env.task).name == "dmc":
            cfg.env.action_repeat = alda_action_repeat(cfg.env.task)

CHANNELS = (32, 64, 128, 256)
"""Channels of the per-frame encoder's conv blocks (the decoder mirrors them, down to 16)."""


def conv_block(conv: type[nn.Conv2d | nn.ConvTranspose2d], in_channels: int, out_channels: int) -> nn.Sequential:
    """A k4 s2 p1 (transposed) conv halving (doubling) the side, GroupNorm with one group per channel, GELU."""
    return nn.Sequential(
        conv(in_channels, out_channels, 4, stride=2, padding=1), nn.GroupNorm(out_channels, out_channels), nn.GELU()
    )


class FrameEncoder(nn.Module):
    """One RGB frame (uint8) -> its continuous latents `z`; conv blocks on the fast path, the MLP in float32."""

    def __init__(self, image_size: int, latents: int, mlp_dim: int, bf16: bool, channels_last: bool) -> None:
        super().__init__()
        sizes = (3, *CHANNELS)
        self.convs = nn.Sequential(*(conv_block(nn.Conv2d, a, b) for a, b in pairwise(sizes)))
        side = image_size // 2 ** len(CHANNELS)
        self.mlp = nn.Sequential(
            nn.Linear(CHANNELS[-1] * side * side, mlp_dim), nn.GELU(),
            nn.Linear(mlp_dim, mlp_dim), nn.GELU(),
            nn.Linear(mlp_dim, latents),
        )
        self.fast = FastPath(bf16, channels_last)
        self.apply(orthogonal_init)
        self.fast.lay_out(self)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        # float32 latents: the retrieval compares them with values 0.18 apart at beta = 100.
        return self.mlp(self.fast.run(self.convs, self.fast.pixels(frames)).flatten(1))


class FrameDecoder(nn.Module):
    """Latents `(N, |z_d|)` -> logits `(N, 3, H, W)` of a frame: `FrameEncoder` mirrored, as in the reference code."""

    def __init__(self, image_size: int, latents: int, mlp_dim: int, bf16: bool, channels_last: bool) -> None:
        super().__init__()
        self.side = image_size // 2 ** len(CHANNELS)
        self.mlp = nn.Sequential(
            nn.Linear(latents, mlp_dim), nn.GELU(),
            nn.Linear(mlp_dim, mlp_dim), nn.GELU(),
            nn.Linear(mlp_dim, CHANNELS[-1] * self.side * self.side), nn.GELU(),
        )
        sizes = (*CHANNELS[::-1], 16)
        blocks = [conv_block(nn.ConvTranspose2d, a, b) for a, b in pairwise(sizes)]
        # The reference's last layer is a k3 s1 p1 transposed conv: that is a k3 s1 p1 conv with the kernel
        # flipped and its channels swapped (the same functions, the same initial distribution), and oneDNN
        # runs the conv about 10x faster in bfloat16.
        self.deconvs = nn.Sequential(*blocks, nn.Conv2d(sizes[-1], 3, 3, stride=1, padding=1))
        self.fast = FastPath(bf16, channels_last)
        self.apply(orthogonal_init)
        self.fast.lay_out(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.mlp(z).view(-1, CHANNELS[-1], self.side, self.side)
        return self.fast.run(self.deconvs, h)


class TemporalFusion(nn.Module):
    """`(B, k, |z_d|)` -> `(B, embedding_dim)`: a 1D-CNN with the k frames as channels, over the latent axis."""

    def __init__(self, frames: int, latents: int, embedding_dim: int) -> None:
        super().__init__()
        length = (latents + 2 - 4) // 2 + 1  # k4 s2 p1
        length = (length + 4 - 4) // 2 + 1  # k4 s2 p2
        self.net = nn.Sequential(
            nn.Conv1d(frames, 8, 4, stride=2, padding=1), nn.GELU(),
            nn.Conv1d(8, 16, 4, stride=2, padding=2), nn.GELU(),
            nn.Flatten(), nn.Linear(16 * length, embedding_dim),
        )
        self.apply(orthogonal_init)  # the Linear; the Conv1d keep PyTorch's default, as in the reference code

    def forward(self, z_q: torch.Tensor) -> torch.Tensor:
        return self.net(z_q)


class ALDAEncoder(nn.Module):
    """What SAC calls its trunk: uint8 stacks -> fused features. Per-frame encoder, codebook, fusion."""

    def __init__(self, obs_shape: tuple[int, int, int], cfg: ALDAConfig) -> None:
        super().__init__()
        self.frame_stack = obs_shape[0] // 3
        self.frames = FrameEncoder(obs_shape[1], cfg.alda_latents, cfg.alda_mlp_dim, cfg.bf16, cfg.channels_last)
        self.quantizer = QuantizedLatent(cfg.alda_latents, cfg.alda_values, cfg.alda_beta, cfg.alda_retrieval)
        self.fusion = TemporalFusion(self.frame_stack, cfg.alda_latents, cfg.alda_embedding_dim)
        self.out_dim = cfg.alda_embedding_dim

    def fold(self, obs: torch.Tensor) -> torch.Tensor:
        """`(B, 3k, H, W) -> (B, k, 3, H, W)`: the stack's frames, oldest first."""
        return obs.reshape(obs.shape[0], self.frame_stack, 3, *obs.shape[2:])

    def encode(self, obs: torch.Tensor) -> torch.Tensor:
        """Continuous latents `(B, k, |z_d|)` of every frame of the stacks."""
        return self.frames(self.fold(obs).flatten(0, 1)).view(obs.shape[0], self.frame_stack, -1)

    def fuse(self, z: torch.Tensor, codebook_grad: bool = True) -> torch.Tensor:
        """Retrieval of each frame's detached latents, then temporal fusion: `(B, k, |z_d|) -> (B, out_dim)`."""
        z_q = self.quantizer.retrieve(z.flatten(0, 1), codebook_grad).view_as(z)
        return self.fusion(z_q)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.fuse(self.encode(obs))


class ALDA(SAC):
    """SAC on fused, associatively quantized per-frame latents, the encoder trained by reconstruction only."""

    trunk: ALDAEncoder  # what `build_networks` makes
    cfg: ALDAConfig

    def __init__(
        self, obs_shape: tuple[int, int, int], action_dim: int, cfg: ALDAConfig, device: torch.device, seed: int
    ) -> None:
        super().__init__(obs_shape, action_dim, cfg, device, seed)
        self.decoder = FrameDecoder(
            obs_shape[1], cfg.alda_latents, cfg.alda_mlp_dim, cfg.bf16, cfg.channels_last
        ).to(device)
        self.alda_optimizer = torch.optim.AdamW(
            [*self.trunk.frames.parameters(), *self.decoder.parameters()],
            lr=cfg.alda_lr, weight_decay=cfg.alda_weight_decay, fused=cfg.fast_kernels,
        )
        self.codebook_optimizer = torch.optim.Adam(
            self.trunk.quantizer.parameters(), lr=cfg.alda_codebook_lr, fused=cfg.fast_kernels
        )

    def build_networks(self, obs_shape: tuple[int, int, int], action_dim: int) -> tuple[nn.Module, Actor, Critic]:
        cfg = self.cfg
        trunk = ALDAEncoder(obs_shape, cfg)
        actor = Actor(
            trunk.out_dim, self.projection_dim, cfg.hidden_dim, action_dim, cfg.log_std_min, cfg.log_std_max, nn.GELU,
            exact_log_det=cfg.exact_log_det,
        )
        critic = Critic(trunk.out_dim, self.projection_dim, cfg.hidden_dim, action_dim, nn.GELU)
        return trunk, actor, critic

    @property
    def projection_dim(self) -> int:
        return self.cfg.alda_embedding_dim

    def critic_parameters(self) -> list[nn.Parameter]:
        """The critic's optimizer steps the fusion, the critic projection and the Q heads (not the per-frame
        encoder, not the codebook: they have optimizers of their own)."""
        return [*self.trunk.fusion.parameters(), *self.critic.parameters()]

    def encode_batch(
        self, obs: torch.Tensor, next_obs: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Latents `(B, k, |z_d|)` of `obs` and of `next_obs` (online encoder), and the newest `obs` frame's
        `(B, |z_d|)` with gradient; the rest is computed without. Stacks from the replay buffer overlap
        (`next_obs` is `obs` moved on by one frame): then only the newest frame of `next_obs` is encoded anew."""
        frames, next_frames = self.trunk.fold(obs), self.trunk.fold(next_obs)
        newest = self.trunk.frames(frames[:, -1])
        overlap = torch.equal(frames[:, 1:], next_frames[:, :-1])
        with torch.no_grad():
            todo = torch.cat([frames[:, :-1], next_frames[:, -1:] if overlap else next_frames], dim=1)
            rest = self.trunk.frames(todo.flatten(0, 1)).view(len(obs), todo.shape[1], -1)
        older = self.trunk.frame_stack - 1
        z = torch.cat([rest[:, :older], newest.detach()[:, None]], dim=1)
        z_next = torch.cat([z[:, 1:], rest[:, older:]], dim=1) if overlap else rest[:, older:]
        return z, z_next, newest

    def update_critic(self, batch: dict[str, torch.Tensor]) -> tuple[Metrics, torch.Tensor, torch.Tensor]:
        z, z_next, newest = self.encode_batch(batch["obs"], batch["next_obs"])
        with torch.no_grad():
            target = self.soft_target(batch, self.trunk.fuse(z_next), self.trunk_target(batch["next_obs"]))
        features = self.trunk.fuse(z, codebook_grad=self.cfg.alda_critic_to_codebook)
        loss = self.critic_loss(features, batch["action"], target)
        self.critic_optimizer.zero_grad(set_to_none=True)
        self.codebook_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.critic_optimizer.step()
        metrics: Metrics = {"critic_loss": loss.detach(), "q_target": target.mean().detach()}
        return metrics | self.update_alda(newest, batch["obs"][:, -3:]), features, batch["obs"]

    def update_alda(self, z: torch.Tensor, frame: torch.Tensor) -> Metrics:
        """The ALDA loss of the newest frames' latents `z (B, |z_d|)` and pixels `frame (B, 3, H, W)`; one step."""
        cfg = self.cfg
        out = self.trunk.quantizer(z)
        logits = self.decoder(out.z_hat)
        reconstruction = F.binary_cross_entropy_with_logits(logits, frame.float() / 255.0)
        commitment = commitment_loss(out)
        quantization = quantization_loss(out)
        loss = cfg.alda_reconstruction * reconstruction + cfg.alda_commitment * commitment
        if cfg.alda_quantization:
            loss = loss + cfg.alda_quantization * quantization
        self.alda_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.alda_optimizer.step()
        self.codebook_optimizer.step()  # the critic's gradient (if routed) and the quantization loss's
        return {
            "alda_loss": loss.detach(),
            "reconstruction_loss": reconstruction.detach(),
            "commitment_loss": commitment.detach(),
            "quantization_loss": quantization.detach(),
        }

    @torch.no_grad()
    def latents(self, obs: torch.Tensor) -> torch.Tensor:
        """The retrieved latents `z_q (B, |z_d|)` of the newest frame of each uint8 stack `(B, 3k, H, W)`."""
        return self.trunk.quantizer.retrieve(self.trunk.frames(obs[:, -3:]))

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Pictures `(B, 3, H, W)` in [0, 1] of latents `(B, |z_d|)`: the decoder's logits through a sigmoid."""
        return torch.sigmoid(self.decoder(latents))

    def codebook(self) -> torch.Tensor:
        """The values `(|z_d|, n)` each latent can retrieve."""
        return self.trunk.quantizer.values.detach().clone()

    def modules(self) -> dict[str, nn.Module | torch.optim.Optimizer]:
        return super().modules() | {
            "decoder": self.decoder,
            "alda_optimizer": self.alda_optimizer,
            "codebook_optimizer": self.codebook_optimizer,
        }
