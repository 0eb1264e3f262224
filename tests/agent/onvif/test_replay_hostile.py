"""A hostile or broken recorder on the other end of an ONVIF replay: each is refused with an
error that says what was wrong, within seconds, having written nothing. The recorder is a
small scripted RTSP server here: these are the answers no real recorder gives on purpose
(GStreamer's honest and lying replays are in tests/agent/recording/test_recorder_fetch.py)."""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest

from agent.onvif.replay import ReplayError, ReplaySession

START = datetime(2026, 11, 30, 8, 0, 0, tzinfo=UTC)
S = timedelta(seconds=1)
SDP = (
    b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=rec\r\nt=0 0\r\nm=video 0 RTP/AVP 96\r\n"
    b"a=rtpmap:96 H264/90000\r\na=control:stream=0\r\n"
)
# What the scripted recorder sends once it has answered PLAY.
AfterPlay = Callable[[socket.socket], None]


def reply(cseq: str, extra: str = "", body: bytes = b"") -> bytes:
    head = f"RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\n{extra}Content-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


def rtp(timestamp: int, payload: bytes, marker: bool = True) -> bytes:
    packet = struct.pack(">BBHII", 0x80, (0x80 if marker else 0) | 96, 1, timestamp, 7) + payload
    return b"$\x00" + struct.pack(">H", len(packet)) + packet


class ScriptedRecorder:
    """Answers DESCRIBE, SETUP and PLAY as a recorder does (PLAY's Range is `play_range`),
    then runs `after_play`; `describe` replaces the DESCRIBE answer when given."""

    def __init__(
        self,
        after_play: AfterPlay,
        *,
        play_range: str = "clock=20261130T080000Z-20261130T080010Z",
        describe: bytes | None = None,
    ) -> None:
        self.after_play = after_play
        self.play_range = play_range
        self.describe = describe
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}/recording"

    def _serve(self) -> None:
        conn, _ = self._server.accept()
        with conn:
            buffer = b""
            while True:
                try:
                    chunk = conn.recv(4096)
                except OSError:
                    return
                if not chunk:
                    return
                buffer += chunk
                while b"\r\n\r\n" in buffer:
                    request, buffer = buffer.split(b"\r\n\r\n", 1)
                    lines = request.decode().split("\r\n")
                    method = lines[0].split(" ")[0]
                    cseq = next(v for k, _, v in (x.partition(": ") for x in lines) if k == "CSeq")
                    try:
                        if not self._answer(conn, method, cseq):
                            return
                    except OSError:
                        return

    def _answer(self, conn: socket.socket, method: str, cseq: str) -> bool:
        if method == "DESCRIBE":
            if self.describe is not None:
                conn.sendall(self.describe)
                return False
            conn.sendall(reply(cseq, "Content-Type: application/sdp\r\n", SDP))
        elif method == "SETUP":
            transport = "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\nSession: abc\r\n"
            conn.sendall(reply(cseq, transport))
        elif method == "PLAY":
            conn.sendall(reply(cseq, f"Range: {self.play_range}\r\nRTP-Info: url=x;rtptime=0\r\n"))
            self.after_play(conn)
        return True

    def close(self) -> None:
        self._server.close()


@pytest.fixture
def scripted() -> Iterator[Callable[..., ScriptedRecorder]]:
    made: list[ScriptedRecorder] = []

    def make(after_play: AfterPlay, **options: object) -> ScriptedRecorder:
        recorder = ScriptedRecorder(after_play, **options)  # type: ignore[arg-type]
        made.append(recorder)
        return recorder

    yield make
    for recorder in made:
        recorder.close()


def fetch(recorder: ScriptedRecorder, **options: object) -> list[object]:
    session = ReplaySession(recorder.url, START, START + 10 * S, **options)  # type: ignore[arg-type]
    return list(session.access_units())


def refused_quickly(recorder: ScriptedRecorder, match: str, **options: object) -> None:
    began = time.monotonic()
    with pytest.raises(ReplayError, match=match):
        fetch(recorder, **options)
    assert time.monotonic() - began < 5


def test_junk_instead_of_rtp_is_refused(scripted: Callable[..., ScriptedRecorder]) -> None:
    recorder = scripted(lambda conn: conn.sendall(b"\xff\xfe\x00junk" * 100))
    refused_quickly(recorder, "neither RTP nor RTSP")


def test_a_packet_that_is_not_rtp_is_refused(scripted: Callable[..., ScriptedRecorder]) -> None:
    recorder = scripted(lambda conn: conn.sendall(b"$\x00\x00\x05hello"))
    refused_quickly(recorder, "not RTP version 2")


def test_a_header_line_without_end_is_refused(scripted: Callable[..., ScriptedRecorder]) -> None:
    recorder = scripted(lambda conn: None, describe=b"RTSP/1.0 200 OK\r\nX: " + b"a" * 100_000)
    refused_quickly(recorder, "header line without end")


def test_a_huge_reply_body_is_refused(scripted: Callable[..., ScriptedRecorder]) -> None:
    huge = b"RTSP/1.0 200 OK\r\nCSeq: 1\r\nContent-Length: 900000000\r\n\r\n"
    recorder = scripted(lambda conn: None, describe=huge)
    refused_quickly(recorder, "body is too large")


def test_a_recorder_that_goes_silent_is_given_up_on(
    scripted: Callable[..., ScriptedRecorder],
) -> None:
    recorder = scripted(lambda conn: time.sleep(3))
    refused_quickly(recorder, "sent nothing for 1 s", read_timeout_s=1.0)


def test_a_recorder_that_never_reaches_the_end_is_cut_off(
    scripted: Callable[..., ScriptedRecorder],
) -> None:
    def same_frame_forever(conn: socket.socket) -> None:
        frame = rtp(0, b"\x65" + b"\x00" * 100)  # a keyframe slice, always at time 0
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            conn.sendall(frame * 50)

    recorder = scripted(same_frame_forever)
    refused_quickly(recorder, "took too long", deadline_slack_s=-8.0)


def test_footage_from_before_the_window_is_refused(
    scripted: Callable[..., ScriptedRecorder],
) -> None:
    # The timestamps run back an hour from the time the PLAY reply claims.
    hour_ago = (-3600 * 90000) & 0xFFFFFFFF
    recorder = scripted(lambda conn: conn.sendall(rtp(0, b"\x65\x00") + rtp(hour_ago, b"\x65\x00")))
    refused_quickly(recorder, "before the window")


def test_an_h264_packet_of_unknown_type_is_refused(
    scripted: Callable[..., ScriptedRecorder],
) -> None:
    recorder = scripted(lambda conn: conn.sendall(rtp(0, b"\x1e\x00\x00")))  # type 30
    refused_quickly(recorder, "unknown type 30")


def test_a_recorder_without_replay_support_is_named(
    scripted: Callable[..., ScriptedRecorder],
) -> None:
    refusal = b"RTSP/1.0 551 Option not supported\r\nCSeq: 1\r\nUnsupported: onvif-replay\r\n\r\n"
    recorder = scripted(lambda conn: None, describe=refusal)
    refused_quickly(recorder, "does not support ONVIF replay")
