"""Rate limit and digest bookkeeping: table tests on a controlled clock."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from agent.notify.events import Event
from agent.notify.limiter import Digest, Throttle, next_local

T0 = dt.datetime(2026, 3, 14, 12, 0, tzinfo=dt.UTC)
AMSTERDAM = ZoneInfo("Europe/Amsterdam")


def at(minutes: float) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


def failed(camera: str = "front") -> Event:
    return Event("camera_failed", T0, camera, "offline", ("no_signal",))


def recovered(camera: str = "front") -> Event:
    return Event("camera_recovered", T0, camera, "ok")


def test_first_event_goes_then_one_per_interval_with_the_count() -> None:
    throttle = Throttle(600)
    assert throttle.offer(failed(), at(0)) is not None
    assert throttle.offer(failed(), at(1)) is None
    assert throttle.offer(failed(), at(2)) is None
    assert throttle.next_due() == at(10)
    assert throttle.due(at(9.9)) == []
    [out] = throttle.due(at(10))
    assert (out.held_back, out.since) == (1, at(0))
    assert throttle.due(at(30)) == [] and throttle.next_due() is None
    fresh = throttle.offer(failed(), at(30))
    assert fresh is not None and fresh.held_back == 0


def test_an_event_after_the_interval_goes_at_once_counting_the_held_ones() -> None:
    throttle = Throttle(600)
    throttle.offer(failed(), at(0))
    throttle.offer(failed(), at(5))
    out = throttle.offer(failed(), at(11))  # due() was not called in between
    assert out is not None and out.held_back == 1
    assert throttle.due(at(12)) == []


def test_a_newer_state_drops_the_held_older_one() -> None:
    throttle = Throttle(600)
    throttle.offer(failed(), at(0))
    throttle.offer(recovered(), at(1))
    assert throttle.offer(failed(), at(2)) is None
    assert throttle.offer(recovered(), at(3)) is None
    [out] = throttle.due(at(11))
    assert out.event.kind == "camera_recovered" and out.held_back == 1
    assert throttle.due(at(60)) == []


def test_subjects_are_independent_and_urgent_events_are_never_held() -> None:
    throttle = Throttle(600)
    assert throttle.offer(failed("front"), at(0)) is not None
    assert throttle.offer(failed("back"), at(0)) is not None
    assert throttle.offer(Event("storage_low", T0), at(0)) is not None
    assert throttle.offer(Event("storage_low", T0), at(1)) is None
    assert throttle.offer(Event("request_received", T0), at(1)) is not None
    assert throttle.offer(Event("request_received", T0), at(1)) is not None


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        ("2026-03-14T06:00:00+00:00", "2026-03-14T08:00:00+01:00"),
        ("2026-03-14T07:00:00+00:00", "2026-03-15T08:00:00+01:00"),  # 08:00 exactly: next day
        ("2026-03-28T12:00:00+00:00", "2026-03-29T08:00:00+02:00"),  # summer time starts
        ("2026-10-24T12:00:00+00:00", "2026-10-25T08:00:00+01:00"),  # and ends
    ],
)
def test_next_local_time_of_day(now: str, expected: str) -> None:
    found = next_local(dt.datetime.fromisoformat(now), dt.time(8, 0), AMSTERDAM)
    assert found == dt.datetime.fromisoformat(expected)
    assert found.utcoffset() == dt.datetime.fromisoformat(expected).utcoffset()


def test_next_local_uses_the_machines_time_zone_by_default() -> None:
    now = dt.datetime.now(dt.UTC)
    found = next_local(now, dt.time(8, 0))
    assert now < found <= now + dt.timedelta(days=1, hours=1)
    assert found.astimezone().time() == dt.time(8, 0)


def test_digest_hands_out_the_day_once() -> None:
    digest = Digest(dt.time(8, 0), dt.datetime(2026, 3, 14, 9, tzinfo=AMSTERDAM), AMSTERDAM)
    digest.add(failed())
    digest.add(recovered())
    assert digest.take(dt.datetime(2026, 3, 15, 7, 59, tzinfo=AMSTERDAM)) is None
    assert digest.take(dt.datetime(2026, 3, 15, 8, 0, tzinfo=AMSTERDAM)) == [failed(), recovered()]
    assert len(digest) == 0
    assert digest.next_at == dt.datetime(2026, 3, 16, 8, 0, tzinfo=AMSTERDAM)
