"""What an ONVIF Profile G recorder (an NVR) holds of one camera, and where its replay is:
the search service's FindRecordings / GetRecordingSearchResults (every recording, with its
source and its earliest and latest footage) and the replay service's GetReplayUri. The
services' addresses come from the device's GetServices and must be on the device's host,
as for the media service (device.py): the password goes nowhere else.

Recordings are matched to the camera by their source's SourceId (or Name), client-side:
recorders differ in which search scopes they honour, every one lists its recordings.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from onvif.definition import SERVICES

from agent.errors import OnvifError
from agent.onvif.device import (
    _DEVICE_BINDING,
    _DEVICE_FAILURES,
    DEVICE_TIMEOUT_S,
    _bounded,
    _clock_offset,
    _service,
    _short,
    _translated,
    same_host,
)

T = TypeVar("T")
_SEARCH_NS = SERVICES["search"]["ns"]
_REPLAY_NS = SERVICES["replay"]["ns"]
_SEARCH_BINDING = f"{{{_SEARCH_NS}}}{SERVICES['search']['binding']}"
_REPLAY_BINDING = f"{{{_REPLAY_NS}}}{SERVICES['replay']['binding']}"
# A recorder of 64 channels with a recording per channel per day for a month is 2,000; a
# list longer than this is cut (the oldest footage then shows as missing, not the newest).
MAX_RECORDINGS = 5000
# How long the recorder may take to finish one search (ONVIF's WaitTime): a real NVR
# searches its disk index in well under this.
SEARCH_WAIT = "PT5S"
# How long a search may be kept open between calls (ONVIF's KeepAliveTime).
SEARCH_KEEP_ALIVE = "PT10S"
_REPLAY_SETUP = {"Stream": "RTP-Unicast", "Transport": {"Protocol": "RTSP"}}


@dataclass(frozen=True)
class RecorderSpan:
    """One recording of the camera on the recorder: from when to when (its clock)."""

    token: str
    start: dt.datetime
    end: dt.datetime


@dataclass(frozen=True)
class RecorderHoldings:
    """The camera's recordings on the recorder, oldest first, and its clock offset."""

    spans: tuple[RecorderSpan, ...]
    clock_offset_s: float | None

    def span_at(self, start: dt.datetime, end: dt.datetime) -> RecorderSpan | None:
        """The recording holding most of [start, end) (the recorder's clock), if any."""
        best = max(
            self.spans,
            key=lambda s: (min(s.end, end) - max(s.start, start)).total_seconds(),
            default=None,
        )
        if best is None or best.end <= start or best.start >= end:
            return None
        return best


def read_recordings(
    url: str,
    username: str | None,
    password: str | None,
    source: str,
    timeout: float = DEVICE_TIMEOUT_S,
) -> RecorderHoldings:
    """The recordings of `source` on the recorder at device address `url`."""
    return asyncio.run(
        _bounded(_guarded(_recordings(url, username, password, source), username), timeout)
    )


def replay_uri(
    url: str,
    username: str | None,
    password: str | None,
    token: str,
    timeout: float = DEVICE_TIMEOUT_S,
) -> str:
    """GetReplayUri of recording `token`: the rtsp:// address its replay is served at."""
    return asyncio.run(
        _bounded(_guarded(_replay_uri(url, username, password, token), username), timeout)
    )


async def _guarded(call: Callable[[list[Any]], Awaitable[T]], username: str | None) -> T:
    services: list[Any] = []
    try:
        return await call(services)
    except _DEVICE_FAILURES as exc:
        raise _translated(exc, username) from None
    finally:
        for service in services:
            await service.close()


def _recordings(
    url: str, username: str | None, password: str | None, source: str
) -> Callable[[list[Any]], Awaitable[RecorderHoldings]]:
    async def run(services: list[Any]) -> RecorderHoldings:
        search, offset = await _open(url, username, password, "search", services)
        token = await search.FindRecordings(
            {"Scope": {}, "MaxMatches": MAX_RECORDINGS, "KeepAliveTime": SEARCH_KEEP_ALIVE}
        )
        results = await search.GetRecordingSearchResults(
            {"SearchToken": token, "MaxResults": MAX_RECORDINGS, "WaitTime": SEARCH_WAIT}
        )
        spans = []
        for info in (getattr(results, "RecordingInformation", None) or [])[:MAX_RECORDINGS]:
            found = getattr(info, "Source", None)
            names = {str(getattr(found, "SourceId", "")), str(getattr(found, "Name", ""))}
            if source not in names:
                continue
            start, end = _utc(info.EarliestRecording), _utc(info.LatestRecording)
            if start is None or end is None or end <= start:
                continue  # no footage yet, or nonsense: nothing to fetch from it
            spans.append(RecorderSpan(_short(str(info.RecordingToken), 64), start, end))
        return RecorderHoldings(tuple(sorted(spans, key=lambda s: s.start)), offset)

    return run


def _replay_uri(
    url: str, username: str | None, password: str | None, token: str
) -> Callable[[list[Any]], Awaitable[str]]:
    async def run(services: list[Any]) -> str:
        replay, _ = await _open(url, username, password, "replay", services)
        answer = await replay.GetReplayUri({"StreamSetup": _REPLAY_SETUP, "RecordingToken": token})
        uri = getattr(answer, "Uri", answer)
        if not isinstance(uri, str) or not uri:
            raise OnvifError("GetReplayUri gave no URI")
        return uri

    return run


async def _open(
    url: str, username: str | None, password: str | None, name: str, services: list[Any]
) -> tuple[Any, float | None]:
    """The recorder's `name` service (search or replay), with the credentials, and its
    clock offset (folded into the WS-Security timestamps as device.py does)."""
    device = await _service(url, None, None, None, _DEVICE_BINDING, "devicemgmt", services)
    offset = await _clock_offset(device)
    namespace = _SEARCH_NS if name == "search" else _REPLAY_NS
    xaddr = None
    for entry in await device.authless_GetServices({"IncludeCapability": False}) or []:
        if getattr(entry, "Namespace", None) == namespace:
            xaddr = str(entry.XAddr)
            break
    if xaddr is None:
        raise OnvifError(f"the recorder has no {name} service (ONVIF Profile G)")
    if not same_host(url, xaddr):
        raise OnvifError(
            f"its {name} service is at another host ({_short(xaddr)}); not contacted, "
            "so the password goes nowhere else"
        )
    diff = dt.timedelta(seconds=offset) if offset is not None and username else None
    binding = _SEARCH_BINDING if name == "search" else _REPLAY_BINDING
    service = await _service(xaddr, username, password, diff, binding, name, services)
    return service, offset


def _utc(value: Any) -> dt.datetime | None:
    if not isinstance(value, dt.datetime):
        return None
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
