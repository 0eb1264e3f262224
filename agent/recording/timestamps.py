"""Makes a camera's packet timestamps acceptable to the MPEG-TS muxer, and counts what it
had to change.

FFmpeg's muxer refuses (EINVAL) a packet whose decode timestamp (DTS) is not above the
previous one, or whose PTS is below its DTS, and a packet without timestamps is not
recorded at all. Cameras send all of these. What FFmpeg's RTSP demuxer and H.264 parser
hand the agent (see tests/support/rtp_camera.py, which serves each):

- parameter sets (SPS/PPS) in RTP packets of their own, stamped with the previous
  picture's time or with 0: the keyframe after them repeats a DTS or goes back;
- the first picture of every connection, and B-frame streams' first pictures: no DTS;
- two pictures stamped alike: a repeated DTS; a jittery encoder: a DTS a frame back;
- an encoder that restarts without ending the session: a jump of hours either way;
- RTP timestamp wrap: FFmpeg unwraps it, nothing to do here.

So: a repeated or slightly backwards DTS becomes one tick after the last; a packet far
off the timeline, where the arrival times show no such jump, is placed by its arrival
time, and when the next one is as far off the camera's clock restarted: everything from
there on is shifted to continue from the last packet; a missing DTS is taken from the
PTS, or one tick after the last; only packets before the first timestamp of a
connection are dropped. Every change is counted (the health `stream.packets` object).

This runs for every packet: the common path (DTS one frame on, nothing to change) is a
few integer comparisons, no allocation and no Fraction arithmetic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# A DTS step forward that the arrival times do not show, beyond this many seconds, is a
# camera clock that jumped: B-frame reordering and encoder jitter move timestamps by a
# few frames, and a paused camera's timestamps jump with the arrival times.
CLOCK_JUMP_S = 3.0
# A DTS this far back or less is a repeated or early stamp (parameter sets, jitter, the
# first B-frames): that packet is placed one tick after the last. Further back, it may be
# a camera clock that restarted, which the next packet shows.
STEP_BACK_S = 1.0


@dataclass
class PacketCounts:
    """What was done to one camera's packets since the agent started."""

    repaired: int = 0  # a timestamp was missing, repeated, backwards or below the DTS
    dropped: int = 0  # no timestamp and nothing yet to continue from
    clock_jumps: int = 0  # the camera's clock restarted or jumped; continued from the last
    mux_errors: int = 0  # the muxer refused a packet: the segment ended there

    def as_payload(self) -> dict[str, int]:
        return {
            "repaired": self.repaired,
            "dropped": self.dropped,
            "clock_jumps": self.clock_jumps,
            "mux_errors": self.mux_errors,
        }


class TimestampRepair:
    """One connection's packets, in order; `fix` before each is muxed."""

    def __init__(self, counts: PacketCounts) -> None:
        self.counts = counts
        self.seconds_per_tick = 0.0
        self._jump = 0  # CLOCK_JUMP_S in ticks, once the time base is known
        self._back = 0  # STEP_BACK_S in ticks
        self._offset = 0  # ticks added to the camera's timestamps since a clock jump
        self._last: int | None = None  # the last DTS handed out
        self._last_arrival = 0.0
        self._jumped: int | None = None  # the step of a packet far off the timeline

    def fix(self, raw: Any, arrival: float) -> int | None:
        """The packet's DTS after repair (its dts and pts are set in place), or None when
        it has to be dropped."""
        dts = raw.dts
        pts = raw.pts
        last = self._last
        if last is None:
            if dts is None and pts is None:
                self.counts.dropped += 1
                return None
            base = raw.time_base
            if base is None:
                self.counts.dropped += 1
                return None
            # float once: Fraction arithmetic per packet costs more than the rest.
            self.seconds_per_tick = float(base)
            self._jump = round(CLOCK_JUMP_S / self.seconds_per_tick)
            self._back = round(STEP_BACK_S / self.seconds_per_tick)
        repaired = dts is None  # each packet is counted once, whatever was done to it
        if repaired:
            dts = pts
            if dts is None:  # no timestamp at all: one tick after the last
                out = last + 1  # type: ignore[operator]  # last is set past the first
                raw.dts = raw.pts = out
                self.counts.repaired += 1
                self._last, self._last_arrival = out, arrival
                return out
            raw.dts = dts  # changed below too when it needs the offset or a step
        out = dts + self._offset
        if last is not None:
            step = out - last
            if step <= 0 or step > self._jump:
                out, odd = self._repair(out, step, last, arrival)
                repaired |= odd
            elif self._jumped is not None:
                self._jumped = None  # that far-off packet was alone
        if out != dts:
            shift = out - dts
            raw.dts = out
            if pts is not None:
                pts += shift
                raw.pts = pts
        if pts is not None and pts < out:
            raw.pts = out
            repaired = True
        if repaired:
            self.counts.repaired += 1
        self._last, self._last_arrival = out, arrival
        return out

    def _repair(self, out: int, step: int, last: int, arrival: float) -> tuple[int, bool]:
        """A DTS that did not move on by a plausible step (the rare path): the DTS to
        write and whether that is a repair of this packet alone."""
        elapsed = round((arrival - self._last_arrival) / self.seconds_per_tick)
        if -self._back <= step <= 0:  # repeated, or a little back: one tick on
            return last + 1, True
        if step > 0 and abs(step - elapsed) <= self._jump:
            return out, False  # a real pause in the stream: its timestamps say so
        fixed = last + max(1, elapsed)
        if self._jumped is not None and abs(step - self._jumped) <= self._back:
            # The second packet in a row off the old timeline: the camera's clock
            # restarted. Everything from here on is shifted to continue by arrival time.
            self._jumped = None
            self.counts.clock_jumps += 1
            self._offset += fixed - out
            return fixed, False
        # One packet far off (parameter sets stamped 0, say) is repaired on its own; the
        # next one shows whether the clock itself moved.
        self._jumped = step
        return fixed, True
