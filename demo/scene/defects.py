"""Camera defects made per frame, their strengths and variants, and auto-exposure settling.

`DEFECTS` maps a problem code of DESIGN.md to a function that spoils a rendered frame
(`blurred`, `too_dark`, `too_bright`, `low_contrast`, `covered`, `colour_cast`, `noisy`),
with `STRENGTHS` for a mild and a clear case.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial
from typing import cast

import numpy as np

from .blur import gaussian_blur
from .noise import rgb_noise, sensor_noise
from .raster import Frame, finish, luma

Defect = Callable[[Frame, float, np.random.Generator], Frame]


def blurred(frame: Frame, strength: float, rng: np.random.Generator) -> Frame:
    """Defocus: a Gaussian blur of up to 1 % of the width (sigma); sensor noise stays."""
    sigma = strength * 0.01 * frame.shape[1]
    image = gaussian_blur(frame.astype(np.float32), sigma)
    # The optics blur before the sensor: noise is added back after the blur.
    return finish(sensor_noise(image, 1.5, rng))


def too_dark(frame: Frame, strength: float, rng: np.random.Generator) -> Frame:
    """Underexposure: gain far below 1, the picture crushed into a few levels, more noise."""
    gain = 1.0 - 0.92 * strength
    image = sensor_noise(frame.astype(np.float32) * np.float32(gain), 0.5 + 1.5 * strength, rng)
    step = np.float32(1.0 + 4.0 * strength)
    return finish(np.floor(np.maximum(image, 0) / step) * step)


def too_bright(frame: Frame, strength: float, rng: np.random.Generator) -> Frame:
    """Overexposure: gain and offset that clip most of the picture to white, washed out."""
    image = frame.astype(np.float32) * np.float32(1.0 + 1.6 * strength) + np.float32(90 * strength)
    grey = luma(image)[..., None]
    image = image + np.float32(0.3 * strength) * (grey - image)
    return finish(sensor_noise(np.minimum(image, 255), 1.0, rng))


def low_contrast(frame: Frame, strength: float, rng: np.random.Generator) -> Frame:
    """Fog, haze or a dirty dome: the picture blended towards a flat light grey."""
    amount = np.float32(0.88 * strength)
    haze = np.float32(rng.uniform(150, 175))
    image = frame.astype(np.float32) * (1 - amount) + haze * amount
    return finish(sensor_noise(image, 1.2, rng))


COVERS = {
    # (colour at the centre, light leaking at one edge): black tape, a hand, a lens cap.
    "tape": ((10.0, 10.0, 11.0), 8.0),
    "hand": ((58.0, 34.0, 28.0), 16.0),
    "cap": ((24.0, 24.0, 26.0), 6.0),
}


def covered(
    frame: Frame, strength: float, rng: np.random.Generator, *, variant: str = "hand"
) -> Frame:
    """Something over the lens: almost uniform and dark, a slight gradient, high-gain noise.

    Below full strength a trace of the scene, hugely defocused, still shows through.
    """
    h, w, _ = frame.shape
    colour, leak = COVERS[variant]
    ramp = np.linspace(0.0, 1.0, w, dtype=np.float32)[None, :, None]
    ramp = ramp * np.linspace(0.6, 1.0, h, dtype=np.float32)[:, None, None]
    image = np.asarray(colour, np.float32) * (1.0 + ramp * np.float32(leak / 40.0))
    image = np.broadcast_to(image, frame.shape).astype(np.float32)
    if strength < 1.0:
        trace = gaussian_blur(frame.astype(np.float32), 0.08 * w)
        image = image + np.float32(0.5 * (1.0 - strength)) * trace
    return finish(sensor_noise(image, 3.0, rng))


CASTS = {
    # Per-channel gains at full strength and a lift of the black level.
    "magenta": ((1.45, 0.78, 1.35), 18.0),  # IR-cut filter stuck out in daylight
    "yellow": ((1.2, 1.05, 0.5), 0.0),  # white balance locked on blue sky
    "blue": ((0.58, 0.9, 1.4), 0.0),  # white balance locked on tungsten
}


def colour_cast(
    frame: Frame, strength: float, rng: np.random.Generator, *, variant: str = "magenta"
) -> Frame:
    """Per-channel gains: a failed IR-cut filter (magenta) or a white-balance failure."""
    gains, lift = CASTS[variant]
    g = 1.0 + strength * (np.asarray(gains, np.float32) - 1.0)
    image = frame.astype(np.float32) * g.astype(np.float32) + np.float32(strength * lift)
    return finish(sensor_noise(image, 1.0, rng))


def noisy(frame: Frame, strength: float, rng: np.random.Generator) -> Frame:
    """Very high sensor gain: strong luminance and colour noise over a slightly lifted picture."""
    sigma = 3.0 + 27.0 * strength
    image = frame.astype(np.float32) * np.float32(1 + 0.1 * strength) + np.float32(6 * strength)
    h, w, _ = frame.shape
    # Stronger in the highlights (shot noise), per channel for speed.
    scale = np.sqrt(image * np.float32(1 / 255) + np.float32(0.01))
    scale *= np.float32(0.45 * sigma)
    scale += np.float32(0.55 * sigma)
    noise = rgb_noise(h, w, rng).reshape(h, w, 3)
    noise *= scale
    noise += image
    return finish(noise)


DEFECTS: dict[str, Defect] = {
    "blurred": blurred,
    "too_dark": too_dark,
    "too_bright": too_bright,
    "low_contrast": low_contrast,
    "covered": covered,
    "colour_cast": colour_cast,
    "noisy": noisy,
}

# Variants a clip can choose (functools.partial on the `variant` keyword); the entry in
# DEFECTS uses the first.
VARIANTS: dict[str, tuple[str, ...]] = {
    "covered": ("hand", "tape", "cap"),
    "colour_cast": ("magenta", "yellow", "blue"),
}


def defect(name: str, variant: str | None = None) -> Defect:
    """The defect function for `name`, with a variant (e.g. colour_cast "yellow") if given."""
    function = DEFECTS[name]
    if variant is None:
        return function
    if variant not in VARIANTS.get(name, ()):
        raise ValueError(f"{name} has no variant {variant!r}")
    # Only the functions with variants take the `variant` keyword.
    return partial(cast(Callable[..., Frame], function), variant=variant)


# Mild: a picture a careful viewer calls spoilt but a detector may miss; clear: unusable.
STRENGTHS: dict[str, dict[str, float]] = {
    "mild": {
        "blurred": 0.3,
        "too_dark": 0.6,
        "too_bright": 0.45,
        "low_contrast": 0.6,
        "covered": 0.75,
        "colour_cast": 0.5,
        "noisy": 0.4,
    },
    "clear": dict.fromkeys(DEFECTS, 1.0),
}


def settling_gain(t: float, onset: float, overshoot: float = 0.6, settle_s: float = 2.0) -> float:
    """Auto-exposure after a sudden light change: brighter by `overshoot`, settled in `settle_s`."""
    if t < onset:
        return 1.0
    # Three time constants within settle_s: within 5 % of the final level.
    return 1.0 + overshoot * math.exp(-3.0 * (t - onset) / settle_s)


def apply_gain(frame: Frame, gain: float) -> Frame:
    """The frame brightened or darkened by `gain`, clipped like a sensor."""
    if gain == 1.0:
        return frame
    return finish(frame.astype(np.float32) * np.float32(gain))
