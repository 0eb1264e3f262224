"""A camera's sub-stream (config `analysis_url`): a second, low-resolution stream of the
same scene, read only for its pictures, while the main stream is recorded.

Decoding a 1080p keyframe is most of what analysing a camera costs; a 640x360 one costs
about a ninth of it (bench/README.md, "Sub-stream"). So a camera with a sub-stream has two
workers, each its own thread that the supervisor watches:

- `camera:<id>` reads the main stream as every camera's worker does: it records every
  packet and measures what describes the recorded stream (fps, bitrate, lost signal,
  frozen by coded frame sizes). It decodes nothing while the sub-stream sends pictures.
- `camera:<id>:sub` reads the sub-stream and decodes one keyframe per analysis interval.

When one of them fails:
- main stream lost: the camera is `offline` (`no_signal`) and not recording, as without a
  sub-stream; the sub-stream's pictures are still analysed, but `no_signal` hides them.
- sub-stream lost (refused, ended, or silent for SUB_SILENT_S): the main stream's
  keyframes are analysed again, logged once, and health says `analysed.stream: main`
  with `fallback: true`, until the sub-stream sends again.
Both reconnect with the usual backoff, each on its own.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Literal

from agent import memory
from agent.quality.assess import PictureOrigin, StreamAssessor
from agent.streams.worker import CameraWorker, KeyframeSampler, OpenSource, Source, analyse

log = logging.getLogger(__name__)

# The sub-stream serves the pictures while its last packet is at most this old; past it
# the main stream's keyframes are analysed. A stream sends packets many times a second,
# so this is a sub-stream that stopped, the same wait as `no_signal` on the main stream.
SUB_SILENT_S = 5.0
# After the start, the main stream waits this long for the sub-stream's first packet
# before analysing its own keyframes: opening an RTSP stream takes well under it, and
# decoding a 1080p keyframe just to throw it away would cost what the sub-stream saves.
SUB_FIRST_WAIT_S = 5.0

SUB_STREAM = PictureOrigin("sub")

Analysing = Literal["main", "sub"]


class AnalysisRoute:
    """Which of one camera's two streams its pictures come from now; shared by the
    camera's two workers (the sub-stream's records its packets, the main stream's asks
    at each keyframe). Thread-safe."""

    def __init__(self, camera_id: str, started: float) -> None:
        self._camera_id = camera_id
        self._lock = threading.Lock()
        self._started = started
        self._sub_packet_at: float | None = None
        self._analysing: Analysing | None = None

    def sub_packet(self, now: float) -> None:
        """The sub-stream delivered a packet (every packet: it is a float store)."""
        self._sub_packet_at = now

    def sub_lost(self) -> None:
        """The sub-stream's connection ended: the main stream's pictures are wanted at once."""
        with self._lock:
            self._sub_packet_at = None

    def main_wanted(self, now: float) -> bool:
        """Whether the main stream's keyframes are to be analysed now."""
        with self._lock:
            last = self._sub_packet_at
            if last is not None and now - last <= SUB_SILENT_S:
                self._now_analysing("sub")
                return False
            if last is None and now - self._started < SUB_FIRST_WAIT_S:
                return False
            self._now_analysing("main")
            return True

    def sub_wanted(self) -> None:
        """The sub-stream's picture is being analysed (it sends, so it is the one)."""
        with self._lock:
            self._now_analysing("sub")

    def _now_analysing(self, stream: Analysing) -> None:
        if stream == self._analysing:
            return
        if stream == "main":
            log.warning(
                "camera %s: the sub-stream sends no pictures; analysing the main stream's "
                "keyframes until it does",
                self._camera_id,
            )
        elif self._analysing == "main":
            log.info("camera %s: analysing the sub-stream's pictures again", self._camera_id)
        self._analysing = stream


class SubStreamWorker(CameraWorker):
    """Reads a camera's sub-stream for its pictures only: no recording, no packet
    measures (those describe the recorded stream), one keyframe decoded per interval."""

    role = "sub-stream"
    prefix = "sub-stream: "
    label = "sub-stream worker"
    while_stuck = "the main stream's pictures are analysed"

    def __init__(
        self,
        camera_id: str,
        open_source: OpenSource,
        assessor: StreamAssessor,
        analysis_interval: float,
        display_url: str,
        route: AnalysisRoute,
    ) -> None:
        super().__init__(camera_id, open_source, assessor, analysis_interval, display_url)
        self.thread_name = f"camera:{camera_id}:sub"
        self._route = route

    def successor(self) -> SubStreamWorker:
        return SubStreamWorker(
            self.camera_id,
            self._open_source,
            self.assessor,
            self._interval,
            self._display_url,
            self._route,
        )

    def _connected(self, source: Source, opened_at: float) -> None:
        pass  # the sub-stream counts as sending from its first packet on

    def _disconnected(self) -> None:
        self._route.sub_lost()

    def _pump(self, source: Source, stop: threading.Event) -> None:
        sampler = KeyframeSampler(self._interval)
        for packet in source.packets(stop):
            self._packet_beat()
            self._route.sub_packet(time.monotonic())
            pictures = sampler.pictures(source, packet)
            if pictures:
                self._route.sub_wanted()
                analyse(self.assessor, packet.time, pictures, SUB_STREAM)
                memory.release_freed()  # the decoded picture is gone by now
            if stop.is_set():
                return
