"""The environment contract of DESIGN.md: spaces, dtypes, determinism, action repeat, episode ends."""

from __future__ import annotations

import numpy as np
import pytest

from unseen.envs import SHIFTS, TASKS, make_env

from conftest import assert_set_state_continues, random_actions, rollout

REQUIRED_TASKS = [
    "walker_walk", "walker_stand", "walker_run", "cartpole_swingup", "cartpole_balance",
    "ball_in_cup_catch", "finger_spin", "cheetah_run", "reacher_easy", "hopper_stand",
]


@pytest.mark.parametrize("task", REQUIRED_TASKS)
def test_spaces_shapes_and_dtypes(task):
    env = make_env(task, image_size=48, frame_stack=3)
    try:
        assert env.observation_space.shape == (9, 48, 48)
        assert env.observation_space.dtype == np.uint8
        assert np.all(env.action_space.low == -1) and np.all(env.action_space.high == 1)
        obs, _ = env.reset()
        assert obs.shape == (9, 48, 48) and obs.dtype == np.uint8
        assert env.observation_space.contains(obs)
        obs, reward, _, _, _ = env.step(env.action_space.sample())
        assert obs.shape == (9, 48, 48) and obs.dtype == np.uint8
        assert isinstance(reward, float) and 0.0 <= reward <= 1000 / env.max_episode_steps  # <= 1 per sim step
        assert obs.std() > 0  # a real picture, not a blank frame
    finally:
        env.close()


def test_required_tasks_are_listed():
    assert set(REQUIRED_TASKS) <= set(TASKS)
    assert SHIFTS[0] == "none"


def test_same_seed_same_actions_same_observations_and_rewards():
    envs = [make_env("walker_walk", seed=3, image_size=32) for _ in range(2)]
    actions = random_actions(envs[0], 15)
    (obs_a, rew_a), (obs_b, rew_b) = (rollout(env, actions) for env in envs)
    other = make_env("walker_walk", seed=4, image_size=32)
    obs_c, _ = rollout(other, actions)
    for env in (*envs, other):
        env.close()
    np.testing.assert_array_equal(obs_a, obs_b)
    np.testing.assert_array_equal(rew_a, rew_b)
    assert not np.array_equal(obs_a[0], obs_c[0])  # a different seed starts elsewhere


def test_reset_with_seed_reproduces_the_episode():
    env = make_env("walker_walk", seed=0, image_size=32)
    first = env.reset(seed=11)[0]
    env.step(random_actions(env, 1)[0])
    again = env.reset(seed=11)[0]
    env.close()
    np.testing.assert_array_equal(first, again)


def test_frame_stack_shifts_by_one_frame_and_starts_with_copies():
    env = make_env("cheetah_run", image_size=32, frame_stack=3)
    obs0, _ = env.reset()
    np.testing.assert_array_equal(obs0[0:3], obs0[3:6])
    np.testing.assert_array_equal(obs0[3:6], obs0[6:9])
    obs1, *_ = env.step(random_actions(env, 1)[0])
    env.close()
    np.testing.assert_array_equal(obs1[0:6], obs0[3:9])
    assert not np.array_equal(obs1[6:9], obs0[6:9])


def test_action_repeat_equals_repeated_single_steps():
    repeated = make_env("walker_walk", seed=1, image_size=32, action_repeat=4)
    single = make_env("walker_walk", seed=1, image_size=32, action_repeat=1)
    repeated.reset()
    single.reset()
    action = random_actions(repeated, 1)[0]
    obs, reward, *_ = repeated.step(action)
    rewards = [single.step(action)[1] for _ in range(4)]
    last = single.observation()
    repeated.close()
    single.close()
    assert reward == pytest.approx(sum(rewards))
    np.testing.assert_array_equal(obs[-3:], last[-3:])


@pytest.mark.parametrize("task, repeat", [("cartpole_swingup", 8), ("finger_spin", 2), ("walker_walk", 4)])
def test_default_action_repeat_per_task(task, repeat):
    env = make_env(task, image_size=16)
    assert env.max_episode_steps == 1000 // repeat
    env.close()


def test_episode_end_is_truncation_not_termination():
    env = make_env("cartpole_swingup", image_size=16)
    env.reset()
    flags = [env.step(np.zeros(1, np.float32))[2:4] for _ in range(125)]
    env.close()
    assert flags[-1] == (False, True)
    assert not any(terminated or truncated for terminated, truncated in flags[:-1])


def test_get_state_set_state_continues_the_same_episode():
    assert_set_state_continues("reacher_easy")  # reacher moves its target in the model at reset


def test_unknown_names_raise_value_errors_that_list_the_valid_ones():
    with pytest.raises(ValueError, match=r"valid tasks: .*walker_walk"):
        make_env("walker_fly")
    with pytest.raises(ValueError, match="valid shifts: none"):
        make_env("walker_walk", shift="rainbow")
    with pytest.raises(ValueError, match="unknown option"):
        make_env("walker_walk", brightness=2)


def test_shadows_option_changes_the_picture():
    plain = make_env("walker_walk", image_size=64)
    shadows = make_env("walker_walk", image_size=64, render_shadows=True)
    a, b = plain.reset()[0], shadows.reset()[0]
    plain.close()
    shadows.close()
    assert not np.array_equal(a, b)


def test_renderers_sharing_a_thread_gl_context_draw_what_their_own_contexts_draw(monkeypatch):
    """`unseen.envs.render`: environments of several tasks and shifts (textures uploaded per shift, segmentation
    passes, an xArm scene) stepping in turn in one GL context give the bytes of one context each, also after a
    neighbour is closed (with their own contexts, a neighbour stays open: `mujoco.Renderer.close` frees its GL
    objects in whichever context is current, here another renderer's)."""
    from unseen.envs import render

    cases = [("cartpole_swingup", "none"), ("walker_walk", "color_hard"), ("cartpole_swingup", "video_easy"),
             ("finger_spin", "distracting_cs"), ("xarm_reach", "test2"), ("walker_walk", "video_hard")]

    def frames(share: bool) -> list[np.ndarray]:
        monkeypatch.setattr(render, "SHARE_GL_CONTEXT", share)
        envs = [make_env(task, shift, seed=3, image_size=32) for task, shift in cases]
        drawn = [env.reset(seed=5)[0] for env in envs]
        if share:
            envs[0].close()
        for step in range(3):
            drawn += [env.step(random_actions(env, 1, seed=step)[0])[0] for env in envs[1:]]
        for env in reversed(envs):
            env.close()
        return drawn

    shared, own = frames(True), frames(False)
    assert all(np.array_equal(a, b) for a, b in zip(shared, own, strict=True))
    assert len({frame.tobytes() for frame in shared}) == len(shared)  # every frame drawn, none a neighbour's
