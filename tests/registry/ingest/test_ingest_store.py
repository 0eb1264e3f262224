"""Validation and the ingest store on both engines, without a broker: what lands in which
table, loss counting in any arrival order, and rejections with their reasons."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from agent.audit import entry_hash
from registry.db.schema import agent_audit, agents, cameras, health_history, rejected_messages
from registry.db.schema import request_status as request_status_table
from registry.ingest.store import IngestStore
from registry.ingest.validate import MAX_PAYLOAD_BYTES, Accepted, MessageValidator, Rejected

PREFIX = "camreg/v1"
ZERO = "0" * 64


def topic(agent: str, rest: str) -> str:
    return f"{PREFIX}/agents/{agent}/{rest}"


def health(
    agent: str = "shop-1",
    camera: str = "front",
    *,
    bdseq: int = 1,
    seq: int = 1,
    status: str = "ok",
    **extra: Any,
) -> dict[str, Any]:
    """A valid camreg.health.v1 object."""
    return {
        "schema": "camreg.health.v1",
        "agent": agent,
        "camera": camera,
        "bdseq": bdseq,
        "seq": seq,
        "ts": f"2026-03-01T10:{seq // 60 % 60:02d}:{seq % 60:02d}.000Z",
        "status": status,
        "problems": [] if status == "ok" else ["blurred"],
        "metrics": {"fps": 15.0, "brightness": 100.0},
        "stream": {
            "codec": "h264",
            "width": 1920,
            "height": 1080,
            "fps": 15.0,
            "bitrate_kbps": 2000.0,
        },
        "footage": {
            "oldest": "2026-02-22T10:00:00Z",
            "newest": "2026-03-01T10:00:00Z",
            "gaps": {"count": 0, "seconds": 0},
            "bytes": 1000,
            "retention_days_effective": 7,
        },
        "clock": {"synced": True, "source": "ntp"},
        **extra,
    }


def birth(agent: str = "shop-1", *, bdseq: int = 1) -> dict[str, Any]:
    return {
        "state": "online",
        "agent": agent,
        "bdseq": bdseq,
        "version": "0.1.0",
        "ts": "2026-03-01T10:00:00.000Z",
        "clock": {"synced": True, "source": "ntp"},
        "cameras": [
            {
                "id": "front",
                "name": "Voordeur",
                "location": {
                    "lat": 52.9925,
                    "lon": 6.5649,
                    "bearing_deg": 180,
                    "fov_deg": 90,
                    "range_m": 25,
                },
                "dori_m": {"detect": 60.0, "observe": 24.0, "recognise": 12.0, "identify": 6.0},
            }
        ],
    }


def offline(
    agent: str = "shop-1", *, bdseq: int = 1, reason: str = "connection_lost"
) -> dict[str, Any]:
    return {"state": "offline", "agent": agent, "bdseq": bdseq, "reason": reason}


def status(
    request_id: str = "req-1", state: str = "received", ts_second: int = 0
) -> dict[str, Any]:
    return {
        "request_id": request_id,
        "state": state,
        "reason": None,
        "progress": None,
        "manifest_sha256": None,
        "ts": f"2026-03-01T10:00:{ts_second:02d}.000Z",
    }


def audit_chain(count: int) -> list[dict[str, Any]]:
    entries, prev = [], ZERO
    for seq in range(1, count + 1):
        body: dict[str, Any] = {
            "seq": seq,
            "ts": "2026-03-01T10:00:00.000Z",
            "event": "received",
            "request_id": f"req-{seq}",
            "detail": {},
            "prev": prev,
        }
        body["hash"] = entry_hash(seq, body["ts"], "received", body["request_id"], {}, prev)
        entries.append(body)
        prev = body["hash"]
    return entries


def audit_entry(
    seq: Any, detail: Any = None, ts: Any = "2026-03-01T10:00:00.000Z"
) -> dict[str, Any]:
    """A first audit entry whose hash matches its content, whatever the content (so that
    what follows the hash check decides); ValueError or TypeError if no hash can be made."""
    body: dict[str, Any] = {
        "seq": seq,
        "ts": ts,
        "event": "received",
        "request_id": "req-1",
        "detail": {} if detail is None else detail,
        "prev": ZERO,
    }
    body["hash"] = entry_hash(seq, ts, "received", "req-1", body["detail"], ZERO)
    return body


def deep(levels: int) -> Any:
    """A JSON value nested `levels` lists deep (a recursion bomb)."""
    value: Any = []
    for _ in range(levels - 1):
        value = [value]
    return value


def encode(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


@pytest.fixture
def validator() -> MessageValidator:
    return MessageValidator(PREFIX)


@pytest.fixture
def store(engine: Engine) -> IngestStore:
    return IngestStore(engine)


def apply(store: IngestStore, validator: MessageValidator, *messages: tuple[str, bytes]) -> None:
    store.apply([validator.check(t, payload) for t, payload in messages])


def camera_row(engine: Engine, agent: str = "shop-1", camera: str = "front") -> Any:
    with engine.connect() as connection:
        return connection.execute(
            select(cameras).where(cameras.c.agent_id == agent, cameras.c.camera_id == camera)
        ).one()


def count(engine: Engine, table: Any) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(table)).scalar_one())


def health_message(**options: Any) -> tuple[str, bytes]:
    payload = health(**options)
    return topic(payload["agent"], f"cameras/{payload['camera']}/health"), encode(payload)


# --- validation ------------------------------------------------------------------------------


REJECTIONS = [
    ("not JSON", topic("shop-1", "cameras/front/health"), b"{not json", "malformed JSON"),
    (
        "duplicate key",
        topic("shop-1", "cameras/front/health"),
        b'{"agent":"shop-1","agent":"shop-2"}',
        "appears twice",
    ),
    (
        "NaN",
        topic("shop-1", "cameras/front/health"),
        encode(health())[:-1] + b',"x":NaN}',
        "not a JSON number",
    ),
    ("not UTF-8", topic("shop-1", "cameras/front/health"), b'{"a":"\xff"}', "not UTF-8"),
    (
        "schema",
        topic("shop-1", "cameras/front/health"),
        encode(health(status="weird")),
        "health schema: status",
    ),
    (
        "oversized",
        topic("shop-1", "cameras/front/health"),
        b" " * (MAX_PAYLOAD_BYTES + 1),
        "too large",
    ),
    (
        "other agent's payload",
        topic("shop-2", "cameras/front/health"),
        encode(health(agent="shop-1")),
        "is not the topic's agent 'shop-2'",
    ),
    (
        "other camera's payload",
        topic("shop-1", "cameras/back/health"),
        encode(health(camera="front")),
        "is not the topic's camera 'back'",
    ),
    (
        "state of another agent",
        topic("shop-2", "state"),
        encode(birth("shop-1")),
        "is not the topic's agent",
    ),
    (
        "status of another request",
        topic("shop-1", "requests/req-2/status"),
        encode(status("req-1")),
        "is not the topic's request id",
    ),
    (
        "altered audit entry",
        topic("shop-1", "audit"),
        encode({**audit_chain(1)[0], "event": "approved", "detail": {"by": "owner"}}),
        "hash does not match",
    ),
    ("upper-case agent id", topic("Shop-1", "state"), encode(birth()), "not a valid id"),
    ("not a contract topic", topic("shop-1", "cameras/front/picture"), b"{}", "not an agent topic"),
    ("deep nesting", topic("shop-1", "audit"), b"[" * 30_000 + b"]" * 30_000, "nested"),
]


@pytest.mark.parametrize(
    ("case", "where", "payload", "reason"), REJECTIONS, ids=[r[0] for r in REJECTIONS]
)
def test_each_bad_message_is_rejected_with_its_reason(
    validator: MessageValidator, case: str, where: str, payload: bytes, reason: str
) -> None:
    result = validator.check(where, payload)
    assert isinstance(result, Rejected), case
    assert reason in result.reason, result.reason
    assert len(result.reason) <= 300


@pytest.mark.parametrize(
    "message",
    [
        (topic("shop-1", "state"), encode(birth())),
        (topic("shop-1", "state"), encode(offline())),
        health_message(),
        (topic("shop-1", "requests/req-1/status"), encode(status())),
        (topic("shop-1", "audit"), encode(audit_chain(1)[0])),
    ],
    ids=["birth", "offline", "health", "status", "audit"],
)
def test_contract_messages_are_accepted(
    validator: MessageValidator, message: tuple[str, bytes]
) -> None:
    assert isinstance(validator.check(*message), Accepted)


def test_rejected_messages_are_stored_with_their_reason_and_nothing_else(
    engine: Engine, store: IngestStore, validator: MessageValidator
) -> None:
    apply(store, validator, *[(where, payload) for _, where, payload, _ in REJECTIONS])
    with engine.connect() as connection:
        rows = connection.execute(select(rejected_messages)).all()
    assert len(rows) == len(REJECTIONS)
    assert all(row.reason and row.topic for row in rows)
    for table in (agents, cameras, health_history, agent_audit, request_status_table):
        assert count(engine, table) == 0, table.name


# --- health and loss counting -------------------------------------------------------------------


def test_health_is_the_cameras_current_row_and_history(
    engine: Engine, store: IngestStore, validator: MessageValidator
) -> None:
    apply(store, validator, health_message(seq=1), health_message(seq=2, status="degraded"))
    row = camera_row(engine)
    assert (row.status, json.loads(row.problems_json)) == ("degraded", ["blurred"])
    assert row.footage_oldest == pytest.approx(1771754400.0)  # 2026-02-22T10:00:00Z
    assert row.footage_newest == pytest.approx(1772359200.0)  # 2026-03-01T10:00:00Z
    assert json.loads(row.health_json)["seq"] == 2
    assert (row.bdseq, row.seq, row.received, row.missing) == (1, 2, 2, 0)
    assert count(engine, health_history) == 2
    with engine.connect() as connection:
        assert connection.execute(select(agents.c.last_seen)).scalar_one() > 0


def test_a_seq_gap_counts_as_missing(
    engine: Engine, store: IngestStore, validator: MessageValidator
) -> None:
    for seq in (1, 2, 5):  # one batch each, as they would arrive
        apply(store, validator, health_message(seq=seq))
    row = camera_row(engine)
    assert (row.received, row.missing, row.seq) == (3, 2, 5)


def test_duplicates_and_old_retained_reports_change_nothing(
    engine: Engine, store: IngestStore, validator: MessageValidator
) -> None:
    apply(store, validator, health_message(seq=10), health_message(seq=11))
    apply(store, validator, health_message(seq=11), health_message(seq=11))  # QoS 1 redelivery
    apply(store, validator, health_message(seq=10, status="failed"))  # an old copy
    row = camera_row(engine)
    assert (row.received, row.missing, row.seq, row.status) == (2, 0, 11, "ok")
    assert count(engine, health_history) == 2


def test_a_new_bdseq_starts_over(
    engine: Engine, store: IngestStore, validator: MessageValidator
) -> None:
    apply(store, validator, health_message(bdseq=1, seq=1), health_message(bdseq=1, seq=3))
    # The agent restarted: seq goes on from where it was, nothing between runs is "lost".
    apply(store, validator, health_message(bdseq=2, seq=10), health_message(bdseq=2, seq=11))
    row = camera_row(engine)
    assert (row.bdseq, row.received, row.missing) == (2, 4, 1)
    # A straggler of the old run is history, not the current state.
    apply(store, validator, health_message(bdseq=1, seq=4, status="failed"))
    row = camera_row(engine)
    assert (row.bdseq, row.seq, row.status, row.received, row.missing) == (2, 11, "ok", 5, 1)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_loss_is_counted_the_same_in_any_arrival_order(
    engine: Engine, store: IngestStore, validator: MessageValidator, seed: int
) -> None:
    """Two workers commit their batches in any order; the count must not depend on it."""
    sent = [s for s in range(1, 101) if s % 7 != 0]  # 14 lost of 100
    messages = [health_message(seq=s) for s in sent]
    messages += random.Random(seed).sample(messages, 10)  # redelivered copies
    random.Random(seed).shuffle(messages)
    while messages:
        size = random.Random(seed + len(messages)).randint(1, 12)
        batch, messages = messages[:size], messages[size:]
        apply(store, validator, *batch)
    row = camera_row(engine)
    assert (row.received, row.missing, row.seq) == (len(sent), 100 - len(sent), 100)
    assert json.loads(row.health_json)["seq"] == 100


# --- state, status, audit -------------------------------------------------------------------------


def test_birth_then_will(engine: Engine, store: IngestStore, validator: MessageValidator) -> None:
    apply(store, validator, (topic("shop-1", "state"), encode(birth(bdseq=3))))
    with engine.connect() as connection:
        agent = connection.execute(select(agents)).one()
    assert (agent.state, agent.bdseq, agent.version, agent.clock_synced) == (
        "online",
        3,
        "0.1.0",
        True,
    )
    row = camera_row(engine)
    assert (row.name, row.lat, row.lon, row.bearing_deg, row.fov_deg, row.range_m) == (
        "Voordeur",
        52.9925,
        6.5649,
        180,
        90,
        25,
    )
    assert json.loads(row.dori_json)["identify"] == 6.0
    # The old run's will, re-sent as retained, must not take the new run offline.
    apply(store, validator, (topic("shop-1", "state"), encode(offline(bdseq=2))))
    apply(store, validator, (topic("shop-1", "state"), encode(birth(bdseq=2))))
    with engine.connect() as connection:
        assert connection.execute(select(agents.c.state, agents.c.bdseq)).one() == ("online", 3)
    apply(store, validator, (topic("shop-1", "state"), encode(offline(bdseq=3))))
    with engine.connect() as connection:
        agent = connection.execute(select(agents)).one()
    assert (agent.state, agent.offline_reason, agent.bdseq) == ("offline", "connection_lost", 3)


def test_request_status_keeps_the_newest(
    engine: Engine, store: IngestStore, validator: MessageValidator
) -> None:
    where = topic("shop-1", "requests/req-1/status")
    apply(
        store,
        validator,
        (where, encode(status(state="received", ts_second=1))),
        (where, encode(status(state="awaiting_owner", ts_second=2))),
    )
    apply(store, validator, (where, encode(status(state="received", ts_second=1))))  # late copy
    with engine.connect() as connection:
        row = connection.execute(select(request_status_table)).one()
    assert (row.agent_id, row.request_id, row.state) == ("shop-1", "req-1", "awaiting_owner")


def test_audit_entries_and_the_head(
    engine: Engine, store: IngestStore, validator: MessageValidator
) -> None:
    chain = audit_chain(5)
    where = topic("shop-1", "audit")
    # Out of order, one entry twice.
    apply(store, validator, *[(where, encode(e)) for e in (chain[0], chain[2], chain[1])])
    apply(store, validator, *[(where, encode(e)) for e in (chain[4], chain[3], chain[4])])
    with engine.connect() as connection:
        agent = connection.execute(select(agents)).one()
        stored = connection.execute(select(agent_audit.c.entry)).scalars().all()
    assert (agent.audit_head, agent.audit_entries) == (chain[4]["hash"], 5)
    assert sorted(stored) == sorted(encode(e).decode() for e in chain)
