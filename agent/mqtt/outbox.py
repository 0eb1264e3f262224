"""Messages for the registry, kept on disk until the broker has acknowledged them.

paho keeps unacknowledged messages in memory only: an agent restarted during a broker
outage loses them. Every health report, request status and audit entry is written here
(SQLite, WAL, synchronous=FULL: a committed message survives a power cut) before it is
published, removed when its PUBACK arrives, and published again, in order, after a
restart. Bounded by rule: when one camera's backlog of health reports grows past
MAX_HEALTH_PER_CAMERA, every other one of its oldest half is dropped (the receiver sees
the thinning as gaps in `seq`). The statuses of rejected tokens (key REJECTED_STATUS_KEY)
are capped at MAX_REJECTED_STATUSES, the oldest dropped: anyone who can publish on the
requests topic can make them, and each is also in the audit log (or counted in one of its
summaries). Other request statuses and audit entries are never dropped.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from agent.errors import AgentError
from agent.space_reserve import OnFull, is_disk_full
from agent.sqlite_db import open_db, transaction

log = logging.getLogger(__name__)

T = TypeVar("T")

OUTBOX_FILE = "outbox.sqlite"
# Three days of one camera's reports at the default 60 s interval, or half a day at 10 s.
MAX_HEALTH_PER_CAMERA = 4320
# Statuses of rejected tokens waiting for the broker: a flood during an outage must not
# grow the file without limit; a registry that was away this long learns the rest from the
# audit entries, which are never dropped.
MAX_REJECTED_STATUSES = 200
# The `key` of a rejected token's status in the outbox.
REJECTED_STATUS_KEY = "rejected"
# Refused messages are kept this long for the owner to see why, then forgotten.
KEEP_REFUSED_S = 7 * 86400.0

# Kinds of message; only health may be thinned.
KINDS = frozenset({"health", "status", "audit"})

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    retain INTEGER NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('health', 'status', 'audit')),
    key TEXT,
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_kind_key ON outbox (kind, key, id);
CREATE TABLE IF NOT EXISTS refused (
    id INTEGER PRIMARY KEY,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    kind TEXT NOT NULL,
    reason TEXT NOT NULL,
    refused_at REAL NOT NULL
);
"""


class OutboxError(AgentError):
    """The outbox file is unusable (not SQLite, corrupt, read-only), or its disk is full."""

    def __init__(self, message: str, *, disk_full: bool = False) -> None:
        super().__init__(message)
        self.disk_full = disk_full


@dataclass(frozen=True)
class Message:
    id: int
    topic: str
    payload: bytes
    retain: bool
    kind: str


