"""PAD: the split trunk, what its optimizer owns, and test-time adaptation: it moves only the shared trunk layers and
the inverse-dynamics head of a per-episode copy, leaves the agent (and so the checkpoint) untouched, and is a function
of the episode's seed."""

from __future__ import annotations

import copy
import hashlib
import json

import numpy as np
import torch

from unseen import train
from unseen.agents.pad import PADConfig
from unseen.evaluate import ADAPTED_RETURNS, evaluate_run

from conftest import OBS, assert_same_state, batch, new_agent, tiny_config


def transitions(n: int = 3, seed: int = 5) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 256, (n + 1, *OBS), dtype=np.uint8)
    return [(frames[i], rng.uniform(-1, 1, 2).astype(np.float32), frames[i + 1]) for i in range(n)]


def adapted(agent, seed: int) -> dict[str, torch.Tensor]:
    adapter = agent.adapter(seed)
    for obs, action, next_obs in transitions():
        adapter.act(obs, deterministic=True)
        adapter.observe(obs, action, next_obs)
    return copy.deepcopy(adapter.agent.state_dict())


def trained_pad():
    agent = new_agent("pad")
    for seed in range(4):
        agent.update(batch(8, seed=seed))
    return agent


def test_published_defaults():
    cfg = PADConfig()
    assert (cfg.encoder_layers - cfg.pad_head_layers, cfg.pad_head_layers) == (8, 3)  # scripts/pad.sh
    assert (cfg.pad_lr, cfg.pad_beta1, cfg.pad_update_every, cfg.adapt_batch_size) == (1e-3, 0.9, 2, 32)


def test_the_head_shares_the_first_layers_of_the_trunk_only():
    agent = new_agent("pad", encoder_layers=3, pad_head_layers=2)
    trunk_convs = [m for m in agent.trunk.convs if isinstance(m, torch.nn.Conv2d)]
    pad_convs = [m for m in agent.pad_convs if isinstance(m, torch.nn.Conv2d)]
    assert pad_convs[0] is trunk_convs[0] and len(pad_convs) == len(trunk_convs) == 3
    assert all(p is not t for p, t in zip(pad_convs[1:], trunk_convs[1:], strict=True))
    owned = {id(p) for group in agent.pad_optimizer.param_groups for p in group["params"]}
    expected = [*trunk_convs[0].parameters(), *agent.pad_head.parameters()]
    assert owned == {id(p) for p in expected} and len(owned) == len(expected)


def test_adaptation_moves_the_shared_layers_and_the_head_of_a_copy_only():
    agent = trained_pad()  # tiny: 2 conv layers, the first shared, the second the actor's and critic's
    before = copy.deepcopy(agent.state_dict())
    after = adapted(agent, seed=0)
    moved = {f"{module}.{key}" for module, state in before.items() if isinstance(state, dict)
             for key, value in state.items()
             if isinstance(value, torch.Tensor) and not torch.equal(value, after[module][key])}
    shared = {"trunk.convs.0.weight", "trunk.convs.0.bias"}
    assert shared <= moved
    assert {name for name in moved if name.startswith("pad_head.")}, "the inverse-dynamics head adapts"
    assert moved - shared <= {name for name in moved if name.startswith(("pad_head.", "pad_optimizer."))}
    for module in ("actor", "critic", "trunk_target", "critic_target", "actor_optimizer", "critic_optimizer"):
        assert not any(name.startswith(module + ".") for name in moved), f"{module} moved"
    assert_same_state(before, agent.state_dict())  # the agent itself is untouched


def test_adaptation_is_a_function_of_the_seed():
    agent = trained_pad()
    assert_same_state(adapted(agent, seed=3), adapted(agent, seed=3))
    other = adapted(agent, seed=4)["trunk"]["convs.0.weight"]
    assert not torch.equal(adapted(agent, seed=3)["trunk"]["convs.0.weight"], other)


def test_adapter_starts_from_a_fresh_optimizer_and_batches_the_current_transition(monkeypatch):
    agent = trained_pad()
    adapter = agent.adapter(seed=0)
    assert adapter.agent.pad_optimizer is not agent.pad_optimizer and not adapter.agent.pad_optimizer.state
    seen = []
    monkeypatch.setattr(adapter.agent, "update_inverse_dynamics",
                        lambda o, a, n: seen.append((o, a, n)) or {"pad_loss": torch.tensor(0.0)})
    obs, action, next_obs = transitions(1)[0]
    adapter.observe(obs, action, next_obs)
    (o, a, n), = seen
    crop, copies = agent.crop, agent.cfg.adapt_batch_size
    assert o.shape == n.shape == (copies, OBS[0], crop, crop) and a.shape == (copies, 2)
    assert torch.equal(a, torch.as_tensor(action).expand(copies, 2))
    assert len({tuple(x.flatten().tolist()[:50]) for x in o}) > 1, "each copy cropped at its own offset"


def test_eval_adapt_reports_both_and_leaves_the_checkpoint_alone(tmp_path):
    run = tmp_path / "run"
    train.start(tiny_config("pad", steps=40), run)
    checkpoint = run / train.CHECKPOINT_FILE
    digest = hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    rows = evaluate_run(run, ["none"], 1, workers=1, adapt=True)
    again = evaluate_run(run, ["none"], 1, workers=1, adapt=True)
    assert hashlib.sha256(checkpoint.read_bytes()).hexdigest() == digest
    assert [row.get("adapted", False) for row in rows] == [False, True]
    assert [row["return_mean"] for row in rows] == [row["return_mean"] for row in again], "deterministic"
    summary = json.loads((run / "summary.json").read_text())
    assert summary[ADAPTED_RETURNS]["none"]["mean"] == rows[1]["return_mean"]
    assert summary["returns"]["none"]["mean"] == rows[0]["return_mean"]
