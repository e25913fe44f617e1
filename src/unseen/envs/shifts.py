"""The benchmark's distribution shifts: what changes in the picture, never in the physics.

A shift is a list of distractions run in order by a `Shift`, which owns the one generator they draw from
(seeded apart from the task's, and reseeded with it by `reset(seed=...)`):

- `color_easy`, `color_hard` (DMControl-GB): `TableColors`, a colour entry per episode.
- `video_easy`, `video_hard` (DMControl-GB): `VideoBackground` behind the agent (video_hard: and on the
  floor), one video frame per agent step, `Loop` playback.
- `distracting_cs` (Distracting Control Suite, as DMControl-GB runs it): `CameraShake`, `ColorJitter`
  and a `VideoBackground` with `PingPong` playback, all scaled by the intensity.

Every distraction reports its state (and `Shift` the generator's) so that a checkpoint taken mid-episode
continues the same episode, and the values that made the current frame (`factor_names`, `factor_values`:
the true factors of docs/disentanglement.md).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any, TypeVar

import mujoco
import numpy as np

from unseen.envs.colors import COLOR_KEYS, COLOR_STD, COLOR_TABLE_SEED, generated_color_table, load_color_table
from unseen.envs.dmc_tasks import SHIFTS
from unseen.envs.scene import Scene, texture_colors
from unseen.envs.sources import DirectoryVideos, ProceduralVideos, VideoSource
from unseen.errors import InputError

INTENSITIES = (0.025, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5)
"""The distracting_cs intensities DMControl-GB implements."""
INTENSITY_NAMES = {"easy": 0.1, "medium": 0.2, "hard": 0.3}
"""The Distracting Control Suite's named difficulties."""
DEFAULT_INTENSITY = 0.1

VIDEO_MODES = ("fast", "fidelity")
"""`fast`: the renderer's segmentation says which pixels are background. `fidelity`: DMControl-GB's green
screen (skybox, and for video_hard the floor, coloured green; pixels of green hue replaced)."""
GREEN = np.array([0.2, 0.8, 0.2])

# Videos of the distracting shift per intensity (DMControl-GB's `DIFFICULTY_NUM_VIDEOS`); higher: all.
_DISTRACTING_VIDEOS = {0.025: 2, 0.05: 2, 0.1: 4, 0.15: 6, 0.2: 8}
# How opaque the floor stays over the distracting background (DCS `get_background_kwargs`); others 0.3.
_GROUND_PLANE_ALPHA = {"reacher": 0.0, "walker": 1.0, "cheetah": 1.0}
# Procedural stand-ins for the benchmark's clips: (seed, clips, frames). video_easy has 10 clips,
# video_hard 100, DAVIS (distracting_cs) 30 validation videos; a separate seed keeps each set apart.
_PROCEDURAL_VIDEOS = {"video_easy": (101, 10, 250), "video_hard": (102, 100, 250), "distracting_cs": (103, 30, 250)}
# The generator of a shift is seeded with SeedSequence([seed, _SHIFT_STREAM]), apart from the task's.
_SHIFT_STREAM = 2


@dataclass(frozen=True, eq=False)  # holds arrays and sources: compared by identity
class ShiftConfig:
    """A shift with its data resolved and checked: what `make_env` hands to the environment."""

    name: str = "none"
    colors: np.ndarray | None = None
    videos: VideoSource | None = None
    video_mode: str = "fast"
    intensity: float = DEFAULT_INTENSITY
    source: str = "none"
    """Where the shift's data comes from, as runs record it: a path, "procedural", or "generated (seed N)"."""

    @property
    def record(self) -> dict[str, str | float]:
        """What runs record about the shift's data: its source, and distracting_cs's intensity."""
        return {"source": self.source, **({"intensity": self.intensity} if self.name == "distracting_cs" else {})}


def parse_intensity(value: float | str | None) -> float:
    """The distracting_cs intensity named by `value` (a number of `INTENSITIES` or easy/medium/hard)."""
    if value is None:
        return DEFAULT_INTENSITY
    if isinstance(value, str) and value in INTENSITY_NAMES:
        return INTENSITY_NAMES[value]
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    for intensity in INTENSITIES:
        if math.isclose(number, intensity):
            return intensity
    valid = ", ".join(map(str, INTENSITIES))
    raise InputError(f"unknown intensity {value!r}; valid intensities: {valid} or {', '.join(INTENSITY_NAMES)}")


