"""The environment-family seam: DMControl declared without loading MuJoCo, and a toy family registered by one module
and one `register_family` call reaches make_env, configs, shift checks and score normalisation."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

from unseen import envs
from unseen.config import make_config, validate
from unseen.envs import EnvFamily, check_shifts, family_of, make_env, register_family
from unseen.envs.dmc_tasks import SUITE
from unseen.errors import InputError


class ToyEnv:
    """A one-number world drawn as a grey frame: the reward is the action's first coordinate."""

    def __init__(self, task: str, shift: str = "none", seed: int = 0, image_size: int = 8, frame_stack: int = 3,
                 action_repeat: int = 1, **_: Any) -> None:
        self.shift = type("Shift", (), {"name": shift, "record": {"source": "none"}})()
        self.action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
        self.obs_shape = (3 * frame_stack, image_size, image_size)
        self.observation_space = gym.spaces.Box(0, 255, self.obs_shape, np.uint8)
        self.max_episode_steps = 5
        self.episode_steps = 0
        self.factor_names: tuple[str, ...] = ()
        self.angle_factors: tuple[str, ...] = ()
        self.level = 100 if shift == "dark" else 0

    def observation(self) -> np.ndarray:
        return np.full(self.obs_shape, self.level + self.episode_steps, np.uint8)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        self.episode_steps = 0
        return self.observation(), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        self.episode_steps += 1
        return self.observation(), float(action[0]), False, self.episode_steps >= self.max_episode_steps, {}

    def get_state(self) -> dict[str, Any]:
        return {"episode_steps": self.episode_steps}

    def set_state(self, state: dict[str, Any]) -> None:
        self.episode_steps = state["episode_steps"]

    def render(self) -> np.ndarray:
        return self.observation()[-3:].transpose(1, 2, 0)

    def close(self) -> None:
        pass


TOY = EnvFamily(
    name="toy", tasks=("toy_line",), shifts=("none", "dark"), make=ToyEnv, action_repeat=lambda task: 1,
    score_range=(-5.0, 5.0), source_options=(),
)


@pytest.fixture
def toy_family():
    register_family(TOY)
    yield TOY
    del envs.FAMILIES[TOY.name]


def test_dmc_tasks_are_the_benchmarking_suite():
    from dm_control import suite

    assert {f"{domain}_{task}": (domain, task) for domain, task in suite.BENCHMARKING} == SUITE
    assert family_of("walker_walk").shifts == envs.SHIFTS[: len(family_of("walker_walk").shifts)]


def test_listing_tasks_shifts_and_flags_loads_no_simulator():
    code = ("import sys; import unseen.envs, unseen.config, unseen.cli; unseen.cli.build_parser(); "
            "assert unseen.envs.all_tasks() and 'mujoco' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_a_registered_family_is_reached_by_everything_that_lists_tasks(toy_family):
    assert "toy_line" in envs.all_tasks() and "dark" in envs.all_shifts()
    env = make_env("toy_line", "dark", seed=3)
    obs, _ = env.reset()
    assert obs.shape == (9, 8, 8) and obs[0, 0, 0] == 100
    assert check_shifts("toy_line", ["none", "dark"]) == {"none": {"source": "none"}, "dark": {"source": "none"}}
    with pytest.raises(InputError, match="valid shifts: none, dark"):
        check_shifts("toy_line", ["color_hard"])
    with pytest.raises(InputError, match="take no data option"):
        check_shifts("toy_line", ["none"], {"video_dir": "x"})
    cfg = validate(make_config("drq", "toy_line", "cpu"))
    assert cfg.env.action_repeat == 1 and cfg.train.eval_shifts == "none,dark"
    assert toy_family.normalised(np.array([-5.0, 0.0, 5.0])).tolist() == [0.0, 0.5, 1.0]
    assert toy_family.score_formula() == "(return - -5) / 10"
    assert family_of("walker_walk").score_formula() == "return / 1000"


def test_registering_clashing_families_fails(toy_family):
    from dataclasses import replace

    with pytest.raises(ValueError, match="registered already"):
        register_family(TOY)
    with pytest.raises(ValueError, match="belong to another family"):
        register_family(replace(TOY, name="toy2"))
    with pytest.raises(ValueError, match="start with 'none'"):
        register_family(replace(TOY, name="toy3", tasks=("toy_3",), shifts=("dark",)))
    with pytest.raises(ValueError, match="inside its score_range"):
        register_family(replace(TOY, name="toy4", tasks=("toy_4",), task_ranges={"toy_4": (-6.0, 1.0)}))
    with pytest.raises(ValueError, match="must be one of its tasks"):
        register_family(replace(TOY, name="toy5", tasks=("toy_5",), task_ranges={"toy_line": (-1.0, 1.0)}))


def test_a_sweep_file_takes_the_data_options_of_every_family():
    from dataclasses import replace

    from unseen.sweep import parse_spec

    lit = register_family(replace(TOY, name="lit", tasks=("lit_line",), source_options=("light",),
                                  option_help={"light": "how bright"}))
    try:
        base = {"preset": "smoke", "tasks": ["lit_line"], "seeds": [0], "out": "runs", "algos": ["drq"]}
        spec = parse_spec(base | {"eval": {"shifts": ["none"], "light": 2, "intensity": "easy"}})
        assert spec.sources == {"light": "2", "intensity": "easy"}
        from unseen.cli import build_parser, source_options

        assert source_options(build_parser().parse_args(["eval", "run", "--light", "3"])) == {"light": "3"}
    finally:
        del envs.FAMILIES[lit.name]
