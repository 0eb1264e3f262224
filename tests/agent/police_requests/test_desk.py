"""The request desk's decisions with a controlled clock: waiting for a synchronised clock,
the owner's timeout, the owner's policy. Real store, index and audit files."""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from agent.audit import AuditLog
from agent.clock import ClockState
from agent.police_requests.desk import RequestDesk
from agent.police_requests.desk_terms import Consent
from agent.police_requests.store import RequestStore
from agent.police_requests.token import Policy
from agent.recording.index import SegmentIndex
from tests.support.tokens import Police

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


class World:
    def __init__(self, tmp_path: Path, *, order: str = "auto", voluntary: str = "ask") -> None:
        self.now = T0
        self.synced = True
        self.police = Police()
        self.index = SegmentIndex(tmp_path / "footage.sqlite")
        self._dir = tmp_path
        self.record(T0 - timedelta(hours=1), T0 - timedelta(minutes=1))
        self.statuses: list[tuple[str, dict[str, Any]]] = []
        self.audit = AuditLog(tmp_path / "audit.jsonl")
        self.store = RequestStore(tmp_path / "requests.sqlite")
        self.desk = RequestDesk(
            agent_id="shop-42",
            policy=Policy(
                agent_id="shop-42",
                police_keys={self.police.kid: self.police.key.public_key()},
                cameras=frozenset({"front"}),
                max_window=timedelta(hours=1),
                upload_allow=("http://127.0.0.1:9/files/",),
            ),
            consent=Consent(order, voluntary, timedelta(hours=72), require_clock=True),
            store=self.store,
            index=self.index,
            audit=self.audit,
            publish_status=lambda rid, body, retain: self.statuses.append((rid, body)),
            clock=lambda: ClockState(self.synced, "test"),
            device_key=None,
            evidence_dir=tmp_path / "evidence",
            now=lambda: self.now,
        )
        self.stop = threading.Event()

    def record(self, start: datetime, end: datetime) -> None:
        """A recorded segment of camera front."""
        segment = self._dir / f"seg-{start.timestamp():.0f}.ts"
        segment.write_bytes(b"x" * 1000)
        seg_id = self.index.begin("front", segment, start)
        self.index.close(seg_id, end, 1000, "0" * 64)

    def send(self, **claims: Any) -> None:
        claims.setdefault(
            "window",
            {"start": "2026-11-27T11:30:00Z", "end": "2026-11-27T11:35:00Z"},
        )
        self.desk.token_arrived(self.police.token(self.police.claims(self.now, **claims)))

    def step(self) -> None:
        self.desk._drain(self.stop)  # one pass of the desk's thread

    def states(self, request_id: str) -> list[str]:
        return [body["state"] for rid, body in self.statuses if rid == request_id]


def test_a_request_waits_while_the_clock_is_not_synchronised(tmp_path: Path) -> None:
    world = World(tmp_path)
    world.synced = False
    world.send(jti="r1")
    world.step()
    world.step()
    assert world.states("r1") == ["received", "waiting_clock"]
    assert world.store.get("r1").state == "waiting_clock"
    world.synced = True
    world.step()
    assert world.states("r1")[2] == "approved"
    # The window was held the moment the request was accepted, clock or not.
    assert [h.reason for h in world.index.holds(world.now)] == ["request r1"]


def test_an_unanswered_voluntary_request_is_declined_after_the_owner_timeout(
    tmp_path: Path,
) -> None:
    world = World(tmp_path)
    world.send(jti="v1", kind="voluntary")
    world.step()
    assert world.states("v1") == ["received", "awaiting_owner"]
    world.now += timedelta(hours=71)
    world.step()
    assert world.store.get("v1").state == "awaiting_owner"
    world.now += timedelta(hours=2)
    world.step()
    request = world.store.get("v1")
    assert (request.state, request.reason) == ("declined", "owner_timeout")
    assert world.index.holds(world.now) == []  # declined: the footage is not kept for it
    assert [e.event for e in world.audit.entries("v1")][-1] == "declined"


