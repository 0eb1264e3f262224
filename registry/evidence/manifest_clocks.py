"""The manifest's `clocks` member (camreg.evidence.v2, docs/evidence.md): how far each
camera's own clock was off the agent's synchronised clock around the footage's window,
checked for shape and said in plain words for police and court.

A camera burns its own time into the picture; the footage's times in the manifest are the
agent's. The readings say how the two relate: "+90 s" means the time shown in the picture
is 90 seconds ahead of the time the package gives for the same moment.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# The sources of readings this registry knows; another is still shown, by its name.
KNOWN_SOURCES = frozenset({"onvif", "rtcp"})
# Offsets within this are said to agree: what a reading over a LAN can tell apart.
AGREES_WITHIN_S = 1.0


def clock_problems(manifest: dict[str, Any], is_time: Callable[[object], bool]) -> list[str]:
    """What makes `clocks` (optional) not what v2 says, in words; [] when absent."""
    if "clocks" not in manifest:
        return []
    clocks = manifest["clocks"]
    if not isinstance(clocks, dict) or not isinstance(clocks.get("cameras"), dict):
        return ["manifest: clocks must be an object with cameras: {camera: [readings]}"]
    cameras = manifest.get("cameras")
    listed: list[Any] = cameras if isinstance(cameras, list) else []
    problems: list[str] = []
    for camera, readings in clocks["cameras"].items():
        where = f"manifest: clocks of camera {camera!r}"
        if camera not in listed:
            problems.append(f"{where}: not a camera of the package")
        if not isinstance(readings, list):
            problems.append(f"{where}: must be a list of readings")
            continue
        for number, reading in enumerate(readings, 1):
            if not _reading_ok(reading, is_time):
                problems.append(
                    f"{where}, reading {number}: needs at (RFC 3339 UTC), offset_s (a number), "
                    "uncertainty_s (a number, at least 0) and source (a name)"
                )
    return problems


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _reading_ok(reading: object, is_time: Callable[[object], bool]) -> bool:
    return (
        isinstance(reading, dict)
        and is_time(reading.get("at"))
        and _number(reading.get("offset_s"))
        and _number(reading.get("uncertainty_s"))
        and reading["uncertainty_s"] >= 0
        and isinstance(reading.get("source"), str)
    )


def clock_words(manifest: dict[str, Any]) -> list[str]:
    """What the package says of each camera's clock, one line per camera; [] for a
    manifest without `clocks` (v1, or an agent that read no camera's clock)."""
    clocks = manifest.get("clocks")
    if not isinstance(clocks, dict):
        return []
    per_camera = clocks.get("cameras") or {}
    lines = []
    for camera in manifest.get("cameras") or []:
        readings = per_camera.get(camera) or []
        if not readings:
            lines.append(f"camera {camera}: its own clock was not read around this window")
            continue
        lines.append(f"camera {camera}: {_said(readings)}")
    return lines


def _ahead(offset: float) -> str:
    if abs(offset) < AGREES_WITHIN_S:
        return f"agreed with the agent's synchronised clock ({offset:+.1f} s)"
    way = "ahead of" if offset > 0 else "behind"
    return f"was {abs(offset):.1f} s {way} the agent's synchronised clock"


def _said(readings: list[dict[str, Any]]) -> str:
    first, last = readings[0], readings[-1]
    sources = sorted({str(r["source"]) for r in readings})
    worst = max(float(r["uncertainty_s"]) for r in readings)
    low = min(float(r["offset_s"]) for r in readings)
    high = max(float(r["offset_s"]) for r in readings)
    if len(readings) == 1:
        when = f"read once, at {first['at']}"
    else:
        when = f"{len(readings)} readings from {first['at']} to {last['at']}"
    if high - low < AGREES_WITHIN_S:
        said = _ahead((low + high) / 2)
    else:
        said = f"was between {low:+.1f} s and {high:+.1f} s off the agent's synchronised clock"
    return (
        f"its own clock (the time in its picture) {said}, within ± {worst:.1f} s "
        f"({when}, from {', '.join(sources)}); positive: the picture's time is ahead of "
        "the package's"
    )
