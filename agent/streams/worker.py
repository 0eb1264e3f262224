"""The per-camera worker thread: keep the stream open, feed the assessor, decode sparingly."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from functools import partial
from typing import Any, Protocol

from agent import memory
from agent.errors import StreamError, UnreadableStream
from agent.quality.assess import MAIN_STREAM, PictureOrigin, StreamAssessor, StreamFacts
from agent.quality.metrics import Planes
from agent.streams.source import Packet, StreamSource
from contract.common.backoff import Backoff

log = logging.getLogger(__name__)

# How early a keyframe may arrive and still count as due for analysis.
KEYFRAME_SLACK_S = 0.5
# A connection that delivered packets this long counts as good: the backoff starts over.
STABLE_AFTER_S = 10.0
# Reconnect delays for a camera whose bytes are no stream grow to this, not to the
# usual 10 s: parsing its garbage until a deadline costs about a fifth of a core (a
# 2 Mbit/s camera), so it gets a minute's rest in between; a camera that is merely off
# keeps the short cap and its footage resumes quickly.
UNREADABLE_BACKOFF_CAP_S = 60.0


class Source(Protocol):
    """What a worker needs of a stream; StreamSource in production, fakes in tests."""

    display_url: str

    @property
    def facts(self) -> StreamFacts: ...

    @property
    def video_stream(self) -> Any: ...

    def packets(self, stop: threading.Event) -> Iterator[Packet]: ...

    def decode_keyframe(self, packet: Packet) -> Planes | None: ...


OpenSource = Callable[[], AbstractContextManager[Source]]


class Retired(Exception):
    """Raised inside a worker the supervisor gave up on, at its next sign of life."""


class CameraWorker:
    """Owns one camera's stream. `run` is the body of the thread `camera:<id>`."""

    def __init__(
        self,
        camera_id: str,
        open_source: OpenSource,
        assessor: StreamAssessor,
        analysis_interval: float,
        display_url: str,
        recorder: PacketSink | None = None,
        pictures: PictureGate | None = None,
        camera_clock: Callable[[str, float], None] | None = None,
    ) -> None:
        self.camera_id = camera_id
        self.thread_name = f"camera:{camera_id}"
        self.assessor = assessor
        self._open_source = open_source
        self._interval = analysis_interval
        self._display_url = display_url
        self._recorder = recorder
        # With a sub-stream: asked before each keyframe whether this stream's pictures are
        # wanted (only while the sub-stream sends none). None: always.
        self._pictures = pictures
        # Told the camera's clock offset from its RTCP sender reports (CameraClocks.rtcp).
        self._camera_clock = camera_clock
        self._backoff = Backoff()
        self._unreadable_backoff = Backoff(cap=UNREADABLE_BACKOFF_CAP_S)
        self._heartbeat = time.monotonic()
        self._retired = False
        # When this connection's first packet came; None before one did. Only a stream
        # that delivered packets counts as a good connection (a camera that answers the
        # handshake and then sends garbage until the read deadline is not).
        self._first_packet_at: float | None = None

    @property
    def heartbeat(self) -> float:
        """Monotonic time of the worker's last sign of life (the supervisor checks it)."""
        return self._heartbeat

    def _beat(self) -> None:
        if self._retired:
            raise Retired
        self._heartbeat = time.monotonic()

    def retire(self) -> None:
        """Give this worker up while it is stuck (called from the supervisor's thread).

        Its thread cannot be killed, so it is fenced off instead: from now on it records
        nothing (see CameraRecorder.abandon), and at its next sign of life it stops
        without touching the camera's health or recording."""
        self._retired = True
        if self._recorder is not None:
            self._recorder.abandon(self)

    def successor(self) -> CameraWorker:
        """A fresh worker for the same camera, health and recording, to replace this one."""
        return CameraWorker(
            self.camera_id,
            self._open_source,
            self.assessor,
            self._interval,
            self._display_url,
            recorder=self._recorder,
            pictures=self._pictures,
            camera_clock=self._camera_clock,
        )

    def run(self, stop: threading.Event) -> None:
        try:
            self._run(stop)
        except Retired:
            log.info("camera %s: the abandoned worker returned and ends", self.camera_id)
            if self._recorder is not None:
                self._recorder.disconnected(self)  # closes only its own unfinished segment

    def _run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self._beat()
            opened_at: float | None = None
            self._first_packet_at = None
            try:
                with self._open_source() as source:
                    if self._camera_clock is not None and isinstance(source, StreamSource):
                        source.on_camera_clock = partial(self._camera_clock, self.camera_id)
                    opened_at = time.monotonic()
                    self._beat()
                    facts = source.facts
                    log.info(
                        "camera %s: %sconnected to %s (%s %dx%d)",
                        self.camera_id,
                        self.prefix,
                        self._display_url,
                        facts.codec,
                        facts.width,
                        facts.height,
                    )
                    self._connected(source, opened_at)
                    self._pump(source, stop)
                    if not stop.is_set():
                        log.warning("camera %s: %s ended", self.camera_id, self.role)
            except StreamError as exc:
                log.warning("camera %s: %s%s", self.camera_id, self.prefix, exc)
                unreadable = isinstance(exc, UnreadableStream)
            else:
                unreadable = False
            finally:
                # A retired worker's camera belongs to its successor now.
                if opened_at is not None and not self._retired:
                    self._disconnected()
            first = self._first_packet_at
            if first is not None and time.monotonic() - first >= STABLE_AFTER_S:
                self._backoff.reset()
                self._unreadable_backoff.reset()
            backoff = self._unreadable_backoff if unreadable else self._backoff
            self._sleep(stop, backoff.next())

    # What this worker's stream is called in its log lines; `prefix` goes before what
    # happened to it (a camera's main stream needs no name). `label` names the worker in
    # the supervisor's lines, `while_stuck` what its camera lacks while it is stuck.
    role = "stream"
    prefix = ""
    label = "worker"
    while_stuck = "the camera stays down"

    def _connected(self, source: Source, opened_at: float) -> None:
        self.assessor.connected(opened_at, source.facts)
        if self._recorder is not None:
            self._recorder.connected(source.video_stream, self)

    def _disconnected(self) -> None:
        self.assessor.disconnected(time.monotonic())
        if self._recorder is not None:
            self._recorder.disconnected(self)

    def _packet_beat(self) -> None:
        self._beat()
        if self._first_packet_at is None:
            self._first_packet_at = self._heartbeat

    def _pump(self, source: Source, stop: threading.Event) -> None:
        sampler: Sampler = KeyframeSampler(self._interval)
        origin = MAIN_STREAM
        if self._pictures is not None:
            sampler = GatedSampler(sampler, self._pictures)
            # Analysed only while the sub-stream sends nothing: a fallback.
            origin = PictureOrigin("main", fallback=True)
        pump(
            source,
            self.assessor,
            sampler,
            stop,
            beat=self._packet_beat,
            sink=None if self._recorder is None else _OwnedSink(self._recorder, self),
            origin=origin,
        )

    def _sleep(self, stop: threading.Event, seconds: float) -> None:
        """Wait before reconnecting, still showing signs of life to the supervisor."""
        deadline = time.monotonic() + seconds
        while not stop.is_set():
            self._beat()
            left = deadline - time.monotonic()
            if left <= 0:
                return
            stop.wait(min(left, 1.0))


