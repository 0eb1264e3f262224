"""The audit events' vocabulary and the checks of their fields, before anything is written.

Which events there are (EVENTS): those of a footage request, which the request code emits
and which name their request, and those of no one request (a flood of rejected tokens
summarised, a clock step, a state file reset, an accepted problem; and `torn_tail`, which
only the log itself writes). Each has the detail fields it must have, with their types.
`checked` turns a caller's detail into plain JSON once the event, its request id and its
fields fit, and raises ValueError when they do not: a bug in the caller, caught before a
wrong entry becomes part of a chain that can never be edited. `json_problem` is the rule
for any detail, written or read back: plain JSON, integers only, no secrets.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from contract.audit_chain import REQUEST_ID_RE, SHA256_RE, TS_RE, canonical
from contract.timestamps import rfc3339

if TYPE_CHECKING:
    from agent.clock_step import ClockStep

# One entry is a few hundred bytes; the cap keeps one write() and one MQTT message small.
MAX_DETAIL_BYTES = 60 * 1024
# Deeper than any real detail, shallow enough that checking it cannot exhaust the stack.
MAX_DEPTH = 16
REASON_RE = re.compile(r"[a-z][a-z0-9_]{0,63}")
# A key id: an RFC 7638 SHA-256 thumbprint, base64url without padding.
_KID_RE = re.compile(r"[A-Za-z0-9_-]{43}")
# A compact JWS (a request token) as a string value: never logged.
_JWS_RE = re.compile(r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*")
# Detail keys that would carry a secret; refused at any depth.
SECRET_KEYS = frozenset(
    {"token", "upload_token", "password", "secret", "authorization", "jws", "private_key"}
)

# The request events, each with the detail keys it must have and their types. The
# request code emits these; `describe` says each in words for the owner.
REQUEST_EVENTS: Mapping[str, Mapping[str, type]] = {
    "received": {},
    "rejected": {"reason": str},
    "waiting_clock": {},
    "awaiting_owner": {},
    "approved": {"by": str},
    "declined": {"reason": str},
    "held": {},
    "exported": {"files": int, "bytes": int},
    "file_uploaded": {"name": str, "sha256": str, "bytes": int},
    "completed": {},
    "failed": {"reason": str},
    "withdrawn": {"withdrawal": str, "issuer": str, "was": str},
    "preserved": {"until": str},
    "lapsed": {},
}
APPROVERS = frozenset({"policy", "owner"})
DECLINE_REASONS = frozenset({"owner_declined", "owner_timeout"})
# Written by the log itself, never by a caller: the lines of a torn tail it found.
TORN_TAIL = "torn_tail"
# Rejected tokens past the burst answered one by one, counted over a while (see
# agent/police_requests/rejections.py): of no one request, so request_id is null.
REJECTIONS_SUMMARISED = "rejections_summarised"
SUMMARY_FIELDS: Mapping[str, type] = {
    "from": str,
    "to": str,
    "count": int,
    "bytes": int,
    "reasons": dict,
    "first_ids": list,
}
# The wall clock was stepped (agent/clock_step.py): of no one request. Footage times on
# either side of the step are on different clocks; police reading a timeline need to know.
CLOCK_STEPPED = "clock_stepped"
CLOCK_STEP_FIELDS: Mapping[str, type] = {"from": str, "to": str, "step_ms": int, "synced": bool}
# A broken or missing state file the agent replaced to go on (agent/state_files.py,
# docs/service.md): of no one request, so request_id is null. `kept_as` is where the
# broken file was kept (null when there was no file to keep: it was missing).
STATE_FILE_RESET = "state_file_reset"
# The owner accepted a problem as normal for one camera, or took that back
# (agent/quality/accepted.py): of no one request. It changes what the registry is told.
PROBLEM_ACCEPTANCE = "problem_acceptance"
ACCEPTANCE_FIELDS: Mapping[str, type] = {
    "camera": str,
    "problem": str,
    "accepted": bool,
    "via": str,
}
ACCEPTANCE_VIA = frozenset({"cli", "owner_page"})
# The agent took a newer police key set (agent/police_requests/keyset.py): of no one
# request. Which request keys it trusts from now on, which it revoked and which root key
# signed it: what an owner or auditor needs to see why a token was accepted or refused.
KEYSET_ACCEPTED = "keyset_accepted"
KEYSET_FIELDS: Mapping[str, type] = {
    "version": int,
    "issuer": str,
    "root_kid": str,
    "keys": list,
    "revoked": list,
    "expires": str,
}
EVENTS = frozenset(REQUEST_EVENTS) | {
    KEYSET_ACCEPTED,
    TORN_TAIL,
    REJECTIONS_SUMMARISED,
    CLOCK_STEPPED,
    STATE_FILE_RESET,
    PROBLEM_ACCEPTANCE,
}


def checked(event: str, request_id: str | None, detail: Mapping[str, object]) -> dict[str, Any]:
    """The detail as plain JSON, after checking the event's vocabulary; ValueError if not."""
    if event == REJECTIONS_SUMMARISED:
        return _checked_summary(request_id, detail)
    if event == CLOCK_STEPPED:
        return _checked_clock_step(request_id, detail)
    if event == STATE_FILE_RESET:
        return _checked_reset(request_id, detail)
    if event == PROBLEM_ACCEPTANCE:
        return _checked_acceptance(request_id, detail)
    if event == KEYSET_ACCEPTED:
        return _checked_keyset(request_id, detail)
    if event not in REQUEST_EVENTS:
        if event == TORN_TAIL:
            raise ValueError(f"{TORN_TAIL!r} entries are written by the audit log itself")
        raise ValueError(f"unknown audit event {event!r} (known: {', '.join(REQUEST_EVENTS)})")
    if request_id is None or not REQUEST_ID_RE.fullmatch(request_id):
        raise ValueError(f"audit event {event!r} needs a request id, not {request_id!r}")
    plain = _plain(event, detail)
    for key, kind in REQUEST_EVENTS[event].items():
        value = plain.get(key)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise ValueError(f"audit event {event!r} needs detail.{key} ({kind.__name__})")
    if "reason" in REQUEST_EVENTS[event] and not REASON_RE.fullmatch(plain["reason"]):
        raise ValueError(f"audit event {event!r}: detail.reason must be a reason code")
    if event == "declined" and plain["reason"] not in DECLINE_REASONS:
        raise ValueError(
            f"audit event 'declined': detail.reason must be one of {sorted(DECLINE_REASONS)}"
        )
    if event == "approved" and plain["by"] not in APPROVERS:
        raise ValueError(f"audit event 'approved': detail.by must be one of {sorted(APPROVERS)}")
    if event == "file_uploaded" and not SHA256_RE.fullmatch(plain["sha256"]):
        raise ValueError("audit event 'file_uploaded': detail.sha256 must be 64 hex digits")
    for key in ("bytes", "files"):
        if key in REQUEST_EVENTS[event] and plain[key] < 0:
            raise ValueError(f"audit event {event!r}: detail.{key} must not be negative")
    return plain


