"""Gap rows: spans with no footage (camera down, agent not running, a hole between the owner's
recorder's files) and why."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from agent.recording.index.database import IndexDatabase
from agent.recording.index.rows import Gap, _from_us, _to_us, _window


class GapRows(IndexDatabase):
    """Recording, re-deriving and reading gaps."""

    def add_gap(self, camera: str, start: datetime, end: datetime, reason: str) -> None:
        """Record a span with no footage (camera down, agent not running) and why."""
        if end < start:
            raise ValueError(f"gap ends ({end}) before it starts ({start})")
        with self._write(durable=True) as conn:
            conn.execute(
                "INSERT INTO gaps (camera, start_us, end_us, reason) VALUES (?, ?, ?, ?)",
                (camera, _to_us(start), _to_us(end), reason),
            )

    def rederive_gaps(
        self,
        camera: str,
        reason: str,
        derive: Callable[[Sequence[tuple[datetime, datetime]]], list[tuple[datetime, datetime]]],
    ) -> int:
        """Replace the camera's gap rows of `reason` with `derive((start, end) of each of its
        external segments)`, read and written in one transaction so two processes scanning
        at once agree. Returns the number of gaps."""
        with self._write() as conn:
            rows = conn.execute(
                "SELECT start_us, COALESCE(end_us, start_us) FROM segments WHERE camera = ?"
                " AND origin = 'external' ORDER BY start_us, id",
                (camera,),
            ).fetchall()
            spans = derive([(_from_us(start), _from_us(end)) for start, end in rows])
            conn.execute("DELETE FROM gaps WHERE camera = ? AND reason = ?", (camera, reason))
            conn.executemany(
                "INSERT INTO gaps (camera, start_us, end_us, reason) VALUES (?, ?, ?, ?)",
                [(camera, _to_us(start), _to_us(end), reason) for start, end in spans],
            )
            return len(spans)

    def gaps(
        self, camera: str | None = None, start: datetime | None = None, end: datetime | None = None
    ) -> list[Gap]:
        """Gaps overlapping [start, end), by start time."""
        where, params = _window(camera, start, end)
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT camera, start_us, end_us, reason FROM gaps{where} ORDER BY start_us, id",
                params,
            ).fetchall()
        return [
            Gap(r["camera"], _from_us(r["start_us"]), _from_us(r["end_us"]), r["reason"])
            for r in rows
        ]
