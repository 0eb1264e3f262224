"""Smooth random textures (value noise, fractal noise) that shade the static world."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .raster import FloatImage


def value_noise(rng: np.random.Generator, height: int, width: int, cell: float) -> FloatImage:
    """Smooth random texture in [0, 1]: a coarse random grid, bilinearly interpolated."""
    rows = int(height / cell) + 2
    cols = int(width / cell) + 2
    grid = rng.random((rows, cols), dtype=np.float32)
    ys = np.arange(height, dtype=np.float32) / cell
    xs = np.arange(width, dtype=np.float32) / cell
    iy = ys.astype(np.int32)
    ix = xs.astype(np.int32)
    fy = (ys - iy)[:, None]
    fx = (xs - ix)[None, :]
    fy = fy * fy * (3 - 2 * fy)
    fx = fx * fx * (3 - 2 * fx)
    top = grid[iy] * (1 - fy) + grid[iy + 1] * fy
    return np.asarray(top[:, ix] * (1 - fx) + top[:, ix + 1] * fx, dtype=np.float32)


def fbm(rng: np.random.Generator, height: int, width: int, cell: float) -> FloatImage:
    """Three octaves of value noise, centred on 0, roughly in [-1, 1]."""
    total = np.zeros((height, width), dtype=np.float32)
    weight = 0.0
    for octave, amplitude in enumerate((1.0, 0.5, 0.25)):
        size = max(1.0, cell / (3**octave))
        total += amplitude * (value_noise(rng, height, width, size) - 0.5)
        weight += amplitude
    return np.asarray(total * (2.0 / weight), dtype=np.float32)


@dataclass(frozen=True)
class Textures:
    """World-sized textures: fine and coarse in [-1, 1], clouds in [0, 1], slats of +-1."""

    fine: FloatImage
    coarse: FloatImage
    cloud: FloatImage
    slats: FloatImage

    @classmethod
    def make(cls, rng: np.random.Generator, h: int, w: int, unit: float) -> Textures:
        """Draw the textures for an (h, w) world laid out at `unit` pixels per design pixel."""
        fine = fbm(rng, h, w, 6 * unit)
        coarse = fbm(rng, h, w, 40 * unit)
        cloud = value_noise(rng, h, w, 60 * unit) * 0.7 + 0.3 * value_noise(rng, h, w, 15 * unit)
        slat = max(2, round(3 * unit))
        rows = (np.arange(h) % slat < slat // 2 + 1).astype(np.float32) * 2 - 1
        slats = np.broadcast_to(rows[:, None], (h, w)).astype(np.float32)
        return cls(fine, coarse, cloud, slats)
