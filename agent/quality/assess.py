"""Rolling assessment of one camera stream: packets and sampled pictures in, health out.

Time is passed in by the caller (monotonic seconds for live streams, stream time for a
file read as fast as possible), so the same rules serve the daemon and `probe`, and the
tests can drive them without sleeping.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Literal

from agent.quality import metrics
from agent.quality.metrics import GreyImage

Status = Literal["ok", "degraded", "failed", "offline"]
SourceKind = Literal["rtsp", "http", "file"]

# Problems that mean the stream carries no usable picture (DESIGN.md: status `failed`).
PICTURE_LOST = frozenset({"frozen", "covered"})

# Seconds without a packet before a stream counts as lost. Longer than any sane
# keyframe gap or network hiccup, short enough to report a dead camera within 10 s.
SIGNAL_TIMEOUT_S = 5.0
# Window over which fps and bitrate are measured.
RATE_WINDOW_S = 10.0
# A picture whose mean grey level moves less than this between samples is unchanged.
# Encoded live video keeps a noise floor well above it; a repeated picture decodes to
# (nearly) the same pixels. Tuned further by the full diagnosis (issue 3).
FROZEN_CHANGE_MAX = 0.5
# Consecutive unchanged samples before `frozen` is raised; one changed sample clears it.
FROZEN_SAMPLES = 3
# Reconnects are counted over this window for the `reconnects_1h` metric.
RECONNECT_WINDOW_S = 3600.0


@dataclass(frozen=True)
class StreamFacts:
    """What the stream says about itself once opened, plus what we measured on it."""

    codec: str
    width: int
    height: int
    source: SourceKind
    fps: float | None = None
    bitrate_kbps: float | None = None

    def as_payload(self) -> dict[str, object]:
        return {
            "codec": self.codec,
            "width": self.width,
            "height": self.height,
            "fps": _rounded(self.fps, 2),
            "bitrate_kbps": _rounded(self.bitrate_kbps, 1),
            "source": self.source,
        }


@dataclass(frozen=True)
class Health:
    """An immutable snapshot handed from a camera worker to the publisher."""

    status: Status
    problems: tuple[str, ...]
    metrics: dict[str, float | int | None]
    stream: StreamFacts | None


@dataclass(frozen=True)
class Expectations:
    min_fps: float | None = None
    min_width: int | None = None


def status_of(problems: tuple[str, ...]) -> Status:
    """DESIGN.md: offline without signal, failed without a usable picture, else degraded or ok."""
    if "no_signal" in problems:
        return "offline"
    if PICTURE_LOST.intersection(problems):
        return "failed"
    return "degraded" if problems else "ok"


@dataclass
class _Rates:
    """Packets of the last RATE_WINDOW_S seconds of arrival.

    Rates are measured on the packets' own timestamps where they have them: arrival
    times are bunched by network buffering (a new RTSP session starts with a burst).
    """

    packets: deque[tuple[float, float | None, int]] = field(default_factory=deque)
    last_keyframe: float | None = None
    keyframe_interval: float | None = None

    def add(self, t: float, size: int, keyframe: bool, stream_time: float | None) -> None:
        self.packets.append((t, stream_time, size))
        while self.packets and self.packets[0][0] < t - RATE_WINDOW_S:
            self.packets.popleft()
        if keyframe:
            at = t if stream_time is None else stream_time
            if self.last_keyframe is not None and at > self.last_keyframe:
                self.keyframe_interval = at - self.last_keyframe
            self.last_keyframe = at

    def measured(self) -> tuple[float | None, float | None]:
        """fps and kbit/s, once at least half a window has been seen."""
        if len(self.packets) < 2:
            return None, None
        if self.packets[-1][0] - self.packets[0][0] < RATE_WINDOW_S / 2:
            return None, None
        stamps = [stamp for _, stamp, _ in self.packets if stamp is not None]
        if len(stamps) < len(self.packets) // 2:  # a source without timestamps
            stamps = [t for t, _, _ in self.packets]
        span = max(stamps) - min(stamps)  # max/min: B-frames come out of order
        if span <= 0:
            return None, None
        fps = (len(self.packets) - 1) / span
        bits = 8 * sum(size for _, _, size in list(self.packets)[1:])
        return fps, bits / span / 1000


class StreamAssessor:
    """Thread-safe: the camera worker feeds it, the publisher reads snapshots from it."""

    def __init__(self, expect: Expectations, started: float) -> None:
        self._expect = expect
        self._lock = threading.Lock()
        self._started = started
        self._facts: StreamFacts | None = None
        self._connected = False
        self._last_packet: float | None = None
        self._rates = _Rates()
        self._previous: GreyImage | None = None
        self._change: float | None = None
        self._unchanged = 0
        self._brightness: float | None = None
        self._reconnects: deque[float] = deque()
        self._ever_connected = False

    def connected(self, t: float, facts: StreamFacts) -> None:
        with self._lock:
            if self._ever_connected:
                self._reconnects.append(t)
            self._ever_connected = True
            self._connected = True
            self._facts = facts
            self._rates = _Rates()
            self._previous = None
            self._unchanged = 0

    def disconnected(self, t: float) -> None:
        with self._lock:
            self._connected = False

    def packet(self, t: float, size: int, keyframe: bool, stream_time: float | None = None) -> None:
        with self._lock:
            self._last_packet = t
            self._rates.add(t, size, keyframe, stream_time)

    def picture(self, t: float, luma: GreyImage) -> None:
        """A decoded picture (full-size luma plane) sampled for analysis."""
        small = metrics.subsample(luma)
        with self._lock:
            self._brightness = metrics.brightness(small)
            if self._previous is not None:
                self._change = metrics.frame_change(self._previous, small)
                self._unchanged = self._unchanged + 1 if self._change < FROZEN_CHANGE_MAX else 0
            self._previous = small

    def settled(self, t: float) -> bool:
        """True once there is something honest to report: a picture, or the grace time is over."""
        with self._lock:
            return self._previous is not None or t - self._started >= SIGNAL_TIMEOUT_S

    def assess(self, t: float) -> Health:
        with self._lock:
            problems: list[str] = []
            last = self._last_packet if self._last_packet is not None else self._started
            silent = t - last
            if not self._connected or silent > SIGNAL_TIMEOUT_S:
                problems.append("no_signal")
            fps, kbps = self._rates.measured()
            facts = self._facts
            if facts is not None:
                facts = StreamFacts(facts.codec, facts.width, facts.height, facts.source, fps, kbps)
            if "no_signal" not in problems:
                if self._unchanged >= FROZEN_SAMPLES:
                    problems.append("frozen")
                min_fps = self._expect.min_fps
                if fps is not None and min_fps is not None and fps < min_fps:
                    problems.append("low_fps")
                min_width = self._expect.min_width
                if facts is not None and min_width is not None and facts.width < min_width:
                    problems.append("low_resolution")
            while self._reconnects and self._reconnects[0] < t - RECONNECT_WINDOW_S:
                self._reconnects.popleft()
            values: dict[str, float | int | None] = {
                "fps": _rounded(fps, 2),
                "bitrate_kbps": _rounded(kbps, 1),
                "keyframe_interval_s": _rounded(self._rates.keyframe_interval, 2),
                "frame_change": _rounded(self._change, 3),
                "brightness": _rounded(self._brightness, 1),
                "seconds_since_packet": _rounded(silent, 1) if self._last_packet else None,
                "reconnects_1h": len(self._reconnects),
            }
            found = tuple(problems)
            return Health(status_of(found), found, values, facts)


def _rounded(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)
