"""Camera clock rows: each reading of a camera's clock against the agent's (agent/onvif/
camera_clocks.py), kept beside the footage so that an evidence package can say how far the
camera's own clock was off while the footage was recorded. Pruned with the footage."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from agent.recording.index.database import IndexDatabase
from agent.recording.index.rows import _from_us, _to_us


@dataclass(frozen=True)
class ClockRow:
    camera: str
    at: datetime  # on the agent's synchronised clock
    offset_s: float  # the camera's clock minus the agent's
    uncertainty_s: float
    source: str


def _seconds_us(seconds: float) -> int:
    return round(seconds * 1_000_000)


class ClockRows(IndexDatabase):
    """Recording, reading and pruning camera clock readings."""

    def add_clock_reading(self, row: ClockRow) -> None:
        with self._write() as conn:
            conn.execute(
                "INSERT INTO camera_clocks (camera, at_us, offset_us, uncertainty_us, source)"
                " VALUES (?, ?, ?, ?, ?)",
                (
                    row.camera,
                    _to_us(row.at),
                    _seconds_us(row.offset_s),
                    _seconds_us(row.uncertainty_s),
                    row.source,
                ),
            )

    def clock_readings(self, camera: str, start: datetime, end: datetime) -> list[ClockRow]:
        """The readings that cover [start, end]: the last before `start`, those inside, and
        the first after `end`, by time; what a package says of the camera's clock."""
        lo, hi = _to_us(start), _to_us(end)
        with self._read() as conn:
            rows = conn.execute(
                "SELECT * FROM (SELECT * FROM camera_clocks WHERE camera = ? AND at_us < ?"
                "  ORDER BY at_us DESC, id DESC LIMIT 1)"
                " UNION ALL SELECT * FROM camera_clocks"
                "  WHERE camera = ? AND at_us >= ? AND at_us <= ?"
                " UNION ALL SELECT * FROM (SELECT * FROM camera_clocks WHERE camera = ?"
                "  AND at_us > ? ORDER BY at_us, id LIMIT 1)"
                " ORDER BY at_us, id",
                (camera, lo, camera, lo, hi, camera, hi),
            ).fetchall()
        return [
            ClockRow(
                r["camera"],
                _from_us(r["at_us"]),
                r["offset_us"] / 1_000_000,
                r["uncertainty_us"] / 1_000_000,
                r["source"],
            )
            for r in rows
        ]

    def prune_clock_readings(self) -> int:
        """Forget the readings no footage needs: per camera, those before the last reading
        at or before its oldest segment's start (a camera without footage keeps its last
        reading only). Returns how many were deleted. A few index seeks per camera: it
        runs with every pruning pass."""
        deleted = 0
        with self._write() as conn:
            cameras = [r[0] for r in conn.execute("SELECT DISTINCT camera FROM camera_clocks")]
            for camera in cameras:
                oldest = conn.execute(
                    "SELECT MIN(start_us) FROM segments WHERE camera = ?", (camera,)
                ).fetchone()[0]
                if oldest is None:
                    keep_from = conn.execute(
                        "SELECT MAX(at_us) FROM camera_clocks WHERE camera = ?", (camera,)
                    ).fetchone()[0]
                else:
                    keep_from = conn.execute(
                        "SELECT MAX(at_us) FROM camera_clocks WHERE camera = ? AND at_us <= ?",
                        (camera, oldest),
                    ).fetchone()[0]
                if keep_from is None:
                    continue  # every reading is after its oldest footage: all needed
                cur = conn.execute(
                    "DELETE FROM camera_clocks WHERE camera = ? AND at_us < ?", (camera, keep_from)
                )
                deleted += int(cur.rowcount)
        return deleted
