"""Picture sources: video backgrounds for the video and distracting shifts, images for overlay augmentations.

Real data when the user has it, an honest offline default when not (docs/protocol.md, "Data of the shifts"):

- `DirectoryVideos`: a directory in DMControl-GB's video format (`video0.mp4`, `video1.mp4`, ...), decoded
  once per clip and size and cached.
- `ProceduralVideos`: seeded synthetic clips (drifting colour waves under moving soft blobs).
- `ImageDirectory`: any folder of images at any depth (the Places365 layout works).
- `ProceduralImages`: seeded synthetic images (dead-leaves discs over a smooth colour field).
- `Photos`: the public-domain and CC0 photographs and textures installed with unseen's dependencies
  (scikit-image's and matplotlib's sample data), drawn as DMControl-GB draws Places365: a random resized crop and
  flip per sample.

The procedural video and image sources share no generator, no seed and no drawing rule, and the photographs are
no video's frames, so test-time backgrounds never serve as training overlays. Every source has a `description`
that runs record: the directory, `"procedural"` or `"photos"`.
"""

from __future__ import annotations

import math
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
    per_update: bool
    """Cheap enough to draw every update's images afresh (else an agent draws a pool once and picks from it)."""

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
        self.per_update = False  # decoding a batch of files per update would cost more than the update
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
    per_update = False

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


OVERLAY_SOURCES = ("photos", "procedural")
"""Overlay image sources that need no data of the user's (CG2A's `agent.overlay_source`): `Photos`,
`ProceduralImages`."""

PHOTOS = (
    ("skimage", "data/astronaut.png"),  # NASA; public domain
    ("skimage", "data/chelsea.png"),  # Stefan van der Walt; CC0
    ("skimage", "data/coffee.png"),  # Rachel Michetti; CC0
    ("skimage", "data/rocket.jpg"),  # SpaceX; public domain
    ("matplotlib", "mpl-data/sample_data/grace_hopper.jpg"),  # US Navy; public domain
    ("skimage", "data/brick.png"),  # CC0 Textures; CC0 (grey)
    ("skimage", "data/grass.png"),  # DeviantArt, linolafett; CC0 (grey)
    ("skimage", "data/gravel.png"),  # CC0 Textures; CC0 (grey)
)
"""The photographs of `Photos`: (package, path inside it); the licences are listed in docs/dmcontrol-gb.md."""

PHOTO_SIDE = 256
"""Photographs are scaled so that their short side has this many pixels: Places365-standard's 256x256 images."""


def photo_paths() -> list[Path]:
    """Where `PHOTOS` are installed; an `InputError` naming the package to install when one is missing."""
    from importlib.util import find_spec

    paths = []
    for package, inside in PHOTOS:
        spec = find_spec(package)
        path = Path(spec.submodule_search_locations[0]) / inside if spec and spec.submodule_search_locations else None
        if path is None or not path.is_file():
            raise InputError(
                f"the photograph {package}/{inside} is not installed; reinstall unseen's dependencies "
                "or set agent.overlay_source=procedural"
            )
        paths.append(path)
    return paths


PHOTO_LEVELS = 3
"""Each photograph is kept at 1, 1/2 and 1/4 of its size: a crop is resampled from the level that shrinks it by
less than 2x, where bilinear interpolation needs no antialiasing."""


@lru_cache(maxsize=1)
def load_photos() -> tuple[tuple[torch.Tensor, ...], ...]:
    """`PHOTOS` as float `(3, h, w)` tensors in [0, 1], short side `PHOTO_SIDE`, each with its `PHOTO_LEVELS`
    levels (Pillow's antialiased bilinear reduction); decoded once per process."""
    from PIL import Image

    photos = []
    for path in photo_paths():
        with Image.open(path) as picture:
            rgb = picture.convert("RGB")
        scale = PHOTO_SIDE / min(rgb.size)
        levels = []
        for level in range(PHOTO_LEVELS):
            size = (round(rgb.width * scale / 2**level), round(rgb.height * scale / 2**level))
            pixels = np.asarray(rgb.resize(size, Image.Resampling.BILINEAR)).transpose(2, 0, 1).copy()
            levels.append(torch.from_numpy(pixels).float() / 255.0)
        photos.append(tuple(levels))
    return tuple(photos)


