"""Copies one camera's demuxed packets into MPEG-TS segment files, without re-encoding.

MPEG-TS because a file cut off by a crash or power loss stays playable up to its last
complete packet. Each segment starts on a keyframe; a new one starts at the first
keyframe after `segment_s` seconds of stream time. A segment is hashed (SHA-256) when
it is closed and its row in the index says where, when and how big it is.
"""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import av

from agent.errors import AgentError
from agent.recording.index import SegmentIndex, sha256_file
from agent.streams.source import Packet

log = logging.getLogger(__name__)

SUFFIX = ".ts"


class RecordingError(AgentError):
    """A segment could not be written."""


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


class SegmentWriter:
    """One camera's recording while its stream is connected; `close` at disconnect."""

    def __init__(
        self,
        camera: str,
        directory: Path,
        index: SegmentIndex,
        segment_s: float,
        stream: Any,
    ) -> None:
        self.camera = camera
        self._directory = directory
        self._index = index
        self._segment_s = segment_s
        self._input = stream
        self._out: Any = None
        self._out_stream: Any = None
        self._segment_id: int | None = None
        self._path: Path | None = None
        self._start: datetime | None = None
        self._first_ts: float | None = None
        self.last_end: datetime | None = None

    @property
    def recording(self) -> bool:
        return self._out is not None

    @property
    def segment_start(self) -> datetime | None:
        return self._start if self._out is not None else None

    def packet(self, packet: Packet) -> None:
        raw = packet.raw
        if raw is None or raw.dts is None or packet.stream_time is None:
            return  # the muxer needs timestamps; a segment starts at the next good keyframe
        due = self._first_ts is not None and packet.stream_time - self._first_ts >= self._segment_s
        if self._out is not None and packet.keyframe and due:
            self.close()
        if self._out is None:
            if not packet.keyframe:
                return
            self._open(packet.stream_time)
        raw.stream = self._out_stream
        try:
            self._out.mux(raw)
        except (av.FFmpegError, OSError) as exc:
            self.close(partial=True)
            raise RecordingError(f"camera {self.camera}: writing {self._path}: {exc}") from exc

    def _open(self, stream_time: float) -> None:
        start = datetime.now(UTC)
        path = segment_path(self._directory, self.camera, start)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            out = av.open(str(path), "w", format="mpegts")
            self._out_stream = out.add_stream_from_template(self._input)
        except (av.FFmpegError, OSError) as exc:
            raise RecordingError(f"camera {self.camera}: cannot create {path}: {exc}") from exc
        self._out = out
        self._path = path
        self._start = start
        self._first_ts = stream_time
        self._segment_id = self._index.begin(self.camera, path, start)

    def close(self, *, partial: bool = False) -> None:
        """Finish the current segment: trailer, fsync, hash, index row closed."""
        out, self._out = self._out, None
        if out is None or self._path is None or self._segment_id is None:
            return
        end = datetime.now(UTC)
        try:
            out.close()
        except (av.FFmpegError, OSError) as exc:
            log.warning("camera %s: closing %s: %s", self.camera, self._path, exc)
            partial = True
        try:
            with open(self._path, "rb") as fh:
                os.fsync(fh.fileno())
            size, digest = sha256_file(self._path)
        except OSError as exc:
            log.error(
                "camera %s: segment %s unreadable after writing: %s", self.camera, self._path, exc
            )
            self._index.mark(self._segment_id, "missing")
            return
        self._index.close(self._segment_id, end, size, digest, partial=partial)
        self.last_end = end
