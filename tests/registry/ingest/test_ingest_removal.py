"""Cameras an owner removed leave the registry: when the agent's newer birth no longer lists
them, or when their retained health is withdrawn (an empty retained payload). Through a real
mosquitto into SQLite and PostgreSQL, and the store's ordering rules without a broker."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, select

from registry.db.schema import agents, cameras, health_history, rejected_messages
from registry.ingest.service import IngestService
from registry.ingest.store import IngestStore
from registry.ingest.validate import MessageValidator, Rejected, Withdrawn
from registry.police.search import find_cameras
from registry.web.camera_list import camera_rows
from tests.registry.ingest.test_ingest import (  # noqa: F401 (fixtures)
    WAIT_S,
    Publisher,
    count,
    publishers,
    start_ingest,
)
from tests.registry.ingest.test_ingest_store import PREFIX, birth, encode, health, topic
from tests.support import eventually
from tests.support.broker import Broker
from tests.support.mqtt_watch import Watcher

STORE_LOG = "registry.ingest.store"
# 10 m south of the cameras (both look south from one pole), inside their footage.
INCIDENT = (52.9925 - 10 / 111_320, 6.5649)
INCIDENT_AT = datetime(2026, 2, 25, 12, 0, tzinfo=UTC)
# The birth and two reports of agent_with_two_cameras().
SETUP_MESSAGES = 3
REMOVED_BACK = "agent shop-1 no longer has camera(s) back: removed from the registry"


def birth_of(*camera_ids: str, agent: str = "shop-1", bdseq: int = 1) -> bytes:
    """A birth listing these cameras, all at the same spot as birth()'s `front`."""
    body = birth(agent, bdseq=bdseq)
    template = body["cameras"][0]
    body["cameras"] = [{**template, "id": c, "name": c.title()} for c in camera_ids]
    return encode(body)


def health_of(camera: str, *, bdseq: int = 1, seq: int = 1) -> tuple[str, bytes]:
    return topic("shop-1", f"cameras/{camera}/health"), encode(
        health(camera=camera, bdseq=bdseq, seq=seq)
    )


def camera_ids(engine: Engine, agent: str = "shop-1") -> set[str]:
    with engine.connect() as connection:
        return set(
            connection.execute(
                select(cameras.c.camera_id).where(cameras.c.agent_id == agent)
            ).scalars()
        )


def history_of(engine: Engine, camera: str) -> int:
    with engine.connect() as connection:
        return len(
            connection.execute(
                select(health_history.c.id).where(health_history.c.camera_id == camera)
            ).all()
        )


def what_users_see(engine: Engine) -> tuple[set[str], set[str]]:
    """The cameras on the dashboard and those a police search near both finds."""
    dashboard = {row["camera"] for row in camera_rows(engine)}
    found = {match.camera_id for match in find_cameras(engine, *INCIDENT, INCIDENT_AT)}
    return dashboard, found


def agent_with_two_cameras(engine: Engine, agent: Publisher, *, bdseq: int = 1) -> None:
    """shop-1 online with front and back, each with one health report, all retained."""
    agent.publish(topic("shop-1", "state"), birth_of("front", "back", bdseq=bdseq), retain=True)
    for camera in ("front", "back"):
        agent.publish(*health_of(camera, bdseq=bdseq), retain=True)
    eventually(lambda: count(engine, health_history) == 2, "both cameras' health", WAIT_S)
    assert what_users_see(engine) == ({"front", "back"}, {"front", "back"})


# --- through the broker ------------------------------------------------------------------------


def test_a_newer_birth_without_a_camera_removes_it(
    engine: Engine,
    start_ingest: Callable[..., IngestService],  # noqa: F811
    publishers: Callable[..., Publisher],  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=STORE_LOG)
    start_ingest()
    agent = publishers("shop-1")
    agent_with_two_cameras(engine, agent)
    with engine.connect() as connection:
        front_before = connection.execute(
            select(cameras).where(cameras.c.camera_id == "front")
        ).one()

    # The owner took `back` out of the config; the agent restarts.
    agent.publish(topic("shop-1", "state"), birth_of("front", bdseq=2), retain=True)
    eventually(lambda: camera_ids(engine) == {"front"}, "back removed", WAIT_S)

    assert what_users_see(engine) == ({"front"}, {"front"})
    with engine.connect() as connection:
        front = connection.execute(select(cameras).where(cameras.c.camera_id == "front")).one()
        assert connection.execute(select(agents.c.bdseq)).scalar_one() == 2
    assert front._asdict() == front_before._asdict()  # its health and counters kept
    assert history_of(engine, "back") == 1  # history is history
    # Logged once the batch is committed, a moment after the row is gone.
    eventually(lambda: REMOVED_BACK in caplog.text, "the removal logged", WAIT_S)


