"""SAC+AE (Yarats et al., 2019/2021, "Improving sample efficiency in model-free RL from images"): SAC whose
encoder is also a deterministic autoencoder's, the baseline of ALDA's tables (docs/methods.md "ALDA").

What follows the paper and its public code (`pytorch_sac_ae`, defaults of its train.py):
  - Encoder = the conv trunk + a latent (Linear, LayerNorm, tanh; 50-d) shared with the critic: in our
    networks that latent *is* the critic's projection, trained by the critic and by the reconstruction.
    The actor has its own Linear, LayerNorm, tanh on the detached conv features (SAC-AE ties only the convs),
    which is also how the DMControl-GB base builds its separate projections, so nothing changes there.
  - Decoder, the trunk's mirror: Linear latent -> the trunk's last feature map, ReLU, (layers - 1) 3x3
    transposed convs with ReLU, a 3x3 stride-2 transposed conv to the 3k channels of the whole stack.
  - Reconstruction target: pixels quantised to 5 bits, plus uniform noise of one bin, centred,
    `floor(o / 2^(8-b)) / 2^b + U(0, 1) / 2^b - 0.5` (Kingma & Dhariwal's preprocessing, their utils);
    loss `MSE(decoder(h), target) + lambda * mean(0.5 * ||h||^2)`, lambda = 1e-6.
  - Optimisers: the encoder (trunk + latent) with its own Adam (lr 1e-3) for the reconstruction, the decoder
    with Adam lr 1e-3 and L2 weight decay 1e-7; the autoencoder is updated every step, after the critic, actor
    and target updates, on the same batch (the trunk runs again: the critic step has changed it).
  - The 4-layer trunk of 32 filters: the `paper` preset sets it for sac_ae (84x84 frames); `cpu` and `smoke`
    use their own trunk, which is the same 4 layers at 64x64.
  - A ReLU after the trunk's last conv (`agent.trunk_final_relu`, true by default in `SACAEConfig`: PixelEncoder's
    `forward_conv` applies one after every conv); DMControl-GB, descended from this code, dropped it.
  - Its actor step re-encodes obs after the critic step, its log-prob floors the tanh correction at 1e-6 and its
    train.py runs `init_steps` updates at the first step after them: DMControl-GB's defaults of the SAC family.
What follows our common base (`SAC`): the TD target, the targets and their rates (critic tau 0.01, encoder tau
0.05: SAC-AE's train.py too), alpha 0.1 with lr 1e-4 and beta1 0.5, action repeat per task (DMControl-GB's: the
paper used walker 2), and the fast path (bf16 autocast, channels-last) for the trunk and the decoder's
transposed convs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.nn import functional as F

from unseen.agents.base import Metrics
from unseen.agents.sac import SAC, SACConfig
from unseen.nets import ConvTrunk, FastPath, orthogonal_init
from unseen.schema import param

if TYPE_CHECKING:
    from unseen.config import RunConfig


@dataclass
class SACAEConfig(SACConfig):
    """SAC's fields and the autoencoder's (docs/methods.md, "SAC+AE")."""

    sac_ae_latent_dim: int = param(50, gt=0)
    """SAC+AE: width of the autoencoder latent (Linear, LayerNorm, tanh) shared with the critic, and of the actor's
    projection."""
    sac_ae_latent_lambda: float = param(1e-6, ge=0)
    """SAC+AE: weight of the L2 penalty 0.5 * ||latent||^2 in the reconstruction loss."""
    sac_ae_encoder_lr: float = param(1e-3, ge=0)
    """SAC+AE: Adam learning rate of the encoder (conv trunk + latent) for the reconstruction loss."""
    sac_ae_decoder_lr: float = param(1e-3, ge=0)
    """SAC+AE: Adam learning rate of the decoder."""
    sac_ae_decoder_weight_decay: float = param(1e-7, ge=0)
    """SAC+AE: L2 weight decay of the decoder's Adam."""
    sac_ae_update_every: int = param(1, gt=0)
    """SAC+AE: update the autoencoder every this many updates."""
    sac_ae_bits: int = param(5, ge=1, le=8)
    """SAC+AE: bit depth of the reconstruction target (pixels quantised to this many bits, plus uniform noise)."""
    trunk_final_relu: bool = True
    """SAC+AE: a ReLU after the trunk's last conv too, as SAC-AE's PixelEncoder (DMControl-GB's SharedCNN has none)."""


def preset(cfg: RunConfig) -> None:
    """SAC+AE's changes to a resolved preset: its published encoder (Yarats et al.), 4 conv layers of 32 filters at
    84x84, in the `paper` preset."""
    if cfg.preset == "paper":
        cfg.agent.encoder_layers = 4