def _plain(event: str, detail: Mapping[str, object]) -> dict[str, Any]:
    if not isinstance(detail, Mapping):
        raise ValueError("audit detail must be a mapping")
    problem = json_problem(detail, "detail")
    if problem:
        raise ValueError(f"audit event {event!r}: {problem}")
    encoded = canonical(detail)
    if len(encoded) > MAX_DETAIL_BYTES:
        raise ValueError(f"audit event {event!r}: detail is over {MAX_DETAIL_BYTES} bytes")
    plain: dict[str, Any] = json.loads(encoded)
    return plain


def _of_no_request(
    event: str, request_id: str | None, detail: Mapping[str, object]
) -> dict[str, Any]:
    """The plain detail of an event that concerns no one request (request_id null)."""
    if request_id is not None:
        raise ValueError(f"audit event {event!r} concerns no one request: request_id is null")
    return _plain(event, detail)


def _typed_fields(event: str, plain: dict[str, Any], fields: Mapping[str, type]) -> dict[str, Any]:
    """`plain`, once each of `fields` is there with its type (a bool is no number)."""
    for key, kind in fields.items():
        value = plain.get(key)
        if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            raise ValueError(f"audit event {event!r} needs detail.{key} ({kind.__name__})")
    return plain


def _checked_summary(request_id: str | None, detail: Mapping[str, object]) -> dict[str, Any]:
    event = REJECTIONS_SUMMARISED
    plain = _typed_fields(event, _of_no_request(event, request_id, detail), SUMMARY_FIELDS)
    if plain["count"] < 1 or plain["bytes"] < 0:
        raise ValueError(f"audit event {event!r}: detail.count must be positive")
    reasons = plain["reasons"]
    if (
        not all(
            REASON_RE.fullmatch(k) and isinstance(n, int) and not isinstance(n, bool) and n > 0
            for k, n in reasons.items()
        )
        or sum(reasons.values()) != plain["count"]
    ):
        raise ValueError(
            f"audit event {event!r}: detail.reasons must count each reason code, "
            "adding up to detail.count"
        )
    if not all(isinstance(i, str) and REQUEST_ID_RE.fullmatch(i) for i in plain["first_ids"]):
        raise ValueError(f"audit event {event!r}: detail.first_ids must be request ids")
    return plain


