"""The JSON payloads of the contract (DESIGN.md), built from immutable snapshots."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from agent.clock import ClockState
from agent.clock_step import ClockStep
from agent.quality.assess import Health
from agent.quality.dori import dori_distances
from contract.request_states import RequestState
from contract.timestamps import rfc3339

HEALTH_SCHEMA = "camreg.health.v1"


def utc_now() -> str:
    """RFC 3339 UTC with `Z`, to the millisecond."""
    return rfc3339(datetime.now(UTC))


def health_clock(clock: ClockState, last_step: ClockStep | None) -> dict[str, object]:
    """The health `clock` object: with `last_step` once the wall clock was stepped while
    this agent ran (when, on the new clock, and by how many seconds)."""
    body = clock.as_payload()
    if last_step is not None:
        body["last_step"] = {
            "at": rfc3339(last_step.after),
            "seconds": round(last_step.seconds, 3),
        }
    return body


def encode(payload: dict[str, object]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True)
class CameraDescription:
    """What the birth message says of one camera. Never a URL or a password."""

    id: str
    name: str
    location: dict[str, float | None] | None
    width: int | None = None

    def as_payload(self) -> dict[str, object]:
        dori: dict[str, float] | None = None
        fov = (self.location or {}).get("fov_deg")
        if self.width and fov:
            dori = dori_distances(self.width, fov)
        return {"id": self.id, "name": self.name, "location": self.location, "dori_m": dori}


@dataclass(frozen=True)
class CameraClockOffset:
    """A camera's last clock reading, as the birth tells it."""

    offset_s: float
    uncertainty_s: float
    at: datetime
    source: str

    def as_payload(self) -> dict[str, object]:
        return {
            "offset_s": self.offset_s,
            "uncertainty_s": self.uncertainty_s,
            "measured_at": rfc3339(self.at),
            "source": self.source,
        }


def birth(
    agent: str,
    bdseq: int,
    version: str,
    clock: ClockState,
    cameras: list[CameraDescription],
    *,
    device_key_problem: str | None = None,
    camera_clocks: Mapping[str, CameraClockOffset] | None = None,
    police_keyset: dict[str, object] | None = None,
) -> dict[str, object]:
    body: dict[str, object] = {
        "state": "online",
        "agent": agent,
        "bdseq": bdseq,
        "version": version,
        "ts": utc_now(),
        "clock": clock.as_payload(),
        "cameras": [camera.as_payload() for camera in cameras],
        # Added (DESIGN.md, "Extending the contract"): the police key set held, null
        # when none; `stale` true past its expiry, when its keys sign nothing accepted.
        "police_keyset": police_keyset,
    }
    if device_key_problem is not None:
        # Only while the agent cannot sign evidence: it needs re-enrolment (docs/service.md).
        body["device_key"] = {"state": device_key_problem, "needs_enrolment": True}
    if camera_clocks:
        # Added to the birth in issue 18: each camera's last clock offset that was read.
        body["camera_clocks"] = {c: o.as_payload() for c, o in sorted(camera_clocks.items())}
    return body


def death(agent: str, bdseq: int, reason: str) -> dict[str, object]:
    """The retained `offline` state: the last will (`connection_lost`) or a clean stop."""
    return {"state": "offline", "agent": agent, "bdseq": bdseq, "reason": reason}


def no_footage() -> dict[str, object]:
    """The footage object of a camera this agent does not record."""
    return {
        "oldest": None,
        "newest": None,
        "gaps": {"count": 0, "seconds": 0},
        "bytes": 0,
        "retention_days_effective": 0,
    }


def health(
    *,
    agent: str,
    camera: str,
    bdseq: int,
    seq: int,
    snapshot: Health,
    clock: ClockState,
    last_step: ClockStep | None = None,
) -> dict[str, object]:
    body: dict[str, object] = {
        "schema": HEALTH_SCHEMA,
        "agent": agent,
        "camera": camera,
        "bdseq": bdseq,
        "seq": seq,
        "ts": utc_now(),
        "status": snapshot.status,
        "problems": list(snapshot.problems),
        "metrics": dict(snapshot.metrics),
        "stream": snapshot.stream.as_payload() if snapshot.stream else None,
        "footage": snapshot.footage if snapshot.footage is not None else no_footage(),
        "clock": health_clock(clock, last_step),
    }
    # Added to camreg.health.v1 (DESIGN.md, "Extending the contract"): whether the
    # picture has been judged yet, and the problems the owner accepted that are seen now.
    if snapshot.judgement is not None:
        body["judgement"] = snapshot.judgement.as_payload()
    body["accepted"] = list(snapshot.accepted)
    if snapshot.camera_clock is not None:
        # Added in issue 18: the camera's own clock against the agent's (docs/onvif.md).
        body["camera_clock"] = snapshot.camera_clock
    return body


def request_status(
    request_id: str,
    state: RequestState,
    reason: str | None,
    at: datetime,
    *,
    bytes_sent: int = 0,
    bytes_total: int = 0,
    manifest_sha256: str | None = None,
) -> dict[str, object]:
    """A request's status (camreg.request-status.v1): its state, the reason of a
    rejection, decline or failure, the upload's progress and the signed manifest's hash
    once the export made it. A rejected token has no stored request behind its status:
    its progress stays 0 of 0 and its hash null."""
    return {
        "request_id": request_id,
        "state": state.value,
        "reason": reason,
        "progress": {"bytes_sent": bytes_sent, "bytes_total": bytes_total},
        "manifest_sha256": manifest_sha256,
        "ts": rfc3339(at),
    }
