"""No payload stops ingest: generated messages (contract-shaped with extreme values, and any
JSON) through the real validate-and-store path into SQLite and PostgreSQL, and a message
the database still refuses is rejected alone. The long fuzz runs belong in bench/."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import datetime
from importlib.resources import files
from typing import Any

import jsonschema_rs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select

from contract.topics import Kind
from registry.db.schema import agent_audit, health_history, rejected_messages, request_status
from registry.ingest import validate
from registry.ingest.pipeline import ingest, ingest_one
from registry.ingest.store import IngestStore
from registry.ingest.validate import (
    SCHEMA_FILES,
    Accepted,
    MessageValidator,
    Rejected,
    Withdrawn,
)
from tests.registry.ingest.test_ingest_store import (
    PREFIX,
    audit_chain,
    audit_entry,
    birth,
    count,
    deep,
    encode,
    health,
    offline,
    status,
    topic,
)

BEYOND_64_BITS = 2**64


def reasons(engine: Engine) -> dict[str, str]:
    with engine.connect() as connection:
        rows = connection.execute(select(rejected_messages.c.topic, rejected_messages.c.reason))
        return {row.topic: row.reason for row in rows}


# --- a message the database refuses is rejected alone ------------------------------------------


def _without_maxima(schema: Any) -> Any:
    if isinstance(schema, dict):
        return {k: _without_maxima(v) for k, v in schema.items() if k != "maximum"}
    if isinstance(schema, list):
        return [_without_maxima(v) for v in schema]
    return schema


@pytest.fixture
def unbounded_schemas(monkeypatch: pytest.MonkeyPatch) -> None:
    """The contract's schemas without their integer bounds: what reaches the store is then
    what the database itself must refuse (as it did before the bounds)."""
    compiled = {}
    for kind in Kind:
        schema = json.loads(files("registry").joinpath("schemas", SCHEMA_FILES[kind]).read_text())
        compiled[kind] = jsonschema_rs.Draft202012Validator(_without_maxima(schema))
    monkeypatch.setattr(validate, "_validator", compiled.__getitem__)


def test_a_message_the_database_refuses_is_rejected_alone(
    engine: Engine, unbounded_schemas: None
) -> None:
    """A batch with an integer beyond 64 bits in a health report and in a request status:
    both are stored as rejected with the database's reason, the rest of the batch as ever."""
    validator = MessageValidator(PREFIX)
    good_health = health(seq=1)
    entry = audit_chain(1)[0]
    huge_status = {
        **status("huge", state="uploading"),
        "progress": {"bytes_sent": 1, "bytes_total": BEYOND_64_BITS},
    }
    batch = [
        (topic("shop-1", "cameras/huge/health"), encode(health(camera="huge", seq=BEYOND_64_BITS))),
        (topic("shop-1", "cameras/front/health"), encode(good_health)),
        (topic("shop-1", "requests/huge/status"), encode(huge_status)),
        (topic("shop-1", "requests/req-1/status"), encode(status())),
        (topic("shop-1", "audit"), encode(entry)),
    ]
    result = ingest(validator, IngestStore(engine), [(t, p, 1.0) for t, p in batch])
    assert result.rejected == 2
    refused = reasons(engine)
    assert set(refused) == {batch[0][0], batch[2][0]}
    assert all(reason.startswith("the database refused it: ") for reason in refused.values())
    assert (count(engine, health_history), count(engine, request_status)) == (1, 1)
    assert count(engine, agent_audit) == 1


# --- generated payloads ------------------------------------------------------------------------

# Integers at and around every boundary a store or a reader has: 2^53, 2^63, 2^64.
EDGES = [0, 1, -1, 2**31, 2**53 - 1, 2**53, 2**63 - 1, 2**63, 2**64, -(2**63) - 1, 10**30]
INTEGERS = st.sampled_from(EDGES) | st.integers()
# Written as JSON text, so that what no Python float holds (1e400) reaches the parser.
NUMBER_TEXT = st.sampled_from(["1e400", "-1e400", "1e-400", "1.7976931348623157e308", "-0.0"])
TIMES = st.sampled_from(
    [
        "0000-01-01T00:00:00Z",
        "0001-01-01T00:00:00Z",
        "1969-12-31T23:59:59Z",
        "1970-01-01T00:00:00Z",
        "2026-02-29T10:00:00Z",
        "2026-02-30T10:00:00Z",
        "2026-04-31T10:00:00Z",
        "2026-03-01T23:59:60Z",
        "2026-03-01T24:00:00Z",
        "2999-12-31T23:59:59.999999999Z",
        "9999-12-31T23:59:59.9999999Z",
        "2026-03-01T10:00:00." + "9" * 200 + "Z",
    ]
) | st.from_regex(r"\A\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,12})?Z\Z")
STRINGS = st.sampled_from(
    ["", "\x00", "a\x00b", "\ud800", "\udfff", "x" * 300, "é" * 300, "\u2028"]
) | st.text(max_size=80)
JSON = st.recursive(
    st.none()
    | st.booleans()
    | INTEGERS
    | st.floats(allow_nan=False, allow_infinity=False)
    | STRINGS,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(STRINGS, children, max_size=3)
    ),
    max_leaves=12,
)
# Stands for a number written as text (NUMBER_TEXT) once the payload is encoded.
NUMBER = "@@number@@"
EXTREME = INTEGERS | STRINGS | TIMES | st.none() | st.booleans() | JSON | st.just(NUMBER)


