"""A replay buffer that stores every frame once.

Stacked observations share frames: `obs` at step t and `next_obs` at t+1 overlap in k-1 of their k
frames, so storing both stacks per transition keeps 2k copies of each frame. Here each agent step writes
only the newest frame, and a batch is stacked at sample time. With k = 3, 84x84 RGB frames and a 6-dim
action this is 21,204 bytes per transition (frame, action, reward, discount, position) instead of 127,008
for the obs + next_obs stacks alone (6.0x less).

Layout: one entry per frame. The first frame of an episode has `position == 0` and is not a transition;
entry i with `position > 0` is the transition (stack ending at i-1, action[i], reward[i], discount[i],
stack ending at i). A stack near an episode start repeats the episode's first frame, exactly as the
environment's frame stack does after a reset, so a stack never mixes frames of two episodes.

With a `directory`, the arrays live in memory-mapped `.npy` files there: the buffer is durable by
construction and a checkpoint only records how far it is valid (`state_dict`). Their disk blocks are reserved when
they are opened (`posix_fallocate`): a disk that fills up later cannot kill the process with SIGBUS on a write to the
map. Reopened files are checked: one cut short or of another shape is `Damaged` (numpy would silently extend it with
zeros), and `load_state_dict` compares a CRC-32 of the last `CHECKED_ENTRIES` entries the state counts with the one
recorded in it. That catches a file cut short and extended again, or replaced, where the newest data was; the whole
prefix would cost a read of the whole buffer at every checkpoint (10 GB at the paper's scale, about 5 s of CRC-32 at
2.2 GB/s on the development machine), the last 1024 entries of 84x84 frames took 38 ms there.

n-step returns (`sample(..., nstep=n, gamma=g)`, DrQ-v2): the transition drawn at entry i starts a window of up to
n consecutive transitions of its episode, i..i+k-1, cut short (k < n) where the episode ends or the buffer's newest
entry is reached; `nstep_returns` folds the window into one transition whose `reward` is the discounted sum and
whose `discount` is what multiplies `g * V(next_obs)`, next_obs being the stack ending at entry i+k-1. The TD target
of every agent, `reward + g * discount * V(next_obs)`, is then the k-step target whatever n is, and n = 1 is the
one-step batch exactly.
"""

from __future__ import annotations

import errno
import os
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import torch

from unseen.errors import Damaged

ARRAYS = ("frames", "actions", "rewards", "discounts", "positions")
"""The buffer's arrays; with a directory, each is the file `<name>.npy` there."""

CHECKED_ENTRIES = 1024
"""Entries before the cursor whose CRC-32 a state records (the newest data of a checkpoint)."""


