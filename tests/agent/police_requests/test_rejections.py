"""The rejection gate with a controlled clock, through the request desk and a real audit
log: a burst answered one by one, the rest counted into summaries that add up."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from agent.audit import REJECTIONS_SUMMARISED, AuditLog, describe
from agent.police_requests.inbox import MAX_WAITING_BYTES, MAX_WAITING_TOKENS
from agent.police_requests.rejections import (
    DETAILED_BURST,
    NOT_CHECKED,
    REFILL_EVERY,
    SUMMARY_EVERY,
    SUMMARY_IDS,
)
from agent.police_requests.token import status_id
from tests.agent.police_requests.test_desk import World


def junk(world: World, count: int, start: int = 0) -> list[bytes]:
    tokens = [b"junk-%d" % n for n in range(start, start + count)]
    for raw in tokens:
        world.desk.token_arrived(raw)
    return tokens


def events(audit: AuditLog, name: str) -> list[dict[str, object]]:
    return [dict(e.detail) for e in audit.entries() if e.event == name]


def test_past_the_burst_rejections_are_counted_not_answered(tmp_path: Path) -> None:
    world = World(tmp_path)
    tokens = junk(world, DETAILED_BURST + 50)
    world.step()
    answered = [rid for rid, body in world.statuses if body["state"] == "rejected"]
    assert answered == [status_id(raw) for raw in tokens[:DETAILED_BURST]]
    assert len(events(world.audit, "rejected")) == DETAILED_BURST
    assert events(world.audit, REJECTIONS_SUMMARISED) == []  # not due yet

    world.now += SUMMARY_EVERY
    world.step()  # due without a further token
    (summary,) = events(world.audit, REJECTIONS_SUMMARISED)
    assert summary["count"] == 50 and summary["reasons"] == {"malformed": 50}
    assert summary["first_ids"] == [status_id(raw) for raw in tokens[20 : 20 + SUMMARY_IDS]]
    assert summary["bytes"] == sum(len(raw) for raw in tokens[DETAILED_BURST:])
    assert world.audit.verify().intact


def test_the_allowance_refills_slowly_and_a_stop_writes_what_was_counted(
    tmp_path: Path,
) -> None:
    world = World(tmp_path)
    junk(world, DETAILED_BURST + 3)
    world.step()
    world.now += REFILL_EVERY  # one more is answered in full
    junk(world, 2, start=100)
    world.step()
    assert len(events(world.audit, "rejected")) == DETAILED_BURST + 1
    world.desk.close()
    (summary,) = events(world.audit, REJECTIONS_SUMMARISED)
    assert summary["count"] == 4
    world.desk.close()  # nothing new counted: nothing written
    assert len(events(world.audit, REJECTIONS_SUMMARISED)) == 1


def test_a_valid_request_in_a_flood_is_still_served(tmp_path: Path) -> None:
    world = World(tmp_path)
    junk(world, DETAILED_BURST * 3)
    world.send(jti="good-1")
    world.step()
    assert world.states("good-1")[0] == "received"


def test_a_flood_while_the_desk_is_busy_waits_in_bounded_memory(tmp_path: Path) -> None:
    """The desk's thread may be busy for hours with an upload: what waits for it is bounded
    in count and in bytes, and what does not fit is counted, unchecked, in the summary."""
    world = World(tmp_path)
    small = junk(world, MAX_WAITING_TOKENS + 40)  # the desk does not run meanwhile
    world.desk.close()
    (summary,) = events(world.audit, REJECTIONS_SUMMARISED)
    assert summary["reasons"] == {NOT_CHECKED: 40}
    assert (
        summary["first_ids"] == [status_id(raw) for raw in small[MAX_WAITING_TOKENS:]][:SUMMARY_IDS]
    )
    world.step()  # the desk catches up: the tokens that waited are checked
    checked = len(events(world.audit, "rejected"))
    assert checked == DETAILED_BURST
    assert world.audit.verify().intact

    big = tmp_path / "big"
    big.mkdir()
    world = World(big)
    large = [b"x" * (1024 * 1024) + b"%d" % n for n in range(6)]
    for raw in large:
        world.desk.token_arrived(raw)
    world.desk.close()
    (summary,) = events(world.audit, REJECTIONS_SUMMARISED)
    fits = MAX_WAITING_BYTES // len(large[0])
    assert summary["reasons"] == {NOT_CHECKED: len(large) - fits}
    world.step()  # room again once the desk has taken what waits
    world.send(jti="good-1")
    world.step()
    assert world.states("good-1")[0] == "received"


def test_the_summary_reads_as_words(tmp_path: Path) -> None:
    world = World(tmp_path)
    junk(world, DETAILED_BURST + 2)
    world.step()
    world.desk.close()
    (entry,) = [e for e in world.audit.entries() if e.event == REJECTIONS_SUMMARISED]
    assert entry.request_id is None
    said = describe(entry)
    assert said.startswith("2 more rejected tokens from ") and "malformed 2" in said


@pytest.mark.parametrize(
    ("request_id", "detail", "problem"),
    [
        ("abc", {}, "concerns no one request"),
        (None, {"count": 1}, "needs detail.from"),
        (
            None,
            {"from": "x", "to": "x", "count": 2, "bytes": 1, "reasons": {"a": 1}}
            | {"first_ids": []},
            "adding up to detail.count",
        ),
        (
            None,
            {
                "from": "x",
                "to": "x",
                "count": 1,
                "bytes": 1,
                "reasons": {"a": 1},
                "first_ids": ["/"],
            },
            "must be request ids",
        ),
    ],
)
def test_a_malformed_summary_is_refused(
    tmp_path: Path, request_id: str | None, detail: dict[str, object], problem: str
) -> None:
    audit = AuditLog(tmp_path / "audit.jsonl")
    with pytest.raises(ValueError, match=problem):
        audit.append(REJECTIONS_SUMMARISED, request_id, detail)
    assert not (tmp_path / "audit.jsonl").exists()


def test_summaries_are_spaced_even_while_the_flood_goes_on(tmp_path: Path) -> None:
    world = World(tmp_path)
    for minute in range(0, 60, 1):
        world.now += timedelta(minutes=1)
        junk(world, 100, start=minute * 100)
        world.step()
    summaries = events(world.audit, REJECTIONS_SUMMARISED)
    rejected = events(world.audit, "rejected")
    # An hour of 6000 tokens: the burst, the refills, a summary every SUMMARY_EVERY.
    assert len(summaries) <= timedelta(hours=1) // SUMMARY_EVERY
    assert len(rejected) <= DETAILED_BURST + timedelta(hours=1) // REFILL_EVERY
    world.desk.close()
    counted = sum(int(str(s["count"])) for s in events(world.audit, REJECTIONS_SUMMARISED))
    assert counted + len(rejected) == 6000
