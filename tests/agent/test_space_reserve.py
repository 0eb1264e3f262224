"""The state writes on a real tmpfs filled to the last byte: counters, outbox and audit log
go on with the space reserve, and the counters never go back even without one."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.audit import AuditLog
from agent.mqtt.outbox import Outbox
from agent.space_reserve import RESERVE_PIECES, SpaceReserve
from agent.state import STATE_FILE, Counters
from tests.support.tmpfs import fill, free_bytes, tmpfs

MIB = 1024 * 1024


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    with tmpfs(tmp_path / "disk", 16 * MIB) as mounted:
        yield mounted


def test_state_writes_go_on_when_the_disk_fills_to_the_last_byte(disk: Path) -> None:
    state = disk / "state"
    state.mkdir()
    reserve = SpaceReserve(state)
    reserve.tick()
    assert reserve.held and reserve.missing_bytes() == 0
    counters = Counters(state, on_full=reserve.release)
    outbox = Outbox(state / "outbox.sqlite", on_full=reserve.release)
    audit = AuditLog(state / "audit.jsonl", on_full=reserve.release)
    fill(disk / "ballast")
    assert free_bytes(disk) < 4096

    seqs = [counters.next_seq("front") for _ in range(50)]
    ids = [outbox.put("t", b"x" * 1000, retain=True, kind="health", key="front") for _ in seqs]
    entry = audit.append("received", "req-1", {})

    assert seqs == list(range(1, 51))
    assert outbox.pending() == len(ids)
    assert [e.seq for e in audit.entries()] == [entry.seq]
    assert audit.verify().intact
    assert not reserve.held and reserve.missing_bytes() > 0  # it gave what was needed
    # Space returns: the reserve is made whole again.
    (disk / "ballast").unlink()
    reserve.tick()
    assert reserve.held


def test_counters_never_go_back_on_a_full_disk_without_a_reserve(disk: Path) -> None:
    state = disk / "state"
    counters = Counters(state)
    assert counters.next_boot() == 1
    assert counters.next_seq("front") == 1
    fill(disk / "ballast")
    # No temp file fits: counters.json is rewritten in its own block.
    assert [counters.next_seq("front") for _ in range(3)] == [2, 3, 4]
    again = Counters(state)
    assert again.next_boot() == 2
    assert again.next_seq("front") == 5
    assert json.loads((state / STATE_FILE).read_text())["seq"] == {"front": 5}


def test_the_reserve_is_released_a_piece_at_a_time(disk: Path) -> None:
    reserve = SpaceReserve(disk / "state")
    reserve.tick()
    released = 0
    while reserve.release():
        released += 1
    assert released == RESERVE_PIECES
    assert not reserve.release()
