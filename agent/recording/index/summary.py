"""What a camera's footage covers, for the health report's `footage` object."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from agent.recording.index.database import IndexDatabase
from agent.recording.index.rows import _opt_from_us, _to_us
from contract.timestamps import rfc3339

# States whose file holds footage someone can watch; what the health summary counts.
_FOOTAGE_STATES = ("closed", "partial")


@dataclass(frozen=True)
class FootageSummary:
    """What one camera's footage covers; the health report's `footage` object."""

    oldest: datetime | None
    newest: datetime | None
    gap_count: int
    gap_seconds: float
    bytes: int

    def as_payload(self, retention_days_effective: float) -> dict[str, object]:
        return {
            "oldest": rfc3339(self.oldest),
            "newest": rfc3339(self.newest),
            "gaps": {"count": self.gap_count, "seconds": round(self.gap_seconds, 3)},
            "bytes": self.bytes,
            "retention_days_effective": round(retention_days_effective, 3),
        }


class FootageQueries(IndexDatabase):
    """The span of the kept footage, of every camera or of one."""

    def oldest_start(self) -> datetime | None:
        """When the oldest indexed segment of any camera begins (None: there is none)."""
        with self._read() as conn:
            row = conn.execute("SELECT min(start_us) AS oldest FROM segments").fetchone()
        return _opt_from_us(row["oldest"])

    def summary(self, camera: str, now: datetime | None = None) -> FootageSummary:
        """What a camera's watchable footage spans, with the gaps inside that span.

        `newest` is where the footage recorded last ends, never later than `now`: after
        the wall clock was stepped back, footage recorded before the step has times ahead
        of the clock, and the latest time is no longer the latest footage."""
        with self._read() as conn:
            row = conn.execute(
                "SELECT min(start_us) AS oldest, max(COALESCE(end_us, start_us)) AS newest,"
                " COALESCE(sum(bytes), 0) AS total FROM segments"
                " WHERE camera = ? AND state IN (?, ?)",
                (camera, *_FOOTAGE_STATES),
            ).fetchone()
            oldest, newest, total = row["oldest"], row["newest"], row["total"]
            # The agent's own segments are rows in the order it recorded them (the last
            # one is the latest footage whatever its time); the owner's recorder's files
            # are indexed in the order a scan finds them, so theirs is the latest time.
            last = conn.execute(
                "SELECT COALESCE(end_us, start_us) AS end_us FROM segments"
                " WHERE camera = ? AND state IN (?, ?) AND origin = 'recorded'"
                " ORDER BY id DESC LIMIT 1",
                (camera, *_FOOTAGE_STATES),
            ).fetchone()
            if last is not None:
                external = conn.execute(
                    "SELECT max(COALESCE(end_us, start_us)) AS end_us FROM segments"
                    " WHERE camera = ? AND state IN (?, ?) AND origin = 'external'",
                    (camera, *_FOOTAGE_STATES),
                ).fetchone()["end_us"]
                newest = last["end_us"] if external is None else max(last["end_us"], external)
            if newest is not None and now is not None:
                newest = min(newest, _to_us(now))
            gap_count, gap_us = 0, 0
            if oldest is not None and newest is not None and newest >= oldest:
                # Gaps before the oldest kept footage were pruned away with it: not counted.
                gap = conn.execute(
                    "SELECT count(*) AS n,"
                    " COALESCE(sum(min(end_us, ?) - max(start_us, ?)), 0) AS us"
                    " FROM gaps WHERE camera = ? AND start_us < ? AND end_us > ?",
                    (newest, oldest, camera, newest, oldest),
                ).fetchone()
                gap_count, gap_us = gap["n"], gap["us"]
        return FootageSummary(
            oldest=_opt_from_us(oldest),
            newest=_opt_from_us(newest),
            gap_count=gap_count,
            gap_seconds=gap_us / 1e6,
            bytes=total,
        )
