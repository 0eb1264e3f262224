"""A small RTSP camera serving crafted H.264 RTP, for the timestamp patterns real cameras
send (issue 15): parameter sets out of band, no or repeated timestamps, backwards steps,
B-frames, RTP timestamp wrap, a resolution change and a restarting clock.

A real TCP RTSP server (OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN) with RTP interleaved on
the RTSP connection, as cameras serve it over TCP: the agent's FFmpeg demuxer (rtsp.c,
rtpdec_h264.c and the H.264 parser behind them) turns it into exactly the packets a
camera of that kind gives the agent. GStreamer's server (tests/support/rtsp.py) cannot
misbehave on purpose; this one only misbehaves.

Each URL path is one pattern (`PATTERNS`); the pictures are encoded once with libx264
(PyAV) and loop forever in real time.
"""

from __future__ import annotations

import base64
import contextlib
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np

CLOCK_HZ = 90_000
FPS = 10
GOP = 10  # a keyframe a second
TICKS = CLOCK_HZ // FPS
# RTP payloads above this are split into FU-A fragments, as cameras do for a 1500-byte MTU.
MAX_PAYLOAD = 1400
PAYLOAD_TYPE = 96

NAL_SPS, NAL_PPS, NAL_IDR = 7, 8, 5
SKIPPED_NALS = {6, 9}  # SEI and access unit delimiters: not needed, cameras vary


@dataclass(frozen=True)
class AccessUnit:
    """One encoded picture: its slice NALs (no parameter sets) and its time in frames."""

    nals: tuple[bytes, ...]
    keyframe: bool
    pts: int  # presentation time in frames


@dataclass(frozen=True)
class Encoded:
    sps: bytes
    pps: bytes
    units: tuple[AccessUnit, ...]
    width: int
    height: int


def _nals(annexb: bytes) -> list[bytes]:
    parts = annexb.replace(b"\x00\x00\x00\x01", b"\x00\x00\x01").split(b"\x00\x00\x01")
    return [p.rstrip(b"\x00") for p in parts if p]


def encode(width: int = 320, height: int = 240, frames: int = 40, *, b_frames: int = 0) -> Encoded:
    """Encode a moving picture with libx264 and split it into parameter sets and pictures."""
    codec = av.CodecContext.create("libx264", "w")
    codec.width, codec.height = width, height
    codec.pix_fmt = "yuv420p"
    codec.framerate = Fraction(FPS)
    codec.gop_size = GOP
    codec.max_b_frames = b_frames
    options = {"preset": "ultrafast", "keyint_min": str(GOP), "scenecut": "0"}
    if not b_frames:
        options["tune"] = "zerolatency"
    codec.options = options
    ys, xs = np.mgrid[0:height, 0:width]
    packets = []
    for i in range(frames):
        picture = ((xs + ys + i * 8) % 256).astype(np.uint8)
        frame = av.VideoFrame.from_ndarray(np.dstack([picture] * 3), format="rgb24")
        frame = frame.reformat(format="yuv420p")
        frame.pts = i
        packets.extend(codec.encode(frame))
    packets.extend(codec.encode(None))
    sps = pps = b""
    units = []
    for packet in packets:
        nals = []
        for nal in _nals(bytes(packet)):
            kind = nal[0] & 0x1F
            if kind == NAL_SPS:
                sps = nal
            elif kind == NAL_PPS:
                pps = nal
            elif kind not in SKIPPED_NALS:
                nals.append(nal)
        assert packet.pts is not None
        units.append(AccessUnit(tuple(nals), bool(packet.is_keyframe), int(packet.pts)))
    return Encoded(sps, pps, tuple(units), width, height)


@dataclass(frozen=True)
class RtpPacket:
    timestamp: int
    marker: bool
    payload: bytes


@dataclass(frozen=True)
class Frame:
    """What is sent for one picture, then how long to wait before the next."""

    packets: tuple[RtpPacket, ...]
    wait: float = 1.0 / FPS


