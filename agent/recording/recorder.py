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

from agent.clock_step import ClockWatch
from agent.recording.index import FootageIndexError, SegmentIndex
from agent.recording.segments import MakeRoom, RecordingError, SegmentWriter, arrival_wall
from agent.recording.timestamps import PacketCounts
from agent.streams.source import Packet

log = logging.getLogger(__name__)

# Packets arrive but none was written for this long: the recording has stopped.
STALLED_AFTER_S = 30.0
# Why footage is missing while a full disk stopped the recording (a gap row's reason).
STORAGE_FULL_GAP = "storage_full"

# True when the footage disk has room for recording to go on (Storage.has_room).
HasRoom = Callable[[], bool]


# The gap reason where the wall clock was stepped: footage times jump there (forward: a
# span with no footage; back: zero length, where times start again from earlier).
CLOCK_STEP_GAP = "clock_step"


class CameraRecorder:
    """Each call names its `owner` (the camera's worker; tests may leave it out). Only the
    owner that connected last records; a worker the supervisor abandoned (`abandon`)
    never records again, even if the call it was stuck in returns one day."""

    def __init__(
        self,
        camera: str,
        directory: Path,
        index: SegmentIndex,
        segment_s: float,
        clock_watch: ClockWatch | None = None,
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
        # (owner, writer) in one attribute, read once per packet: an abandoned worker
        # can never pick up its successor's writer between two reads.
        self._current: tuple[object, SegmentWriter] | None = None
        # Writers left open by abandoned owners; each closes its own if it ever returns.
        self._orphans: dict[object, SegmentWriter | None] = {}
        self._last_packet_at: float | None = None
        self._lock = threading.Lock()
        # Footage stops where the last run's did: the time the agent was down is a gap.
        # (Where its last footage ends, not its latest time: after a step back of the
        # wall clock that would lie ahead of the clock, and no gap would be recorded.)
        self._gap_from = index.summary(camera, datetime.now(UTC)).newest
        self._gap_reason = "agent_stopped"
        self._last_write = time.monotonic()
        self._failed = False
        # Over the agent's life, not a connection's: health shows how odd the camera is.
        self.counts = PacketCounts()
        self._clock_watch = clock_watch
        self._steps_seen = clock_watch.steps if clock_watch is not None else 0
        # The segment a wall-clock step fell in; the next one starts on the new clock.
        self._stepped_segment: int | None = None

    def connected(self, stream: Any, owner: object = None) -> None:
        if stream is None:
            return
        with self._lock:
            if owner in self._orphans:
                return
            writer = SegmentWriter(
                self.camera,
                self._directory,
                self._index,
                self._segment_s,
                stream,
                self.counts,
                make_room=self._make_room,
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
        if current is None or current[0] is not owner:
            return
        writer = current[1]
        if self._failed:
            if not (self._disk_full and packet.keyframe and self._room()):
                return
            log.info("camera %s: the disk has room again; recording resumes", self.camera)
            self._failed = False
        # At keyframes only, not every packet (hundreds a second): a segment starts only at
        # one, so the segment a step fell in is still the open one when it is seen.
        if self._clock_watch is not None and packet.keyframe:
            steps = self._clock_watch.check()  # before the packet may start a segment
            if steps != self._steps_seen:
                self._steps_seen = steps
                self._clock_stepped(writer.segment_id)
        was_recording = writer.recording
        try:
            writer.packet(packet)
        except RecordingError as exc:
            self._stopped_by(exc, writer)
            return
        if was_recording and not writer.recording and self._gap_from is None:
            # The muxer refused a packet and ended the segment; the next keyframe starts
            # the next one, and the time between is a gap with its reason.
            self._gap_from = writer.last_end
            self._gap_reason = "muxer_refused"
        if writer.recording:
            if packet.keyframe and not self._room():
                # Footage is about to fill the disk (or to take the state reserve's space):
                # prune now rather than at the next pruning pass or a failed write.
                self._make_room_now()
            self._last_write = time.monotonic()
            self._last_packet_at = packet.time
            if not was_recording and self._gap_from is not None:
                start = writer.segment_start
                stepped = self._gap_reason == CLOCK_STEP_GAP
                if start is not None and (start > self._gap_from or stepped):
                    gap_from = min(self._gap_from, start)
                    self._add_gap(gap_from, start, self._gap_reason)
                self._gap_from = None
            elif self._stepped_segment not in (None, writer.segment_id):
                self._step_gap(writer)
            self._disk_full = False

    def _add_gap(self, start: datetime, end: datetime, reason: str) -> None:
        try:
            self._index.add_gap(self.camera, start, end, reason)
        except FootageIndexError as exc:
            # The footage goes on; the gap is missing from the index (and the health's
            # gap count), which the log says.
            log.error(
                "camera %s: cannot record the gap %s to %s (%s): %s",
                self.camera,
                start.isoformat(),
                end.isoformat(),
                reason,
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

    def _clock_stepped(self, segment_id: int | None) -> None:
        """The wall clock was stepped: mark the segment it fell in; the gap between it and
        the next (on the new clock) is recorded when that one starts."""
        if segment_id is None:
            self._gap_reason = CLOCK_STEP_GAP  # between connections: that gap holds it
            return
        self._index.mark_clock_step(segment_id)
        self._stepped_segment = segment_id

    def _step_gap(self, writer: SegmentWriter) -> None:
        self._stepped_segment = None
        start, before = writer.segment_start, writer.last_end
        if start is None or before is None:
            return
        # A step back leaves no span without footage: a zero-length gap marks the seam.
        self._add_gap(min(before, start), start, CLOCK_STEP_GAP)

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
        self._disk_full = False
        assert writer is not None
        writer.close()
        if self._gap_from is None:
            self._gap_from = writer.last_end or datetime.now(UTC)
            stepped = self._stepped_segment is not None
            self._gap_reason = CLOCK_STEP_GAP if stepped else "no_signal"
        self._stepped_segment = None

    def stalled(self, receiving: bool) -> bool:
        """True when the stream arrives but nothing has been written for a while."""
        return receiving and time.monotonic() - self._last_write > STALLED_AFTER_S
