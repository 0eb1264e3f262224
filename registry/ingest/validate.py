"""Every message from an agent is checked before anything of it is stored: its topic, its
size, strict JSON, its JSON Schema (docs/schemas) and that it speaks for the agent, camera
and request its topic names. The ACL lets an agent write only its own topics, but the
registry does not rely on the broker alone: a payload naming another agent is refused.
An empty payload on a valid topic is no message to check but a retained message deleted
(`Withdrawn`): on a health topic the agent withdraws a camera it no longer has.

What passes can be stored and read back (docs/registry-ingest.md, Bounds): the schemas
bound every integer to 2^53 - 1 and every time to a real one in 1970-2999, and the checks
here refuse what a schema cannot say: a number too large for a float (`1e400`), nesting
deeper than MAX_NESTING, a string holding NUL or half a UTF-16 surrogate pair, a time such
as 30 February. `check` returns a Rejected for anything else that goes wrong, never raises.

The schemas are compiled once with jsonschema-rs (Rust): the pure-Python jsonschema takes
about 1.2 ms per health object here, jsonschema-rs about 6 µs, which is what lets one
ingest worker keep up with thousands of reports a second.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from importlib.resources import files
from typing import Any

import jsonschema_rs
import orjson

from contract.audit_chain import entry_hash
from contract.strict_json import no_duplicate_keys
from contract.topics import Kind, TopicError, TopicParts, parse

# A health object is about 1 kB, a status or audit entry less; 64 KiB is ample and keeps
# a misbehaving client from making the registry parse megabytes.
MAX_PAYLOAD_BYTES = 64 * 1024
# The birth lists every camera (about 250 bytes each): the broker's documented
# max_packet_size (docs/mosquitto/mosquitto.conf) bounds it anyway.
MAX_STATE_BYTES = 256 * 1024
# Reasons are stored and logged; a hostile payload must not make them huge.
MAX_REASON_CHARS = 300
# The contract's deepest message, a birth, nests 5 levels (state, cameras, a camera, its
# location). 32 leaves newer agents room and keeps every later reader far from its own
# limit: orjson writes at most 255 levels, json.dumps (the audit hash) about 1,000.
MAX_NESTING = 32
# Where a payload can hold these at all: a NUL escape, or a lone surrogate's escape (a
# pair is one character once parsed). Scanning the raw bytes first keeps the walk over
# the parsed value off the hot path.
NUL_ESCAPE = b"\\u0000"
SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")

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
    name: str = ""  # the topic as received, should the database refuse the message


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


def _finite_float(text: str) -> float:
    # 1e400 is valid JSON, but Python reads it as infinity, which the database, JSON
    # writers and the dashboard's JavaScript would each treat differently.
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:40]} is too large for a 64-bit float")
    return value


# The strict parse: a repeated key is an error (no_duplicate_keys), NaN/Infinity and
# numbers beyond a float too. One decoder for all calls (json.loads with options builds
# a new one each time).
_STRICT_JSON = json.JSONDecoder(
    object_pairs_hook=no_duplicate_keys, parse_constant=_refuse_constant, parse_float=_finite_float
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
        if orjson.dumps(value) == raw:
            return value
    except (orjson.JSONDecodeError, orjson.JSONEncodeError):
        pass  # malformed, or deeper than orjson writes (255 levels): the long way decides
    return _STRICT_JSON.decode(text)


def _schema_problem(kind: Kind, payload: Any) -> str | None:
    try:
        _validator(kind).validate(payload)
    except jsonschema_rs.ValidationError as exc:
        error = _most_specific(exc)
        where = "/".join(str(part) for part in error.instance_path) or "(top level)"
        return f"{kind.value} schema: {where}: {_quoted_briefly(error)}"
    return None


def _most_specific(error: jsonschema_rs.ValidationError) -> jsonschema_rs.ValidationError:
    """For a oneOf/anyOf that no branch matched (a birth or an offline?), the error of the
    branch that came closest (fewest errors, then the deepest), so that the reason names
    the field (`cameras/0/name: ... longer than 200 characters`) and not the whole payload."""
    branches = getattr(error.kind, "context", None)
    while branches and any(branches):
        closest = min(
            (branch for branch in branches if branch),
            key=lambda branch: (len(branch), -max(len(e.instance_path) for e in branch)),
        )
        error = max(closest, key=lambda e: len(e.instance_path))
        branches = getattr(error.kind, "context", None)
    return error


# A reason quotes at most this much of the value it is about.
MAX_QUOTED_CHARS = 60


def _quoted_briefly(error: jsonschema_rs.ValidationError) -> str:
    """The error's message, its quote of a long value cut short (so the reason still says
    what is wrong within MAX_REASON_CHARS)."""
    message: str = error.message
    quoted = json.dumps(error.instance, separators=(",", ":"), ensure_ascii=False)
    if len(quoted) > MAX_QUOTED_CHARS and message.startswith(quoted):
        return quoted[: MAX_QUOTED_CHARS - 1] + "…" + message[len(quoted) :]
    return message


def _too_deep(value: Any) -> bool:
    """Is `value` nested deeper than MAX_NESTING? Iterative: no recursion to exhaust."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > MAX_NESTING:
                return True
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return False