def fragments(nal: bytes, timestamp: int, last: bool) -> list[RtpPacket]:
    """One NAL as a single-NAL packet or FU-A fragments (RFC 6184)."""
    if len(nal) <= MAX_PAYLOAD:
        return [RtpPacket(timestamp, last, nal)]
    head, body = nal[0], nal[1:]
    indicator = bytes([(head & 0xE0) | 28])
    out = []
    for start in range(0, len(body), MAX_PAYLOAD):
        piece = body[start : start + MAX_PAYLOAD]
        first, end = start == 0, start + MAX_PAYLOAD >= len(body)
        fu_header = bytes([(0x80 if first else 0) | (0x40 if end else 0) | (head & 0x1F)])
        out.append(RtpPacket(timestamp, last and end, indicator + fu_header + piece))
    return out


def picture(unit: AccessUnit, timestamp: int) -> list[RtpPacket]:
    out: list[RtpPacket] = []
    for i, nal in enumerate(unit.nals):
        out.extend(fragments(nal, timestamp, i == len(unit.nals) - 1))
    return out


def stap_a(nals: list[bytes], timestamp: int) -> RtpPacket:
    body = b"".join(struct.pack(">H", len(n)) + n for n in nals)
    return RtpPacket(timestamp, False, bytes([0x18]) + body)


# A pattern: from the encoded loop, the frames to send, forever.
Pattern = Callable[["Library"], Iterator[Frame]]


def _loop(enc: Encoded) -> Iterator[tuple[int, AccessUnit]]:
    """(presentation frame number, access unit) in decode order, looping the pictures."""
    base = 0
    while True:
        for unit in enc.units:
            yield base + unit.pts, unit
        base += len(enc.units)


def _in_band(enc: Encoded, *, start: int = 0) -> Iterator[Frame]:
    """What a well-behaved camera sends: SPS and PPS in a STAP-A before every keyframe."""
    for n, unit in _loop(enc):
        ts = (start + n * TICKS) & 0xFFFFFFFF
        packets = [stap_a([enc.sps, enc.pps], ts)] if unit.keyframe else []
        yield Frame(tuple(packets + picture(unit, ts)))


def out_of_band(lib: Library) -> Iterator[Frame]:
    """SPS and PPS as packets of their own before every keyframe, the SPS stamped with
    the previous picture's time: FFmpeg's parser gives the first keyframe no timestamp
    and every later one the DTS of the picture before it (issue 15's EINVAL)."""
    enc = lib.plain
    for n, unit in _loop(enc):
        ts = n * TICKS
        packets = []
        if unit.keyframe:
            packets = [
                RtpPacket(ts - TICKS, True, enc.sps),
                RtpPacket(ts, True, enc.pps),
            ]
        yield Frame(tuple(packets + picture(unit, ts)))


def sdp_only(lib: Library) -> Iterator[Frame]:
    """Parameter sets only in the SDP's sprop-parameter-sets, never in the stream."""
    enc = lib.plain
    for n, unit in _loop(enc):
        yield Frame(tuple(picture(unit, n * TICKS)))


def unstamped_params(lib: Library) -> Iterator[Frame]:
    """SPS and PPS in packets of their own stamped 0 (a camera that does not stamp them):
    the keyframe after them comes out of FFmpeg's parser stamped a frame before 0."""
    enc = lib.plain
    for n, unit in _loop(enc):
        ts = n * TICKS
        packets = []
        if unit.keyframe:
            packets = [RtpPacket(0, True, enc.sps), RtpPacket(0, True, enc.pps)]
        yield Frame(tuple(packets + picture(unit, ts)))


def repeated(lib: Library) -> Iterator[Frame]:
    """Every fifth picture repeats the previous picture's timestamp (a camera stamping
    by a coarse capture tick): the demuxer hands out equal DTS."""
    enc = lib.plain
    for n, unit in _loop(enc):
        stamp = n - 1 if n % 5 == 4 else n
        yield Frame(tuple(picture(unit, stamp * TICKS)))


def backwards(lib: Library) -> Iterator[Frame]:
    """Every seventh picture is stamped two frames early (a jittery encoder clock)."""
    enc = lib.plain
    for n, unit in _loop(enc):
        stamp = n - 2 if n % 7 == 6 else n
        yield Frame(tuple(picture(unit, stamp * TICKS)))


def b_frames(lib: Library) -> Iterator[Frame]:
    """Pictures sent in decode order stamped with their presentation time."""
    enc = lib.b_frames
    for n, unit in _loop(enc):
        ts = n * TICKS
        packets = [stap_a([enc.sps, enc.pps], ts)] if unit.keyframe else []
        yield Frame(tuple(packets + picture(unit, ts)))


