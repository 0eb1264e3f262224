"""Sensor noise: unit Gaussian noise cut from cached tables, fast enough for a live camera.

Noise is two slices of a precomputed Gaussian table at random offsets per frame, so a
frame costs a few array operations instead of drawing millions of normals; the offset
ranges make a repeat of the same pattern vanishingly rare.
"""

from __future__ import annotations

import numpy as np

from .raster import FloatImage

NOISE_PAD_ROWS = 97
NOISE_PAD_COLS = 101

_NOISE_BANKS: dict[tuple[int, int], tuple[FloatImage, FloatImage]] = {}


def _noise_banks(h: int, w: int) -> tuple[FloatImage, FloatImage]:
    """A Gaussian table for (h, w) pictures, and a copy with each value repeated 3 times."""
    banks = _NOISE_BANKS.get((h, w))
    if banks is None:
        bank = np.random.default_rng(12345).standard_normal(
            (h + NOISE_PAD_ROWS, 3 * (w + NOISE_PAD_COLS)), dtype=np.float32
        )
        repeated = np.repeat(bank[:, : w + NOISE_PAD_COLS], 3, axis=1)
        banks = _NOISE_BANKS[(h, w)] = (bank, repeated)
    return banks


def rgb_noise(h: int, w: int, rng: np.random.Generator) -> FloatImage:
    """Unit Gaussian sensor noise for an RGB picture, laid out as (h, 3 * w).

    Mostly shared by the three channels of a pixel (luminance noise), partly its own
    (colour noise), as after demosaicing. Windows into cached tables at offsets and signs
    drawn from `rng`: drawing millions of normals per frame is too slow for a live 720p
    camera, and all 2-D operations, because numpy is slow on a trailing axis of 3.
    """
    bank, repeated = _noise_banks(h, w)
    rows = rng.integers(0, NOISE_PAD_ROWS, 2)
    cols = rng.integers(0, NOISE_PAD_COLS, 2)
    signs = rng.choice(np.array([-1.0, 1.0], np.float32), 2)
    shared = repeated[rows[0] : rows[0] + h, 3 * cols[0] : 3 * (cols[0] + w)]
    out = shared * np.float32(0.9 * signs[0])
    out += bank[rows[1] : rows[1] + h, cols[1] : cols[1] + 3 * w] * np.float32(0.45 * signs[1])
    return out


def grey_noise(h: int, w: int, rng: np.random.Generator) -> FloatImage:
    """Unit Gaussian noise of shape (h, w) from the same tables."""
    bank, _ = _noise_banks(h, w)
    rows = rng.integers(0, NOISE_PAD_ROWS, 2)
    cols = rng.integers(0, NOISE_PAD_COLS, 2)
    signs = rng.choice(np.array([-0.8, 0.8], np.float32), 2)  # 0.8, 0.6: unit variance
    out: FloatImage = bank[rows[0] : rows[0] + h, cols[0] : cols[0] + w] * signs[0]
    out += bank[rows[1] : rows[1] + h, cols[1] : cols[1] + w] * (signs[1] * np.float32(0.75))
    return out


def sensor_noise(image: FloatImage, sigma: float, rng: np.random.Generator) -> FloatImage:
    """Luminance-correlated Gaussian noise of about `sigma` levels added to an RGB image."""
    h, w, _ = image.shape
    noise = rgb_noise(h, w, rng)
    noise *= np.float32(sigma)
    out = noise.reshape(h, w, 3)
    out += image
    return out