def resolve_shift(
    name: str,
    video_dir: str | None = None,
    color_file: str | None = None,
    intensity: float | str | None = None,
    video_mode: str = "fast",
) -> ShiftConfig:
    """Check a shift's name and options and load what it needs; data options it does not use are ignored."""
    if name not in SHIFTS:
        raise InputError(f"unknown shift {name!r}; valid shifts: {', '.join(SHIFTS)}")
    if video_mode not in VIDEO_MODES:
        raise InputError(f"unknown video_mode {video_mode!r}; valid modes: {', '.join(VIDEO_MODES)}")
    level = parse_intensity(intensity)
    if name in COLOR_STD:
        if color_file is not None:
            return ShiftConfig(name, colors=load_color_table(color_file), source=str(color_file))
        return ShiftConfig(name, colors=generated_color_table(name), source=f"generated (seed {COLOR_TABLE_SEED})")
    if name in _PROCEDURAL_VIDEOS:
        first = _DISTRACTING_VIDEOS.get(level) if name == "distracting_cs" else None
        if video_dir is not None:
            videos: VideoSource = DirectoryVideos(video_dir, first)
        else:
            seed, clips, frames = _PROCEDURAL_VIDEOS[name]
            videos = ProceduralVideos(seed, min(clips, first or clips), frames)
        return ShiftConfig(name, videos=videos, video_mode=video_mode, intensity=level, source=videos.description)
    return ShiftConfig(name)


def shift_random(seed: int) -> np.random.Generator:
    """The generator of every random choice a shift makes in the episodes of an environment seeded `seed`."""
    return np.random.default_rng([seed, _SHIFT_STREAM])


class Distraction:
    """One change to the picture. `reset` after the physics reset, `advance` after the simulator steps of
    one agent step, `composite` on each rendered `(H, W, 3)` frame; the defaults change nothing.
    `factor_values` (after a reset): the values, named by `factor_names`, that made the current frame."""

    factor_names: tuple[str, ...] = ()

    def factor_values(self) -> np.ndarray:
        return np.empty(0)

    def reset(self, random: np.random.Generator) -> None:
        pass

    def advance(self, sim_steps: int, random: np.random.Generator) -> None:
        pass

    def composite(self, frame: np.ndarray) -> np.ndarray:
        return frame

    def get_state(self) -> dict[str, Any]:
        return {}

    def set_state(self, state: dict[str, Any]) -> None:
        pass


class TableColors(Distraction):
    """DMControl-GB's colour shifts (`ColorWrapper.randomize` with `settings.py`): at every reset one table
    entry, drawn uniformly, sets the floor checker's two colours (its edge marks keep theirs), the colour of
    material `self` (the agent's body) and the top colour of the skybox gradient (bottom and stars keep
    theirs). The reference reloads the XML; here the material and the two textures are edited in place."""

    def __init__(self, scene: Scene, table: np.ndarray) -> None:
        self.scene, self.table = scene, table
        self.body = scene.material("self")
        self.grid, self.sky = texture_colors("grid"), texture_colors("skybox")
        self.entry: int | None = None
        # The colours an entry sets, not its index: an index is a label, the colours are what the picture shows.
        self.factor_names = tuple(f"color/{key}/{channel}" for key in COLOR_KEYS for channel in "rgb")

    def reset(self, random: np.random.Generator) -> None:
        self.apply(int(random.integers(len(self.table))))

    def apply(self, entry: int) -> None:
        self.entry = entry
        grid_rgb1, grid_rgb2, self_rgb, skybox_rgb = self.table[entry]
        self.scene.model.mat_rgba[self.body, :3] = self_rgb
        self.scene.paint_texture("grid", np.stack([grid_rgb1, grid_rgb2, self.grid[2]]))
        self.scene.paint_texture("skybox", np.stack([skybox_rgb, self.sky[1], self.sky[2]]))

    def factor_values(self) -> np.ndarray:
        return self.table[self.entry].reshape(-1)

    def get_state(self) -> dict[str, Any]:
        return {"entry": self.entry}

    def set_state(self, state: dict[str, Any]) -> None:
        if state["entry"] is not None:
            self.apply(state["entry"])


class Loop:
    """DMControl-GB's playback (`VideoWrapper`): frame 0 at reset, one frame per agent step, wrapping around."""

    def start(self, length: int, random: np.random.Generator) -> None:
        self.length, self.frame = length, 0

    def advance(self, sim_steps: int) -> None:
        self.frame = (self.frame + 1) % self.length

    def get_state(self) -> dict[str, Any]:
        return {"length": self.length, "frame": self.frame}

    def set_state(self, state: dict[str, Any]) -> None:
        self.length, self.frame = state["length"], state["frame"]


