"""ONVIF Profile G replay (ONVIF Streaming Specification, section 6): one RTSP session over
TCP that asks a recorder for a clock range (`Require: onvif-replay`, `Range: clock=...`,
`Rate-Control: no` so it sends as fast as it can) and hands back the H.264 access units of
the first video track, each with the recorder's wall-clock time.

Written here, not with FFmpeg's RTSP client: FFmpeg (and so PyAV) can send neither the
`Require` header nor a `clock=` range, and without them a recorder plays its live stream.
What is here is the small part of RTSP a replay needs (DESCRIBE, SETUP, PLAY, TEARDOWN,
Basic and Digest authentication, interleaved RTP) and RFC 6184's depacketisation (single
NAL units, STAP-A, FU-A).

A recorder is a device on the owner's LAN, not a trusted party: every length is bounded,
what is not RTSP or RTP is refused by name, the replay must start where it was asked to,
and footage past the window's end is cut off (the session is torn down), so a recorder
that sends endless data, or another time's footage, cannot fill the disk or the package.
A packet's time comes from its RTP timestamp relative to `RTP-Info`'s `rtptime`, at the
time the PLAY reply's `Range` names.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import re
import socket
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit

from agent.onvif.rtp_h264 import START_CODE, H264Assembler, ReplayError, is_bye, rtp_header

# H.264 over RTP runs a 90 kHz clock (RFC 6184, 8.2.1).
RTP_CLOCK_HZ = 90000
# How long one read may wait: a recorder replaying with Rate-Control: no sends at once; one
# that replays at normal speed still sends a frame several times a second.
READ_TIMEOUT_S = 10.0
# An RTSP reply's header lines and SDP body are a few hundred bytes; these bound a recorder
# that sends without end.
MAX_HEADER_LINE = 8192
MAX_HEADERS = 64
MAX_BODY = 64 * 1024
# A recorder seeks to the keyframe at or before the asked start: footage from up to this
# long before it is kept (it is what the first frames of the window decode from); a replay
# that starts earlier, or later, than this is not the window asked for.
START_SLACK_S = 30.0
# Some recorders send a few frames past the end of the range: they are cut off, and the
# session ends at the first one more than this past the end.
END_SLACK_S = 2.0
# A replay at normal speed takes the window's length; this much more is allowed for
# set-up and a slow recorder, after which the fetch fails instead of hanging.
DEADLINE_SLACK_S = 60.0
_STATUS_RE = re.compile(r"RTSP/1\.0 (\d{3}) ?(.*)")
_CLOCK_RE = re.compile(r"(\d{8}T\d{6}(?:\.\d+)?Z)")


@dataclass(frozen=True)
class AccessUnit:
    """One frame: its NAL units in Annex B form, the recorder's time for it, its RTP time."""

    data: bytes
    at: datetime
    rtp_time: int  # 90 kHz ticks since the first packet of the replay
    keyframe: bool


@dataclass
class _Reply:
    status: int
    reason: str
    headers: dict[str, str]
    body: bytes


def clock_range(start: datetime, end: datetime) -> str:
    """The Range header value of ONVIF replay: `clock=20270115T080010Z-20270115T080020Z`."""
    return f"clock={_clock(start)}-{_clock(end)}"


def _clock(at: datetime) -> str:
    at = at.astimezone(UTC)
    text = at.strftime("%Y%m%dT%H%M%S")
    if at.microsecond:
        text += f".{at.microsecond:06d}".rstrip("0")
    return text + "Z"


def _parse_clock(text: str) -> datetime:
    base, _, fraction = text.rstrip("Z").partition(".")
    at = datetime.strptime(base, "%Y%m%dT%H%M%S").replace(tzinfo=UTC)
    return at + timedelta(seconds=float(f"0.{fraction}")) if fraction else at


