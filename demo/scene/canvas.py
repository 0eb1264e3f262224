"""The static world as painted layers: colour by day, light emitted at night, lamp pools."""

from __future__ import annotations

import math

import numpy as np

from .raster import FloatImage, Mask


class Canvas:
    """The static world: albedo (colour by day), light emitted at night, lamp light pools."""

    def __init__(self, height: int, width: int) -> None:
        self.h = height
        self.w = width
        self.albedo = np.zeros((height, width, 3), dtype=np.float32)
        self.emissive = np.zeros((height, width, 3), dtype=np.float32)
        self.pools = np.zeros((height, width), dtype=np.float32)
        self.sky = np.zeros((height, width), dtype=bool)
        # Extra near-infrared reflectance (vegetation glows in IR).
        self.ir_boost = np.zeros((height, width), dtype=np.float32)

    def fill(
        self,
        x0: float,
        y0: float,
        x1: float,
        y1: float,
        rgb: np.ndarray | tuple[float, ...],
        texture: FloatImage | None = None,
        amount: float = 0.0,
    ) -> None:
        """Paint a rectangle, optionally modulated by a [-1, 1] texture of full canvas size."""
        xa, xb = max(0, int(x0)), min(self.w, math.ceil(x1))
        ya, yb = max(0, int(y0)), min(self.h, math.ceil(y1))
        if xa >= xb or ya >= yb:
            return
        colour = np.asarray(rgb, dtype=np.float32)
        self.emissive[ya:yb, xa:xb] = 0  # whatever glowed here is now behind this
        if texture is None:
            self.albedo[ya:yb, xa:xb] = colour
        else:
            shade = 1.0 + amount * texture[ya:yb, xa:xb, None]
            self.albedo[ya:yb, xa:xb] = colour * shade

    def paint(self, x: int, y: int, rgb: np.ndarray, mask: Mask) -> None:
        """Paint `rgb` (h, w, 3 or 3) where `mask` (h, w) is set, with top-left at (x, y)."""
        h, w = mask.shape
        xa, xb = max(0, x), min(self.w, x + w)
        ya, yb = max(0, y), min(self.h, y + h)
        if xa >= xb or ya >= yb:
            return
        sub = mask[ya - y : yb - y, xa - x : xb - x]
        region = self.albedo[ya:yb, xa:xb]
        self.emissive[ya:yb, xa:xb][sub] = 0
        if np.ndim(rgb) == 3:
            region[sub] = np.asarray(rgb)[ya - y : yb - y, xa - x : xb - x][sub]
        else:
            region[sub] = rgb

    def glow(
        self, x0: float, y0: float, x1: float, y1: float, rgb: tuple[float, float, float]
    ) -> None:
        """Light emitted at night over a rectangle (a lit window, a lamp head)."""
        xa, xb = max(0, int(x0)), min(self.w, math.ceil(x1))
        ya, yb = max(0, int(y0)), min(self.h, math.ceil(y1))
        if xa < xb and ya < yb:
            self.emissive[ya:yb, xa:xb] = rgb

    def pool(self, cx: float, cy: float, rx: float, ry: float, strength: float) -> None:
        """A soft pool of lamp light (multiplies albedo at night)."""
        xa, xb = max(0, int(cx - 3 * rx)), min(self.w, int(cx + 3 * rx) + 1)
        ya, yb = max(0, int(cy - 3 * ry)), min(self.h, int(cy + 3 * ry) + 1)
        if xa >= xb or ya >= yb:
            return
        ys = (np.arange(ya, yb, dtype=np.float32) - cy) / ry
        xs = (np.arange(xa, xb, dtype=np.float32) - cx) / rx
        self.pools[ya:yb, xa:xb] += strength * np.exp(-0.5 * (ys[:, None] ** 2 + xs[None, :] ** 2))
