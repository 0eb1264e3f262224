"""Every message from an agent is checked before anything of it is stored: its topic, its
size, strict JSON, its JSON Schema (docs/schemas) and that it speaks for the agent, camera
and request its topic names. The ACL lets an agent write only its own topics, but the
registry does not rely on the broker alone: a payload naming another agent is refused.
An empty payload on a valid topic is no message to check but a retained message deleted
(`Withdrawn`): on a health topic the agent withdraws a camera it no longer has.

The schemas are compiled once with jsonschema-rs (Rust): the pure-Python jsonschema takes
about 1.2 ms per health object here, jsonschema-rs about 6 µs, which is what lets one
ingest worker keep up with thousands of reports a second.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from importlib.resources import files
from typing import Any

import jsonschema_rs
import orjson

from agent.audit import entry_hash
from agent.strict_json import no_duplicate_keys
from registry.ingest.topics import Kind, TopicError, TopicParts, parse

# A health object is about 1 kB, a status or audit entry less; 64 KiB is ample and keeps
# a misbehaving client from making the registry parse megabytes.
MAX_PAYLOAD_BYTES = 64 * 1024
# The birth lists every camera (about 250 bytes each): the broker's documented
# max_packet_size (docs/mosquitto/mosquitto.conf) bounds it anyway.
MAX_STATE_BYTES = 256 * 1024
# Reasons are stored and logged; a hostile payload must not make them huge.
MAX_REASON_CHARS = 300

# The database stores integers in 64 bits (SQLite INTEGER, PostgreSQL bigint). Only a
# number of 19 or more digits can lie beyond: a regex over the raw bytes finds candidates,
# and only then is the parsed value walked.
INT64 = range(-(2**63), 2**63)
_LONG_DIGITS = re.compile(rb"\d{19}")

SCHEMA_FILES = {
    Kind.STATE: "state.schema.json",
    Kind.HEALTH: "health.schema.json",
    Kind.STATUS: "request-status.schema.json",
    Kind.AUDIT: "audit-entry.schema.json",
}


@dataclass(frozen=True, slots=True)
class Accepted:
    """A message that passed every check, with its parsed payload."""

    topic: TopicParts
    payload: dict[str, Any]
    text: str  # the payload as received (UTF-8), stored as it came
    received_at: float


@dataclass(frozen=True, slots=True)
class Withdrawn:
    """A zero-length payload on a valid topic: MQTT's way to delete a retained message
    (the broker forwards it to current subscribers too). Not a report and not an error:
    on a camera's health topic the agent uses it to withdraw a camera it no longer has."""

    topic: TopicParts
    name: str  # the topic as received, for the log
    received_at: float


@dataclass(frozen=True, slots=True)
class Rejected:
    """A message refused, with the reason in words an operator can act on."""

    topic: str
    reason: str
    received_at: float


@cache
def _validator(kind: Kind) -> jsonschema_rs.Validator:
    schema = json.loads(files("registry").joinpath("schemas", SCHEMA_FILES[kind]).read_text())
    return jsonschema_rs.Draft202012Validator(schema)


def _refuse_constant(name: str) -> Any:
    # NaN and Infinity are not JSON; Python's json accepts them unless told not to.
    raise ValueError(f"{name} is not a JSON number")


# The strict parse: a repeated key is an error (no_duplicate_keys), NaN/Infinity too. One
# decoder for all calls (json.loads with options builds a new one each time).
_STRICT_JSON = json.JSONDecoder(
    object_pairs_hook=no_duplicate_keys, parse_constant=_refuse_constant
)


