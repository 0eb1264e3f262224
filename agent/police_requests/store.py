"""Requests and the request ids seen, on disk (SQLite, WAL), so a restart forgets neither.

A request id is remembered until its token expires (plus the allowed clock skew): a
replay is refused even after a restart, and the table does not grow for ever.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from agent.errors import AgentError
from agent.police_requests.token import Request
from agent.sqlite_db import open_db, transaction
from contract.request_states import FINAL, RequestState
from contract.token_rules import CLOCK_SKEW

REQUESTS_FILE = "requests.sqlite"
# Request ids re-seeded into a new store after the old one broke: their tokens' expiry is
# not in the audit log they come from, so they are never forgotten. Accepted requests
# are few (police requests), so the table stays small. 9999-12-31, as a Unix time.
NEVER_FORGET = 253402214400.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS seen (
    jti TEXT PRIMARY KEY,
    forget_after REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS requests (
    id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    reason TEXT,
    kind TEXT NOT NULL,
    case_id TEXT NOT NULL,
    basis TEXT NOT NULL,
    requester TEXT NOT NULL,
    issuer TEXT NOT NULL,
    cameras TEXT NOT NULL,
    start REAL NOT NULL,
    end REAL NOT NULL,
    upload_url TEXT NOT NULL,
    upload_token TEXT NOT NULL,
    expires REAL NOT NULL,
    received REAL NOT NULL,
    updated REAL NOT NULL,
    owner_deadline REAL,
    bytes_sent INTEGER NOT NULL DEFAULT 0,
    bytes_total INTEGER NOT NULL DEFAULT 0,
    manifest_sha256 TEXT,
    token BLOB
);
CREATE TABLE IF NOT EXISTS uploads (
    request_id TEXT NOT NULL,
    name TEXT NOT NULL,
    url TEXT NOT NULL,
    done INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (request_id, name)
);
"""


def _add_token_column(db: sqlite3.Connection) -> None:
    """Request stores made before the token was kept lack its column."""
    columns = {row["name"] for row in db.execute("PRAGMA table_info(requests)")}
    if "token" in columns:
        return
    try:
        db.execute("ALTER TABLE requests ADD COLUMN token BLOB")
    except sqlite3.OperationalError as exc:
        if "duplicate column" not in str(exc):  # the CLI added it a moment ago
            raise


class RequestStoreError(AgentError):
    """The request store is unusable, or a request id is unknown."""


class UnknownRequest(RequestStoreError):
    """No request with this id."""

    def __init__(self, request_id: str) -> None:
        super().__init__(f"no request {request_id!r}")
        self.request_id = request_id


@dataclass(frozen=True)
class StoredRequest:
    id: str
    state: RequestState
    reason: str | None
    kind: str
    case: str
    basis: str
    requester: str
    issuer: str
    cameras: tuple[str, ...]
    start: datetime
    end: datetime
    upload_url: str
    upload_token: str
    expires: datetime
    received: datetime
    updated: datetime
    owner_deadline: datetime | None
    bytes_sent: int
    bytes_total: int
    manifest_sha256: str | None

    @property
    def final(self) -> bool:
        return self.state.final


def _ts(moment: datetime) -> float:
    return moment.timestamp()


