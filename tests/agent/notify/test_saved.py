"""What the owner's notifications keep across a restart of the agent, and a bad state file."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.config import AgentConfig
from agent.notify import saved
from agent.notify.config import EVENT_KINDS
from agent.notify.events import Event, RequestFacts
from agent.notify.limiter import DigestState, ThrottleState
from agent.notify.messages import Message
from agent.notify.saved import SavedDelivery, Snapshot
from agent.notify.service import Tuning
from tests.agent.notify.conftest import ConfigMaker
from tests.agent.notify.receiver import HttpReceiver, http_receiver
from tests.agent.notify.test_service import (
    AMSTERDAM,
    START,
    Clock,
    events_of,
    health,
    request_facts,
    service,
    webhook,
)
from tests.support import free_port
from tests.support.asgi_server import serve_asgi


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    with http_receiver() as receiver:
        yield receiver


@pytest.fixture
def clock() -> Clock:
    return Clock()


def state_file(config: AgentConfig) -> Path:
    return config.agent.data_dir / "notifications.json"


def test_the_digest_collected_before_a_restart_is_sent_after_it(
    make_config: ConfigMaker, receiver: HttpReceiver, clock: Clock
) -> None:
    config = make_config(webhook(receiver, digest="daily", digest_at="08:00"))
    notes = service(config, clock)
    notes.camera_changed("front", health("ok"), health("failed", "frozen"))
    notes.step()
    clock.advance(minutes=10)
    notes.camera_changed("front", health("failed", "frozen"), health("ok"))
    notes.storage_changed(True, 10**9, 10**10)
    notes.step()
    del notes  # the agent stops; it was down at 08:00 the next day
    clock.now = dt.datetime(2026, 3, 15, 10, 30, tzinfo=AMSTERDAM)
    notes = service(config, clock)
    notes.step()
    [digest] = events_of(receiver)
    assert digest["title"] == "Daily summary: 3 notices"
    assert [e["event"] for e in digest["events"]] == [
        "camera_failed",
        "camera_recovered",
        "storage_low",
    ]
    assert "- 2026-03-14 09:00  Camera Voordeur (front) is not working" in digest["message"]
    clock.now = dt.datetime(2026, 3, 16, 8, 0, tzinfo=AMSTERDAM)
    notes.step()
    assert len(receiver.posts) == 1  # the day after the restart was quiet


def test_a_digest_not_yet_due_keeps_its_time_and_events(
    make_config: ConfigMaker, receiver: HttpReceiver, clock: Clock
) -> None:
    config = make_config(webhook(receiver, digest="daily", digest_at="08:00"))
    notes = service(config, clock)
    notes.storage_changed(True, 10**9, 10**10)
    notes.step()
    clock.advance(hours=12)  # 21:00: restarted before the digest's time
    notes = service(config, clock)
    notes.step()
    clock.now = dt.datetime(2026, 3, 15, 7, 59, tzinfo=AMSTERDAM)
    notes.step()
    assert receiver.posts == []
    clock.now = dt.datetime(2026, 3, 15, 8, 0, tzinfo=AMSTERDAM)
    notes.step()
    assert [e["event"] for e in events_of(receiver)[0]["events"]] == ["storage_low"]


def test_a_held_back_notice_goes_out_after_a_restart_with_its_count(
    make_config: ConfigMaker, receiver: HttpReceiver, clock: Clock
) -> None:
    config = make_config(webhook(receiver, min_interval="1h"))
    notes = service(config, clock)
    for before, after in [("ok", "failed"), ("failed", "ok"), ("ok", "offline")]:
        notes.camera_changed("front", health(before), health(after, "no_signal"))
        notes.step()
        clock.advance(minutes=1)
    notes.camera_changed("front", health("offline"), health("ok"))
    notes.step()
    clock.advance(minutes=1)
    notes.camera_changed("front", health("ok"), health("failed", "covered"))
    notes.step()
    assert [e["event"] for e in events_of(receiver)] == ["camera_failed", "camera_recovered"]

    notes = service(config, clock)  # restarted at 09:04
    clock.advance(minutes=30)
    notes.camera_changed("back", health("ok"), health("offline", "no_signal"))
    notes.step()
    assert [e["events"][0]["camera"] for e in events_of(receiver)] == ["front", "front", "back"]
    clock.now = START + dt.timedelta(hours=1)
    notes.step()
    latest = events_of(receiver)[3]
    assert (latest["event"], latest["held_back"]) == ("camera_failed", 2)
    assert latest["events"][0]["problems"] == ["covered"]
    held = "2 earlier notices about this were held back since 2026-03-14 09:00."
    assert held in latest["message"]
    clock.advance(hours=2)
    notes.step()
    assert len(receiver.posts) == 4


def test_a_delivery_that_failed_is_retried_after_a_restart(
    make_config: ConfigMaker, receiver: HttpReceiver, clock: Clock
) -> None:
    config = make_config(webhook(receiver))
    tuning = Tuning(retry_delays_s=(10.0, 60.0))
    notes = service(config, clock, tuning=tuning)
    receiver.fail_next += [500]
    notes.camera_changed("front", health("ok"), health("offline", "no_signal"))
    notes.step()
    assert len(receiver.posts) == 1
    notes = service(config, clock, tuning=tuning)
    clock.advance(seconds=9)
    notes.step()
    assert len(receiver.posts) == 1
    clock.advance(seconds=1)
    notes.step()
    assert len(receiver.posts) == 2 and receiver.posts[1].body == receiver.posts[0].body
    clock.advance(minutes=5)
    notes.step()
    assert len(receiver.posts) == 2  # delivered once, not again


def test_a_message_for_a_receiver_that_was_not_there_is_delivered_when_it_is(
    make_config: ConfigMaker, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()
    config = make_config({"webhook": {"url": f"http://127.0.0.1:{port}/hook"}})
    notes = service(config, clock)
    notes.request_changed(request_facts("received"))
    notes.step()
    assert "trying again in 10 s" in caplog.text
    receiver = HttpReceiver()
    with serve_asgi(receiver.app(), port):
        clock.advance(minutes=2)
        notes = service(config, clock)
        notes.step()
    [received] = events_of(receiver)
    assert received["title"] == "Police request 2026-NN-0042 needs your decision"


def test_a_delivery_for_a_channel_no_longer_configured_is_dropped_with_a_log_line(
    make_config: ConfigMaker, receiver: HttpReceiver, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    config = make_config(webhook(receiver))
    receiver.fail_next += [503]
    notes = service(config, clock)
    notes.camera_changed("front", health("ok"), health("offline", "no_signal"))
    notes.step()
    config = make_config({"ntfy": {"url": f"{receiver.url}/topic"}})
    notes = service(config, clock)
    clock.advance(minutes=1)
    notes.step()
    assert len(receiver.posts) == 1
    assert (
        "notification 'Camera Voordeur (front) is not working' by webhook dropped: that "
        "channel is no longer configured" in caplog.text
    )
    notes = service(config, clock)  # the file no longer holds it
    clock.advance(minutes=1)
    notes.step()
    assert caplog.text.count("no longer configured") == 1


WRONG_SHAPE = json.dumps({"version": 1, "throttle": {}, "digest": None, "waiting": []})
BAD_TIME = json.dumps(
    {
        "version": 1,
        "throttle": [
            {
                "subject": "agent",
                "kind": "storage_low",
                "last_sent": "2026-03-14T09:00:00",
                "pending": None,
                "held": 0,
            }
        ],
        "digest": None,
        "waiting": [],
    }
)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"\x00\xff\xfe garbage", "not JSON: 'utf-8' codec can't decode byte 0xff"),
        (b"{not json", "not JSON: Expecting property name enclosed in double quotes"),
        (b"[" * 100_000, "not JSON: maximum recursion depth exceeded"),
        (WRONG_SHAPE.encode(), "throttle must be list, not dict"),
        (b'{"version": 2}', "unknown version 2"),
        (b"[]", "must be an object, not list"),
        (BAD_TIME.encode(), "throttle[0].last_sent has no UTC offset"),
    ],
    ids=["not-utf8", "not-json", "too-deep", "wrong-shape", "version", "not-object", "naive-time"],
)
def test_a_bad_file_is_kept_aside_and_the_agent_starts_empty(
    make_config: ConfigMaker,
    receiver: HttpReceiver,
    clock: Clock,
    caplog: pytest.LogCaptureFixture,
    content: bytes,
    problem: str,
) -> None:
    config = make_config(webhook(receiver))
    path = state_file(config)
    path.parent.mkdir()
    path.write_bytes(content)
    with caplog.at_level(logging.ERROR, logger="agent.notify"):
        notes = service(config, clock)
    [error] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert str(path) in error.getMessage() and problem in error.getMessage()
    [kept] = path.parent.glob("notifications.json.corrupt-*")
    assert kept.read_bytes() == content
    assert kept.name in error.getMessage()
    assert not path.exists()
    notes.step()
    assert receiver.posts == []
    notes.storage_changed(True, 10**9, 10**10)
    notes.step()
    assert [e["event"] for e in events_of(receiver)] == ["storage_low"]
    assert saved.load(path) is not None  # written anew


def test_an_unreadable_file_is_kept_aside(
    make_config: ConfigMaker, receiver: HttpReceiver, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    config = make_config(webhook(receiver))
    path = state_file(config)
    path.mkdir(parents=True)  # not a file at all
    service(config, clock).step()
    assert f"{path} is bad (cannot read it: " in caplog.text
    assert [p.name.partition("-")[0] for p in path.parent.iterdir()] == [
        "notifications.json.corrupt"
    ]


def test_an_idle_step_does_not_rewrite_the_file(
    make_config: ConfigMaker, receiver: HttpReceiver, clock: Clock
) -> None:
    config = make_config(webhook(receiver, min_interval="1h"))
    notes = service(config, clock)
    notes.step()
    assert not state_file(config).exists()  # nothing to keep
    notes.storage_changed(True, 10**9, 10**10)
    notes.step()
    clock.advance(minutes=1)
    notes.storage_changed(True, 10**9, 10**10)  # held back: the file changes
    notes.step()
    written = os.stat(state_file(config))
    for _ in range(3):
        clock.advance(minutes=1)
        notes.step()
    notes = service(config, clock)
    notes.step()
    after = os.stat(state_file(config))
    assert (after.st_ino, after.st_mtime_ns) == (written.st_ino, written.st_mtime_ns)
    clock.now = START + dt.timedelta(hours=1)
    notes.step()  # the held notice goes out: that is a change
    assert os.stat(state_file(config)).st_ino != written.st_ino
    assert len(receiver.posts) == 2


def test_a_file_that_cannot_be_written_is_logged_once_and_notifications_go_on(
    make_config: ConfigMaker,
    receiver: HttpReceiver,
    clock: Clock,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    caplog.set_level(logging.INFO, logger="agent.notify")
    config = make_config(webhook(receiver))
    notes = service(config, clock)
    (tmp_path / "state").write_text("a file where the data directory should be")
    for camera in ("front", "back"):
        notes.camera_changed(camera, health("ok"), health("offline", "no_signal"))
        notes.step()
        clock.advance(minutes=1)
        notes.storage_changed(True, 10**9, 10**10)
        notes.step()
    assert len(receiver.posts) == 3
    assert caplog.text.count(f"cannot write {state_file(config)}") == 1
    (tmp_path / "state").unlink()
    clock.advance(minutes=1)
    notes.storage_changed(True, 10**9, 10**10)
    notes.step()
    assert f"{state_file(config)} written again" in caplog.text
    assert saved.load(state_file(config)) is not None


# --- the codec ------------------------------------------------------------------------------

OFFSETS = st.integers(-14 * 60, 14 * 60).map(lambda m: dt.timezone(dt.timedelta(minutes=m)))
MOMENTS = st.datetimes(
    min_value=dt.datetime(1971, 1, 1), max_value=dt.datetime(8999, 1, 1), timezones=OFFSETS
)
TEXT = st.text(max_size=20)
NUMBERS = st.integers(0, 2**62)
REQUESTS = st.builds(
    RequestFacts,
    id=TEXT,
    kind=TEXT,
    case=TEXT,
    requester=TEXT,
    basis=TEXT,
    cameras=st.tuples(TEXT),
    start=MOMENTS,
    end=MOMENTS,
    state=TEXT,
    reason=st.none() | TEXT,
    decision=TEXT,
)
EVENTS = st.builds(
    Event,
    kind=st.sampled_from(EVENT_KINDS),
    at=MOMENTS,
    camera=st.none() | TEXT,
    status=st.none() | TEXT,
    problems=st.lists(TEXT, max_size=3).map(tuple),
    request=st.none() | REQUESTS,
    free_bytes=st.none() | NUMBERS,
    footage_bytes=st.none() | NUMBERS,
    clock_source=st.none() | TEXT,
)
MESSAGES = st.builds(
    Message,
    kind=TEXT,
    title=TEXT,
    body=TEXT,
    priority=st.integers(1, 5),
    tags=st.lists(TEXT, max_size=3).map(tuple),
    events=st.lists(EVENTS, min_size=1, max_size=3).map(tuple),
    held_back=NUMBERS,
)


@st.composite
def snapshots(draw: st.DrawFn) -> Snapshot:
    keys = draw(st.lists(st.tuples(TEXT, st.sampled_from(EVENT_KINDS)), max_size=3, unique=True))
    last_sent = {key: draw(MOMENTS) for key in keys}
    pending = {key: draw(EVENTS) for key in keys if draw(st.booleans())}
    held = {key: draw(st.integers(1, 50)) for key in pending}
    digest = draw(st.none() | st.builds(DigestState, st.lists(EVENTS).map(tuple), MOMENTS))
    waiting = st.builds(SavedDelivery, TEXT, MESSAGES, MOMENTS, st.integers(0, 4))
    return Snapshot(ThrottleState(last_sent, pending, held), digest, tuple(draw(st.lists(waiting))))


@given(snapshots())
def test_a_snapshot_reads_back_as_it_was_written(snapshot: Snapshot) -> None:
    text = json.dumps(saved.snapshot_to_json(snapshot))
    assert saved.snapshot_from_json(json.loads(text)) == snapshot


def _places(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a JSON document, as the keys and indexes that lead to it."""
    found = [path]
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        items = []
    for key, item in items:
        found += _places(item, (*path, key))
    return found


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=10,
)


@given(snapshots(), st.data())
def test_any_change_to_a_file_reads_back_or_is_refused_with_a_reason(
    snapshot: Snapshot, data: st.DataObject
) -> None:
    document = saved.snapshot_to_json(snapshot)
    place = data.draw(st.sampled_from(_places(document)))
    replacement = data.draw(JSON_VALUES)
    changed: Any = document
    if place:
        parent = changed
        for key in place[:-1]:
            parent = parent[key]
        parent[place[-1]] = replacement
    else:
        changed = replacement
    try:
        saved.snapshot_from_json(json.loads(json.dumps(changed)))
    except ValueError as exc:
        assert str(exc)
