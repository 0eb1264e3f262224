"""The owner's receipt for a delivery (issue 19, item 6): what left the device, for which
request, on what basis, with hashes, as a file the owner keeps.

Built from the facts the agent already holds, nothing new is recorded: the request as the
store has it (who asked, the case, the legal basis, the window) and the audit log's entries
of that request (each file uploaded with its SHA-256 and size, the signed manifest's hash,
the decision). Each entry is quoted with its place and hash in the audit chain, so the
receipt can be checked against the log (`camera-agent audit verify`) and against the
head the registry received.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from urllib.parse import urlsplit, urlunsplit

from agent.police_requests.store import StoredRequest
from contract.audit_chain import AuditEntry
from contract.timestamps import rfc3339

RECEIPT_SCHEMA = "camreg.owner-receipt.v1"
# The audit events that say something left the device, or how the request was decided.
SENT = "file_uploaded"
DECISIONS = frozenset({"approved", "declined"})


class NothingSent(Exception):
    """No file of the request has left the device: there is nothing to give a receipt for."""


def receipt(
    agent: str, request: StoredRequest, entries: Sequence[AuditEntry], now: datetime | None = None
) -> dict[str, object]:
    """The receipt of `request` from its audit `entries`; NothingSent if none was sent."""
    sent = [e for e in entries if e.event == SENT]
    if not sent:
        raise NothingSent(f"nothing of request {request.id} has left this device")
    decided = [e for e in entries if e.event in DECISIONS]
    completed = [e for e in entries if e.event == "completed"]
    return {
        "schema": RECEIPT_SCHEMA,
        "agent": agent,
        "issued": rfc3339(now or datetime.now(UTC)),
        "request": {
            "id": request.id,
            "kind": request.kind,
            "case": request.case,
            "basis": request.basis,
            "requester": request.requester,
            "issuer": request.issuer,
            "cameras": list(request.cameras),
            "window": {"start": rfc3339(request.start), "end": rfc3339(request.end)},
            "received": rfc3339(request.received),
            "state": str(request.state),
        },
        "decision": [_quoted(e) for e in decided],
        "sent_to": _without_secrets(request.upload_url),
        "files": [
            {
                "name": e.detail.get("name"),
                "sha256": e.detail.get("sha256"),
                "bytes": e.detail.get("bytes"),
                "at": e.ts,
            }
            for e in sent
        ],
        "manifest_sha256": request.manifest_sha256,
        "completed": completed[-1].ts if completed else None,
        # Every entry of this request as the audit log holds it, with its chain hash.
        "audit": [_quoted(e) for e in entries],
    }


def _quoted(entry: AuditEntry) -> dict[str, object]:
    return {
        "seq": entry.seq,
        "ts": entry.ts,
        "event": entry.event,
        "detail": dict(entry.detail),
        "hash": entry.hash,
    }


def _without_secrets(url: str) -> str:
    """The upload URL without a query or userinfo (the bearer never travels in it, but a
    receipt is handed around)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def receipt_bytes(document: dict[str, object]) -> bytes:
    return (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