class PingPong:
    """The distracting background's playback (DCS `DistractingBackgroundEnv`, dynamic, as DMControl-GB
    runs it): a random first frame and direction, one frame every second simulator step, turning back at
    either end of the clip."""

    def start(self, length: int, random: np.random.Generator) -> None:
        self.length = length
        self.frame = int(random.integers(length))
        self.direction = int(random.choice([-1, 1]))
        self.sim_steps = 0

    def advance(self, sim_steps: int) -> None:
        for _ in range(sim_steps):
            self.sim_steps += 1
            if self.sim_steps % 2 == 0:
                self.frame += self.direction
                if self.frame <= 0:
                    self.frame, self.direction = 0, 1
                if self.frame >= self.length:
                    self.frame, self.direction = self.length - 1, -1

    def get_state(self) -> dict[str, Any]:
        return {"length": self.length, "frame": self.frame, "direction": self.direction, "sim_steps": self.sim_steps}

    def set_state(self, state: dict[str, Any]) -> None:
        self.length, self.frame = state["length"], state["frame"]
        self.direction, self.sim_steps = state["direction"], state["sim_steps"]


def green_screen(frame: np.ndarray) -> np.ndarray:
    """Mask `(H, W)` of the pixels DMControl-GB's `do_green_screen` replaces: HSV with H in [100, 185]
    degrees, S in [80, 255] and V in [70, 255] (S and V on the 0-255 scale), hue as `colorsys.rgb_to_hsv`.

    The same test in integer arithmetic, twenty times faster than computing HSV in floating point: with
    `c` = max - min, V is the max; S >= 80 is `255 c >= 80 max`; when green is the max (and red is not)
    the hue is `60 (2 + (b - r) / c)`, at least 100 when `3 (b - r) >= -c`; when blue alone is the max it
    is `60 (4 + (r - g) / c)`, at most 185 when `12 (r - g) <= -11 c`; when red is a max it is outside.
    Colours exactly on a threshold count as inside; the reference's floating-point rounding puts some of
    them outside (6 in 22,000 random colours, all at hue exactly 100).
    """
    r, g, b = (frame[..., channel].astype(np.int32) for channel in range(3))
    high = np.maximum(np.maximum(r, g), b)
    chroma = high - np.minimum(np.minimum(r, g), b)
    green_hue = (g == high) & (r != high) & (3 * (b - r) >= -chroma)
    blue_hue = (b == high) & (g != high) & (r != high) & (12 * (r - g) <= -11 * chroma)
    return (green_hue | blue_hue) & (chroma > 0) & (255 * chroma >= 80 * high) & (high >= 70)


class VideoBackground(Distraction):
    """A video behind the agent: skybox pixels show the current video frame; floor pixels show it through
    the floor, which keeps `floor_opacity` of its own colour (1: floor untouched, 0: floor replaced).

    Which video: a uniform draw per episode. `mode="fast"` finds skybox and floor pixels by a segmentation
    pass; `mode="fidelity"` paints the skybox (and, with `floor_opacity` 0, the floor) green and replaces
    the pixels of `green_screen`, DMControl-GB's rule, green fringes and all. The video is composed in
    image space in both modes; the Distracting Control Suite maps it onto the skybox texture instead.
    """

    def __init__(
        self, scene: Scene, videos: VideoSource, floor_opacity: float, mode: str, playback: Loop | PingPong
    ) -> None:
        self.scene, self.videos, self.floor_opacity = scene, videos, floor_opacity
        self.mode, self.playback = mode, playback
        self.clip_index = 0
        self.clip: np.ndarray | None = None
        self.factor_names = ("video/clip", "video/frame")
        if mode == "fidelity":
            green = np.stack([GREEN] * 3)
            scene.paint_texture("skybox", green)
            if floor_opacity == 0.0:
                scene.paint_texture("grid", green)

    def reset(self, random: np.random.Generator) -> None:
        clip = self.load(int(random.integers(len(self.videos))))
        self.playback.start(len(clip), random)

    def load(self, clip_index: int) -> np.ndarray:
        self.clip_index = clip_index
        self.clip = self.videos.clip(clip_index, self.scene.renderer.height)
        return self.clip

    def advance(self, sim_steps: int, random: np.random.Generator) -> None:
        self.playback.advance(sim_steps)

    def composite(self, frame: np.ndarray) -> np.ndarray:
        if self.clip is None:
            raise RuntimeError("a video background composites only after its reset")
        video = self.clip[self.playback.frame]
        if self.mode == "fidelity":
            return np.where(green_screen(frame)[..., None], video, frame)
        sky, floor = self.scene.background()
        if self.floor_opacity < 1.0:
            seen_through = (self.floor_opacity * frame + (1.0 - self.floor_opacity) * video).astype(np.uint8)
            frame = np.where(floor[..., None], seen_through, frame)
        return np.where(sky[..., None], video, frame)

    def factor_values(self) -> np.ndarray:
        return np.array([self.clip_index, self.playback.frame], dtype=np.float64)

    def get_state(self) -> dict[str, Any]:
        return {"clip": self.clip_index, "playback": self.playback.get_state()}

    def set_state(self, state: dict[str, Any]) -> None:
        self.load(state["clip"])
        self.playback.set_state(state["playback"])


