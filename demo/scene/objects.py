"""Moving objects as sprites: pedestrians mid-stride and cars, lorries or buses side on."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .raster import FloatImage, Mask, box, colour, ellipse, pick


@dataclass(frozen=True)
class Sprite:
    """A drawn object: colour, coverage and its own lights."""

    rgb: FloatImage  # (h, w, 3) albedo
    alpha: FloatImage  # (h, w) coverage 0..1
    lights: FloatImage  # (h, w, 3) light emitted at night (head and tail lights)


def person(rng: np.random.Generator, px_per_m: float, phase: float) -> Sprite:
    """A walking pedestrian seen from the side, `phase` in [0, 1) through a stride."""
    hp = max(8, round(px_per_m * rng.uniform(1.55, 1.92)))
    w = max(4, int(hp * 0.42))
    cx = w / 2
    skin = colour(
        pick(rng, [(224, 180, 150), (190, 140, 105), (140, 95, 70), (95, 65, 50)]), rng, 8
    )
    hair = colour(pick(rng, [(40, 30, 25), (90, 60, 35), (160, 130, 90), (30, 30, 30)]), rng, 8)
    shirt = colour(
        pick(
            rng,
            [
                (40, 50, 90),
                (150, 30, 35),
                (220, 220, 215),
                (30, 30, 30),
                (60, 110, 60),
                (200, 160, 40),
                (120, 120, 125),
                (90, 40, 110),
            ],
        ),
        rng,
    )
    trousers = colour(pick(rng, [(35, 40, 60), (30, 30, 30), (90, 80, 70), (60, 70, 95)]), rng)
    rgb = np.zeros((hp, w, 3), dtype=np.float32)
    alpha = np.zeros((hp, w), dtype=np.float32)
    swing = math.sin(2 * math.pi * phase)

    def put(mask: Mask, value: np.ndarray) -> None:
        rgb[mask] = value
        alpha[mask] = 1.0

    # Legs as sheared boxes: the foot swings, the hip stays.
    leg_top = 0.50 * hp
    ys = np.arange(hp, dtype=np.float32)[:, None] + 0.5
    xs = np.arange(w, dtype=np.float32)[None, :] + 0.5
    reach = np.clip((ys - leg_top) / (hp - leg_top), 0, 1)
    for side in (-1, 1):
        centre = cx + side * 0.02 * hp + side * swing * 0.10 * hp * reach
        leg = (np.abs(xs - centre) < 0.042 * hp) & (ys >= leg_top) & (ys < hp * 0.97)
        put(leg, trousers * (0.85 if side < 0 else 1.0))
        foot = (np.abs(xs - centre - 0.02 * hp) < 0.05 * hp) & (ys >= hp * 0.96)
        put(foot, np.array([25, 22, 20], dtype=np.float32))
    arm_far = box(
        hp,
        w,
        cx - 0.035 * hp - swing * 0.04 * hp,
        0.17 * hp,
        cx + 0.035 * hp - swing * 0.04 * hp,
        0.47 * hp,
    )
    put(arm_far, shirt * 0.75)
    torso = box(hp, w, cx - 0.085 * hp, 0.15 * hp, cx + 0.085 * hp, 0.53 * hp)
    torso |= ellipse(hp, w, cx, 0.18 * hp, 0.085 * hp, 0.05 * hp)
    put(torso, shirt)
    arm = box(
        hp,
        w,
        cx - 0.03 * hp + swing * 0.05 * hp,
        0.17 * hp,
        cx + 0.03 * hp + swing * 0.05 * hp,
        0.48 * hp,
    )
    put(arm, shirt * 0.9)
    put(ellipse(hp, w, cx + swing * 0.05 * hp, 0.495 * hp, 0.03 * hp, 0.03 * hp), skin)
    put(box(hp, w, cx - 0.025 * hp, 0.11 * hp, cx + 0.025 * hp, 0.16 * hp), skin * 0.9)
    put(ellipse(hp, w, cx, 0.07 * hp, 0.052 * hp, 0.064 * hp), skin)
    put(ellipse(hp, w, cx - 0.008 * hp, 0.045 * hp, 0.054 * hp, 0.042 * hp), hair)
    # Round shading across the body.
    rgb *= (0.8 + 0.35 * np.clip(1 - np.abs(xs - cx) / (0.12 * hp), 0, 1))[..., None]
    return Sprite(rgb, alpha, np.zeros_like(rgb))


CAR_COLOURS = [
    (235, 235, 235),
    (25, 25, 28),
    (160, 162, 165),
    (100, 102, 108),
    (140, 25, 30),
    (30, 55, 120),
    (225, 225, 220),
    (70, 75, 60),
    (180, 150, 100),
]


def vehicle(rng: np.random.Generator, px_per_m: float, large: bool, facing: int) -> Sprite:
    """A car (with `large` a lorry or bus) seen from the side, facing +1 right or -1 left."""
    length_m = rng.uniform(9.0, 12.0) if large else rng.uniform(3.9, 4.8)
    height_m = rng.uniform(3.0, 3.5) if large else rng.uniform(1.40, 1.55)
    lw = max(10, round(length_m * px_per_m))
    lh = max(5, round(height_m * px_per_m))
    wheel_r = (0.5 if large else 0.32) * px_per_m
    body = colour(pick(rng, CAR_COLOURS), rng, 6)
    glass = np.array([45, 55, 65], dtype=np.float32)
    rgb = np.zeros((lh, lw, 3), dtype=np.float32)
    alpha = np.zeros((lh, lw), dtype=np.float32)
    lights = np.zeros((lh, lw, 3), dtype=np.float32)
    ys = np.arange(lh, dtype=np.float32)[:, None] + 0.5
    xs = np.arange(lw, dtype=np.float32)[None, :] + 0.5

    def put(mask: Mask, value: np.ndarray | FloatImage) -> None:
        rgb[mask] = value if np.ndim(value) == 1 else np.broadcast_to(value, rgb.shape)[mask]
        alpha[mask] = 1.0

    shade = (1.1 - 0.35 * ys / lh) * np.ones_like(xs)
    if large:
        # Box body with a cab at the front (right), like a lorry or a bus.
        cab_w = 0.2 * lw
        put(box(lh, lw, 0, 0.02 * lh, lw - cab_w - 2, lh - wheel_r), (body * shade[..., None]))
        cab = box(lh, lw, lw - cab_w, 0.18 * lh, lw, lh - wheel_r)
        put(cab, (body * 0.9) * shade[..., None])
        put(box(lh, lw, lw - cab_w * 0.85, 0.24 * lh, lw - cab_w * 0.1, 0.5 * lh), glass)
        for stripe in (0.55, 0.58):
            put(box(lh, lw, 2, stripe * lh, lw - cab_w - 4, stripe * lh + 2), body * 0.6)
        wheel_x = [0.12 * lw, 0.26 * lw, lw - 0.12 * lw]
    else:
        lower_top = 0.45 * lh
        lower = box(lh, lw, 0, lower_top, lw, lh - 0.45 * wheel_r)
        lower &= ~(box(lh, lw, 0, lower_top, 0.04 * lw, lower_top + 0.1 * lh))
        put(lower, body * shade[..., None])
        # Cabin: a trapezoid, longer bonnet at the front.
        top_left, top_right = 0.30 * lw, 0.62 * lw
        foot_left, foot_right = 0.18 * lw, 0.80 * lw
        frac = np.clip((ys - 0.05 * lh) / (lower_top - 0.05 * lh), 0, 1)
        left = top_left + (foot_left - top_left) * frac
        right = top_right + (foot_right - top_right) * frac
        cabin = (ys >= 0.05 * lh) & (ys < lower_top + 1) & (xs >= left) & (xs < right)
        put(cabin, body * shade[..., None])
        inset = 0.06 * lh
        window = (
            (ys >= 0.05 * lh + inset)
            & (ys < lower_top)
            & (xs >= left + inset)
            & (xs < right - inset)
        )
        pillar = np.abs(xs - 0.47 * lw) < 0.012 * lw
        put(window & ~pillar, glass * (0.8 + 0.5 * (1 - frac))[..., None])
        put(box(lh, lw, 0.36 * lw, 0.55 * lh, 0.40 * lw, 0.58 * lh), body * 0.5)
        put(box(lh, lw, 0.62 * lw, 0.55 * lh, 0.66 * lw, 0.58 * lh), body * 0.5)
        wheel_x = [0.19 * lw, 0.81 * lw]
    cy = lh - wheel_r
    for wx in wheel_x:
        put(ellipse(lh, lw, wx, cy, wheel_r, wheel_r), np.array([22, 22, 24], np.float32))
        put(
            ellipse(lh, lw, wx, cy, wheel_r * 0.5, wheel_r * 0.5),
            np.array([150, 150, 155], np.float32),
        )
    # Front (right) head light, rear (left) tail light: lit at night.
    head = box(lh, lw, lw - 0.03 * lw, 0.5 * lh, lw, 0.6 * lh)
    tail = box(lh, lw, 0, 0.5 * lh, 0.025 * lw, 0.6 * lh)
    put(head, np.array([230, 230, 210], np.float32))
    put(tail, np.array([170, 30, 30], np.float32))
    lights[head] = (255, 250, 225)
    lights[tail] = (230, 20, 20)
    if facing < 0:
        rgb, alpha, lights = rgb[:, ::-1], alpha[:, ::-1], lights[:, ::-1]
    return Sprite(
        np.ascontiguousarray(rgb), np.ascontiguousarray(alpha), np.ascontiguousarray(lights)
    )
