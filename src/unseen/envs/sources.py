"""Picture sources: video backgrounds for the video and distracting shifts, images for overlay augmentations.

Real data when the user has it, an honest offline default when not (docs/protocol.md, "Data of the shifts"):

- `DirectoryVideos`: a directory in DMControl-GB's video format (`video0.mp4`, `video1.mp4`, ...), decoded
  once per clip and size and cached.
- `ProceduralVideos`: seeded synthetic clips (drifting colour waves under moving soft blobs).
- `ImageDirectory`: any folder of images at any depth (the Places365 layout works).
- `ProceduralImages`: seeded synthetic images (dead-leaves discs over a smooth colour field).

The procedural video and image sources share no generator, no seed and no drawing rule, so test-time
backgrounds never serve as training overlays. Every source has a `description` that runs record: the
directory, or `"procedural"`.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from functools import lru_cache
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F

from unseen.errors import InputError

# Clips decoded and resized at once are kept for reuse: one 750-frame clip at 84x84 is 16 MB.
_CLIP_CACHE_SIZE = 12
_VIDEO_NAME = re.compile(r"video(\d+)\.mp4")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def resize_frames(frames: np.ndarray, size: int, chunk: int = 64) -> np.ndarray:
    """`(T, H, W, 3)` uint8 frames resized to `(T, size, size, 3)`.

    DMControl-GB's rule (`VideoWrapper._interpolate_bg`): bilinear, `align_corners=False`, on values in
    [0, 1], then `* 255` truncated to uint8. Done in chunks to bound the float buffer.
    """
    out = np.empty((len(frames), size, size, 3), np.uint8)
    for start in range(0, len(frames), chunk):
        batch = torch.from_numpy(frames[start : start + chunk]).permute(0, 3, 1, 2).float() / 255.0
        resized = F.interpolate(batch, size=(size, size), mode="bilinear", align_corners=False)
        out[start : start + chunk] = (resized * 255.0).to(torch.uint8).permute(0, 2, 3, 1).numpy()
    return out


class VideoSource(Protocol):
    """Clips of background video, each `(T, size, size, 3)` uint8 at any requested size."""

    description: str

    def __len__(self) -> int: ...

    def clip(self, index: int, size: int) -> np.ndarray: ...


class DirectoryVideos:
    """The videos of a directory in DMControl-GB's format, `videoN.mp4`, in the order of N.

    Construction checks what is cheap to check (the directory exists, holds `videoN.mp4` files, each an MP4
    container); a clip is decoded (imageio-ffmpeg) the first time it is used, resized to the image size and
    cached. `first` keeps only the first clips (the distracting shift's intensity decides how many).
    """

    def __init__(self, directory: str | Path, first: int | None = None) -> None:
        self.directory = Path(directory).expanduser()
        if not self.directory.is_dir():
            raise InputError(
                f"video directory {self.directory} does not exist; pass a folder of video0.mp4, video1.mp4, ..."
            )
        named = [
            (int(m.group(1)), path) for path in self.directory.iterdir() if (m := _VIDEO_NAME.fullmatch(path.name))
        ]
        if not named:
            raise InputError(
                f"video directory {self.directory} holds no videoN.mp4 files (DMControl-GB's format); "
                "pass another --video-dir"
            )
        self.paths = [path for _, path in sorted(named)][:first]
        for path in self.paths:
            check_mp4(path)
        self.description = str(self.directory)

    def __len__(self) -> int:
        return len(self.paths)

    def clip(self, index: int, size: int) -> np.ndarray:
        return decoded_clip(str(self.paths[index]), size)


def check_mp4(path: Path) -> None:
    """Refuse a file that is not an MP4 container (ISO base media: a box of type `ftyp` first)."""
    with path.open("rb") as handle:
        head = handle.read(12)
    if len(head) < 12 or head[4:8] != b"ftyp":
        raise InputError(f"{path} is not an MP4 video (empty or corrupt); replace it or pass another --video-dir")


@lru_cache(maxsize=_CLIP_CACHE_SIZE)
def decoded_clip(path: str, size: int) -> np.ndarray:
    """All frames of the video at `path`, resized to `size`, read-only (shared by every environment)."""
    import imageio_ffmpeg

    try:
        reader = imageio_ffmpeg.read_frames(path)
        meta = next(reader)
        width, height = meta["size"]
        frames = np.stack([np.frombuffer(frame, np.uint8).reshape(height, width, 3) for frame in reader])
    except (OSError, RuntimeError, StopIteration, ValueError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise InputError(f"cannot decode the video {path} ({reason}); replace it or pass another --video-dir") from None
    clip = resize_frames(frames, size)
    clip.flags.writeable = False
    return clip


class ProceduralVideos:
    """Seeded synthetic background clips: moving, textured and coloured, generated in milliseconds.

    Clip `i` depends only on `(seed, i)`: three warped colour waves drifting across the frame at their own
    speed and direction, under a few soft blobs that move along Lissajous paths.
    """

    def __init__(self, seed: int, clips: int, frames: int) -> None:
        self.seed, self.clips, self.frames = seed, clips, frames
        self.description = "procedural"

    def __len__(self) -> int:
        return self.clips

    def clip(self, index: int, size: int) -> np.ndarray:
        return procedural_clip(self.seed, index, self.frames, size)


@lru_cache(maxsize=_CLIP_CACHE_SIZE)
def procedural_clip(seed: int, index: int, frames: int, size: int) -> np.ndarray:
    """Clip `index` of the procedural video source with `seed`, `(frames, size, size, 3)` uint8, read-only."""
    rng = np.random.default_rng([seed, index])
    t = np.arange(frames, dtype=np.float32)[:, None, None]
    axis = np.linspace(0, 1, size, dtype=np.float32)
    y, x = axis[:, None], axis[None, :]
    waves = 3
    # float32 parameters: a float64 one would turn every frame-sized operation into float64.
    angle = rng.uniform(0, 2 * np.pi, (waves, 2)).astype(np.float32)
    frequency = (rng.uniform(1, 5, (waves, 2)) * 2 * np.pi).astype(np.float32)  # cycles of the wave, of its warp
    speed = (rng.uniform(0.02, 0.12, waves) * rng.choice([-1, 1], waves)).astype(np.float32)
    palette = (rng.uniform(0, 1, (waves, 3)) * (1.5 / waves)).astype(np.float32)
    # Channels first while drawing: every operation then runs on whole contiguous (frames, size, size) planes.
    picture = np.zeros((3, frames, size, size), np.float32)
    for k in range(waves):
        across, warp = (np.cos(angle[k, i]) * x + np.sin(angle[k, i]) * y for i in range(2))
        phase = frequency[k, 0] * across + 1.5 * np.sin(frequency[k, 1] * warp + speed[k] * t) + speed[k] * t
        intensity = 0.5 + 0.5 * np.sin(phase)
        for channel in range(3):
            picture[channel] += palette[k, channel] * intensity
    for _ in range(rng.integers(3, 8)):
        amplitude = rng.uniform(0.1, 0.45, 2).astype(np.float32)
        pace = rng.uniform(0.005, 0.04, 2).astype(np.float32)
        start = rng.uniform(0, 2 * np.pi, 2).astype(np.float32)
        centre = 0.5 + amplitude * np.sin(pace * t[:, :, 0] + start)  # (frames, 2)
        radius = rng.uniform(0.06, 0.22)
        # A Gaussian blob is separable: the product of a profile across x and one across y.
        across_x, across_y = (np.exp(-((axis - centre[:, [i]]) ** 2) / (2 * radius**2)) for i in range(2))
        weight = across_y[:, :, None] * across_x[:, None, :]
        for channel, colour in enumerate(rng.uniform(0, 1, 3)):
            picture[channel] += weight * (np.float32(colour) - picture[channel])
    clip = np.ascontiguousarray((np.clip(picture, 0, 1) * 255).astype(np.uint8).transpose(1, 2, 3, 0))
    clip.flags.writeable = False
    return clip


class ImageSource(Protocol):
    """Images for overlays: `batch(n, size, generator)` gives `(n, 3, size, size)` uint8."""

    description: str

    def batch(self, n: int, size: int, generator: torch.Generator | np.random.Generator) -> torch.Tensor: ...


def torch_generator(generator: torch.Generator | np.random.Generator) -> torch.Generator:
    """`generator` itself, or a torch generator seeded from a numpy one (drawing once from it)."""
    if isinstance(generator, torch.Generator):
        return generator
    return torch.Generator().manual_seed(int(generator.integers(2**63 - 1)))


class ImageDirectory:
    """Every image under a directory, at any depth (Places365's `a/abbey/00000001.jpg` layout works).

    Construction lists the files and decodes the first one, so a missing, empty or unreadable directory
    fails at once. Images are decoded with Pillow, converted to RGB, resized (bilinear) and cached, up to
    `cache_size` of them.
    """

    def __init__(self, directory: str | Path, cache_size: int = 20_000) -> None:
        self.directory = Path(directory).expanduser()
        if not self.directory.is_dir():
            raise InputError(
                f"image directory {self.directory} does not exist; pass a folder of images (--image-dir)"
            )
        self.paths = sorted(p for p in self.directory.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if not self.paths:
            raise InputError(
                f"image directory {self.directory} holds no images ({', '.join(IMAGE_SUFFIXES)}); "
                "pass another --image-dir"
            )
        self.description = str(self.directory)
        self._cache: OrderedDict[tuple[int, int], np.ndarray] = OrderedDict()
        self._cache_size = cache_size
        self.image(0, 8)

    def image(self, index: int, size: int) -> np.ndarray:
        """Image `index` as `(3, size, size)` uint8."""
        key = (index, size)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(self.paths[index]) as picture:
                pixels = np.asarray(picture.convert("RGB").resize((size, size), Image.Resampling.BILINEAR))
        except (OSError, UnidentifiedImageError, ValueError):
            raise InputError(
                f"cannot read the image {self.paths[index]} (corrupt?); remove it or pass another --image-dir"
            ) from None
        self._cache[key] = pixels.transpose(2, 0, 1).copy()
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return self._cache[key]

    def batch(self, n: int, size: int, generator: torch.Generator | np.random.Generator) -> torch.Tensor:
        """`n` images drawn uniformly with replacement by `generator`."""
        picks = torch.randint(len(self.paths), (n,), generator=torch_generator(generator))
        return torch.from_numpy(np.stack([self.image(int(i), size) for i in picks]))


class ProceduralImages:
    """Seeded synthetic images: a dead-leaves picture (opaque discs of random colour and power-law radius,
    painted in turn) over a smooth random colour field. Every draw comes from the caller's generator."""

    description = "procedural"

    def __init__(self, discs: int = 40) -> None:
        self.discs = discs

    def batch(self, n: int, size: int, generator: torch.Generator | np.random.Generator) -> torch.Tensor:
        g = torch_generator(generator)
        field = torch.rand(n, 3, 4, 4, generator=g)
        picture = F.interpolate(field, size=(size, size), mode="bicubic", align_corners=False).clamp(0, 1)
        grid = (torch.arange(size, dtype=torch.float32) + 0.5) / size
        y, x = grid[:, None], grid[None, :]
        for _ in range(self.discs):
            centre = torch.rand(n, 2, 1, 1, generator=g)
            # Radii with density ~ 1/r^2 between 2% and 30% of the side: many small leaves, few large ones.
            radius = 1.0 / (1 / 0.02 + torch.rand(n, 1, 1, generator=g) * (1 / 0.3 - 1 / 0.02))
            inside = ((x - centre[:, 0]) ** 2 + (y - centre[:, 1]) ** 2 < radius**2)[:, None]
            colour = torch.rand(n, 3, 1, 1, generator=g)
            picture = torch.where(inside, colour, picture)
        return (picture * 255).round().to(torch.uint8)


def image_source(image_dir: str | Path | None) -> ImageSource:
    """The overlay image source: the directory when given, else the procedural one."""
    return ImageDirectory(image_dir) if image_dir is not None else ProceduralImages()
