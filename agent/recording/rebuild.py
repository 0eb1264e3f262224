"""Rebuilding the footage index from the segment files on disk.

Used when the index is missing while footage exists, or broken (moved aside first, see
agent/state_files.py), by the daemon at start and by `camera-agent footage rebuild`.
What the index held and where a rebuild gets it from:
- the agent's segments: from their files (`<storage>/<camera>/<day>/<time>Z.ts`), each
  re-hashed and marked `rebuilt` (its hash vouches for the file as found at the rebuild,
  not as written); its end from the file's own timestamps;
- holds: re-derived from the request store, so pruning cannot delete footage an accepted
  request still holds;
- gaps: the holes between the rebuilt segments, with reason `index_rebuilt` (why the
  camera was not recorded then is not in the files);
- the owner's recorder's files (directory mode): the next folder scan indexes them again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from agent.recording.index import HashCancelled, SegmentIndex, sha256_file
from agent.recording.plain_file import NotPlainFile
from agent.recording.recorder_files import gaps_between
from agent.recording.segments import SUFFIX, end_of_segment, start_of

log = logging.getLogger(__name__)

GAP_REASON = "index_rebuilt"
# Back-to-back segments of an unbroken recording: a rebuilt one ends at its last frame's
# timestamp, one frame before the next begins; a second of slack hides that, not a gap.
GAP_TOLERANCE_S = 2.0


@dataclass(frozen=True)
class HoldToKeep:
    """A hold an index rebuilt from the files must have again (police_requests/holds.py
    makes them from the stored requests)."""

    camera: str
    start: datetime
    end: datetime
    until: datetime
    reason: str


@dataclass(frozen=True)
class Rebuilt:
    segments: int
    bytes: int
    holds: int
    gaps: int
    skipped: int  # files that could not be read, or empty


def segment_files(root: Path, before: datetime) -> Iterator[tuple[str, Path, datetime]]:
    """(camera, path, start) of each segment file under `root` that started before
    `before`: later ones are the running agent's own, indexed as they are written."""
    if not root.is_dir():
        return
    for camera_dir in sorted(root.iterdir()):
        if not camera_dir.is_dir() or camera_dir.is_symlink():
            continue
        for day in sorted(camera_dir.iterdir()):
            if not day.is_dir() or day.is_symlink():
                continue
            for path in sorted(day.glob("*" + SUFFIX)):
                start = start_of(path)
                if start is not None and start < before:
                    yield camera_dir.name, path, start


def has_footage(root: Path) -> bool:
    """Whether `root` holds any segment file (so a missing index lost something)."""
    return next(segment_files(root, datetime.max.replace(tzinfo=UTC)), None) is not None


def rebuild(
    index: SegmentIndex,
    root: Path,
    holds: Iterable[HoldToKeep],
    *,
    before: datetime | None = None,
    stop: threading.Event | None = None,
) -> Rebuilt:
    """Index every segment file under `root` not indexed yet, put back `holds`,
    and mark the holes between segments as gaps. Raises HashCancelled once `stop` is set."""
    held = rehold(index, holds)
    known = index.recorded_paths()
    count = size_total = skipped = 0
    cameras: set[str] = set()
    for camera, path, start in segment_files(root, before or datetime.now(UTC)):
        if str(path) in known:
            continue
        try:
            size, digest = sha256_file(path, stop)
        except HashCancelled:
            raise
        except (OSError, NotPlainFile) as exc:
            log.warning("footage rebuild: skipped %s: %s", path, exc)
            skipped += 1
            continue
        if size == 0:
            skipped += 1
            continue
        end = end_of_segment(path) or start
        if index.add_rebuilt(camera, path, start, end, size, digest):
            count += 1
            size_total += size
            cameras.add(camera)
    gaps = sum(_regap(index, camera) for camera in sorted(cameras))
    return Rebuilt(count, size_total, held, gaps, skipped)


def rehold(index: SegmentIndex, holds: Iterable[HoldToKeep]) -> int:
    """Put back the holds that the index does not have and that have not lapsed; returns
    how many were added."""
    now = datetime.now(UTC)
    have = {(hold.camera, hold.reason) for hold in index.holds(now)}
    added = 0
    for hold in holds:
        if hold.until > now and (hold.camera, hold.reason) not in have:
            index.hold(hold.camera, hold.start, hold.end, hold.until, hold.reason)
            added += 1
    return added


def _regap(index: SegmentIndex, camera: str) -> int:
    """Add the holes between the camera's recorded segments that no gap row covers."""
    spans = [
        (s.start, s.end or s.start)
        for s in index.segments(camera, origin="recorded")
        if s.state in ("closed", "partial")
    ]
    known = index.gaps(camera)
    added = 0
    for start, end in gaps_between(spans, GAP_TOLERANCE_S):
        if any(gap.start < end and gap.end > start for gap in known):
            continue
        index.add_gap(camera, start, end, GAP_REASON)
        added += 1
    return added
