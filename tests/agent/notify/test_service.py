"""The sender with a controlled clock, delivering to a real local HTTP receiver."""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from agent.clock import ClockState
from agent.config import AgentConfig, load_config
from agent.notify.events import RequestFacts
from agent.notify.service import Notifications, Tuning
from agent.quality.assess import Health
from tests.agent.notify.conftest import ConfigMaker
from tests.agent.notify.receiver import HttpReceiver, Posted, http_receiver
from tests.support import free_port

AMSTERDAM = dt.timezone(dt.timedelta(hours=1))
START = dt.datetime(2026, 3, 14, 9, 0, tzinfo=AMSTERDAM)
SYNCED = ClockState(True, "systemd-timesyncd")


class Clock:
    """A wall clock the test moves."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


def health(status: str, *problems: str) -> Health:
    return Health(status, problems, {}, None)  # type: ignore[arg-type]


def events_of(receiver: HttpReceiver) -> list[dict[str, Any]]:
    return [json.loads(post.body) for post in receiver.posts]


def request_facts(state: str, kind: str = "voluntary", reason: str | None = None) -> RequestFacts:
    """A request as the desk tells it, under the default consent: orders approved by
    policy, voluntary requests left to the owner."""
    at = dt.datetime(2026, 3, 13, 22, 0, tzinfo=dt.UTC)
    return RequestFacts(
        id="req-7", kind=kind, case="2026-NN-0042", requester="Politie Noord-Nederland",
        basis="Sv art. 126nd", cameras=("front",), start=at, end=at + dt.timedelta(minutes=30),
        state=state, reason=reason, decision="auto" if kind == "order" else "ask",
    )  # fmt: skip


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    with http_receiver() as receiver:
        yield receiver


@pytest.fixture
def clock() -> Clock:
    return Clock()


def service(
    config: AgentConfig,
    clock: Clock,
    *,
    clock_state: ClockState = SYNCED,
    tuning: Tuning | None = None,
) -> Notifications:
    return Notifications(
        config, clock=lambda: clock_state, now=clock, tz=AMSTERDAM, tuning=tuning or Tuning()
    )


def webhook(receiver: HttpReceiver, **settings: Any) -> dict[str, Any]:
    return {"webhook": {"url": f"{receiver.url}/hook"}, **settings}


def test_a_flapping_camera_is_told_once_an_interval_with_its_latest_state(
    make_config: ConfigMaker, receiver: HttpReceiver, clock: Clock
) -> None:
    notes = service(make_config(webhook(receiver, min_interval="1h")), clock)
    notes.camera_changed("front", None, health("ok"))  # a camera that starts fine: nothing
    notes.camera_changed("front", health("ok"), health("failed", "covered"))
    notes.step()
    clock.advance(minutes=1)
    notes.camera_changed("front", health("failed", "covered"), health("ok"))
    notes.step()
    changes = [("ok", "offline"), ("offline", "failed"), ("failed", "degraded")]
    changes += [("degraded", "ok"), ("ok", "offline")]
    for before, after in changes:
        clock.advance(minutes=1)
        notes.camera_changed("front", health(before), health(after, "no_signal"))
        notes.step()
    # offline -> failed and degraded -> ok are not news; the rest is held back.
    assert [e["event"] for e in events_of(receiver)] == ["camera_failed", "camera_recovered"]
    clock.now = START + dt.timedelta(minutes=59)
    notes.step()
    assert len(receiver.posts) == 2
    clock.now = START + dt.timedelta(hours=1)
    notes.step()
    latest = events_of(receiver)[2]
    assert latest["event"] == "camera_failed"  # the state it is in now, not a stale one
    assert latest["held_back"] == 2
    assert latest["events"][0]["ts"] == "2026-03-14T08:06:00Z"
    held = "2 earlier notices about this were held back since 2026-03-14 09:00."
    assert held in latest["message"]
    clock.advance(hours=2)
    notes.step()
    assert len(receiver.posts) == 3  # nothing left to tell


def test_different_cameras_and_kinds_are_limited_separately(
    make_config: ConfigMaker, receiver: HttpReceiver, clock: Clock
) -> None:
    notes = service(make_config(webhook(receiver)), clock)
    notes.camera_changed("front", health("ok"), health("offline", "no_signal"))
    notes.camera_changed("back", health("ok"), health("offline", "no_signal"))
    notes.storage_changed(True, 1_500_000_000, 48_000_000_000)
    notes.storage_changed(False, 9_000_000_000, 40_000_000_000)  # no longer low: no message
    notes.step()
    sent = events_of(receiver)
    assert [(e["event"], e["events"][0].get("camera")) for e in sent] == [
        ("camera_failed", "front"),
        ("camera_failed", "back"),
        ("storage_low", None),
    ]
    assert sent[1]["title"] == "Camera back is not working"
    assert sent[2]["events"][0]["free_bytes"] == 1_500_000_000
    assert "(1.5 GB free)" in sent[2]["message"]


def test_a_request_is_told_at_once_with_what_the_owner_must_do(
    make_config: ConfigMaker, receiver: HttpReceiver, clock: Clock
) -> None:
    notes = service(make_config(webhook(receiver), locale="nl"), clock)
    notes.request_changed(request_facts("received"))
    notes.request_changed(request_facts("awaiting_owner"))  # not news
    notes.step()
    clock.advance(minutes=5)
    notes.request_changed(request_facts("declined", reason="owner_declined"))
    notes.step()
    received, declined = events_of(receiver)
    assert received["event"] == "request_received"
    assert received["title"] == "Politieverzoek 2026-NN-0042 wacht op uw beslissing"
    assert received["events"][0]["request"] == {
        "id": "req-7",
        "kind": "voluntary",
        "case": "2026-NN-0042",
        "requester": "Politie Noord-Nederland",
        "basis": "Sv art. 126nd",
        "cameras": ["front"],
        "window": {"start": "2026-03-13T22:00:00Z", "end": "2026-03-13T22:30:00Z"},
        "state": "received",
        "reason": None,
        "must_approve": True,
    }
    text = received["message"]
    assert "Aangevraagd door: Politie Noord-Nederland" in text
    assert "Camera's: Voordeur (front)" in text
    assert "Van 2026-03-13 23:00 tot 2026-03-13 23:30" in text
    assert "camera-agent requests approve req-7" in text
    assert declined["event"] == "request_completed"
    assert declined["title"] == "Politieverzoek 2026-NN-0042 afgewezen"
    assert "u hebt het afgewezen" in declined["message"]


def test_an_order_approved_by_policy_needs_no_decision(
    make_config: ConfigMaker, receiver: HttpReceiver, clock: Clock
) -> None:
    notes = service(make_config(webhook(receiver)), clock)
    notes.request_changed(request_facts("received", kind="order"))
    notes.request_changed(request_facts("completed", kind="order"))
    notes.step()
    received, completed = events_of(receiver)
    assert received["title"] == "Police request 2026-NN-0042 received"
    assert received["events"][0]["request"]["must_approve"] is False
    assert "Your settings approve this kind of request" in received["message"]
    assert completed["title"] == "Police request 2026-NN-0042: footage delivered"


def test_daily_digest_sums_up_the_day_but_a_request_comes_at_once(
    make_config: ConfigMaker, receiver: HttpReceiver, clock: Clock
) -> None:
    config = make_config(webhook(receiver, digest="daily", digest_at="08:00"))
    notes = service(config, clock)  # 09:00: the first digest is tomorrow at 08:00
    for _ in range(3):
        notes.camera_changed("front", health("ok"), health("failed", "frozen"))
        notes.step()
        clock.advance(minutes=10)
        notes.camera_changed("front", health("failed", "frozen"), health("ok"))
        notes.step()
        clock.advance(minutes=10)
    notes.storage_changed(True, 10**9, 10**10)
    notes.request_changed(request_facts("received"))
    notes.step()
    assert [e["event"] for e in events_of(receiver)] == ["request_received"]
    clock.now = dt.datetime(2026, 3, 15, 7, 59, tzinfo=AMSTERDAM)
    notes.step()
    assert len(receiver.posts) == 1
    clock.now = dt.datetime(2026, 3, 15, 8, 0, tzinfo=AMSTERDAM)
    notes.step()
    digest = events_of(receiver)[1]
    assert digest["event"] == "digest"
    assert digest["title"] == "Daily summary: 3 notices"
    assert len(digest["events"]) == 7
    lines = digest["message"].splitlines()
    assert lines[:3] == [
        "- 2026-03-14 09:40  Camera Voordeur (front) is not working (3 times since "
        + "2026-03-14 09:00)",
        "- 2026-03-14 09:50  Camera Voordeur (front) works again (3 times since "
        + "2026-03-14 09:10)",
        "- 2026-03-14 10:00  Storage is running low",
    ]
    clock.advance(days=1)
    notes.step()
    assert len(receiver.posts) == 2  # a quiet day sends nothing


def test_digest_time_written_without_quotes_is_read_as_a_time(
    make_config: ConfigMaker, tmp_path: Any
) -> None:
    path = tmp_path / "config.yaml"
    make_config({"ntfy": {"url": "https://ntfy.sh/x"}})
    text = path.read_text() + "  digest: daily\n  digest_at: 18:30\n"
    path.write_text(text)
    settings = load_config(path).notifications
    assert settings is not None and settings.digest_at == dt.time(18, 30)


def test_a_failing_channel_is_retried_with_backoff_then_given_up(
    make_config: ConfigMaker,
    receiver: HttpReceiver,
    clock: Clock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    tuning = Tuning(retry_delays_s=(10.0, 60.0))
    notes = service(make_config(webhook(receiver)), clock, tuning=tuning)
    receiver.fail_next += [500, 502]
    notes.camera_changed("front", health("ok"), health("offline", "no_signal"))
    assert notes.step() == pytest.approx(10.0)
    clock.advance(seconds=10)
    notes.step()
    clock.advance(seconds=59)
    notes.step()
    assert len(receiver.posts) == 2
    clock.advance(seconds=1)
    notes.step()
    assert len(receiver.posts) == 3 and receiver.posts[-1].body == receiver.posts[0].body
    assert "trying again in 10 s" in caplog.text and "HTTP 500" in caplog.text

    receiver.fail_next += [500, 500, 500]
    notes.camera_changed("back", health("ok"), health("offline", "no_signal"))
    for _ in range(3):
        notes.step()
        clock.advance(seconds=60)
    with caplog.at_level(logging.ERROR):
        notes.step()
    assert len(receiver.posts) == 6
    assert "failed 3 times, giving up: " in caplog.text


def test_a_clock_still_unsynchronised_after_the_grace_time_is_told_once(
    make_config: ConfigMaker, receiver: HttpReceiver, clock: Clock
) -> None:
    state = {"now": ClockState(False, "none")}
    config = make_config(webhook(receiver))
    tuning = Tuning(clock_grace_s=600, clock_poll_s=30)
    notes = Notifications(
        config, clock=lambda: state["now"], now=clock, tz=AMSTERDAM, tuning=tuning
    )
    for _ in range(20):
        notes.step()
        clock.advance(seconds=30)
    assert receiver.posts == []  # 09:00 to 09:09:30: a Pi that just booted
    for _ in range(10):
        notes.step()
        clock.advance(seconds=30)
    [told] = events_of(receiver)
    assert told["event"] == "clock_unsynced"
    assert told["events"][0]["ts"] == "2026-03-14T08:00:00Z"
    assert "Since 2026-03-14 09:00 the device's clock has not been set" in told["message"]
    state["now"] = SYNCED
    clock.advance(seconds=30)
    notes.step()
    state["now"] = ClockState(False, "none")
    for _ in range(25):
        clock.advance(seconds=30)
        notes.step()
    assert len(receiver.posts) == 1  # unsynced again, but within the hour's limit
    clock.advance(hours=1)
    notes.step()
    assert len(receiver.posts) == 2


def test_events_not_chosen_are_not_sent(
    make_config: ConfigMaker, receiver: HttpReceiver, clock: Clock
) -> None:
    notes = service(make_config(webhook(receiver, events=["request_received"])), clock)
    notes.camera_changed("front", health("ok"), health("offline", "no_signal"))
    notes.request_changed(request_facts("completed"))
    notes.request_changed(request_facts("received"))
    notes.step()
    assert [e["event"] for e in events_of(receiver)] == ["request_received"]


def test_without_a_notifications_section_the_hooks_do_nothing(
    make_config: ConfigMaker, clock: Clock
) -> None:
    notes = service(make_config(None), clock)
    assert not notes.enabled
    notes.camera_changed("front", health("ok"), health("offline", "no_signal"))
    notes.start(threading.Event())
    assert not any(t.name == "notifications" for t in threading.enumerate())


def test_the_sender_thread_delivers_and_hooks_never_wait(
    make_config: ConfigMaker, receiver: HttpReceiver
) -> None:
    # Two channels: a mail server that is not there, and the webhook.
    config = make_config(
        {
            "email": {
                "host": "127.0.0.1",
                "port": free_port(),
                "security": "none",
                "from": "cameras@shop.example",
                "to": ["owner@shop.example"],
            },
            "webhook": {"url": f"{receiver.url}/hook"},
        }
    )
    stop = threading.Event()
    notes = Notifications(config, clock=lambda: SYNCED)
    notes.start(stop)
    try:
        notes.camera_changed("front", health("ok"), health("failed", "covered"))
        post: Posted = receiver.wait_for(timeout=10)
    finally:
        stop.set()
    assert json.loads(post.body)["event"] == "camera_failed"


def test_a_camera_slow_to_answer_at_start_up_is_not_told_as_failed(
    make_config: ConfigMaker, receiver: HttpReceiver, clock: Clock
) -> None:
    notes = service(make_config(webhook(receiver)), clock, tuning=Tuning(startup_grace_s=120))
    notes.camera_changed("front", None, health("offline", "no_signal"))
    assert notes.step() <= 120
    clock.advance(seconds=40)
    notes.camera_changed("front", health("offline", "no_signal"), health("ok"))
    clock.advance(seconds=200)
    notes.step()
    assert receiver.posts == []  # neither "not working" nor "working again"
    notes.camera_changed("front", health("ok"), health("failed", "covered"))
    notes.step()
    assert [e["event"] for e in events_of(receiver)] == ["camera_failed"]


def test_a_camera_still_down_when_the_start_up_grace_ends_is_told_from_when_it_was_seen(
    make_config: ConfigMaker, receiver: HttpReceiver, clock: Clock
) -> None:
    notes = service(make_config(webhook(receiver)), clock, tuning=Tuning(startup_grace_s=120))
    clock.advance(seconds=5)
    notes.camera_changed("front", None, health("offline", "no_signal"))
    clock.advance(seconds=60)
    notes.camera_changed("front", health("offline", "no_signal"), health("failed", "covered"))
    assert 0 < notes.step() <= 55  # it wakes up by the end of the grace
    assert receiver.posts == []
    clock.advance(seconds=55)
    notes.step()
    sent = events_of(receiver)
    assert [e["event"] for e in sent] == ["camera_failed"]
    assert sent[0]["events"][0]["ts"] == "2026-03-14T08:00:05Z"


def test_a_camera_first_seen_after_the_grace_is_told_at_once(
    make_config: ConfigMaker, receiver: HttpReceiver, clock: Clock
) -> None:
    notes = service(make_config(webhook(receiver)), clock, tuning=Tuning(startup_grace_s=120))
    clock.advance(seconds=121)
    notes.camera_changed("back", None, health("offline", "no_signal"))
    notes.step()
    assert [e["event"] for e in events_of(receiver)] == ["camera_failed"]


def test_with_the_owner_page_on_a_request_says_where_to_decide(
    make_config: ConfigMaker, receiver: HttpReceiver, clock: Clock
) -> None:
    config = make_config(webhook(receiver), owner_page={"enabled": True, "listen": "0.0.0.0:8090"})
    notes = service(config, clock)
    notes.request_changed(request_facts("received"))
    notes.step()
    (received,) = events_of(receiver)
    assert "on your owner page (port 8090 of this device)" in received["message"]
    assert "camera-agent requests approve req-7" in received["message"]