def clock_step_detail(step: ClockStep) -> dict[str, object]:
    """The detail of a `clock_stepped` entry: the wall time the step left and the one it
    reached, the step in milliseconds (numbers are integers only), and whether the clock
    said it was synchronised just after."""
    return {
        "from": rfc3339(step.before),
        "to": rfc3339(step.after),
        "step_ms": round(step.seconds * 1000),
        "synced": step.synced,
    }


def _checked_clock_step(request_id: str | None, detail: Mapping[str, object]) -> dict[str, Any]:
    event = CLOCK_STEPPED
    plain = _typed_fields(event, _of_no_request(event, request_id, detail), CLOCK_STEP_FIELDS)
    if not (TS_RE.fullmatch(plain["from"]) and TS_RE.fullmatch(plain["to"])):
        raise ValueError(f"audit event {event!r}: detail.from and detail.to must be times")
    return plain


def _checked_reset(request_id: str | None, detail: Mapping[str, object]) -> dict[str, Any]:
    event = STATE_FILE_RESET
    plain = _of_no_request(event, request_id, detail)
    if not isinstance(plain.get("file"), str) or not isinstance(plain.get("error"), str):
        raise ValueError(f"audit event {event!r} needs detail.file and detail.error (str)")
    if not isinstance(plain.get("kept_as"), str | None) or "kept_as" not in plain:
        raise ValueError(f"audit event {event!r} needs detail.kept_as (str or null)")
    return plain


def _checked_acceptance(request_id: str | None, detail: Mapping[str, object]) -> dict[str, Any]:
    event = PROBLEM_ACCEPTANCE
    plain = _typed_fields(event, _of_no_request(event, request_id, detail), ACCEPTANCE_FIELDS)
    if not REASON_RE.fullmatch(plain["problem"]) or plain["via"] not in ACCEPTANCE_VIA:
        raise ValueError(
            f"audit event {event!r}: detail.problem must be a problem code and detail.via "
            f"one of {sorted(ACCEPTANCE_VIA)}"
        )
    return plain


def json_problem(value: object, where: str, depth: int = 0) -> str | None:
    """Why `value` cannot go into an entry, or None: plain JSON, integers, no secrets."""
    if depth > MAX_DEPTH:
        return f"{where} is nested more than {MAX_DEPTH} deep"
    if value is None or isinstance(value, bool | int):
        return None
    if isinstance(value, str):
        if _JWS_RE.fullmatch(value):
            return f"{where} looks like a signed token; tokens are never logged"
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return f"{where} is not valid Unicode text"
        return None
    if isinstance(value, float):
        return f"{where} is a fraction; numbers in the audit log are integers"
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"{where} has a key that is not text: {key!r}"
            if key.lower() in SECRET_KEYS:
                return f"{where}.{key} would hold a secret; secrets are never logged"
            problem = json_problem(item, f"{where}.{key}", depth + 1)
            if problem:
                return problem
        return None
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            problem = json_problem(item, f"{where}[{index}]", depth + 1)
            if problem:
                return problem
        return None
    return f"{where} is a {type(value).__name__}, not JSON"


def _checked_keyset(request_id: str | None, detail: Mapping[str, object]) -> dict[str, Any]:
    event = KEYSET_ACCEPTED
    plain = _typed_fields(event, _of_no_request(event, request_id, detail), KEYSET_FIELDS)
    if plain["version"] < 1 or not TS_RE.fullmatch(plain["expires"]):
        raise ValueError(
            f"audit event {event!r}: detail.version must be positive and detail.expires a time"
        )
    kids = [plain["root_kid"], *plain["keys"], *plain["revoked"]]
    if not all(isinstance(kid, str) and _KID_RE.fullmatch(kid) for kid in kids):
        raise ValueError(f"audit event {event!r}: key ids must be RFC 7638 thumbprints")
    return plain
