"""Rolling assessment of one camera stream: packets and sampled pictures in, health out.

Time is passed in by the caller (monotonic seconds for live streams, stream time for a
file read as fast as possible), so the same rules serve the daemon and `probe`, and the
tests can drive them without sleeping.
"""

from __future__ import annotations

import statistics
import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from agent.quality import diagnose, metrics
from agent.quality.diagnose import Lighting, PictureMetrics, Reference, rounded
from agent.quality.metrics import Planes, Prepared

Status = Literal["ok", "degraded", "failed", "offline"]
SourceKind = Literal["rtsp", "http", "file"]
# Which of a camera's streams a picture came from: the recorded one, or its sub-stream
# (config `analysis_url`), a low-resolution copy that is cheaper to decode.
StreamRole = Literal["main", "sub"]

# Problems that mean the stream carries no usable picture (DESIGN.md: status `failed`).
PICTURE_LOST = frozenset({"frozen", "covered"})

# Seconds without a packet before a stream counts as lost. Longer than any sane
# keyframe gap or network hiccup, short enough to report a dead camera within 10 s.
SIGNAL_TIMEOUT_S = 5.0
# Window over which fps and bitrate are measured.
RATE_WINDOW_S = 10.0
# A picture problem is raised once seen in this many consecutive samples (so a
# covered camera is reported within two analysis intervals) and cleared once absent
# from this many: a brief exposure swing is no fault, and nothing flaps.
RAISE_SAMPLES = 2
CLEAR_SAMPLES = 3
# Moves of the camera are judged more slowly: a lorry parked in front is not one.
RAISE_SAMPLES_SLOW = {"scene_changed": 4}
# Consecutive samples without a picture problem before the view becomes the reference.
WARMUP_SAMPLES = 6
# Analysed pictures before the picture counts as judged (health `judgement`): a problem
# is raised after RAISE_SAMPLES of them, and `frozen` compares each picture with the one
# before, so it can first be raised at the picture after that.
JUDGE_SAMPLES = RAISE_SAMPLES + 1
# The problems an owner may accept as normal for one camera (`problems accept`): those
# that depend on the scene a camera looks at (a dim alley is always too dark for the
# rules, a hedge in the wind always noisy). The others say the camera is not working
# (`no_signal`, `frozen`, `covered`), was moved (`scene_changed`: `reference reset`
# says "this is the view now"), or are the stream's or the recording's own faults, which
# configuration fixes (`expect`, `storage`) and the registry must see.
ACCEPTABLE_PROBLEMS = frozenset(
    {"blurred", "too_dark", "too_bright", "low_contrast", "colour_cast", "noisy"}
)
# At most this many frame sizes are kept between two analysed pictures (a 60 fps camera
# analysed every 10 s sends 600).
CODED_SIZES_MAX = 1000
# A gap between packets longer than this while connected counts as a stall.
STALL_GAP_S = 2.0
# Reconnects are counted over this window for the `reconnects_1h` metric.
RECONNECT_WINDOW_S = 3600.0


@dataclass(frozen=True)
class PictureOrigin:
    """Where an analysed picture came from. `fallback`: the camera has a sub-stream, but
    it sent nothing lately, so the main stream's keyframe was analysed instead."""

    stream: StreamRole = "main"
    fallback: bool = False


MAIN_STREAM = PictureOrigin()


@dataclass(frozen=True)
class Analysed:
    """The stream the last analysed picture came from and its size (health
    `stream.analysed`), so a registry can tell a picture judged on a 640x360 sub-stream
    from one judged on the recorded stream."""

    origin: PictureOrigin
    width: int
    height: int

    def as_payload(self) -> dict[str, object]:
        return {
            "stream": self.origin.stream,
            "width": self.width,
            "height": self.height,
            "fallback": self.origin.fallback,
        }


@dataclass(frozen=True)
class StreamFacts:
    """What the stream says about itself once opened, plus what we measured on it."""

    codec: str
    width: int
    height: int
    source: SourceKind
    fps: float | None = None
    bitrate_kbps: float | None = None
    # What the recording repaired or dropped (agent.recording.timestamps), when it records.
    packets: dict[str, int] | None = None
    # Which stream the last analysed picture came from, once one was.
    analysed: Analysed | None = None

    def as_payload(self) -> dict[str, object]:
        payload: dict[str, object] = {
            "codec": self.codec,
            "width": self.width,
            "height": self.height,
            "fps": rounded(self.fps, 2),
            "bitrate_kbps": rounded(self.bitrate_kbps, 1),
            "source": self.source,
        }
        if self.packets is not None:
            payload["packets"] = self.packets
        if self.analysed is not None:
            payload["analysed"] = self.analysed.as_payload()
        return payload


# What a pending picture judgement waits for (health `judgement.waiting_for`).
Waiting = Literal["samples", "reference"]