@dataclass
class ReplaySession:
    """One replay of `url` from `start` to `end` (the recorder's clock)."""

    url: str
    start: datetime
    end: datetime
    username: str | None = None
    password: str | None = None
    read_timeout_s: float = READ_TIMEOUT_S
    deadline_slack_s: float = DEADLINE_SLACK_S
    _sock: socket.socket | None = None
    _buffer: bytearray = field(default_factory=bytearray)
    _cseq: int = 0
    _auth: tuple[str, dict[str, str]] | None = None
    _session: str | None = None

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme.lower() != "rtsp" or not parts.hostname:
            raise ReplayError(f"the replay URI is not rtsp:// with a host: {self._shown()}")
        if parts.username is not None:  # credentials in the URI the recorder gave
            self.username = unquote(parts.username)
            self.password = unquote(parts.password or "")
        netloc = parts.hostname if parts.port is None else f"{parts.hostname}:{parts.port}"
        self.url = urlunsplit(parts._replace(netloc=netloc))
        self._address = (parts.hostname, parts.port or 554)
        if self.end <= self.start:
            raise ReplayError("the replay window ends before it starts")

    def _shown(self) -> str:
        parts = urlsplit(self.url)
        host = parts.hostname or "?"
        return f"rtsp://{host}{':' + str(parts.port) if parts.port else ''}{parts.path}"

    # -- the session -------------------------------------------------------------------

    def access_units(self) -> Iterator[AccessUnit]:
        """Connect, ask for the window, and yield its frames in order; the session is torn
        down when the window is done, when the caller stops, or on any error."""
        window_s = (self.end - self.start).total_seconds()
        deadline = time.monotonic() + window_s + self.deadline_slack_s
        try:
            self._sock = socket.create_connection(self._address, timeout=self.read_timeout_s)
        except OSError as exc:
            raise ReplayError(f"cannot connect to the recorder at {self._shown()}: {exc}") from None
        try:
            yield from self._replay(deadline)
        finally:
            self._close()

    def _replay(self, deadline: float) -> Iterator[AccessUnit]:
        described = self._request("DESCRIBE", self.url, {"Accept": "application/sdp"})
        base = described.headers.get("content-base") or self.url
        control, parameter_sets = _video_track(described.body)
        track = control if "://" in control else urljoin(base.rstrip("/") + "/", control)
        if control == "*":
            track = base
        setup = self._request("SETUP", track, {"Transport": "RTP/AVP/TCP;unicast;interleaved=0-1"})
        session = setup.headers.get("session", "").split(";")[0].strip()
        if not session:
            raise ReplayError("the recorder's SETUP reply has no Session")
        self._session = session
        channel = _interleaved_channel(setup.headers.get("transport", ""))
        played = self._request(
            "PLAY",
            self.url,
            {"Range": clock_range(self.start, self.end), "Rate-Control": "no"},
        )
        began = self._check_range(played.headers.get("range", ""))
        rtptime = _rtp_info_time(played.headers.get("rtp-info", ""))
        yield from self._frames(channel, began, rtptime, deadline, parameter_sets)

    def _check_range(self, value: str) -> datetime:
        """When the replay starts, from the PLAY reply's Range; it must be the window's."""
        match = _CLOCK_RE.search(value) if value.strip().lower().startswith("clock=") else None
        if match is None:
            raise ReplayError(
                f"the recorder did not answer PLAY with a clock range (Range: {value[:100]!r}); "
                "it may not support ONVIF replay"
            )
        began = _parse_clock(match.group(1))
        if abs((began - self.start).total_seconds()) > START_SLACK_S:
            raise ReplayError(
                f"the recorder replays from {began.isoformat()}, not the asked "
                f"{self.start.isoformat()}; refused"
            )
        return began

    def _frames(
        self,
        channel: int,
        began: datetime,
        rtptime: int | None,
        deadline: float,
        parameter_sets: bytes,
    ) -> Iterator[AccessUnit]:
        assembler = H264Assembler(parameter_sets)
        first: int | None = rtptime
        unwrapped = 0
        last_ts: int | None = None
        end_limit = (self.end - began).total_seconds() + END_SLACK_S
        while True:
            if time.monotonic() > deadline:
                raise ReplayError(
                    "the recorder's replay took too long; it sent the window slower than "
                    "real time, or without end"
                )
            frame = self._interleaved()
            if frame is None:
                break  # the recorder closed the connection: the replay is over
            got, payload = frame
            if got == channel + 1:
                if is_bye(payload):
                    break
                continue
            if got != channel:
                continue
            header = rtp_header(payload)
            ts, marker, body = header
            if first is None:
                first = ts
            if last_ts is None:
                unwrapped = (ts - first) & 0xFFFFFFFF
                if unwrapped >= 1 << 31:
                    unwrapped -= 1 << 32
            else:
                step = (ts - last_ts) & 0xFFFFFFFF
                unwrapped += step - (1 << 32) if step >= 1 << 31 else step
            last_ts = ts
            seconds = unwrapped / RTP_CLOCK_HZ
            if seconds > end_limit:
                break  # past the window: cut off here
            for data, keyframe in assembler.add(body, marker):
                at = began + timedelta(seconds=seconds)
                if at < self.start - timedelta(seconds=START_SLACK_S):
                    raise ReplayError(
                        f"the recorder sent footage from {at.isoformat()}, before the window"
                    )
                if at <= self.end:
                    yield AccessUnit(data, at, unwrapped, keyframe)
        tail = assembler.flush()
        if tail is not None and last_ts is not None:
            at = began + timedelta(seconds=unwrapped / RTP_CLOCK_HZ)
            if at <= self.end:
                yield AccessUnit(tail[0], at, unwrapped, tail[1])

    def _close(self) -> None:
        if self._sock is None:
            return
        if self._session is not None:
            # Polite, not needed: closing the connection ends the session too.
            with contextlib.suppress(OSError, ReplayError):
                self._send("TEARDOWN", self.url, {})
        self._sock.close()
        self._sock = None

    # -- RTSP messages -------------------------------------------------------------------

    def _request(self, method: str, url: str, headers: dict[str, str]) -> _Reply:
        reply = self._exchange(method, url, headers)
        if reply.status == 401 and self._auth is None and self.username is not None:
            self._auth = _challenge(reply.headers.get("www-authenticate", ""))
            reply = self._exchange(method, url, headers)
        if reply.status == 401:
            raise ReplayError(f"the recorder refused the credentials ({method} {self._shown()})")
        if reply.status == 551:
            raise ReplayError(
                "the recorder does not support ONVIF replay (551 Option not supported for "
                "Require: onvif-replay)"
            )
        if reply.status != 200:
            raise ReplayError(
                f"the recorder answered {method} with {reply.status} {reply.reason[:80]}"
            )
        return reply

    def _exchange(self, method: str, url: str, headers: dict[str, str]) -> _Reply:
        cseq = self._send(method, url, headers)
        while True:
            reply = self._read_reply()
            if reply.headers.get("cseq", "").strip() == str(cseq):
                return reply

    def _send(self, method: str, url: str, headers: dict[str, str]) -> int:
        assert self._sock is not None
        self._cseq += 1
        lines = [f"{method} {url} RTSP/1.0", f"CSeq: {self._cseq}", "Require: onvif-replay"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        if self._session is not None:
            lines.append(f"Session: {self._session}")
        if self._auth is not None:
            lines.append(f"Authorization: {self._authorization(method, url)}")
        lines.append("User-Agent: camera-agent")
        try:
            self._sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        except OSError as exc:
            raise ReplayError(f"the recorder closed the connection ({exc})") from None
        return self._cseq

    def _authorization(self, method: str, url: str) -> str:
        assert self._auth is not None
        scheme, params = self._auth
        user, password = self.username or "", self.password or ""
        if scheme == "basic":
            return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        # RFC 2069 digest, as RTSP servers use it (no qop): MD5 is what the protocol names.
        realm, nonce = params.get("realm", ""), params.get("nonce", "")
        ha1 = hashlib.md5(f"{user}:{realm}:{password}".encode()).hexdigest()
        ha2 = hashlib.md5(f"{method}:{url}".encode()).hexdigest()
        response = hashlib.md5(f"{ha1}:{nonce}:{ha2}".encode()).hexdigest()
        return (
            f'Digest username="{user}", realm="{realm}", nonce="{nonce}", uri="{url}", '
            f'response="{response}"'
        )

    def _read_reply(self) -> _Reply:
        while True:
            if self._peek(1) == b"$":  # RTP that arrived before the reply: not ours yet
                self._interleaved()
                continue
            break
        status_line = self._line()
        match = _STATUS_RE.fullmatch(status_line)
        if match is None:
            raise ReplayError(f"the recorder's reply is not RTSP: {status_line[:80]!r}")
        headers: dict[str, str] = {}
        while line := self._line():
            if len(headers) >= MAX_HEADERS:
                raise ReplayError("the recorder's reply has too many header lines")
            name, sep, value = line.partition(":")
            if not sep:
                raise ReplayError(f"the recorder's reply has a broken header line: {line[:80]!r}")
            headers[name.strip().lower()] = value.strip()
        try:
            length = int(headers.get("content-length", "0"))
        except ValueError:
            raise ReplayError("the recorder's reply has a broken Content-Length") from None
        if not 0 <= length <= MAX_BODY:
            raise ReplayError(f"the recorder's reply body is too large ({length} bytes)")
        return _Reply(int(match.group(1)), match.group(2), headers, self._take(length))

    def _line(self) -> str:
        while (cut := self._buffer.find(b"\r\n")) < 0:
            if len(self._buffer) > MAX_HEADER_LINE:
                raise ReplayError("the recorder sent a header line without end")
            self._fill()
        raw = bytes(self._buffer[:cut])
        del self._buffer[: cut + 2]
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ReplayError("the recorder's reply is not text") from None

    def _interleaved(self) -> tuple[int, bytes] | None:
        """The next `$`-framed packet (RFC 2326, 10.12), or None at the end of the stream."""
        try:
            head = self._peek(4)
        except _Closed:
            return None
        if head[0:1] != b"$":
            if head.startswith(b"RTSP"):
                self._read_reply()  # a message of the recorder's between packets
                return self._interleaved()
            raise ReplayError(
                f"the recorder sent bytes that are neither RTP nor RTSP ({head.hex()})"
            )
        channel, length = struct.unpack(">xBH", head)
        del self._buffer[:4]
        return channel, self._take(length)

    def _peek(self, size: int) -> bytes:
        while len(self._buffer) < size:
            self._fill()
        return bytes(self._buffer[:size])

    def _take(self, size: int) -> bytes:
        data = self._peek(size) if size else b""
        del self._buffer[:size]
        return data

    def _fill(self) -> None:
        assert self._sock is not None
        try:
            chunk = self._sock.recv(256 * 1024)
        except TimeoutError:
            raise ReplayError(
                f"the recorder sent nothing for {self.read_timeout_s:.0f} s"
            ) from None
        except OSError as exc:
            raise ReplayError(f"reading from the recorder failed: {exc}") from None
        if not chunk:
            raise _Closed
        self._buffer += chunk


class _Closed(ReplayError):
    def __init__(self) -> None:
        super().__init__("the recorder closed the connection")


def _challenge(value: str) -> tuple[str, dict[str, str]]:
    scheme, _, rest = value.strip().partition(" ")
    params = dict(re.findall(r'(\w+)="?([^",]*)"?', rest))
    if scheme.lower() not in ("basic", "digest"):
        raise ReplayError(f"the recorder asks for an unknown authentication: {scheme[:40]!r}")
    return scheme.lower(), params


def _video_track(sdp: bytes) -> tuple[str, bytes]:
    """The control URL of the SDP's first H.264 video track, and its parameter sets (SPS,
    PPS) in Annex B form: recorders often send them only here, not in the stream."""
    try:
        text = sdp.decode("utf-8")
    except UnicodeDecodeError:
        raise ReplayError("the recorder's session description is not text") from None
    for media in text.split("\nm=")[1:]:
        if not media.startswith("video"):
            continue
        if not re.search(r"a=rtpmap:\d+ H264/90000", media, re.IGNORECASE):
            raise ReplayError("the recorder's video track is not H.264; only H.264 is fetched")
        control = re.search(r"a=control:(\S+)", media)
        sets = re.search(r"sprop-parameter-sets=([A-Za-z0-9+/=,]+)", media)
        nals = b""
        for part in sets.group(1).split(",") if sets else []:
            try:
                nals += START_CODE + base64.b64decode(part, validate=True)
            except ValueError:
                raise ReplayError("the recorder's sprop-parameter-sets are not base64") from None
        return (control.group(1) if control else "*"), nals
    raise ReplayError("the recorder's session description has no video track")


def _interleaved_channel(transport: str) -> int:
    match = re.search(r"interleaved=(\d+)", transport)
    if match is None:
        raise ReplayError("the recorder did not accept RTP over the RTSP connection (TCP)")
    return int(match.group(1))


def _rtp_info_time(value: str) -> int | None:
    match = re.search(r"rtptime=(\d+)", value)
    return int(match.group(1)) & 0xFFFFFFFF if match else None


__all__ = ["AccessUnit", "ReplayError", "ReplaySession", "clock_range"]
