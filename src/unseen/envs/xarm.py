"""The xArm7 goal-reaching tasks of Look Closer (Jangir et al., 2022) with SGQN's test scenes, on MuJoCo 3.

`xarm_reach` (bring the gripper over a red disc on the table) and `xarm_peg_in_box` (bring a peg hanging
from the gripper over and into a box), trained in the scene `none` and tested zero-shot in `test1`,
`test2` and `test3`, which change the colours of the sky, floor and pedestal and put an image on the table
(CG2A's Table 3, after SGQN, Bertoin et al. 2022). The scene files, meshes and textures ship in
`assets/xarm/` with their licence and `PROVENANCE.md`; the Python code here is ours, written from the facts
that file records about the original code (paths and lines below are SGQN's `robot_env/src/...` at commit
f383fc0, as PROVENANCE.md cites them). docs/xarm.md describes the family and what changed from MuJoCo 2.

The original runs on mujoco-py (MuJoCo 2.0/2.1) and gym 0.21. What this port does differently:
- Mocap weld (`gym_utils.py` 63-71): the original writes `[0,0,0,1,0,0,0]` into each weld row of
  `eq_data`, which had 7 columns (relative position, relative quaternion). MuJoCo 3's rows have a 3-column
  anchor first and the relative pose in columns 3-9, which the compiler fills from qpos0; we write the
  identity pose there, so that `link7` (and, in Peg in Box, the peg's `B1`) sits on its weld partner.
- Start state: the original restores a snapshot taken after its set-up (base.py 249-259), which moved
  the arm to a random start pose of the env's seed and held `ctrl` 0, and it keeps `ctrl` and MuJoCo's
  warm start from the previous episode (mujoco-py's state holds neither). We take the snapshot after
  moving the arm to the centre of the start distribution with the gripper command every step sends (1),
  and restore all of it (`mjSTATE_INTEGRATION`) at each reset: an episode depends on its seed only.
- Rendering: `mujoco.Renderer` returns rows top first, so mujoco-py's `[::-1]` flip (base.py 283) is not
  repeated. MuJoCo 3's solver and contact defaults differ from MuJoCo 2.0's (the XMLs set none of
  them), so trajectories are close to, not equal to, the original's.
"""

from __future__ import annotations

from collections import deque
from pathlib import Path
from typing import Any

import gymnasium as gym
import mujoco
import numpy as np

from unseen.envs.dmc import joint_coordinate_names, no_gl_backend
from unseen.envs.render import new_renderer
from unseen.envs.shifts import ShiftConfig
from unseen.envs.xarm_tasks import SHIFTS, SOURCES, TASKS
from unseen.errors import InputError

ASSETS = Path(__file__).resolve().parent / "assets" / "xarm"
"""The scene files (`robot/`), `LICENSE` and `PROVENANCE.md`."""

ACTION_SPACES = ("xy", "xyz")
"""`xy`: the gripper moves in a horizontal plane (z held); `xyz`: it also moves up and down."""

EPISODE_STEPS = 50
"""Control steps per episode (`arguments.py` 12, `wrappers.py` 55: `TimeLimit(max_episode_steps=50)`)."""
SUBSTEPS = 20
"""MuJoCo steps per control step (base.py 22-27, `n_substeps=20`): 0.04 s in Reach, 0.02 s in Peg in Box."""
ACTION_SCALE = 0.05
"""Metres of mocap motion per control step and axis at action 1 (base.py 22-27, 142)."""
GRIPPER_COMMAND = 1.0
"""Both gripper motors' `ctrl` on every step: the wrappers' value when the action has no `w` (wrappers.py 214)."""
GRIPPER_ROTATION = np.array([0.0, 1.0, 0.0, 0.0])
"""Gripper orientation (w x y z) of the start pose, and the quaternion added each step (base.py 24, 148)."""
CAMERA = "third_person"
"""The camera of the published runs (`--cameras 0`, SGQN `train.py` 74-79)."""

