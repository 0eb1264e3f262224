"""Ingest through a real mosquitto into SQLite and PostgreSQL: what agents publish is stored,
loss is counted, the last will takes an agent offline, bad messages are rejected, two
workers share the load, and request tokens are relayed."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import Engine, func, select

from agent.audit import REJECTIONS_SUMMARISED, AuditLog
from agent.config import BrokerConfig
from registry.config import ServerConfig
from registry.db.schema import (
    agent_audit,
    agents,
    cameras,
    health_history,
    rejected_messages,
    request_status,
)
from registry.errors import RegistryError
from registry.ingest.service import IngestService
from registry.ingest.store import IngestStore
from registry.ingest.subscriber import IngestWorker
from registry.ingest.workers import run_worker
from registry.link import RequestRelay
from tests.registry.ingest.test_ingest_store import (
    audit_chain,
    audit_entry,
    birth,
    deep,
    encode,
    health,
    offline,
    status,
    topic,
)
from tests.support import REPO_ROOT, eventually
from tests.support.broker import Broker

WAIT_S = 10.0


class Publisher:
    """A plain MQTT 5 client acting as an agent; publish() waits for the PUBACK."""

    def __init__(
        self, broker: Broker, client_id: str, *, will: tuple[str, bytes] | None = None
    ) -> None:
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5
        )
        self.client.max_inflight_messages_set(1000)
        if will is not None:
            self.client.will_set(will[0], will[1], qos=1, retain=True)
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()

    def publish(self, where: str, payload: bytes, *, retain: bool = False) -> None:
        info = self.client.publish(where, payload, qos=1, retain=retain)
        info.wait_for_publish(WAIT_S)

    def publish_many(self, messages: list[tuple[str, bytes]], *, retain: bool = False) -> None:
        infos = [self.client.publish(t, p, qos=1, retain=retain) for t, p in messages]
        for info in infos:
            info.wait_for_publish(WAIT_S)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def publishers(broker: Broker) -> Iterator[Callable[..., Publisher]]:
    made: list[Publisher] = []

    def make(client_id: str = "shop-1", **options: Any) -> Publisher:
        publisher = Publisher(broker, client_id, **options)
        made.append(publisher)
        return publisher

    yield make
    for publisher in made:
        publisher.close()


def server_config(broker: Broker, db_url: str) -> ServerConfig:
    return ServerConfig(mqtt=BrokerConfig(broker=broker.url), database=db_url)


@pytest.fixture
def start_ingest(broker: Broker, db_url: str) -> Iterator[Callable[..., IngestService]]:
    """start_ingest(client_id=..., snapshot=...) -> a running, connected IngestService."""
    running: list[tuple[IngestService, threading.Event]] = []

    def start(client_id: str = "ingest-1", **options: Any) -> IngestService:
        from registry.db.engine import open_engine

        service = IngestService(
            server_config(broker, db_url), open_engine(db_url), client_id=client_id, **options
        )
        stop = threading.Event()
        service.start(stop)
        running.append((service, stop))
        assert service.worker.connection.wait_connected(WAIT_S)
        time.sleep(0.2)  # the subscriptions' SUBACKs
        return service

    yield start
    for service, stop in running:
        stop.set()
        service.join()


def count(engine: Engine, table: Any) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(table)).scalar_one())


def one(engine: Engine, statement: Any) -> Any:
    with engine.connect() as connection:
        return connection.execute(statement).one_or_none()


def test_what_an_agent_publishes_is_stored(
    engine: Engine,
    start_ingest: Callable[..., IngestService],
    publishers: Callable[..., Publisher],
) -> None:
    start_ingest()
    agent = publishers("shop-1")
    agent.publish(topic("shop-1", "state"), encode(birth()), retain=True)
    agent.publish(
        topic("shop-1", "cameras/front/health"), encode(health(status="degraded")), retain=True
    )
    agent.publish(topic("shop-1", "requests/req-1/status"), encode(status()), retain=True)
    chain = audit_chain(2)
    for entry in chain:
        agent.publish(topic("shop-1", "audit"), encode(entry))
    eventually(
        lambda: count(engine, agent_audit) == 2 and count(engine, request_status) == 1,
        "audit and status rows",
        WAIT_S,
    )
    eventually(
        lambda: one(engine, select(cameras.c.status)) == ("degraded",), "camera status", WAIT_S
    )
    row = one(engine, select(cameras))
    assert (row.name, row.lat, row.lon, row.received, row.missing) == (
        "Voordeur",
        52.9925,
        6.5649,
        1,
        0,
    )
    assert row.footage_newest is not None
    state = one(engine, select(agents))
    assert (state.state, state.bdseq, state.audit_head, state.audit_entries) == (
        "online",
        1,
        chain[-1]["hash"],
        2,
    )
    assert one(engine, select(request_status.c.state)) == ("received",)


def test_a_live_rejection_and_a_flood_summary_are_stored(
    tmp_path: Path,
    engine: Engine,
    start_ingest: Callable[..., IngestService],
    publishers: Callable[..., Publisher],
) -> None:
    """The agent publishes a rejected token's status not retained (a flood must not fill
    the broker), and sums a flood up in one audit entry of no request: the ingest stores
    both as they arrive."""
    start_ingest()
    agent = publishers("shop-1")
    rejected = {**status("3f2a9c0d41b7e815", "rejected"), "reason": "bad_signature"}
    agent.publish(topic("shop-1", "requests/3f2a9c0d41b7e815/status"), encode(rejected))
    log = AuditLog(tmp_path / "audit.jsonl")
    log.append("rejected", "3f2a9c0d41b7e815", {"reason": "bad_signature"})
    summary = log.append(
        REJECTIONS_SUMMARISED,
        None,
        {
            "from": "2026-03-01T10:00:00.000Z",
            "to": "2026-03-01T10:10:00.000Z",
            "count": 3,
            "bytes": 60,
            "reasons": {"malformed": 2, "bad_signature": 1},
            "first_ids": ["0c2f4a91d3b8e7f6"],
        },
    )
    for entry in log.entries():
        agent.publish(topic("shop-1", "audit"), entry.line())
    eventually(
        lambda: count(engine, agent_audit) == 2 and count(engine, request_status) == 1,
        "the rejection's status and both audit entries",
        WAIT_S,
    )
    assert one(engine, select(request_status.c.state, request_status.c.reason)) == (
        "rejected",
        "bad_signature",
    )
    assert count(engine, rejected_messages) == 0
    assert one(engine, select(agents.c.audit_head)) == (summary.hash,)


def test_a_seq_gap_is_counted_as_missing(
    engine: Engine,
    start_ingest: Callable[..., IngestService],
    publishers: Callable[..., Publisher],
) -> None:
    start_ingest()
    agent = publishers("shop-1")
    for seq in (1, 2, 5):
        agent.publish(topic("shop-1", "cameras/front/health"), encode(health(seq=seq)), retain=True)
    eventually(lambda: count(engine, health_history) == 3, "three reports", WAIT_S)
    row = one(engine, select(cameras.c.received, cameras.c.missing, cameras.c.seq))
    assert tuple(row) == (3, 2, 5)


def test_the_last_will_takes_the_agent_offline(
    engine: Engine,
    start_ingest: Callable[..., IngestService],
    publishers: Callable[..., Publisher],
) -> None:
    start_ingest()
    agent = publishers("shop-1", will=(topic("shop-1", "state"), encode(offline(bdseq=4))))
    agent.publish(topic("shop-1", "state"), encode(birth(bdseq=4)), retain=True)
    eventually(lambda: one(engine, select(agents.c.state)) == ("online",), "online", WAIT_S)
    # The agent's process dies: its socket closes without DISCONNECT, the broker sends the will.
    agent.client.loop_stop()
    sock = agent.client.socket()
    assert sock is not None
    sock.close()
    eventually(lambda: one(engine, select(agents.c.state)) == ("offline",), "offline", WAIT_S)
    row = one(engine, select(agents))
    assert (row.bdseq, row.offline_reason) == (4, "connection_lost")


def test_bad_messages_are_rejected_with_reasons_and_nothing_stored(
    engine: Engine,
    start_ingest: Callable[..., IngestService],
    publishers: Callable[..., Publisher],
    caplog: pytest.LogCaptureFixture,
) -> None:
    start_ingest()
    agent = publishers("shop-1")
    bad = {
        topic("shop-1", "cameras/front/health"): b'{"schema": "camreg.health.v1",',
        topic("shop-1", "cameras/back/health"): encode(health(camera="back", status="fine")),
        topic("shop-1", "cameras/side/health"): b"{" + b" " * 70_000 + b"}",
        # shop-2's camera, but the broker (no ACL here) let shop-1 publish it.
        topic("shop-2", "cameras/front/health"): encode(health(agent="shop-1")),
    }
    for where, payload in bad.items():
        agent.publish(where, payload)
    eventually(lambda: count(engine, rejected_messages) == len(bad), "four rejections", WAIT_S)
    with engine.connect() as connection:
        reasons = dict(
            connection.execute(select(rejected_messages.c.topic, rejected_messages.c.reason)).all()
        )
    assert set(reasons) == set(bad)
    assert "malformed JSON" in reasons[topic("shop-1", "cameras/front/health")]
    assert "health schema: status" in reasons[topic("shop-1", "cameras/back/health")]
    assert "too large" in reasons[topic("shop-1", "cameras/side/health")]
    assert "is not the topic's agent 'shop-2'" in reasons[topic("shop-2", "cameras/front/health")]
    for table in (agents, cameras, health_history):
        assert count(engine, table) == 0
    assert "rejected a message on" in caplog.text


def test_two_workers_share_the_messages_none_lost_or_doubled(
    engine: Engine,
    start_ingest: Callable[..., IngestService],
    publishers: Callable[..., Publisher],
) -> None:
    first, second = start_ingest("ingest-1"), start_ingest("ingest-2")
    agent = publishers("shop-1")
    messages = [
        (topic("shop-1", f"cameras/cam-{c}/health"), encode(health(camera=f"cam-{c}", seq=s)))
        for s in range(1, 21)
        for c in range(20)
    ]
    agent.publish_many(messages)
    eventually(lambda: count(engine, health_history) == len(messages), "every report", 30)
    time.sleep(0.5)  # anything doubled would show by now
    one_stats, two_stats = first.stats(), second.stats()
    assert one_stats.received > 0 and two_stats.received > 0, (one_stats, two_stats)
    assert one_stats.received + two_stats.received == len(messages)
    with engine.connect() as connection:
        rows = connection.execute(select(cameras.c.received, cameras.c.missing, cameras.c.seq))
        assert {tuple(row) for row in rows} == {(20, 0, 20)}


def test_a_fresh_registry_learns_the_retained_state(
    engine: Engine,
    start_ingest: Callable[..., IngestService],
    publishers: Callable[..., Publisher],
) -> None:
    agent = publishers("shop-1")
    agent.publish(topic("shop-1", "state"), encode(birth(bdseq=7)), retain=True)
    agent.publish(
        topic("shop-1", "cameras/front/health"), encode(health(bdseq=7, seq=30)), retain=True
    )
    agent.publish(topic("shop-1", "requests/req-9/status"), encode(status("req-9")), retain=True)
    start_ingest()
    eventually(
        lambda: count(engine, request_status) == 1 and count(engine, health_history),
        "the retained messages",
        WAIT_S,
    )
    eventually(
        lambda: one(engine, select(agents.c.state, agents.c.bdseq)) == ("online", 7),
        "the retained birth",
        WAIT_S,
    )
    # Live messages after the snapshot arrive once (shared subscription only).
    agent.publish(topic("shop-1", "cameras/front/health"), encode(health(bdseq=7, seq=31)))
    eventually(lambda: count(engine, health_history) == 2, "the live report", WAIT_S)
    time.sleep(0.3)  # time for a doubled report to show
    row = one(engine, select(cameras.c.received, cameras.c.missing))
    assert tuple(row) == (2, 0)


def test_a_relayed_token_reaches_the_agent(
    broker: Broker,
    engine: Engine,
    start_ingest: Callable[..., IngestService],
) -> None:
    service = start_ingest()
    got: list[bytes] = []
    agent = paho.Client(CallbackAPIVersion.VERSION2, client_id="shop-1", protocol=paho.MQTTv5)
    agent.on_message = lambda _c, _u, m: got.append(bytes(m.payload))
    agent.connect(broker.host, broker.port)
    agent.subscribe(topic("shop-1", "requests"), qos=1)
    agent.loop_start()
    try:
        time.sleep(0.3)  # the SUBACK (the token is not retained)
        token = "eyJhbGciOiJFZERTQSJ9.eyJqdGkiOiJyIn0.c2ln"
        service.relay.publish_request("shop-1", token)  # over the worker's own connection
        eventually(lambda: got == [token.encode()], "the token at the agent", WAIT_S)
        with pytest.raises(RegistryError, match="not a compact JWS"):
            service.relay.publish_request("shop-1", '{"not": "a token"}')
    finally:
        agent.disconnect()
        agent.loop_stop()


def test_a_relay_without_a_broker_says_so(broker: Broker) -> None:
    relay = RequestRelay(BrokerConfig(broker=broker.url), timeout=1.0)
    broker.stop()
    relay.start()
    try:
        with pytest.raises(RegistryError, match="not connected within 1 s"):
            relay.publish_request("shop-1", "a.b.c")
    finally:
        relay.stop()


def test_a_standalone_relay_publishes(broker: Broker) -> None:
    got: list[Any] = []
    agent = paho.Client(CallbackAPIVersion.VERSION2, client_id="shop-2", protocol=paho.MQTTv5)
    agent.on_message = lambda _c, _u, m: got.append((m.topic, bytes(m.payload), m.retain))
    agent.connect(broker.host, broker.port)
    agent.subscribe(topic("shop-2", "requests"), qos=1)
    agent.loop_start()
    relay = RequestRelay(BrokerConfig(broker=broker.url))
    relay.start()
    try:
        time.sleep(0.3)  # the SUBACK (the token is not retained)
        relay.publish_request("shop-2", "a.b.c")
        eventually(lambda: got, "the token", WAIT_S)
        assert got == [(topic("shop-2", "requests"), b"a.b.c", False)]
    finally:
        relay.stop()
        agent.disconnect()
        agent.loop_stop()


def test_stored_payloads_are_the_bytes_received(
    engine: Engine,
    start_ingest: Callable[..., IngestService],
    publishers: Callable[..., Publisher],
) -> None:
    start_ingest()
    payload = json.dumps(health(), ensure_ascii=False, indent=1).encode()
    publishers("shop-1").publish(topic("shop-1", "cameras/front/health"), payload)
    eventually(lambda: count(engine, health_history) == 1, "the report", WAIT_S)
    assert one(engine, select(health_history.c.payload)) == (payload.decode(),)


def documented_queue_limit() -> str:
    """docs/mosquitto/mosquitto.conf's max_queued_messages line, as an operator installs it."""
    conf = REPO_ROOT / "docs" / "mosquitto" / "mosquitto.conf"
    found = re.search(r"^max_queued_messages\s+(\d+)$", conf.read_text(), re.MULTILINE)
    assert found is not None and int(found.group(1)) >= BURST
    return found.group(0)


