"""The footage index: every segment, gap and preservation hold, in one SQLite file (WAL).

Over 500 lines, not split in the issue 14 or 15 changes: segments, gaps and holds share one
SQLite file and its transactions; a split by table would spread those transactions over
modules (left for issue 17's layout pass).
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NamedTuple

from agent.errors import AgentError
from agent.recording.plain_file import NotPlainFile, open_plain
from agent.state_files import check_sound
from contract.timestamps import rfc3339

SCHEMA_VERSION = 3

STATES = frozenset({"writing", "closed", "partial", "missing", "altered"})
# 'recorded': a segment the agent wrote, under its own storage and pruning rules.
# 'external': a file the owner's own recorder wrote (recording mode `directory`); the
# agent only reads it and never deletes, renames or rewrites it.
ORIGINS = frozenset({"recorded", "external"})
# States whose file holds footage someone can watch; what the health summary counts.
_FOOTAGE_STATES = ("closed", "partial")

# Big enough that hashing runs at disk speed, small enough to stay out of the RSS budget.
HASH_CHUNK = 1024 * 1024
# A second process (the owner's CLI) may hold the write lock briefly; wait rather than fail.
_BUSY_TIMEOUT_S = 10.0

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)

_SCHEMA_V1 = """
CREATE TABLE segments (
    id INTEGER PRIMARY KEY,
    camera TEXT NOT NULL,
    path TEXT NOT NULL,
    start_us INTEGER NOT NULL,
    end_us INTEGER,
    bytes INTEGER NOT NULL DEFAULT 0,
    sha256 TEXT,
    state TEXT NOT NULL
        CHECK (state IN ('writing', 'closed', 'partial', 'missing', 'altered')),
    -- 'closed' or 'partial' as sealed, so a file that verifies again gets its state back
    sealed_as TEXT
);
CREATE INDEX segments_camera_start ON segments (camera, start_us);
CREATE INDEX segments_state ON segments (state);
CREATE TABLE gaps (
    id INTEGER PRIMARY KEY,
    camera TEXT NOT NULL,
    start_us INTEGER NOT NULL,
    end_us INTEGER NOT NULL,
    reason TEXT NOT NULL
);
CREATE INDEX gaps_camera_start ON gaps (camera, start_us);
CREATE TABLE holds (
    id INTEGER PRIMARY KEY,
    camera TEXT NOT NULL,
    start_us INTEGER NOT NULL,
    end_us INTEGER NOT NULL,
    until_us INTEGER NOT NULL,
    reason TEXT NOT NULL
);
"""

# Migrations are split on ';', so their comments must not contain one.
_SCHEMA_V2 = """
ALTER TABLE segments ADD COLUMN origin TEXT NOT NULL DEFAULT 'recorded'
    CHECK (origin IN ('recorded', 'external'));
-- The owner's file's mtime when it was last hashed: a rescan that finds the same size
-- and mtime skips the file instead of hashing it again.
ALTER TABLE segments ADD COLUMN mtime_ns INTEGER;
-- One row per file of the owner's recorder, even when the daemon and the CLI scan at once.
CREATE UNIQUE INDEX segments_external_path ON segments (camera, path)
    WHERE origin = 'external';
