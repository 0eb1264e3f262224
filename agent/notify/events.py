"""What the owner is told about: one immutable event, raised where the agent learns it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from agent.notify.config import EventKind
from contract.request_states import RequestState
from contract.timestamps import rfc3339

# Camera statuses that mean the camera is not doing its job (DESIGN.md: no stream, or a
# stream without a usable picture); `degraded` is left to the health reports and the page.
DOWN = frozenset({"failed", "offline"})
# Request states that end a request, told to the owner as request_completed.
REQUEST_ENDED = frozenset(
    {
        RequestState.LAPSED,
        RequestState.COMPLETED,
        RequestState.FAILED,
        RequestState.DECLINED,
        RequestState.REJECTED,
        RequestState.WITHDRAWN,
    }
)
# Sent at once, whatever the rate limit or digest says: the owner may have to decide.
URGENT: frozenset[EventKind] = frozenset({"request_received"})
# A later event of one kind makes a held-back one of the other kind stale.
SUPERSEDES: dict[EventKind, EventKind] = {
    "camera_failed": "camera_recovered",
    "camera_recovered": "camera_failed",
}


@dataclass(frozen=True)
class RequestFacts:
    """A police request as the owner needs to see it, handed over by the request desk
    (agent/police_requests/) each time it publishes the request's state."""

    id: str
    kind: str  # voluntary | order
    case: str
    requester: str
    basis: str
    cameras: tuple[str, ...]
    start: datetime
    end: datetime
    state: str  # a RequestState's string
    reason: str | None
    decision: str  # the owner's policy for this kind: auto | ask | never

    @property
    def must_approve(self) -> bool:
        return self.decision == "ask"

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "case": self.case,
            "requester": self.requester,
            "basis": self.basis,
            "cameras": list(self.cameras),
            "window": {
                "start": rfc3339(self.start, "seconds"),
                "end": rfc3339(self.end, "seconds"),
            },
            "state": self.state,
            "reason": self.reason,
            "must_approve": self.must_approve,
        }


@dataclass(frozen=True)
class Event:
    kind: EventKind
    at: datetime
    camera: str | None = None
    status: str | None = None  # the camera's status
    problems: tuple[str, ...] = ()
    request: RequestFacts | None = None
    free_bytes: int | None = None  # storage_low
    footage_bytes: int | None = None
    clock_source: str | None = None  # clock_unsynced

    @property
    def subject(self) -> str:
        """What the event is about, for rate limiting: a camera, a request or the agent."""
        if self.camera is not None:
            return f"camera:{self.camera}"
        if self.request is not None:
            return f"request:{self.request.id}"
        return "agent"

    @property
    def urgent(self) -> bool:
        return self.kind in URGENT

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"event": self.kind, "ts": rfc3339(self.at, "seconds")}
        if self.camera is not None:
            body.update(camera=self.camera, status=self.status, problems=list(self.problems))
        if self.request is not None:
            body["request"] = self.request.as_json()
        if self.kind == "storage_low":
            body.update(free_bytes=self.free_bytes, footage_bytes=self.footage_bytes)
        if self.kind == "clock_unsynced":
            body["clock_source"] = self.clock_source
        return body
