"""What a shift may change in the picture of a `PixelEnv`, without touching the physics.

`Scene` edits material colours and texture data of the compiled model in place and uploads changed
textures to the renderer's GPU context (no XML reload), places the camera, and asks the renderer which
pixels show the skybox and which the floor (a segmentation pass of the same scene).
"""

from __future__ import annotations

from functools import cache

import mujoco
import numpy as np
from dm_control.suite import common

FLOOR_MATERIAL = "grid"
"""The material of the floor (and of reacher's and point_mass's walls), textured with the `grid` checker."""

# Textures built by MuJoCo from the colours (rgb1, rgb2, markrgb) of dm_control's common assets.
_TEXTURE_ASSETS = ("./common/skybox.xml", "./common/materials.xml")


@cache
def texture_palette(name: str) -> tuple[np.ndarray, np.ndarray]:
    """How the texel colours of dm_control's builtin texture `name` depend on its three colours.

    Every texel MuJoCo builds for a builtin texture (checker, gradient; with marks) is a fixed mix
    `a * rgb1 + b * rgb2 + c * markrgb`. Compiling the texture once per basis colour gives `(a, b, c)` per
    texel; the few distinct mixes form a palette. Returns `(mixes (K, 3) float, texel_mix (texels,) int)`,
    so that a texture with new colours `C (3, 3)` is `round(255 * mixes @ C)[texel_mix]`. Built once per
    process (about half a second for the 800x4800 skybox).
    """
    spec, texture = _common_texture(name)
    weights = []
    for basis in np.eye(3):
        texture.rgb1, texture.rgb2, texture.markrgb = ([float(b)] * 3 for b in basis)
        weights.append(spec.compile().tex_data[0::3].astype(np.int64))
    key = (weights[0] << 16) | (weights[1] << 8) | weights[2]
    mixes, texel_mix = np.unique(key, return_inverse=True)
    return np.stack([mixes >> 16, (mixes >> 8) & 255, mixes & 255], axis=1) / 255.0, texel_mix.astype(np.int32)


def texture_colors(name: str) -> np.ndarray:
    """The colours `(rgb1, rgb2, markrgb)` of dm_control's common texture `name`, `(3, 3)`."""
    _, texture = _common_texture(name)
    return np.array([texture.rgb1, texture.rgb2, texture.markrgb], dtype=np.float64)


def _common_texture(name: str) -> tuple[mujoco.MjSpec, mujoco.MjsTexture]:
    """A spec of the dm_control common asset file that defines texture `name`, and the texture in it."""
    for asset in _TEXTURE_ASSETS:
        spec = mujoco.MjSpec.from_string(common.ASSETS[asset].decode())
        texture = spec.texture(name)
        if texture is not None:
            return spec, texture
    raise KeyError(f"dm_control's common assets define no texture {name!r}")


class Scene:
    """The model, data, renderer and camera of one `PixelEnv`, with the edits shifts make to its picture."""

    def __init__(self, physics, renderer: mujoco.Renderer, camera: int, domain: str) -> None:
        self.physics = physics
        self.model: mujoco.MjModel = physics.model.ptr
        self.data: mujoco.MjData = physics.data.ptr
        self.renderer = renderer
        self.camera = camera
        self.domain = domain
        floor = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_MATERIAL, FLOOR_MATERIAL)
        self.floor_geoms = np.append(self.model.geom_matid == floor, False)  # index -1 (no geom) is not floor

    def material(self, name: str) -> int:
        """Id of material `name`."""
        return mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_MATERIAL, name)

    def visible_materials(self) -> np.ndarray:
        """Ids of the materials of the geoms, sites and tendons the renderer draws (groups 0-2, its default)."""
        model, shown = self.model, mujoco.MjvOption()
        used = [
            ids[np.isin(groups, np.flatnonzero(visible))]
            for ids, groups, visible in (
                (model.geom_matid, model.geom_group, shown.geomgroup),
                (model.site_matid, model.site_group, shown.sitegroup),
                (model.tendon_matid, model.tendon_group, shown.tendongroup),
            )
        ]
        materials = np.unique(np.concatenate(used))
        return materials[materials >= 0]

    def paint_texture(self, name: str, colors: np.ndarray) -> None:
        """Rebuild texture `name` with colours `(rgb1, rgb2, markrgb)` `(3, 3)` and upload it to the renderer."""
        mixes, texel_mix = texture_palette(name)
        texture = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_TEXTURE, name)
        start = self.model.tex_adr[texture]
        palette = np.round(255.0 * mixes @ colors).clip(0, 255).astype(np.uint8)
        self.model.tex_data[start : start + 3 * len(texel_mix)] = palette[texel_mix].reshape(-1)
        # The renderer keeps its own copy of every texture on the GPU; mujoco.Renderer exposes its GL and
        # MuJoCo contexts only as private attributes (mujoco 3.17).
        self.renderer._gl_context.make_current()
        mujoco.mjr_uploadTexture(self.model, self.renderer._mjr_context, texture)

    def background(self) -> tuple[np.ndarray, np.ndarray]:
        """Masks `(H, W)` of the pixels that show the skybox and of those that show the floor.

        A segmentation pass of the scene last rendered (no lighting, textures or multisampling, so about a
        third of the cost of the colour pass): object id -1 is the skybox, geoms of material `grid` the floor.
        """
        self.renderer.enable_segmentation_rendering()
        try:
            ids = self.renderer.render()
        finally:
            self.renderer.disable_segmentation_rendering()
        geom, kind = ids[..., 0], ids[..., 1]
        sky = kind == -1
        floor = (kind == int(mujoco.mjtObj.mjOBJ_GEOM)) & self.floor_geoms[geom]
        return sky, floor
