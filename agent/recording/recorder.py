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
from agent.recording.segments import RecordingError, SegmentWriter, arrival_wall
from agent.streams.source import Packet

log = logging.getLogger(__name__)

# Packets arrive but none was written for this long: the recording has stopped.
STALLED_AFTER_S = 30.0


class CameraRecorder:
    """Each call names its `owner` (the camera's worker; tests may leave it out). Only the
    owner that connected last records; a worker the supervisor abandoned (`abandon`)
    never records again, even if the call it was stuck in returns one day."""

    def __init__(self, camera: str, directory: Path, index: SegmentIndex, segment_s: float):
        self.camera = camera
        self._directory = directory
        self._index = index
        self._segment_s = segment_s
        # (owner, writer) in one attribute, read once per packet: an abandoned worker
        # can never pick up its successor's writer between two reads.
        self._current: tuple[object, SegmentWriter] | None = None
        # Writers left open by abandoned owners; each closes its own if it ever returns.
        self._orphans: dict[object, SegmentWriter | None] = {}
        self._last_packet_at: float | None = None
        self._lock = threading.Lock()
        newest = [s.end for s in index.segments(camera, origin="recorded") if s.end is not None]
        # Footage stops where the last run's did: the time the agent was down is a gap.
        self._gap_from: datetime | None = max(newest) if newest else None
        self._gap_reason = "agent_stopped"
        self._last_write = time.monotonic()
        self._failed = False

    def connected(self, stream: Any, owner: object = None) -> None:
        if stream is None:
            return
        with self._lock:
            if owner in self._orphans:
                return
            writer = SegmentWriter(
                self.camera, self._directory, self._index, self._segment_s, stream
            )
            self._current = (owner, writer)
            self._last_write = time.monotonic()

    def abandon(self, owner: object = None) -> None:
        """`owner` is stuck and replaced: it records nothing from now on. The gap until
        its successor records starts at its last packet."""
        with self._lock:
            current = self._current
            mine = current is not None and current[0] is owner
            self._orphans[owner] = current[1] if current is not None and mine else None
            if not mine:
                return
            self._current = None
        self._failed = False
        if self._gap_from is None:
            last = self._last_packet_at
            self._gap_from = arrival_wall(last) if last is not None else datetime.now(UTC)
            self._gap_reason = "no_signal"

    def packet(self, packet: Packet, owner: object = None) -> None:
        current = self._current
        if current is None or current[0] is not owner or self._failed:
            return
        writer = current[1]
        was_recording = writer.recording
        try:
            writer.packet(packet)
        except RecordingError as exc:
            log.error("%s; recording stops until the camera reconnects", exc)
            self._failed = True
            return
        if writer.recording:
            self._last_write = time.monotonic()
            self._last_packet_at = packet.time
            if not was_recording and self._gap_from is not None:
                start = writer.segment_start
                if start is not None and start > self._gap_from:
                    self._index.add_gap(self.camera, self._gap_from, start, self._gap_reason)
                self._gap_from = None

    def disconnected(self, owner: object = None) -> None:
        with self._lock:
            orphaned = owner in self._orphans
            if orphaned:
                writer = self._orphans.pop(owner)
            elif self._current is not None and self._current[0] is owner:
                writer, self._current = self._current[1], None
            else:
                return
        if orphaned:
            # An abandoned owner came back: it finishes its own segment, no more.
            if writer is not None:
                writer.close(partial=True)
            return
        self._failed = False
        assert writer is not None
        writer.close()
        if self._gap_from is None:
            self._gap_from = writer.last_end or datetime.now(UTC)
            self._gap_reason = "no_signal"

    def stalled(self, receiving: bool) -> bool:
        """True when the stream arrives but nothing has been written for a while."""
        return receiving and time.monotonic() - self._last_write > STALLED_AFTER_S
