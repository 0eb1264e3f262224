"""A camera's clock read from its stream: the wall-clock time in its RTCP sender reports.

FFmpeg's RTSP reader maps the first sender report's NTP time to the stream's start
(PyAV's `container.start_time_realtime`, microseconds since the Unix epoch, None until the
first report arrives, a few seconds after PLAY). A packet's time on the camera's clock is
then that start plus the packet's own timestamp; its arrival on the agent's wall clock,
taken as it is read, is later by the encoder's and the network's delay. So the offset
(camera minus agent) only ever looks too low, never too high: the best estimate of a
window is its highest, and only packets whose read waited for the network count, since a
packet read from a buffer (the paced reader's, agent/streams/pacing.py) arrived earlier
than it was read. Used for every camera whose stream carries sender reports, beside the
ONVIF reading where there is one (agent/onvif/camera_clocks.py says which is reported).
"""

from __future__ import annotations

import time
from collections.abc import Callable

# One reading per this many seconds of stream.
WINDOW_S = 10.0
# A window gives a reading only from at least this many packets read as they arrived.
MIN_SAMPLES = 5


class RtcpClock:
    """Collects one stream's packets; calls `emit(offset_s)` once per full window."""

    def __init__(
        self,
        emit: Callable[[float], None],
        *,
        window: float = WINDOW_S,
        wall: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._emit = emit
        self._window = window
        self._wall = wall
        self._monotonic = monotonic
        self._began: float | None = None
        self._best = float("-inf")
        self._samples = 0

    def packet(self, realtime_us: int | None, pts_s: float | None, fresh: bool) -> None:
        """One packet: the stream's realtime start (None before the first sender report),
        its presentation time in seconds, and whether its read waited for the network."""
        if realtime_us is None or pts_s is None or not fresh:
            return
        now = self._monotonic()
        offset = realtime_us / 1e6 + pts_s - self._wall()
        if self._began is None:
            self._began = now
        self._best = max(self._best, offset)
        self._samples += 1
        if now - self._began >= self._window:
            if self._samples >= MIN_SAMPLES:
                self._emit(self._best)
            self._began, self._best, self._samples = now, float("-inf"), 0
