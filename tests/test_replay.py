"""The replay buffer: each frame stored once, stacks that respect episode starts, wrap-around, durability."""

from __future__ import annotations

import numpy as np
import pytest

from unseen.replay import ReplayBuffer

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
