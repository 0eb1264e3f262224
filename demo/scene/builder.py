"""The builder of a scene's static world, and the pieces the layouts share.

Layouts are designed at 360 lines and scaled by `unit`; the sky, street lamps, trees,
doors, shop shelving and parked cars are drawn here, building fronts in facades.py.
"""

from __future__ import annotations

import numpy as np

from .canvas import Canvas
from .lighting import NIGHT_AMBIENT
from .objects import CAR_COLOURS
from .raster import colour, ellipse, pick
from .textures import Textures


class Builder:
    """A world wider than the view being painted: its canvas, textures and scale."""

    def __init__(
        self, height: int, width: int, world_width: int, origin: int, rng: np.random.Generator
    ) -> None:
        self.height = height
        self.width = width  # of the camera's view
        self.world_width = world_width
        self.origin = origin  # world x of the view's left edge at pan 0
        self.unit = height / 360.0  # layout is designed at 360 lines and scaled
        self.canvas = Canvas(height, world_width)
        self.night_ambient = NIGHT_AMBIENT
        # Drawn before anything else from `rng`: the first draws of every layout.
        self.textures = Textures.make(rng, height, world_width, self.unit)

    def u(self, value: float) -> int:
        """A length of the 360-line design, in pixels of this world."""
        return round(value * self.unit)

    def sky(self, bottom: int) -> None:
        """A graded sky with clouds above `bottom`."""
        c = self.canvas
        ys = np.linspace(0.0, 1.0, max(1, bottom), dtype=np.float32)[:, None, None]
        top_c = np.array([95, 140, 205], np.float32)
        low_c = np.array([185, 205, 225], np.float32)
        sky = top_c + (low_c - top_c) * ys
        clouds = np.clip(self.textures.cloud[:bottom] * 1.6 - 0.1, 0, 1)[..., None]
        c.albedo[:bottom] = sky * (1 - clouds) + np.float32(235) * clouds
        c.sky[:bottom] = True

    def lamp(self, x: int, foot: int, top: int, light_y: int) -> None:
        """A street lamp: a pole, a head that glows at night and a pool of light below it."""
        c = self.canvas
        pole = max(1, self.u(3))
        c.fill(x - pole // 2, top, x + pole - pole // 2, foot, (60, 62, 64))
        arm = self.u(14)
        c.fill(x, top, x + arm, top + max(1, self.u(2)), (60, 62, 64))
        c.fill(x + arm - self.u(6), top, x + arm + self.u(4), top + self.u(5), (80, 80, 80))
        c.glow(
            x + arm - self.u(5),
            top + self.u(3),
            x + arm + self.u(3),
            top + self.u(6),
            (255, 225, 170),
        )
        c.pool(x + arm, light_y, self.u(70), self.u(30), 1.1)
        c.pool(x + arm, top + self.u(20), self.u(22), self.u(25), 0.8)

    def tree(self, rng: np.random.Generator, x: int, foot: int, size: float) -> None:
        """A tree with a lumpy crown (bright in infrared)."""
        c = self.canvas
        r = int(size)
        trunk = max(2, r // 6)
        c.fill(x - trunk // 2, foot - 2 * r, x + trunk // 2 + 1, foot, (75, 60, 45))
        h, w = 2 * r, 2 * r
        cx, cy = x - r, foot - 3 * r
        crown = ellipse(h, w, r, r, r, r * 0.9)
        for _ in range(5):
            crown |= ellipse(
                h, w, rng.uniform(0.4, 1.6) * r, rng.uniform(0.5, 1.4) * r, 0.45 * r, 0.4 * r
            )
        leaf = colour((60, 100, 45), rng, 10)
        ya, xa = max(0, cy), max(0, cx)
        tex = self.textures.fine[ya : ya + h, xa : xa + w]
        shade = np.ones((h, w), np.float32)
        shade[: tex.shape[0], : tex.shape[1]] += 0.45 * tex
        c.paint(cx, cy, leaf * shade[..., None], crown)
        sub = c.ir_boost[max(0, cy) : cy + h, max(0, cx) : cx + w]
        sub[
            crown[
                max(0, -cy) : max(0, -cy) + sub.shape[0], max(0, -cx) : max(0, -cx) + sub.shape[1]
            ]
        ] = 1.0

    def door(self, x: int, floor_y: int) -> None:
        """A shop's glazed street door."""
        c = self.canvas
        top = int(0.18 * self.height)
        c.fill(x, top, x + self.u(70), floor_y, (70, 70, 75))
        # The street outside, bright by day; at night only a street lamp's glow.
        c.fill(
            x + self.u(5),
            top + self.u(5),
            x + self.u(65),
            floor_y - self.u(2),
            (205, 210, 212),
            self.textures.coarse,
            0.3,
        )
        c.fill(
            x + self.u(5),
            int(floor_y - 0.12 * self.height),
            x + self.u(65),
            floor_y - self.u(2),
            (140, 140, 138),
            self.textures.fine,
            0.2,
        )
        c.glow(x + self.u(5), top + self.u(5), x + self.u(65), top + self.u(40), (40, 38, 30))
        c.fill(
            x + self.u(55),
            int(0.42 * self.height),
            x + self.u(60),
            int(0.47 * self.height),
            (200, 200, 200),
        )

    def shelves(self, rng: np.random.Generator, x0: int, x1: int, top: int, base: int) -> None:
        """A shelving unit full of goods."""
        c = self.canvas
        frame = colour(pick(rng, [(90, 90, 95), (200, 200, 205), (130, 95, 60)]), rng, 6)
        c.fill(x0, top, x1, base, frame * 0.5)
        boards = int(rng.integers(4, 6))
        pitch = (base - top) / boards
        for b in range(boards):
            y0 = int(top + b * pitch)
            shelf_bottom = int(top + (b + 1) * pitch) - self.u(4)
            gx = x0 + self.u(3)
            while gx < x1 - self.u(6):
                gw = int(rng.uniform(4, 14) * self.unit)
                gh = int(rng.uniform(0.45, 0.9) * (shelf_bottom - y0))
                goods = colour(tuple(rng.uniform(30, 240, 3)), rng, 0)
                c.fill(gx, shelf_bottom - gh, min(x1 - self.u(3), gx + gw), shelf_bottom, goods)
                c.fill(
                    gx,
                    shelf_bottom - gh * 0.6,
                    min(x1 - self.u(3), gx + gw),
                    shelf_bottom - gh * 0.4,
                    goods * 0.5 + 110,
                )
                gx += gw + max(1, self.u(1))
            c.fill(x0, shelf_bottom, x1, shelf_bottom + self.u(4), frame)
        c.fill(x0, top, x0 + self.u(4), base, frame)
        c.fill(x1 - self.u(4), top, x1, base, frame)

    def parked(self, rng: np.random.Generator, cx: int, base: int, px_per_m: float) -> None:
        """A parked car seen from the front or back."""
        c = self.canvas
        w, hgt = int(1.8 * px_per_m), int(1.45 * px_per_m)
        body = colour(pick(rng, CAR_COLOURS), rng, 6)
        x0, top = cx - w // 2, base - hgt
        c.fill(x0 + w * 0.12, top, x0 + w * 0.88, top + hgt * 0.45, body)
        c.fill(x0 + w * 0.18, top + hgt * 0.06, x0 + w * 0.82, top + hgt * 0.42, (45, 55, 65))
        c.fill(x0, top + hgt * 0.45, x0 + w, base - hgt * 0.08, body * 0.95)
        c.fill(x0 + w * 0.05, top + hgt * 0.55, x0 + w * 0.2, top + hgt * 0.65, (220, 220, 200))
        c.fill(x0 + w * 0.8, top + hgt * 0.55, x0 + w * 0.95, top + hgt * 0.65, (220, 220, 200))
        c.fill(x0 + w * 0.38, top + hgt * 0.7, x0 + w * 0.62, top + hgt * 0.8, (230, 200, 40))
        c.fill(x0 + w * 0.05, base - hgt * 0.1, x0 + w * 0.2, base, (25, 25, 25))
        c.fill(x0 + w * 0.8, base - hgt * 0.1, x0 + w * 0.95, base, (25, 25, 25))
