"""Colour tables of the color_easy and color_hard shifts: generated from a seed, or read from the benchmark.

A table is an array `(entries, 4, 3)` of RGB triples in [0, 1], one row per `COLOR_KEYS` entry, in the
format of DMControl-GB's `color_easy.pt` / `color_hard.pt` (as JSON: a list of dicts with these keys).

Our own tables follow the measured spread of the benchmark's: each entry is the default colour of
dm_control's `common/materials.xml` and `common/skybox.xml` plus Gaussian noise per channel (std 0.1 for
easy, 0.2 for hard), clipped to [0, 1], with the floor's second checker colour 0.1 above the first, as in
every entry of the benchmark's files. `python -m unseen.envs.colors` prints the comparison.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import numpy as np

from unseen.errors import InputError

COLOR_KEYS = ("grid_rgb1", "grid_rgb2", "self_rgb", "skybox_rgb")
"""Floor checker colours, the agent's material `self`, the top colour of the skybox gradient."""

DEFAULT_COLORS = np.array([[0.1, 0.2, 0.3], [0.2, 0.3, 0.4], [0.7, 0.5, 0.3], [0.4, 0.6, 0.8]])
"""dm_control's defaults for `COLOR_KEYS`, from `suite/common/materials.xml` and `skybox.xml`."""

COLOR_STD = {"color_easy": 0.1, "color_hard": 0.2}
"""Standard deviation of the deviation from `DEFAULT_COLORS`, per channel, measured on the benchmark's tables."""

COLOR_TABLE_SEED = 20201109
"""Seed of our tables: one stream per shift, `SeedSequence([COLOR_TABLE_SEED, index of the shift])`."""

COLOR_TABLE_ENTRIES = 100
GRID_STEP = 0.1
"""`grid_rgb2 - grid_rgb1` in every entry of the benchmark's tables."""


@cache
def generated_color_table(shift: str, seed: int = COLOR_TABLE_SEED, entries: int = COLOR_TABLE_ENTRIES) -> np.ndarray:
    """Our colour table for `shift` ("color_easy" or "color_hard"), `(entries, 4, 3)`, read-only."""
    rng = np.random.default_rng([seed, list(COLOR_STD).index(shift)])
    table = np.clip(DEFAULT_COLORS + rng.normal(0.0, COLOR_STD[shift], (entries, *DEFAULT_COLORS.shape)), 0.0, 1.0)
    table[:, 1] = np.clip(table[:, 0] + GRID_STEP, 0.0, 1.0)
    table.flags.writeable = False
    return table


def load_color_table(path: str | Path) -> np.ndarray:
    """A colour table in the benchmark's JSON format (list of dicts of `COLOR_KEYS` -> RGB in [0, 1])."""
    path = Path(path).expanduser()
    fix = f"pass a JSON list of objects with keys {', '.join(COLOR_KEYS)}, each an RGB triple in [0, 1] (--color-file)"
    try:
        entries = json.loads(path.read_bytes().decode("utf-8"))
    except OSError as error:
        raise InputError(f"cannot read the colour file {path} ({error.strerror}); {fix}") from None
    except UnicodeDecodeError as error:
        raise InputError(f"the colour file {path} is not text (byte {error.start} is not UTF-8); {fix}") from None
    except json.JSONDecodeError as error:
        raise InputError(f"the colour file {path} is not JSON ({error.msg}, line {error.lineno}); {fix}") from None
    try:
        if not isinstance(entries, list) or not entries:
            raise TypeError
        table = np.array([[entry[key] for key in COLOR_KEYS] for entry in entries], dtype=np.float64)
    except (TypeError, KeyError, ValueError):
        raise InputError(f"the colour file {path} has the wrong shape; {fix}") from None
    if table.shape != (len(entries), len(COLOR_KEYS), 3) or not np.all((table >= 0) & (table <= 1)):
        raise InputError(f"the colour file {path} has the wrong shape or values outside [0, 1]; {fix}")
    table.flags.writeable = False
    return table


def spread(table: np.ndarray) -> np.ndarray:
    """Standard deviation of the deviation from the defaults, per key and channel, `(4, 3)`."""
    return (table - DEFAULT_COLORS).std(axis=0)


if __name__ == "__main__":
    import sys

    # With a DMControl-GB data directory as argument, its colour tables are compared too.
    data = Path(sys.argv[1]) if len(sys.argv) > 1 else None
    for shift in COLOR_STD:
        ours = spread(generated_color_table(shift))
        print(f"{shift}: std of the deviation from the defaults (rows {', '.join(COLOR_KEYS)})")
        print("  ours     ", np.array2string(ours, precision=3).replace("\n", "\n            "))
        if data is not None and (data / f"{shift}.json").exists():
            theirs = spread(load_color_table(data / f"{shift}.json"))
            print("  benchmark", np.array2string(theirs, precision=3).replace("\n", "\n            "))