def parse_strict(raw: bytes, text: str) -> Any:
    """`raw` (whose UTF-8 decoding is `text`) as JSON, strictly; ValueError or
    RecursionError if it is not.

    Fast path: orjson (C) parses it and, if serialising the result gives back exactly
    `raw`, the message has no repeated key (a dict cannot serialise one key twice) and no
    NaN or Infinity (orjson refuses them), and stdlib json would read the same values.
    That is every message an agent sends (compact, `ensure_ascii=False`, as orjson writes)
    and costs ~5 µs for a 1 kB health object, against ~25 µs for the stdlib parse with
    the duplicate-key hook. Anything else (other spacing or number spelling, an int
    beyond 64 bits, a repeated key, malformed input) takes the stdlib parse, which
    accepts or rejects it as before, with its reason."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        pass
    else:
        try:
            same = orjson.dumps(value) == raw
        except orjson.JSONEncodeError:
            # orjson reads deeper nesting than it writes (255 levels): the stdlib decides.
            same = False
        if same:
            return value
    return _STRICT_JSON.decode(text)


def _schema_problem(kind: Kind, payload: Any) -> str | None:
    try:
        _validator(kind).validate(payload)
    except jsonschema_rs.ValidationError as exc:
        where = "/".join(str(part) for part in exc.instance_path) or "(top level)"
        return f"{kind.value} schema: {where}: {exc.message}"
    except ValueError as exc:
        # jsonschema-rs cannot take the value in at all: nesting deeper than its
        # recursion limit (about 255 levels), which the stdlib parse still reads.
        return f"{kind.value} schema: cannot be checked: {exc}"
    return None


def epoch(value: str | None) -> float | None:
    """RFC 3339 UTC (`...Z`, as the schemas require) to epoch seconds."""
    if value is None:
        return None
    return datetime.fromisoformat(value).timestamp()


class MessageValidator:
    """Checks messages on `{prefix}/agents/...`; thread-safe (no state after construction)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        for kind in Kind:  # compile now: a broken schema file fails at start, not mid-run
            _validator(kind)

    def check(
        self, topic: str, raw: bytes, received_at: float | None = None
    ) -> Accepted | Withdrawn | Rejected:
        now = time.time() if received_at is None else received_at
        try:
            parts = parse(self.prefix, topic)
        except TopicError as exc:
            return Rejected(topic, _short(f"topic: {exc}"), now)
        if not raw:
            return Withdrawn(parts, topic, now)
        limit = MAX_STATE_BYTES if parts.kind is Kind.STATE else MAX_PAYLOAD_BYTES
        if len(raw) > limit:
            return Rejected(topic, f"too large: {len(raw)} bytes (limit {limit})", now)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            return Rejected(topic, _short(f"not UTF-8: {exc}"), now)
        try:
            payload = parse_strict(raw, text)
        except RecursionError:
            return Rejected(topic, "malformed JSON: nested too deeply", now)
        except ValueError as exc:  # json.JSONDecodeError is a ValueError
            return Rejected(topic, _short(f"malformed JSON: {exc}"), now)
        problem = (
            _schema_problem(parts.kind, payload)
            or _time_problem(parts.kind, payload)
            or _integer_problem(raw, payload)
            or _identity_problem(parts, payload)
        )
        if problem is not None:
            return Rejected(topic, _short(problem), now)
        return Accepted(parts, payload, text, now)


def _time_problem(kind: Kind, payload: dict[str, Any]) -> str | None:
    """The schemas' time pattern also admits month 13 or hour 25; the store reads every
    time as a moment (`epoch`), so an impossible one is refused here rather than failing
    the batch it came in."""
    times: list[tuple[str, Any]] = [("ts", payload.get("ts"))]
    if kind is Kind.HEALTH:
        footage = payload["footage"]
        times += [("footage/oldest", footage["oldest"]), ("footage/newest", footage["newest"])]
    for where, value in times:
        if isinstance(value, str):
            try:
                epoch(value)
            except ValueError as exc:
                return f"{kind.value}: {where}: {value[:40]!r} is not a real time ({exc})"
    return None


def _integer_problem(raw: bytes, payload: Any) -> str | None:
    if _LONG_DIGITS.search(raw) is None:
        return None
    pending = [payload]
    while pending:
        value = pending.pop()
        if isinstance(value, dict):
            pending += value.values()
        elif isinstance(value, list):
            pending += value
        elif isinstance(value, int) and value not in INT64:
            return "an integer does not fit in 64 bits (the database's integers)"
    return None


def _identity_problem(parts: TopicParts, payload: dict[str, Any]) -> str | None:
    """Does the payload speak for what its topic names?"""
    if parts.kind in (Kind.STATE, Kind.HEALTH) and payload["agent"] != parts.agent:
        return (
            f"payload agent {payload['agent']!r} is not the topic's agent {parts.agent!r} "
            "(an agent may only speak for itself)"
        )
    if parts.kind is Kind.HEALTH and payload["camera"] != parts.camera:
        return f"payload camera {payload['camera']!r} is not the topic's camera {parts.camera!r}"
    if parts.kind is Kind.STATUS and payload["request_id"] != parts.request_id:
        return (
            f"payload request_id {payload['request_id']!r} is not the topic's "
            f"request id {parts.request_id!r}"
        )
    if parts.kind is Kind.AUDIT:
        expected = entry_hash(
            payload["seq"],
            payload["ts"],
            payload["event"],
            payload["request_id"],
            payload["detail"],
            payload["prev"],
        )
        if payload["hash"] != expected:
            return "audit entry: its hash does not match its content (altered or corrupt)"
    return None


def _short(reason: str) -> str:
    return reason if len(reason) <= MAX_REASON_CHARS else reason[: MAX_REASON_CHARS - 1] + "…"
