"""Day, dusk, night and infrared: the static world as the camera exposes it, with noise levels.

Street lamps, lit windows and shop lighting switch on as daylight fails; the camera's
infrared night mode sees a greyscale, flat world lit by its own illuminator. The noise
sigma of each pixel follows the light, because the camera raises its gain in the dark.
"""

from __future__ import annotations

import numpy as np

from .canvas import Canvas
from .raster import FloatImage, luma

# Daylight below which lamps switch on, and the width of their warm-up ramp.
LAMPS_ON_BELOW = 0.3
LAMP_RAMP = 0.08

# Ambient light at night relative to day, after the camera's auto-exposure: visible
# night is dark but not black (light pollution, long exposure).
NIGHT_AMBIENT = 0.05

# Sensor noise, in 8-bit levels: sigma = gain * (NOISE_FLOOR + NOISE_SHOT * sqrt(level)).
# The camera raises its gain as light falls, so the dark is noisier; IR gain is higher.
NOISE_FLOOR = 0.7
NOISE_SHOT = 0.1
NIGHT_NOISE_GAIN = 3.0
IR_NOISE_GAIN = 3.2

# Backgrounds cached per (light step, IR); light is quantised to this many steps.
LIGHT_STEPS = 256
BACKGROUND_CACHE = 4

# A lit background: picture, noise sigma (h, w), sigma per RGB sample (h, 3 * w) or the
# same (h, w) in IR, and the illumination map.
Background = tuple[FloatImage, FloatImage, FloatImage, FloatImage]


def smoothstep(edge0: float, edge1: float, x: float) -> float:
    """0 below edge0, 1 beyond edge1, a smooth cubic ramp between (either order)."""
    u = min(1.0, max(0.0, (x - edge0) / (edge1 - edge0)))
    return u * u * (3.0 - 2.0 * u)


class Lighting:
    """Exposes a finished world canvas for a daylight level, in colour or infrared."""

    def __init__(
        self, canvas: Canvas, height: int, width: int, world_width: int, night_ambient: float
    ) -> None:
        self._canvas = canvas
        self.height = height
        self.width = width
        self.world_width = world_width
        self._night_ambient = night_ambient
        c = canvas
        np.clip(c.albedo, 0, 255, out=c.albedo)
        # Near-infrared reflectance as the camera sees it under its illuminator: flatter
        # than the visible picture, vegetation bright, the sky black.
        grey = luma(c.albedo)
        ir = 35 + 0.5 * grey + 55 * c.ir_boost
        ir[c.sky] = 12
        self._ir_albedo = ir.astype(np.float32)
        # The illuminator lights the middle and near field most.
        h, w = height, width
        ys = (np.arange(h, dtype=np.float32) / h - 0.62)[:, None] / 0.55
        xs = (np.arange(w, dtype=np.float32) / w - 0.5)[None, :] / 0.65
        self.ir_spot = (0.45 + 0.75 * np.exp(-(xs**2 + ys**2))).astype(np.float32)
        self._ir_world: FloatImage | None = None
        self._cache: dict[tuple[int, bool], Background] = {}

    def lamps_on(self, light: float) -> float:
        """How far the lamps are on at daylight `light`, 0 to 1."""
        return smoothstep(LAMPS_ON_BELOW, LAMPS_ON_BELOW - LAMP_RAMP, light)

    def _ambient(self, light: float) -> float:
        # Auto-exposure keeps the picture usable until deep dusk.
        exposed: float = light**0.6
        return self._night_ambient + (1 - self._night_ambient) * exposed

    def background(self, light: float, ir: bool) -> Background:
        """The static world for this light: picture, noise sigma and illumination maps."""
        step = round(min(1.0, max(0.0, light)) * (LIGHT_STEPS - 1))
        key = (step, ir)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        c = self._canvas
        light = step / (LIGHT_STEPS - 1)
        lamps = self.lamps_on(light)
        ambient = self._ambient(light)
        illum = (ambient + lamps * c.pools).astype(np.float32)
        if ir:
            ir_light = np.float32(1.0 - light)
            visible = luma(c.albedo) * illum
            emitted = luma(c.emissive) * np.float32(0.8 * lamps)
            picture = np.asarray(
                self._ir_albedo * ir_light * self._ir_gain()  # world-wide spot
                + visible * np.float32(0.35)
                + emitted,
                dtype=np.float32,
            )
            gain = IR_NOISE_GAIN
            level = picture
        else:
            picture = c.albedo * illum[..., None] + np.float32(lamps) * c.emissive
            gain = 1.0 + (NIGHT_NOISE_GAIN - 1.0) * (1.0 - light) ** 2
            level = luma(picture)
        np.clip(picture, 0, 255, out=picture)
        raw_sigma = np.float32(gain) * (NOISE_FLOOR + NOISE_SHOT * np.sqrt(np.clip(level, 0, 255)))
        sigma = raw_sigma.astype(np.float32)
        # Also with each value repeated per colour channel, for the RGB noise layout.
        sigma3 = sigma if ir else np.repeat(sigma, 3, axis=1)
        entry = (picture.astype(np.float32), sigma, sigma3, illum)
        if len(self._cache) >= BACKGROUND_CACHE:
            self._cache.pop(next(iter(self._cache)))
        self._cache[key] = entry
        return entry

    def _ir_gain(self) -> FloatImage:
        """The IR illuminator's spot across the whole world (it turns with the camera, but
        a wide flat approximation keeps the background cacheable)."""
        if self._ir_world is None:
            reps = self.ir_spot.mean(axis=1, keepdims=True)
            self._ir_world = np.broadcast_to(reps, (self.height, self.world_width)).astype(
                np.float32
            )
        return self._ir_world
