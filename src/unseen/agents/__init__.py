"""Agents, one algorithm per file, and the registry every list of algorithms derives from.

`REGISTRY` maps an `--algo` name to its `AgentSpec`: agent class, config dataclass and preset hook. Adding an
algorithm is its file under `agents/` and one `register_agent` line below; registration order is the order of
`--algo`'s choices and of a report's columns.
"""

from __future__ import annotations

import dataclasses

import torch

from unseen.agents import alda, cg2a, drqv2, rad, sac_ae
from unseen.agents.alda import ALDA, ALDAConfig
from unseen.agents.base import Agent, AgentConfig, AgentSpec, Decoding, Variants
from unseen.agents.cg2a import CG2A, CG2AConfig
from unseen.agents.curl import CURL, CURLConfig
from unseen.agents.drq import DrQ, DrQConfig
from unseen.agents.drqv2 import DrQV2, DrQV2Config
from unseen.agents.rad import RAD, RADConfig
from unseen.agents.sac import SAC, SACConfig
from unseen.agents.sac_ae import SACAE, SACAEConfig
from unseen.agents.svea import SVEA, SVEAConfig
from unseen.errors import UserError
from unseen.hardware import resolve_precision

REGISTRY: dict[str, AgentSpec] = {}
"""Every registered algorithm by name, in registration order."""


def register_agent(spec: AgentSpec) -> AgentSpec:
    """Add an algorithm to the registry; its name must be new."""
    if spec.name in REGISTRY:
        raise ValueError(f"an algorithm named {spec.name!r} is registered already")
    if not issubclass(spec.config_cls, AgentConfig):
        raise TypeError(f"the config of {spec.name!r} must subclass unseen.agents.AgentConfig")
    REGISTRY[spec.name] = spec
    return spec


def algos() -> tuple[str, ...]:
    """Every registered algorithm's name, in registration order."""
    return tuple(REGISTRY)


def spec_of(algo: str) -> AgentSpec:
    """The registry entry of `algo`; a one-line `UserError` naming the choices if there is none."""
    if algo not in REGISTRY:
        raise UserError(f"unknown algorithm {algo!r}; choose one of: {', '.join(REGISTRY)}")
    return REGISTRY[algo]


def make_agent(
    algo: str, obs_shape: tuple[int, int, int], action_dim: int, cfg: AgentConfig, device: torch.device, seed: int
) -> Agent:
    """The agent `algo` on `device`; `agent.precision=auto` is resolved for `device` here (a run resolves it
    earlier, when it starts, so that its config.yaml records the choice)."""
    if cfg.precision == "auto":
        cfg = dataclasses.replace(cfg, precision=resolve_precision(cfg.precision, device))
    return spec_of(algo).agent_cls(obs_shape, action_dim, cfg, device, seed)


register_agent(AgentSpec("sac", SAC, SACConfig))
register_agent(AgentSpec("drq", DrQ, DrQConfig))
register_agent(AgentSpec("svea", SVEA, SVEAConfig))
register_agent(AgentSpec("cg2a", CG2A, CG2AConfig, variants=cg2a.VARIANTS))
register_agent(AgentSpec("alda", ALDA, ALDAConfig, preset=alda.preset))
register_agent(AgentSpec("sac_ae", SACAE, SACAEConfig, preset=sac_ae.preset))
register_agent(AgentSpec("rad", RAD, RADConfig, preset=rad.preset))
register_agent(AgentSpec("curl", CURL, CURLConfig, preset=rad.preset))
register_agent(AgentSpec("drqv2", DrQV2, DrQV2Config, preset=drqv2.preset))

ALGOS: tuple[str, ...] = algos()
"""The algorithms registered when this module was imported (algorithms registered later: `algos()`)."""
AGENTS: dict[str, type] = {name: spec.agent_cls for name, spec in REGISTRY.items()}  # type: ignore[misc]
"""Agent class per algorithm, as `ALGOS`."""

__all__ = [
    "AGENTS", "ALDA", "ALGOS", "CG2A", "CURL", "RAD", "REGISTRY", "SAC", "SACAE", "SVEA", "Agent", "AgentConfig",
    "AgentSpec", "Decoding", "DrQ", "DrQV2", "Variants", "algos", "make_agent", "register_agent", "spec_of",
]