def wrap(lib: Library) -> Iterator[Frame]:
    """RTP timestamps that wrap past 2^32 three seconds in."""
    return _in_band(lib.plain, start=2**32 - 3 * CLOCK_HZ)


def restarting_clock(lib: Library) -> Iterator[Frame]:
    """The camera's clock starts again mid-GOP every 4 s (an encoder restart without
    ending the session), alternately back at 0 and 3 hours on: FFmpeg's demuxer then
    hands out a DTS that jumps back by seconds or hours, or forward by hours."""
    enc = lib.plain
    start = base = restarts = 0
    for n, unit in _loop(enc):
        if n % (4 * FPS) == 25:
            restarts += 1
            start, base = (0 if restarts % 2 else 987_654_321), n
        ts = (start + (n - base) * TICKS) & 0xFFFFFFFF
        packets = [stap_a([enc.sps, enc.pps], ts)] if unit.keyframe else []
        yield Frame(tuple(packets + picture(unit, ts)))


def resolution_change(lib: Library) -> Iterator[Frame]:
    """The picture size changes every 4 s (a camera's settings changed while streaming);
    the new parameter sets come in band with the next keyframe."""
    n = 0
    while True:
        for enc in (lib.plain, lib.large):
            for unit in enc.units:
                ts = n * TICKS
                packets = [stap_a([enc.sps, enc.pps], ts)] if unit.keyframe else []
                yield Frame(tuple(packets + picture(unit, ts)))
                n += 1


PATTERNS: dict[str, Pattern] = {
    "in_band": lambda lib: _in_band(lib.plain),
    "out_of_band": out_of_band,
    "sdp_only": sdp_only,
    "unstamped_params": unstamped_params,
    "repeated": repeated,
    "backwards": backwards,
    "b_frames": b_frames,
    "wrap": wrap,
    "restarting_clock": restarting_clock,
    "resolution_change": resolution_change,
}


