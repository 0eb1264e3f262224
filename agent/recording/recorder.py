"""One camera's recording as the worker sees it: connect, packets, disconnect, with gaps
recorded as rows (a gap is a fact police need, not silence)."""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agent.recording.index import SegmentIndex
from agent.recording.segments import RecordingError, SegmentWriter
from agent.recording.timestamps import PacketCounts
from agent.streams.source import Packet

log = logging.getLogger(__name__)

# Packets arrive but none was written for this long: the recording has stopped.
STALLED_AFTER_S = 30.0


class CameraRecorder:
    def __init__(self, camera: str, directory: Path, index: SegmentIndex, segment_s: float):
        self.camera = camera
        self._directory = directory
        self._index = index
        self._segment_s = segment_s
        self._writer: SegmentWriter | None = None
        self._lock = threading.Lock()
        newest = [s.end for s in index.segments(camera, origin="recorded") if s.end is not None]
        # Footage stops where the last run's did: the time the agent was down is a gap.
        self._gap_from: datetime | None = max(newest) if newest else None
        self._gap_reason = "agent_stopped"
        self._last_write = time.monotonic()
        self._failed = False
        # Over the agent's life, not a connection's: health shows how odd the camera is.
        self.counts = PacketCounts()

    def connected(self, stream: Any) -> None:
        if stream is None:
            return
        with self._lock:
            self._writer = SegmentWriter(
                self.camera, self._directory, self._index, self._segment_s, stream, self.counts
            )
            self._last_write = time.monotonic()

    def packet(self, packet: Packet) -> None:
        writer = self._writer
        if writer is None or self._failed:
            return
        was_recording = writer.recording
        try:
            writer.packet(packet)
        except RecordingError as exc:
            log.error("%s; recording stops until the camera reconnects", exc)
            self._failed = True
            return
        if was_recording and not writer.recording and self._gap_from is None:
            # The muxer refused a packet and ended the segment; the next keyframe starts
            # the next one, and the time between is a gap with its reason.
            self._gap_from = writer.last_end
            self._gap_reason = "muxer_refused"
        if writer.recording:
            self._last_write = time.monotonic()
            if not was_recording and self._gap_from is not None:
                start = writer.segment_start
                if start is not None and start > self._gap_from:
                    self._index.add_gap(self.camera, self._gap_from, start, self._gap_reason)
                self._gap_from = None

    def disconnected(self) -> None:
        with self._lock:
            writer, self._writer = self._writer, None
        self._failed = False
        if writer is None:
            return
        writer.close()
        if self._gap_from is None:
            self._gap_from = writer.last_end or datetime.now(UTC)
            self._gap_reason = "no_signal"

    def stalled(self, receiving: bool) -> bool:
        """True when the stream arrives but nothing has been written for a while."""
        return receiving and time.monotonic() - self._last_write > STALLED_AFTER_S
