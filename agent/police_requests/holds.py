"""The holds a police request puts on footage, in the one form the request desk places them
and an index rebuilt from the files must get back (recording/rebuild.py takes them as
plain windows and so never needs to know what a request is)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from agent.police_requests.store import StoredRequest
from agent.recording.index import SegmentIndex
from agent.recording.rebuild import HoldToKeep
from contract.request_states import RequestState
from contract.token_rules import PRESERVE

# Footage of a request stays held this long after the request ends, for the owner and
# police to sort out a failed upload; the hold is released at once on a decline.
HOLD_AFTER_S = 14 * 86400.0
# Requests in these states released their hold; every other one still holds its window.
_RELEASED = frozenset(
    {RequestState.DECLINED, RequestState.REJECTED, RequestState.WITHDRAWN, RequestState.LAPSED}
)


def hold_reason(request_id: str) -> str:
    """The reason a request's hold rows carry, by which it finds and releases them."""
    return f"request {request_id}"


def hold_until(request: StoredRequest, now: datetime) -> datetime:
    if request.kind == PRESERVE:  # held exactly as long as the police asked, then it lapses
        return request.expires
    return max(request.expires, now) + timedelta(seconds=HOLD_AFTER_S)


def holds_to_keep(requests: Iterable[StoredRequest]) -> list[HoldToKeep]:
    """The windows of the requests that still hold footage, one per camera, as the desk
    placed them when it accepted each (`until` counted from when it was received)."""
    return [
        HoldToKeep(
            camera,
            request.start,
            request.end,
            hold_until(request, request.received),
            hold_reason(request.id),
        )
        for request in requests
        if request.state not in _RELEASED
        for camera in request.cameras
    ]


def place_holds(index: SegmentIndex, request: StoredRequest, until: datetime) -> None:
    """Hold the request's window on each of its cameras until `until`."""
    for camera in request.cameras:
        index.hold(camera, request.start, request.end, until, hold_reason(request.id))


def release_holds(index: SegmentIndex, request: StoredRequest, now: datetime) -> None:
    """Release what `place_holds` held for the request; pruning may take it again."""
    for hold in index.holds(now):
        if hold.reason == hold_reason(request.id):
            index.release(hold.id)
