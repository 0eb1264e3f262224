"""The life of a segment row: begun when the agent starts writing a file, sealed with its
hash when the file is closed, settled after a crash, marked, verified and forgotten; and
the queries that read segments back."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from agent.recording.index.chain import ChainLink, link_sealed
from agent.recording.index.database import FootageIndexError, IndexDatabase
from agent.recording.index.rows import (
    _SEGMENT_COLUMNS,
    STATES,
    Segment,
    _from_us,
    _segment,
    _to_us,
    _window,
)
from agent.recording.plain_file import NotPlainFile


class SegmentRows(IndexDatabase):
    """Segments the agent records, and reading any segment back."""

    def begin(self, camera: str, path: Path, start: datetime) -> int:
        """Record that a segment file is being written; returns its id."""
        with self._write() as conn:
            cur = conn.execute(
                "INSERT INTO segments (camera, path, start_us, state) VALUES (?, ?, ?, 'writing')",
                (camera, str(path), _to_us(start)),
            )
            assert cur.lastrowid is not None
            return cur.lastrowid

    def close(
        self,
        segment_id: int,
        end: datetime,
        size: int,
        sha256: str,
        *,
        partial: bool = False,
        boot: tuple[str, int] | None = None,
    ) -> None:
        """Seal a written segment with its end, size and hash (fsynced before returning);
        `boot` is (boot id, CLOCK_BOOTTIME in microseconds) at its end."""
        state = "partial" if partial else "closed"
        with self._write(durable=True) as conn:
            row = self._row(conn, segment_id)
            if row["state"] != "writing":
                raise FootageIndexError(
                    f"footage index {self.path}: segment {segment_id} is {row['state']}, "
                    "not writing"
                )
            boot_id, boot_end_us = boot if boot is not None else (None, None)
            conn.execute(
                "UPDATE segments SET end_us = ?, bytes = ?, sha256 = ?, state = ?, sealed_as = ?,"
                " boot_id = ?, boot_end_us = ? WHERE id = ?",
                (_to_us(end), size, sha256, state, state, boot_id, boot_end_us, segment_id),
            )
            link_sealed(conn, segment_id, row["camera"], row["start_us"], _to_us(end), sha256)

    def mark_clock_step(self, segment_id: int) -> None:
        """Note that the wall clock was stepped while this segment was being written."""
        with self._write() as conn:
            conn.execute("UPDATE segments SET clock_step = 1 WHERE id = ?", (segment_id,))

    def recover(
        self,
        hash_file: Callable[[Path], tuple[int, str]],
        end_of: Callable[[Path], datetime | None],
    ) -> list[Segment]:
        """After a crash, settle every row the agent left 'writing' as 'partial' or
        'missing'; the owner's files (origin 'external') are never touched."""
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT {_SEGMENT_COLUMNS} FROM segments"
                " WHERE state = 'writing' AND origin = 'recorded' ORDER BY id"
            ).fetchall()
        recovered: list[Segment] = []
        for row in rows:
            seg = _segment(row)
            try:
                present = seg.path.stat().st_size > 0
            except FileNotFoundError:
                present = False
            if present:
                size, digest = hash_file(seg.path)
                end = end_of(seg.path) or seg.start
                with self._write(durable=True) as conn:
                    conn.execute(
                        "UPDATE segments SET end_us = ?, bytes = ?, sha256 = ?,"
                        " state = 'partial', sealed_as = 'partial' WHERE id = ?",
                        (_to_us(end), size, digest, seg.id),
                    )
                    link_sealed(conn, seg.id, seg.camera, _to_us(seg.start), _to_us(end), digest)
            else:
                # An empty file holds no footage; it would only confuse the owner's player.
                seg.path.unlink(missing_ok=True)
                with self._write(durable=True) as conn:
                    conn.execute(
                        "UPDATE segments SET end_us = start_us, bytes = 0, state = 'missing'"
                        " WHERE id = ?",
                        (seg.id,),
                    )
            with self._read() as conn:
                recovered.append(_segment(self._row(conn, seg.id)))
        return recovered

    def segments(
        self,
        camera: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        *,
        origin: str | None = None,
    ) -> list[Segment]:
        """Segments (any state; of one origin if given) overlapping [start, end), by start."""
        where, params = _window(camera, start, end, origin)
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT {_SEGMENT_COLUMNS} FROM segments{where} ORDER BY start_us, id", params
            ).fetchall()
        return [_segment(row) for row in rows]

    def segment(self, segment_id: int) -> Segment:
        """One segment by id."""
        with self._read() as conn:
            return _segment(self._row(conn, segment_id))

    def newest(self, camera: str, count: int, *, origin: str | None = None) -> list[Segment]:
        """The camera's `count` latest-starting segments (of one origin if given), by start."""
        where, params = _window(camera, None, None, origin)
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT {_SEGMENT_COLUMNS} FROM segments{where}"
                " ORDER BY start_us DESC, id DESC LIMIT ?",
                [*params, count],
            ).fetchall()
        return [_segment(row) for row in reversed(rows)]

    def remove(self, segment_id: int) -> None:
        """Forget a segment whose file the caller has deleted; unknown ids are ignored."""
        with self._write() as conn:
            conn.execute("DELETE FROM segments WHERE id = ?", (segment_id,))

    def mark(self, segment_id: int, state: str) -> None:
        """Set a segment's state; leaving 'writing' without close() ends it at its start."""
        if state not in STATES:
            raise ValueError(f"unknown segment state {state!r}")
        with self._write(durable=True) as conn:
            self._row(conn, segment_id)
            conn.execute(
                "UPDATE segments SET state = ?,"
                " end_us = CASE WHEN ? = 'writing' THEN end_us ELSE COALESCE(end_us, start_us) END"
                " WHERE id = ?",
                (state, state, segment_id),
            )

    def verify(self, segment_id: int, hash_file: Callable[[Path], tuple[int, str]]) -> str:
        """Re-hash a sealed segment: 'ok', 'altered' or 'missing', recorded in its state."""
        with self._read() as conn:
            row = self._row(conn, segment_id)
        if row["sha256"] is None:
            raise FootageIndexError(
                f"footage index {self.path}: segment {segment_id} ({row['state']}) has no "
                "hash to verify against"
            )
        path = Path(row["path"])
        try:
            size, digest = hash_file(path)
        except FileNotFoundError:
            result, state = "missing", "missing"
        except NotPlainFile:
            # A link (or a FIFO) now stands where the recorded file was: not its bytes.
            result, state = "altered", "altered"
        else:
            if size == row["bytes"] and digest == row["sha256"]:
                # Identical bytes again (e.g. restored from a copy): the seal holds.
                result, state = "ok", row["sealed_as"] or row["state"]
            else:
                result, state = "altered", "altered"
        with self._write(durable=True) as conn:
            conn.execute("UPDATE segments SET state = ? WHERE id = ?", (state, segment_id))
        return result

    def chain_links(self, segment_ids: list[int]) -> dict[int, ChainLink]:
        """The chain link of each segment id given (chain.py); kind `none` for a row
        without one."""
        links: dict[int, ChainLink] = {}
        with self._read() as conn:
            for segment_id in segment_ids:
                row = conn.execute(
                    "SELECT chain_link, chain_prev, chain_gap_start_us, chain_gap_end_us"
                    " FROM segments WHERE id = ?",
                    (segment_id,),
                ).fetchone()
                if row is None or row[0] is None:
                    links[segment_id] = ChainLink("none", None)
                    continue
                links[segment_id] = ChainLink(
                    row[0],
                    row[1],
                    None if row[2] is None else _from_us(row[2]),
                    None if row[3] is None else _from_us(row[3]),
                )
        return links
