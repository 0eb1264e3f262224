"""Cameras that misbehave at the byte level: real TCP servers speaking broken RTSP.

Each `GarbageCamera` listens on 127.0.0.1:<free port> and answers every connection the
way one kind of broken camera firmware (or something else squatting on port 554) does:

- `noise`: random bytes from the first byte on, forever;
- `trickle`: one byte a second, forever, of a reply header that never ends;
- `huge_sdp`: DESCRIBE answered with a Content-Length of a gigabyte and an SDP that is
  garbage after its first lines;
- `interleaved_noise`: a valid RTSP handshake (OPTIONS, DESCRIBE with a real H.264 SDP,
  SETUP, PLAY), then random bytes where the interleaved RTP packets belong;
- `rtp_garbage`: the same handshake, then well-framed interleaved RTP packets whose
  payload is random bytes.

They send from a pool of random bytes made once, paced (by default at a camera's rate),
so that four of them cost the test machine little CPU. `connections` counts accepted
connections (how often the agent came back for more).
"""

from __future__ import annotations

import itertools
import os
import socket
import struct
import threading
import time
from collections.abc import Callable
from typing import Literal

from tests.support import free_port

Mode = Literal["noise", "trickle", "huge_sdp", "interleaved_noise", "rtp_garbage"]
MODES: tuple[Mode, ...] = ("noise", "trickle", "huge_sdp", "interleaved_noise", "rtp_garbage")

# Bytes a second a garbage stream sends: about a 2 Mbit/s camera's worth.
GARBAGE_BYTES_PER_S = 256 * 1024
_CHUNK = 4096
_POOL = os.urandom(1 << 20)
# One packet's worth of an H.264 baseline 320x240 stream's parameter sets (from x264),
# so the client believes the SDP and starts reading packets.
_SPS = "Z0LADNkBQfoQAAADABAAAAMB4PFCpIA="
_PPS = "aMuDyyA="
HUGE_CONTENT_LENGTH = 1 << 30
_REQUEST_LIMIT = 16384


def _garbage(offset: int, size: int) -> bytes:
    start = offset % (len(_POOL) - size)
    return _POOL[start : start + size]


class GarbageCamera:
    def __init__(self, mode: Mode, *, bytes_per_s: float = GARBAGE_BYTES_PER_S) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown garbage camera mode {mode!r}; one of {MODES}")
        self.mode = mode
        self.bytes_per_s = bytes_per_s
        self.port = free_port()
        self.connections = 0
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, name=f"garbage-{mode}", daemon=True).start()

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}/stream"

    def close(self) -> None:
        self._closed.set()
        self._listener.close()
        with self._lock:
            for sock in self._sockets:
                sock.close()

    def __enter__(self) -> GarbageCamera:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _accept(self) -> None:
        serve: dict[Mode, Callable[[socket.socket], None]] = {
            "noise": self._noise,
            "trickle": self._trickle,
            "rtp_garbage": self._after_handshake,
            "interleaved_noise": self._after_handshake,
            "huge_sdp": self._huge_sdp,
        }
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self._sockets.append(client)
                self.connections += 1
            threading.Thread(
                target=self._serve, args=(client, serve[self.mode]), daemon=True
            ).start()

    def _serve(self, client: socket.socket, body: Callable[[socket.socket], None]) -> None:
        try:
            body(client)
        except OSError:
            pass  # the agent hung up, or we are closing
        finally:
            client.close()
            with self._lock:
                if client in self._sockets:
                    self._sockets.remove(client)

    def _paced(self, client: socket.socket, chunks: Callable[[int], bytes]) -> None:
        """Send chunks(n) for n = 0, 1, ... at bytes_per_s until closed."""
        began = time.monotonic()
        sent = 0
        for n in itertools.count():
            if self._closed.is_set():
                return
            data = chunks(n)
            client.sendall(data)
            sent += len(data)
            ahead = began + sent / self.bytes_per_s - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)

    def _noise(self, client: socket.socket) -> None:
        self._paced(client, lambda n: _garbage(n * _CHUNK, _CHUNK))

    def _trickle(self, client: socket.socket) -> None:
        header = b"RTSP/1.0 200 OK\r\nCSeq: 1\r\nX-Firmware-Says: "
        for n in itertools.count():
            if self._closed.wait(1.0):
                return
            client.sendall(header[n : n + 1] if n < len(header) else b"a")

    def _after_handshake(self, client: socket.socket) -> None:
        """The handshake of a real camera, then garbage (interleaved_noise, rtp_garbage)."""
        reader = _RequestReader(client)
        while True:
            method, cseq = reader.next_request()
            if method == "DESCRIBE":
                sdp = _sdp(self.port).encode()
                _reply(client, cseq, "Content-Type: application/sdp\r\n", sdp)
            elif method == "SETUP":
                _reply(
                    client,
                    cseq,
                    "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\nSession: 1\r\n",
                )
            elif method == "PLAY":
                _reply(client, cseq, "Session: 1\r\n")
                break
            else:
                _reply(client, cseq, "Public: OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN\r\n")

        def packet(n: int) -> bytes:
            payload = _garbage(n * 1400, 1400)
            rtp = struct.pack("!BBHII", 0x80, 96, n & 0xFFFF, (n * 6000) & 0xFFFFFFFF, 1)
            return b"$\x00" + struct.pack("!H", len(rtp) + len(payload)) + rtp + payload

        if self.mode == "interleaved_noise":
            self._paced(client, lambda n: _garbage(n * _CHUNK, _CHUNK))
        else:
            self._paced(client, packet)

    def _huge_sdp(self, client: socket.socket) -> None:
        reader = _RequestReader(client)
        while True:
            method, cseq = reader.next_request()
            if method == "DESCRIBE":
                break
            _reply(client, cseq, "Public: OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN\r\n")
        head = (
            f"RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\nContent-Type: application/sdp\r\n"
            f"Content-Length: {HUGE_CONTENT_LENGTH}\r\n\r\n" + _sdp(self.port)
        )
        client.sendall(head.encode())
        self._paced(client, lambda n: _garbage(n * _CHUNK, _CHUNK))


def _sdp(port: int) -> str:
    return (
        "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=garbage\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\n"
        "m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n"
        f"a=fmtp:96 packetization-mode=1;sprop-parameter-sets={_SPS},{_PPS}\r\n"
        f"a=control:rtsp://127.0.0.1:{port}/stream/track1\r\n"
    )


def _reply(client: socket.socket, cseq: str, headers: str, body: bytes = b"") -> None:
    length = f"Content-Length: {len(body)}\r\n" if body else ""
    head = f"RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\n{headers}{length}\r\n"
    client.sendall(head.encode() + body)


class _RequestReader:
    """RTSP requests from a client: (method, CSeq), one at a time."""

    def __init__(self, client: socket.socket) -> None:
        self._client = client
        self._buffer = b""

    def next_request(self) -> tuple[str, str]:
        while b"\r\n\r\n" not in self._buffer:
            data = self._client.recv(_CHUNK)
            if not data or len(self._buffer) > _REQUEST_LIMIT:
                raise ConnectionResetError("the client hung up")
            self._buffer += data
        head, self._buffer = self._buffer.split(b"\r\n\r\n", 1)
        lines = head.decode(errors="replace").split("\r\n")
        method = lines[0].split(" ", 1)[0]
        cseq = next(
            (line.split(":", 1)[1].strip() for line in lines if line.lower().startswith("cseq:")),
            "0",
        )
        return method, cseq