# Scalar maths on 3-vectors: the camera walk runs them every simulator step, where numpy's per-call
# overhead would dominate.
def _spherical(point: np.ndarray) -> np.ndarray:
    """(radius, azimuth from +x, polar angle from +z) of a point."""
    x, y, z = point
    return np.array([math.hypot(x, y, z), math.atan2(y, x), math.atan2(math.hypot(x, y), z)])


def _cartesian(sphere: np.ndarray) -> np.ndarray:
    radius, azimuth, polar = sphere
    return radius * np.array(
        [math.sin(polar) * math.cos(azimuth), math.sin(polar) * math.sin(azimuth), math.cos(polar)]
    )


def _rotation(axis: np.ndarray, angle: float) -> np.ndarray:
    """Rotation by `angle` about the unit vector `axis` (Rodrigues)."""
    cross = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * cross + (1 - np.cos(angle)) * cross @ cross


def look_at(direction: np.ndarray, level: bool) -> np.ndarray:
    """Orientation (columns: the camera's x, y, z axes in world coordinates; a MuJoCo camera looks along -z)
    pointing the camera along `direction`. `level`: keep the camera's x axis horizontal, no roll (DCS
    `get_lookat_xmat_no_roll`); otherwise the shortest turn from looking straight down (DCS
    `get_lookat_xmat`, for reacher's top-down view)."""
    forward = direction / np.linalg.norm(direction)
    down = np.array([0.0, 0.0, -1.0])
    if level:
        right = np.cross(forward, -down)
        right = right / np.linalg.norm(right) if np.linalg.norm(right) > 1e-9 else np.array([1.0, 0.0, 0.0])
        return np.column_stack([right, np.cross(-forward, right), -forward])
    axis = np.cross(down, forward)
    if np.linalg.norm(axis) < 1e-9:  # straight down (no turn) or straight up (half a turn)
        return np.eye(3) if forward @ down > 0 else _rotation(np.array([1.0, 0.0, 0.0]), np.pi)
    return _rotation(axis / np.linalg.norm(axis), float(np.arctan2(np.linalg.norm(axis), forward @ down)))


