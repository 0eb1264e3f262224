"""The footage index's SQLite connection: opening and checking the file, bringing its schema
up to date, and the locked read and write transactions every kind of row goes through.

The rows' own operations are in segment_rows.py, found_files.py, gaps.py, summary.py and
holds.py; each is a part of `SegmentIndex` (this package's __init__.py) built on this class,
so segments, gaps and holds keep sharing one file, one lock and its transactions.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from agent.errors import AgentError
from agent.recording.index.chain import add_chain_schema
from agent.recording.index.rows import _SEGMENT_COLUMNS
from agent.recording.index.schema import (
    _MIGRATIONS,
    _REBUILT_COLUMN,
    CAMERA_CLOCKS_INDEX,
    CAMERA_CLOCKS_TABLE,
    SCHEMA_VERSION,
)
from agent.sqlite_db import transaction
from agent.state_files import check_sound

# A second process (the owner's CLI) may hold the write lock briefly; wait rather than fail.
_BUSY_TIMEOUT_S = 10.0


class FootageIndexError(AgentError):
    """The footage index file is unusable (corrupt, not SQLite, newer schema) or misused."""


class IndexDatabase:
    """One SQLite file of the footage index; safe to share between threads."""

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
            add_chain_schema(conn, columns)
            conn.execute(CAMERA_CLOCKS_TABLE)
            conn.execute(CAMERA_CLOCKS_INDEX)

    @contextmanager
    def _write(self, *, durable: bool = False) -> Iterator[sqlite3.Connection]:
        """One write transaction under the lock; `durable` fsyncs the WAL on commit."""
        with self._lock:
            conn = self._conn
            try:
                if durable:
                    conn.execute("PRAGMA synchronous=FULL")
                with transaction(conn, self._lock) as db:  # the RLock, taken again
                    yield db
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

    def close_db(self) -> None:
        """Close the connection; the WAL is checkpointed into the main file."""
        with self._lock:
            self._conn.close()