def _paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every place in a payload a value can be put (keys of objects, items of lists)."""
    if isinstance(value, dict):
        for key, child in value.items():
            yield (*path, key)
            yield from _paths(child, (*path, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield (*path, index)
            yield from _paths(child, (*path, index))


def _put(value: Any, path: tuple[Any, ...], new: Any) -> None:
    for step in path[:-1]:
        value = value[step]
    value[path[-1]] = new


CONTRACT: dict[str, tuple[Callable[[], dict[str, Any]], str]] = {
    "health": (lambda: health(), topic("shop-1", "cameras/front/health")),
    "birth": (lambda: birth(), topic("shop-1", "state")),
    "offline": (lambda: offline(), topic("shop-1", "state")),
    "status": (
        lambda: {**status(state="uploading"), "progress": {"bytes_sent": 1, "bytes_total": 2}},
        topic("shop-1", "requests/req-1/status"),
    ),
}


@st.composite
def contract_shaped(draw: st.DrawFn) -> tuple[str, bytes]:
    """A valid message of one kind with up to three of its values replaced by extremes."""
    kind = draw(st.sampled_from([*CONTRACT, "audit"]))
    if kind == "audit":
        try:
            entry = audit_entry(draw(INTEGERS), draw(st.dictionaries(STRINGS, JSON)), draw(TIMES))
        except (ValueError, TypeError):  # no hash for this content: the agent never sends it
            entry = audit_chain(1)[0]
        return topic("shop-1", "audit"), _encode(entry)
    make, where = CONTRACT[kind]
    payload = make()
    for _ in range(draw(st.integers(1, 3))):
        # Looked up afresh each time: a replaced object has no paths inside it any more.
        _put(payload, draw(st.sampled_from(sorted(_paths(payload), key=repr))), draw(EXTREME))
    text = _encode(payload).replace(f'"{NUMBER}"'.encode(), draw(NUMBER_TEXT).encode())
    if draw(st.integers(0, 9)) == 0:
        text = text[:-1] + b',"x":' + json.dumps(deep(draw(st.integers(30, 1200)))).encode() + b"}"
    return where, text


def _encode(payload: Any) -> bytes:
    # ensure_ascii: a lone surrogate travels as its escape, as a hostile client would send it
    return json.dumps(payload, separators=(",", ":")).encode()


# Values of the right type at the edges of what the schemas allow, and just beyond.
IN_BOUNDS = st.sampled_from([0, 1, 2**53 - 2, 2**53 - 1]) | st.integers(0, 2**53 - 1)
BEYOND = st.sampled_from([2**53, 2**63 - 1, 2**63, 2**64]) | st.integers(0, 2**70)
FLOATS = st.sampled_from([0.0, -0.0, 5e-324, 1.7976931348623157e308, -1.7976931348623157e308])
FLOATS = FLOATS | st.floats(allow_nan=False, allow_infinity=False)
GOOD_TIMES = st.datetimes(
    min_value=datetime(1970, 1, 1), max_value=datetime(2999, 12, 31, 23, 59, 59, 999999)
).map(lambda moment: moment.isoformat(timespec="microseconds") + "Z")
EDGE_TIMES = GOOD_TIMES | TIMES | st.none()


@st.composite
def typed_extremes(draw: st.DrawFn) -> tuple[str, bytes]:
    """A message of each kind whose fields are each of the right type, drawn at or near
    the edges: most pass the checks, so that the store gets to meet the extremes."""
    kind = draw(st.sampled_from(["health", "birth", "offline", "status", "audit"]))
    # Half of them within the bounds throughout, half with some values beyond.
    beyond = draw(st.booleans())
    counts = IN_BOUNDS | BEYOND if beyond else IN_BOUNDS
    times = EDGE_TIMES if beyond else GOOD_TIMES | st.none()
    if kind == "health":
        payload = health(bdseq=draw(counts), seq=draw(counts))
        payload["ts"] = draw(GOOD_TIMES)
        payload["metrics"] = {"fps": draw(FLOATS), "reconnects_1h": draw(counts)}
        payload["stream"].update(width=draw(counts), height=draw(counts), fps=draw(FLOATS))
        footage = payload["footage"]
        footage.update(oldest=draw(times), newest=draw(times), bytes=draw(counts))
        footage["gaps"] = {"count": draw(counts), "seconds": abs(draw(FLOATS))}
        footage["retention_days_effective"] = abs(draw(FLOATS))
        return topic("shop-1", "cameras/front/health"), _encode(payload)
    if kind in ("birth", "offline"):
        payload = birth() if kind == "birth" else offline()
        payload["bdseq"] = draw(counts)
        if kind == "birth":
            payload["ts"] = draw(GOOD_TIMES)
            payload["version"] = draw(STRINGS)
            camera = payload["cameras"][0]
            camera["name"] = draw(STRINGS)
            camera["location"].update(
                lat=draw(st.floats(-90, 90)),
                lon=draw(st.floats(-180, 180)),
                range_m=abs(draw(FLOATS)),
            )
            camera["dori_m"] = {
                n: draw(FLOATS) for n in ("detect", "observe", "recognise", "identify")
            }
        return topic("shop-1", "state"), _encode(payload)
    if kind == "status":
        payload = {**status(state="uploading"), "ts": draw(GOOD_TIMES)}
        payload["progress"] = {"bytes_sent": draw(counts), "bytes_total": draw(counts)}
        return topic("shop-1", "requests/req-1/status"), _encode(payload)
    detail = draw(st.dictionaries(STRINGS, JSON, max_size=3))
    try:
        entry = audit_entry(max(1, draw(counts)), detail, draw(GOOD_TIMES))
    except (ValueError, TypeError):
        entry = audit_chain(1)[0]
    return topic("shop-1", "audit"), _encode(entry)


ANY_TOPIC = st.sampled_from(
    [
        topic("shop-1", "cameras/front/health"),
        topic("shop-1", "state"),
        topic("shop-1", "requests/req-1/status"),
        topic("shop-1", "audit"),
        topic("shop-1", "cameras/front/picture"),
    ]
)
ANY_PAYLOAD = JSON.map(lambda value: _encode(value)) | st.binary(max_size=200) | st.just(b"")
MESSAGES = typed_extremes() | contract_shaped() | st.tuples(ANY_TOPIC, ANY_PAYLOAD)


@pytest.fixture
def feed(engine: Engine) -> Callable[[str, bytes], Accepted | Withdrawn | Rejected]:
    validator, store = MessageValidator(PREFIX), IngestStore(engine)
    return lambda where, payload: ingest_one(validator, store, where, payload)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(message=MESSAGES)
def test_every_generated_message_is_stored_or_rejected_with_a_reason(
    engine: Engine,
    feed: Callable[[str, bytes], Accepted | Withdrawn | Rejected],
    message: tuple[str, bytes],
) -> None:
    """Whatever arrives: no exception, and it is either stored or in rejected_messages with
    its reason, and never because the database refused it (the checks bound every value to
    what the store holds)."""
    where, payload = message
    rejected_before = count(engine, rejected_messages)
    outcome = feed(where, payload)
    if isinstance(outcome, Rejected):
        assert outcome.reason, message
        assert not outcome.reason.startswith("the database refused"), (message, outcome.reason)
        assert not outcome.reason.startswith("could not be checked"), (message, outcome.reason)
        assert count(engine, rejected_messages) == rejected_before + 1
    else:
        assert count(engine, rejected_messages) == rejected_before


def test_integers_written_as_decimals_are_stored_as_integers(engine: Engine) -> None:
    """`2.0` and `1e3` are integers to JSON Schema, but Python reads them as floats: in a
    batch with plain integers they must be stored as the same integers."""
    decimal = encode(health(camera="back", seq=1)).replace(b'"seq":1,', b'"seq":2.0,')
    decimal = decimal.replace(b'"bdseq":1,', b'"bdseq":1e0,')
    batch = [
        (topic("shop-1", "cameras/back/health"), decimal, 1.0),
        (topic("shop-1", "cameras/front/health"), encode(health(seq=3)), 1.0),
        (topic("shop-1", "cameras/back/health"), decimal, 1.0),  # a redelivery: one row
    ]
    result = ingest(MessageValidator(PREFIX), IngestStore(engine), batch)
    assert (result.rejected, result.duplicates) == (0, 1)
    with engine.connect() as connection:
        rows = connection.execute(select(health_history.c.camera_id, health_history.c.seq))
        assert sorted(tuple(row) for row in rows) == [("back", 2), ("front", 3)]