class Outbox:
    """One SQLite file; safe to use from several threads."""

    def __init__(
        self,
        path: Path,
        *,
        max_health_per_camera: int = MAX_HEALTH_PER_CAMERA,
        max_rejected_statuses: int = MAX_REJECTED_STATUSES,
        on_full: OnFull | None = None,
    ) -> None:
        self.path = path
        # A full disk: release the space reserve (agent.space_reserve) and write again.
        self._on_full = on_full
        self._max_health = max_health_per_camera
        self._max_rejected = max_rejected_statuses
        self._lock = threading.Lock()
        try:
            self._db = open_db(path, _SCHEMA)
            self._db.execute(
                "DELETE FROM refused WHERE refused_at < ?", (time.time() - KEEP_REFUSED_S,)
            )
        except (sqlite3.DatabaseError, OSError) as exc:
            raise OutboxError(f"{path}: cannot use the message outbox: {exc}") from None

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        try:
            with transaction(self._db, self._lock) as db:
                yield db
        except sqlite3.DatabaseError as exc:
            raise OutboxError(f"{self.path}: {exc}", disk_full=is_disk_full(exc)) from None

    def put(
        self, topic: str, payload: bytes, *, retain: bool, kind: str, key: str | None = None
    ) -> int:
        """Store a message durably; returns its id (the order it will be published in)."""
        if kind not in KINDS:
            raise ValueError(f"unknown message kind {kind!r}")
        return self._retrying(lambda: self._put(topic, payload, retain, kind, key))

    def _retrying(self, write: Callable[[], T]) -> T:
        """Run a write; once more if it met a full disk and the space reserve gave room
        (a delivered message that stayed would be sent twice)."""
        try:
            return write()
        except OutboxError as exc:
            if not (exc.disk_full and self._on_full is not None and self._on_full()):
                raise
        return write()

    def _put(self, topic: str, payload: bytes, retain: bool, kind: str, key: str | None) -> int:
        with self._tx() as db:
            cursor = db.execute(
                "INSERT INTO outbox (topic, payload, retain, kind, key, created)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (topic, payload, int(retain), kind, key, time.time()),
            )
            message_id = int(cursor.lastrowid or 0)
            if kind == "health":
                self._thin(db, key)
            elif kind == "status" and key == REJECTED_STATUS_KEY:
                self._cap_rejected(db)
        return message_id

    def _cap_rejected(self, db: sqlite3.Connection) -> None:
        (count,) = db.execute(
            "SELECT COUNT(*) FROM outbox WHERE kind = 'status' AND key = ?",
            (REJECTED_STATUS_KEY,),
        ).fetchone()
        excess = count - self._max_rejected
        if excess <= 0:
            return
        db.execute(
            "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE kind = 'status'"
            " AND key = ? ORDER BY id LIMIT ?)",
            (REJECTED_STATUS_KEY, excess),
        )
        log.warning(
            "%d statuses of rejected tokens wait for the registry; dropped the oldest %d "
            "(their rejections are in the audit log)",
            count,
            excess,
        )

    def _thin(self, db: sqlite3.Connection, key: str | None) -> None:
        (count,) = db.execute(
            "SELECT COUNT(*) FROM outbox WHERE kind = 'health' AND key IS ?", (key,)
        ).fetchone()
        if count <= self._max_health:
            return
        oldest = [
            row[0]
            for row in db.execute(
                "SELECT id FROM outbox WHERE kind = 'health' AND key IS ? ORDER BY id LIMIT ?",
                (key, count // 2),
            )
        ]
        dropped = oldest[1::2]
        db.executemany("DELETE FROM outbox WHERE id = ?", [(i,) for i in dropped])
        log.warning(
            "camera %s: %d health reports waiting for the registry; dropped %d of the oldest",
            key,
            count,
            len(dropped),
        )

    def after(self, last_id: int, limit: int) -> list[Message]:
        """The oldest messages with an id above last_id, in order."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, topic, payload, retain, kind FROM outbox WHERE id > ?"
                " ORDER BY id LIMIT ?",
                (last_id, limit),
            ).fetchall()
        return [Message(r[0], r[1], bytes(r[2]), bool(r[3]), r[4]) for r in rows]

    def delivered(self, message_id: int) -> None:
        self._retrying(lambda: self._delete(message_id))

    def _delete(self, message_id: int) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM outbox WHERE id = ?", (message_id,))

    def refused(self, message_id: int, reason: str) -> Message | None:
        """The broker refused the message: it leaves the queue (sending it again would be
        refused again) and is kept aside with the reason. Returns it, if it was there."""
        return self._retrying(lambda: self._set_aside(message_id, reason))

    def _set_aside(self, message_id: int, reason: str) -> Message | None:
        with self._tx() as db:
            row = db.execute(
                "SELECT id, topic, payload, retain, kind FROM outbox WHERE id = ?", (message_id,)
            ).fetchone()
            if row is None:
                return None
            db.execute("DELETE FROM outbox WHERE id = ?", (message_id,))
            db.execute(
                "INSERT OR REPLACE INTO refused (id, topic, payload, kind, reason, refused_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (row[0], row[1], row[2], row[4], reason, time.time()),
            )
        return Message(row[0], row[1], bytes(row[2]), bool(row[3]), row[4])

    def pending(self) -> int:
        with self._lock:
            (count,) = self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()
        return int(count)

    def refusals(self) -> list[tuple[str, str]]:
        """(topic, reason) of the messages the broker refused, oldest first."""
        with self._lock:
            rows = self._db.execute("SELECT topic, reason FROM refused ORDER BY id").fetchall()
        return [(r[0], r[1]) for r in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()
