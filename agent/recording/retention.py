"""Which footage goes: age, disk budget and free-space floor, oldest first, holds excepted."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta

from agent.recording.index import Hold, Segment, SegmentIndex

log = logging.getLogger(__name__)

# No footage is kept longer than 28 days unless held (the registry's privacy rule),
# whatever `recording.retention` says.
RETENTION_CAP_S = 28 * 86400
_DAY_S = 86400.0
# States whose file holds footage someone can watch; what the effective retention counts.
_FOOTAGE_STATES = frozenset({"closed", "partial"})


def _end(segment: Segment) -> datetime:
    return segment.end if segment.end is not None else segment.start


def is_held(segment: Segment, holds: Sequence[Hold], now: datetime) -> bool:
    """True when a hold in force at `now` covers any part of the segment."""
    # Closed intervals: a segment that merely touches a hold's edge is kept too, since a
    # frame at the boundary may be the one asked for.
    return any(
        hold.camera == segment.camera
        and hold.until > now
        and segment.start <= hold.end
        and _end(segment) >= hold.start
        for hold in holds
    )


def plan_pruning(
    segments: Sequence[Segment],
    holds: Sequence[Hold],
    now: datetime,
    *,
    retention_s: float,
    max_bytes: int,
    free_bytes: int,
    min_free_bytes: int,
) -> list[Segment]:
    """The segments to delete, oldest first; never one being written or under a hold, and
    never a file of the owner's own recorder (origin 'external')."""
    # The owner's files are neither on the agent's disk budget nor the agent's to delete.
    ours = [s for s in segments if s.origin == "recorded"]
    cutoff = now - timedelta(seconds=min(retention_s, RETENTION_CAP_S))
    candidates = sorted(
        (s for s in ours if s.state != "writing" and not is_held(s, holds, now)),
        key=lambda s: (s.start, s.id),
    )
    plan = [s for s in candidates if _end(s) < cutoff]
    chosen = {s.id for s in plan}
    freed = sum(s.bytes for s in plan)
    # Held and in-progress segments take disk space too, so they count towards the budget.
    remaining = sum(s.bytes for s in ours) - freed
    for segment in candidates:
        if remaining <= max_bytes and free_bytes + freed >= min_free_bytes:
            break
        if segment.id in chosen:
            continue
        plan.append(segment)
        chosen.add(segment.id)
        freed += segment.bytes
        remaining -= segment.bytes
    plan.sort(key=lambda s: (s.start, s.id))
    return plan


def effective_retention_days(segments: Sequence[Segment], now: datetime) -> float:
    """How many days back the watchable footage reaches (0.0 with none)."""
    starts = [s.start for s in segments if s.state in _FOOTAGE_STATES]
    if not starts:
        return 0.0
    return max(0.0, (now - min(starts)).total_seconds() / _DAY_S)


def prune(index: SegmentIndex, plan: Sequence[Segment]) -> int:
    """Delete each planned segment's file, then its row; returns the bytes freed on disk."""
    freed = 0
    for segment in plan:
        if segment.origin != "recorded":
            # plan_pruning never chooses one; this guards the owner's files against a caller
            # that builds its own plan.
            log.error(
                "camera %s: refusing to prune %s: it belongs to the owner's recorder",
                segment.camera,
                segment.path,
            )
            continue
        try:
            size = segment.path.stat().st_size
        except OSError:
            size = 0
        try:
            segment.path.unlink(missing_ok=True)
        except OSError as exc:
            # Keep the row: the file is still there and still counts against the budget.
            log.warning("camera %s: cannot prune %s: %s", segment.camera, segment.path, exc)
            continue
        index.remove(segment.id)
        freed += size
        log.info(
            "camera %s: pruned %s segment %s from %s (%d bytes)",
            segment.camera,
            segment.state,
            segment.path,
            segment.start.isoformat(),
            size,
        )
    return freed
