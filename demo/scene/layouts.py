"""The scene kinds: how a street, a shop, a car park and a garden are laid out.

Each layout paints the static world with a `Builder` and returns the lanes its people
and vehicles move along. Every random draw comes from the scene's seeded generator, in
a fixed order, so the same seed always builds the same world.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .builder import Builder
from .facades import facade
from .objects import vehicle
from .raster import colour, pick
from .traffic import Lane, car_lane, person_lane

Layout = Callable[[Builder, np.random.Generator], list[Lane]]


def build_street(builder: Builder, rng: np.random.Generator) -> list[Lane]:
    """Terraced facades over a pavement, a two-way road with parked cars, lamps and trees."""
    c, h = builder.canvas, builder.height
    base = int(0.62 * h)
    builder.sky(base)
    x = -int(rng.uniform(0, 60) * builder.unit)
    while x < c.w:
        bw = int(rng.uniform(150, 300) * builder.unit)
        top = int(rng.uniform(0.02, 0.22) * h)
        facade(builder, rng, x, x + bw, top, base)
        x += bw + int(rng.uniform(0, 2) * builder.unit)
    kerb = int(0.74 * h)
    c.fill(0, base, c.w, kerb, colour((168, 163, 156), rng, 6), builder.textures.coarse, 0.1)
    tile = max(3, builder.u(14))
    c.albedo[base:kerb:tile] *= 0.8
    c.albedo[base:kerb, ::tile] *= 0.8
    c.fill(0, kerb, c.w, kerb + builder.u(4), (190, 188, 182))
    road_end = int(0.965 * h)
    c.fill(
        0,
        kerb + builder.u(4),
        c.w,
        road_end,
        colour((74, 74, 77), rng, 4),
        builder.textures.fine,
        0.12,
    )
    dash = builder.u(40)
    for dx in range(0, c.w, 2 * dash):
        c.fill(
            dx, int(0.855 * h), dx + dash, int(0.855 * h) + max(1, builder.u(3)), (215, 215, 205)
        )
    c.fill(0, road_end, c.w, h, (176, 172, 165), builder.textures.coarse, 0.1)
    for lx in range(
        int(rng.uniform(60, 200) * builder.unit), c.w, int(rng.uniform(240, 330) * builder.unit)
    ):
        builder.lamp(lx, int(0.71 * h), int(0.26 * h), int(0.78 * h))
    for _ in range(int(rng.integers(1, 4))):
        builder.tree(rng, int(rng.uniform(0, c.w)), int(0.70 * h), 28 * builder.unit)
    for _ in range(int(rng.integers(2, 5))):  # parked cars along the far kerb
        car = vehicle(rng, 0.13 * h, False, 1 if rng.random() < 0.5 else -1)
        px = int(rng.uniform(0, c.w - car.rgb.shape[1]))
        py = int(0.80 * h) - car.rgb.shape[0]
        c.paint(px, py, car.rgb, car.alpha > 0.5)
    return [
        person_lane(0, int(0.705 * h), 0.12 * h, 0.35, rng),
        car_lane(1, int(0.84 * h), 0.14 * h, 0.2, (-1,), rng),
        car_lane(2, int(0.94 * h), 0.16 * h, 0.2, (1,), rng),
        person_lane(3, int(0.998 * h), 0.19 * h, 0.25, rng),
    ]


def build_shop(builder: Builder, rng: np.random.Generator) -> list[Lane]:
    """A shop interior: shelving, a tiled floor, a street door and a counter with a till."""
    c, h, u = builder.canvas, builder.height, builder.unit
    builder.night_ambient = 0.05
    floor_y = int(0.62 * h)
    wall = colour(
        pick(rng, [(225, 222, 210), (200, 215, 210), (230, 210, 185), (190, 195, 205)]), rng, 8
    )
    c.fill(0, 0, c.w, floor_y, wall, builder.textures.coarse, 0.06)
    ceiling = int(0.07 * h)
    c.fill(0, 0, c.w, ceiling, (238, 238, 235))
    for i, lx in enumerate(range(builder.u(40), c.w, builder.u(130))):
        c.fill(
            lx, ceiling - builder.u(8), lx + builder.u(60), ceiling - builder.u(2), (250, 250, 245)
        )
        if i % 2:  # night lighting: every other panel of a closed shop
            c.glow(
                lx,
                ceiling - builder.u(8),
                lx + builder.u(60),
                ceiling - builder.u(2),
                (255, 250, 235),
            )
            c.pool(lx + builder.u(30), int(0.45 * h), builder.u(110), builder.u(130), 0.5)
    # Floor tiles, rows taller towards the camera.
    tiles = [colour(pick(rng, [(200, 196, 188), (170, 160, 150), (215, 215, 215)]), rng, 6)]
    tiles.append(tiles[0] * np.float32(rng.uniform(0.7, 0.9)))
    y, row_h, row = floor_y, 6.0 * u, 0
    while y < h:
        y1 = int(y + row_h)
        tile_w = int(row_h * 2.2)
        for i, tx in enumerate(range(-(row * tile_w // 3) % tile_w - tile_w, c.w, tile_w)):
            c.fill(tx, y, tx + tile_w, y1, tiles[(i + row) % 2], builder.textures.fine, 0.08)
            c.fill(tx, y, tx + 1, y1, (120, 118, 115))
        c.fill(0, y, c.w, y + 1, (120, 118, 115))
        y, row_h, row = y1, row_h * 1.35, row + 1
    # Shelving units full of goods, a door, a counter.
    x = builder.u(10)
    door_at = int(rng.uniform(0.3, 0.7) * c.w)
    while x < c.w:
        if abs(x - door_at) < builder.u(150):
            builder.door(x, floor_y)
            x += builder.u(80)
            continue
        unit_w = int(rng.uniform(90, 150) * u)
        builder.shelves(rng, x, x + unit_w, int(0.14 * h), floor_y)
        x += unit_w + int(rng.uniform(6, 40) * u)
    counter_x = int(rng.uniform(0.45, 0.75) * builder.width) + builder.origin
    top = int(0.56 * h)
    wood = colour(pick(rng, [(140, 95, 60), (90, 60, 40), (200, 200, 200)]), rng, 8)
    c.fill(
        counter_x,
        top,
        counter_x + builder.u(200),
        int(0.86 * h),
        wood,
        builder.textures.coarse,
        0.15,
    )
    c.fill(
        counter_x - builder.u(4), top - builder.u(6), counter_x + builder.u(204), top, wood * 1.2
    )
    c.fill(
        counter_x + builder.u(30),
        top - builder.u(28),
        counter_x + builder.u(60),
        top - builder.u(6),
        (40, 40, 45),
    )
    c.fill(
        counter_x + builder.u(33),
        top - builder.u(26),
        counter_x + builder.u(57),
        top - builder.u(16),
        (90, 140, 160),
    )
    c.glow(
        counter_x + builder.u(33),
        top - builder.u(26),
        counter_x + builder.u(57),
        top - builder.u(16),
        (60, 110, 140),
    )
    return [
        person_lane(0, int(0.80 * h), 0.17 * h, 0.6, rng),
        person_lane(1, int(0.99 * h), 0.23 * h, 0.4, rng),
    ]


def build_parking(builder: Builder, rng: np.random.Generator) -> list[Lane]:
    """A car park: low buildings and trees at the back, two rows of bays, an aisle."""
    c, h, u = builder.canvas, builder.height, builder.unit
    horizon = int(0.2 * h)
    builder.sky(horizon)
    x = 0
    while x < c.w:  # low buildings and trees at the back
        bw = int(rng.uniform(120, 260) * u)
        top = int(rng.uniform(0.08, 0.16) * h)
        col = colour(pick(rng, [(170, 165, 155), (140, 120, 100), (200, 200, 200)]), rng, 8)
        c.fill(x, top, x + bw, int(0.34 * h), col, builder.textures.coarse, 0.1)
        for wx in range(x + builder.u(8), x + bw - builder.u(12), builder.u(22)):
            c.fill(wx, top + builder.u(10), wx + builder.u(12), top + builder.u(22), (70, 85, 100))
            if rng.random() < 0.25:
                c.glow(
                    wx,
                    top + builder.u(10),
                    wx + builder.u(12),
                    top + builder.u(22),
                    (200, 170, 120),
                )
        x += bw
    for tx in range(0, c.w, builder.u(70)):
        builder.tree(rng, tx + int(rng.uniform(0, 40) * u), int(0.34 * h), rng.uniform(18, 30) * u)
    hedge_top, hedge_bottom = int(0.30 * h), int(0.38 * h)
    c.fill(
        0, hedge_top, c.w, hedge_bottom, colour((55, 95, 45), rng, 8), builder.textures.fine, 0.5
    )
    c.ir_boost[hedge_top:hedge_bottom] = 1.0
    c.fill(0, hedge_bottom, c.w, h, colour((85, 86, 88), rng, 5), builder.textures.fine, 0.15)
    c.albedo[hedge_bottom:] *= 1.0 + 0.08 * builder.textures.coarse[hedge_bottom:, :, None]
    # Two rows of bays with parked cars seen from the front, an aisle between them.
    for row_base, scale in ((int(0.52 * h), 0.085 * h), (int(0.90 * h), 0.16 * h)):
        bay = int(2.6 * scale)
        for bx in range(0, c.w, bay):
            c.fill(
                bx,
                row_base - int(1.0 * scale),
                bx + max(1, builder.u(2)),
                row_base + builder.u(3),
                (225, 225, 215),
            )
            if rng.random() < 0.7:
                builder.parked(rng, bx + bay // 2, row_base, scale)
    c.fill(0, int(0.90 * h) + builder.u(3), c.w, int(0.90 * h) + builder.u(6), (225, 225, 215))
    for lx in range(int(rng.uniform(40, 150) * u), c.w, int(rng.uniform(260, 340) * u)):
        builder.lamp(lx, int(0.56 * h), int(0.08 * h), int(0.62 * h))
    return [
        person_lane(0, int(0.55 * h), 0.09 * h, 0.2, rng),
        car_lane(1, int(0.66 * h), 0.10 * h, 0.35, (1, -1), rng, (3.0, 7.0)),
        person_lane(2, int(0.99 * h), 0.17 * h, 0.45, rng),
    ]


def build_garden(builder: Builder, rng: np.random.Generator) -> list[Lane]:
    """A legitimately colourful scene: red brick, blue shutters, a green hedge, flowers."""
    c, h, u = builder.canvas, builder.height, builder.unit
    base = int(0.58 * h)
    builder.sky(base)
    x = -builder.u(20)
    while x < c.w:
        bw = int(rng.uniform(200, 320) * u)
        facade(builder, rng, x, x + bw, int(rng.uniform(0.03, 0.12) * h), base, colourful=True)
        x += bw
    hedge_top, hedge_bottom = int(0.46 * h), int(0.72 * h)
    green = colour((45, 120, 40), rng, 6)
    edge = hedge_top + (8 * u * builder.textures.coarse[hedge_top]).astype(int)
    for col in range(c.w):
        c.albedo[edge[col] : hedge_bottom, col] = green
    c.albedo[hedge_top:hedge_bottom] *= (
        1 + 0.45 * builder.textures.fine[hedge_top:hedge_bottom, :, None]
    )
    c.ir_boost[hedge_top:hedge_bottom] = 1.0
    lawn_bottom = int(0.86 * h)
    c.fill(
        0,
        hedge_bottom,
        c.w,
        lawn_bottom,
        colour((80, 160, 50), rng, 6),
        builder.textures.fine,
        0.25,
    )
    c.ir_boost[hedge_bottom:lawn_bottom] = 1.0
    for _ in range(int(c.w / max(1.0, 3 * u))):  # flowers along the hedge
        fx = int(rng.uniform(0, c.w))
        fy = int(rng.uniform(hedge_bottom, hedge_bottom + 0.06 * h))
        r = max(1, builder.u(2))
        petal = pick(rng, [(220, 30, 40), (240, 200, 30), (150, 40, 170), (240, 120, 160)])
        c.fill(fx - r, fy - r, fx + r + 1, fy + r + 1, petal)
    c.fill(0, lawn_bottom, c.w, h, (205, 190, 160), builder.textures.fine, 0.2)
    for lx in range(int(rng.uniform(60, 200) * u), c.w, int(rng.uniform(280, 360) * u)):
        builder.lamp(lx, lawn_bottom, int(0.4 * h), int(0.85 * h))
    return [person_lane(0, int(0.995 * h), 0.2 * h, 1.0, rng)]


# The order matters: a kind's index seeds its world.
KINDS = ("street", "shop", "parking", "garden")
LAYOUTS: dict[str, Layout] = {
    "street": build_street,
    "shop": build_shop,
    "parking": build_parking,
    "garden": build_garden,
}
