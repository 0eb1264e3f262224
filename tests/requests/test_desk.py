"""The request desk's decisions with a controlled clock: waiting for a synchronised clock,
the owner's timeout, the owner's policy. Real store, index and audit files."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from agent.audit import AuditLog
from agent.clock import ClockState
from agent.recording.index import SegmentIndex
from agent.requests.desk import Consent, RequestDesk
from agent.requests.store import RequestStore
from agent.requests.token import Policy
from tests.support.tokens import Police

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


class World:
    def __init__(self, tmp_path: Path, *, order: str = "auto", voluntary: str = "ask") -> None:
        self.now = T0
        self.synced = True
        self.police = Police()
        self.index = SegmentIndex(tmp_path / "footage.sqlite")
        segment = tmp_path / "seg.ts"
        segment.write_bytes(b"x" * 1000)
        seg_id = self.index.begin("front", segment, T0 - timedelta(hours=1))
        self.index.close(seg_id, T0 - timedelta(minutes=1), 1000, "0" * 64)
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
            publish_status=lambda rid, body: self.statuses.append((rid, body)),
            clock=lambda: ClockState(self.synced, "test"),
            device_key=None,
            evidence_dir=tmp_path / "evidence",
            now=lambda: self.now,
        )
        self.stop = threading.Event()

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