class PacketSink(Protocol):
    """Where packets are recorded (CameraRecorder in production)."""

    def connected(self, stream: Any, owner: object = None) -> None: ...

    def packet(self, packet: Packet, owner: object = None) -> None: ...

    def disconnected(self, owner: object = None) -> None: ...

    def abandon(self, owner: object = None) -> None: ...


class PacketTarget(Protocol):
    """Where `pump` hands each packet."""

    def packet(self, packet: Packet) -> None: ...


class _OwnedSink:
    """A recorder as one worker feeds it: every packet says whose it is."""

    def __init__(self, recorder: PacketSink, owner: object) -> None:
        self._recorder = recorder
        self._owner = owner

    def packet(self, packet: Packet) -> None:
        self._recorder.packet(packet, self._owner)


class Sampler(Protocol):
    """Chooses which packets become analysed pictures."""

    def pictures(self, source: Source, packet: Packet) -> list[Planes]: ...


class PictureGate(Protocol):
    """Whether the main stream's pictures are wanted now (AnalysisRoute in production)."""

    def main_wanted(self, now: float) -> bool: ...


class GatedSampler:
    """A sampler that decodes nothing while the gate says the pictures come from elsewhere.

    Asked at keyframes only: the gate takes a lock, and keyframes are one packet in 30."""

    def __init__(self, sampler: Sampler, gate: PictureGate) -> None:
        self._sampler = sampler
        self._gate = gate

    def pictures(self, source: Source, packet: Packet) -> list[Planes]:
        if not packet.keyframe or not self._gate.main_wanted(time.monotonic()):
            return []
        return self._sampler.pictures(source, packet)


class KeyframeSampler:
    """The daemon's way: decode one keyframe per analysis interval, skip everything else."""

    def __init__(self, interval: float) -> None:
        self._interval = interval
        self._next = float("-inf")

    def pictures(self, source: Source, packet: Packet) -> list[Planes]:
        if not packet.keyframe or packet.time < self._next:
            return []
        planes = source.decode_keyframe(packet)
        if planes is None:
            return []
        # Keyframes arrive with jitter: one a hair early must not push the sample a
        # whole keyframe interval later.
        self._next = packet.time + self._interval - min(KEYFRAME_SLACK_S, self._interval / 2)
        return [planes]


def pump(
    source: Source,
    assessor: StreamAssessor,
    sampler: Sampler,
    stop: threading.Event,
    *,
    beat: Callable[[], None] = lambda: None,
    sink: PacketTarget | None = None,
    origin: PictureOrigin = MAIN_STREAM,
) -> None:
    """Feed every packet to the recording (if any) and the assessor, and the sampled
    pictures too, until stop. One demux serves both."""
    for packet in source.packets(stop):
        beat()
        if sink is not None:
            sink.packet(packet)
        assessor.packet(packet.time, packet.size, packet.keyframe, packet.stream_time)
        if analyse(assessor, packet.time, sampler.pictures(source, packet), origin):
            memory.release_freed()  # the decoded picture is gone by now
        if stop.is_set():
            return


def analyse(
    assessor: StreamAssessor, t: float, pictures: list[Planes], origin: PictureOrigin
) -> bool:
    """Hand the pictures to the assessor; whether there were any."""
    for planes in pictures:
        assessor.picture(t, planes, origin)
    return bool(pictures)


def open_stream(url: str, display_url: str, rtsp_transport: str) -> OpenSource:
    """A factory opening the real stream for one camera."""

    def opener() -> StreamSource:
        return StreamSource(url, display_url=display_url, rtsp_transport=rtsp_transport)

    return opener
