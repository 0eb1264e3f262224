"""People and vehicles moving through the world: lanes, and who is where at time t.

Each lane has spawn slots; whether a slot spawns an object, when, how fast and which
sprite are hashed from (seed, lane, slot), so any time can be rendered directly, in any
order, and always shows the same traffic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .objects import Sprite, person, vehicle

STRIDE_PHASES = 4
PERSON_VARIANTS = 6
CAR_VARIANTS = 6
# Minimum spacing of spawn slots per lane, s: keeps density plausible.
SLOT_S = 1.5

_M64 = (1 << 64) - 1


def _mix64(z: int) -> int:
    """splitmix64's finaliser: a cheap, good integer hash."""
    z = (z + 0x9E3779B97F4A7C15) & _M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
    return z ^ (z >> 31)


def _uniforms(count: int, *keys: int) -> list[float]:
    """`count` deterministic uniforms in [0, 1) from integer keys (cheaper than a Generator)."""
    z = 0
    for key in keys:
        z = _mix64(z ^ (key & _M64))
    out = []
    for _ in range(count):
        z = _mix64(z)
        out.append((z >> 11) / float(1 << 53))
    return out


@dataclass
class Lane:
    """Objects crossing the world along one line at one distance from the camera."""

    index: int
    base_y: int  # bottom of the objects (feet or tyres), px
    px_per_m: float
    speed_mps: tuple[float, float]
    share: float  # of the scene's moving objects
    sprites: list[list[Sprite]]  # variants x animation phases
    facing: list[int]  # per variant: +1 right, -1 left, 0 either (mirrored as needed)

    @property
    def widest(self) -> int:
        """Width of the lane's widest sprite, px."""
        return int(max(s[0].rgb.shape[1] for s in self.sprites))


def person_lane(
    index: int, base_y: int, px_per_m: float, share: float, rng: np.random.Generator
) -> Lane:
    """Pedestrians along one line, walking either way."""
    sprites = []
    for _ in range(PERSON_VARIANTS):
        state = rng.bit_generator.state
        phases = []
        for p in range(STRIDE_PHASES):
            # Same person (same draws) at each phase of the stride.
            rng.bit_generator.state = state
            phases.append(person(rng, px_per_m, p / STRIDE_PHASES))
        sprites.append(phases)
    return Lane(index, base_y, px_per_m, (1.0, 1.7), share, sprites, [0] * len(sprites))


def car_lane(
    index: int,
    base_y: int,
    px_per_m: float,
    share: float,
    directions: tuple[int, ...],
    rng: np.random.Generator,
    speed: tuple[float, float] = (6.0, 12.0),
) -> Lane:
    """Cars along one line, driving in each of `directions` (+1 right, -1 left)."""
    facing = [d for d in directions for _ in range(CAR_VARIANTS)]
    sprites = [[vehicle(rng, px_per_m, False, d)] for d in facing]
    return Lane(index, base_y, px_per_m, speed, share, sprites, facing)


# A moving object placed in the world: (lane, or None for the passing lorry; sprite;
# left x in world pixels; bottom y).
Placed = tuple[Lane | None, Sprite, int, int]


@dataclass(frozen=True)
class Traffic:
    """The lanes of one scene, and the lorry that can pass close to its camera."""

    seed: int
    lanes: list[Lane]
    big: Sprite
    width: int  # of the view, px
    height: int
    world_width: int
    origin: int  # world x of the view's left edge at pan 0

    def at(self, t: float, moving: float, passing: float | None) -> list[Placed]:
        """The moving objects at time t: (lane, sprite, x, bottom y), far to near."""
        out: list[Placed] = []
        if moving > 0:
            total_share = sum(lane.share for lane in self.lanes)
            for lane in self.lanes:
                mean_speed_px = 0.5 * sum(lane.speed_mps) * lane.px_per_m
                in_view_s = (self.width + lane.widest) / mean_speed_px
                rate = moving * lane.share / total_share / in_view_s  # objects per second
                slot = min(SLOT_S, 0.95 / rate)
                chance = rate * slot
                span = self.world_width + 2 * lane.widest
                longest = span / (lane.speed_mps[0] * lane.px_per_m)
                first = math.floor((t - longest) / slot)
                for k in range(first, math.floor(t / slot) + 1):
                    u = _uniforms(5, self.seed, lane.index, k)
                    if u[0] >= chance:
                        continue
                    start = (k + u[1]) * slot
                    if start > t:
                        continue
                    speed = lane.speed_mps[0] + u[2] * (lane.speed_mps[1] - lane.speed_mps[0])
                    speed_px = speed * lane.px_per_m
                    index = int(u[3] * len(lane.sprites))
                    variant = lane.sprites[index]
                    sprite0 = variant[0]
                    direction = lane.facing[index] or (1 if u[4] < 0.5 else -1)
                    travelled = speed_px * (t - start)
                    if travelled > span:
                        continue
                    if direction > 0:
                        x = -lane.widest + travelled
                    else:
                        x = self.world_width + lane.widest - travelled - sprite0.rgb.shape[1]
                    if len(variant) > 1:  # walking: stride phase from distance walked
                        stride_px = 0.75 * lane.px_per_m
                        sprite = variant[int(travelled / stride_px) % len(variant)]
                        if direction < 0:
                            sprite = Sprite(
                                sprite.rgb[:, ::-1], sprite.alpha[:, ::-1], sprite.lights
                            )
                    else:
                        sprite = sprite0
                    out.append((lane, sprite, int(x), lane.base_y))
        out.sort(key=lambda item: item[3])
        if passing is not None:
            big = self.big
            speed_px = 8.0 * 0.19 * self.height  # a lorry at about 30 km/h, close by
            x = self.origin - big.rgb.shape[1] + speed_px * (t - passing)
            if -big.rgb.shape[1] < x < self.world_width:
                out.append((None, big, int(x), int(1.03 * self.height)))
        return out
