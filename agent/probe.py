"""`camera-agent probe`: a one-off health check of any stream or file, no config needed."""

from __future__ import annotations

import threading
import time

from agent.clock import clock_state
from agent.config import Expectations as ExpectationsConfig
from agent.config import redact_url
from agent.errors import StreamError
from agent.mqtt import payloads
from agent.quality.assess import Expectations, Health, StreamAssessor
from agent.quality.metrics import GreyImage
from agent.streams.backoff import Backoff
from agent.streams.source import Decoder, Packet, StreamSource
from agent.streams.worker import KeyframeSampler, Sampler, pump

# Dense sampling analyses every keyframe and at least one picture this often.
DENSE_SPACING_S = 1.0


class DenseSampler:
    """`probe`'s default: every keyframe, and at least one picture a second in long GOPs.

    Decodes every packet (a one-off check can afford it; the daemon never does this).
    """

    def __init__(self, source: StreamSource, spacing: float = DENSE_SPACING_S) -> None:
        self._decoder: Decoder = source.decoder()
        self._spacing = spacing
        self._last = float("-inf")

    def pictures(self, source: object, packet: Packet) -> list[GreyImage]:
        pictures = self._decoder.decode(packet)
        if pictures and (packet.keyframe or packet.time - self._last >= self._spacing):
            self._last = packet.time
            return pictures[-1:]
        return []


def run_probe(url: str, seconds: float, interval: float | None) -> Health:
    """Watch a source for `seconds` of stream time (files) or wall time (live streams)."""
    defaults = ExpectationsConfig()
    expect = Expectations(defaults.min_fps, defaults.min_width)
    source = StreamSource(url, display_url=redact_url(url), realtime=False)
    if source.kind == "file":
        return _probe_file(source, expect, seconds, interval)
    return _probe_live(source, expect, seconds, interval)


def _sampler(source: StreamSource, interval: float | None) -> Sampler:
    return KeyframeSampler(interval) if interval is not None else DenseSampler(source)


def _probe_file(
    source: StreamSource, expect: Expectations, seconds: float, interval: float | None
) -> Health:
    assessor = StreamAssessor(expect, started=0.0)
    end = 0.0
    with source:
        assessor.connected(0.0, source.facts)
        stop = threading.Event()
        sampler = _sampler(source, interval)
        for packet in source.packets(stop):
            assessor.packet(packet.time, packet.size, packet.keyframe, packet.stream_time)
            for luma in sampler.pictures(source, packet):
                assessor.picture(packet.time, luma)
            end = packet.time
            if packet.time >= seconds:
                break
    return assessor.assess(end)


def _probe_live(
    source: StreamSource, expect: Expectations, seconds: float, interval: float | None
) -> Health:
    started = time.monotonic()
    deadline = started + seconds
    assessor = StreamAssessor(expect, started=started)
    stop = threading.Event()
    timer = threading.Timer(seconds, stop.set)
    timer.daemon = True
    timer.start()
    backoff = Backoff()
    try:
        while not stop.is_set():
            try:
                with source:
                    assessor.connected(time.monotonic(), source.facts)
                    pump(source, assessor, _sampler(source, interval), stop)
                    if not stop.is_set():  # the stream ended before the deadline
                        assessor.disconnected(time.monotonic())
            except StreamError:
                assessor.disconnected(time.monotonic())
            stop.wait(min(backoff.next(), max(0.0, deadline - time.monotonic())))
    finally:
        timer.cancel()
    return assessor.assess(time.monotonic())


def health_object(health: Health) -> dict[str, object]:
    """The health object `probe --json` prints: agent "probe", seq 0 (DESIGN.md)."""
    return payloads.health(
        agent="probe", camera="probe", bdseq=0, seq=0, snapshot=health, clock=clock_state()
    )


def describe(url: str, health: Health) -> str:
    """The plain-words report for a person at a terminal."""
    lines = [f"{redact_url(url)}: {health.status}"]
    if health.problems:
        lines.append("problems: " + ", ".join(health.problems))
    stream = health.stream
    if stream is not None:
        fps = f"{stream.fps:.1f} fps" if stream.fps is not None else "fps unknown"
        rate = f"{stream.bitrate_kbps:.0f} kbit/s" if stream.bitrate_kbps is not None else ""
        lines.append(
            f"stream: {stream.codec} {stream.width}x{stream.height}, {fps} {rate}".rstrip()
        )
    shown = {k: v for k, v in health.metrics.items() if v is not None}
    if shown:
        lines.append("metrics: " + ", ".join(f"{k}={v}" for k, v in shown.items()))
    return "\n".join(lines)
