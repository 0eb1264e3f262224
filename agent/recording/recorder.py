"""One camera's recording as the worker sees it: connect, packets, disconnect, with gaps
recorded as rows (a gap is a fact police need, not silence)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agent.recording.index import FootageIndexError, SegmentIndex
from agent.recording.segments import MakeRoom, RecordingError, SegmentWriter
from agent.streams.source import Packet

log = logging.getLogger(__name__)

# Packets arrive but none was written for this long: the recording has stopped.
STALLED_AFTER_S = 30.0
# Why footage is missing while a full disk stopped the recording (a gap row's reason).
STORAGE_FULL_GAP = "storage_full"

# True when the footage disk has room for recording to go on (Storage.has_room).
HasRoom = Callable[[], bool]


class CameraRecorder:
    def __init__(
        self,
        camera: str,
        directory: Path,
        index: SegmentIndex,
        segment_s: float,
        *,
        make_room: MakeRoom | None = None,
        has_room: HasRoom | None = None,
    ):
        self.camera = camera
        self._directory = directory
        self._index = index
        self._segment_s = segment_s
        self._make_room = make_room
        self._has_room = has_room
        # Set while a full disk keeps the recording stopped: it resumes at the first
        # keyframe after there is room again, not at a reconnect (the stream is fine).
        self._disk_full = False
        self._writer: SegmentWriter | None = None
        self._lock = threading.Lock()
        newest = [s.end for s in index.segments(camera, origin="recorded") if s.end is not None]
        # Footage stops where the last run's did: the time the agent was down is a gap.
        self._gap_from: datetime | None = max(newest) if newest else None
        self._gap_reason = "agent_stopped"
        self._last_write = time.monotonic()
        self._failed = False

    def connected(self, stream: Any) -> None:
        if stream is None:
            return
        with self._lock:
            self._writer = SegmentWriter(
                self.camera,
                self._directory,
                self._index,
                self._segment_s,
                stream,
                make_room=self._make_room,
            )
            self._last_write = time.monotonic()

    def packet(self, packet: Packet) -> None:
        writer = self._writer
        if writer is None:
            return
        if self._failed:
            if not (self._disk_full and packet.keyframe and self._room()):
                return
            log.info("camera %s: the disk has room again; recording resumes", self.camera)
            self._failed = False
        was_recording = writer.recording
        try:
            writer.packet(packet)
        except RecordingError as exc:
            self._stopped_by(exc, writer)
            return
        if writer.recording:
            if packet.keyframe and not self._room():
                # Footage is about to fill the disk (or to take the state reserve's space):
                # prune now rather than at the next pruning pass or a failed write.
                self._make_room_now()
            self._last_write = time.monotonic()
            if not was_recording and self._gap_from is not None:
                start = writer.segment_start
                if start is not None and start > self._gap_from:
                    self._add_gap(self._gap_from, start)
                self._gap_from = None
            self._disk_full = False

    def _add_gap(self, start: datetime, end: datetime) -> None:
        try:
            self._index.add_gap(self.camera, start, end, self._gap_reason)
        except FootageIndexError as exc:
            # The footage goes on; the gap is missing from the index (and the health's
            # gap count), which the log says.
            log.error(
                "camera %s: cannot record the gap %s to %s (%s): %s",
                self.camera,
                start.isoformat(),
                end.isoformat(),
                self._gap_reason,
                exc,
            )

    def _room(self) -> bool:
        return self._has_room is None or self._has_room()

    def _make_room_now(self) -> None:
        if self._make_room is not None:
            self._make_room()

    def _stopped_by(self, exc: RecordingError, writer: SegmentWriter) -> None:
        self._failed = True
        if not exc.disk_full:
            log.error("%s; recording stops until the camera reconnects", exc)
            return
        if not self._disk_full:
            log.error("%s; recording resumes as soon as the disk has room", exc)
        self._disk_full = True
        if self._gap_from is None:
            self._gap_from = writer.last_end or datetime.now(UTC)
            self._gap_reason = STORAGE_FULL_GAP

    @property
    def storage_failed(self) -> bool:
        """True while a full disk keeps this camera's footage from being written."""
        return self._failed and self._disk_full

    def disconnected(self) -> None:
        with self._lock:
            writer, self._writer = self._writer, None
        self._failed = False
        self._disk_full = False
        if writer is None:
            return
        writer.close()
        if self._gap_from is None:
            self._gap_from = writer.last_end or datetime.now(UTC)
            self._gap_reason = "no_signal"

    def stalled(self, receiving: bool) -> bool:
        """True when the stream arrives but nothing has been written for a while."""
        return receiving and time.monotonic() - self._last_write > STALLED_AFTER_S