@dataclass(frozen=True)
class Judgement:
    """Whether the picture has been analysed enough to judge it (health `judgement`).

    A camera with no problem is `ok` by the status rule, but right after a start, or in a
    lighting it has no reference view of yet, that `ok` means "nothing found yet": blur
    and a moved camera are judged against the reference view, and a problem needs
    JUDGE_SAMPLES pictures to be raised at all. `pending` says so, so a registry does
    not show an unjudged camera as fine."""

    waiting_for: tuple[Waiting, ...]
    samples: int  # pictures analysed since the agent started
    lighting: Lighting | None  # of the last analysed picture

    @property
    def state(self) -> Literal["pending", "judged"]:
        return "pending" if self.waiting_for else "judged"

    def as_payload(self) -> dict[str, object]:
        return {
            "state": self.state,
            "waiting_for": list(self.waiting_for),
            "samples": self.samples,
            "samples_needed": JUDGE_SAMPLES,
            "lighting": self.lighting,
        }


@dataclass(frozen=True)
class Health:
    """An immutable snapshot handed from a camera worker to the publisher."""

    status: Status
    problems: tuple[str, ...]
    metrics: dict[str, float | int | None]
    stream: StreamFacts | None
    footage: dict[str, object] | None = None  # what is recorded, when the agent records
    judgement: Judgement | None = None
    # Problems seen now but left out of `problems`: the owner accepted them as normal for
    # this camera (`problems accept`).
    accepted: tuple[str, ...] = ()
    # The camera's own clock against the agent's (health `camera_clock`), when it is read.
    camera_clock: dict[str, object] | None = None


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


class Debouncer:
    """Raises a problem after it persisted, clears it after it stayed away."""

    def __init__(self) -> None:
        self._seen: dict[str, int] = {}
        self._absent: dict[str, int] = {}
        self.active: frozenset[str] = frozenset()

    def update(self, found: frozenset[str]) -> frozenset[str]:
        active = set(self.active)
        for problem in found:
            self._seen[problem] = self._seen.get(problem, 0) + 1
            self._absent[problem] = 0
            if self._seen[problem] >= RAISE_SAMPLES_SLOW.get(problem, RAISE_SAMPLES):
                active.add(problem)
        for problem in set(self._seen) - found:
            self._seen[problem] = 0
            self._absent[problem] = self._absent.get(problem, 0) + 1
            if self._absent[problem] >= CLEAR_SAMPLES:
                active.discard(problem)
        self.active = frozenset(active)
        return self.active


ReferenceSink = Callable[[Lighting, Prepared, Reference], None]