def test_an_old_retained_birth_removes_nothing(
    engine: Engine,
    start_ingest: Callable[..., IngestService],  # noqa: F811
    publishers: Callable[..., Publisher],  # noqa: F811
) -> None:
    service = start_ingest()
    agent = publishers("shop-1")
    agent_with_two_cameras(engine, agent, bdseq=3)
    # A birth of an earlier boot (a stale retained copy) that listed only front.
    agent.publish(topic("shop-1", "state"), birth_of("front", bdseq=2), retain=True)
    eventually(
        lambda: service.stats().received == SETUP_MESSAGES + 1, "the old birth handled", WAIT_S
    )
    assert camera_ids(engine) == {"front", "back"}
    assert what_users_see(engine) == ({"front", "back"}, {"front", "back"})


def test_an_empty_retained_health_withdraws_the_camera_for_good(
    broker: Broker,
    engine: Engine,
    start_ingest: Callable[..., IngestService],  # noqa: F811
    publishers: Callable[..., Publisher],  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=STORE_LOG)
    service = start_ingest()
    agent = publishers("shop-1")
    agent_with_two_cameras(engine, agent)

    agent.publish(topic("shop-1", "cameras/back/health"), b"", retain=True)
    eventually(lambda: camera_ids(engine) == {"front"}, "back withdrawn", WAIT_S)
    assert what_users_see(engine) == ({"front"}, {"front"})
    assert history_of(engine, "back") == 1
    assert count(engine, rejected_messages) == 0
    assert service.stats().rejected == 0
    assert "rejected a message" not in caplog.text
    # Logged once the batch is committed, a moment after the row is gone.
    eventually(lambda: REMOVED_BACK in caplog.text, "the removal logged", WAIT_S)

    # Ingest goes on; the agent's next start no longer lists back.
    agent.publish(*health_of("front", seq=2), retain=True)
    agent.publish(topic("shop-1", "state"), birth_of("front", bdseq=2), retain=True)
    eventually(lambda: count(engine, health_history) == 3, "front's next report", WAIT_S)

    # A fresh worker (a new broker session) takes a snapshot of what is retained.
    fresh = start_ingest("ingest-fresh")
    eventually(lambda: fresh.stats().received >= 2, "the snapshot (birth, front's health)", WAIT_S)
    time.sleep(0.3)  # time for a removed camera to come back, had it been kept
    assert camera_ids(engine) == {"front"}
    with Watcher.for_broker(broker, topic("shop-1", "cameras/back/health")) as watcher:
        time.sleep(0.3)  # time for a retained message to arrive, had there been one
        assert watcher.messages() == []  # the broker holds nothing for back any more


def test_empty_payloads_elsewhere_are_ignored_quietly(
    engine: Engine,
    start_ingest: Callable[..., IngestService],  # noqa: F811
    publishers: Callable[..., Publisher],  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger=STORE_LOG)
    service = start_ingest()
    agent = publishers("shop-1")
    agent_with_two_cameras(engine, agent)
    empties = [
        topic("shop-1", "state"),
        topic("shop-1", "requests/req-1/status"),
        topic("shop-1", "audit"),
    ]
    for where in empties:
        agent.publish(where, b"", retain=where != topic("shop-1", "audit"))
    eventually(
        lambda: service.stats().received == SETUP_MESSAGES + len(empties),
        "the empty messages",
        WAIT_S,
    )
    assert count(engine, rejected_messages) == 0
    assert service.stats().rejected == 0
    with engine.connect() as connection:
        assert connection.execute(select(agents.c.state, agents.c.bdseq)).one() == ("online", 1)
    assert camera_ids(engine) == {"front", "back"}
    ours = [r for r in caplog.records if r.name.startswith("registry")]
    quiet = [r for r in ours if "ignored an empty" in r.getMessage()]
    assert [r.levelno for r in quiet] == [logging.DEBUG] * len(empties)
    assert not [r for r in ours if r.levelno >= logging.WARNING]


def test_a_stale_retained_health_does_not_bring_a_dropped_camera_back(
    engine: Engine,
    start_ingest: Callable[..., IngestService],  # noqa: F811
    publishers: Callable[..., Publisher],  # noqa: F811
) -> None:
    """An agent that dropped back without withdrawing its retained health (an older agent,
    or one that died first): every fresh snapshot still carries back's old report."""
    agent = publishers("shop-1")
    agent.publish(topic("shop-1", "state"), birth_of("front", "back", bdseq=1), retain=True)
    agent.publish(*health_of("back", bdseq=1), retain=True)
    agent.publish(topic("shop-1", "state"), birth_of("front", bdseq=2), retain=True)
    agent.publish(*health_of("front", bdseq=2), retain=True)
    service = start_ingest()
    eventually(lambda: service.stats().received >= 3, "the snapshot", WAIT_S)
    eventually(lambda: count(engine, health_history) == 2, "both reports in the history", WAIT_S)
    time.sleep(0.3)  # time for a removed camera to come back, had it been kept
    assert camera_ids(engine) == {"front"}


