"""DeepMind Control tasks as gymnasium environments with stacked pixel observations.

Frames are rendered offscreen with `mujoco.Renderer` (one GL context per thread: `unseen.envs.render`) straight
from the dm_control physics. With shadows and reflections off (the default, recorded in every run's config) it
renders walker at 84x84 about 4x faster than with them and about 7x faster than dm_control's `physics.render` on
this CPU machine.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from typing import Any

import gymnasium as gym
import numpy as np

from unseen.errors import InputError, UserError


def joint_coordinate_names(model: mujoco.MjModel, prefix: str, sizes: dict[int, int]) -> list[str]:
    """`prefix/<joint>` for each coordinate of each joint in the model's order (`prefix/<joint>/<k>` for
    joints of several), `sizes` giving the coordinates per joint type; unnamed joints are `joint<id>`."""
    names = []
    for joint in range(model.njnt):
        name = model.joint(joint).name or f"joint{joint}"
        size = sizes[int(model.jnt_type[joint])]
        names += [f"{prefix}/{name}"] if size == 1 else [f"{prefix}/{name}/{k}" for k in range(size)]
    return names


def no_gl_backend(error: Exception) -> UserError:
    """The one-line error for a missing or broken OpenGL backend, naming the fixes."""
    return UserError(
        f"no OpenGL backend for offscreen rendering (MUJOCO_GL={os.environ.get('MUJOCO_GL')}: "
        f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}); use MUJOCO_GL=egl with "
        "Mesa's EGL (apt-get install libegl1) or MUJOCO_GL=osmesa with apt-get install libosmesa6"
    )


try:  # dm_control loads the GL backend named by MUJOCO_GL when it is first imported
    import mujoco
    from dm_control import suite
except (ImportError, RuntimeError, AttributeError, OSError) as error:
    raise no_gl_backend(error) from None

# mujoco 3.17 warns, through absl, about an attribute of dm_control's own XML on every load of some
# domains (walker, cheetah, hopper): nothing a user can act on, so it is kept out of their output.
logging.getLogger("absl").addFilter(lambda record: "settotalmass" not in record.getMessage())

from unseen.envs.dmc_tasks import SOURCE_HELP, SUITE, default_action_repeat  # noqa: E402
from unseen.envs.render import new_renderer  # noqa: E402  (a GL context: after the GL backend check)
from unseen.envs.scene import Scene  # noqa: E402  (imports mujoco: after the GL backend check)
from unseen.envs.shifts import Shift, ShiftConfig, resolve_shift  # noqa: E402

# The camera the DMControl-GB and DrQ pixel protocols use (quadruped looks through camera 2).
_CAMERA = {"quadruped": 2}

# Coordinates of each MuJoCo joint type (free, ball, slide, hinge) in qpos and in qvel.
_JOINT_QPOS = {0: 7, 1: 4, 2: 1, 3: 1}
_JOINT_QVEL = {0: 6, 1: 3, 2: 1, 3: 1}

# Model arrays that a task's episode initialisation may edit in place (reacher moves its target geom,
# for instance). A checkpoint stores them so that a restored episode is the same episode.
_MUTABLE_MODEL_FIELDS = ("geom_pos", "geom_quat", "geom_size", "geom_rgba", "site_pos", "body_pos", "mat_rgba")

# What `make_dmc` passes to `PixelEnv` besides the shift's data.
_OPTIONS = ("image_size", "frame_stack", "action_repeat", "render_shadows", "true_factors")


class PixelEnv(gym.Env):
    """A dm_control suite task seen through pixels: observation `(3 * frame_stack, H, W)` uint8.

    One `step` repeats the action `action_repeat` times, sums the rewards and renders one frame. The
    suite's episodes last 1000 simulator steps; their end is reported as `truncated` (the time limit),
    never as `terminated`, so that TD targets keep bootstrapping. A distribution `shift` changes the
    picture (colours, camera, background) after each physics reset and step, never the physics.

    With `true_factors`, `reset` and `step` put `info["factors"]`: the values that made the newest frame
    (`factors`, named by `factor_names`).
    """

    metadata = {"render_modes": ["rgb_array"]}  # noqa: RUF012  (gym.Env declares it an instance variable)

    def __init__(
        self,
        domain: str,
        task: str,
        seed: int = 0,
        image_size: int = 84,
        frame_stack: int = 3,
        action_repeat: int = 1,
        render_shadows: bool = False,
        shift: ShiftConfig = ShiftConfig(),
        true_factors: bool = False,
    ) -> None:
        self._env = suite.load(domain, task, task_kwargs={"random": seed})
        self._physics = self._env.physics
        self._camera = _CAMERA.get(domain, 0)
        self._frame_stack = frame_stack
        self._action_repeat = action_repeat
        self._image_size = image_size
        visual = self._physics.model.vis.global_
        largest = min(visual.offwidth, visual.offheight)  # the model's offscreen framebuffer
        if not 0 < image_size <= largest:
            raise InputError(f"image_size must be between 1 and {largest} for {domain} tasks, got {image_size}")
        try:
            self._renderer = new_renderer(self._physics.model.ptr, image_size, image_size)
        except Exception as error:  # whatever the GL library raises when no context can be made
            raise no_gl_backend(error) from None
        self._renderer.scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = render_shadows
        self._renderer.scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = render_shadows
        self._distractions = Shift(shift, Scene(self._physics, self._renderer, self._camera, domain), seed)
        self.shift = shift
        """The shift this environment shows, with its data (`shift.record` says what runs record)."""
        spec = self._env.action_spec()
        self._action_low, self._action_high = spec.minimum.astype(np.float64), spec.maximum.astype(np.float64)
        self.action_space: gym.spaces.Box = gym.spaces.Box(-1.0, 1.0, spec.shape, np.float32)
        self.observation_space: gym.spaces.Box = gym.spaces.Box(0, 255, self.obs_shape, np.uint8)
        self._frames: deque[np.ndarray] = deque(maxlen=frame_stack)
        self.episode_steps = 0
        self.true_factors = true_factors
        """Put the factors of the newest frame in the info of `reset` and `step` (`info["factors"]`)."""
        model = self._physics.model.ptr
        self.factor_names: tuple[str, ...] = (
            *joint_coordinate_names(model, "qpos", _JOINT_QPOS),
            *joint_coordinate_names(model, "qvel", _JOINT_QVEL),
            *self._distractions.factor_names,
        )
        """Names of `factors`, the same for every environment of one task and shift."""
        unlimited_hinges = (model.jnt_type == mujoco.mjtJoint.mjJNT_HINGE) & (model.jnt_limited == 0)
        self.angle_factors: tuple[str, ...] = tuple(
            f"qpos/{model.joint(j).name}" for j in np.flatnonzero(unlimited_hinges)
        )
        """Factors that are angles of hinges without limits: the picture repeats every 2 pi of them."""

    @property
    def obs_shape(self) -> tuple[int, int, int]:
        """`(3 * frame_stack, image_size, image_size)`: the shape of `observation_space`."""
        return (3 * self._frame_stack, self._image_size, self._image_size)

    @property
    def max_episode_steps(self) -> int:
        """Agent steps in one episode (the suite's 1000-step limit divided by the action repeat)."""
        return int(np.ceil(self._env._step_limit / self._action_repeat))

    def render_frame(self) -> np.ndarray:
        """The current camera image, `(3, H, W)` uint8."""
        self._renderer.update_scene(self._physics.data.ptr, camera=self._camera)
        return self._distractions.composite(self._renderer.render()).transpose(2, 0, 1).copy()

    def factors(self) -> dict[str, float]:
        """The true factors of the newest frame, as `factor_names`: every joint coordinate's position
        (`qpos/<joint>`) and velocity (`qvel/<joint>`; `/<k>` for joints of several coordinates), then
        the shift's distractions (docs/disentanglement.md lists them per shift)."""
        data = self._physics.data.ptr
        values = np.concatenate([data.qpos, data.qvel, self._distractions.factor_values()])
        return dict(zip(self.factor_names, values.tolist(), strict=True))

    def _info(self) -> dict[str, Any]:
        return {"factors": self.factors()} if self.true_factors else {}

    def observation(self) -> np.ndarray:
        """The current stacked observation `(3 * frame_stack, H, W)`."""
        return np.concatenate(self._frames, axis=0)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        if seed is not None:
            self._env.task.random.seed(seed)
            self._distractions.reseed(seed)
        self._env.reset()
        self._distractions.reset()
        self.episode_steps = 0
        frame = self.render_frame()
        self._frames.extend([frame] * self._frame_stack)
        return self.observation(), self._info()

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        action = np.clip(np.asarray(action, dtype=np.float64), -1.0, 1.0)
        action = self._action_low + (action + 1.0) * 0.5 * (self._action_high - self._action_low)
        reward, sim_steps = 0.0, 0
        for _ in range(self._action_repeat):
            time_step = self._env.step(action)
            sim_steps += 1
            reward += time_step.reward or 0.0
            if time_step.last():
                break
        self._distractions.advance(sim_steps)
        self.episode_steps += 1
        self._frames.append(self.render_frame())
        terminated = bool(time_step.last() and time_step.discount == 0.0)
        truncated = bool(time_step.last() and not terminated)
        return self.observation(), reward, terminated, truncated, self._info()

    def get_state(self) -> dict[str, Any]:
        """Everything needed to continue this episode exactly: physics, task RNG, shift, frame stack, counters."""
        model, data = self._physics.model.ptr, self._physics.data.ptr
        kind = mujoco.mjtState.mjSTATE_INTEGRATION
        physics = np.empty(mujoco.mj_stateSize(model, kind))
        mujoco.mj_getState(model, data, physics, kind)
        return {
            "physics": physics,
            "model": {name: getattr(model, name).copy() for name in _MUTABLE_MODEL_FIELDS},
            "task_random": self._env.task.random.get_state(),
            "step_count": self._env._step_count,
            "reset_next_step": self._env._reset_next_step,
            "frames": [frame.copy() for frame in self._frames],
            "episode_steps": self.episode_steps,
            "shift": self._distractions.get_state(),
        }

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore a state from `get_state` (of an environment built with the same arguments)."""
        model, data = self._physics.model.ptr, self._physics.data.ptr
        for name, value in state["model"].items():
            getattr(model, name)[...] = value
        mujoco.mj_setState(model, data, state["physics"], mujoco.mjtState.mjSTATE_INTEGRATION)
        mujoco.mj_forward(model, data)
        self._env.task.random.set_state(state["task_random"])
        self._env._step_count = state["step_count"]
        self._env._reset_next_step = state["reset_next_step"]
        if "shift" in state:  # checkpoints written before shifts existed hold none
            self._distractions.set_state(state["shift"])
        self._frames.clear()
        self._frames.extend(state["frames"])
        self.episode_steps = state["episode_steps"]

    def render(self) -> np.ndarray:
        """The current frame as `(H, W, 3)` RGB, for videos."""
        return self._frames[-1].transpose(1, 2, 0)

    def close(self) -> None:
        # Free the GL context now: left to the garbage collector at interpreter exit, EGL raises.
        if getattr(self, "_renderer", None) is not None:
            self._renderer.close()
            self._renderer = None



def make_dmc(task: str, shift: str = "none", seed: int = 0, **options: Any) -> PixelEnv:
    """A DMControl `task` seen through pixels under distribution `shift` (`unseen.envs.make_env` documents the
    options; `unseen.envs.dmc_family` declares the family)."""
    if task not in SUITE:
        raise InputError(f"unknown task {task!r}; valid tasks: {', '.join(sorted(SUITE))}")
    unknown = sorted(set(options) - set(_OPTIONS) - set(SOURCE_HELP))
    if unknown:
        valid = ", ".join(_OPTIONS + tuple(SOURCE_HELP))
        raise InputError(f"unknown option(s) {', '.join(unknown)}; valid options: {valid}")
    config = resolve_shift(shift, **{name: options.pop(name) for name in SOURCE_HELP if name in options})
    options.setdefault("action_repeat", default_action_repeat(task))
    domain, name = SUITE[task]
    return PixelEnv(domain, name, seed=seed, shift=config, **options)
