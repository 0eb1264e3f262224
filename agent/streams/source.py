"""One camera stream opened with PyAV: demux packets, decode single pictures on demand."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import av
import numpy as np

from agent.errors import StreamError, UnreadableStream
from agent.quality.assess import SourceKind, StreamFacts
from agent.quality.metrics import GreyImage, Planes
from agent.streams.pacing import BLOCKED_S, ReadPacer
from agent.streams.rtcp_clock import RtcpClock

log = logging.getLogger(__name__)

# Seconds a network read or connect may wait. A camera that stops sending raises
# within about twice this (FFmpeg's RTSP reader waits once more before giving up)
# instead of hanging its thread; no_signal is reported after 5 s regardless.
IO_TIMEOUT_S = 5.0
# FFmpeg's socket timeout never fires while bytes keep coming: a camera that sends
# garbage, or one byte a second, would hold a connect or a read for ever. So every
# blocking FFmpeg call on a network stream also has a deadline (PyAV's interrupt
# callback). Opening has two calls (the RTSP handshake, then probing the stream, which
# needs one keyframe from cameras that send their parameter sets in band), each with
# this deadline; both together stay well inside the supervisor's WEDGED_AFTER_S.
OPEN_DEADLINE_S = 10.0
# One demuxed packet takes a frame interval; a silent camera ends a read through the
# socket timeout first. Checked on every I/O step, which costs about 0.06-0.1 % of a
# core per 1080p camera (bench/README.md, "Faults").
READ_DEADLINE_S = 10.0


@dataclass(frozen=True)
class Packet:
    """What the rest of the agent needs of one demuxed video packet."""

    time: float  # seconds: stream time for files read fast, else monotonic arrival
    size: int
    keyframe: bool
    raw: Any  # the av.Packet, for decoding (and, later, for recording)
    stream_time: float | None = None  # the packet's own timestamp, in seconds


def _reason(exc: BaseException) -> str:
    """Why a PyAV call failed, without the URL: FFmpeg errors carry the URL they were
    given, and that URL holds the camera's password."""
    reason = getattr(exc, "strerror", None) or str(exc.args[0] if exc.args else "")
    return str(reason) or type(exc).__name__


def source_kind(url: str) -> SourceKind:
    scheme = urlsplit(url).scheme.lower()
    if scheme in ("rtsp", "rtsps"):
        return "rtsp"
    if scheme in ("http", "https"):
        return "http"
    return "file"


def _file_path(url: str) -> str:
    return urlsplit(url).path if url.startswith("file://") else url