@pytest.mark.parametrize(("order", "expected"), [("never", "declined"), ("ask", "awaiting_owner")])
def test_the_owners_policy_for_orders(tmp_path: Path, order: str, expected: str) -> None:
    world = World(tmp_path, order=order)
    world.send(jti="o1")
    world.step()
    assert world.store.get("o1").state == expected


def test_an_owner_decision_is_only_taken_for_a_waiting_request(tmp_path: Path) -> None:
    world = World(tmp_path)
    world.send(jti="o2")  # an order: approved by policy, no owner needed
    world.step()
    with pytest.raises(ValueError, match="not awaiting the owner"):
        world.desk.decide("o2", approve=False)


def test_every_time_check_runs_again_once_the_clock_is_synchronised(tmp_path: Path) -> None:
    world = World(tmp_path)
    true_now = world.now
    world.synced = False
    world.now = true_now - timedelta(days=1)  # a clock that lost a day (no RTC, no NTP yet)
    world.record(world.now - timedelta(hours=1), world.now - timedelta(minutes=1))
    stale = {"start": "2026-11-26T11:30:00Z", "end": "2026-11-26T11:35:00Z"}
    world.send(jti="old-1", window=stale)  # its exp is an hour after the wrong "now"
    world.step()
    assert world.states("old-1") == ["received", "waiting_clock"]
    world.now = true_now
    world.synced = True
    world.step()
    assert world.states("old-1") == ["received", "waiting_clock", "rejected"]
    assert world.statuses[-1][1]["reason"] == "expired"
    assert world.store.get("old-1").state == "rejected"
    assert not any(h.reason == "request old-1" for h in world.index.holds(world.now))
    events = [(e.event, e.request_id, e.detail.get("reason")) for e in world.audit.entries()]
    assert ("rejected", "old-1", "expired") in events


def test_a_window_that_ends_in_the_future_of_the_synchronised_clock_is_refused(
    tmp_path: Path,
) -> None:
    world = World(tmp_path)
    world.synced = False
    world.now = T0 + timedelta(hours=2)  # a clock that runs ahead
    later = {"start": "2026-11-27T13:00:00Z", "end": "2026-11-27T13:30:00Z"}
    issued = int(T0.timestamp()) - 60  # the police clock was right
    world.send(jti="ahead-1", window=later, iat=issued, exp=issued + 7200 * 2)
    world.step()
    assert world.states("ahead-1") == ["received", "waiting_clock"]
    world.now, world.synced = T0, True
    world.step()
    assert world.store.get("ahead-1").state == "rejected"
    assert world.store.get("ahead-1").reason == "window_invalid"


def test_replay_ids_are_not_forgotten_while_the_clock_is_untrusted(tmp_path: Path) -> None:
    world = World(tmp_path)
    world.send(jti="r1")
    world.step()
    world.synced = False
    world.now = T0 + timedelta(days=30)  # a clock that jumped far ahead
    world.step()
    assert world.store.seen("r1")
    world.now, world.synced = T0 + timedelta(minutes=1), True
    world.send(jti="r1")
    world.step()
    assert world.statuses[-1][1]["reason"] == "replayed"


def test_a_request_stored_before_tokens_were_kept_is_checked_on_what_was_stored(
    tmp_path: Path,
) -> None:
    world = World(tmp_path)
    world.synced = False
    world.now = T0 - timedelta(days=1)
    world.record(world.now - timedelta(hours=1), world.now - timedelta(minutes=1))
    stale = {"start": "2026-11-26T11:30:00Z", "end": "2026-11-26T11:35:00Z"}
    world.send(jti="legacy-1", window=stale)
    world.step()
    with world.store._tx() as db:  # as an agent before this change left it
        db.execute("UPDATE requests SET token = NULL")
    world.now, world.synced = T0, True
    world.step()
    assert world.store.get("legacy-1").reason == "expired"


def test_a_request_store_from_before_tokens_were_kept_gains_their_column(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    RequestStore(path).close()
    with sqlite3.connect(path) as db:  # the table as earlier versions made it
        db.execute("ALTER TABLE requests DROP COLUMN token")
    world = World(tmp_path)
    world.store = world.desk._store = RequestStore(path)
    world.send(jti="r1")
    world.step()
    assert "approved" in world.states("r1")
    assert world.store.token_of("r1") is not None
