"""What the footage index's rows are (segments, gaps, holds) and how their times are stored:
integer microseconds since the epoch, with the SQL that reads segment rows back."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NamedTuple

STATES = frozenset({"writing", "closed", "partial", "missing", "altered"})
# 'recorded': a segment the agent wrote, under its own storage and pruning rules.
# 'external': a file the owner's own recorder wrote (recording mode `directory`); the
# agent only reads it and never deletes, renames or rewrites it.
ORIGINS = frozenset({"recorded", "external"})

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)


@dataclass(frozen=True)
class Segment:
    id: int
    camera: str
    path: Path
    start: datetime
    end: datetime | None
    bytes: int
    sha256: str | None
    state: str  # 'writing' | 'closed' | 'partial' | 'missing' | 'altered'
    origin: str = "recorded"  # 'recorded' | 'external'
    mtime_ns: int | None = None  # external files only: the mtime their hash belongs to
    boot_id: str | None = None  # recorded ones: the boot they were recorded in
    boot_end_us: int | None = None  # and CLOCK_BOOTTIME at their end, in microseconds
    clock_step: bool = False  # a wall-clock step fell inside it


class FileStamp(NamedTuple):
    """An external file's row as a rescan compares it: cheap to load by the thousand."""

    id: int
    bytes: int
    mtime_ns: int | None
    state: str


@dataclass(frozen=True)
class Gap:
    camera: str
    start: datetime
    end: datetime
    reason: str


@dataclass(frozen=True)
class Hold:
    id: int
    camera: str
    start: datetime
    end: datetime
    until: datetime
    reason: str


def _to_us(moment: datetime) -> int:
    # Integer microseconds since the epoch: exact, sortable, and what datetime resolves.
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"naive datetime {moment!r}: footage times must be timezone-aware")
    return (moment - _EPOCH) // _US


def _from_us(value: int) -> datetime:
    return _EPOCH + timedelta(microseconds=value)


def _opt_from_us(value: int | None) -> datetime | None:
    return None if value is None else _from_us(value)


_SEGMENT_COLUMNS = (
    "id, camera, path, start_us, end_us, bytes, sha256, state, origin, mtime_ns,"
    " boot_id, boot_end_us, clock_step"
)


def _segment(row: sqlite3.Row) -> Segment:
    return Segment(
        id=row["id"],
        camera=row["camera"],
        path=Path(row["path"]),
        start=_from_us(row["start_us"]),
        end=_opt_from_us(row["end_us"]),
        bytes=row["bytes"],
        sha256=row["sha256"],
        state=row["state"],
        origin=row["origin"],
        mtime_ns=row["mtime_ns"],
        boot_id=row["boot_id"],
        boot_end_us=row["boot_end_us"],
        clock_step=bool(row["clock_step"]),
    )


def _window(
    camera: str | None,
    start: datetime | None,
    end: datetime | None,
    origin: str | None = None,
) -> tuple[str, list[object]]:
    """WHERE clause for rows overlapping the half-open window [start, end)."""
    clauses: list[str] = []
    params: list[object] = []
    if camera is not None:
        clauses.append("camera = ?")
        params.append(camera)
    if origin is not None:
        if origin not in ORIGINS:
            raise ValueError(f"unknown segment origin {origin!r}")
        clauses.append("origin = ?")
        params.append(origin)
    if end is not None:
        clauses.append("start_us < ?")
        params.append(_to_us(end))
    if start is not None:
        # An open end (still writing) reaches the present; a zero-length row counts when
        # its instant lies inside the window.
        clauses.append("(end_us IS NULL OR end_us > ? OR start_us >= ?)")
        params.extend([_to_us(start), _to_us(start)])
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params