BURST = 6000  # > RECEIVE_MAXIMUM (4000) in flight + mosquitto's default queue of 1000


def test_a_burst_beyond_the_default_broker_queue_is_stored_whole(
    broker: Broker,
    engine: Engine,
    start_ingest: Callable[..., IngestService],
    publishers: Callable[..., Publisher],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """mosquitto drops QoS 1 messages for a client beyond max_queued_messages (default
    1000, measured: 211 of 8,000 lost against a slow worker); with the documented setting a
    burst while the database is stalled is stored whole once it is back."""
    broker.config_file.write_text(broker.config_file.read_text() + documented_queue_limit() + "\n")
    broker.restart()
    database_back = threading.Event()
    apply = IngestStore.apply

    def stalled(self: IngestStore, batch: Any) -> Any:
        database_back.wait(WAIT_S * 3)
        return apply(self, batch)

    monkeypatch.setattr(IngestStore, "apply", stalled)
    start_ingest()
    agent = publishers("shop-1")
    agent.publish_many(
        [
            (
                topic("shop-1", f"cameras/cam-{n % 50}/health"),
                encode(health(camera=f"cam-{n % 50}", seq=n // 50 + 1)),
            )
            for n in range(BURST)
        ]
    )
    database_back.set()
    eventually(lambda: count(engine, health_history) == BURST, "the whole burst", 60)
    with engine.connect() as connection:
        rows = connection.execute(select(cameras.c.received, cameras.c.missing)).all()
    assert {tuple(row) for row in rows} == {(BURST // 50, 0)}
    assert "being dropped" not in broker.log()


# --- poison messages: one bad message must not stop ingest for everyone ----------------------

BEYOND_64_BITS = 2**64


def poison_birth(agent: str, name: str) -> dict[str, Any]:
    payload = birth(agent)
    payload["cameras"][0]["name"] = name
    return payload


# Retained (the snapshot delivers them again after every restart), each on its own topic.
RETAINED_POISON = {
    topic("shop-1", "cameras/huge-seq/health"): encode(
        health(camera="huge-seq", seq=BEYOND_64_BITS)
    ),
    topic("shop-1", "cameras/year-0/health"): encode(
        {**health(camera="year-0"), "ts": "0000-01-01T00:00:00Z"}
    ),
    topic("shop-1", "cameras/feb-30/health"): encode(
        {**health(camera="feb-30"), "ts": "2026-02-30T10:00:00Z"}
    ),
    topic("shop-1", "cameras/deep/health"): encode(
        health(camera="deep", metrics={"fps": 15.0, "x": deep(600)})
    ),
    topic("shop-1", "cameras/infinite/health"): encode(health(camera="infinite")).replace(
        b'"fps":15.0,"brightness"', b'"fps":1e400,"brightness"'
    ),
    topic("shop-1", "requests/huge-bytes/status"): encode(
        {
            **status("huge-bytes", state="uploading"),
            "progress": {"bytes_sent": 1, "bytes_total": BEYOND_64_BITS},
        }
    ),
    topic("long-name", "state"): encode(poison_birth("long-name", "x" * 300)),
    topic("nul-name", "state"): encode(poison_birth("nul-name", "Voor\x00deur")),
    topic("surrogate", "state"): encode(poison_birth("surrogate", "\ud800")),
}
# Audit entries are not retained: sent live, among good ones.
LIVE_POISON = {
    topic("shop-3", "audit"): encode(audit_entry(BEYOND_64_BITS)),
    topic("shop-4", "audit"): encode(audit_entry(1, {"x": deep(600)})),
}


def rejections(engine: Engine) -> dict[str, list[str]]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(rejected_messages.c.topic, rejected_messages.c.reason).order_by(
                rejected_messages.c.id
            )
        ).all()
    found: dict[str, list[str]] = {}
    for row in rows:
        found.setdefault(row.topic, []).append(row.reason)
    return found


def test_a_poison_message_is_rejected_alone_and_ingest_survives_restarts(
    broker: Broker,
    db_url: str,
    engine: Engine,
    publishers: Callable[..., Publisher],
) -> None:
    """Retained poison (an integer beyond 64 bits, a time in year 0, a recursion bomb, a
    name the column cannot hold, a NUL...) among good messages: each poison message is
    stored as rejected with its reason, every good one is stored, the writer goes on, and
    a restarted ingest, which gets the retained poison again, still works."""
    agent = publishers("shop-1")
    agent.publish(topic("shop-1", "state"), encode(birth()), retain=True)
    agent.publish_many(list(RETAINED_POISON.items()), retain=True)
    agent.publish(topic("shop-1", "cameras/front/health"), encode(health(seq=1)), retain=True)
    agent.publish(topic("shop-1", "requests/req-1/status"), encode(status()), retain=True)
    chain = audit_chain(3)
    # A worker, the same worker restarted (its session resumed: what it had not
    # acknowledged comes again), and a new worker (a new session: its snapshot delivers
    # every retained message again).
    runs = [("ingest-1", "camera-registry", 1), ("ingest-1", "camera-registry", 1)]
    runs.append(("ingest-new", "fresh-registry", 2))
    for run, (client_id, group, retained_seen) in enumerate(runs, start=1):
        config = server_config(broker, db_url).model_copy(update={"share_group": group})
        service = IngestService(config, engine, client_id=client_id)
        stop = threading.Event()
        service.start(stop)
        try:
            assert service.worker.connection.wait_connected(WAIT_S)

            def retained_rejected(seen: int = retained_seen) -> bool:
                return all(len(rejections(engine).get(t, [])) == seen for t in RETAINED_POISON)

            eventually(
                retained_rejected,
                f"the retained poison rejected (run {run})",
                WAIT_S,
            )
            time.sleep(0.2)  # the shared subscriptions' SUBACKs (as start_ingest)
            agent.publish_many(
                [*LIVE_POISON.items(), (topic("shop-1", "audit"), encode(chain[run - 1]))]
            )

            def live_rejected(run: int = run) -> bool:
                return all(len(rejections(engine).get(t, [])) == run for t in LIVE_POISON)

            eventually(
                live_rejected,
                f"the live poison rejected (run {run})",
                WAIT_S,
            )
            # After the poison: a new report is stored, the writer goes on.
            agent.publish(topic("shop-1", "cameras/front/health"), encode(health(seq=run + 1)))

            def good_stored(run: int = run) -> bool:
                return (
                    count(engine, health_history) == run + 1
                    and count(engine, agent_audit) == run
                    and count(engine, request_status) == 1
                )

            eventually(
                good_stored,
                f"the good messages stored (run {run})",
                WAIT_S,
            )
        finally:
            stop.set()
            service.join()
    row = one(engine, select(cameras.c.seq, cameras.c.received, cameras.c.missing))
    assert tuple(row) == (4, 4, 0)
    reasons = {t: found[-1] for t, found in rejections(engine).items()}
    assert set(reasons) == set(RETAINED_POISON) | set(LIVE_POISON), reasons
    assert "seq" in reasons[topic("shop-1", "cameras/huge-seq/health")]
    assert "ts" in reasons[topic("shop-1", "cameras/year-0/health")]
    assert "2026-02-30" in reasons[topic("shop-1", "cameras/feb-30/health")]
    assert "nested too deeply" in reasons[topic("shop-1", "cameras/deep/health")]
    assert "1e400" in reasons[topic("shop-1", "cameras/infinite/health")]
    assert "progress/bytes_total" in reasons[topic("shop-1", "requests/huge-bytes/status")]
    assert "cameras/0/name" in reasons[topic("long-name", "state")]
    assert "U+0000" in reasons[topic("nul-name", "state")]
    assert "surrogate" in reasons[topic("surrogate", "state")]
    assert "seq" in reasons[topic("shop-3", "audit")]
    assert "nested too deeply" in reasons[topic("shop-4", "audit")]
    with engine.connect() as connection:
        assert connection.execute(select(agents.c.agent_id)).scalars().all() == ["shop-1"]


@pytest.mark.allow_logged_exceptions  # the writer's planted bug is logged at its thread's end
def test_a_worker_whose_writer_stopped_exits_to_be_restarted(
    broker: Broker,
    db_url: str,
    monkeypatch: pytest.MonkeyPatch,
    publishers: Callable[..., Publisher],
) -> None:
    """Should the writer still stop (a bug of ours), the worker does not stay connected
    storing nothing: it exits with an error, so the pool or systemd starts a fresh one."""

    def broken(self: IngestWorker, batch: Any) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(IngestWorker, "_commit", broken)
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            run_worker(server_config(broker, db_url), "ingest-1", True, threading.Event())
        except RegistryError as exc:
            outcome.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    publishers("shop-1").publish(
        topic("shop-1", "cameras/front/health"), encode(health()), retain=True
    )
    worker.join(WAIT_S)
    assert not worker.is_alive()
    assert [str(exc) for exc in outcome] == [
        "the ingest writer stopped (its traceback is logged above)"
    ]
