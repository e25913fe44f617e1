"""Offscreen renderers that share one GL context per thread.

`mujoco.Renderer` makes a GL context for each renderer, and the first MuJoCo render context (`MjrContext`: the
model's textures, meshes and shaders) made in a fresh GL context costs about three times a later one with a
software GL (Mesa llvmpipe; measured 0.22 s against 0.07 s for cartpole), its first frame about 0.1 s more. A
trainer makes one environment per evaluation shift, and a test process hundreds: all of a thread's renderers
draw in one GL context here, each into its own `MjrContext` and offscreen framebuffer, so that only the first
pays. The frames are the same bytes as `mujoco.Renderer`'s (tested, environments of several tasks and shifts
rendering in turn); `SHARE_GL_CONTEXT = False` gives each renderer its own context again.
"""

from __future__ import annotations

import atexit
import threading
from typing import Any

import mujoco
import numpy as np
from mujoco import gl_context

SHARE_GL_CONTEXT = True
"""One GL context per thread for every renderer (False: `mujoco.Renderer`'s own context per renderer)."""

_thread = threading.local()
_contexts: list = []


def _free_contexts() -> None:
    # Freed before the GL library's own exit handler ends its display: left to the garbage collector, EGL raises.
    for context in _contexts:
        context.free()
    _contexts.clear()


def _thread_context(width: int, height: int) -> Any:  # gl_context.GLContext: the class MUJOCO_GL chose
    """This thread's GL context, made by its first renderer (the size only sets a surface nothing draws on:
    every renderer draws into its model's offscreen framebuffer)."""
    if getattr(_thread, "context", None) is None:
        _thread.context = gl_context.GLContext(width, height)
        if not _contexts:  # after the first context's: exit handlers run last registered first
            atexit.register(_free_contexts)
        _contexts.append(_thread.context)
    return _thread.context


class SharedContextRenderer(mujoco.Renderer):
    """`mujoco.Renderer` drawing in its thread's shared GL context; `close` frees only its own `MjrContext`."""

    def __init__(self, model: mujoco.MjModel, height: int, width: int) -> None:
        # mujoco.Renderer.__init__ with the thread's context for a new one (its size checks, scene and defaults).
        self._gl_context = None
        self._mjr_context = None
        if width > model.vis.global_.offwidth or height > model.vis.global_.offheight:
            raise ValueError(f"image {width}x{height} exceeds the model's offscreen framebuffer "
                             f"{model.vis.global_.offwidth}x{model.vis.global_.offheight}")
        self._width, self._height, self._model = width, height, model
        self._scene = mujoco.MjvScene(model=model, maxgeom=10_000)
        self._scene_option = mujoco.MjvOption()
        self._rect = mujoco.MjrRect(0, 0, width, height)
        context = _thread_context(width, height)
        context.make_current()
        self._gl_context = context
        self._mjr_context = mujoco.MjrContext(model, mujoco.mjtFontScale.mjFONTSCALE_150.value)
        self._bind()
        self._mjr_context.readDepthMap = mujoco.mjtDepthMap.mjDEPTH_ZEROFAR
        self._depth_rendering = False
        self._segmentation_rendering = False

    def _bind(self) -> None:
        mujoco.mjr_setBuffer(mujoco.mjtFramebuffer.mjFB_OFFSCREEN.value, self._mjr_context)

    def render(self, *, out: np.ndarray | None = None) -> np.ndarray:
        # Another renderer of the thread may have bound its own framebuffer since this one drew.
        if self._mjr_context is not None and self._gl_context is not None:
            self._gl_context.make_current()
            self._bind()
        return super().render(out=out)

    def close(self) -> None:
        if self._mjr_context is not None and self._gl_context is not None:
            self._gl_context.make_current()
            self._mjr_context.free()
        self._mjr_context = None
        self._gl_context = None  # the thread's, freed at exit


def new_renderer(model: mujoco.MjModel, height: int, width: int) -> mujoco.Renderer:
    """An offscreen renderer of `model` for `height` x `width` frames (`SHARE_GL_CONTEXT`)."""
    return SharedContextRenderer(model, height, width) if SHARE_GL_CONTEXT else mujoco.Renderer(model, height, width)
