"""Synthetic CCTV scenes and camera defects, in numpy only, for the demo camera and the corpus.

A `Scene` is a seeded world wider than the camera's view: building facades, a shop
interior, a car park or a colourful garden, with people and cars crossing it at walking
and driving speeds. `render(t, ...)` photographs it: daylight level (street lamps, lit
windows and shop lighting switch on as it gets dark), an infrared night mode (greyscale,
flat, lit by the camera's own illuminator), the camera's rotation (`pan`) and per-frame
sensor noise that depends on the light. Everything is deterministic from the seed and `t`.

`DEFECTS` maps a problem code of DESIGN.md to a function that spoils a rendered frame
(`blurred`, `too_dark`, `too_bright`, `low_contrast`, `covered`, `colour_cast`, `noisy`),
with `STRENGTHS` for a mild and a clear case. Three problems are made at clip level, not
per frame (tests/support/corpus.py does so):

- `frozen`: the stream keeps flowing but every frame from the onset on is the one picture
  captured at the onset, re-encoded again and again;
- `scene_changed`: the camera is turned: `pan` jumps from 0 to `SCENE_CHANGE_PAN[strength]`;
- `low_fps`: the clip is encoded at a frame rate below the expected minimum.

Only numpy is imported (no OpenCV), so Debian's system Python with python3-numpy can run
it inside the GStreamer demo camera.

Modules: `world` (the `Scene`), `layouts` (the scene kinds), `builder` and `facades`
(pieces of the static world), `canvas`, `textures`, `objects` (people and vehicles),
`traffic` (who is where at time t), `lighting` (day, night, IR), `noise` (sensor noise),
`defects`, `blur` and `raster` (pixel types and drawing primitives).
"""

from __future__ import annotations

import numpy as np  # re-exported: the demo camera seeds its defects with scene.np

from .blur import gaussian_blur
from .defects import (
    CASTS,
    COVERS,
    DEFECTS,
    STRENGTHS,
    VARIANTS,
    Defect,
    apply_gain,
    blurred,
    colour_cast,
    covered,
    defect,
    low_contrast,
    noisy,
    settling_gain,
    too_bright,
    too_dark,
)
from .layouts import KINDS
from .lighting import (
    BACKGROUND_CACHE,
    IR_NOISE_GAIN,
    LAMP_RAMP,
    LAMPS_ON_BELOW,
    LIGHT_STEPS,
    NIGHT_AMBIENT,
    NIGHT_NOISE_GAIN,
    NOISE_FLOOR,
    NOISE_SHOT,
)
from .noise import NOISE_PAD_COLS, NOISE_PAD_ROWS
from .objects import CAR_COLOURS
from .raster import FloatImage, Frame
from .traffic import CAR_VARIANTS, PERSON_VARIANTS, SLOT_S, STRIDE_PHASES
from .world import (
    DEFAULT_MOVING,
    MAX_PAN,
    SCENE_CHANGE_PAN,
    VIEW_ORIGIN,
    WORLD_WIDTHS,
    Scene,
)

__all__ = [
    "BACKGROUND_CACHE",
    "CAR_COLOURS",
    "CAR_VARIANTS",
    "CASTS",
    "COVERS",
    "DEFAULT_MOVING",
    "DEFECTS",
    "IR_NOISE_GAIN",
    "KINDS",
    "LAMPS_ON_BELOW",
    "LAMP_RAMP",
    "LIGHT_STEPS",
    "MAX_PAN",
    "NIGHT_AMBIENT",
    "NIGHT_NOISE_GAIN",
    "NOISE_FLOOR",
    "NOISE_PAD_COLS",
    "NOISE_PAD_ROWS",
    "NOISE_SHOT",
    "PERSON_VARIANTS",
    "SCENE_CHANGE_PAN",
    "SLOT_S",
    "STRENGTHS",
    "STRIDE_PHASES",
    "VARIANTS",
    "VIEW_ORIGIN",
    "WORLD_WIDTHS",
    "Defect",
    "FloatImage",
    "Frame",
    "Scene",
    "apply_gain",
    "blurred",
    "colour_cast",
    "covered",
    "defect",
    "gaussian_blur",
    "low_contrast",
    "noisy",
    "np",
    "settling_gain",
    "too_bright",
    "too_dark",
]
