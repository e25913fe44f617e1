"""Agents, one algorithm per file; `make_agent` builds one by its `--algo` name."""

from __future__ import annotations

import dataclasses

import torch

from unseen.agents.alda import ALDA
from unseen.agents.cg2a import CG2A
from unseen.agents.drq import DrQ
from unseen.agents.sac import SAC
from unseen.agents.sac_ae import SACAE
from unseen.agents.svea import SVEA
from unseen.config import AgentConfig
from unseen.hardware import resolve_precision

AGENTS: dict[str, type[SAC]] = {"sac": SAC, "drq": DrQ, "svea": SVEA, "cg2a": CG2A, "alda": ALDA, "sac_ae": SACAE}


def make_agent(
    algo: str, obs_shape: tuple[int, int, int], action_dim: int, cfg: AgentConfig, device: torch.device, seed: int
) -> SAC:
    """The agent `algo` on `device`; `agent.precision=auto` is resolved for `device` here (a run resolves it
    earlier, when it starts, so that its config.yaml records the choice)."""
    if cfg.precision == "auto":
        cfg = dataclasses.replace(cfg, precision=resolve_precision(cfg.precision, device))
    return AGENTS[algo](obs_shape, action_dim, cfg, device, seed)


__all__ = ["AGENTS", "ALDA", "CG2A", "SAC", "SACAE", "SVEA", "DrQ", "make_agent"]
