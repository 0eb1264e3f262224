"""Which footage goes: age, disk budget and free-space floor, oldest first, holds excepted.

Age is the agent's own elapsed time where it knows it (docs/service.md, "Clock steps"): a
segment recorded in this boot is as old as CLOCK_BOOTTIME says since its end, whatever the
wall clock did since. One of an earlier boot is aged by the wall clock while that clock is
synchronised; while it is not, also by what the boot clocks prove at least (the rest of
that boot after the segment, plus this boot so far), so a wall clock stepped ahead can
never make young footage look old.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta

from agent.clock_step import UNKNOWN_BOOT, BootTime
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


def _boot_ends(segments: Sequence[Segment]) -> dict[str, int]:
    """The latest CLOCK_BOOTTIME (microseconds) each boot's segments reached."""
    ends: dict[str, int] = {}
    for s in segments:
        if s.boot_id is not None and s.boot_end_us is not None:
            ends[s.boot_id] = max(ends.get(s.boot_id, s.boot_end_us), s.boot_end_us)
    return ends


def old_enough(
    segment: Segment,
    now: datetime,
    keep_s: float,
    boot: BootTime | None,
    synced: bool,
    boot_ends: dict[str, int],
) -> bool:
    """True when the segment has been kept `keep_s` seconds (module docstring)."""
    by_wall = _end(segment) < now - timedelta(seconds=keep_s)
    if boot is None or segment.boot_id in (None, UNKNOWN_BOOT) or segment.boot_end_us is None:
        return by_wall  # recorded before the agent kept boot times, or without a boot id
    if segment.boot_id == boot.boot_id:
        return boot.seconds - segment.boot_end_us / 1e6 >= keep_s
    if synced:
        return by_wall
    rest_of_its_boot = (
        boot_ends.get(segment.boot_id, segment.boot_end_us) - segment.boot_end_us
    ) / 1e6
    return by_wall and rest_of_its_boot + boot.seconds >= keep_s


def plan_pruning(
    segments: Sequence[Segment],
    holds: Sequence[Hold],
    now: datetime,
    *,
    retention_s: float,
    max_bytes: int,
    free_bytes: int,
    min_free_bytes: int,
    boot: BootTime | None = None,
    synced: bool = True,
) -> list[Segment]:
    """The segments to delete, oldest first; never one being written or under a hold, and
    never a file of the owner's own recorder (origin 'external'). Without `boot`, age is
    the wall clock's alone; `synced` says whether that clock is synchronised now."""
    # The owner's files are neither on the agent's disk budget nor the agent's to delete.
    ours = [s for s in segments if s.origin == "recorded"]
    keep_s = min(retention_s, RETENTION_CAP_S)
    boot_ends = _boot_ends(ours)
    candidates = sorted(
        (s for s in ours if s.state != "writing" and not is_held(s, holds, now)),
        key=lambda s: (s.start, s.id),
    )
    plan = [s for s in candidates if old_enough(s, now, keep_s, boot, synced, boot_ends)]
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