"""

# What the agent's own clock knew of a segment (agent/clock_step.py): the boot it was
# recorded in and CLOCK_BOOTTIME at its end, so retention ages it by elapsed time, not by
# a wall clock that may have been stepped; and whether a wall-clock step fell inside it
# (its times are on the clock as it was before the step).
_SCHEMA_V3_CLOCK = """
ALTER TABLE segments ADD COLUMN boot_id TEXT;
ALTER TABLE segments ADD COLUMN boot_end_us INTEGER;
ALTER TABLE segments ADD COLUMN clock_step INTEGER NOT NULL DEFAULT 0;
"""
# Rows rebuilt from the files on disk (recording/rebuild.py) say so: their hash was taken
# at the rebuild, not when the file was written. Added by a column check rather than a
# numbered migration, so it composes with any other schema change.
_REBUILT_COLUMN = "ALTER TABLE segments ADD COLUMN rebuilt INTEGER NOT NULL DEFAULT 0"

# Index i takes the schema from version i to i + 1.
_MIGRATIONS: tuple[str, ...] = (_SCHEMA_V1, _SCHEMA_V2, _SCHEMA_V3_CLOCK)


class FootageIndexError(AgentError):
    """The footage index file is unusable (corrupt, not SQLite, newer schema) or misused."""


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


def _rfc3339(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return rfc3339(moment)


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
            "oldest": _rfc3339(self.oldest),
            "newest": _rfc3339(self.newest),
            "gaps": {"count": self.gap_count, "seconds": round(self.gap_seconds, 3)},
            "bytes": self.bytes,
            "retention_days_effective": round(retention_days_effective, 3),
        }


class HashCancelled(AgentError):
    """sha256_file gave up part-way because the agent is stopping."""


def sha256_file(path: Path, stop: threading.Event | None = None) -> tuple[int, str]:
    """(size in bytes, SHA-256 hex) of a file, read in 1 MiB chunks; raises HashCancelled
    between chunks once `stop` is set (a multi-GB file must not hold up a shutdown), and
    NotPlainFile for a symbolic link or anything but a regular file (plain_file.py)."""
    digest = hashlib.sha256()
    size = 0
    with open_plain(path) as fh:
        while chunk := fh.read(HASH_CHUNK):
            if stop is not None and stop.is_set():
                raise HashCancelled(f"hashing {path} stopped: the agent is stopping")
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


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


class SegmentIndex:
    """The SQLite index of recorded footage; safe to share between threads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.RLock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise FootageIndexError(f"footage index {path}: no folder for it: {exc}") from exc
        try:
            # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE in _write).
            self._conn = sqlite3.connect(
                path, timeout=_BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise FootageIndexError(f"footage index {path}: cannot open: {exc}") from exc
        self._conn.row_factory = sqlite3.Row
        try:
            self._setup()
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            raise FootageIndexError(
                f"footage index {path} is not a usable SQLite database ({exc}); "
                "it was left untouched: `camera-agent footage rebuild` keeps it aside and "
                "rebuilds the index from the footage files"
            ) from exc
        except FootageIndexError:
            self._conn.close()
            raise

    def _setup(self) -> None:
        conn = self._conn
        # Reading the schema first makes a non-SQLite file fail before anything is written;
        # the quick check finds a damaged page before a write lands on it.
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        check_sound(conn, f"footage index {self.path}")
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise FootageIndexError(f"footage index {self.path}: cannot use WAL (got {mode})")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        with self._write():
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            if version > SCHEMA_VERSION:
                raise FootageIndexError(
                    f"footage index {self.path} has schema version {version}, newer than "
                    f"this agent's {SCHEMA_VERSION}"
                )
            for step in range(version, SCHEMA_VERSION):
                for statement in _MIGRATIONS[step].split(";"):
                    if statement.strip():
                        conn.execute(statement)
            if version != SCHEMA_VERSION:
                conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            columns = {row["name"] for row in conn.execute("PRAGMA table_info(segments)")}
            if "rebuilt" not in columns:
                conn.execute(_REBUILT_COLUMN)

    @contextmanager
    def _write(self, *, durable: bool = False) -> Iterator[sqlite3.Connection]:
        """One write transaction under the lock; `durable` fsyncs the WAL on commit."""
        with self._lock:
            conn = self._conn
            try:
                if durable:
                    conn.execute("PRAGMA synchronous=FULL")
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                try:
                    conn.execute("COMMIT")
                except sqlite3.Error:
                    # A failed COMMIT (a full disk) may leave the transaction open; the
                    # next BEGIN would then fail for ever.
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            except sqlite3.DatabaseError as exc:
                raise FootageIndexError(f"footage index {self.path}: {exc}") from exc
            finally:
                if durable:
                    conn.execute("PRAGMA synchronous=NORMAL")

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                yield self._conn
            except sqlite3.DatabaseError as exc:
                raise FootageIndexError(f"footage index {self.path}: {exc}") from exc

    def _row(self, conn: sqlite3.Connection, segment_id: int) -> sqlite3.Row:
        row: sqlite3.Row | None = conn.execute(
            f"SELECT {_SEGMENT_COLUMNS}, sealed_as FROM segments WHERE id = ?", (segment_id,)
        ).fetchone()
        if row is None:
            raise FootageIndexError(f"footage index {self.path}: no segment {segment_id}")
        return row

    # -- segments ---------------------------------------------------------------------

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
                "INSERT INTO segments (camera, path, start_us, end_us, bytes, sha256, state,"
                " sealed_as, rebuilt) VALUES (?, ?, ?, ?, ?, ?, 'closed', 'closed', 1)",
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

    # -- gaps and summary -------------------------------------------------------------

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

    # -- holds ------------------------------------------------------------------------

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

    def close_db(self) -> None:
        """Close the connection; the WAL is checkpointed into the main file."""
        with self._lock:
            self._conn.close()
