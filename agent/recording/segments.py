"""Copies one camera's demuxed packets into MPEG-TS segment files, without re-encoding.

MPEG-TS because a file cut off by a crash or power loss stays playable up to its last
complete packet. Each segment starts on a keyframe; a new one starts at the first
keyframe after `segment_s` seconds of stream time. A segment is hashed (SHA-256) when
it is closed and its row in the index says where, when and how big it is.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import av

from agent.clock_step import BootTime
from agent.errors import AgentError
from agent.recording.index import FootageIndexError, SegmentIndex, sha256_file
from agent.recording.timestamps import PacketCounts, TimestampRepair
from agent.space_reserve import is_disk_full
from agent.streams.source import Packet

log = logging.getLogger(__name__)

SUFFIX = ".ts"


class RecordingError(AgentError):
    """A segment could not be written; `disk_full` when for lack of space."""

    def __init__(self, message: str, *, disk_full: bool = False) -> None:
        super().__init__(message)
        self.disk_full = disk_full


# Told that a segment write failed for lack of space: prune now, before the segment is
# closed (closing writes its index row, which needs a little space too).
MakeRoom = Callable[[], None]


def segment_path(directory: Path, camera: str, start: datetime) -> Path:
    """`<storage>/<camera>/<YYYY-MM-DD>/<HHMMSS.ffffff>Z.ts`, in UTC."""
    day = start.strftime("%Y-%m-%d")
    return directory / camera / day / (start.strftime("%H%M%S.%f") + "Z" + SUFFIX)


def start_of(path: Path) -> datetime | None:
    """The UTC start time a segment's file name records."""
    try:
        day = path.parent.name
        clock = path.name.removesuffix(SUFFIX).removesuffix("Z")
        return datetime.strptime(f"{day} {clock}", "%Y-%m-%d %H%M%S.%f").replace(tzinfo=UTC)
    except ValueError:
        return None


def end_of_segment(path: Path) -> datetime | None:
    """When the footage in a (possibly cut-off) segment ends: its start plus the span of
    its own timestamps."""
    start = start_of(path)
    if start is None:
        return None
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            first = last = None
            for packet in container.demux(stream):
                if packet.pts is None:
                    continue
                first = packet.pts if first is None else min(first, packet.pts)
                last = packet.pts if last is None else max(last, packet.pts)
            if first is None or last is None or stream.time_base is None:
                return None
            return start + timedelta(seconds=float((last - first) * stream.time_base))
    except (av.FFmpegError, OSError, IndexError):
        return None


# A frame interval longer than this is a gap in the stream, not the frame rate.
MAX_FRAME_S = 1.0


def arrival_wall(monotonic_time: float) -> datetime:
    """The UTC time at which a packet arrived, from its monotonic arrival time. The
    stream is read in bursts (see agent.streams.pacing), so a packet may be handled up to
    half a second after it arrived; footage times are arrival times."""
    return datetime.now(UTC) - timedelta(seconds=max(0.0, time.monotonic() - monotonic_time))


