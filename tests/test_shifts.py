"""The benchmark's shifts: they change pixels, never physics; they are seeded, resumable and read the real data."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from unseen import envs
from unseen.envs import make_env
from unseen.envs.colors import COLOR_KEYS, generated_color_table, load_color_table, spread
from unseen.envs.dmc_tasks import SHIFTS
from unseen.envs.shifts import green_screen, parse_intensity, resolve_shift
from unseen.envs.sources import (
    PHOTOS,
    DirectoryVideos,
    ImageDirectory,
    Photos,
    ProceduralImages,
    image_source,
    load_photos,
)

from conftest import assert_set_state_continues, random_actions, rollout, run_cli

SIZE = 32
CHANGED = [shift for shift in SHIFTS if shift != "none"]


def shift_state(env) -> dict:
    return env.get_state()["shift"]


def test_every_benchmark_shift_is_listed():
    assert SHIFTS == ("none", "color_easy", "color_hard", "video_easy", "video_hard", "distracting_cs")
    assert envs.SHIFTS[: len(SHIFTS)] == SHIFTS  # DMControl's first, then other families' (xArm's test scenes)


@pytest.mark.parametrize("shift", CHANGED)
def test_shift_changes_pixels_but_not_physics(shift):
    plain = make_env("walker_walk", seed=1, image_size=SIZE)
    shifted = make_env("walker_walk", shift, seed=1, image_size=SIZE)
    actions = random_actions(plain, 8)
    (obs_plain, rew_plain), (obs_shifted, rew_shifted) = rollout(plain, actions), rollout(shifted, actions)
    plain.close()
    shifted.close()
    np.testing.assert_array_equal(rew_plain, rew_shifted)
    for before, after in zip(obs_plain, obs_shifted, strict=True):
        assert (before != after).any(axis=0).mean() > 0.1  # a tenth of the pixels or more differ


@pytest.mark.parametrize("shift", CHANGED)
def test_same_seed_gives_identical_frames(shift):
    envs = [make_env("cartpole_swingup", shift, seed=5, image_size=SIZE) for _ in range(2)]
    actions = random_actions(envs[0], 4)
    (obs_a, _), (obs_b, _) = (rollout(env, actions) for env in envs)
    again, _ = rollout(envs[0], actions, seed=7)
    replay, _ = rollout(envs[0], actions, seed=7)
    for env in envs:
        env.close()
    np.testing.assert_array_equal(obs_a, obs_b)
    np.testing.assert_array_equal(again, replay)


def test_other_seeds_draw_other_shift_episodes():
    env = make_env("walker_walk", "color_hard", seed=0, image_size=SIZE)
    entries = {shift_state(env)["parts"][0]["entry"] for _ in range(12) if env.reset() is not None}
    env.close()
    assert len(entries) > 6


@pytest.mark.parametrize("shift", CHANGED)
def test_get_state_set_state_continues_the_episode(shift):
    assert_set_state_continues("walker_walk", shift, split=4, steps=9)


def test_colours_come_from_the_table_and_stay_in_its_range(shared_dir):
    path = shared_dir / "dmcgb-data" / "color_hard.json"
    table = load_color_table(path)
    env = make_env("walker_walk", "color_hard", seed=0, image_size=SIZE, color_file=str(path))
    assert env.shift.source == str(path)
    model = env._physics.model
    self_material = model.name2id("self", "material")
    grid_texture = model.name2id("grid", "texture")
    start = model.tex_adr[grid_texture]
    for _ in range(5):
        env.reset()
        entry = table[shift_state(env)["parts"][0]["entry"]]
        np.testing.assert_allclose(model.mat_rgba[self_material, :3], entry[2], atol=1e-6)
        texels = model.tex_data[start : start + 300 * 300 * 3].reshape(-1, 3)
        checker = np.round(255 * entry[:2]).astype(int)
        edge = np.round(255 * np.array([0.2, 0.3, 0.4])).astype(int)  # the grid's marks keep their colour
        assert {tuple(t) for t in np.unique(texels, axis=0)} <= {*map(tuple, checker), tuple(edge)}
    env.close()
    low, high = table.min(axis=0), table.max(axis=0)
    assert np.all((low >= 0) & (high <= 1))


def test_generated_tables_match_the_benchmark_spread(shared_dir):
    for shift, std in (("color_easy", 0.1), ("color_hard", 0.2)):
        ours = generated_color_table(shift)
        theirs = load_color_table(shared_dir / "dmcgb-data" / f"{shift}.json")
        assert ours.shape == theirs.shape == (100, 4, 3)
        assert np.all((ours >= 0) & (ours <= 1))
        np.testing.assert_allclose(ours[:, 1], np.clip(ours[:, 0] + 0.1, 0, 1))
        assert abs(spread(ours).mean() - spread(theirs).mean()) < 0.02
        assert abs(spread(ours).mean() - std) < 0.03


def test_distracting_colours_stay_within_the_intensity():
    env = make_env("cartpole_swingup", "distracting_cs", seed=0, image_size=SIZE, intensity="hard")
    original = env._physics.model.mat_rgba[:, :3].copy()  # before the first reset: the model's own colours
    env.reset()
    for action in random_actions(env, 20):
        env.step(action)
        rgb = env._physics.model.mat_rgba[:, :3]
        assert np.all(np.abs(rgb - original) <= 0.3 + 1e-6) and np.all((rgb >= 0) & (rgb <= 1))
    env.close()


@pytest.mark.parametrize("mode", ["fast", "fidelity"])
def test_video_frames_advance_once_per_step(mode):
    env = make_env("walker_walk", "video_easy", seed=0, image_size=SIZE, video_mode=mode)
    videos = resolve_shift("video_easy").videos
    obs, _ = env.reset()
    clip = videos.clip(shift_state(env)["parts"][0]["clip"], SIZE)
    for step in range(1, 6):
        obs, *_ = env.step(random_actions(env, 1, seed=step)[0])
        assert shift_state(env)["parts"][0]["playback"]["frame"] == step
        frame = obs[-3:].transpose(1, 2, 0)
        shows = [(frame == clip[t]).all(axis=-1).mean() for t in (step - 1, step, step + 1)]
        assert shows[1] > 0.2 and shows[1] > 2 * max(shows[0], shows[2])
    env.close()


def test_green_screen_follows_the_reference_thresholds():
    import colorsys

    pixels = np.array(
        [[[51, 204, 51], [10, 40, 10], [255, 0, 0], [128, 128, 128], [40, 120, 200], [0, 0, 0]]], np.uint8
    )
    # green; green but too dark (V < 70); red; grey; blue at 212 degrees (outside 100-185); black
    assert green_screen(pixels).tolist() == [[True, False, False, False, False, False]]

    def reference(r, g, b):  # DMControl-GB's per-pixel rule
        h, s, v = colorsys.rgb_to_hsv(r / 255.0, g / 255.0, b / 255.0)
        return 100 <= h * 360 <= 185 and 80 <= s * 255 <= 255 and 70 <= v * 255 <= 255

    rng = np.random.default_rng(0)
    pixels = np.concatenate([rng.integers(0, 256, (20000, 3)), rng.integers(0, 256, (2000, 1)).repeat(3, axis=1)])
    pixels[::3, 1] = np.maximum(pixels[::3, 1], pixels[::3, 2])  # more green and cyan candidates
    r, g, b = pixels.T
    high, chroma = pixels.max(axis=1), np.ptp(pixels, axis=1)
    # Colours exactly on a threshold, where the reference's floating-point rounding decides.
    on_threshold = (
        (3 * (b - r) == -chroma) | (12 * (r - g) == -11 * chroma) | (255 * chroma == 80 * high) | (high == 70)
    )
    expected = np.array([reference(*map(int, p)) for p in pixels])
    got = green_screen(pixels.astype(np.uint8)[None]).ravel()
    np.testing.assert_array_equal(got[~on_threshold], expected[~on_threshold])
    assert (got != expected).sum() < 10


def test_fidelity_mode_reproduces_the_green_screen():
    env = make_env("walker_walk", "video_hard", seed=0, image_size=SIZE, video_mode="fidelity")
    fast = make_env("walker_walk", "video_hard", seed=0, image_size=SIZE)
    plain = make_env("walker_walk", seed=0, image_size=SIZE)
    obs = [e.reset()[0][-3:] for e in (env, fast, plain)]
    for e in (env, fast, plain):
        e.close()
    assert not np.array_equal(obs[0], obs[2])
    # Both modes replace the same background: they agree on most pixels (they differ at edges).
    assert (obs[0] == obs[1]).all(axis=0).mean() > 0.8


def test_procedural_videos_move_and_are_textured():
    clip = resolve_shift("video_hard").videos.clip(3, SIZE)
    assert clip.dtype == np.uint8 and clip.shape[1:] == (SIZE, SIZE, 3)
    assert clip[0].std() > 20  # a picture, not a flat colour
    assert np.abs(clip[10].astype(int) - clip[0]).mean() > 5  # it moves


def test_loaders_read_the_benchmark_files(shared_dir):
    data = shared_dir / "dmcgb-data"
    for name in ("color_easy", "color_hard"):
        table = load_color_table(data / f"{name}.json")
        assert table.shape == (100, len(COLOR_KEYS), 3)
    videos = DirectoryVideos(data / "video_easy")
    assert [p.name for p in videos.paths] == [f"video{i}.mp4" for i in (0, 1, 2, 6, 8, 9)]
    env = make_env("walker_walk", "video_easy", seed=0, image_size=SIZE, video_dir=str(data / "video_easy"))
    env.reset()
    obs, *_ = env.step(random_actions(env, 1)[0])
    assert env.shift.source == str(data / "video_easy")
    clip = videos.clip(shift_state(env)["parts"][0]["clip"], SIZE)  # decoded once, by the environment
    env.close()
    assert len(clip) >= 500 and clip.shape[1:] == (SIZE, SIZE, 3) and clip.std() > 10
    assert (obs[-3:].transpose(1, 2, 0) == clip[1]).all(axis=-1).mean() > 0.2


def test_distracting_intensity_names_and_values():
    assert parse_intensity(None) == 0.1
    assert [parse_intensity(n) for n in ("easy", "medium", "hard")] == [0.1, 0.2, 0.3]
    assert parse_intensity("0.025") == 0.025 and parse_intensity(0.5) == 0.5
    assert len(resolve_shift("distracting_cs", intensity=0.05).videos) == 2  # DMControl-GB: 2 videos at 0.05


def test_image_sources_give_uint8_batches(tmp_path):
    from PIL import Image

    for folder, colour in (("a/abbey", (200, 10, 10)), ("b/beach/sand", (10, 10, 200))):
        (tmp_path / folder).mkdir(parents=True)
        Image.new("RGB", (40, 30), colour).save(tmp_path / folder / "00000001.jpg")
    directory = ImageDirectory(tmp_path)
    assert len(directory.paths) == 2
    batch = directory.batch(6, 16, torch.Generator().manual_seed(0))
    assert batch.shape == (6, 3, 16, 16) and batch.dtype == torch.uint8
    procedural = ProceduralImages()
    one = procedural.batch(4, 24, torch.Generator().manual_seed(1))
    two = procedural.batch(4, 24, torch.Generator().manual_seed(1))
    assert one.shape == (4, 3, 24, 24) and torch.equal(one, two) and one.float().std() > 20
    assert procedural.batch(4, 24, np.random.default_rng(0)).shape == (4, 3, 24, 24)
    assert image_source(str(tmp_path)).description == str(tmp_path)
    with pytest.raises(ValueError, match="unknown option"):  # overlay images are the agents' data (agent.overlay_dir)
        make_env("walker_walk", image_size=SIZE, image_dir=str(tmp_path))


def test_photos_are_fresh_random_resized_crops_drawn_by_the_generator():
    photos = Photos()
    one = photos.batch(64, 32, torch.Generator().manual_seed(3))
    assert one.shape == (64, 3, 32, 32) and one.dtype == torch.uint8
    assert torch.equal(one, photos.batch(64, 32, torch.Generator().manual_seed(3)))
    g = torch.Generator().manual_seed(3)
    photos.batch(64, 32, g)
    assert not torch.equal(one, photos.batch(64, 32, g))  # every batch is drawn afresh
    assert len({bytes(image.numpy()) for image in one}) == 64  # and every sample
    assert len(load_photos()) == len(PHOTOS) and all(min(p[0].shape[1:]) == 256 for p in load_photos())


def test_photo_crops_follow_random_resized_crop():
    photos, g = Photos(), torch.Generator().manual_seed(0)
    for _ in range(200):
        share, aspect = 0.08 + 0.92 * torch.rand(10, generator=g).double(), torch.rand(10, generator=g).double()
        aspect = torch.exp(math.log(3 / 4) + aspect * math.log(16 / 9))
        top, left, h, w = photos.crop(256, 384, share, aspect, torch.rand(2, generator=g).double())
        assert 0 <= top <= 256 - h and 0 <= left <= 384 - w
        assert 0.08 * 0.97 <= h * w / (256 * 384) <= 1 and 3 / 4 * 0.95 <= w / h <= 4 / 3 * 1.05
    # No try fits (every area too large for the ratio): the central crop of the closest ratio.
    assert photos.crop(100, 300, torch.ones(10, dtype=torch.float64), torch.full((10,), 0.75, dtype=torch.float64),
                       torch.zeros(2, dtype=torch.float64)) == (0, 83, 100, 133)


def test_a_flip_mirrors_the_crop():
    photos = Photos()
    pick, share, aspect, position, flip = photos.draw(16, torch.Generator().manual_seed(0))
    kept = photos.render(pick, share, aspect, position, torch.zeros_like(flip), 24)
    mirrored = photos.render(pick, share, aspect, position, torch.ones_like(flip), 24)
    assert torch.equal(mirrored, kept.flip(-1))
    assert 0 < flip.sum() < 16


def write(path, content: bytes | str) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return str(path)


@pytest.mark.parametrize(
    "case, message",
    [
        ("unknown_shift", "unknown shift 'rainbow'; valid shifts: none, color_easy"),
        ("unknown_intensity", "unknown intensity 0.7; valid intensities: 0.025"),
        ("unknown_intensity_name", "unknown intensity 'extreme'"),
        ("unknown_video_mode", "unknown video_mode 'slow'"),
        ("missing_video_dir", "video directory .* does not exist"),
        ("empty_video_dir", "holds no videoN.mp4 files"),
        ("corrupt_video", "is not an MP4 video"),
        ("missing_image_dir", "image directory .* does not exist"),
        ("empty_image_dir", "holds no images"),
        ("corrupt_image", "cannot read the image"),
        ("colour_file_missing", "cannot read the colour file"),
        ("colour_file_not_json", "is not JSON"),
        ("colour_file_wrong_keys", "has the wrong shape"),
        ("colour_file_wrong_shape", "has the wrong shape"),
        ("colour_file_out_of_range", "outside \\[0, 1\\]"),
    ],
)
def test_bad_input_raises_one_clear_value_error(tmp_path, case, message):
    good = {key: [0.5, 0.5, 0.5] for key in COLOR_KEYS}
    arguments = {
        "unknown_shift": ("rainbow", {}),
        "unknown_intensity": ("distracting_cs", {"intensity": 0.7}),
        "unknown_intensity_name": ("distracting_cs", {"intensity": "extreme"}),
        "unknown_video_mode": ("video_easy", {"video_mode": "slow"}),
        "missing_video_dir": ("video_easy", {"video_dir": str(tmp_path / "nowhere")}),
        "empty_video_dir": ("video_hard", {"video_dir": str(tmp_path)}),
        "corrupt_video": ("video_easy", {"video_dir": str(tmp_path)}),
        "missing_image_dir": ("none", {"image_dir": str(tmp_path / "nowhere")}),
        "empty_image_dir": ("none", {"image_dir": str(tmp_path)}),
        "corrupt_image": ("none", {"image_dir": str(tmp_path)}),
        "colour_file_missing": ("color_easy", {"color_file": str(tmp_path / "none.json")}),
        "colour_file_not_json": ("color_easy", {"color_file": write(tmp_path / "a.json", "{oops")}),
        "colour_file_wrong_keys": ("color_hard", {"color_file": write(tmp_path / "b.json", json.dumps([{"grid": 1}]))}),
        "colour_file_wrong_shape": (
            "color_hard", {"color_file": write(tmp_path / "c.json", json.dumps([{**good, "self_rgb": [0.1, 0.2]}]))}
        ),
        "colour_file_out_of_range": (
            "color_easy", {"color_file": write(tmp_path / "d.json", json.dumps([{**good, "skybox_rgb": [0, 2, 0]}]))}
        ),
    }
    if case == "corrupt_video":
        write(tmp_path / "video0.mp4", b"\x00" * 64)
    if case == "corrupt_image":
        write(tmp_path / "places" / "a" / "x.jpg", b"not a jpeg")
    shift, options = arguments[case]
    with pytest.raises(ValueError, match=message) as caught:
        if "image_dir" in options:  # an agent's overlay images (agent.overlay_dir)
            image_source(options["image_dir"]).batch(1, SIZE, torch.Generator())
        else:
            make_env("walker_walk", shift, image_size=SIZE, **options)
    assert len(str(caught.value).splitlines()) == 1


# ----- command line: `unseen show`, `unseen eval` with data sources, one-line errors --------------------


def test_show_draws_a_row_per_shift(capsys, tmp_path):
    from PIL import Image

    out = tmp_path / "gallery.png"
    code, stdout, err = run_cli(capsys, "show", "--task", "cartpole_swingup", "--shifts", "none", "color_hard",
                                "--frames", "2", "--image-size", "32", "--out", str(out))
    assert code == 0, err
    assert f"written to {out}" in stdout
    with Image.open(out) as picture:
        assert picture.size[0] > 100 and picture.size[1] > 100


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--shifts", "video_easy", "--video-dir", "/nowhere"], "video directory /nowhere does not exist"),
        (["--shifts", "distracting_cs", "--intensity", "0.7"], "unknown intensity '0.7'"),
        (["--shifts", "color_easy", "--color-file", "/nowhere.json"], "cannot read the colour file"),
        (["--shifts", "sepia"], "unknown shift(s) sepia"),
        (["--frames", "0"], "--frames must lie in 1..20, got 0"),
        (["--image-size", "2000"], "image_size must be between 1 and 480 for walker tasks, got 2000"),
    ],
)
def test_show_bad_input_is_one_line(capsys, tmp_path, argv, message):
    code, _, err = run_cli(capsys, "show", "--task", "walker_walk", "--out", str(tmp_path / "x.png"), *argv)
    assert code == 2 and len(err.splitlines()) == 1 and message in err, err
    assert not (tmp_path / "x.png").exists()


def test_eval_runs_every_shift_and_records_its_source(capsys, tmp_path, shared_dir):
    from unseen import train

    from conftest import tiny_config

    run = tmp_path / "run"
    train.start(tiny_config(steps=30), run)
    videos = str(shared_dir / "dmcgb-data" / "video_easy")
    code, _, err = run_cli(capsys, "eval", str(run), "--shifts", "video_easy", "distracting_cs", "color_easy",
                                "--episodes", "1", "--video-dir", videos, "--intensity", "easy")
    assert code == 0, err
    returns = json.loads((run / "summary.json").read_text())["returns"]
    assert returns["video_easy"]["source"] == videos and returns["video_easy"]["episodes"] == 1
    assert returns["distracting_cs"]["source"] == videos and returns["distracting_cs"]["intensity"] == 0.1
    assert returns["color_easy"]["source"].startswith("generated")
    assert returns["none"]["source"] == "none"
    code, _, err = run_cli(capsys, "eval", str(run), "--shifts", "video_hard", "--video-dir", str(tmp_path))
    assert code == 2 and len(err.splitlines()) == 1 and "holds no videoN.mp4 files" in err