# The workspace that keeps the `grasp` site over the table (base.py 63-66, 113-128): (low, high) per axis.
_TABLE_CENTRE = np.array([1.655, 0.3, 0.53625])
_WORKSPACE = np.array([
    [_TABLE_CENTRE[0] - 0.105 - 0.15, _TABLE_CENTRE[0] - 0.105 + 0.15],
    [_TABLE_CENTRE[1] - 0.15, _TABLE_CENTRE[1] + 0.15],
    [0.6, 1.0],
])
_MOCAP_ABOVE_TARGET = np.array([0.0, 0.0, 0.17])  # the start pose's mocap over the gripper target (base.py 234)
_SETTLE_STEPS = 10 * SUBSTEPS  # 10 x sim.step() after placing the mocap (base.py 239-240)
_MAX_IMAGE = 480  # the scenes' offscreen framebuffer: MuJoCo's default 640x480 (no <visual> element)

_JOINT_QPOS = {0: 7, 1: 4, 2: 1, 3: 1}  # coordinates of each joint type (free, ball, slide, hinge) in qpos
_JOINT_QVEL = {0: 6, 1: 3, 2: 1, 3: 1}  # and in qvel

OPTIONS = ("image_size", "frame_stack", "action_repeat", "render_shadows", "true_factors", "action_space")


def scene_file(task: str, shift: str) -> Path:
    """The scene XML of `task` under `shift`: `robot/reach.xml`, `robot/peg_in_box_test2.xml`, ..."""
    stem = {"xarm_reach": "reach", "xarm_peg_in_box": "peg_in_box"}[task]
    return ASSETS / "robot" / (f"{stem}.xml" if shift == "none" else f"{stem}_{shift}.xml")


def goal_distance(a: np.ndarray, b: np.ndarray, xyz: bool) -> float:
    """Distance of two points as the original measures it (base.py 84-91): both rounded to 4 decimals,
    and over x, y only unless `xyz`."""
    if not xyz:
        a, b = a[:2], b[:2]
    return float(np.linalg.norm(np.around(a, 4) - np.around(b, 4)))