class CameraShake(Distraction):
    """The Distracting Control Suite's camera (`DistractingCameraEnv`, dynamic; ranges of DMControl-GB's
    `get_camera_kwargs` at intensity `scale`).

    Per episode the camera starts at a uniform point of a spherical shell around what it looks at (the
    agent's root body for tracking cameras): azimuth and polar angle within +-pi/2 * scale of the
    original, distance from 50% * scale closer to 150% * scale farther, roll within +-pi/2 * scale, and a
    random velocity. Every simulator step the velocity takes a Gaussian step, is capped, moves the camera
    and is cut back at the edges of the ranges; roll does the same. The camera keeps looking at the agent
    (tracking cameras) or at the point it first looked at (fixed cameras); outside reacher it stays in the
    upper quadrant, level. The pose is written to `data.cam_xpos`/`cam_xmat` after each physics step, which
    the physics never reads and recomputes at the next step.
    """

    def __init__(self, scene: Scene, scale: float) -> None:
        self.scene = scene
        self.tracking = scene.model.cam_mode[scene.camera] != mujoco.mjtCamLight.mjCAMLIGHT_FIXED
        self.level = scene.domain != "reacher"
        self.angle_range = np.pi / 2 * scale
        self.vel_std, self.max_vel = 0.1 * scale, 0.4 * scale
        self.roll_std, self.max_roll_vel = np.pi / 300 * scale, np.pi / 50 * scale
        self.zoom_in, self.zoom_out = 0.5 * scale, 1.5 * scale
        self.walk: dict[str, Any] = {}
        # The walk's position on its sphere around the target (the agent, for tracking cameras) and its roll.
        self.factor_names = ("camera/radius", "camera/azimuth", "camera/polar", "camera/roll")

    def _model_pose(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The camera's own position and orientation this step, and the agent's centre of mass."""
        data, camera = self.scene.data, self.scene.camera
        return data.cam_xpos[camera].copy(), data.cam_xmat[camera].reshape(3, 3).copy(), data.subtree_com[1].copy()

    @staticmethod
    def _target(position: np.ndarray, orientation: np.ndarray, agent: np.ndarray) -> np.ndarray:
        """The point the unperturbed camera looks at, as far ahead as the agent is (DCS `get_lookat_point`)."""
        return position + orientation @ np.array([0.0, 0.0, -np.linalg.norm(position - agent)])

    def reset(self, random: np.random.Generator) -> None:
        pose = self._model_pose()
        position, _, agent = pose
        radius, azimuth, polar = _spherical(position - agent if self.tracking else position)
        low = np.array([radius * (1 - self.zoom_in), azimuth - self.angle_range, polar - self.angle_range])
        high = np.array([radius * (1 + self.zoom_out), azimuth + self.angle_range, polar + self.angle_range])
        low[0] = max(low[0], 0.0)
        if self.level:  # DCS `limit_to_upper_quadrant`
            low[1], high[1] = max(low[1], -np.pi), min(high[1], 0.0)
            low[2], high[2] = max(low[2], 0.0), min(high[2], np.pi / 2)
        start_azimuth, start_polar = random.uniform(low[1], high[1]), random.uniform(low[2], high[2])
        start_radius = random.uniform(low[0], high[0])
        roll = random.uniform(-self.angle_range, self.angle_range)
        velocity = random.standard_normal(3)
        velocity *= random.uniform(0.0, self.max_vel) / np.linalg.norm(velocity)
        self.walk = {
            "low": low, "high": high, "sphere": np.array([start_radius, start_azimuth, start_polar]),
            "roll": roll, "velocity": velocity,
            "roll_velocity": random.uniform(-self.max_roll_vel, self.max_roll_vel),
            "target": self._target(*pose), "vel_scale": radius / 4.0,  # DCS: speeds are set for a radius of 4
        }
        self.advance(1, random)

    def advance(self, sim_steps: int, random: np.random.Generator) -> None:
        walk = self.walk
        cap = self.max_vel * walk["vel_scale"]
        for noise in random.standard_normal((sim_steps, 4)):
            walk["velocity"] = walk["velocity"] + noise[:3] * self.vel_std * walk["vel_scale"]
            walk["roll_velocity"] += noise[3] * self.roll_std
            speed = math.hypot(*walk["velocity"])
            if speed > cap:
                walk["velocity"] = walk["velocity"] * cap / speed
            walk["roll_velocity"] = min(max(walk["roll_velocity"], -self.max_roll_vel), self.max_roll_vel)
            before = _cartesian(walk["sphere"])
            walk["sphere"] = np.minimum(np.maximum(_spherical(before + walk["velocity"]), walk["low"]), walk["high"])
            walk["velocity"] = _cartesian(walk["sphere"]) - before
            roll = min(max(walk["roll"] + walk["roll_velocity"], -self.angle_range), self.angle_range)
            walk["roll_velocity"], walk["roll"] = roll - walk["roll"], roll
        self.place()

    def place(self) -> None:
        """Write this step's perturbed camera pose into the data the renderer reads."""
        position, target = _cartesian(self.walk["sphere"]), self.walk["target"]
        if self.tracking:  # the walk is around the agent, and the camera looks where it would have looked
            pose = self._model_pose()
            position, target = position + pose[2], self._target(*pose)
        orientation = look_at(target - position, self.level) @ _rotation(np.array([0.0, 0.0, 1.0]), self.walk["roll"])
        self.scene.data.cam_xpos[self.scene.camera] = position
        self.scene.data.cam_xmat[self.scene.camera] = orientation.reshape(-1)

    def factor_values(self) -> np.ndarray:
        return np.append(self.walk["sphere"], self.walk["roll"])

    def get_state(self) -> dict[str, Any]:
        return copy.deepcopy(self.walk)

    def set_state(self, state: dict[str, Any]) -> None:
        self.walk = copy.deepcopy(state)


class ColorJitter(Distraction):
    """The Distracting Control Suite's colours (`DistractingColorEnv`, dynamic; DMControl-GB's
    `get_color_kwargs`): every material's RGB starts uniform within +-scale of its own (clipped to [0, 1])
    at each reset and takes a Gaussian step of std 0.03 * scale per simulator step, clipped to that range."""

    def __init__(self, scene: Scene, scale: float) -> None:
        self.scene = scene
        original = scene.model.mat_rgba[:, :3].copy()
        self.low, self.high = np.clip(original - scale, 0, 1), np.clip(original + scale, 0, 1)
        self.step_std = 0.03 * scale
        self.rgb = original
        # Materials that no visible element uses change no pixel: they are no factor of the picture.
        self.visible = scene.visible_materials()
        self.factor_names = tuple(
            f"color/{mujoco.mj_id2name(scene.model, mujoco.mjtObj.mjOBJ_MATERIAL, material)}/{channel}"
            for material in self.visible
            for channel in "rgb"
        )

    def reset(self, random: np.random.Generator) -> None:
        self.rgb = self.low + random.uniform(size=self.low.shape) * (self.high - self.low)
        self.scene.model.mat_rgba[:, :3] = self.rgb

    def advance(self, sim_steps: int, random: np.random.Generator) -> None:
        for noise in random.standard_normal((sim_steps, *self.rgb.shape)):
            self.rgb = np.clip(self.rgb + noise * self.step_std, self.low, self.high)
        self.scene.model.mat_rgba[:, :3] = self.rgb

    def factor_values(self) -> np.ndarray:
        return self.rgb[self.visible].reshape(-1)

    def get_state(self) -> dict[str, Any]:
        return {"rgb": self.rgb.copy()}

    def set_state(self, state: dict[str, Any]) -> None:
        self.rgb = state["rgb"].copy()
        self.scene.model.mat_rgba[:, :3] = self.rgb


Data = TypeVar("Data")


def needed(data: Data | None, config: ShiftConfig) -> Data:
    """`config`'s colour table or videos, which its shift cannot do without."""
    if data is None:
        raise ValueError(f"shift {config.name!r} has no data to draw from: make its ShiftConfig with resolve_shift")
    return data


def distractions(config: ShiftConfig, scene: Scene) -> list[Distraction]:
    """The distractions of the shift `config` names, in the order they run."""
    if config.name in COLOR_STD:
        return [TableColors(scene, needed(config.colors, config))]
    if config.name in ("video_easy", "video_hard"):
        floor_opacity = 1.0 if config.name == "video_easy" else 0.0
        return [VideoBackground(scene, needed(config.videos, config), floor_opacity, config.video_mode, Loop())]
    if config.name == "distracting_cs":
        floor_opacity = _GROUND_PLANE_ALPHA.get(scene.domain, 0.3)
        return [
            CameraShake(scene, config.intensity),
            ColorJitter(scene, config.intensity),
            VideoBackground(scene, needed(config.videos, config), floor_opacity, "fast", PingPong()),
        ]
    return []


class Shift:
    """The distractions of one shift on one environment, and the generator they all draw from."""

    def __init__(self, config: ShiftConfig, scene: Scene, seed: int) -> None:
        self.config = config
        self.random = shift_random(seed)
        self.parts = distractions(config, scene)
        self.factor_names = tuple(name for part in self.parts for name in part.factor_names)

    def factor_values(self) -> np.ndarray:
        """The values of `factor_names` that made the current frame (after a reset)."""
        return np.concatenate([part.factor_values() for part in self.parts]) if self.parts else np.empty(0)

    def reseed(self, seed: int) -> None:
        self.random = shift_random(seed)

    def reset(self) -> None:
        for part in self.parts:
            part.reset(self.random)

    def advance(self, sim_steps: int) -> None:
        for part in self.parts:
            part.advance(sim_steps, self.random)

    def composite(self, frame: np.ndarray) -> np.ndarray:
        for part in self.parts:
            frame = part.composite(frame)
        return frame

    def get_state(self) -> dict[str, Any]:
        return {"random": self.random.bit_generator.state, "parts": [part.get_state() for part in self.parts]}

    def set_state(self, state: dict[str, Any]) -> None:
        self.random.bit_generator.state = state["random"]
        for part, part_state in zip(self.parts, state["parts"], strict=True):
            part.set_state(part_state)
