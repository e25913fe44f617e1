"""RAD: random crops of frames rendered larger, centre crops for acting; the presets' render sizes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from unseen.agents.rad import centre_crop
from unseen.config import make_config, validate
from unseen.errors import UserError

from conftest import OBS, batch, new_agent


def test_crops_have_the_networks_side_and_the_frames_dtype():
    agent = new_agent("rad")
    assert agent.crop == round(0.84 * OBS[1]) == 27
    obs = batch(8)["obs"]
    view = agent.augment(obs)
    assert view.shape == (8, OBS[0], 27, 27) and view.dtype == torch.uint8
    # each view is a window of its frame that never touches the last row or column (DMControl-GB's offsets)
    for i in range(8):
        assert any(torch.equal(obs[i, :, r:r + 27, c:c + 27], view[i]) for r in range(5) for c in range(5))
    assert agent.augment(view) is view  # frames of the crop's side pass unchanged


def test_acting_and_latents_see_the_centre_crop():
    agent = new_agent("rad")
    obs = batch(3)["obs"]
    centre = obs[:, :, 2:29, 2:29]  # (32 - 27) // 2 = 2
    assert torch.equal(centre_crop(obs, 27), centre)
    np.testing.assert_array_equal(
        agent.act(obs.numpy(), deterministic=True), agent.act(centre.numpy().copy(), deterministic=True)
    )
    assert torch.equal(agent.latents(obs), agent.latents(centre))


@pytest.mark.parametrize("preset, rendered, seen", [("paper", 100, 84), ("cpu", 76, 64), ("smoke", 76, 64)])
def test_presets_render_larger_and_crop_to_the_presets_side(preset, rendered, seen):
    for algo in ("rad", "curl"):
        cfg = validate(make_config(algo, "cartpole_swingup", preset))
        assert cfg.env.image_size == rendered and cfg.agent.crop_side(rendered) == seen


def test_a_crop_too_small_for_the_trunk_is_one_line():
    cfg = make_config("rad", "cartpole_swingup", "paper")
    cfg.env.image_size = 40  # a 34-pixel crop for 11 layers, which need 43
    with pytest.raises(UserError, match="too small for 11 conv layers"):
        validate(cfg)
