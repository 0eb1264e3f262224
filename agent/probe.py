"""`camera-agent probe`: a one-off health check of any stream or file, no config needed."""

from __future__ import annotations

import threading
import time

from agent.clock import clock_state
from agent.config import Expectations as ExpectationsConfig
from agent.config import redact_url
from agent.errors import StreamError
from agent.mqtt import payloads
from agent.quality import dori
from agent.quality.assess import Expectations, Health, StreamAssessor
from agent.quality.diagnose import Lighting, Reference
from agent.quality.metrics import Planes
from agent.streams.source import Decoder, Packet, StreamSource
from agent.streams.worker import KeyframeSampler, Sampler, pump
from contract.common.backoff import Backoff

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

    def pictures(self, source: object, packet: Packet) -> list[Planes]:
        pictures = self._decoder.decode(packet)
        if pictures and (packet.keyframe or packet.time - self._last >= self._spacing):
            self._last = packet.time
            return pictures[-1:]
        return []


def run_probe(
    url: str,
    seconds: float,
    interval: float | None,
    reference: tuple[Lighting, Reference] | None = None,
) -> Health:
    """Watch a source for `seconds` of stream time (files) or wall time (live streams)."""
    defaults = ExpectationsConfig()
    expect = Expectations(defaults.min_fps, defaults.min_width)
    source = StreamSource(url, display_url=redact_url(url), realtime=False)
    if source.kind == "file":
        return _probe_file(source, expect, seconds, interval, reference)
    return _probe_live(source, expect, seconds, interval, reference)


def _sampler(source: StreamSource, interval: float | None) -> Sampler:
    return KeyframeSampler(interval) if interval is not None else DenseSampler(source)


def _probe_file(
    source: StreamSource,
    expect: Expectations,
    seconds: float,
    interval: float | None,
    reference: tuple[Lighting, Reference] | None,
) -> Health:
    assessor = StreamAssessor(
        expect, started=0.0, references=dict([reference]) if reference else None
    )
    end = 0.0
    with source:
        assessor.connected(0.0, source.facts)
        stop = threading.Event()
        sampler = _sampler(source, interval)
        for packet in source.packets(stop):
            assessor.packet(packet.time, packet.size, packet.keyframe, packet.stream_time)
            for planes in sampler.pictures(source, packet):
                assessor.picture(packet.time, planes)
            end = packet.time
            if packet.time >= seconds:
                break
    return assessor.assess(end)


def _probe_live(
    source: StreamSource,
    expect: Expectations,
    seconds: float,
    interval: float | None,
    reference: tuple[Lighting, Reference] | None,
) -> Health:
    started = time.monotonic()
    # The watch counts from when the stream first opens (an RTSP camera takes a second or
    # more to answer): N seconds of pictures, enough to measure the rate. A stream that
    # never opens is given up at N seconds from the start.
    deadline = started + seconds
    assessor = StreamAssessor(
        expect, started=started, references=dict([reference]) if reference else None
    )
    stop = threading.Event()

    def stop_in(delay: float) -> threading.Timer:
        timer = threading.Timer(delay, stop.set)
        timer.daemon = True
        timer.start()
        return timer

    timer = stop_in(seconds)
    backoff = Backoff()
    opened = False
    try:
        while not stop.is_set():
            try:
                with source:
                    now = time.monotonic()
                    if not opened:  # the watch starts again, now that there is a stream
                        opened = True
                        timer.cancel()
                        timer = stop_in(seconds)
                        deadline = now + seconds
                    assessor.connected(now, source.facts)
                    pump(source, assessor, _sampler(source, interval), stop)
                    if not stop.is_set():  # the stream ended before the deadline
                        assessor.disconnected(time.monotonic())
            except StreamError:
                assessor.disconnected(time.monotonic())
            stop.wait(min(backoff.next(), max(0.0, deadline - time.monotonic())))
    finally:
        timer.cancel()
    return assessor.assess(time.monotonic())


def health_object(health: Health, fov: float | None = None) -> dict[str, object]:
    """The health object `probe --json` prints: agent "probe", seq 0 (DESIGN.md), with
    the DORI distances when the field of view is given."""
    body = payloads.health(
        agent="probe", camera="probe", bdseq=0, seq=0, snapshot=health, clock=clock_state()
    )
    if fov is not None and health.stream is not None and health.stream.width:
        body["dori_m"] = dori.dori_distances(health.stream.width, fov)
    return body


def describe(url: str, health: Health, fov: float | None = None) -> str:
    """The plain-words report for a person at a terminal."""
    lines = [f"{redact_url(url)}: {health.status}"]
    if health.problems:
        lines.append("problems: " + ", ".join(health.problems))
    judgement = health.judgement
    if judgement is not None and judgement.state == "pending":
        waits = {
            "samples": f"more pictures ({judgement.samples} analysed)",
            "reference": "a reference view (watch longer, or give --reference IMAGE)",
        }
        said = " and ".join(waits[w] for w in judgement.waiting_for)
        lines.append(f"not yet judged: waiting for {said}")
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
    if fov is not None and stream is not None and stream.width:
        lines.append(dori.in_plain_words(stream.width, fov))
    return "\n".join(lines)
