"""RTP packets to H.264 access units, for the replay client (replay.py): the RTP header
(RFC 3550, 5.1), RTCP BYE, and RFC 6184's depacketisation (single NAL units, STAP-A,
FU-A) into Annex B frames. Written here for the reason replay.py gives (FFmpeg cannot ask
a recorder for a replay); every length a recorder sends is bounded."""

from __future__ import annotations

import struct

from agent.errors import AgentError

# One access unit (one frame) of 4K H.264 at high quality is well under this.
MAX_ACCESS_UNIT = 8 * 1024 * 1024
START_CODE = b"\x00\x00\x00\x01"


class ReplayError(AgentError):
    """The recorder's replay could not be fetched; the message says what was wrong."""


def is_bye(rtcp: bytes) -> bool:
    """True when a compound RTCP packet holds a BYE (RFC 3550, 6.6): the replay ended."""
    offset = 0
    while offset + 4 <= len(rtcp):
        kind = rtcp[offset + 1]
        if kind == 203:
            return True
        offset += (struct.unpack(">H", rtcp[offset + 2 : offset + 4])[0] + 1) * 4
    return False


def rtp_header(packet: bytes) -> tuple[int, bool, bytes]:
    """(timestamp, marker, payload) of an RTP packet (RFC 3550, 5.1); ReplayError if not one."""
    if len(packet) < 12 or packet[0] >> 6 != 2:
        raise ReplayError("the recorder sent a packet that is not RTP version 2")
    csrc = packet[0] & 0x0F
    offset = 12 + 4 * csrc
    if packet[0] & 0x10:  # a header extension (ONVIF's replay extension is one)
        if len(packet) < offset + 4:
            raise ReplayError("the recorder sent a cut-off RTP header extension")
        words = struct.unpack(">H", packet[offset + 2 : offset + 4])[0]
        offset += 4 + 4 * words
    end = len(packet)
    if packet[0] & 0x20:  # padding
        end -= packet[-1]
    if offset > end:
        raise ReplayError("the recorder sent an RTP packet shorter than its header")
    timestamp = struct.unpack(">I", packet[4:8])[0]
    return timestamp, bool(packet[1] & 0x80), packet[offset:end]


class H264Assembler:
    """RTP payloads (RFC 6184) to Annex B access units; an access unit ends at the marker."""

    def __init__(self, parameter_sets: bytes = b"") -> None:
        self._parameter_sets = parameter_sets
        self._nals: list[bytes] = []
        self._size = 0
        self._fragment: bytearray | None = None

    def add(self, payload: bytes, marker: bool) -> list[tuple[bytes, bool]]:
        if not payload:
            raise ReplayError("the recorder sent an empty H.264 RTP payload")
        kind = payload[0] & 0x1F
        if 1 <= kind <= 23:
            self._nal(payload)
        elif kind == 24:  # STAP-A
            offset = 1
            while offset + 2 <= len(payload):
                size = struct.unpack(">H", payload[offset : offset + 2])[0]
                offset += 2
                if size == 0 or offset + size > len(payload):
                    raise ReplayError("the recorder sent a broken H.264 aggregation packet")
                self._nal(payload[offset : offset + size])
                offset += size
        elif kind == 28:  # FU-A
            if len(payload) < 2:
                raise ReplayError("the recorder sent a broken H.264 fragment")
            start, end = payload[1] & 0x80, payload[1] & 0x40
            if start:
                self._fragment = bytearray([(payload[0] & 0xE0) | (payload[1] & 0x1F)])
            if self._fragment is not None:
                self._fragment += payload[2:]
                if len(self._fragment) > MAX_ACCESS_UNIT:
                    raise ReplayError("the recorder sent an H.264 frame larger than any camera's")
                if end:
                    self._nal(bytes(self._fragment))
                    self._fragment = None
        else:
            raise ReplayError(f"the recorder sent an H.264 packet of unknown type {kind}")
        if marker:
            done = self.flush()
            return [done] if done is not None else []
        return []

    def _nal(self, nal: bytes) -> None:
        self._size += len(nal) + 4
        if self._size > MAX_ACCESS_UNIT:
            raise ReplayError("the recorder sent an H.264 frame larger than any camera's")
        self._nals.append(nal)

    def flush(self) -> tuple[bytes, bool] | None:
        if not self._nals:
            return None
        kinds = {nal[0] & 0x1F for nal in self._nals}
        keyframe = 5 in kinds
        data = b"".join(START_CODE + nal for nal in self._nals)
        if keyframe and 7 not in kinds:  # no SPS in the stream: the SDP's go first
            data = self._parameter_sets + data
        self._nals, self._size = [], 0
        return data, keyframe


__all__ = ["MAX_ACCESS_UNIT", "START_CODE", "H264Assembler", "ReplayError", "is_bye", "rtp_header"]
