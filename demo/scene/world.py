"""The scene: a seeded world a CCTV camera looks at, and `render`, which photographs it."""

from __future__ import annotations

import numpy as np

from .builder import Builder
from .layouts import KINDS, LAYOUTS
from .lighting import Lighting
from .noise import grey_noise, rgb_noise
from .objects import Sprite, vehicle
from .raster import FloatImage, Frame, luma
from .traffic import Traffic

# The world is this many view widths wide and the view starts this far into it, so the
# camera can turn up to 0.6 of a view either way and still see real content.
WORLD_WIDTHS = 2.2
VIEW_ORIGIN = 0.6
MAX_PAN = VIEW_ORIGIN

# How far the camera turns for a `scene_changed` clip (fraction of the view width).
SCENE_CHANGE_PAN = {"mild": 0.15, "clear": 0.35}

# Mean number of moving objects in view when `moving` is not given.
DEFAULT_MOVING = {"street": 3.0, "shop": 1.5, "parking": 2.0, "garden": 1.0}


class Scene:
    """A seeded world a CCTV camera looks at; `render` takes one picture of it."""

    def __init__(self, kind: str, seed: int, width: int = 640, height: int = 360) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown scene kind {kind!r}; one of {', '.join(KINDS)}")
        if width < 32 or height < 32:
            raise ValueError("scene must be at least 32x32")
        self.kind = kind
        self.seed = seed
        self.width = width
        self.height = height
        self.world_width = round(width * WORLD_WIDTHS)
        self.origin = round(width * VIEW_ORIGIN)
        self.unit = height / 360.0  # layout is designed at 360 lines and scaled
        rng = np.random.default_rng([seed, KINDS.index(kind)])
        builder = Builder(height, width, self.world_width, self.origin, rng)
        lanes = LAYOUTS[kind](builder, rng)
        self._lighting = Lighting(
            builder.canvas, height, width, self.world_width, builder.night_ambient
        )
        big = vehicle(rng, 0.19 * height, True, 1)
        self._traffic = Traffic(seed, lanes, big, width, height, self.world_width, self.origin)
        self._view = np.empty((height, width, 3), dtype=np.float32)

    def render(
        self,
        t: float,
        *,
        light: float = 1.0,
        ir: bool = False,
        pan: float = 0.0,
        moving: float | None = None,
        passing: float | None = None,
    ) -> Frame:
        """One RGB uint8 (height, width, 3) picture at time `t` seconds.

        `light` is daylight from 0 (night) to 1; `ir` the camera's infrared night mode
        (R = G = B); `pan` the camera's rotation as a fraction of the view width (within
        +-0.6); `moving` the mean number of people and vehicles in view (0 for an empty
        scene, None for the scene's usual); `passing` the time a lorry passing close to
        the camera enters the view.
        """
        bg, sigma, sigma3, illum = self._lighting.background(light, ir)
        x0 = self.origin + round(max(-MAX_PAN, min(MAX_PAN, pan)) * self.width)
        x1 = x0 + self.width
        # +0.5: rounding for the cast to uint8 at the end.
        view = bg[:, x0:x1] + np.float32(0.5) if ir else np.add(bg[:, x0:x1], 0.5, out=self._view)
        if moving is None:
            moving = DEFAULT_MOVING[self.kind]
        lamps = self._lighting.lamps_on(light)
        for _lane, sprite, x, bottom in self._traffic.at(t, moving, passing):
            self._paste(view, illum, sprite, x - x0, bottom, lamps, ir, light, x0)
        rng = np.random.default_rng([self.seed & 0xFFFFFFFF, round(t * 1000) % (1 << 62)])
        h, w = self.height, self.width
        if ir:
            noise = grey_noise(h, w, rng)
            noise *= sigma[:, x0:x1]
            view += noise
            grey = np.clip(view, 0, 255).astype(np.uint8)
            return np.repeat(grey[:, :, None], 3, axis=2)
        # In place, in reused buffers and in 2-D: at 720p each pass over the frame counts.
        noise = rgb_noise(h, w, rng)
        noise *= sigma3[:, 3 * x0 : 3 * x1]
        flat = view.reshape(h, 3 * w)
        flat += noise
        np.minimum(flat, 255, out=flat)
        np.maximum(flat, 0, out=flat)
        return view.astype(np.uint8)

    def _paste(
        self,
        view: FloatImage,
        illum: FloatImage,
        sprite: Sprite,
        x: int,
        bottom: int,
        lamps: float,
        ir: bool,
        light: float,
        x0: int,
    ) -> None:
        sh, sw = sprite.alpha.shape
        y = bottom - sh
        xa, xb = max(0, x), min(self.width, x + sw)
        ya, yb = max(0, y), min(self.height, y + sh)
        if xa >= xb or ya >= yb:
            return
        alpha = sprite.alpha[ya - y : yb - y, xa - x : xb - x]
        rgb = sprite.rgb[ya - y : yb - y, xa - x : xb - x]
        lit = illum[ya:yb, xa + x0 : xb + x0]
        region = view[ya:yb, xa:xb]
        if ir:
            grey = luma(rgb)
            value = (
                (35 + 0.5 * grey) * np.float32(1.0 - light) * self._lighting.ir_spot[ya:yb, xa:xb]
            )
            value = value + 0.35 * grey * lit
            lights = luma(sprite.lights[ya - y : yb - y, xa - x : xb - x]) * np.float32(lamps)
            value = np.minimum(value + lights, 255)
            region += alpha * (value - region)
        else:
            value = rgb * lit[..., None]
            if lamps > 0:
                value = value + np.float32(lamps) * sprite.lights[ya - y : yb - y, xa - x : xb - x]
            value = np.minimum(value, 255)
            region += alpha[..., None] * (value - region)