class ReplayBuffer:
    """Ring buffer of single frames with stacked sampling; see the module docstring for the layout."""

    def __init__(
        self,
        capacity: int,
        frame_shape: tuple[int, int, int],
        action_dim: int,
        frame_stack: int,
        directory: Path | None = None,
        existing: bool = False,
    ) -> None:
        """`directory`: where the memory-mapped files are (None: in memory), created when absent unless `existing`
        (a resumed run's buffer): then a missing file is `Damaged`."""
        if capacity <= frame_stack:
            raise ValueError(f"replay capacity {capacity} must exceed the frame stack {frame_stack}")
        self.capacity = capacity
        self.frame_stack = frame_stack
        self.directory = directory
        specs = array_specs(capacity, frame_shape, action_dim)
        self._arrays = {name: _array(directory, name, shape, dtype, existing) for name, (shape, dtype) in specs.items()}
        self.frames = self._arrays["frames"]
        self.actions = self._arrays["actions"]
        self.rewards = self._arrays["rewards"]
        self.discounts = self._arrays["discounts"]
        self.positions = self._arrays["positions"]
        self.cursor = 0  # next entry to write
        self.size = 0  # valid entries
        self._position = 0  # position in the current episode of the next entry

    @property
    def bytes_per_frame(self) -> int:
        """Bytes stored per entry (one frame with its action, reward, discount and position)."""
        return sum(array.itemsize * int(np.prod(array.shape[1:])) for array in self._arrays.values())

    @property
    def transitions(self) -> int:
        """Number of sampleable transitions currently stored."""
        return int((self.positions[: self.size] > 0).sum())

    def add_first(self, frame: np.ndarray) -> None:
        """Start an episode with its first frame."""
        self._position = 0
        self._write(frame, 0.0, 0.0, 0.0)

    def add(self, action: np.ndarray, reward: float, discount: float, next_frame: np.ndarray) -> None:
        """Append one transition: the action taken, its reward, the discount (0 if terminal) and the new frame."""
        if self.size == 0:
            raise RuntimeError("call add_first with the episode's first frame before add")
        self._write(next_frame, action, reward, discount)

    def _write(self, frame: np.ndarray, action: np.ndarray | float, reward: float, discount: float) -> None:
        i = self.cursor
        self.frames[i] = frame
        self.actions[i] = action
        self.rewards[i] = reward
        self.discounts[i] = discount
        self.positions[i] = self._position
        self._position += 1
        self.cursor = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def _valid(self, index: np.ndarray) -> np.ndarray:
        # A transition needs its own entry and up to k entries before it (fewer near an episode start);
        # once the ring has wrapped, those must not reach past the oldest entry.
        position = self.positions[index]
        age = (index - self.cursor) % self.capacity if self.size == self.capacity else index
        return (position > 0) & (age >= np.minimum(position, self.frame_stack))

    def sample(
        self, batch_size: int, rng: np.random.Generator, nstep: int = 1, gamma: float = 1.0
    ) -> dict[str, torch.Tensor]:
        """A batch of transitions drawn uniformly: uint8 `obs`/`next_obs` stacks and float32 the rest; with
        `nstep > 1`, n-step transitions discounted by `gamma` (module docstring)."""
        if self.transitions == 0:
            raise RuntimeError("the replay buffer holds no transition yet")
        if nstep < 1:
            raise ValueError(f"nstep must be at least 1, got {nstep}")
        index = rng.integers(0, self.size, batch_size)
        invalid = ~self._valid(index)
        while invalid.any():
            index[invalid] = rng.integers(0, self.size, int(invalid.sum()))
            invalid = ~self._valid(index)
        position = self.positions[index]
        reward, discount = self.rewards[index], self.discounts[index]
        last = index
        if nstep > 1:
            window, steps = self._window(index, nstep)
            reward, discount = nstep_returns(self.rewards[window], self.discounts[window], steps, gamma)
            last = window[np.arange(batch_size), steps - 1]
        last_position = self.positions[last]
        # Stack member m (oldest first) of the stack ending at entry e with episode position p is entry
        # e - min(k - 1 - m, p): frames before the episode start are replaced by its first frame.
        lag = np.arange(self.frame_stack - 1, -1, -1)
        next_back = np.minimum(lag[None, :], last_position[:, None])
        back = np.minimum(lag[None, :], position[:, None] - 1) + 1
        stacked = np.concatenate([index[:, None] - back, last[:, None] - next_back], axis=1) % self.capacity
        frames = self.frames[stacked.ravel()].reshape(batch_size, 2, -1, *self.frames.shape[2:])
        return {
            "obs": torch.from_numpy(frames[:, 0]),
            "action": torch.from_numpy(self.actions[index]),
            "reward": torch.from_numpy(np.ascontiguousarray(reward, np.float32)),
            "discount": torch.from_numpy(np.ascontiguousarray(discount, np.float32)),
            "next_obs": torch.from_numpy(frames[:, 1]),
        }

    def _window(self, index: np.ndarray, nstep: int) -> tuple[np.ndarray, np.ndarray]:
        """Entries `(B, nstep)` of the transitions from each of `index` on, and how many of them `(B,)` belong to
        its episode and have been written (entries past those repeat the last one that does)."""
        ahead = np.arange(nstep)
        window = (index[:, None] + ahead) % self.capacity
        written = ahead <= ((self.cursor - 1 - index) % self.capacity)[:, None]  # entries written after index
        # Entries written one after another hold consecutive positions unless an episode started between them.
        same_episode = self.positions[window] == self.positions[index][:, None] + ahead
        steps = np.cumprod(written & same_episode, axis=1).sum(axis=1)
        window = window[np.arange(len(index))[:, None], np.minimum(ahead, steps[:, None] - 1)]
        return window, steps

    def flush(self) -> None:
        """Write memory-mapped arrays to disk (before a checkpoint records them as valid)."""
        for array in self._arrays.values():
            if isinstance(array, np.memmap):
                array.flush()

    def state_dict(self) -> dict[str, Any]:
        """How far the buffer is valid and, with files, the CRC-32 of each array's newest entries (`checksums`)."""
        state: dict[str, Any] = {"cursor": self.cursor, "size": self.size, "position": self._position}
        if self.directory is not None:
            state["checked"] = {"entries": min(self.size, CHECKED_ENTRIES), "crc32": self.checksums(self.cursor)}
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from `state`; `Damaged` names the first file whose checked entries differ from the recorded ones
        (a state recorded before the checks existed is taken as it is)."""
        if "checked" in state and self.directory is not None:
            found = self.checksums(state["cursor"], state["checked"]["entries"])
            for name, crc in state["checked"]["crc32"].items():
                if found[name] != crc:
                    raise Damaged(f"{Path(self.directory) / name}.npy differs from what the checkpoint recorded (its "
                                  f"newest {state['checked']['entries']} entries)")
        self.cursor, self.size, self._position = state["cursor"], state["size"], state["position"]

    def checksums(self, cursor: int, entries: int | None = None) -> dict[str, int]:
        """CRC-32 of each array's `entries` (default: up to `CHECKED_ENTRIES` valid ones) before `cursor`, oldest
        first, across the ring's end."""
        entries = min(self.size, CHECKED_ENTRIES) if entries is None else entries
        index = (cursor - entries + np.arange(entries)) % self.capacity
        return {name: zlib.crc32(np.ascontiguousarray(array[index]).data) for name, array in self._arrays.items()}


