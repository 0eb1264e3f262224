"""What a camera was like at a moment, or over a time range, from its intervals
(registry/ingest/intervals.py says how they are kept): its state then (usable, degraded
with which problems, failed, offline, a recording gap) and whether it recorded.

Pure functions over one camera's rows; registry/police/search_at.py loads the rows.

- State: the closed state row holding the moment, else the open one (from the camera's
  row). After the camera's last report its state is taken to last while the report is
  fresh (REPORT_SILENCE_S): a camera that reported "ok, recording" a minute ago is
  recording now. Between rows, or after a stale last report, the camera was not reporting:
  offline.
- Footage: a gap row holding the moment is a gap; a recorded run holding it, or the live
  recording of a fresh camera, is footage. A camera with no intervals yet (a registry
  upgraded from one without them, a camera that never reported since) is judged the old
  way, by its newest report's `footage.oldest`/`newest`, and its state is `unknown`.
- A time range is cut where any row starts or ends; each piece is judged at its middle.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from registry.ingest.intervals import (
    REPORT_SILENCE_S,
    STATUS_CODES,
    problems_of,
)

__all__ = [
    "USEFULNESS",
    "CameraHistory",
    "Piece",
    "Verdict",
    "judge_range",
    "verdict_at",
]

# How much of a camera's picture is worth at a moment, by its state then: the weight of
# that moment in the ranking. Degraded pictures (blurred, dark, noisy) often still show
# who was there; a picture not yet judged is likely fine. Zero: no footage to ask for.
USEFULNESS = {
    "usable": 1.0,
    "pending": 0.8,
    "degraded": 0.5,
    "unknown": 0.5,  # no intervals: footage times only, as the search used to judge
    "failed": 0.0,
    "offline": 0.0,
    "gap": 0.0,
    "not_recording": 0.0,
}
_CODE_STATE = {
    STATUS_CODES["ok"]: "usable",
    STATUS_CODES["pending"]: "pending",
    STATUS_CODES["degraded"]: "degraded",
    STATUS_CODES["failed"]: "failed",
    STATUS_CODES["offline"]: "offline",
}
RECORDING_STOPPED = "recording_stopped"
# A moment this far past the registry's clock is still "now" (the officer's clock, the
# agent's): the search accepts it (registry/web/search_api.py), so the live state covers it.
CLOCK_SKEW_S = 60.0

Span = tuple[float, float]
StateRow = tuple[float, float, int, int]  # start, end, status code, problems mask


@dataclass
class CameraHistory:
    """One camera's rows that reach into the searched time, and its current row."""

    states: list[StateRow] = field(default_factory=list)
    runs: list[Span] = field(default_factory=list)
    gaps: list[Span] = field(default_factory=list)
    # The open intervals (cameras row); state_start None: no intervals at all.
    state_start: float | None = None
    state_end: float | None = None
    state_code: int | None = None
    state_problems: int | None = None
    run_start: float | None = None
    run_end: float | None = None
    # What the newest report says of the footage held now.
    footage_oldest: float | None = None
    footage_newest: float | None = None


@dataclass(frozen=True)
class Verdict:
    state: str  # a key of USEFULNESS
    problems: tuple[str, ...]
    footage: str  # recorded | live | gap | none | unknown

    @property
    def usefulness(self) -> float:
        return USEFULNESS[self.state]


@dataclass(frozen=True)
class Piece:
    start: float
    end: float
    verdict: Verdict


def _fresh(h: CameraHistory, now: float) -> bool:
    return h.state_end is not None and now - h.state_end <= REPORT_SILENCE_S


def _state_at(h: CameraHistory, t: float, now: float) -> tuple[int | None, int, bool]:
    """(status code, problems mask, known); code None: not reporting then."""
    holding = [row for row in h.states if row[0] <= t <= row[1]]
    if holding:
        row = max(holding, key=lambda r: r[0])  # at a change: the new state
        return row[2], row[3], True
    if h.state_start is not None and h.state_end is not None and h.state_code is not None:
        problems = h.state_problems or 0
        if h.state_start <= t <= h.state_end:
            return h.state_code, problems, True
        if h.state_end < t <= now + CLOCK_SKEW_S and _fresh(h, now):
            return h.state_code, problems, True
    return None, 0, True


def _footage_at(h: CameraHistory, t: float, now: float, code: int | None, problems: int) -> str:
    if any(start <= t <= end for start, end in h.gaps):
        return "gap"
    if any(start <= t <= end for start, end in h.runs):
        return "recorded"
    if h.run_start is not None and h.run_end is not None:
        if h.run_start <= t <= h.run_end:
            return "recorded"
        live = (
            h.run_end < t <= now + CLOCK_SKEW_S
            and _fresh(h, now)
            and code is not None
            and code != STATUS_CODES["offline"]
            and RECORDING_STOPPED not in problems_of(problems)
        )
        if live:
            return "live"
        if t < h.run_start and h.footage_oldest is not None and h.footage_oldest <= t:
            return "unknown"  # held before the registry began its runs, gaps unknown
        return "none"
    # No footage reported yet (a camera's first segment is not closed yet): the registry
    # cannot tell; its state says what it can.
    return "unknown"


def verdict_at(h: CameraHistory, t: float, now: float) -> Verdict:
    """The camera's state and footage at `t` (epoch seconds), `now` being the search's now."""
    if h.state_start is None:
        oldest, newest = h.footage_oldest, h.footage_newest
        if oldest is None or newest is None:
            return Verdict("unknown", (), "unknown")
        covered = oldest <= t <= newest
        return Verdict(
            "unknown" if covered else "not_recording", (), "recorded" if covered else "none"
        )
    code, problems, _ = _state_at(h, t, now)
    footage = _footage_at(h, t, now, code, problems)
    names = tuple(problems_of(problems))
    if code is None or code == STATUS_CODES["offline"]:
        return Verdict("offline", names, footage)
    if code == STATUS_CODES["failed"]:  # no usable picture, recorded or not
        return Verdict("failed", names, footage)
    if footage == "gap":
        return Verdict("gap", names, footage)
    if footage == "none":
        return Verdict("not_recording", names, footage)
    return Verdict(_CODE_STATE.get(code, "unknown"), names, footage)


def judge_range(h: CameraHistory, start: float, end: float, now: float) -> list[Piece]:
    """The camera's verdicts over [start, end], merged where they are the same; one piece
    for a moment (start == end)."""
    if end <= start:
        return [Piece(start, start, verdict_at(h, start, now))]
    cuts = {start, end}
    spans: list[tuple[float, float]] = [(s[0], s[1]) for s in h.states] + h.runs + h.gaps
    for a, b in spans:
        cuts.update(x for x in (a, b) if start < x < end)
    for x in (h.state_start, h.state_end, h.run_start, h.run_end, h.footage_oldest):
        if x is not None and start < x < end:
            cuts.add(x)
    if h.state_end is not None and start < h.state_end + REPORT_SILENCE_S < end:
        cuts.add(h.state_end + REPORT_SILENCE_S)
    if start < now < end:
        cuts.add(now)
    edges = sorted(cuts)
    pieces: list[Piece] = []
    for a, b in itertools.pairwise(edges):
        verdict = verdict_at(h, (a + b) / 2, now)
        if pieces and pieces[-1].verdict == verdict:
            pieces[-1] = Piece(pieces[-1].start, b, verdict)
        else:
            pieces.append(Piece(a, b, verdict))
    return pieces
