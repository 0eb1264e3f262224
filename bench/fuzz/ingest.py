"""Agent messages at the registry's ingest (registry/ingest/validate.py, contract/topics.py), and
what the store makes of those it accepts (health.py's rows, IngestStore on SQLite in
memory).

An input's first byte picks the topic: the agent's state (birth), a camera's health, a
request's status, the audit log, or (4) a topic of its own, the rest's first line. The
rest is the payload. The validator must answer Accepted, Withdrawn or Rejected (with a
bounded reason); what it accepts must parse the same with the stdlib's strict JSON as on
its fast path, and must be stored without an error.
"""

from __future__ import annotations

import json
from typing import Any

from bench.fuzz.target import Target, split_once

PREFIX = "camreg/v1"
AGENT, CAMERA, REQUEST = "shop-1", "front", "req-1"
STATE, HEALTH, STATUS, AUDIT, OWN_TOPIC = range(5)
TOPICS = {
    STATE: f"{PREFIX}/agents/{AGENT}/state",
    HEALTH: f"{PREFIX}/agents/{AGENT}/cameras/{CAMERA}/health",
    STATUS: f"{PREFIX}/agents/{AGENT}/requests/{REQUEST}/status",
    AUDIT: f"{PREFIX}/agents/{AGENT}/audit",
}
RECEIVED_AT = 1_780_000_000.0
# Nested just below where the stdlib parser gives up: the deep end of what gets through.
DEEP = 900


def build() -> Target:
    from registry.db.engine import open_engine
    from registry.errors import RegistryError
    from registry.ingest import health
    from registry.ingest.store import IngestStore
    from registry.ingest.validate import (
        MAX_REASON_CHARS,
        Accepted,
        MessageValidator,
        Rejected,
        Withdrawn,
        parse_strict,
    )

    validator = MessageValidator(PREFIX)
    store = IngestStore(open_engine("sqlite://"))
    stdlib_strict = json.JSONDecoder(object_pairs_hook=_no_repeats, parse_constant=_no_constant)

    def one_input(data: bytes) -> None:
        if not data:
            return
        kind, payload = data[0] % 5, data[1:]
        if kind == OWN_TOPIC:
            raw_topic, payload = split_once(payload)
            topic = raw_topic.decode("utf-8", "replace")
        else:
            topic = TOPICS[kind]
        message = validator.check(topic, payload, RECEIVED_AT)
        if isinstance(message, Rejected):
            assert len(message.reason) <= MAX_REASON_CHARS, message.reason
            return
        assert isinstance(message, Accepted | Withdrawn), message
        if isinstance(message, Accepted):
            # The fast path (orjson) must read what the strict stdlib parse reads.
            assert parse_strict(payload, message.text) == stdlib_strict.decode(message.text)
            if message.topic.camera is not None:
                rows = health.history_rows([message])
                health.camera_changes(list(zip(rows, [message], strict=True)))
        try:
            store.apply([message])
        except RegistryError as exc:
            raise AssertionError(f"a message the validator accepted was refused: {exc}") from exc

    return Target(one_input, _seeds())


def _no_repeats(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("repeated key")
    return result


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _seeds() -> list[bytes]:
    from agent.audit import entry_hash
    from tests.registry.ingest.test_ingest_store import birth as birth_of
    from tests.registry.ingest.test_ingest_store import health
    from tests.registry.ingest.test_ingest_store import offline as offline_of

    ts = "2026-03-01T10:00:00.000Z"
    birth = birth_of(AGENT)
    report = health(AGENT, CAMERA, seq=7, status="degraded")
    status = {
        "request_id": REQUEST,
        "state": "uploading",
        "reason": None,
        "progress": {"files_done": 1, "files_total": 3, "bytes_done": 10, "bytes_total": 30},
        "manifest_sha256": None,
        "ts": ts,
    }
    prev = "0" * 64
    detail = {"reason": "bad_signature", "nested": {"ä": [1, 2]}}
    entry = {"seq": 1, "ts": ts, "event": "rejected", "request_id": REQUEST, "detail": detail}
    entry |= {"prev": prev, "hash": entry_hash(1, ts, "rejected", REQUEST, detail, prev)}
    offline = offline_of(AGENT)

    def compact(value: Any) -> bytes:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()

    return [
        bytes([STATE]) + compact(birth),
        bytes([STATE]) + json.dumps(offline).encode(),
        bytes([HEALTH]) + compact(report),
        bytes([HEALTH]) + json.dumps(report, indent=1).encode(),
        bytes([HEALTH]),
        bytes([STATUS]) + compact(status),
        bytes([AUDIT]) + compact(entry),
        bytes([AUDIT]) + b'{"detail":' * DEEP + b"{}" + b"}" * DEEP,
        bytes([OWN_TOPIC]) + TOPICS[HEALTH].encode() + b"\n" + compact(report),
        bytes([OWN_TOPIC]) + f"{PREFIX}/agents/x/cameras/../health".encode() + b"\n{}",
        # What fuzzing found (tests/registry/ingest/test_ingest_poison.py): each stopped the ingest.
        bytes([HEALTH]) + b"[" * 300 + b"]" * 300,
        bytes([HEALTH]) + compact({**report, "ts": "2026-13-01T10:00:00.000Z"}),
        bytes([HEALTH]) + compact({**report, "seq": 2**63}),
    ]
