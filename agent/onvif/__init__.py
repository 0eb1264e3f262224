"""ONVIF: finding cameras on the LAN (WS-Discovery) and asking one for its maker, clock,
media profiles and stream URIs (docs/onvif.md). Import from here, not from the modules.

The names are loaded on first use (PEP 562): the ONVIF client under them (zeep, lxml,
aiohttp) is about 21 MB of resident memory, which an agent without ONVIF cameras must
not pay (bench/cpu_per_camera.py's 150 MB target for 8 cameras)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agent.onvif.device import (
        CLOCK_TIMEOUT_S,
        DEVICE_TIMEOUT_S,
        ClockMeasure,
        DeviceInfo,
        DeviceReading,
        MediaProfile,
        OnvifNoSubStream,
        analysis_profile,
        analysis_stream_uri,
        load_descriptions,
        main_profile,
        measure_clock,
        read_device,
        read_device_async,
        stream_uri,
    )
    from agent.onvif.discovery import DISCOVERY_TIMEOUT_S, MAX_DEVICES, Announcement, discover

_WHERE = {
    **dict.fromkeys(
        (
            "CLOCK_TIMEOUT_S",
            "DEVICE_TIMEOUT_S",
            "ClockMeasure",
            "DeviceInfo",
            "DeviceReading",
            "MediaProfile",
            "OnvifNoSubStream",
            "analysis_profile",
            "analysis_stream_uri",
            "load_descriptions",
            "main_profile",
            "measure_clock",
            "read_device",
            "read_device_async",
            "stream_uri",
        ),
        "agent.onvif.device",
    ),
    **dict.fromkeys(
        ("DISCOVERY_TIMEOUT_S", "MAX_DEVICES", "Announcement", "discover"),
        "agent.onvif.discovery",
    ),
}

__all__ = [
    "CLOCK_TIMEOUT_S",
    "DEVICE_TIMEOUT_S",
    "DISCOVERY_TIMEOUT_S",
    "MAX_DEVICES",
    "Announcement",
    "ClockMeasure",
    "DeviceInfo",
    "DeviceReading",
    "MediaProfile",
    "OnvifNoSubStream",
    "analysis_profile",
    "analysis_stream_uri",
    "discover",
    "load_descriptions",
    "main_profile",
    "measure_clock",
    "read_device",
    "read_device_async",
    "stream_uri",
]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_WHERE[name]), name)
