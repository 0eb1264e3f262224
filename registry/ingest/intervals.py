"""Each camera's history as intervals: the states it reported and the footage it recorded,
kept compact so the police can ask what a camera was like at a moment weeks ago.

Storing every report would cost a row a minute per camera (500 million rows a day for
350,000 cameras); a camera's state changes a few times a day. So a report only extends
the camera's *open* intervals, kept in its `cameras` row (written at every report
anyway), and a row of `camera_intervals` is written when an interval closes:

- state: a status and problem set holds from the report that first said it until the
  report that first said something else; a camera silent for more than
  REPORT_SILENCE_S closes its state at its last report, and the silence between is
  "not reporting" (offline) to the search.
- footage: `footage.newest` advancing from report to report is a recorded run. The health
  object counts gaps (`footage.gaps.count`, `.seconds`) but does not say where they are:
  when the count grows, a gap of the seconds the total grew by is stored, starting where
  the previous report's footage ended, and a new run starts after it. An agent reports at
  every status change, so the report of a lost stream ends its footage at the loss; a gap
  without a report of its own (a glitch shorter than a report interval) may sit later in
  that span than stored, by at most one report interval.

Reports are folded in `ts` order; one older than what the camera's open intervals already
hold (a late delivery) is kept in health_history but does not rewrite the intervals.
The fold is a pure function (`fold`); `IntervalWriter` reads and writes the rows inside
the ingest batch's transaction, after the camera rows are locked (store.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from registry.ingest.validate import Accepted, epoch

__all__ = [
    "KIND_GAP",
    "KIND_RUN",
    "KIND_STATE",
    "PROBLEMS",
    "REPORT_SILENCE_S",
    "STATUS_CODES",
    "Closed",
    "IntervalWriter",
    "OpenIntervals",
    "Report",
    "fold",
    "problem_mask",
    "problems_of",
]

KIND_STATE, KIND_RUN, KIND_GAP = 0, 1, 2
# Status codes stored in camera_intervals.status; `pending` is an `ok` whose picture was
# not judged yet (registry/judgement.py). Never renumber: rows keep them for 30 days.
STATUS_CODES = {"ok": 0, "degraded": 1, "failed": 2, "offline": 3, "pending": 4}
STATUS_NAMES = {code: name for name, code in STATUS_CODES.items()}
# One bit per problem code, in this order (append only: stored rows keep the bits). A
# problem not listed (a newer agent's) is not stored: registries ignore what they do not know.
PROBLEMS = (
    "no_signal",
    "frozen",
    "blurred",
    "too_dark",
    "too_bright",
    "low_contrast",
    "covered",
    "colour_cast",
    "noisy",
    "scene_changed",
    "low_fps",
    "low_resolution",
    "storage_low",
    "recording_stopped",
    "clock_unsynced",
    "storage_failed",
    "clock_drift",
)
_BIT = {code: 1 << i for i, code in enumerate(PROBLEMS)}
# Agents report every minute by default (registry.health_interval) and at every change;
# five missed reports in a row mean the camera (or its agent) was not reporting.
REPORT_SILENCE_S = 300.0
# The gap total is rounded to milliseconds by the agent.
GAP_SECONDS_EPSILON = 0.01


def problem_mask(problems: Sequence[str]) -> int:
    mask = 0
    for code in problems:
        mask |= _BIT.get(code, 0)
    return mask


def problems_of(mask: int | None) -> list[str]:
    if not mask:
        return []
    return [code for code in PROBLEMS if mask & _BIT[code]]


class Report(NamedTuple):
    """What a health report says for the intervals (a NamedTuple: one is made per report
    ingested, three times faster than a frozen dataclass)."""

    ts: float
    status: int
    problems: int
    oldest: float | None
    newest: float | None
    gap_count: int
    gap_seconds: float

    @classmethod
    def of(cls, message: Accepted) -> Report:
        p = message.payload
        status = p["status"]
        judgement = p.get("judgement")
        if status == "ok" and isinstance(judgement, dict) and judgement.get("state") == "pending":
            status = "pending"
        footage = p["footage"]
        gaps = footage.get("gaps") or {}
        ts = epoch(p["ts"])
        assert ts is not None
        return cls(
            ts=ts,
            status=STATUS_CODES[status],
            problems=problem_mask(p["problems"]),
            oldest=epoch(footage["oldest"]),
            newest=epoch(footage["newest"]),
            gap_count=int(gaps.get("count") or 0),
            gap_seconds=float(gaps.get("seconds") or 0.0),
        )


class OpenIntervals(NamedTuple):
    """A camera's open intervals, as its `cameras` row holds them (None: none yet)."""

    state_start: float | None = None
    state_end: float | None = None
    state_code: int | None = None
    state_problems: int | None = None
    run_start: float | None = None
    run_end: float | None = None
    gap_count: int | None = None
    gap_seconds: float | None = None


# A closed interval: kind, start, end, status, problems.
Closed = tuple[int, float, float, int | None, int | None]
# What `cameras` stores of the open intervals. Their ends are not stored: the state's is
# the camera's newest report (`report_ts`), the run's its newest footage
# (`footage_newest`), both written at every report anyway. So a report that changes
# nothing but the ends costs no write here; only a change (rare) updates these.
STORED = ("state_start", "state_code", "state_problems", "run_start", "gap_count", "gap_seconds")
# The camera row's columns the fold starts from, read with the row lock (health.py).
OPEN_SELECT = "agent_id, camera_id, report_ts, footage_newest, " + ", ".join(STORED)


