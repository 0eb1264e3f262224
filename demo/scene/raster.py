"""Pixel types and the small drawing primitives every part of a scene uses."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

FloatImage = npt.NDArray[np.float32]
Frame = npt.NDArray[np.uint8]
Mask = npt.NDArray[np.bool_]
RGB = tuple[float, float, float]


def ellipse(h: int, w: int, cx: float, cy: float, rx: float, ry: float) -> Mask:
    """An (h, w) mask of the ellipse centred on (cx, cy) with radii rx, ry."""
    ys, xs = np.ogrid[0:h, 0:w]
    return ((xs + 0.5 - cx) / max(rx, 0.5)) ** 2 + ((ys + 0.5 - cy) / max(ry, 0.5)) ** 2 <= 1.0


def box(h: int, w: int, x0: float, y0: float, x1: float, y1: float) -> Mask:
    """An (h, w) mask of the pixels whose centres lie in [x0, x1) x [y0, y1)."""
    ys, xs = np.ogrid[0:h, 0:w]
    return (xs + 0.5 >= x0) & (xs + 0.5 < x1) & (ys + 0.5 >= y0) & (ys + 0.5 < y1)


def colour(rgb: RGB, rng: np.random.Generator, jitter: float = 12.0) -> FloatImage:
    """`rgb` with a random per-channel jitter, as a float32 (3,) array."""
    return np.clip(np.array(rgb, dtype=np.float32) + rng.normal(0, jitter, 3), 0, 255).astype(
        np.float32
    )


def pick(rng: np.random.Generator, options: Sequence[RGB]) -> RGB:
    """One of `options`, uniformly."""
    return options[int(rng.integers(len(options)))]


def luma(image: FloatImage) -> FloatImage:
    """Rec. 601 luma of an (..., 3) RGB image."""
    return np.asarray(image @ np.array([0.299, 0.587, 0.114], np.float32), dtype=np.float32)


def finish(image: FloatImage) -> Frame:
    """Round and clip to uint8, in place (`image` is always a temporary here)."""
    image += np.float32(0.5)
    np.minimum(image, 255, out=image)
    np.maximum(image, 0, out=image)
    return image.astype(np.uint8)