class StreamSource:
    """An open stream. Use as a context manager; every PyAV error leaves as StreamError.

    `realtime` paces a file at its own frame rate and loops it (a demo aid: a file
    stands in for a camera). Without it a file is read as fast as possible and packet
    times are stream time, which is what `probe` wants.
    """

    def __init__(
        self,
        url: str,
        *,
        display_url: str | None = None,
        rtsp_transport: str = "tcp",
        realtime: bool = True,
        io_timeout: float = IO_TIMEOUT_S,
    ) -> None:
        self.url = url
        self.display_url = display_url or url
        self.kind = source_kind(url)
        self._transport = rtsp_transport
        self._realtime = realtime
        self._io_timeout_us = str(round(io_timeout * 1_000_000))
        self._container: Any = None
        self._stream: Any = None
        self._seconds_per_tick: float | None = None
        # Called with the camera's clock offset read from its RTCP sender reports
        # (agent/streams/rtcp_clock.py); set by the camera's worker.
        self.on_camera_clock: Callable[[float], None] | None = None
        # Over TCP the kernel buffers what arrives while the reader pauses (see pacing);
        # RTSP over UDP would drop it.
        self._paced = self.kind == "http" or (self.kind == "rtsp" and rtsp_transport == "tcp")

    def __enter__(self) -> StreamSource:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def open(self) -> None:
        options: dict[str, str] = {}
        target = self.url
        deadlines: tuple[float, float] | None = (OPEN_DEADLINE_S, READ_DEADLINE_S)
        if self.kind == "rtsp":
            options["rtsp_transport"] = self._transport
            options["timeout"] = self._io_timeout_us
        elif self.kind == "http":
            options["rw_timeout"] = self._io_timeout_us
        elif self.kind == "file":
            target = _file_path(self.url)
            if not Path(target).is_file():
                raise StreamError(f"{target}: no such file")
            deadlines = None  # a local file cannot trickle
        began = time.monotonic()
        try:
            container = av.open(target, options=options, timeout=deadlines)
        except (av.FFmpegError, OSError) as exc:
            reason = _reason(exc)
            if deadlines is not None and time.monotonic() - began >= OPEN_DEADLINE_S:
                # FFmpeg reports a deadline as whatever its parser was doing then. Past
                # the socket timeout, so bytes were arriving.
                raise UnreadableStream(
                    f"cannot open {self.display_url}: no stream within "
                    f"{OPEN_DEADLINE_S:.0f} s although data arrives ({reason})"
                ) from None
            raise StreamError(f"cannot open {self.display_url}: {reason}") from None
        if not container.streams.video:
            container.close()
            raise StreamError(f"{self.display_url} has no video stream")
        self._container = container
        self._stream = container.streams.video[0]

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None

    @property
    def video_stream(self) -> Any:
        """The demuxed video stream (a template for recording without re-encoding)."""
        return self._stream

    @property
    def facts(self) -> StreamFacts:
        ctx = self._stream.codec_context
        return StreamFacts(
            codec=str(ctx.name),
            width=int(ctx.width or 0),
            height=int(ctx.height or 0),
            source=self.kind,
        )

    def packets(self, stop: threading.Event) -> Iterator[Packet]:
        """Video packets until the stream ends (files: forever when looping) or stop is set."""
        start_wall = time.monotonic()
        offset = 0.0  # stream seconds added by earlier loops of a file
        last_time = 0.0
        pacer = ReadPacer() if self._paced else None
        pause = 0.0
        asked = time.monotonic()
        rtcp = None
        if self.kind == "rtsp" and self.on_camera_clock is not None:
            rtcp = RtcpClock(self.on_camera_clock)
        while not stop.is_set():
            for raw in self._demux():
                if stop.is_set():
                    return
                if raw.size == 0:  # demuxer flush marker at end of stream
                    continue
                stream_time = self._stream_time(raw)
                if rtcp is not None and raw.pts is not None and self._seconds_per_tick:
                    rtcp.packet(
                        self._container.start_time_realtime,
                        float(raw.pts) * self._seconds_per_tick,
                        time.monotonic() - asked >= BLOCKED_S,  # it waited for the network
                    )
                if self.kind == "file" and not self._realtime:
                    at = offset + stream_time if stream_time is not None else last_time
                elif self.kind == "file":
                    at = offset + (stream_time or 0.0)
                    stop.wait(max(0.0, start_wall + at - time.monotonic()))
                    at = time.monotonic()
                elif pacer is not None:
                    at, pause = pacer.step(asked, time.monotonic(), stream_time)
                else:
                    at = time.monotonic()
                last_time = at
                own = None if stream_time is None else offset + stream_time
                if offset and self._seconds_per_tick:
                    # A looped file starts its timestamps again; shift them on, or a
                    # recording of it would see time run backwards at the seam.
                    ticks = round(offset / self._seconds_per_tick)
                    raw.dts = None if raw.dts is None else raw.dts + ticks
                    raw.pts = None if raw.pts is None else raw.pts + ticks
                yield Packet(at, int(raw.size), bool(raw.is_keyframe), raw, own)
                if pause:
                    stop.wait(pause)
                    pause = 0.0
                asked = time.monotonic()
            if self.kind != "file" or not self._realtime:
                return
            offset += self._duration()
            self._rewind()

    def _demux(self) -> Iterator[Any]:
        try:
            yield from self._container.demux(self._stream)
        except av.ExitError:
            # The interrupt callback ended the read: bytes came, but no packet in time.
            raise UnreadableStream(
                f"reading {self.display_url}: no packet within {READ_DEADLINE_S:.0f} s "
                "although data arrives"
            ) from None
        except (av.FFmpegError, OSError) as exc:
            raise StreamError(f"reading {self.display_url}: {_reason(exc)}") from None

    def _stream_time(self, raw: Any) -> float | None:
        ts = raw.dts if raw.dts is not None else raw.pts
        if ts is None:
            return None
        if self._seconds_per_tick is None:
            base = raw.time_base
            if base is None:
                return None
            # float once: Fraction arithmetic on every packet costs more than the rest.
            self._seconds_per_tick = float(base)
        return float(ts) * self._seconds_per_tick

    def _duration(self) -> float:
        stream = self._stream
        if stream.duration is not None and stream.time_base is not None:
            return float(stream.duration * stream.time_base)
        if self._container.duration is not None:
            return float(self._container.duration / av.time_base)
        return 0.0

    def _rewind(self) -> None:
        try:
            self._container.seek(0, stream=self._stream)
        except av.FFmpegError as exc:
            raise StreamError(f"cannot loop {self.display_url}: {_reason(exc)}") from None

    def decode_keyframe(self, packet: Packet) -> Planes | None:
        """The planes of one keyframe, decoded with a fresh decoder.

        A fresh decoder per sample is cheap next to the decode itself and needs no
        earlier packets, so every other packet can be skipped.
        """
        ctx = av.CodecContext.create(self._stream.codec_context.name, "r")
        if self._stream.codec_context.extradata:
            ctx.extradata = self._stream.codec_context.extradata
        ctx.thread_count = 1  # one picture: threads only add latency
        try:
            frames = list(ctx.decode(packet.raw))
            frames.extend(ctx.decode(None))
        except av.FFmpegError as exc:
            log.debug("%s: keyframe did not decode: %s", self.display_url, _reason(exc))
            return None
        return planes_of(frames[0]) if frames else None

    def decoder(self) -> Decoder:
        """A decoder that sees every packet (used by `probe` to sample densely)."""
        return Decoder(self._stream)