def reconstruction_target(obs: torch.Tensor, bits: int, generator: torch.Generator) -> torch.Tensor:
    """uint8 pixels -> SAC-AE's target in [-0.5, 0.5): `bits`-bit quantisation, one bin of uniform noise, centred."""
    bins = 2**bits
    quantised = torch.floor(obs.float() / 2 ** (8 - bits)) / bins
    noise = torch.rand(obs.shape, generator=generator, device=obs.device)
    return quantised + noise / bins - 0.5


class PixelDecoder(nn.Module):
    """Latent `(B, latent_dim)` -> the stack `(B, C, H, W)` in the target's [-0.5, 0.5] scale: `trunk` mirrored."""

    def __init__(self, latent_dim: int, trunk: ConvTrunk, obs_shape: tuple[int, int, int], layers: int, bf16: bool,
                 channels_last: bool) -> None:
        super().__init__()
        filters = trunk.out_dim // trunk.side**2
        self.map_shape = (filters, trunk.side, trunk.side)
        self.fc = nn.Linear(latent_dim, trunk.out_dim)
        deconvs: list[nn.Module] = []
        for _ in range(layers - 1):
            deconvs += [nn.ConvTranspose2d(filters, filters, 3, stride=1), nn.ReLU(inplace=True)]
        image_size = obs_shape[1]
        first = (image_size - 3) // 2 + 1  # side after the trunk's stride-2 conv
        deconvs.append(
            nn.ConvTranspose2d(filters, obs_shape[0], 3, stride=2, output_padding=image_size - 2 * first - 1)
        )
        self.deconvs = nn.Sequential(*deconvs)
        self.fast = FastPath(bf16, channels_last)
        self.apply(orthogonal_init)
        self.fast.lay_out(self)

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.fc(latent)).view(-1, *self.map_shape)
        return self.fast.run(self.deconvs, h)


class SACAE(SAC):
    """SAC + a deterministic autoencoder on the critic's encoder (conv trunk + 50-d latent)."""

    trunk: ConvTrunk  # what SAC's `build_networks` makes
    cfg: SACAEConfig

    def __init__(
        self, obs_shape: tuple[int, int, int], action_dim: int, cfg: SACAEConfig, device: torch.device, seed: int
    ) -> None:
        super().__init__(obs_shape, action_dim, cfg, device, seed)
        self.decoder = PixelDecoder(
            cfg.sac_ae_latent_dim, self.trunk, obs_shape, cfg.encoder_layers, cfg.bf16, cfg.channels_last
        ).to(device)
        self.encoder_optimizer = torch.optim.Adam(
            [*self.trunk.parameters(), *self.critic.projection.parameters()],
            lr=cfg.sac_ae_encoder_lr, fused=cfg.fast_kernels,
        )
        self.decoder_optimizer = torch.optim.Adam(
            self.decoder.parameters(),
            lr=cfg.sac_ae_decoder_lr, weight_decay=cfg.sac_ae_decoder_weight_decay, fused=cfg.fast_kernels,
        )

    @property
    def projection_dim(self) -> int:
        return self.cfg.sac_ae_latent_dim

    def update(self, batch: dict[str, torch.Tensor], step: int | None = None) -> Metrics:
        metrics = super().update(batch, step)
        # By `step` when given, as SAC-AE's `step % decoder_update_freq` (the clock of the burst after the seed steps).
        if (self.updates if step is None else step) % self.cfg.sac_ae_update_every == 0:
            metrics |= self.update_autoencoder(batch["obs"].to(self.device, non_blocking=True))
        return metrics

    def update_autoencoder(self, obs: torch.Tensor) -> Metrics:
        """One step of encoder and decoder on `MSE(reconstruction, target) + lambda * mean(0.5 ||h||^2)`."""
        latent = self.critic.projection(self.trunk(obs))
        target = reconstruction_target(obs, self.cfg.sac_ae_bits, self.generator)
        reconstruction = F.mse_loss(self.decoder(latent), target)
        latent_penalty = 0.5 * latent.pow(2).sum(dim=1).mean()
        loss = reconstruction + self.cfg.sac_ae_latent_lambda * latent_penalty
        self.encoder_optimizer.zero_grad(set_to_none=True)
        self.decoder_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.encoder_optimizer.step()
        self.decoder_optimizer.step()
        return {"reconstruction_loss": reconstruction.detach(), "latent_penalty": latent_penalty.detach()}

    @torch.no_grad()
    def latents(self, obs: torch.Tensor) -> torch.Tensor:
        """The autoencoder latent `(B, sac_ae_latent_dim)` of uint8 stacks `(B, 3k, H, W)`."""
        return self.critic.projection(self.trunk(obs))

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Pictures `(B, 3, H, W)` in [0, 1]: the newest frame of the reconstructed stack."""
        return (self.decoder(latents)[:, -3:] + 0.5).clamp(0.0, 1.0)

    def modules(self) -> dict[str, nn.Module | torch.optim.Optimizer]:
        return super().modules() | {
            "decoder": self.decoder,
            "encoder_optimizer": self.encoder_optimizer,
            "decoder_optimizer": self.decoder_optimizer,
        }
