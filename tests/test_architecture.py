"""The seams of unseen: no import cycles, every registered agent meets the Agent protocol, and a toy algorithm (one
file's worth of code and one registry line) trains, checkpoints, restores and evaluates through the real loop."""

from __future__ import annotations

import ast
import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from unseen import agents
from unseen.agents import REGISTRY, Agent, AgentConfig, AgentSpec, Decoding, make_agent, register_agent
from unseen.agents.base import Variants
from unseen.config import apply_overrides, make_config, validate
from unseen.errors import UserError
from unseen.runs import collect
from unseen.schema import param

from conftest import tiny_config

SOURCE = Path(__file__).resolve().parents[1] / "src" / "unseen"


def imports_of(path: Path) -> set[str]:
    """The unseen modules `path` imports anywhere (in functions too), except under `if TYPE_CHECKING:`."""
    tree = ast.parse(path.read_text())
    typing_only = {id(node) for block in ast.walk(tree)
                   if isinstance(block, ast.If) and ast.unparse(block.test) == "TYPE_CHECKING"
                   for node in ast.walk(block)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("unseen"):
            found |= {f"{node.module}.{alias.name}" for alias in node.names} | {node.module or ""}
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("unseen")}
    return found


def module_graph() -> dict[str, set[str]]:
    modules = {}
    for path in SOURCE.rglob("*.py"):
        name = ".".join(path.relative_to(SOURCE.parent).with_suffix("").parts).removesuffix(".__init__")
        modules[name] = path
    graph = {}
    for name, path in modules.items():
        # `from unseen.envs import dmc` names a module; `from unseen.envs import make_env` names the package.
        targets = {t if t in modules else t.rpartition(".")[0] for t in imports_of(path)}
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def test_no_import_cycles():
    graph = module_graph()
    state: dict[str, str] = {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = "open"
        for target in sorted(graph[module]):
            assert state.get(target) != "open", "import cycle: " + " -> ".join([*path, module, target])
            if target not in state:
                visit(target, [*path, module])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [])


@pytest.mark.parametrize("algo", list(REGISTRY))
def test_every_registered_agent_meets_the_agent_protocol(algo):
    cfg = tiny_config(algo).agent
    cfg.precision = "float32"
    agent = make_agent(algo, (9, 32, 32), 2, cfg, torch.device("cpu"), seed=0)
    assert isinstance(agent, Agent)
    assert isinstance(agent, Decoding) == REGISTRY[algo].decodes == (algo in ("alda", "sac_ae"))
    assert isinstance(cfg, REGISTRY[algo].config_cls)


# ----- a toy algorithm: everything it takes is below, then one register_agent line ------------------------------


@dataclass
class ToyConfig(AgentConfig):
    """A policy that is one learned action."""

    step_size: float = param(0.1, gt=0)
    """How far each update moves the action towards the batch's mean rewarded action."""


class ToyAgent:
    """Acts with one vector; each update moves it by `step_size` along the batch's reward-weighted mean action."""

    def __init__(self, obs_shape: tuple[int, int, int], action_dim: int, cfg: ToyConfig, device: torch.device,
                 seed: int) -> None:
        self.cfg, self.device, self.updates = cfg, device, 0
        self.generator = torch.Generator().manual_seed(seed)
        self.action = torch.zeros(action_dim)

    def act(self, obs: np.ndarray, deterministic: bool) -> np.ndarray:
        noise = 0.0 if deterministic else 0.1 * torch.randn(self.action.shape, generator=self.generator)
        return (self.action + noise).clamp(-1, 1).numpy().astype(np.float32)

    def update(self, batch: dict[str, torch.Tensor], step: int | None = None) -> dict[str, float]:
        direction = (batch["reward"].view(-1, 1) * batch["action"]).mean(0)
        self.action = (self.action + self.cfg.step_size * direction).clamp(-1, 1)
        self.updates += 1
        return {"toy_direction": float(direction.norm())}

    def latents(self, obs: torch.Tensor) -> torch.Tensor:
        return obs.float().mean(dim=(2, 3))

    def state_dict(self) -> dict:
        return {"action": self.action.clone(), "updates": self.updates, "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.action, self.updates = state["action"].clone(), state["updates"]
        self.generator.set_state(state["generator"])


@pytest.fixture
def toy_algorithm():
    # Its variants as reports name and order them: a step size other than 1 is a variant of its own.
    variants = Variants(columns=("step",), of=lambda config: {"step": config.get("agent.step_size", 1.0)},
                        label=lambda v: [] if v["step"] == 1 else [f"step {v['step']:g}"], rank=lambda v: (v["step"],))
    register_agent(AgentSpec("toy", ToyAgent, ToyConfig, variants=variants))
    yield
    del agents.REGISTRY["toy"]


def test_a_toy_algorithm_is_one_file_and_one_registry_line(toy_algorithm, tmp_path):
    from unseen import train
    from unseen.evaluate import evaluate, make_run_env
    from unseen.rundir import open_run

    assert "toy" in agents.algos()
    cfg = make_config("toy", "cartpole_swingup", "smoke", steps=40)
    cfg.env.image_size, cfg.agent.encoder_layers = 32, 2
    cfg.train.seed_steps, cfg.train.seed_updates, cfg.train.batch_size, cfg.train.eval_every = 10, 10, 4, 0
    cfg.train.final_eval_episodes, cfg.train.tensorboard, cfg.train.video = 1, False, False
    with pytest.raises(UserError, match=r"toy has no field 'agent\.svea_alpha'"):
        apply_overrides(cfg, ["agent.svea_alpha=1"])
    with pytest.raises(UserError, match=r"agent\.step_size must be positive"):
        validate(apply_overrides(dataclasses.replace(cfg, agent=ToyConfig()), ["agent.step_size=0"]))
    summary = train.start(apply_overrides(cfg, ["agent.step_size=0.5"]), tmp_path / "run")
    assert summary["algo"] == "toy" and summary["steps"] == 40
    run = open_run(tmp_path / "run")
    assert run.cfg.agent.step_size == 0.5 and run.checkpoint["agent"]["updates"] == 10 + 29  # the burst at step 10
    env = make_run_env(run.cfg, "color_easy")
    agent = run.restore(env)
    assert torch.equal(agent.action, run.checkpoint["agent"]["action"])
    assert evaluate(agent, run.cfg, env, 1).row["shift"] == "color_easy"
    env.close()
    runs = collect([tmp_path])
    assert set(runs["method"]) == {"toy[step 0.5]"} and set(runs["step"]) == {0.5} and runs["gas"].isna().all()