class Decoder:
    """Decodes consecutive packets of one stream; for dense sampling."""

    def __init__(self, stream: Any) -> None:
        self._ctx = av.CodecContext.create(stream.codec_context.name, "r")
        if stream.codec_context.extradata:
            self._ctx.extradata = stream.codec_context.extradata

    def decode(self, packet: Packet) -> list[Planes]:
        try:
            return [planes_of(frame) for frame in self._ctx.decode(packet.raw)]
        except av.FFmpegError as exc:
            log.debug("packet did not decode: %s", exc)
            return []


def _plane(plane: Any, width: int, height: int) -> GreyImage:
    rows = np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)[:height]
    return rows[:, :width]


def planes_of(frame: Any) -> Planes:
    """Luma and chroma planes as 2-D arrays, without a colour conversion where possible."""
    name = frame.format.name
    if name.startswith(("yuv", "yuvj")) and len(frame.planes) >= 3:
        y, u, v = frame.planes[:3]
        return Planes(
            _plane(y, frame.width, frame.height),
            _plane(u, u.width, u.height),
            _plane(v, v.width, v.height),
        )
    if name in ("nv12", "nv21"):
        y, uv = frame.planes[:2]
        both = _plane(uv, uv.width * 2, uv.height)
        first, second = both[:, 0::2], both[:, 1::2]
        u, v = (first, second) if name == "nv12" else (second, first)
        return Planes(_plane(y, frame.width, frame.height), u, v)
    if name.startswith("gray"):
        return Planes(frame.to_ndarray(format="gray"))
    return planes_of(frame.reformat(format="yuv420p"))
