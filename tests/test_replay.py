"""The replay buffer: each frame stored once, stacks that respect episode starts, wrap-around, durability."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from unseen.replay import ReplayBuffer, nstep_returns

K = 3


def frame(value: int) -> np.ndarray:
    return np.full((3, 2, 2), value, np.uint8)


def fill(buffer: ReplayBuffer, episode_lengths: list[int]) -> list[list[int]]:
    """Add episodes whose frames are numbered consecutively; returns each episode's frame numbers."""
    episodes, value = [], 0
    for length in episode_lengths:
        numbers = [value + i for i in range(length + 1)]
        buffer.add_first(frame(numbers[0]))
        for t, number in enumerate(numbers[1:]):
            buffer.add(np.array([t], np.float32), float(number), 1.0, frame(number))
        episodes.append(numbers)
        value += length + 1
    return episodes


def expected_stack(numbers: list[int], t: int) -> list[int]:
    """The frame stack an environment shows after t steps of an episode: padded with its first frame."""
    return [numbers[max(0, t - lag)] for lag in range(K - 1, -1, -1)]


def stacks_of(batch_obs: np.ndarray) -> np.ndarray:
    return batch_obs.numpy()[:, ::3, 0, 0]  # one value per stacked frame


def check_batch(batch, episodes) -> None:
    by_reward = {n: (numbers, t) for numbers in episodes for t, n in enumerate(numbers) if t > 0}
    obs, next_obs = stacks_of(batch["obs"]), stacks_of(batch["next_obs"])
    for i, reward in enumerate(batch["reward"].numpy()):
        numbers, t = by_reward[int(reward)]
        assert list(obs[i]) == expected_stack(numbers, t - 1)
        assert list(next_obs[i]) == expected_stack(numbers, t)
        assert batch["action"][i, 0].item() == t - 1


def test_stacks_never_mix_episodes_and_pad_with_the_first_frame():
    buffer = ReplayBuffer(100, (3, 2, 2), 1, K)
    episodes = fill(buffer, [1, 2, 5, 4])
    batch = buffer.sample(500, np.random.default_rng(0))
    check_batch(batch, episodes)
    assert batch["obs"].shape == (500, 3 * K, 2, 2) and batch["obs"].dtype.is_floating_point is False
    # every transition gets drawn: 1 + 2 + 5 + 4 of them
    assert len(set(batch["reward"].tolist())) == 12


def test_first_frames_are_not_transitions():
    buffer = ReplayBuffer(50, (3, 2, 2), 1, K)
    fill(buffer, [3, 3])
    assert buffer.transitions == 6
    batch = buffer.sample(200, np.random.default_rng(1))
    assert set(batch["reward"].tolist()) == {1, 2, 3, 5, 6, 7}


def test_wrap_around_never_returns_overwritten_frames():
    buffer = ReplayBuffer(10, (3, 2, 2), 1, K)
    episodes = fill(buffer, [6, 6, 4])  # 19 frames through a 10-frame ring
    assert buffer.size == 10
    batch = buffer.sample(1000, np.random.default_rng(2))
    check_batch(batch, episodes)
    kept = {int(r) for r in batch["reward"]}
    # Frames 9..18 are stored. Episode two holds frames 7..13: its transitions into frames 10 and 11 need
    # frames 7 and 8, which are overwritten; 12 needs 9..12 and is the oldest one left.
    assert min(kept) == 12
    assert 18 in kept


def test_sample_is_reproducible_with_the_same_generator():
    buffer = ReplayBuffer(40, (3, 2, 2), 1, K)
    fill(buffer, [10, 10])
    a = buffer.sample(16, np.random.default_rng(7))
    b = buffer.sample(16, np.random.default_rng(7))
    for key in a:
        assert (a[key] == b[key]).all()


def test_memory_mapped_buffer_survives_reopening(tmp_path):
    buffer = ReplayBuffer(40, (3, 2, 2), 1, K, directory=tmp_path)
    episodes = fill(buffer, [5, 7])
    buffer.flush()
    state = buffer.state_dict()
    reopened = ReplayBuffer(40, (3, 2, 2), 1, K, directory=tmp_path)
    reopened.load_state_dict(state)
    a = buffer.sample(32, np.random.default_rng(3))
    b = reopened.sample(32, np.random.default_rng(3))
    for key in a:
        assert (a[key] == b[key]).all()
    check_batch(b, episodes)