class Photos:
    """Real photographs, offline: `PHOTOS`, drawn as DMControl-GB draws Places365 for its overlay.

    DMControl-GB's `_load_places` (src/augmentations.py) reads Places365 through torchvision's
    `RandomResizedCrop(image_size)` and `RandomHorizontalFlip()`, a fresh draw for every image of every batch:
    a crop of 8% to 100% of the picture's area with aspect ratio between 3/4 and 4/3 (log-uniform), at a uniform
    position, up to 10 tries and then the central crop of the closest ratio; resized (bilinear, antialiased) to
    the output side; flipped left-right with probability 1/2. The same draws here; the resize samples the crop
    bilinearly from the level of the photograph that shrinks it by less than 2x (`PHOTO_LEVELS`), all crops of a
    level in one `grid_sample`. Every draw comes from the caller's generator (on its device), so a batch is a pure
    function of the generator state. An agent draws every update's images afresh (`per_update`).
    """

    description = "photos"
    per_update = True
    scale = (0.08, 1.0)
    ratio = (3 / 4, 4 / 3)
    tries = 10

    def batch(self, n: int, size: int, generator: torch.Generator | np.random.Generator) -> torch.Tensor:
        return self.render(*self.draw(n, torch_generator(generator)), size)

    def draw(
        self, n: int, g: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per sample: the photograph, the tries' area shares and aspect ratios, the position, the flip."""

        def uniform(*shape: int) -> torch.Tensor:
            return torch.rand(shape, generator=g, device=g.device).cpu().double()

        photos = len(PHOTOS)
        pick = (uniform(n) * photos).long().clamp_(max=photos - 1)
        area_share = self.scale[0] + (self.scale[1] - self.scale[0]) * uniform(n, self.tries)
        log_low, log_high = math.log(self.ratio[0]), math.log(self.ratio[1])
        aspect = torch.exp(log_low + (log_high - log_low) * uniform(n, self.tries))
        return pick, area_share, aspect, uniform(n, 2), uniform(n) < 0.5

    def render(
        self, pick: torch.Tensor, area_share: torch.Tensor, aspect: torch.Tensor, position: torch.Tensor,
        flip: torch.Tensor, size: int,
    ) -> torch.Tensor:
        """The drawn crops, resized to `size x size` and flipped, `(n, 3, size, size)` uint8."""
        photos = load_photos()
        n = len(pick)
        boxes, levels = [], []
        for i in range(n):
            full = photos[int(pick[i])][0]
            top, left, height, width = self.crop(full.shape[1], full.shape[2], area_share[i], aspect[i], position[i])
            boxes.append((top, left, height, width))
            levels.append(min(PHOTO_LEVELS - 1, max(0, math.floor(math.log2(min(height, width) / size)))))
        box = torch.tensor(boxes, dtype=torch.float64)
        level = torch.tensor(levels)
        shapes = torch.tensor([photos[int(k)][int(v)].shape[1:] for k, v in zip(pick, level, strict=True)])
        # Output pixel centres in the full picture, then in grid_sample's units on the level (align_corners false:
        # -1 and 1 are the outer edges of the border pixels); a flip reverses the columns.
        centres = (torch.arange(size, dtype=torch.float64) + 0.5) / size
        across = torch.where(flip[:, None], centres.flip(0), centres)
        ys = (box[:, :1] + centres * box[:, 2:3]) / 2.0 ** level[:, None]
        xs = (box[:, 1:2] + across * box[:, 3:4]) / 2.0 ** level[:, None]
        grid_y = (2 * ys / shapes[:, :1] - 1)[:, :, None].expand(n, size, size)
        grid_x = (2 * xs / shapes[:, 1:] - 1)[:, None, :].expand(n, size, size)
        grid = torch.stack([grid_x, grid_y], -1).float()
        out = torch.empty(n, 3, size, size)
        for photo, on in {(int(k), int(v)) for k, v in zip(pick, level, strict=True)}:
            members = ((pick == photo) & (level == on)).nonzero()[:, 0]
            # All crops of one level in one call: their grids side by side as one tall grid.
            sampled = F.grid_sample(photos[photo][on][None], grid[members].view(1, -1, size, 2), mode="bilinear",
                                    padding_mode="border", align_corners=False)
            out[members] = sampled[0].view(3, len(members), size, size).transpose(0, 1)
        return (out * 255).round_().clamp_(0, 255).to(torch.uint8)

    def crop(
        self, height: int, width: int, area_share: torch.Tensor, aspect: torch.Tensor, position: torch.Tensor
    ) -> tuple[int, int, int, int]:
        """(top, left, height, width) of the first of the tries that fits, else the central fallback crop."""
        for share, ratio in zip(area_share.tolist(), aspect.tolist(), strict=True):
            w = round(math.sqrt(height * width * share * ratio))
            h = round(math.sqrt(height * width * share / ratio))
            if 0 < w <= width and 0 < h <= height:
                return int(position[0] * (height - h + 1)), int(position[1] * (width - w + 1)), h, w
        if width / height < self.ratio[0]:
            w, h = width, round(width / self.ratio[0])
        elif width / height > self.ratio[1]:
            h, w = height, round(height * self.ratio[1])
        else:
            h, w = height, width
        return (height - h) // 2, (width - w) // 2, h, w


def image_source(image_dir: str | Path | None, name: str = "procedural") -> ImageSource:
    """The overlay image source: the directory when given, else the source `name` of `OVERLAY_SOURCES`."""
    if image_dir is not None:
        return ImageDirectory(image_dir)
    if name not in OVERLAY_SOURCES:
        raise InputError(f"unknown overlay image source {name!r}; choose one of: {', '.join(OVERLAY_SOURCES)}")
    return Photos() if name == "photos" else ProceduralImages()
