"""Preservation holds: footage kept from pruning until a given time (for a footage request)."""

from __future__ import annotations

from datetime import datetime

from agent.recording.index.database import FootageIndexError, IndexDatabase
from agent.recording.index.rows import Hold, _from_us, _to_us


class HoldRows(IndexDatabase):
    """Placing, releasing and reading holds."""

    def hold(
        self, camera: str, start: datetime, end: datetime, until: datetime, reason: str
    ) -> int:
        """Preserve a camera's footage in [start, end] from pruning until `until`."""
        if end < start:
            raise ValueError(f"hold ends ({end}) before it starts ({start})")
        with self._write(durable=True) as conn:
            cur = conn.execute(
                "INSERT INTO holds (camera, start_us, end_us, until_us, reason)"
                " VALUES (?, ?, ?, ?, ?)",
                (camera, _to_us(start), _to_us(end), _to_us(until), reason),
            )
            assert cur.lastrowid is not None
            return cur.lastrowid

    def release(self, hold_id: int) -> None:
        """End a hold; its footage falls back under the ordinary retention rules."""
        with self._write(durable=True) as conn:
            cur = conn.execute("DELETE FROM holds WHERE id = ?", (hold_id,))
            if cur.rowcount == 0:
                raise FootageIndexError(f"footage index {self.path}: no hold {hold_id}")

    def holds(self, now: datetime) -> list[Hold]:
        """Holds still in force at `now`."""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT id, camera, start_us, end_us, until_us, reason FROM holds"
                " WHERE until_us > ? ORDER BY id",
                (_to_us(now),),
            ).fetchall()
        return [
            Hold(
                id=r["id"],
                camera=r["camera"],
                start=_from_us(r["start_us"]),
                end=_from_us(r["end_us"]),
                until=_from_us(r["until_us"]),
                reason=r["reason"],
            )
            for r in rows
        ]
