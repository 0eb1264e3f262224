"""The manifest's `device_clock` member (camreg.evidence.v2, docs/evidence.md): the agent
device's own clock when the package was made, checked for shape and said in plain words.

The times in a manifest are the device's. Whether its clock was synchronised (and by
what, and how far off the kernel thought it was) says how far those times can be trusted;
the RFC 3161 time stamp (timestamp.py) says when the package existed, on a clock the
device does not control.
"""

from __future__ import annotations

from typing import Any

NUMBERS = ("offset_s", "estimated_error_s", "max_error_s")


def _number_or_null(value: object) -> bool:
    return value is None or (isinstance(value, int | float) and not isinstance(value, bool))


def device_clock_problems(manifest: dict[str, Any]) -> list[str]:
    """What makes `device_clock` (optional) not what v2 says, in words; [] when absent."""
    if "device_clock" not in manifest:
        return []
    clock = manifest["device_clock"]
    if (
        not isinstance(clock, dict)
        or not isinstance(clock.get("synced"), bool)
        or not isinstance(clock.get("source"), str)
        or not all(_number_or_null(clock.get(name)) for name in NUMBERS)
    ):
        return [
            "manifest: device_clock needs synced (true or false), source (a name) and "
            "offset_s, estimated_error_s, max_error_s (numbers or null)"
        ]
    return []


def device_clock_words(manifest: dict[str, Any]) -> list[str]:
    """One line on the device's clock; [] for a manifest without `device_clock`."""
    clock = manifest.get("device_clock")
    if not isinstance(clock, dict):
        return []
    if clock["synced"]:
        state = f"synchronised (by {clock['source']})"
    else:
        state = (
            f"NOT synchronised (source {clock['source']}): the package's times rest on a "
            "clock nobody corrected"
        )
    parts = [f"when the package was made the agent's clock was {state}"]
    if clock.get("offset_s") is not None:
        parts.append(f"offset still being corrected {clock['offset_s']:+.6f} s")
    if clock.get("estimated_error_s") is not None:
        parts.append(f"estimated error ± {clock['estimated_error_s']:.6f} s")
    if clock.get("max_error_s") is not None:
        parts.append(f"maximum error {clock['max_error_s']:.6f} s")
    else:
        parts.append("maximum error unknown")
    return ["; ".join(parts)]