class XArmEnv(gym.Env):
    """One xArm7 scene seen through the third-person camera: observation `(3 * frame_stack, H, W)` uint8.

    The same public interface as `PixelEnv` (unseen.envs.dmc). An action in [-1, 1]^2 (`xy`) or ^3 (`xyz`)
    moves the mocap that the gripper is welded to by up to `ACTION_SCALE` per axis, then MuJoCo runs
    `SUBSTEPS` steps; one `step` repeats this `action_repeat` times and sums the rewards. An episode is
    `EPISODE_STEPS` control steps and ends as `truncated`, never `terminated`. `info["success"]` is true
    from the first control step that reached the goal to the episode's end (SGQN's
    `SuccessWrapper(any_success=True)`, wrappers.py 107-125). Subclasses give the task: its start, goal,
    achieved point, reward and success threshold.
    """

    metadata = {"render_modes": ["rgb_array"]}  # noqa: RUF012  (gym.Env declares it an instance variable)
    task = ""
    distance_threshold = 0.05
    """Success when the achieved point is nearer the goal than this (metres, base.py 22-27)."""
    start_centre = np.zeros(3)
    """Gripper target of the start pose before its random offset."""
    start_noise_z = (0.0, 0.0)
    """The start's uniform z offset under `xyz` (under `xy` none is drawn)."""

    def __init__(
        self,
        shift: str = "none",
        seed: int = 0,
        image_size: int = 84,
        frame_stack: int = 1,
        action_repeat: int = 1,
        render_shadows: bool = False,
        true_factors: bool = False,
        action_space: str = "xy",
    ) -> None:
        if shift not in SHIFTS:
            raise InputError(f"unknown shift {shift!r} for {self.task}; valid shifts: {', '.join(SHIFTS)}")
        if action_space not in ACTION_SPACES:
            raise InputError(f"unknown action_space {action_space!r}; valid: {', '.join(ACTION_SPACES)}")
        if not 0 < image_size <= _MAX_IMAGE:
            raise InputError(f"image_size must be between 1 and {_MAX_IMAGE} for xArm tasks, got {image_size}")
        if frame_stack < 1 or action_repeat < 1:
            raise InputError(f"frame_stack and action_repeat must be >= 1, got {frame_stack} and {action_repeat}")
        path = scene_file(self.task, shift)
        self.model = mujoco.MjModel.from_xml_path(str(path))
        self.data = mujoco.MjData(self.model)
        self.xyz = action_space == "xyz"
        self._image_size = image_size
        self._frame_stack = frame_stack
        self._action_repeat = action_repeat
        try:
            self._renderer: mujoco.Renderer | None = new_renderer(self.model, image_size, image_size)
        except Exception as error:  # whatever the GL library raises when no context can be made
            raise no_gl_backend(error) from None
        self._renderer.scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = render_shadows
        self._renderer.scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = render_shadows
        self.shift = ShiftConfig(name=shift, source=SOURCES[shift])
        """The scene this environment shows (`shift.source`: its name, `xarm_family.SOURCES`; the XML is `path`)."""
        self.path = path
        """The scene's XML file."""
        self._grasp = self.model.site("grasp").id
        self._link7 = self.model.body("link7").id
        self._rng = np.random.default_rng(seed)
        self.action_space: gym.spaces.Box = gym.spaces.Box(-1.0, 1.0, (3 if self.xyz else 2,), np.float32)
        self.observation_space: gym.spaces.Box = gym.spaces.Box(0, 255, self.obs_shape, np.uint8)
        self._frames: deque[np.ndarray] = deque(maxlen=frame_stack)
        self.episode_steps = 0
        self.control_steps = 0
        self.success = False
        self.true_factors = true_factors
        """Put the factors of the newest frame in the info of `reset` and `step` (`info["factors"]`)."""
        self.factor_names: tuple[str, ...] = (
            *joint_coordinate_names(self.model, "qpos", _JOINT_QPOS),
            *joint_coordinate_names(self.model, "qvel", _JOINT_QVEL),
            "goal/x", "goal/y", "goal/z",
        )
        """Names of `factors`, the same for every environment of one task."""
        self.angle_factors: tuple[str, ...] = ()
        """Factors that are angles of hinges without limits: none (every xArm hinge has limits)."""
        self._initial_state = self._set_up()

    # ----- the task: subclasses -----------------------------------------------------------------------

    def goal(self) -> np.ndarray:
        """The goal point now."""
        raise NotImplementedError

    def achieved(self) -> np.ndarray:
        """The point that must reach the goal."""
        raise NotImplementedError

    def reward(self, achieved: np.ndarray, goal: np.ndarray, magnitude: float) -> float:
        """The reward of a control step whose action had norm `magnitude` (its x, y, z part, unscaled)."""
        raise NotImplementedError

    def _place_objects(self, gripper_target: np.ndarray) -> None:
        """Called after the arm settled at a new start: place what the task puts beside it."""

    def _sample_goal(self) -> None:
        """Draw and set a new goal."""
        raise NotImplementedError

    # ----- simulation ---------------------------------------------------------------------------------

    def _set_up(self) -> np.ndarray:
        """Weld the mocap to `link7` at zero offset and move the arm to the centre of the start distribution;
        the state after that is where every episode starts from (base.py 249-259, gym_utils.py 63-71)."""
        model, data = self.model, self.data
        welds = model.eq_type == mujoco.mjtEq.mjEQ_WELD
        model.eq_data[welds, 3:10] = [0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0]  # relative pose: identity
        mujoco.mj_forward(model, data)
        self._move_to_start(self.start_centre.copy())
        kind = mujoco.mjtState.mjSTATE_INTEGRATION
        state = np.empty(mujoco.mj_stateSize(model, kind))
        mujoco.mj_getState(model, data, state, kind)
        return state

    def _move_to_start(self, gripper_target: np.ndarray) -> None:
        """Put the mocap 0.17 m above `gripper_target`, pointing the gripper down, set the gripper's joints
        as the original does, and let the arm follow for 200 MuJoCo steps (base.py 100-102, 232-243)."""
        model, data = self.model, self.data
        data.mocap_pos[0] = gripper_target + _MOCAP_ABOVE_TARGET
        data.mocap_quat[0] = GRIPPER_ROTATION
        data.ctrl[:] = GRIPPER_COMMAND
        data.qpos[model.joint("right_outer_knuckle_joint").qposadr[0]] = 0.0
        data.qpos[10], data.qpos[12] = 0.1, -0.5  # `_gripper_sync`: right outer and inner knuckles
        mujoco.mj_step(model, data, nstep=_SETTLE_STEPS)

    def _start_target(self) -> np.ndarray:
        """A gripper target of the start distribution: centre + (U(-0.05, 0.1), U(-0.1, 0.1), z noise)."""
        offset = [self._rng.uniform(-0.05, 0.1), self._rng.uniform(-0.1, 0.1), 0.0]
        if self.xyz:
            offset[2] = self._rng.uniform(*self.start_noise_z)
        return self.start_centre + offset

    def _control_step(self, action: np.ndarray) -> float:
        """One step of the original env (base.py 131-152, 261-264; gym's `RobotEnv.step`): the goal of
        now, the mocap moved from `link7`'s pose, `SUBSTEPS` MuJoCo steps, the reward; updates `success`."""
        model, data = self.model, self.data
        goal = self.goal()
        pos_ctrl = np.zeros(3)
        pos_ctrl[: action.shape[0]] = action
        magnitude = float(np.linalg.norm(pos_ctrl))
        grasp = data.site_xpos[self._grasp]
        pos_ctrl = np.where(grasp > _WORKSPACE[:, 1], np.minimum(pos_ctrl, 0.0), pos_ctrl)
        pos_ctrl = np.where(grasp < _WORKSPACE[:, 0], np.maximum(pos_ctrl, 0.0), pos_ctrl)
        pos_ctrl *= ACTION_SCALE
        if not self.xyz:
            pos_ctrl[2] = 0.0
        data.ctrl[:] = GRIPPER_COMMAND
        # gym_utils.py 42-60: the mocap restarts from the welded body's pose; the quaternion sum is the
        # original's (MuJoCo normalises mocap quaternions in its kinematics, as it did in 2.x).
        data.mocap_pos[0] = data.xpos[self._link7] + pos_ctrl
        data.mocap_quat[0] = data.xquat[self._link7] + GRIPPER_ROTATION
        mujoco.mj_step(model, data, nstep=SUBSTEPS)
        mujoco.mj_forward(model, data)  # `_step_callback` (base.py 109-110)
        achieved = self.achieved()
        self.success = self.success or goal_distance(achieved, goal, self.xyz) < self.distance_threshold
        return self.reward(achieved, goal, magnitude)

    # ----- the PixelEnv interface ---------------------------------------------------------------------

    @property
    def obs_shape(self) -> tuple[int, int, int]:
        """`(3 * frame_stack, image_size, image_size)`: the shape of `observation_space`."""
        return (3 * self._frame_stack, self._image_size, self._image_size)

    @property
    def max_episode_steps(self) -> int:
        """Agent steps in one episode (`EPISODE_STEPS` control steps divided by the action repeat)."""
        return -(-EPISODE_STEPS // self._action_repeat)

    def render_frame(self) -> np.ndarray:
        """The current camera image, `(3, H, W)` uint8."""
        assert self._renderer is not None, "the environment is closed"
        self._renderer.update_scene(self.data, camera=CAMERA)
        return self._renderer.render().transpose(2, 0, 1).copy()

    def factors(self) -> dict[str, float]:
        """The true factors of the newest frame, as `factor_names`: every joint coordinate's position and
        velocity (`qpos/<joint>`, `qvel/<joint>`, `/<k>` for free joints), then the goal point."""
        values = np.concatenate([self.data.qpos, self.data.qvel, self.goal()])
        return dict(zip(self.factor_names, values.tolist(), strict=True))

    def _info(self) -> dict[str, Any]:
        info: dict[str, Any] = {"success": self.success}
        if self.true_factors:
            info["factors"] = self.factors()
        return info

    def observation(self) -> np.ndarray:
        """The current stacked observation `(3 * frame_stack, H, W)`."""
        return np.concatenate(self._frames, axis=0)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        """A new episode (base.py 211-222, then gym's goal sample): the start state, a random start pose,
        the task's objects beside it, a random goal."""
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        mujoco.mj_setState(self.model, self.data, self._initial_state, mujoco.mjtState.mjSTATE_INTEGRATION)
        mujoco.mj_forward(self.model, self.data)
        target = self._start_target()
        self._move_to_start(target)
        self._place_objects(target)
        self._sample_goal()
        mujoco.mj_forward(self.model, self.data)
        self.episode_steps = self.control_steps = 0
        self.success = False
        self._frames.extend([self.render_frame()] * self._frame_stack)
        return self.observation(), self._info()

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        action = np.clip(np.asarray(action, dtype=np.float64).reshape(self.action_space.shape), -1.0, 1.0)
        reward = 0.0
        for _ in range(self._action_repeat):
            reward += self._control_step(action)
            self.control_steps += 1
            if self.control_steps >= EPISODE_STEPS:
                break
        self.episode_steps += 1
        self._frames.append(self.render_frame())
        return self.observation(), reward, False, self.control_steps >= EPISODE_STEPS, self._info()

    def get_state(self) -> dict[str, Any]:
        """Everything needed to continue this episode exactly: physics, goal, RNG, frame stack, counters."""
        kind = mujoco.mjtState.mjSTATE_INTEGRATION
        physics = np.empty(mujoco.mj_stateSize(self.model, kind))
        mujoco.mj_getState(self.model, self.data, physics, kind)
        return {
            "physics": physics,
            "site_pos": self.model.site_pos.copy(),  # Reach's target disc lives in the model
            "random": self._rng.bit_generator.state,
            "frames": [frame.copy() for frame in self._frames],
            "episode_steps": self.episode_steps,
            "control_steps": self.control_steps,
            "success": self.success,
        }

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore a state from `get_state` (of an environment built with the same arguments)."""
        self.model.site_pos[...] = state["site_pos"]
        mujoco.mj_setState(self.model, self.data, state["physics"], mujoco.mjtState.mjSTATE_INTEGRATION)
        mujoco.mj_forward(self.model, self.data)
        self._rng.bit_generator.state = state["random"]
        self._frames.clear()
        self._frames.extend(state["frames"])
        self.episode_steps = state["episode_steps"]
        self.control_steps = state["control_steps"]
        self.success = state["success"]

    def render(self) -> np.ndarray:
        """The current frame as `(H, W, 3)` RGB, for videos."""
        return self._frames[-1].transpose(1, 2, 0)

    def close(self) -> None:
        # Free the GL context now: left to the garbage collector at interpreter exit, EGL raises.
        if getattr(self, "_renderer", None) is not None:
            assert self._renderer is not None
            self._renderer.close()
            self._renderer = None


class ReachEnv(XArmEnv):
    """Reach (SGQN `env/robot/reach.py`): the `grasp` site over the red disc `target0` on the table.

    Reward (lines 36-43, SGQN's dense reward): 1 when the x-y distance d < 0.05, otherwise
    `round(-3 d - 0.5 |a|^2, 4)`, |a| the norm of the action's x, y, z part. Goal (67-86): the disc at
    (1.605, 0.3, 0.58) + (U(-0.1, 0.1), U(-0.2, 0.2), 0). Start (88-94): gripper target
    (1.2561169, 0.3, 0.62603332) + (U(-0.05, 0.1), U(-0.1, 0.1), `xyz`: U(-0.05, 0.1)).
    """

    task = "xarm_reach"
    start_centre = np.array([1.2561169, 0.3, 0.62603332])
    start_noise_z = (-0.05, 0.1)
    goal_centre = np.array([1.605, 0.3, 0.58])

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._target = self.model.site("target0").id

    def goal(self) -> np.ndarray:
        return self.data.site_xpos[self._target].copy()

    def achieved(self) -> np.ndarray:
        return self.data.site_xpos[self._grasp].copy()

    def reward(self, achieved: np.ndarray, goal: np.ndarray, magnitude: float) -> float:
        d = goal_distance(achieved, goal, self.xyz)
        return 1.0 if d < self.distance_threshold else float(np.around(-3 * d - 0.5 * magnitude**2, 4))

    def _sample_goal(self) -> None:
        offset = [self._rng.uniform(-0.1, 0.1), self._rng.uniform(-0.2, 0.2), 0.0]
        self.model.site_pos[self._target] = self.goal_centre + offset  # `target0` is in `floor0`, at the origin


class PegInBoxEnv(XArmEnv):
    """Peg in Box (`env/robot/peg_in_box.py`, identical in look-closer and SGQN): the peg `object0`, hanging
    from the gripper, into the red box `box_hole`.

    Goal (98-117): the box moved to (1.605, 0.3, 0.62) + (U(-0.1, 0.1), U(-0.2, 0.2), 0); the goal point is
    the box's position + (0, 0.075, -0.035), recomputed from the box at every step. Reward (29-46): with
    d_xy and d_xyz the distances of the `object0` site to the goal point, `-|a|^2 - 4 d_xy`, plus
    `10 - 20 d_xyz` when d_xy <= 0.05. Success: distance < 0.08 (line 24; x-y unless `xyz`). Start
    (119-127): gripper target (1.2561169, 0.3, 0.79603332) + (U(-0.05, 0.1), U(-0.1, 0.1), `xyz`:
    U(-0.05, 0.05)); the peg is put 0.08 below the mocap (87-95) and hangs by the `right_hand`-`B1` weld.
    """

    task = "xarm_peg_in_box"
    distance_threshold = 0.08
    start_centre = np.array([1.2561169, 0.3, 0.69603332 + 0.1])
    start_noise_z = (-0.05, 0.05)
    goal_centre = np.array([1.605, 0.3, 0.62])
    goal_offset = np.array([0.0, 0.075, -0.035])

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._box = self.model.joint("box_hole:joint").qposadr[0]
        self._peg = self.model.joint("object0:joint").qposadr[0]
        self._peg_site = self.model.site("object0").id

    def goal(self) -> np.ndarray:
        return self.data.qpos[self._box : self._box + 3] + self.goal_offset

    def achieved(self) -> np.ndarray:
        return self.data.site_xpos[self._peg_site].copy()

    def reward(self, achieved: np.ndarray, goal: np.ndarray, magnitude: float) -> float:
        d_xy, d_xyz = goal_distance(achieved, goal, False), goal_distance(achieved, goal, True)
        return -(magnitude**2) - 4 * d_xy + (10 - 20 * d_xyz if d_xy <= 0.05 else 0.0)

    def _place_objects(self, gripper_target: np.ndarray) -> None:
        # 0.08 m below the mocap (the original's gripper target, raised by 0.17 in place, base.py 234)
        self.data.qpos[self._peg : self._peg + 3] = gripper_target + _MOCAP_ABOVE_TARGET - np.array([0.0, 0.0, 0.08])

    def _sample_goal(self) -> None:
        offset = [self._rng.uniform(-0.1, 0.1), self._rng.uniform(-0.2, 0.2), 0.0]
        self.data.qpos[self._box : self._box + 3] = self.goal_centre + offset  # orientation kept


_ENVS: dict[str, type[XArmEnv]] = {"xarm_reach": ReachEnv, "xarm_peg_in_box": PegInBoxEnv}


def make(task: str, shift: str = "none", seed: int = 0, **options: Any) -> XArmEnv:
    """An xArm `task` (`TASKS`) in scene `shift` (`SHIFTS`).

    Options: `image_size` (84), `frame_stack` (1: the published runs used single frames, SGQN
    `arguments.py` 11 and CG2A's "a single frame"), `action_repeat` (1: none in the original),
    `render_shadows` (False; the scenes' lights cast none), `true_factors` (False), `action_space` ("xy":
    the default of `arguments.py` 15-17 that SGQN's `scripts/*.sh` keep for both tasks; "xyz" lets the
    gripper move up and down, as that file's comment suggests for Peg in Box). Bad input raises `InputError`.
    """
    if task not in _ENVS:
        raise InputError(f"unknown task {task!r}; valid xArm tasks: {', '.join(TASKS)}")
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise InputError(f"unknown option(s) {', '.join(unknown)} for {task}; valid options: {', '.join(OPTIONS)}")
    return _ENVS[task](shift, seed, **options)


__all__ = ["ASSETS", "SHIFTS", "TASKS", "PegInBoxEnv", "ReachEnv", "XArmEnv", "make", "scene_file"]
