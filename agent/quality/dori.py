"""DORI distances (IEC 62676-4): how far away a camera can detect ... identify a person."""

from __future__ import annotations

import math

# Pixel densities on the subject, in pixels per metre, from IEC 62676-4.
DORI_PX_PER_M = {"detect": 25, "observe": 62, "recognise": 125, "identify": 250}


def dori_distances(width_px: int, fov_deg: float) -> dict[str, float]:
    """Distance in metres at which each DORI density is still reached across the picture.

    At distance d the picture spans 2 d tan(fov/2) metres, so the density is
    width / (2 d tan(fov/2)); solved for d.
    """
    if width_px <= 0 or not 0 < fov_deg < 180:
        raise ValueError("need a positive width and a field of view between 0 and 180 degrees")
    span_per_metre = 2 * math.tan(math.radians(fov_deg) / 2)
    return {
        level: round(width_px / (density * span_per_metre), 1)
        for level, density in DORI_PX_PER_M.items()
    }


def in_plain_words(width_px: int, fov_deg: float, range_m: float | None = None) -> str:
    """What the camera's picture is good for, for an owner."""
    d = dori_distances(width_px, fov_deg)
    text = (
        f"With {width_px} pixels across {fov_deg:g} degrees this camera can identify a person "
        f"up to {d['identify']:g} m away, recognise up to {d['recognise']:g} m, observe up to "
        f"{d['observe']:g} m and detect up to {d['detect']:g} m."
    )
    if range_m is not None and range_m > d["identify"]:
        text += (
            f" It cannot identify anyone at its configured range of {range_m:g} m: a narrower "
            "lens, a higher resolution or a closer position would help."
        )
    return text