class StreamAssessor:
    """Thread-safe: the camera worker feeds it, the publisher reads snapshots from it.

    A camera has a reference view per lighting (colour by day, infrared at night),
    each taken after a healthy warm-up in that lighting. `on_reference` is called (on
    the worker's thread) with each new one, so the caller can keep it on disk.
    """

    def __init__(
        self,
        expect: Expectations,
        started: float,
        *,
        references: Mapping[Lighting, Reference] | None = None,
        on_reference: ReferenceSink | None = None,
        warmup_samples: int = WARMUP_SAMPLES,
        keep_picture: bool = False,
        accepted: frozenset[str] = frozenset(),
    ) -> None:
        self._expect = expect
        self._accepted = accepted & ACCEPTABLE_PROBLEMS
        self._samples = 0
        # The owner page shows the last analysed picture; kept (one decoded frame per
        # camera) only when that page is on.
        self._keep_picture = keep_picture
        self._last_picture: tuple[datetime, Planes] | None = None
        self._lock = threading.Lock()
        self._started = started
        self._facts: StreamFacts | None = None
        self._connected = False
        self._last_packet: float | None = None
        self._rates = _Rates()
        self._previous: Prepared | None = None
        self._analysed: Analysed | None = None
        self._picture: PictureMetrics | None = None
        self._debounce = Debouncer()
        self._references: dict[Lighting, Reference] = dict(references or {})
        self._lighting: Lighting | None = None
        self._on_reference = on_reference
        self._healthy_run = 0
        self._warmup_noise: list[float] = []
        self._warmup = warmup_samples
        # Sizes of the coded frames between keyframes since the last analysed picture.
        self._coded: list[int] = []
        self._reconnects: deque[float] = deque()
        self._stalls: deque[float] = deque()
        self._ever_connected = False

    @property
    def has_reference(self) -> bool:
        return bool(self._references)

    def reset_references(self) -> None:
        """Forget the reference views; new ones are taken after a warm-up."""
        with self._lock:
            self._references.clear()
            self._healthy_run = 0

    def accept(self, problems: frozenset[str]) -> None:
        """The problems the owner accepted as normal for this camera, from now on."""
        with self._lock:
            self._accepted = problems & ACCEPTABLE_PROBLEMS

    def judgement(self) -> Judgement:
        """What the picture judgement still waits for (nothing: judged)."""
        with self._lock:
            return self._judgement()

    def _judgement(self) -> Judgement:
        waiting: list[Waiting] = []
        if self._samples < JUDGE_SAMPLES:
            waiting.append("samples")
        if self._lighting is None or self._lighting not in self._references:
            waiting.append("reference")
        return Judgement(tuple(waiting), self._samples, self._lighting)

    def connected(self, t: float, facts: StreamFacts) -> None:
        with self._lock:
            if self._ever_connected:
                self._reconnects.append(t)
            self._ever_connected = True
            self._connected = True
            self._facts = facts
            self._rates = _Rates()
            self._previous = None
            self._last_packet = t

    def disconnected(self, t: float) -> None:
        with self._lock:
            self._connected = False

    def packet(self, t: float, size: int, keyframe: bool, stream_time: float | None = None) -> None:
        with self._lock:
            if self._last_packet is not None and t - self._last_packet > STALL_GAP_S:
                self._stalls.append(t)
            self._last_packet = t
            self._rates.add(t, size, keyframe, stream_time)
            if not keyframe and len(self._coded) < CODED_SIZES_MAX:
                self._coded.append(size)

    def picture(self, t: float, planes: Planes, origin: PictureOrigin = MAIN_STREAM) -> None:
        """A decoded picture sampled for analysis (on the worker of the stream it came from)."""
        prepared = metrics.prepare(planes)
        lighting = diagnose.lighting_of(prepared)
        height, width = planes.luma.shape
        with self._lock:
            reference = self._references.get(lighting)
            switched = self._analysed is not None and self._analysed.origin.stream != origin.stream
            # Two streams of one scene differ by their coding noise and scaling: `frozen`
            # compares a picture only with the one before it from the same stream.
            previous = None if switched else self._previous
            self._analysed = Analysed(origin, width, height)
            coded = self._coded_change()
            self._coded = []
        measured = diagnose.measure(prepared, previous, reference, coded)
        found = diagnose.diagnose(measured)
        new_reference: Reference | None = None
        with self._lock:
            self._previous = prepared
            self._picture = measured
            if self._keep_picture:
                self._last_picture = (datetime.now(UTC), planes)
            self._samples += 1
            active = self._debounce.update(found)
            if lighting != self._lighting:
                self._lighting = lighting
                self._healthy_run = 0
            if reference is None and not origin.fallback:
                # The main stream standing in for the sub-stream gives no reference: it
                # would be the sub-stream's from then on. An accepted problem is this
                # camera's normal: it must not keep the camera from ever getting a
                # reference view (and so from being judged).
                unhealthy = (found | active) - self._accepted
                self._healthy_run = 0 if unhealthy else self._healthy_run + 1
                if self._healthy_run <= 1:
                    self._warmup_noise = []
                self._warmup_noise.append(measured.noise)
                if self._healthy_run >= self._warmup:
                    # The camera's noise in this lighting: the median of its warm-up, so
                    # one grainy picture does not set what is normal.
                    noise = statistics.median(self._warmup_noise)
                    new_reference = diagnose.reference_of(prepared, noise)
                    self._references[lighting] = new_reference
        if new_reference is not None and self._on_reference is not None:
            self._on_reference(lighting, prepared, new_reference)

    def _coded_change(self) -> float | None:
        """Median size of the frames between keyframes since the last picture, in bytes per
        16x16 macroblock: an encoder that codes the same picture again sends frames of
        almost nothing; any live picture, even a dim or foggy one, costs bits. None
        without such frames (an all-keyframe stream) or without the picture size."""
        if not self._coded or self._facts is None or self._facts.width <= 0:
            return None
        blocks = max(1, (self._facts.width // 16) * (self._facts.height // 16))
        return float(statistics.median(self._coded)) / blocks

    def last_picture(self) -> tuple[datetime, Planes] | None:
        """When the last analysed picture was taken, and its planes (with `keep_picture`)."""
        with self._lock:
            return self._last_picture

    def settled(self, t: float) -> bool:
        """True once there is something honest to report: a picture, or the grace time is over."""
        with self._lock:
            return self._picture is not None or t - self._started >= SIGNAL_TIMEOUT_S

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
                facts = StreamFacts(
                    facts.codec,
                    facts.width,
                    facts.height,
                    facts.source,
                    fps,
                    kbps,
                    analysed=self._analysed,
                )
            accepted: tuple[str, ...] = ()
            if "no_signal" not in problems:
                problems.extend(sorted(self._debounce.active - self._accepted))
                accepted = tuple(sorted(self._debounce.active & self._accepted))
                min_fps = self._expect.min_fps
                if fps is not None and min_fps is not None and fps < min_fps:
                    problems.append("low_fps")
                min_width = self._expect.min_width
                if facts is not None and min_width is not None and facts.width < min_width:
                    problems.append("low_resolution")
            for window in (self._reconnects, self._stalls):
                while window and window[0] < t - RECONNECT_WINDOW_S:
                    window.popleft()
            values: dict[str, float | int | None] = {
                "fps": rounded(fps, 2),
                "bitrate_kbps": rounded(kbps, 1),
                "keyframe_interval_s": rounded(self._rates.keyframe_interval, 2),
                "seconds_since_packet": rounded(silent, 1) if self._last_packet else None,
                "reconnects_1h": len(self._reconnects),
                "stalls_1h": len(self._stalls),
            }
            if self._picture is not None:
                values.update(self._picture.as_payload())
            found = tuple(problems)
            return Health(
                status_of(found),
                found,
                values,
                facts,
                judgement=self._judgement(),
                accepted=accepted,
            )
