"""Networks of SAC from pixels in the DMControl-GB family: conv trunk, projections, actor, critic.

The conv trunk is shared by actor and critic; each has its own projection (Linear, LayerNorm, tanh).
The fast path (`FastPath`: bfloat16 autocast and channels-last layout) covers conv stacks and the
projections' Linear layers; LayerNorm, the actor's and critics' MLPs, every loss and every optimizer state
run in float32.
"""

from __future__ import annotations

import math
import threading

import torch
from torch import nn
from torch.nn import functional as F


def orthogonal_init(module: nn.Module) -> None:
    """DMControl-GB's initialisation: orthogonal linear layers; conv and transposed conv layers delta-orthogonal
    (zero but the centre tap, `k // 2`)."""
    if isinstance(module, nn.Linear):
        nn.init.orthogonal_(module.weight)
        nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Conv2d | nn.ConvTranspose2d):
        nn.init.zeros_(module.weight)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
        centre = module.weight.shape[2] // 2
        nn.init.orthogonal_(module.weight[:, :, centre, centre], gain=nn.init.calculate_gain("relu"))


def to_unit(obs: torch.Tensor, dtype: torch.dtype, memory_format: torch.memory_format) -> torch.Tensor:
    """`obs.to(dtype) / 255` in `memory_format`, value for value (0..255 are exact in bfloat16), never in place.

    Converted in the input's layout first, then laid out: two copies, each a fast kernel. One copy doing both (into
    an empty channels-last tensor) is a strided conversion kernel, 2.1-2.9x the time for a 9-channel uint8 batch (`cpu`
    preset, 1 and 2 threads, AMD EPYC).
    """
    return obs.to(dtype, copy=True).div_(255.0).contiguous(memory_format=memory_format)


class _LastPixels(threading.local):
    """The last pixel conversion of `FastPath.pixels` (one per thread), reused when the same pixels come again.

    The key is the input's memory (address, shape, strides, dtype, device) and its version counter, which every
    view of that memory shares and every in-place write bumps. The input is held, so no other tensor can take its
    memory while it is the key; a conversion its user changed in place is not reused. A conversion of the `cpu`
    preset's 9-channel batch costs about a third of a trunk conv layer's forward pass (AMD EPYC); this halves how
    often DrQ's update pays it.
    """

    def __init__(self) -> None:
        self.key: tuple | None = None
        self.source: torch.Tensor | None = None
        self.converted: torch.Tensor | None = None
        self.converted_version = 0

    def get(self, obs: torch.Tensor, dtype: torch.dtype, memory_format: torch.memory_format) -> torch.Tensor:
        key = (obs.data_ptr(), obs.shape, obs.stride(), obs.dtype, obs.device, obs._version, dtype, memory_format)
        if self.converted is None or key != self.key or self.converted._version != self.converted_version:
            self.key, self.source, self.converted = key, obs, to_unit(obs, dtype, memory_format)
            self.converted_version = self.converted._version
        return self.converted


_LAST_PIXELS = _LastPixels()


def _has_storage(tensor: torch.Tensor) -> bool:
    """False for a tensor without memory of its own (a batched tensor inside `torch.func.vmap`)."""
    try:
        tensor.data_ptr()
    except RuntimeError:
        return False
    return True


class FastPath:
    """bfloat16 autocast and a channels-last layout around a conv stack; NCHW tensors in and out.

    With both off it is the plain float32 NCHW computation (the reference path of `unseen bench`).
    """

    def __init__(self, bf16: bool, channels_last: bool) -> None:
        self.bf16 = bf16
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format

    def pixels(self, obs: torch.Tensor) -> torch.Tensor:
        """Pixels (0..255, uint8 or float) -> [0, 1] in the conv's dtype and layout (`to_unit`).

        An update hands the same observations to several trunks (online and target on the next observation, the
        actor's recompute on the critic's view), so the last conversion is kept and reused while its input is
        unchanged (`_LastPixels`). Inputs that require a gradient (SGQN's attribution) or have no memory of their own
        (`torch.func.vmap`) are converted afresh.
        """
        dtype = torch.bfloat16 if self.bf16 else torch.float32
        if obs.requires_grad or not _has_storage(obs):
            return to_unit(obs, dtype, self.memory_format)
        return _LAST_PIXELS.get(obs, dtype, self.memory_format)

    def lay_out(self, module: nn.Module) -> None:
        """Stores the weights of the conv stack `module` in the fast path's layout."""
        module.to(memory_format=self.memory_format)  # type: ignore[call-overload]  # torch stubs lack memory_format

    def run(self, convs: nn.Module, x: torch.Tensor, dtype: torch.dtype | None = torch.float32) -> torch.Tensor:
        """`convs(x)` on the fast path; the result leaves in NCHW order and in `dtype` (None: the conv's) in one
        copy."""
        x = x.contiguous(memory_format=self.memory_format)
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            h = convs(x)
        return h.to(dtype or h.dtype, memory_format=torch.contiguous_format)


