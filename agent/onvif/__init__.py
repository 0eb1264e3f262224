"""ONVIF: finding cameras on the LAN (WS-Discovery) and asking one for its maker, clock,
media profiles and stream URIs (docs/onvif.md). Import from here, not from the modules."""

from agent.onvif.device import (
    DEVICE_TIMEOUT_S,
    DeviceInfo,
    DeviceReading,
    MediaProfile,
    main_profile,
    read_device,
    read_device_async,
    stream_uri,
)
from agent.onvif.discovery import DISCOVERY_TIMEOUT_S, MAX_DEVICES, Announcement, discover

__all__ = [
    "DEVICE_TIMEOUT_S",
    "DISCOVERY_TIMEOUT_S",
    "MAX_DEVICES",
    "Announcement",
    "DeviceInfo",
    "DeviceReading",
    "MediaProfile",
    "discover",
    "main_profile",
    "read_device",
    "read_device_async",
    "stream_uri",
]
