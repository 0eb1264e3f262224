"""Rows for footage files found on disk rather than sealed as the agent wrote them: the owner's
recorder's files (recording mode `directory`, origin 'external'), and the agent's own files
indexed again by `camera-agent footage rebuild` (marked rebuilt)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from agent.recording.index.database import IndexDatabase
from agent.recording.index.rows import FileStamp, _to_us


class FoundFileRows(IndexDatabase):
    """Indexing files that already exist: external ones and rebuilt ones."""

    def external_stamps(self, camera: str) -> dict[str, FileStamp]:
        """The camera's external files by path, with what a rescan compares."""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT id, path, bytes, mtime_ns, state FROM segments"
                " WHERE camera = ? AND origin = 'external'",
                (camera,),
            ).fetchall()
        return {r["path"]: FileStamp(r["id"], r["bytes"], r["mtime_ns"], r["state"]) for r in rows}

    def add_external(
        self,
        camera: str,
        path: Path,
        start: datetime,
        end: datetime,
        size: int,
        sha256: str,
        mtime_ns: int,
    ) -> int | None:
        """Index a finished file of the owner's recorder; None if it is indexed already
        (another process scanning the same folder got there first)."""
        if end < start:
            raise ValueError(f"{path} ends ({end}) before it starts ({start})")
        # Not fsynced: a row lost to a power cut is found again by the next scan.
        with self._write() as conn:
            cur = conn.execute(
                "INSERT INTO segments (camera, path, start_us, end_us, bytes, sha256, state,"
                " sealed_as, origin, mtime_ns)"
                " VALUES (?, ?, ?, ?, ?, ?, 'closed', 'closed', 'external', ?)"
                " ON CONFLICT (camera, path) WHERE origin = 'external' DO NOTHING",
                (camera, str(path), _to_us(start), _to_us(end), size, sha256, mtime_ns),
            )
            return cur.lastrowid if cur.rowcount == 1 else None

    def recorded_paths(self) -> set[str]:
        """The paths of every row of the agent's own segments, in any state."""
        with self._read() as conn:
            rows = conn.execute("SELECT path FROM segments WHERE origin = 'recorded'").fetchall()
        return {row["path"] for row in rows}

    def add_rebuilt(
        self, camera: str, path: Path, start: datetime, end: datetime, size: int, sha256: str
    ) -> bool:
        """Index a segment file found on disk by a rebuild, marked as rebuilt (its hash was
        taken now); False if its path is indexed already."""
        with self._write() as conn:
            if conn.execute(
                "SELECT 1 FROM segments WHERE path = ? AND origin = 'recorded'", (str(path),)
            ).fetchone():
                return False
            conn.execute(
                # Linked to nothing: a rebuild cannot know what lay between the files it
                # found (index/chain.py).
                "INSERT INTO segments (camera, path, start_us, end_us, bytes, sha256, state,"
                " sealed_as, rebuilt, chain_link)"
                " VALUES (?, ?, ?, ?, ?, ?, 'closed', 'closed', 1, 'rebuilt')",
                (camera, str(path), _to_us(start), _to_us(max(start, end)), size, sha256),
            )
        return True

    def rebuilt_count(self, camera: str) -> int:
        """How many of the camera's segments were indexed by a rebuild, not when written."""
        with self._read() as conn:
            row = conn.execute(
                "SELECT count(*) FROM segments WHERE camera = ? AND rebuilt = 1", (camera,)
            ).fetchone()
        return int(row[0])

    def note_mtime(self, segment_id: int, mtime_ns: int) -> None:
        """Remember the mtime an external file verified at, so rescans skip it again."""
        with self._write() as conn:
            conn.execute(
                "UPDATE segments SET mtime_ns = ? WHERE id = ? AND origin = 'external'",
                (mtime_ns, segment_id),
            )