class ConvTrunk(nn.Module):
    """3x3 convs with 32 filters, the first with stride 2, ReLU between; uint8 pixels in, flat features out.

    `final_relu`: a ReLU after the last conv too. DMControl-GB's `SharedCNN` (src/algorithms/modules.py) ends on
    the conv, so its features can be negative (58% of them at initialisation, issue 18); SAC-AE's `PixelEncoder`
    ends on a ReLU.
    """

    def __init__(
        self,
        in_channels: int,
        image_size: int,
        layers: int,
        filters: int,
        bf16: bool,
        channels_last: bool,
        inplace_relu: bool = True,
        final_relu: bool = False,
    ) -> None:
        super().__init__()
        # In-place ReLUs: each conv output is used only by its ReLU, and a pass that allocates no new
        # activation made the update about 15% faster on CPU.
        convs: list[nn.Module] = [nn.Conv2d(in_channels, filters, 3, stride=2)]
        for _ in range(layers - 1):
            convs += [nn.ReLU(inplace=inplace_relu), nn.Conv2d(filters, filters, 3, stride=1)]
        if final_relu:
            convs.append(nn.ReLU(inplace=inplace_relu))
        self.convs = nn.Sequential(*convs)
        side = (image_size - 3) // 2 + 1 - 2 * (layers - 1)
        self.side = side
        self.out_dim = filters * side * side
        self.fast = FastPath(bf16, channels_last)
        self.apply(orthogonal_init)
        self.fast.lay_out(self)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        # The features leave in the conv's dtype: bfloat16 features tell the projections to run their Linear
        # layer in bfloat16 too (`Projection`).
        return self.fast.run(self.convs, self.fast.pixels(obs), dtype=None).flatten(1)


class Projection(nn.Module):
    """Linear, LayerNorm, tanh: each of actor and critic maps the trunk's features through its own.

    On bfloat16 features (the fast path) the Linear layer, the widest of the agent (trunk features x
    projection_dim), runs in bfloat16 with float32 master weights; LayerNorm and tanh always run in float32.
    """

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_dim, out_dim), nn.LayerNorm(out_dim), nn.Tanh())
        self.apply(orthogonal_init)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        linear, norm, tanh = self.net
        with torch.autocast(h.device.type, dtype=torch.bfloat16, enabled=h.dtype == torch.bfloat16):
            x = linear(h)
        return tanh(norm(x.float()))


def mlp(in_dim: int, hidden_dim: int, out_dim: int, activation: type[nn.Module] = nn.ReLU) -> nn.Sequential:
    net = nn.Sequential(
        nn.Linear(in_dim, hidden_dim), activation(),
        nn.Linear(hidden_dim, hidden_dim), activation(),
        nn.Linear(hidden_dim, out_dim),
    )
    net.apply(orthogonal_init)
    return net


class Actor(nn.Module):
    """Tanh-squashed Gaussian policy on trunk features; log std squashed into [log_std_min, log_std_max].

    `activation`: of the MLP's hidden layers (ReLU in DMControl-GB, GELU in ALDA's reference code).
    `exact_log_det`: the change of variables through tanh as the exact `log(1 - tanh(u)^2)`; false: DMControl-GB's
    `log(relu(1 - tanh(u)^2) + 1e-6)` (`squash`, src/algorithms/modules.py), which floors each action dimension's
    term at log(1e-6) once the action saturates (tanh(u) rounds to +-1 in float32 from |u| ~ 9)."""

    def __init__(
        self,
        feature_dim: int,
        projection_dim: int,
        hidden_dim: int,
        action_dim: int,
        log_std_min: float,
        log_std_max: float,
        activation: type[nn.Module] = nn.ReLU,
        exact_log_det: bool = False,
    ) -> None:
        super().__init__()
        self.projection = Projection(feature_dim, projection_dim)
        self.net = mlp(projection_dim, hidden_dim, 2 * action_dim, activation)
        self.log_std_min, self.log_std_max = log_std_min, log_std_max
        self.exact_log_det = exact_log_det

    def forward(
        self, features: torch.Tensor, generator: torch.Generator | None = None, deterministic: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Returns (action in [-1, 1], its log-probability); `deterministic` gives the mean action and no log-prob."""
        mu, log_std = self.net(self.projection(features)).chunk(2, dim=-1)
        if deterministic:
            return torch.tanh(mu), None
        log_std = self.log_std_min + 0.5 * (self.log_std_max - self.log_std_min) * (torch.tanh(log_std) + 1)
        noise = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        sample = mu + noise * log_std.exp()
        log_prob = (-0.5 * noise.pow(2) - log_std).sum(-1, keepdim=True) - 0.5 * math.log(2 * math.pi) * mu.shape[-1]
        action = torch.tanh(sample)
        if self.exact_log_det:
            # The numerically stable form of log(1 - tanh(u)^2).
            log_det = 2 * (math.log(2) - sample - F.softplus(-2 * sample))
        else:
            log_det = torch.log(F.relu(1 - action.pow(2)) + 1e-6)
        return action, log_prob - log_det.sum(-1, keepdim=True)


class Critic(nn.Module):
    """Clipped double Q: two MLPs on (projected features, action); `activation` as in `Actor`."""

    def __init__(
        self,
        feature_dim: int,
        projection_dim: int,
        hidden_dim: int,
        action_dim: int,
        activation: type[nn.Module] = nn.ReLU,
    ) -> None:
        super().__init__()
        self.projection = Projection(feature_dim, projection_dim)
        self.q1 = mlp(projection_dim + action_dim, hidden_dim, 1, activation)
        self.q2 = mlp(projection_dim + action_dim, hidden_dim, 1, activation)

    def forward(self, features: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.cat([self.projection(features), action], dim=-1)
        return self.q1(x), self.q2(x)
