"""Messages that bench/fuzz/ingest.py found to stop the registry's ingest: each passed
the JSON Schema (or broke a library on the way) and then raised out of the validator or
the store, which ended the ingest writer's thread. Nothing was stored after that, and the
broker handed the unacknowledged message to the next worker, which died on it too.

Published here by an agent through a real mosquitto into a running ingest: each must be
rejected with its reason, and a good report sent after them must still be stored."""

from __future__ import annotations

import json
from collections.abc import Callable

from sqlalchemy import Engine, select

from registry.db.schema import health_history, rejected_messages
from registry.ingest.service import IngestService
from tests.registry.ingest.test_ingest import (  # noqa: F401 (fixtures)
    WAIT_S,
    Publisher,
    count,
    publishers,
    start_ingest,
)
from tests.registry.ingest.test_ingest_store import encode, health, topic
from tests.support import eventually

DEEP = 300  # deeper than orjson writes and jsonschema-rs reads (255), shallower than json


POISON = {
    # orjson reads it but cannot write it back (a TypeError in the fast path's round
    # trip), and jsonschema-rs cannot take it in (a ValueError).
    "front": b"[" * DEEP + b"]" * DEEP,
    # The schema's time pattern took month 13 (it no longer does) and takes 30 February;
    # the store's epoch() did not.
    "back": encode(health(camera="back", ts="2026-02-30T10:00:00.000Z")),
    # Valid JSON and, then, schema (integer, minimum 0), not a 64-bit database integer;
    # the schemas now bound integers to 2^53 - 1.
    "side": encode(health(camera="side", seq=2**63)),
}


def test_messages_that_stopped_the_ingest_are_rejected_and_it_goes_on(
    engine: Engine,
    start_ingest: Callable[..., IngestService],  # noqa: F811
    publishers: Callable[..., Publisher],  # noqa: F811
) -> None:
    start_ingest()
    agent = publishers("shop-1")
    for camera, payload in POISON.items():
        agent.publish(topic("shop-1", f"cameras/{camera}/health"), payload)
    agent.publish(topic("shop-1", "cameras/good/health"), encode(health(camera="good")))

    eventually(lambda: count(engine, health_history) == 1, "the good report stored", WAIT_S)
    eventually(lambda: count(engine, rejected_messages) == len(POISON), "three rejections", WAIT_S)
    with engine.connect() as connection:
        reasons = dict(
            connection.execute(select(rejected_messages.c.topic, rejected_messages.c.reason)).all()
        )
        stored = connection.execute(select(health_history.c.camera_id)).scalars().all()
    assert stored == ["good"]
    assert "nested more than 32 levels deep" in reasons[topic("shop-1", "cameras/front/health")]
    assert "is not a real time" in reasons[topic("shop-1", "cameras/back/health")]
    assert (
        "is greater than the maximum of 9007199254740991"
        in reasons[topic("shop-1", "cameras/side/health")]
    )
    assert json.loads(POISON["side"])["seq"] == 2**63