def open_intervals(row: Sequence[Any]) -> OpenIntervals:
    """The open intervals from OPEN_SELECT's columns after the ids."""
    report_ts, footage_newest, state_start, code, problems, run_start, count, seconds = row
    return OpenIntervals(
        state_start=state_start,
        state_end=report_ts if state_start is not None else None,
        state_code=code,
        state_problems=problems,
        run_start=run_start,
        run_end=footage_newest if run_start is not None else None,
        gap_count=count,
        gap_seconds=seconds,
    )


def _stored(state: OpenIntervals) -> tuple[Any, ...]:
    return tuple(getattr(state, name) for name in STORED)


def _gap_end(run_end: float, gap_seconds: float | None, report: Report) -> float:
    """Where a new gap ends. It begins where the previous report's footage ended: a lost
    stream is reported as it happens (a status change), so that report's footage ends at
    the loss. Its length is what the gap total grew by; when pruning muddled the totals,
    the whole span to this report's footage is taken as the gap."""
    assert report.newest is not None
    grown = report.gap_seconds - (gap_seconds or 0.0)
    if 0 < grown < report.newest - run_end:
        return run_end + grown
    return report.newest


def fold(state: OpenIntervals, reports: Sequence[Report]) -> tuple[OpenIntervals, list[Closed]]:
    """The camera's open intervals after `reports`, and the intervals they closed."""
    # Plain locals rather than dataclasses.replace per step: this runs for every report
    # ingested, and replace() cost more than the rest of the fold.
    closed: list[Closed] = []
    state_start, state_end = state.state_start, state.state_end
    code, problems = state.state_code, state.state_problems
    run_start, run_end = state.run_start, state.run_end
    gap_count, gap_seconds = state.gap_count, state.gap_seconds
    for r in sorted(reports, key=lambda report: report.ts) if len(reports) > 1 else reports:
        if state_end is not None and r.ts <= state_end:
            continue  # late or repeated: the intervals have moved past it
        # --- state
        if state_start is None or state_end is None:  # the camera's first report
            state_start = r.ts
        elif r.ts - state_end > REPORT_SILENCE_S:
            closed.append((KIND_STATE, state_start, state_end, code, problems))
            state_start = r.ts
        elif r.status != code or r.problems != problems:
            closed.append((KIND_STATE, state_start, r.ts, code, problems))
            state_start = r.ts
        state_end, code, problems = r.ts, r.status, r.problems
        # --- footage
        if r.newest is not None:
            if run_start is None or run_end is None:
                # The first report: what it holds is one run only when it has no gap.
                start = r.oldest if r.oldest is not None and r.gap_count == 0 else r.newest
                run_start, run_end = min(start, r.newest), r.newest
            elif r.newest > run_end:
                grew = gap_count is not None and (
                    r.gap_count > gap_count
                    # Same count, more seconds: the newest gap grew (pruning only lowers).
                    or (
                        r.gap_count == gap_count
                        and r.gap_seconds > (gap_seconds or 0.0) + GAP_SECONDS_EPSILON
                    )
                )
                if grew:
                    if run_end > run_start:
                        closed.append((KIND_RUN, run_start, run_end, None, None))
                    gap_end = _gap_end(run_end, gap_seconds, r)
                    closed.append((KIND_GAP, run_end, gap_end, None, None))
                    run_start = gap_end
                run_end = r.newest
            elif gap_count is not None and r.gap_count >= gap_count:
                # No new footage: a gap counted already is placed when footage follows it.
                continue
        gap_count, gap_seconds = r.gap_count, r.gap_seconds
    after = OpenIntervals(
        state_start, state_end, code, problems, run_start, run_end, gap_count, gap_seconds
    )
    return after, closed


CameraKey = tuple[str, str]


class IntervalWriter:
    """Folds a batch's new reports into their cameras' intervals, from the open intervals
    read with the camera rows' lock (health.py): writes back what changed of them and
    inserts the intervals that closed; on the driver's cursor, in the batch's transaction."""

    def __init__(self, dialect: str) -> None:
        mark = "%s" if dialect == "postgresql" else "?"
        self._insert = (
            "INSERT INTO camera_intervals "
            "(agent_id, camera_id, kind, start_ts, end_ts, status, problems) "
            f"VALUES ({', '.join([mark] * 7)})"
        )
        sets = ", ".join(f"{column} = {mark}" for column in STORED)
        self._update = f"UPDATE cameras SET {sets} WHERE agent_id = {mark} AND camera_id = {mark}"

    def apply(
        self, cursor: Any, reports: Sequence[Accepted], before: dict[CameraKey, Sequence[Any]]
    ) -> int:
        """Fold `reports` (new ones only) in; returns how many intervals closed."""
        by_camera: dict[CameraKey, list[Report]] = {}
        for message in reports:
            assert message.topic.camera is not None
            key = (message.topic.agent, message.topic.camera)
            by_camera.setdefault(key, []).append(Report.of(message))
        updates: list[tuple[Any, ...]] = []
        inserts: list[tuple[Any, ...]] = []
        for key in sorted(by_camera):
            if key not in before:
                continue  # no camera row (a dropped camera's stale report): nothing to keep
            current = open_intervals(before[key])
            after, closed = fold(current, by_camera[key])
            if _stored(after) != _stored(current):
                updates.append((*_stored(after), *key))
            inserts.extend((*key, *row) for row in closed)
        # Both rare (a state change, a gap, the first report): row by row is cheap enough.
        if updates:
            cursor.executemany(self._update, updates)
        if inserts:
            cursor.executemany(self._insert, inserts)
        return len(inserts)
