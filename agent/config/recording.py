"""Where footage comes from and goes: the `storage:` section and a camera's `recording:`,
either recorded by the agent (record), read from the owner's recorder's folder (directory),
replayed from the owner's recorder by ONVIF Profile G (onvif), or played back by its
maker's RTSP playback URL (playback)."""

import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BeforeValidator, Field, ValidationInfo, field_validator

from contract.config.fields import Bytes, ConfigPath, ConfigSection, Seconds
from contract.durations import parse_size


class StorageConfig(ConfigSection):
    """Where recorded footage lives and how much disk it may use."""

    path: ConfigPath | None = None  # default: <agent.data_dir>/footage
    max_bytes: Bytes = 50 * 1000**3
    min_free_bytes: Annotated[int, BeforeValidator(parse_size), Field(ge=0)] = 2 * 1000**3


class RecordSettings(ConfigSection):
    """The agent records the stream itself into segments."""

    mode: Literal["record"] = "record"
    segment: Seconds = 60.0
    retention: Seconds = 7 * 86400.0


# A moment whose every field differs from the defaults strptime fills in (1900-01-01 00:00),
# so a pattern that leaves out the month or the hour cannot round-trip it.
_PATTERN_PROBE = datetime(2031, 12, 25, 13, 14, 15, tzinfo=UTC)


def _folder_problem(path: Path) -> str | None:
    """Why the agent could not list and read the files in `path`, or None."""
    if not path.exists():
        return f"no such folder: {path}"
    if not path.is_dir():
        return f"not a folder: {path}"
    try:
        with os.scandir(path):
            pass
    except OSError as exc:
        return f"cannot read the folder {path}: {exc.strerror or exc}"
    if not os.access(path, os.R_OK | os.X_OK):
        return f"cannot read the files in {path}: permission denied"
    return None


class DirectorySettings(ConfigSection):
    """The owner's recorder writes files; the agent only reads them."""

    mode: Literal["directory"]
    path: ConfigPath
    pattern: str = "%Y%m%d_%H%M%S.mp4"

    @field_validator("path")
    @classmethod
    def _check_folder(cls, value: Path, info: ValidationInfo) -> Path:
        # Only `camera-agent check` asks: the daemon starts without the folder (a recorder
        # disk mounted late must not keep the cameras' health from being watched), logs a
        # warning and reports recording_stopped until it can read it.
        if isinstance(info.context, dict) and info.context.get("check_folders"):
            problem = _folder_problem(value)
            if problem is not None:
                raise ValueError(problem)
        return value

    @field_validator("pattern")
    @classmethod
    def _check_pattern(cls, value: str) -> str:
        if "%" not in value:
            raise ValueError("must contain strftime fields such as %Y%m%d_%H%M%S")
        parts = value.split("/")
        if value.startswith("/") or any(part in ("", ".", "..") for part in parts):
            raise ValueError(
                "must be a file name relative to path, e.g. %Y%m%d_%H%M%S.mp4 or "
                "%Y/%m/%d/%H%M%S.mp4 (no leading '/', '//', '.' or '..')"
            )
        try:
            parsed = datetime.strptime(_PATTERN_PROBE.strftime(value), value)
        except ValueError as exc:
            raise ValueError(f"cannot be read back as a time ({exc})") from None
        except re.error:  # strptime's own regex: a field given twice (%m ... %m)
            raise ValueError("cannot be read back as a time (a field appears twice)") from None
        if parsed.date() != _PATTERN_PROBE.date() or (parsed.hour, parsed.minute) != (13, 14):
            raise ValueError(
                "must name the date and the time to the minute or finer, e.g. "
                "%Y%m%d_%H%M%S.mp4 (year %Y, month %m, day %d, hour %H, minute %M)"
            )
        return value


# A recorder's source id or name is a short label (ONVIF's Name is at most 64 characters,
# SourceId a URI); anything longer is not one.
MAX_SOURCE_CHARS = 256


class OnvifRecorderSettings(ConfigSection):
    """The owner's recorder (NVR) holds the footage and the agent only reads it, by ONVIF
    Profile G (docs/recorders.md): `source` is this camera's recording source on the
    recorder (its SourceId or Name); the camera's `onvif.url` is the recorder's device
    service."""

    mode: Literal["onvif"]
    source: str

    @field_validator("source")
    @classmethod
    def _check_source(cls, value: str) -> str:
        if not value.strip() or len(value) > MAX_SOURCE_CHARS or not value.isprintable():
            raise ValueError(
                f"must be the recorder's source id or name of this camera (1 to "
                f"{MAX_SOURCE_CHARS} printable characters); `camera-agent discover` does not "
                "list them yet, the recorder's web page does"
            )
        return value


class PlaybackSettings(ConfigSection):
    """The owner's recorder (NVR) holds the footage and has no ONVIF Profile G: the agent
    plays the window back by the maker's own RTSP playback URL (docs/recorders.md).
    `recorder` is the recorder's RTSP address (rtsp://host[:port]), `channel` the camera's
    channel on it (1 = the first), `timezone` the zone the recorder's clock is set to
    (Dahua's URL names local times; Hikvision's are UTC)."""

    mode: Literal["playback"]
    maker: Literal["hikvision", "dahua"]
    recorder: str
    channel: Annotated[int, Field(ge=1, le=256)]
    timezone: str = "UTC"

    @field_validator("recorder")
    @classmethod
    def _check_recorder(cls, value: str) -> str:
        parts = urlsplit(value)
        if (
            parts.scheme != "rtsp"
            or not parts.hostname
            or parts.path not in ("", "/")
            or parts.query
            or parts.username is not None
        ):
            raise ValueError(
                "must be the recorder's RTSP address alone, e.g. rtsp://192.168.1.50:554 (no "
                "path, query or user: the user is the camera's username/password_file)"
            )
        try:
            parts.port  # noqa: B018 - raises on a port out of range
        except ValueError:
            raise ValueError("has a port that is not a number from 1 to 65535") from None
        return value.rstrip("/")

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"{value!r} is not a time zone name such as UTC or Europe/Berlin"
            ) from None
        return value


RecordingConfig = Annotated[
    RecordSettings | DirectorySettings | OnvifRecorderSettings | PlaybackSettings,
    Field(discriminator="mode"),
]
