"""The agent's small SQLite files (outbox, requests): opened one way, written one way.

WAL so readers (the owner's CLI) never wait for the daemon; synchronous=FULL because
what these files hold (a message not yet delivered, a request id already used) must
survive a power cut; every write an IMMEDIATE transaction under one lock per file.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from agent.state_files import check_sound

# A second process (the owner's CLI) may hold the write lock briefly; wait rather than fail.
BUSY_TIMEOUT_S = 10.0


def open_db(path: Path, schema: str) -> sqlite3.Connection:
    """Open (creating) `path`, check it is sound and apply `schema`; sqlite3.Error (BrokenFile
    for damaged bytes) or OSError on failure."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(
        path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
    )
    db.row_factory = sqlite3.Row
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    # These files are small: a full quick check at each start costs milliseconds and finds
    # a damaged page before a write lands on it (state_files.py moves such a file aside).
    check_sound(db, str(path))
    db.executescript(schema)
    return db


@contextmanager
def transaction(
    db: sqlite3.Connection, lock: AbstractContextManager[object]
) -> Iterator[sqlite3.Connection]:
    """One write transaction; rolled back if the body raises."""
    with lock:
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        try:
            db.execute("COMMIT")
        except sqlite3.Error:
            # A COMMIT that failed (a full disk: SQLITE_FULL) may leave the transaction
            # open; the next BEGIN would then fail for ever.
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