def _dt(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


def _row(r: sqlite3.Row) -> StoredRequest:
    return StoredRequest(
        id=r["id"],
        state=RequestState(r["state"]),
        reason=r["reason"],
        kind=r["kind"],
        case=r["case_id"],
        basis=r["basis"],
        requester=r["requester"],
        issuer=r["issuer"],
        cameras=tuple(json.loads(r["cameras"])),
        start=_dt(r["start"]),
        end=_dt(r["end"]),
        upload_url=r["upload_url"],
        upload_token=r["upload_token"],
        expires=_dt(r["expires"]),
        received=_dt(r["received"]),
        updated=_dt(r["updated"]),
        owner_deadline=_dt(r["owner_deadline"]) if r["owner_deadline"] is not None else None,
        bytes_sent=r["bytes_sent"],
        bytes_total=r["bytes_total"],
        manifest_sha256=r["manifest_sha256"],
    )


class RequestStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        try:
            self._db = open_db(path, _SCHEMA)
            _add_token_column(self._db)
        except (sqlite3.DatabaseError, OSError) as exc:
            raise RequestStoreError(f"{path}: cannot use the request store: {exc}") from None

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        try:
            with transaction(self._db, self._lock) as db:
                yield db
        except sqlite3.DatabaseError as exc:
            raise RequestStoreError(f"{self.path}: {exc}") from None

    def seen(self, jti: str) -> bool:
        with self._lock:
            row = self._db.execute("SELECT 1 FROM seen WHERE jti = ?", (jti,)).fetchone()
        return row is not None

    def accept(self, request: Request, now: datetime) -> StoredRequest:
        """Remember a verified request (and its id, against replays) in state received.
        Raises RequestStoreError if its id was taken meanwhile."""
        with self._tx() as db:
            try:
                db.execute(
                    "INSERT INTO seen (jti, forget_after) VALUES (?, ?)",
                    (request.id, _ts(request.expires + CLOCK_SKEW)),
                )
            except sqlite3.IntegrityError:
                raise RequestStoreError(f"request id {request.id!r} was used before") from None
            db.execute(
                "INSERT OR REPLACE INTO requests (id, state, kind, case_id, basis, requester,"
                " issuer, cameras, start, end, upload_url, upload_token, expires, received,"
                " updated, token) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    request.id,
                    RequestState.RECEIVED,
                    request.kind,
                    request.case,
                    request.basis,
                    request.requester,
                    request.issuer,
                    json.dumps(list(request.cameras)),
                    _ts(request.start),
                    _ts(request.end),
                    request.upload_url,
                    request.upload_token,
                    _ts(request.expires),
                    _ts(now),
                    _ts(now),
                    request.token or None,
                ),
            )
        return self.get(request.id)

    def token_of(self, request_id: str) -> bytes | None:
        """The token a request arrived with; None when it was accepted before tokens were
        kept (an upgrade) or there is no such request."""
        with self._lock:
            row = self._db.execute(
                "SELECT token FROM requests WHERE id = ?", (request_id,)
            ).fetchone()
        return None if row is None or row["token"] is None else bytes(row["token"])

    def update(
        self,
        request_id: str,
        now: datetime,
        *,
        state: RequestState | None = None,
        reason: str | None = None,
        owner_deadline: datetime | None = None,
        bytes_sent: int | None = None,
        bytes_total: int | None = None,
        manifest_sha256: str | None = None,
    ) -> StoredRequest:
        if state is not None and state not in frozenset(RequestState):
            raise ValueError(f"unknown request state {state!r}")
        changes: dict[str, object] = {"updated": _ts(now)}
        if state is not None:
            changes["state"] = state
            changes["reason"] = reason
        if owner_deadline is not None:
            changes["owner_deadline"] = _ts(owner_deadline)
        if bytes_sent is not None:
            changes["bytes_sent"] = bytes_sent
        if bytes_total is not None:
            changes["bytes_total"] = bytes_total
        if manifest_sha256 is not None:
            changes["manifest_sha256"] = manifest_sha256
        assignments = ", ".join(f"{column} = ?" for column in changes)
        with self._tx() as db:
            cursor = db.execute(
                f"UPDATE requests SET {assignments} WHERE id = ?", (*changes.values(), request_id)
            )
            if cursor.rowcount == 0:
                raise UnknownRequest(request_id)
        return self.get(request_id)

    def get(self, request_id: str) -> StoredRequest:
        with self._lock:
            row = self._db.execute("SELECT * FROM requests WHERE id = ?", (request_id,)).fetchone()
        if row is None:
            raise UnknownRequest(request_id)
        return _row(row)

    def all(self) -> list[StoredRequest]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM requests ORDER BY received").fetchall()
        return [_row(r) for r in rows]

    def open_requests(self) -> list[StoredRequest]:
        """Requests something still has to happen to, oldest first."""
        final = ", ".join(f"'{state}'" for state in sorted(FINAL))
        with self._lock:
            rows = self._db.execute(
                f"SELECT * FROM requests WHERE state NOT IN ({final}) ORDER BY received"
            ).fetchall()
        return [_row(r) for r in rows]

    def upload_of(self, request_id: str, name: str) -> tuple[str, bool] | None:
        """(tus URL, finished) of one file of a request's package, if it was created."""
        with self._lock:
            row = self._db.execute(
                "SELECT url, done FROM uploads WHERE request_id = ? AND name = ?",
                (request_id, name),
            ).fetchone()
        return None if row is None else (row["url"], bool(row["done"]))

    def record_upload(self, request_id: str, name: str, url: str, *, done: bool) -> None:
        """Kept before the first byte is sent, so a restart resumes the same upload."""
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO uploads (request_id, name, url, done) VALUES (?, ?, ?, ?)",
                (request_id, name, url, int(done)),
            )

    def reseed(self, request_ids: Iterable[str]) -> int:
        """Remember request ids as seen (a new store after the old one broke: the ids of the
        requests the audit log says were accepted), so their tokens cannot be replayed.
        Returns how many were not known yet."""
        with self._tx() as db:
            cursor = db.executemany(
                "INSERT OR IGNORE INTO seen (jti, forget_after) VALUES (?, ?)",
                [(request_id, NEVER_FORGET) for request_id in request_ids],
            )
        return max(cursor.rowcount, 0)

    def forget_expired(self, now: datetime) -> int:
        with self._tx() as db:
            cursor = db.execute("DELETE FROM seen WHERE forget_after < ?", (_ts(now),))
        return cursor.rowcount

    def close(self) -> None:
        with self._lock:
            self._db.close()