# --- the store's rules, without a broker --------------------------------------------------------


@pytest.fixture
def validator() -> MessageValidator:
    return MessageValidator(PREFIX)


@pytest.fixture
def store(engine: Engine) -> IngestStore:
    return IngestStore(engine)


def apply(store: IngestStore, validator: MessageValidator, *messages: tuple[str, bytes]) -> Any:
    return store.apply([validator.check(where, payload) for where, payload in messages])


WITHDRAW_BACK = (topic("shop-1", "cameras/back/health"), b"")


@pytest.mark.parametrize(
    "where", ["state", "cameras/back/health", "requests/req-1/status", "audit"]
)
def test_an_empty_payload_is_a_withdrawal_not_a_rejection(
    validator: MessageValidator, where: str
) -> None:
    assert isinstance(validator.check(topic("shop-1", where), b""), Withdrawn)


def test_an_empty_payload_on_a_foreign_topic_is_still_rejected(
    validator: MessageValidator,
) -> None:
    result = validator.check(topic("shop-1", "cameras/back/picture"), b"")
    assert isinstance(result, Rejected) and "not an agent topic" in result.reason


@pytest.mark.parametrize(
    ("batches", "left"),
    [
        # One batch each, or one batch in this arrival order.
        ([[health_of("back")], [WITHDRAW_BACK]], {"front"}),
        ([[health_of("back"), WITHDRAW_BACK]], {"front"}),
        ([[WITHDRAW_BACK, health_of("back", seq=2)]], {"front", "back"}),
        (
            [[WITHDRAW_BACK, (topic("shop-1", "state"), birth_of("front", "back"))]],
            {"front", "back"},
        ),
        ([[WITHDRAW_BACK], [health_of("back", seq=2)]], {"front", "back"}),  # re-created
    ],
    ids=[
        "apart",
        "report-then-withdrawal",
        "withdrawal-then-report",
        "withdrawal-then-birth",
        "report-after",
    ],
)
def test_within_a_batch_the_last_word_counts(
    engine: Engine,
    store: IngestStore,
    validator: MessageValidator,
    batches: list[list[tuple[str, bytes]]],
    left: set[str],
) -> None:
    apply(store, validator, (topic("shop-1", "state"), birth_of("front", "back")))
    for batch in batches:
        apply(store, validator, *batch)
    assert camera_ids(engine) == left
    assert count(engine, rejected_messages) == 0


def test_a_birth_keeps_a_camera_that_reported_from_a_newer_boot(
    engine: Engine, store: IngestStore, validator: MessageValidator
) -> None:
    """Boot 3 added `side`; its report is stored before boot 3's birth, and a birth of
    boot 2 (committed late by another worker) must not drop it."""
    apply(store, validator, (topic("shop-1", "state"), birth_of("front", bdseq=1)))
    apply(store, validator, health_of("side", bdseq=3))
    result = apply(store, validator, (topic("shop-1", "state"), birth_of("front", bdseq=2)))
    assert camera_ids(engine) == {"front", "side"}
    assert result.removed == {}


def test_in_one_batch_the_newest_birth_decides(
    engine: Engine, store: IngestStore, validator: MessageValidator
) -> None:
    apply(store, validator, (topic("shop-1", "state"), birth_of("front", "back", bdseq=1)))
    result = apply(
        store,
        validator,
        (topic("shop-1", "state"), birth_of("front", bdseq=3)),
        (topic("shop-1", "state"), birth_of("front", "back", bdseq=2)),  # a late old copy
    )
    assert camera_ids(engine) == {"front"}
    assert result.removed == {"shop-1": ["back"]}


def test_a_report_of_an_older_boot_makes_no_row_but_is_history(
    engine: Engine, store: IngestStore, validator: MessageValidator
) -> None:
    apply(store, validator, (topic("shop-1", "state"), birth_of("front", bdseq=2)))
    apply(store, validator, health_of("back", bdseq=1))  # in a later batch
    assert camera_ids(engine) == {"front"}
    # ... and in the same batch as the newer birth (a fresh registry's snapshot).
    apply(
        store,
        validator,
        (topic("shop-2", "state"), birth_of("front", agent="shop-2", bdseq=2)),
        (
            topic("shop-2", "cameras/back/health"),
            encode(health("shop-2", "back", bdseq=1)),
        ),
    )
    assert camera_ids(engine, "shop-2") == {"front"}
    assert history_of(engine, "back") == 2