def test_bytes_per_transition_at_84x84():
    buffer = ReplayBuffer(10, (3, 84, 84), 6, K)
    stacked = 2 * 3 * K * 84 * 84  # obs and next_obs stacks per transition
    assert buffer.bytes_per_frame == 3 * 84 * 84 + 6 * 4 + 4 + 4 + 4
    assert stacked / buffer.bytes_per_frame > 5.9


def test_misuse_is_reported():
    buffer = ReplayBuffer(10, (3, 2, 2), 1, K)
    with pytest.raises(RuntimeError, match="add_first"):
        buffer.add(np.zeros(1), 0.0, 1.0, frame(0))
    buffer.add_first(frame(0))
    with pytest.raises(RuntimeError, match="no transition"):
        buffer.sample(1, np.random.default_rng(0))
    with pytest.raises(ValueError, match="capacity"):
        ReplayBuffer(3, (3, 2, 2), 1, K)


# ----- n-step returns (DrQ-v2) ---------------------------------------------------------------------------------------


def test_nstep_returns_by_hand():
    rewards = np.array([[1.0, 2.0, 4.0], [1.0, 2.0, 4.0], [1.0, 2.0, 4.0], [1.0, 2.0, 4.0]])
    discounts = np.array([[1.0, 1.0, 1.0], [1.0, 0.0, 1.0], [1.0, 1.0, 1.0], [0.0, 1.0, 1.0]])
    steps = np.array([3, 3, 2, 1])
    reward, discount = nstep_returns(rewards, discounts, steps, gamma=0.5)
    # 1 + 0.5 * 2 + 0.25 * 4; a terminal second step drops the third reward; a window of two; one step.
    np.testing.assert_allclose(reward, [3.0, 2.0, 2.0, 1.0])
    # What multiplies gamma * V(s_k): gamma^(k-1) times the survival of all k steps.
    np.testing.assert_allclose(discount, [0.25, 0.0, 0.5, 0.0])


def test_nstep_batches_follow_each_episode_and_stop_at_its_end():
    """Every n-step transition starts anywhere a one-step one can, sums the rewards of its episode's next n steps at
    most, and bootstraps from the stack those steps end on: within 2 steps of an episode's end, or of the newest
    entry, the window is shorter and the discount says so."""
    buffer = ReplayBuffer(100, (3, 2, 2), 1, K)
    episodes = fill(buffer, [1, 2, 5, 4])  # rewards are the frame numbers
    gamma, n = 0.5, 3
    batch = buffer.sample(500, np.random.default_rng(0), nstep=n, gamma=gamma)
    one = buffer.sample(500, np.random.default_rng(0))
    assert torch.equal(batch["obs"], one["obs"]) and torch.equal(batch["action"], one["action"])
    starts = {n: (numbers, t) for numbers in episodes for t, n in enumerate(numbers) if t > 0}
    next_obs = stacks_of(batch["next_obs"])
    for i, first in enumerate(one["reward"].numpy()):
        numbers, t = starts[int(first)]
        k = min(n, len(numbers) - t)
        expected = sum(gamma**j * numbers[t + j] for j in range(k))
        assert batch["reward"][i].item() == pytest.approx(expected)
        assert batch["discount"][i].item() == pytest.approx(gamma ** (k - 1))
        assert list(next_obs[i]) == expected_stack(numbers, t + k - 1)


def test_nstep_windows_never_reach_overwritten_or_unwritten_entries():
    buffer = ReplayBuffer(10, (3, 2, 2), 1, K)
    episodes = fill(buffer, [6, 6, 4])  # the ring has wrapped: frames 9..18 are stored, 18 the newest
    batch = buffer.sample(500, np.random.default_rng(2), nstep=3, gamma=1.0)
    one = buffer.sample(500, np.random.default_rng(2))
    starts = {n: (numbers, t) for numbers in episodes for t, n in enumerate(numbers) if t > 0}
    for i, first in enumerate(one["reward"].numpy()):
        numbers, t = starts[int(first)]
        k = min(3, len(numbers) - t)
        assert batch["reward"][i].item() == sum(numbers[t:t + k])
    with pytest.raises(ValueError, match="nstep"):
        buffer.sample(1, np.random.default_rng(0), nstep=0)
