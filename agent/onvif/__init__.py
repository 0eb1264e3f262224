"""ONVIF: finding cameras on the LAN (WS-Discovery) and asking one for its maker, clock,
media profiles and stream URIs (docs/onvif.md). Import from here, not from the modules."""

from agent.onvif.device import (
    CLOCK_TIMEOUT_S,
    DEVICE_TIMEOUT_S,
    ClockMeasure,
    DeviceInfo,
    DeviceReading,
    MediaProfile,
    main_profile,
    measure_clock,
    read_device,
    read_device_async,
    stream_uri,
)
from agent.onvif.discovery import DISCOVERY_TIMEOUT_S, MAX_DEVICES, Announcement, discover

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
    "discover",
    "main_profile",
    "measure_clock",
    "read_device",
    "read_device_async",
    "stream_uri",
]