def _strings(value: Any) -> Iterator[str]:
    """Every string in `value`, keys included."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, dict):
            yield from item.keys()
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _shape_problem(raw: bytes, payload: Any) -> str | None:
    """What a schema cannot say: nesting depth, NUL and lone surrogates in strings."""
    # A payload cannot nest deeper than it has brackets: most never need the walk.
    if raw.count(b"{") + raw.count(b"[") > MAX_NESTING and _too_deep(payload):
        return f"nested more than {MAX_NESTING} levels deep (nested too deeply)"
    if b"\\u" not in raw:  # agents write UTF-8 as it is: no escapes, nothing to look for
        return None
    if NUL_ESCAPE in raw and any("\x00" in s for s in _strings(payload)):
        # PostgreSQL's text cannot hold it; SQLite would cut strings short at it.
        return "a string holds U+0000 (NUL), which the registry cannot store"
    if SURROGATE_ESCAPE.search(raw):
        for string in _strings(payload):
            try:
                string.encode("utf-8")
            except UnicodeEncodeError:
                return "a string holds half of a UTF-16 surrogate pair, which is not a character"
    return None


def epoch(value: str | None) -> float | None:
    """RFC 3339 UTC (`...Z`, as the schemas require) to epoch seconds; ValueError if the
    schema's pattern let through a time that is none (30 February)."""
    if value is None:
        return None
    return datetime.fromisoformat(value).timestamp()


def _times(kind: Kind, payload: dict[str, Any]) -> list[tuple[str, str | None]]:
    """The times a message of `kind` holds, by where they are (all are stored or hashed)."""
    if kind is Kind.HEALTH:
        footage = payload["footage"]
        return [
            ("ts", payload["ts"]),
            ("footage/oldest", footage["oldest"]),
            ("footage/newest", footage["newest"]),
        ]
    return [("ts", payload.get("ts"))]  # an offline state has none


def _time_problem(kind: Kind, payload: dict[str, Any]) -> str | None:
    for where, value in _times(kind, payload):
        try:
            epoch(value)
        except ValueError as exc:
            return f"{kind.value}: {where}: {value!r} is not a real time ({exc})"
    return None


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
            return Rejected(topic, short_reason(f"topic: {exc}"), now)
        if not raw:
            return Withdrawn(parts, topic, now)
        limit = MAX_STATE_BYTES if parts.kind is Kind.STATE else MAX_PAYLOAD_BYTES
        if len(raw) > limit:
            return Rejected(topic, f"too large: {len(raw)} bytes (limit {limit})", now)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            return Rejected(topic, short_reason(f"not UTF-8: {exc}"), now)
        try:
            payload = parse_strict(raw, text)
        except RecursionError:
            return Rejected(topic, "malformed JSON: nested too deeply", now)
        except ValueError as exc:  # json.JSONDecodeError is a ValueError
            return Rejected(topic, short_reason(f"malformed JSON: {exc}"), now)
        problem = (
            _shape_problem(raw, payload)
            or _schema_problem(parts.kind, payload)
            or _time_problem(parts.kind, payload)
            or _identity_problem(parts, payload)
        )
        if problem is not None:
            return Rejected(topic, short_reason(problem), now)
        return Accepted(parts, payload, text, now, topic)


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


def short_reason(reason: str) -> str:
    """At most MAX_REASON_CHARS, and storable: a NUL or a lone surrogate quoted from a
    payload is written as an escape."""
    if len(reason) > MAX_REASON_CHARS:
        reason = reason[: MAX_REASON_CHARS - 1] + "…"
    return storable(reason)


def storable(text: str) -> str:
    """`text` with what no database column holds (NUL, lone surrogates) as escapes."""
    if text.isprintable() or (text.isascii() and "\x00" not in text):
        return text
    return text.replace("\x00", "\\x00").encode("utf-8", "backslashreplace").decode("utf-8")
