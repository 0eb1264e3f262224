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
  when the count grows, a gap lies somewhere between the previous report's `newest` and
  this one's, so that span is stored as a gap row and a new run starts. An agent reports
  at every status change, so a gap from a lost stream is bracketed by the report of the
  loss and that of the return; a gap is at most one report interval less precise than the
  agent's own index.

Reports are folded in `ts` order; one older than what the camera's open intervals already
hold (a late delivery) is kept in health_history but does not rewrite the intervals.
The fold is a pure function (`fold`); `IntervalWriter` reads and writes the rows inside
the ingest batch's transaction, after the camera rows are locked (store.py).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

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


@dataclass(frozen=True)
class Report:
    """What a health report says for the intervals."""

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


@dataclass(frozen=True)
class OpenIntervals:
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
OPEN_COLUMNS = tuple(field.name for field in dataclasses.fields(OpenIntervals))


def _gap_grew(before: OpenIntervals, report: Report) -> bool:
    if before.gap_count is None or before.gap_seconds is None:
        return False
    if report.gap_count > before.gap_count:
        return True
    # Same count, more seconds: the newest gap grew (pruning old footage only lowers both).
    return (
        report.gap_count == before.gap_count
        and report.gap_seconds > before.gap_seconds + GAP_SECONDS_EPSILON
    )


def fold(state: OpenIntervals, reports: Sequence[Report]) -> tuple[OpenIntervals, list[Closed]]:
    """The camera's open intervals after `reports`, and the intervals they closed."""
    closed: list[Closed] = []
    s = state
    for r in sorted(reports, key=lambda report: report.ts):
        if s.state_end is not None and r.ts <= s.state_end:
            continue  # late or repeated: the intervals have moved past it
        # --- state
        begun, last = s.state_start, s.state_end
        new_state = dataclasses.replace(
            s, state_start=r.ts, state_end=r.ts, state_code=r.status, state_problems=r.problems
        )
        if begun is None or last is None:  # the camera's first report
            s = new_state
        elif r.ts - last > REPORT_SILENCE_S:
            closed.append((KIND_STATE, begun, last, s.state_code, s.state_problems))
            s = new_state
        elif (r.status, r.problems) != (s.state_code, s.state_problems):
            closed.append((KIND_STATE, begun, r.ts, s.state_code, s.state_problems))
            s = new_state
        else:
            s = dataclasses.replace(s, state_end=r.ts)
        # --- footage
        if r.newest is not None:
            if s.run_start is None or s.run_end is None:
                # The first report: what it holds is one run only when it has no gap.
                start = r.oldest if r.oldest is not None and r.gap_count == 0 else r.newest
                s = dataclasses.replace(s, run_start=min(start, r.newest), run_end=r.newest)
            elif r.newest > s.run_end:
                if _gap_grew(s, r):
                    if s.run_end > s.run_start:
                        closed.append((KIND_RUN, s.run_start, s.run_end, None, None))
                    closed.append((KIND_GAP, s.run_end, r.newest, None, None))
                    s = dataclasses.replace(s, run_start=r.newest, run_end=r.newest)
                else:
                    s = dataclasses.replace(s, run_end=r.newest)
        s = dataclasses.replace(s, gap_count=r.gap_count, gap_seconds=r.gap_seconds)
    return s, closed


CameraKey = tuple[str, str]


class IntervalWriter:
    """Reads the open intervals of a batch's cameras, folds the batch's new reports in,
    writes back the open ones and inserts the closed ones; on the driver's cursor, inside
    the batch's transaction and after the camera rows are locked (health.py)."""

    def __init__(self, dialect: str) -> None:
        self._postgres = dialect == "postgresql"
        mark = "%s" if self._postgres else "?"
        self._insert = (
            "INSERT INTO camera_intervals "
            "(agent_id, camera_id, kind, start_ts, end_ts, status, problems) "
            f"VALUES ({', '.join([mark] * 7)})"
        )
        if self._postgres:
            # One statement for the batch, each column an array (as health.py does).
            types = ("float8", "float8", "int2", "int4", "float8", "float8", "int8", "float8")
            arrays = ", ".join(f"%b::{t}[]" for t in (*types, "text", "text"))
            sets = ", ".join(f"{column} = u.{column}" for column in OPEN_COLUMNS)
            self._update = (
                f"UPDATE cameras SET {sets} FROM unnest({arrays}) "
                f"AS u({', '.join(OPEN_COLUMNS)}, a, c) "
                "WHERE cameras.agent_id = u.a AND cameras.camera_id = u.c"
            )
        else:
            sets = ", ".join(f"{column} = ?" for column in OPEN_COLUMNS)
            self._update = f"UPDATE cameras SET {sets} WHERE agent_id = ? AND camera_id = ?"

    def apply(self, cursor: Any, reports: Sequence[Accepted]) -> int:
        """Fold `reports` (new ones only) into their cameras' intervals; returns how many
        intervals closed."""
        by_camera: dict[CameraKey, list[Report]] = {}
        for message in reports:
            assert message.topic.camera is not None
            key = (message.topic.agent, message.topic.camera)
            by_camera.setdefault(key, []).append(Report.of(message))
        keys = sorted(by_camera)
        current = self._read(cursor, keys)
        updates: list[tuple[Any, ...]] = []
        inserts: list[tuple[Any, ...]] = []
        for key in keys:
            if key not in current:
                continue  # no camera row (a dropped camera's stale report): nothing to keep
            after, closed = fold(current[key], by_camera[key])
            if after != current[key]:
                updates.append((*dataclasses.astuple(after), *key))
            inserts.extend((*key, *row) for row in closed)
        if updates and self._postgres:
            cursor.execute(self._update, [list(column) for column in zip(*updates, strict=True)])
        elif updates:
            cursor.executemany(self._update, updates)
        if inserts:
            cursor.executemany(self._insert, inserts)
        return len(inserts)

    def _read(self, cursor: Any, keys: list[CameraKey]) -> dict[CameraKey, OpenIntervals]:
        if not keys:
            return {}
        columns = ", ".join(OPEN_COLUMNS)
        if self._postgres:
            cursor.execute(
                f"SELECT agent_id, camera_id, {columns} FROM cameras "
                "JOIN unnest(%b::text[], %b::text[]) AS u(a, c) "
                "ON agent_id = u.a AND camera_id = u.c",
                [[k[0] for k in keys], [k[1] for k in keys]],
            )
            rows = cursor.fetchall()
        else:
            rows = []
            for agent, camera in keys:
                cursor.execute(
                    f"SELECT agent_id, camera_id, {columns} FROM cameras "
                    "WHERE agent_id = ? AND camera_id = ?",
                    (agent, camera),
                )
                rows.extend(cursor.fetchall())
        return {(row[0], row[1]): OpenIntervals(*row[2:]) for row in rows}
