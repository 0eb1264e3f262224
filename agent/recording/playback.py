"""Recording mode `playback`: the owner's recorder (an NVR without ONVIF Profile G) holds
the footage, and the agent plays a window back by its maker's own RTSP playback URL:

- Hikvision: rtsp://HOST:554/Streaming/tracks/<channel>01?starttime=YYYYMMDDtHHMMSSz
  &endtime=YYYYMMDDtHHMMSSz (UTC);
- Dahua: rtsp://HOST:554/cam/playback?channel=N&subtype=0&starttime=YYYY_MM_DD_HH_MM_SS
  &endtime=YYYY_MM_DD_HH_MM_SS (the recorder's local time: the config's `timezone`).

The URL is plain RTSP, so FFmpeg (PyAV) plays it. What arrives is written by the same
writer as an ONVIF replay (recorder_fetch.copy_window: MPEG-TS, hashed as written, indexed,
byte limit). A recorder is a device on the LAN: footage whose RTCP wall-clock time (when
the recorder sends one) is more than START_SLACK_S from the asked start is refused, footage
running past the window's end is cut, and a playback slower than the window plus a minute
fails.

Health: RTSP has no search, so what the recorder holds is not known; `footage` is null and
no recording problem is reported (docs/recorders.md).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote
from zoneinfo import ZoneInfo

import av

from agent.config import CameraConfig, PlaybackSettings
from agent.onvif.replay import (
    DEADLINE_SLACK_S,
    END_SLACK_S,
    READ_TIMEOUT_S,
    RTP_CLOCK_HZ,
    START_SLACK_S,
    AccessUnit,
)
from agent.recording.index import SegmentIndex
from agent.recording.recorder_fetch import FetchError, copy_window

log = logging.getLogger(__name__)

_START_CODE = b"\x00\x00\x00\x01"


def playback_url(settings: PlaybackSettings, start: datetime, end: datetime) -> str:
    """The maker's playback URL for [start, end) on the recorder's clock (aware times)."""
    if settings.maker == "hikvision":
        form = "%Y%m%dt%H%M%Sz"
        a, b = (t.astimezone(UTC).strftime(form) for t in (start, end))
        return (
            f"{settings.recorder}/Streaming/tracks/{settings.channel}01?starttime={a}&endtime={b}"
        )
    zone = ZoneInfo(settings.timezone)
    form = "%Y_%m_%d_%H_%M_%S"
    a, b = (t.astimezone(zone).strftime(form) for t in (start, end))
    return (
        f"{settings.recorder}/cam/playback?channel={settings.channel}&subtype=0"
        f"&starttime={a}&endtime={b}"
    )


def _with_user(url: str, username: str | None, password: str | None) -> str:
    if username is None:
        return url
    user = quote(username, safe="")
    secret = "" if password is None else ":" + quote(password, safe="")
    return url.replace("rtsp://", f"rtsp://{user}{secret}@", 1)


def playback_units(
    url: str,
    start: datetime,
    end: datetime,
    *,
    username: str | None = None,
    password: str | None = None,
    read_timeout_s: float = READ_TIMEOUT_S,
) -> Iterator[AccessUnit]:
    """Play `url` (the window [start, end) on the recorder's clock) and yield its H.264
    frames, timed from the asked start; cut at the window's end."""
    window_s = (end - start).total_seconds()
    deadline = time.monotonic() + window_s + DEADLINE_SLACK_S
    shown = url.split("?")[0]
    try:
        container = av.open(
            _with_user(url, username, password),
            options={"rtsp_transport": "tcp"},
            timeout=read_timeout_s,
        )
    except av.FFmpegError as exc:
        raise FetchError(f"the recorder's playback at {shown} could not be opened: {exc}") from None
    with container:
        if not container.streams.video:
            raise FetchError(f"the recorder's playback at {shown} holds no video")
        stream = container.streams.video[0]
        if stream.codec_context.name != "h264":
            raise FetchError(
                f"the recorder's playback is {stream.codec_context.name}, not H.264; refused"
            )
        extradata = stream.codec_context.extradata or b""
        parameter_sets = extradata if extradata.startswith(_START_CODE) else b""
        first_pts: int | None = None
        checked = False
        for packet in container.demux(stream):
            if time.monotonic() > deadline:
                raise FetchError(
                    "the recorder's playback took too long; it sent the window slower than "
                    "real time, or without end"
                )
            if packet.pts is None or packet.time_base is None or packet.size == 0:
                continue
            if first_pts is None:
                if not packet.is_keyframe:
                    continue  # nothing before the first keyframe can be shown
                first_pts = packet.pts  # the window's start: the keyframe at or before it
            seconds = float((packet.pts - first_pts) * packet.time_base)
            if not checked:
                checked = _check_start(container.start_time_realtime, start)
            if seconds > window_s + END_SLACK_S:
                log.info("the recorder's playback ran past the window's end; cut off there")
                return
            at = start + timedelta(seconds=seconds)
            if at > end:
                continue
            data = bytes(packet)
            if packet.is_keyframe and parameter_sets and b"\x00\x00\x01\x67" not in data[:64]:
                data = parameter_sets + data
            yield AccessUnit(data, at, round(seconds * RTP_CLOCK_HZ), packet.is_keyframe)
        if not checked:  # a sender report read with the last packets
            _check_start(container.start_time_realtime, start)


def _check_start(realtime_us: int | None, start: datetime) -> bool:
    """Whether the recorder's wall-clock time (RTCP) of the playback is known yet; refuses
    a playback that starts more than START_SLACK_S from the asked start."""
    if realtime_us is None or realtime_us <= 0:
        return False
    began = datetime.fromtimestamp(realtime_us / 1e6, UTC)
    if abs((began - start).total_seconds()) > START_SLACK_S:
        raise FetchError(
            f"the recorder plays back from {began.isoformat()}, not the asked "
            f"{start.isoformat()}; refused (it may ignore the URL's starttime)"
        )
    return True


class PlaybackSource:
    """One camera whose footage lives on a recorder played back by its maker's URL."""

    def __init__(self, camera: CameraConfig, index: SegmentIndex, root: Path) -> None:
        assert isinstance(camera.recording, PlaybackSettings)
        self.camera = camera.id
        self.settings = camera.recording
        self._username = camera.username
        self._password = camera.password
        self._index = index
        self._root = root

    def poll(self) -> None:
        """Nothing to ask: RTSP playback has no search of the recorder's holdings."""

    def oldest(self) -> datetime | None:
        return None  # not known

    def report(self, receiving: bool) -> tuple[dict[str, object] | None, tuple[str, ...]]:
        """Health: the recorder's footage cannot be listed, so `footage` is null (unknown)."""
        return None, ()

    def fetch(self, start: datetime, end: datetime, stop: threading.Event) -> None:
        """Fetch [start, end) (the agent's clock) into the index, unless a copy fetched
        earlier covers it. FetchError says why not."""
        held = [
            s
            for s in self._index.segments(self.camera, start, end)
            if s.state in ("closed", "partial")
        ]
        if (
            held
            and min(s.start for s in held) <= start
            and max(s.end or s.start for s in held) >= end - timedelta(seconds=1)
        ):
            return
        readings = self._index.clock_readings(self.camera, start, start)
        shift = timedelta(seconds=readings[0].offset_s if readings else 0.0)
        password = None if self._password is None else self._password.get_secret_value()
        url = playback_url(self.settings, start + shift, end + shift)
        units = playback_units(
            url, start + shift, end + shift, username=self._username, password=password
        )
        try:
            copy_window(
                self._index,
                self.camera,
                units,
                start,
                end,
                self._root,
                "playback",
                shift=shift,
                stop=stop,
            )
        except FetchError as exc:
            if str(exc).startswith("camera "):
                raise
            raise FetchError(f"camera {self.camera}: {exc}") from None
