"""Building fronts: brick or plaster facades with windows on each floor, and shop fronts."""

from __future__ import annotations

import numpy as np

from .builder import Builder
from .raster import colour, pick


def facade(
    builder: Builder,
    rng: np.random.Generator,
    x0: int,
    x1: int,
    top: int,
    base: int,
    colourful: bool = False,
) -> None:
    """A building front: brick or plaster, windows on each floor, a shop front below."""
    c = builder.canvas
    u = builder.unit
    bricks = [(150, 72, 55), (175, 95, 70), (110, 60, 48), (190, 160, 115)]
    plaster = [
        (222, 216, 204),
        (200, 190, 170),
        (150, 150, 148),
        (180, 198, 206),
        (215, 195, 160),
    ]
    brick = colourful or rng.random() < 0.5
    wall = colour(
        pick(rng, [(165, 55, 40)] if colourful else bricks if brick else plaster), rng, 10
    )
    tex = builder.textures.fine if brick else builder.textures.coarse
    c.fill(x0, top, x1, base, wall, tex, 0.12)
    if brick:
        course = max(2, builder.u(4))
        rows = slice(max(0, top), base)
        ys = np.arange(rows.start, rows.stop)
        mortar_rows = ys[(ys - top) % course == 0]
        c.albedo[mortar_rows, x0:x1] = wall * 0.7 + 60
        brick_len = max(4, builder.u(10))
        for row_start in range(top, base, course):
            offset = (brick_len // 2) * (((row_start - top) // course) % 2)
            cols = np.arange(x0 + offset, x1, brick_len)
            c.albedo[row_start : min(base, row_start + course), cols[cols < c.w]] = wall * 0.75 + 45
    # Cornice and roof line.
    c.fill(x0, top, x1, top + builder.u(5), wall * 0.6)
    shop_h = int(0.30 * (base - top)) if base - top > 120 * u else 0
    floor_h = max(builder.u(34), int(rng.uniform(38, 50) * u))
    win_w = int(rng.uniform(18, 28) * u)
    win_h = int(min(floor_h * 0.7, rng.uniform(24, 34) * u))
    pitch = win_w + int(rng.uniform(14, 26) * u)
    frame_c = colour(
        pick(rng, [(235, 235, 230), (60, 55, 50), (120, 70, 40), (40, 60, 45)]), rng, 6
    )
    if colourful:
        frame_c = np.array([245, 245, 240], np.float32)
    shutters = colourful or rng.random() < 0.25
    shutter_c = colour(
        (30, 70, 170) if colourful else pick(rng, [(40, 90, 60), (30, 60, 130), (120, 40, 35)]),
        rng,
        8,
    )
    y = top + builder.u(12)
    first = x0 + (((x1 - x0) - pitch * ((x1 - x0) // pitch)) + pitch - win_w) // 2
    while y + win_h < base - shop_h - builder.u(6):
        for wx in range(first, x1 - win_w, pitch):
            b = builder.u(2)
            c.fill(wx - b, y - b, wx + win_w + b, y + win_h + b, frame_c)
            sky_fraction = np.linspace(1.0, 0.35, win_h, dtype=np.float32)[:, None, None]
            glass = np.array([70, 85, 100], np.float32) * (0.7 + 0.6 * sky_fraction)
            ya, yb = max(0, y), min(c.h, y + win_h)
            xa, xb = max(0, wx), min(c.w, wx + win_w)
            if ya < yb and xa < xb:
                c.albedo[ya:yb, xa:xb] = glass[ya - y : yb - y]
            if rng.random() < 0.5:  # curtains
                curtain = colour(
                    pick(rng, [(220, 215, 200), (180, 160, 130), (150, 60, 60)]), rng, 8
                )
                side = int(win_w * rng.uniform(0.2, 0.4))
                c.fill(wx, y, wx + side, y + win_h, curtain, builder.textures.fine, 0.1)
                c.fill(
                    wx + win_w - side, y, wx + win_w, y + win_h, curtain, builder.textures.fine, 0.1
                )
            c.fill(
                wx + win_w // 2 - max(1, b // 2),
                y,
                wx + win_w // 2 + max(1, b // 2),
                y + win_h,
                frame_c,
            )
            if shutters:
                sw = max(2, win_w // 2)
                c.fill(
                    wx - b - sw,
                    y - b,
                    wx - b,
                    y + win_h + b,
                    shutter_c,
                    builder.textures.slats,
                    0.2,
                )
                c.fill(
                    wx + win_w + b,
                    y - b,
                    wx + win_w + b + sw,
                    y + win_h + b,
                    shutter_c,
                    builder.textures.slats,
                    0.2,
                )
            if rng.random() < 0.25:  # lit at night
                c.glow(wx, y, wx + win_w, y + win_h, (190, 150, 95))
                c.pool(wx + win_w / 2, y + win_h / 2, win_w, win_h, 0.12)
        y += floor_h
    if shop_h:
        shopfront(builder, rng, x0, x1, base - shop_h, base, colourful)


def shopfront(
    builder: Builder,
    rng: np.random.Generator,
    x0: int,
    x1: int,
    top: int,
    base: int,
    colourful: bool,
) -> None:
    """A shop front: sign, perhaps an awning, a window full of goods and a door."""
    c = builder.canvas
    surround = colour(pick(rng, [(50, 50, 55), (120, 30, 30), (30, 60, 50), (200, 200, 195)]), rng)
    c.fill(x0, top, x1, base, surround)
    sign_h = max(4, (base - top) // 5)
    sign = colour(
        pick(rng, [(200, 40, 40), (30, 80, 160), (240, 200, 40), (40, 40, 40), (30, 120, 70)]),
        rng,
    )
    c.fill(x0 + builder.u(4), top + builder.u(2), x1 - builder.u(4), top + sign_h, sign)
    letters = np.arange(x0 + builder.u(12), x1 - builder.u(16), max(3, builder.u(9)))
    for lx in letters[: len(letters) * 2 // 3]:
        c.fill(
            lx,
            top + sign_h * 0.3,
            lx + max(2, builder.u(5)),
            top + sign_h * 0.75,
            (245, 245, 235) if sign.mean() < 150 else (30, 30, 30),
        )
    if rng.random() < 0.5 or colourful:  # awning stripes
        a = sign_h
        stripe = max(2, builder.u(6))
        for i, sx in enumerate(range(x0, x1, stripe)):
            c.fill(
                sx,
                top + sign_h,
                sx + stripe,
                top + sign_h + a,
                sign if i % 2 else (235, 235, 230),
            )
    glass_top = top + sign_h * 2 + builder.u(2)
    door_w = max(6, builder.u(22))
    door_x = x0 + int(rng.uniform(0.15, 0.75) * (x1 - x0 - door_w))
    c.fill(
        x0 + builder.u(6),
        glass_top,
        x1 - builder.u(6),
        base - builder.u(4),
        (55, 62, 68),
        builder.textures.coarse,
        0.25,
    )
    # Goods in the window.
    for _ in range(int((x1 - x0) / max(4, builder.u(12)))):
        gx = rng.uniform(x0 + builder.u(8), x1 - builder.u(16))
        gh = rng.uniform(8, 22) * builder.unit
        c.fill(
            gx,
            base - builder.u(6) - gh,
            gx + rng.uniform(5, 12) * builder.unit,
            base - builder.u(6),
            colour(tuple(rng.uniform(40, 230, 3)), rng, 0),
        )
    c.fill(door_x, glass_top - builder.u(2), door_x + door_w, base, (35, 35, 38))
    c.fill(
        door_x + builder.u(3),
        glass_top + builder.u(2),
        door_x + door_w - builder.u(3),
        base - builder.u(4),
        (75, 80, 85),
    )
    if rng.random() < 0.5:  # some shop windows stay lit at night
        c.glow(x0 + builder.u(6), glass_top, x1 - builder.u(6), base - builder.u(4), (110, 100, 80))
        c.pool((x0 + x1) / 2, base + builder.u(10), (x1 - x0) / 2, builder.u(25), 0.15)
