"""Reading a live network stream in bursts instead of packet by packet.

Most of what a camera costs the agent is not decoding (one keyframe in 10 s) but
waking up: FFmpeg's RTSP-over-TCP reader polls and receives each RTP packet on its own,
some 360 times a second at 4 Mbit/s, and blocks in between. Pausing for a second
whenever the reader has caught up lets the kernel buffer that second (about 500 kB;
TCP flow control keeps the camera from overrunning it), which FFmpeg then reads without
blocking. Measured on the benchmark stream (bench/cpu_per_camera.py): the bare demuxer
costs 1.07 % of a core read as it comes, 0.67 % paced by 0.25 s, 0.50 % by 0.5 s and
0.43 % by 1 s; the whole agent 1.35 % at 0.5 s and 1.18 % at 1 s. Nothing is lost
(TCP), and packets are handled up to READ_BATCH_S late, which nothing here minds:
no_signal takes 5 s and footage times are arrival times, estimated below.

The reader has caught up when a read had to wait for data (it took BLOCKED_S or more)
and the stream time read since the last pause matches the wall time since then. The
second test matters: a read may also be slow because another camera's thread held the
GIL, and pausing then, with data still buffered, would only add lag. Every pause starts
from a packet that has just arrived, so a camera clock running fast or slow cannot make
the lag build up.
"""

from __future__ import annotations

# How long to let the kernel buffer the stream between bursts of reading.
READ_BATCH_S = 1.0
# A read that took this long waited for the network (a buffered read takes well under
# a millisecond; the next frame of a 25 fps stream is up to 40 ms away).
BLOCKED_S = 0.005
# Caught up: the stream time read since the last pause is within this of the wall
# time since then (about one frame at 25 fps).
CATCH_UP_SLACK_S = 0.05
# If stream time stops advancing with the wall clock (a camera with broken timestamps),
# start measuring afresh after this long; until then packets are simply read as they come.
RESYNC_AFTER_S = 4 * READ_BATCH_S


class ReadPacer:
    """Decides, after each packet, how long to pause; estimates when the packet arrived."""

    def __init__(self, batch_s: float = READ_BATCH_S) -> None:
        self._batch_s = batch_s
        self._anchor: tuple[float, float] | None = None  # (monotonic, stream time)
        self._last_arrival = float("-inf")

    def step(self, asked: float, now: float, stream_time: float | None) -> tuple[float, float]:
        """For a packet asked for at `asked` and read at `now` (monotonic seconds): its
        estimated arrival and how many seconds to pause before reading on."""
        if stream_time is None:
            self._anchor = None
            return self._monotone(now), 0.0
        if self._anchor is None:
            self._anchor = (now, stream_time)
            return self._monotone(now), 0.0
        wall0, stream0 = self._anchor
        media = stream_time - stream0
        elapsed = now - wall0
        if now - asked >= BLOCKED_S and media >= elapsed - CATCH_UP_SLACK_S:
            self._anchor = (now, stream_time)
            return self._monotone(now), self._batch_s
        if media < 0 or elapsed > RESYNC_AFTER_S:
            self._anchor = (now, stream_time)
        # Read from the buffer: it arrived when its stream time says, never after now.
        return self._monotone(min(now, wall0 + max(media, 0.0))), 0.0

    def _monotone(self, t: float) -> float:
        self._last_arrival = max(self._last_arrival, t)
        return self._last_arrival
