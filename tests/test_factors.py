"""True factors (`make_env(..., true_factors=True)`): present only on request, equal to the simulator's
state and the shift's draws, stable names, and no effect on the episode or on its exact resume."""

from __future__ import annotations

import numpy as np
import pytest

from unseen.envs import make_env
from unseen.envs.dmc_tasks import SHIFTS

from conftest import random_actions, rollout

SIZE = 32
# Besides the joints: what each shift adds, by name prefix.
DISTRACTOR_PREFIXES = {
    "none": set(),
    "color_easy": {"color"},
    "color_hard": {"color"},
    "video_easy": {"video"},
    "video_hard": {"video"},
    "distracting_cs": {"camera", "color", "video"},
}


def factor_stream(env, actions, seed=None) -> list[dict[str, float]]:
    """`info["factors"]` of the reset and of every step of `actions`."""
    infos = [env.reset(seed=seed)[1]] + [env.step(action)[4] for action in actions]
    return [info["factors"] for info in infos]


@pytest.mark.parametrize("shift", SHIFTS)
def test_factors_only_on_request_with_stable_names(shift):
    env = make_env("cartpole_swingup", shift, seed=1, image_size=SIZE, true_factors=True)
    plain = make_env("cartpole_swingup", shift, seed=1, image_size=SIZE)
    actions = random_actions(env, 3)
    stream = factor_stream(env, actions)
    assert plain.reset()[1] == {} and plain.step(actions[0])[4] == {}
    assert all(list(factors) == list(env.factor_names) for factors in stream)
    assert env.factor_names == plain.factor_names  # the same list with the option off: arrays line up
    prefixes = {name.split("/")[0] for name in env.factor_names}
    assert prefixes == {"qpos", "qvel"} | DISTRACTOR_PREFIXES[shift]
    assert all(isinstance(value, float) for value in stream[-1].values())
    env.close()
    plain.close()


@pytest.mark.parametrize("shift", ["none", "distracting_cs"])
def test_factors_change_nothing_in_the_episode(shift):
    envs = [make_env("walker_walk", shift, seed=3, image_size=SIZE, true_factors=on) for on in (True, False)]
    actions = random_actions(envs[0], 6)
    (obs_on, rewards_on), (obs_off, rewards_off) = (rollout(env, actions) for env in envs)
    for env in envs:
        env.close()
    np.testing.assert_array_equal(obs_on, obs_off)
    np.testing.assert_array_equal(rewards_on, rewards_off)


def test_joint_factors_are_the_physics_state():
    env = make_env("walker_walk", seed=2, image_size=SIZE, true_factors=True)
    env.reset()
    for action in random_actions(env, 4):
        factors = env.step(action)[4]["factors"]
        data = env._physics.data
        for kind, values in (("qpos", data.qpos), ("qvel", data.qvel)):
            np.testing.assert_array_equal([factors[n] for n in env.factor_names if n.startswith(f"{kind}/")], values)
    assert env.factor_names[:3] == ("qpos/rootz", "qpos/rootx", "qpos/rooty")
    assert env.angle_factors == ("qpos/rooty",)  # the torso turns freely; the legs' hinges have limits
    env.close()


def test_joints_of_several_coordinates_are_numbered():
    env = make_env("fish_swim", image_size=SIZE, true_factors=True)
    names = env.factor_names
    env.close()
    assert names[:8] == (*(f"qpos/root/{k}" for k in range(7)), "qpos/tail1")  # free joint: position + quaternion
    assert "qvel/root/5" in names and "qvel/root/6" not in names


@pytest.mark.parametrize(
    "shift, varying",
    [("color_hard", "color/self_rgb/r"), ("video_hard", "video/clip"), ("distracting_cs", "camera/azimuth")],
)
def test_distractor_factors_follow_the_shift_draws(shift, varying):
    env = make_env("cartpole_swingup", shift, seed=0, image_size=SIZE, true_factors=True)
    drawn = {env.reset(seed=seed)[1]["factors"][varying] for seed in range(6)}
    again = env.reset(seed=3)[1]["factors"][varying]
    env.close()
    assert len(drawn) == 6  # another seed, another draw
    assert again in drawn


def test_colour_factors_are_the_table_entry():
    env = make_env("cartpole_swingup", "color_hard", seed=0, image_size=SIZE, true_factors=True)
    factors = env.reset()[1]["factors"]
    entry = env.get_state()["shift"]["parts"][0]["entry"]
    env.close()
    assert [factors[f"color/self_rgb/{c}"] for c in "rgb"] == env.shift.colors[entry][2].tolist()


def test_video_frame_advances_one_per_step():
    env = make_env("cartpole_swingup", "video_easy", seed=0, image_size=SIZE, true_factors=True)
    stream = factor_stream(env, random_actions(env, 3))
    env.close()
    assert [factors["video/frame"] for factors in stream] == [0.0, 1.0, 2.0, 3.0]
    assert len({factors["video/clip"] for factors in stream}) == 1


def test_colour_jitter_lists_only_materials_in_view():
    env = make_env("cartpole_swingup", "distracting_cs", image_size=SIZE, true_factors=True)
    materials = {name.split("/")[1] for name in env.factor_names if name.startswith("color/")}
    env.close()
    assert materials == {"grid", "self", "decoration"}  # not effector, target, site...: cartpole draws none


@pytest.mark.parametrize("shift", ["color_hard", "distracting_cs"])
def test_set_state_continues_the_factors(shift):
    env = make_env("cartpole_swingup", shift, seed=2, image_size=SIZE, true_factors=True)
    actions = random_actions(env, 8, seed=4)
    env.reset()
    for action in actions[:3]:
        env.step(action)
    state = env.get_state()
    before = env.factors()
    first = [env.step(action) for action in actions[3:]]
    fresh = make_env("cartpole_swingup", shift, seed=9, image_size=SIZE, true_factors=True)
    fresh.reset()
    fresh.set_state(state)
    assert fresh.factors() == before
    second = [fresh.step(action) for action in actions[3:]]
    env.close()
    fresh.close()
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a[0], b[0])
        assert a[4]["factors"] == b[4]["factors"]