class Library:
    """The encoded loops, made once (libx264 takes a fraction of a second each)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._made: dict[str, Encoded] = {}

    def _get(self, name: str, make: Callable[[], Encoded]) -> Encoded:
        with self._lock:
            if name not in self._made:
                self._made[name] = make()
            return self._made[name]

    @property
    def plain(self) -> Encoded:
        return self._get("plain", encode)

    @property
    def large(self) -> Encoded:
        return self._get("large", lambda: encode(480, 272))

    @property
    def b_frames(self) -> Encoded:
        return self._get("b_frames", lambda: encode(b_frames=2))


def sdp(enc: Encoded) -> str:
    """The session description; the parameter sets always in sprop-parameter-sets."""
    profile = enc.sps[1:4].hex()
    sets = ",".join(base64.b64encode(n).decode() for n in (enc.sps, enc.pps))
    fmtp = (
        f"a=fmtp:{PAYLOAD_TYPE} packetization-mode=1;profile-level-id={profile};"
        f"sprop-parameter-sets={sets}"
    )
    return (
        "v=0\r\n"
        "o=- 0 0 IN IP4 127.0.0.1\r\n"
        "s=crafted camera\r\n"
        "c=IN IP4 0.0.0.0\r\n"
        "t=0 0\r\n"
        f"m=video 0 RTP/AVP {PAYLOAD_TYPE}\r\n"
        f"a=rtpmap:{PAYLOAD_TYPE} H264/{CLOCK_HZ}\r\n"
        f"{fmtp}\r\n"
        "a=control:track1\r\n"
    )


class RtpCamera:
    """The crafted camera on rtsp://127.0.0.1:<port>/<pattern>, served from threads.

    `sessions` counts PLAYs per pattern: a reconnect shows there.
    """

    def __init__(self) -> None:
        self.library = Library()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._conns: list[socket.socket] = []
        self.sessions: dict[str, int] = {}

    def url(self, pattern: str) -> str:
        if pattern not in PATTERNS:
            raise ValueError(f"no pattern {pattern!r}; there are {', '.join(PATTERNS)}")
        return f"rtsp://127.0.0.1:{self.port}/{pattern}"

    def start(self) -> RtpCamera:
        self.library.plain  # noqa: B018 - encode before a client waits for it
        self._spawn(self._accept)
        return self

    def _spawn(self, target: Callable[..., None], *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True, name="rtp-camera")
        thread.start()
        self._threads.append(thread)

    def _accept(self) -> None:
        self._listener.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._conns.append(conn)
            self._spawn(self._serve, conn)

    def _serve(self, conn: socket.socket) -> None:
        try:
            Session(self, conn).run()
        except OSError:
            pass
        finally:
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._listener.close()
        for conn in self._conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        for thread in self._threads:
            thread.join(2.0)

    def __enter__(self) -> RtpCamera:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class Session:
    """One RTSP client: requests on the connection, then RTP interleaved on channel 0."""

    def __init__(self, camera: RtpCamera, conn: socket.socket) -> None:
        self._camera = camera
        self._conn = conn
        self._buffer = b""
        self._pattern = ""
        self._playing = threading.Event()
        self._send_lock = threading.Lock()

    def run(self) -> None:
        self._conn.settimeout(0.5)
        while not self._camera._stop.is_set():
            try:
                data = self._conn.recv(65536)
            except TimeoutError:
                continue
            if not data:
                return
            self._buffer += data
            self._handle_buffer()

    def _handle_buffer(self) -> None:
        while self._buffer:
            if self._buffer[0:1] == b"$":  # the client's RTCP, interleaved
                if len(self._buffer) < 4:
                    return
                size = struct.unpack(">H", self._buffer[2:4])[0]
                if len(self._buffer) < 4 + size:
                    return
                self._buffer = self._buffer[4 + size :]
                continue
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self._buffer[:end].decode("latin-1")
            self._buffer = self._buffer[end + 4 :]
            lines = head.split("\r\n")
            headers = {}
            for line in lines[1:]:
                key, _, value = line.partition(":")
                headers[key.strip().lower()] = value.strip()
            body = int(headers.get("content-length", "0"))
            self._buffer = self._buffer[body:]
            self._request(lines[0], headers)

    def _reply(self, cseq: str, extra: str = "", body: str = "") -> None:
        text = f"RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\n{extra}"
        if body:
            text += f"Content-Type: application/sdp\r\nContent-Length: {len(body)}\r\n"
        text += "\r\n" + body
        with self._send_lock:
            self._conn.sendall(text.encode())

    def _request(self, line: str, headers: dict[str, str]) -> None:
        method, url, _ = line.split(" ", 2)
        cseq = headers.get("cseq", "0")
        if method == "DESCRIBE":
            path = url.split("/", 3)[3] if url.count("/") >= 3 else ""
            self._pattern = path.split("/")[0]
            if self._pattern not in PATTERNS:
                with self._send_lock:
                    self._conn.sendall(f"RTSP/1.0 404 Not Found\r\nCSeq: {cseq}\r\n\r\n".encode())
                return
            enc = self._camera.library.plain
            if self._pattern == "b_frames":
                enc = self._camera.library.b_frames
            described = sdp(enc)
            self._reply(cseq, f"Content-Base: {url.rstrip('/')}/\r\n", described)
        elif method == "SETUP":
            self._reply(
                cseq, "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\nSession: 12345678\r\n"
            )
        elif method == "PLAY":
            self._reply(cseq, "Session: 12345678\r\n")
            sessions = self._camera.sessions
            sessions[self._pattern] = sessions.get(self._pattern, 0) + 1
            if not self._playing.is_set():
                self._playing.set()
                self._camera._spawn(self._stream)
        else:  # OPTIONS, GET_PARAMETER (keep-alive), TEARDOWN
            public = "Public: OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, GET_PARAMETER\r\n"
            self._reply(cseq, public if method == "OPTIONS" else "")

    def _stream(self) -> None:
        frames = PATTERNS[self._pattern](self._camera.library)
        seq = 0
        ssrc = 0x1234ABCD
        due = time.monotonic()
        try:
            for frame in frames:
                if self._camera._stop.is_set():
                    return
                chunks = []
                for packet in frame.packets:
                    header = struct.pack(
                        ">BBHII",
                        0x80,
                        (0x80 if packet.marker else 0) | PAYLOAD_TYPE,
                        seq & 0xFFFF,
                        packet.timestamp & 0xFFFFFFFF,
                        ssrc,
                    )
                    seq += 1
                    rtp = header + packet.payload
                    chunks.append(b"$\x00" + struct.pack(">H", len(rtp)) + rtp)
                with self._send_lock:
                    self._conn.sendall(b"".join(chunks))
                due += frame.wait
                time.sleep(max(0.0, due - time.monotonic()))
        except OSError:
            return
