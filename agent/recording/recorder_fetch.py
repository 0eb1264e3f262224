"""Fetching a window from the owner's recorder (recording mode `onvif`): the recorder's
replay (agent/onvif/replay.py) is copied into one MPEG-TS file without re-encoding, hashed
as it is written, and indexed like a file of the owner's recorder (origin 'external'), so
that the evidence export packs it as it packs any other footage.

Times: the recorder replays by its own clock. The window is asked for shifted by the
recorder's clock offset (the newest reading, when there is one), and the file is indexed
on the agent's clock; the manifest's `clocks` says by how much the recorder's was off.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import IO

import av

from agent.errors import AgentError
from agent.onvif.replay import RTP_CLOCK_HZ, AccessUnit, ReplayError, ReplaySession
from agent.recording.index import SegmentIndex

log = logging.getLogger(__name__)

# A fetched window may not be larger than this: 1 h of 4K at 16 Mbit/s is 7.2 GB.
MAX_FETCH_BYTES = 8 * 1000**3
# The last frame of a fetch lasts until the next would have come; recorders send 5 to 30
# frames a second, so its end is taken as its start plus this.
LAST_FRAME_S = 0.1
FOLDER = "fetched"


class FetchError(AgentError):
    """The window could not be fetched from the recorder; the message says why."""

    reason = "footage_missing"  # the request's failed reason (DESIGN.md)


@dataclass(frozen=True)
class FetchedFile:
    path: Path
    start: datetime
    end: datetime
    bytes: int
    sha256: str
    frames: int


class _HashingFile:
    """A file that hashes what is written to it, in order: the MPEG-TS muxer only appends,
    so the hash is of the file as it lies on disk, taken as it arrives (no second read)."""

    def __init__(self, target: IO[bytes], limit: int) -> None:
        self._target = target
        self._limit = limit
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.size += len(data)
        if self.size > self._limit:
            raise FetchError(f"the recorder's replay passed {self._limit} bytes; cut off")
        self.digest.update(data)
        return self._target.write(data)

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        self._target.flush()


def fetch_window(
    index: SegmentIndex,
    camera: str,
    replay_uri: str,
    start: datetime,
    end: datetime,
    root: Path,
    *,
    username: str | None = None,
    password: str | None = None,
    clock_offset_s: float = 0.0,
    stop: threading.Event | None = None,
    max_bytes: int = MAX_FETCH_BYTES,
) -> FetchedFile:
    """Copy [start, end) (the agent's clock) of `camera` from its recorder into `root`,
    index it, and return what was written. FetchError names what went wrong; nothing of a
    failed fetch stays on disk or in the index."""
    shift = timedelta(seconds=clock_offset_s)
    session = ReplaySession(
        replay_uri, start + shift, end + shift, username=username, password=password
    )
    return copy_window(
        index,
        camera,
        session.access_units(),
        start,
        end,
        root,
        "replay",
        shift=shift,
        stop=stop,
        max_bytes=max_bytes,
    )


def copy_window(
    index: SegmentIndex,
    camera: str,
    units: Iterable[AccessUnit],
    start: datetime,
    end: datetime,
    root: Path,
    kind: str,
    *,
    shift: timedelta = timedelta(0),
    stop: threading.Event | None = None,
    max_bytes: int = MAX_FETCH_BYTES,
) -> FetchedFile:
    """Copy the frames `units` (already bounded to the window, on the recorder's clock,
    which is the agent's plus `shift`) into one hashed MPEG-TS file in `root`, index it and
    return it (fetch_window's and the vendor playback's common writer). `kind` names the
    file (`replay`, `playback`)."""
    folder = root / FOLDER / camera
    folder.mkdir(parents=True, exist_ok=True)
    # Named by the window: another request's copy (indexed, perhaps held) is never replaced;
    # the same window again is found in the index and not fetched twice (recorder_source).
    stamp = "%Y%m%dT%H%M%S.%fZ"
    path = folder / f"{camera}_{start.strftime(stamp)}_{end.strftime(stamp)}_{kind}.ts"
    if index.external_stamps(camera).get(str(path)) is not None:
        raise FetchError(f"camera {camera}: {path} was fetched before and is indexed")
    path.unlink(missing_ok=True)  # a fetch cut off by a stop before: fetched again
    try:
        fetched = _write(units, path, shift, stop, max_bytes)
    except (ReplayError, FetchError, av.FFmpegError, OSError) as exc:
        path.unlink(missing_ok=True)
        if isinstance(exc, FetchError):
            raise
        raise FetchError(f"camera {camera}: fetching from its recorder failed: {exc}") from None
    mtime_ns = path.stat().st_mtime_ns
    index.add_external(
        camera, path, fetched.start, fetched.end, fetched.bytes, fetched.sha256, mtime_ns
    )
    log.info(
        "camera %s: fetched %s to %s from its recorder: %d frames, %d bytes, sha256 %s",
        camera,
        fetched.start.isoformat(),
        fetched.end.isoformat(),
        fetched.frames,
        fetched.bytes,
        fetched.sha256,
    )
    return fetched


def _write(
    units: Iterable[AccessUnit],
    path: Path,
    shift: timedelta,
    stop: threading.Event | None,
    max_bytes: int,
) -> FetchedFile:
    first: datetime | None = None
    last: datetime | None = None
    frames = 0
    started = False
    with open(path, "xb") as raw:
        sink = _HashingFile(raw, max_bytes)
        out = av.open(sink, "w", format="mpegts")
        try:
            stream = out.add_stream("h264")
            stream.time_base = Fraction(1, RTP_CLOCK_HZ)
            for unit in units:
                if stop is not None and stop.is_set():
                    raise FetchError("the agent is stopping; the fetch is done again at start")
                if not started and not unit.keyframe:
                    continue  # nothing before the first keyframe can be shown
                started = True
                if sink.size + len(unit.data) > max_bytes:  # before the muxer, which would
                    # hide this error behind its own
                    raise FetchError(f"the recorder's replay passed {max_bytes} bytes; cut off")
                packet = av.Packet(unit.data)
                packet.pts = packet.dts = unit.rtp_time
                packet.time_base = stream.time_base
                packet.stream = stream
                packet.is_keyframe = unit.keyframe
                out.mux(packet)
                first = first or unit.at
                last = unit.at
                frames += 1
        finally:
            out.close()
        raw.flush()
        os.fsync(raw.fileno())
    if first is None or last is None:
        raise FetchError("the recorder's replay held no picture for the window")
    return FetchedFile(
        path,
        (first - shift).astimezone(UTC),
        (last - shift + timedelta(seconds=LAST_FRAME_S)).astimezone(UTC),
        sink.size,
        sink.digest.hexdigest(),
        frames,
    )