class SegmentWriter:
    """One camera's recording while its stream is connected; `close` at disconnect."""

    def __init__(
        self,
        camera: str,
        directory: Path,
        index: SegmentIndex,
        segment_s: float,
        stream: Any,
        counts: PacketCounts | None = None,
        make_room: MakeRoom | None = None,
    ) -> None:
        self.camera = camera
        self._make_room = make_room
        self._directory = directory
        self._index = index
        self._segment_s = segment_s
        self._input = stream
        self._out: Any = None
        self._out_stream: Any = None
        self._segment_id: int | None = None
        self._path: Path | None = None
        self._start: datetime | None = None
        self._start_mono = 0.0  # monotonic arrival of the segment's first packet
        self._first_ts: float | None = None
        self.last_end: datetime | None = None
        self._last: tuple[float, float] | None = None  # (arrival, stream time) last written
        self._frame_s = 0.0  # the stream's frame interval, from its timestamps
        self.counts = counts if counts is not None else PacketCounts()
        self._repair = TimestampRepair(self.counts)

    @property
    def recording(self) -> bool:
        return self._out is not None

    @property
    def segment_start(self) -> datetime | None:
        return self._start if self._out is not None else None

    @property
    def segment_id(self) -> int | None:
        """The index row of the segment being written (None between segments)."""
        return self._segment_id if self._out is not None else None

    def packet(self, packet: Packet) -> None:
        raw = packet.raw
        if raw is None:
            return
        ticks = self._repair.fix(raw, packet.time)
        if ticks is None:
            return  # nothing to time it by; a segment starts at the next good keyframe
        # The repaired time, not the camera's: after a restarted clock the camera's runs
        # backwards and a segment would never be due.
        stream_time = ticks * self._repair.seconds_per_tick
        # Half a frame of slack: camera timestamps jitter by milliseconds, and a keyframe
        # at 59.98 s must end a 60 s segment rather than the next one at 62 s.
        due = (
            self._first_ts is not None
            and stream_time - self._first_ts >= self._segment_s - self._frame_s / 2
        )
        if self._out is not None and packet.keyframe and due:
            path = self._path
            if self.close(at=packet.time):
                # The muxer buffers: a full disk may show only when the file is finished.
                raise RecordingError(
                    f"camera {self.camera}: finishing {path}: no space left", disk_full=True
                )
        if self._out is None:
            if not packet.keyframe:
                return
            self._open(stream_time, packet.time)
        if self._last is not None and stream_time > self._last[1]:
            self._frame_s = min(stream_time - self._last[1], MAX_FRAME_S)
        self._last = (packet.time, stream_time)
        raw.stream = self._out_stream
        try:
            self._out.mux(raw)
        except OSError as exc:  # the disk (av.error.OSError is one too): not the stream's
            full = is_disk_full(exc)
            if full and self._make_room is not None:
                self._make_room()
            self.close(partial=True)
            raise RecordingError(
                f"camera {self.camera}: writing {self._path}: {exc}", disk_full=full
            ) from exc
        except av.FFmpegError as exc:
            # What the repair did not foresee ends this segment, not the recording: the
            # next keyframe starts a new one with a fresh muxer.
            self.counts.mux_errors += 1
            log.warning(
                "camera %s: the muxer refused a packet (%s); %s ends here, the next "
                "keyframe starts a new segment",
                self.camera,
                exc,
                self._path,
            )
            path = self._path
            if self.close(partial=True, at=packet.time):
                raise RecordingError(
                    f"camera {self.camera}: finishing {path}: no space left", disk_full=True
                ) from exc

    def _open(self, stream_time: float, arrived: float) -> None:
        # The one reading of the wall clock per segment: its start. Everything after is
        # the monotonic clock, so a step of the wall clock cannot stretch a segment.
        start = arrival_wall(arrived)
        path = segment_path(self._directory, self.camera, start)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            out = av.open(str(path), "w", format="mpegts")
            self._out_stream = out.add_stream_from_template(self._input)
        except (av.FFmpegError, OSError) as exc:
            full = is_disk_full(exc)
            if full and self._make_room is not None:
                self._make_room()
            raise RecordingError(
                f"camera {self.camera}: cannot create {path}: {exc}", disk_full=full
            ) from exc
        try:
            segment_id = self._index.begin(self.camera, path, start)
        except FootageIndexError as exc:
            # No row, no footage: a file nobody can find would only take space.
            with contextlib.suppress(av.FFmpegError, OSError):
                out.close()
            path.unlink(missing_ok=True)
            full = exc.__cause__ is not None and is_disk_full(exc.__cause__)
            if full and self._make_room is not None:
                self._make_room()
            raise RecordingError(f"camera {self.camera}: {exc}", disk_full=full) from exc
        self._out = out
        self._path = path
        self._start = start
        self._start_mono = arrived
        self._first_ts = stream_time
        self._segment_id = segment_id

    def close(self, *, partial: bool = False, at: float | None = None) -> bool:
        """Finish the current segment: trailer, fsync, hash, index row closed. It ends
        at monotonic time `at` (where the next segment starts) or, when the stream stops,
        with its last frame; its length is monotonic time, its start the wall clock's.
        True when finishing it met a full disk (it is then kept as 'partial')."""
        out, self._out = self._out, None
        if out is None or self._path is None or self._segment_id is None:
            return False
        full = False
        if at is not None:
            end_mono = at
        elif self._last is not None:  # the stream stopped: footage ends with its last frame
            end_mono = self._last[0] + self._frame_s
        else:
            end_mono = time.monotonic()
        assert self._start is not None
        end = self._start + timedelta(seconds=max(0.0, end_mono - self._start_mono))
        boot = BootTime.now()
        boot_end_us = round((boot.seconds - (time.monotonic() - end_mono)) * 1e6)
        try:
            out.close()
        except (av.FFmpegError, OSError) as exc:
            log.warning("camera %s: closing %s: %s", self.camera, self._path, exc)
            partial = True
            full = is_disk_full(exc)
            if full and self._make_room is not None:
                self._make_room()
        try:
            with open(self._path, "rb") as fh:
                os.fsync(fh.fileno())
            size, digest = sha256_file(self._path)
        except OSError as exc:
            log.error(
                "camera %s: segment %s unreadable after writing: %s", self.camera, self._path, exc
            )
            with contextlib.suppress(FootageIndexError):  # else settled at the next start
                self._index.mark(self._segment_id, "missing")
            return full
        try:
            self._index.close(
                self._segment_id,
                end,
                size,
                digest,
                partial=partial,
                boot=(boot.boot_id, boot_end_us),
            )
        except FootageIndexError as exc:
            # Left 'writing': the next start settles the row from the file (index.recover).
            log.error("camera %s: cannot seal segment %s: %s", self.camera, self._path, exc)
        self.last_end = end
        return full
