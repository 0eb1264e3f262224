"""Camera intervals: how reports fold into state, footage-run and gap intervals, their
upkeep by the ingest store on both databases, and their retention prune."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Engine, select

from registry.db.schema import camera_intervals, cameras
from registry.ingest.intervals import (
    KIND_GAP,
    KIND_RUN,
    KIND_STATE,
    REPORT_SILENCE_S,
    STATUS_CODES,
    OpenIntervals,
    Report,
    fold,
    problem_mask,
    problems_of,
)
from registry.ingest.pipeline import ingest_one
from registry.ingest.retention import prune_intervals
from registry.ingest.store import IngestStore
from registry.ingest.validate import Accepted, MessageValidator
from tests.registry.ingest.test_ingest_store import birth, health, topic

OK, FAILED = STATUS_CODES["ok"], STATUS_CODES["failed"]
COVERED = problem_mask(["covered"])
T0 = 1_780_000_000.0


def report(ts: float, status: int = OK, problems: int = 0, **footage: Any) -> Report:
    values: dict[str, Any] = {
        "oldest": T0 - 3600,
        "newest": ts - 5,
        "gap_count": 0,
        "gap_seconds": 0.0,
        **footage,
    }
    return Report(ts=ts, status=status, problems=problems, **values)


def test_problem_bits_round_trip_and_unknown_codes_are_ignored() -> None:
    assert problems_of(problem_mask(["covered", "frozen"])) == ["frozen", "covered"]
    assert problem_mask(["a_problem_of_a_newer_agent"]) == 0
    assert problems_of(None) == []


def test_a_state_holds_from_the_report_that_said_it_to_the_one_that_changed_it() -> None:
    reports = [report(T0), report(T0 + 60), report(T0 + 120, FAILED, COVERED), report(T0 + 180)]
    after, closed = fold(OpenIntervals(), reports)
    assert closed == [
        (KIND_STATE, T0, T0 + 120, OK, 0),
        (KIND_STATE, T0 + 120, T0 + 180, FAILED, COVERED),
    ]
    assert (after.state_start, after.state_end, after.state_code) == (T0 + 180, T0 + 180, OK)


def test_same_state_extends_the_open_interval_and_writes_no_row() -> None:
    after, closed = fold(OpenIntervals(), [report(T0 + 60 * i) for i in range(100)])
    assert closed == []
    assert (after.state_start, after.state_end) == (T0, T0 + 99 * 60)
    assert (after.run_start, after.run_end) == (T0 - 3600, T0 + 99 * 60 - 5)


def test_a_silence_closes_the_state_at_the_last_report() -> None:
    later = T0 + 30 + REPORT_SILENCE_S + 1
    _, closed = fold(OpenIntervals(), [report(T0), report(T0 + 30), report(later)])
    assert closed == [(KIND_STATE, T0, T0 + 30, OK, 0)]


def test_a_late_report_does_not_rewrite_the_intervals() -> None:
    first, _ = fold(OpenIntervals(), [report(T0), report(T0 + 60)])
    after, closed = fold(first, [report(T0 + 30, FAILED, COVERED)])
    assert (after, closed) == (first, [])


def test_a_growing_gap_count_closes_the_run_and_brackets_the_gap() -> None:
    reports = [
        report(T0, newest=T0 - 5),
        report(T0 + 60, newest=T0 + 55),
        report(T0 + 120, newest=T0 + 115, gap_count=1, gap_seconds=20.0),
        report(T0 + 180, newest=T0 + 175, gap_count=1, gap_seconds=20.0),
    ]
    after, closed = fold(OpenIntervals(), reports)
    assert closed == [
        (KIND_RUN, T0 - 3600, T0 + 55, None, None),
        (KIND_GAP, T0 + 55, T0 + 75, None, None),
    ]
    assert (after.run_start, after.run_end) == (T0 + 75, T0 + 175)


def test_pruned_old_footage_lowers_the_gap_totals_without_a_gap() -> None:
    first = report(T0, newest=T0 - 5, gap_count=3, gap_seconds=30.0)
    pruned = report(T0 + 60, newest=T0 + 55, gap_count=2, gap_seconds=12.0)
    _, closed = fold(OpenIntervals(), [first, pruned])
    assert closed == []


def test_a_first_report_with_gaps_starts_the_run_at_its_newest() -> None:
    after, _ = fold(OpenIntervals(), [report(T0, gap_count=2, gap_seconds=8.0)])
    assert (after.run_start, after.run_end) == (T0 - 5, T0 - 5)


# --- through the ingest store, on SQLite and PostgreSQL ------------------------------------


def _iso(epoch: float) -> str:
    from contract.timestamps import rfc3339_epoch

    text = rfc3339_epoch(epoch, "milliseconds")
    assert text is not None
    return text


def send(
    validator: MessageValidator,
    store: IngestStore,
    seq: int,
    ts: float,
    status: str = "ok",
    problems: list[str] | None = None,
    newest: float | None = None,
    gaps: tuple[int, float] = (0, 0.0),
) -> None:
    payload = health(seq=seq, status=status)
    payload["ts"] = _iso(ts)
    payload["problems"] = problems if problems is not None else payload["problems"]
    payload["footage"]["oldest"] = _iso(T0 - 86400)
    payload["footage"]["newest"] = _iso(ts - 5 if newest is None else newest)
    payload["footage"]["gaps"] = {"count": gaps[0], "seconds": gaps[1]}
    result = ingest_one(
        validator, store, topic("shop-1", "cameras/front/health"), json.dumps(payload).encode()
    )
    assert isinstance(result, Accepted), result


def test_ingest_keeps_one_row_per_change_and_the_open_state_in_the_camera(
    engine: Engine,
) -> None:
    validator, store = MessageValidator("camreg/v1"), IngestStore(engine)
    assert isinstance(
        ingest_one(validator, store, topic("shop-1", "state"), json.dumps(birth()).encode()),
        Accepted,
    )
    for seq in range(1, 11):
        send(validator, store, seq, T0 + 10 * seq)
    for seq in range(11, 16):
        send(validator, store, seq, T0 + 10 * seq, "failed", ["covered"])
    for seq in range(16, 21):
        send(validator, store, seq, T0 + 10 * seq)
    with engine.connect() as db:
        rows = db.execute(select(camera_intervals).order_by(camera_intervals.c.start_ts)).all()
        camera = db.execute(select(cameras)).one()
    assert [(r.kind, r.start_ts, r.end_ts, r.status, r.problems) for r in rows] == [
        (KIND_STATE, T0 + 10, T0 + 110, OK, 0),
        (KIND_STATE, T0 + 110, T0 + 160, FAILED, COVERED),
    ]
    # the open intervals: the state since T0 + 160 and the run, up to the newest report
    assert (camera.state_start, camera.report_ts, camera.state_code) == (T0 + 160, T0 + 200, OK)
    assert (camera.run_start, camera.footage_newest) == (T0 - 86400, T0 + 195)
    # 20 reports, 2 rows: the point of keeping intervals instead of reports
    assert len(rows) == 2


def test_prune_deletes_only_intervals_past_the_retention(engine: Engine) -> None:
    with engine.begin() as db:
        db.execute(
            camera_intervals.insert(),
            [
                {"agent_id": "a", "camera_id": "c", "kind": KIND_STATE, "start_ts": s, "end_ts": e}
                for s, e in ((T0 - 100, T0 - 50), (T0 - 60, T0 - 10), (T0 - 20, T0 + 5))
            ],
        )
    assert prune_intervals(engine, keep_s=30, now=T0) == 1
    with engine.connect() as db:
        left = sorted(r.end_ts for r in db.execute(select(camera_intervals)))
    assert left == [T0 - 10, T0 + 5]


def test_a_gap_counted_before_new_footage_is_placed_when_footage_follows() -> None:
    reports = [
        report(T0, newest=T0 - 5),
        report(T0 + 30, newest=T0 - 5, gap_count=1, gap_seconds=12.0),  # offline, counted
        report(T0 + 90, newest=T0 + 85, gap_count=1, gap_seconds=12.0),
    ]
    _, closed = fold(OpenIntervals(), reports)
    assert closed == [
        (KIND_RUN, T0 - 3600, T0 - 5, None, None),
        (KIND_GAP, T0 - 5, T0 + 7, None, None),
    ]
