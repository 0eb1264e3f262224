"""Whether a request may still receive evidence, and how much: the intake asks this before
it creates an upload or writes a byte.

A leaked or guessed upload token must not turn the intake into free storage, nor keep
receiving long after the police asked: a request takes uploads only once its token was
signed and sent to its agent, until it expires (`exp`, which `evidence.request_validity`
sets to cover the upload too), and not after its package was verified; and all its
uploads together stay under a byte budget that follows from what was asked.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from sqlalchemy import Connection, select

from registry.db.schema import evidence_packages, requests
from registry.evidence.verify import MAX_MANIFEST_BYTES

__all__ = [
    "BITRATE_CEILING_BPS",
    "SEGMENT_ALLOWANCE_S",
    "RequestFacts",
    "load_facts",
    "upload_budget",
]

# What one camera may produce per second at most, generously: 4K H.264 at its highest
# common setting is 30-40 Mbit/s; the 1080p cameras the agent is built for record 2-8.
BITRATE_CEILING_BPS: Final = 50_000_000
# A package holds whole recorded files overlapping the window, so each end may add up to
# one file's length: the agent's own segments are a minute by default, but an owner's
# recorder (directory mode) commonly writes hour-long files.
SEGMENT_ALLOWANCE_S: Final = 3600.0
# manifest.jws, and room for it once more should a junk one have been sent first.
MANIFEST_ALLOWANCE: Final = 2 * MAX_MANIFEST_BYTES


def upload_budget(window_s: float, cameras: int) -> int:
    """The most bytes all uploads of a request may declare together."""
    footage_s = max(window_s, 0.0) + 2 * SEGMENT_ALLOWANCE_S
    return math.ceil(cameras * footage_s * BITRATE_CEILING_BPS / 8) + MANIFEST_ALLOWANCE


@dataclass(frozen=True)
class RequestFacts:
    """What the intake needs to know about one request."""

    request_id: str
    token_sha256: str
    sent: bool  # the signed token was submitted (relayed to the agent)
    expires: float | None  # `exp` of the prepared claims; None if they have none
    verified: bool  # its package was checked and verified
    budget: int
    withdrawn: bool = False  # the police withdrew it (requests.withdrawn_at)

    def closed(self, now: float) -> tuple[int, str] | None:
        """(HTTP status, why) when no new upload or byte is accepted now; else None."""
        if not self.sent:
            return 403, (
                f"request {self.request_id} has not been sent to its agent: no evidence is "
                "expected for it yet"
            )
        if self.withdrawn:
            return 410, (
                f"request {self.request_id} was withdrawn by the police; nothing more is "
                "accepted for it"
            )
        if self.verified:
            return 410, (
                f"the package of request {self.request_id} was received and verified; "
                "nothing more is accepted"
            )
        if self.expires is None or now >= self.expires:
            when = (
                "an unknown time"
                if self.expires is None
                else datetime.fromtimestamp(self.expires, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            )
            return 410, (
                f"request {self.request_id} expired at {when}; it takes no more uploads "
                "(the police can prepare a new request)"
            )
        return None


def _expires(claims_json: str) -> float | None:
    try:
        value = json.loads(claims_json).get("exp")
    except (ValueError, AttributeError):
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def load_facts(conn: Connection, request_id: str) -> RequestFacts | None:
    """The request's facts, or None when there is no such request."""
    r, p = requests.c, evidence_packages.c
    row = conn.execute(
        select(
            r.upload_token_sha256,
            r.submitted_at,
            r.claims_json,
            r.window_start,
            r.window_end,
            r.cameras_json,
            r.withdrawn_at,
            p.verified,
        )
        .select_from(requests.outerjoin(evidence_packages, p.request_id == r.request_id))
        .where(r.request_id == request_id)
    ).one_or_none()
    if row is None:
        return None
    try:
        cameras = len(json.loads(row.cameras_json)) or 1
    except (ValueError, TypeError):
        cameras = 1
    return RequestFacts(
        request_id=request_id,
        token_sha256=row.upload_token_sha256,
        sent=row.submitted_at is not None,
        expires=_expires(row.claims_json),
        verified=bool(row.verified),
        budget=upload_budget(row.window_end - row.window_start, cameras),
        withdrawn=row.withdrawn_at is not None,
    )