def nstep_returns(
    rewards: np.ndarray, discounts: np.ndarray, steps: np.ndarray, gamma: float
) -> tuple[np.ndarray, np.ndarray]:
    """Fold windows of consecutive transitions into n-step ones: `rewards` and `discounts` `(B, n)` (the environment's
    discount, 0 after a terminal step), of which the first `steps` `(B,)` (1..n) count. With k = steps and d the
    discounts,
        reward   = sum_{j<k} gamma^j (d_0 ... d_{j-1}) r_j
        discount = gamma^(k-1) (d_0 ... d_{k-1}),
    so that `reward + gamma * discount * V(s_k)` is the k-step TD target (DrQ-v2's `replay_buffer.py`, which returns
    `gamma * discount` and cuts no window short). Rewards after a terminal step are multiplied by 0."""
    n = rewards.shape[1]
    counted = np.arange(n)[None, :] < steps[:, None]
    weights = np.where(counted, 1.0, 0.0) * gamma ** np.arange(n)[None, :]
    # d_0 ... d_{j-1}: the product of the discounts before step j (1 for j = 0).
    survived = np.cumprod(np.concatenate([np.ones((len(steps), 1)), discounts[:, :-1]], axis=1), axis=1)
    reward = (weights * survived * rewards).sum(axis=1)
    discount = gamma ** (steps - 1.0) * np.where(counted, discounts, 1.0).prod(axis=1)
    return reward.astype(np.float32), discount.astype(np.float32)


def array_specs(
    capacity: int, frame_shape: tuple[int, ...], action_dim: int
) -> dict[str, tuple[tuple[int, ...], type]]:
    """Shape and dtype of each of the buffer's arrays (`ARRAYS`)."""
    return {
        "frames": ((capacity, *frame_shape), np.uint8),
        "actions": ((capacity, action_dim), np.float32),
        "rewards": ((capacity,), np.float32),
        "discounts": ((capacity,), np.float32),
        "positions": ((capacity,), np.int32),
    }


NPY_HEADER = 128
"""Bytes of a .npy file before its data (numpy pads the header of a version 1.0 file to a multiple of 64)."""


def bytes_to_reserve(directory: Path, capacity: int, frame_shape: tuple[int, ...], action_dim: int) -> int:
    """Disk bytes a buffer in `directory` still has to take: whole files for the arrays not there yet, the holes of
    sparse ones (written before their blocks were reserved) for those that are."""
    needed = 0
    for name, (shape, dtype) in array_specs(capacity, frame_shape, action_dim).items():
        path = Path(directory) / f"{name}.npy"
        if path.exists():
            status = path.stat()
            needed += max(0, status.st_size - status.st_blocks * 512)
        else:
            needed += NPY_HEADER + int(np.prod(shape)) * np.dtype(dtype).itemsize
    return needed


def _array(directory: Path | None, name: str, shape: tuple[int, ...], dtype: type, existing: bool) -> np.ndarray:
    if directory is None:
        return np.zeros(shape, dtype)
    path = Path(directory) / f"{name}.npy"
    if path.exists():
        _check_file(path, shape, np.dtype(dtype))
        array = np.load(path, mmap_mode="r+")
    elif existing:
        raise Damaged(f"{path} is missing")
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        array = np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape)
    _reserve(path)
    return array


def _check_file(path: Path, shape: tuple[int, ...], dtype: np.dtype) -> None:
    """`Damaged` unless `path` is a whole .npy file of `shape` and `dtype`: numpy would map a file cut short after
    extending it with zeros."""
    with path.open("rb") as handle:
        try:
            npy = np.lib.format
            read_header = npy.read_array_header_1_0 if npy.read_magic(handle) == (1, 0) else npy.read_array_header_2_0
            found_shape, _, found_dtype = read_header(handle)
        except ValueError:
            raise Damaged(f"{path} is not a whole .npy file (cut short in its header?)") from None
        data_start = handle.tell()
    if found_shape != shape or found_dtype != dtype:
        raise Damaged(f"{path} holds {found_shape} {found_dtype}, the run's config makes {shape} {dtype}")
    size, expected = path.stat().st_size, data_start + int(np.prod(shape)) * dtype.itemsize
    if size != expected:
        raise Damaged(f"{path} is {'cut short' if size < expected else 'longer than its array'}: {size:,} bytes of "
                      f"{expected:,}")


def _reserve(path: Path) -> None:
    """Take the disk blocks of the whole file now (a no-op where they are taken), so that writing to its map never
    finds the disk full. Where the platform or the filesystem cannot, the file stays sparse."""
    if not hasattr(os, "posix_fallocate"):
        return
    with path.open("r+b") as handle:
        try:
            os.posix_fallocate(handle.fileno(), 0, os.fstat(handle.fileno()).st_size)
        except OSError as error:
            if error.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
                raise
