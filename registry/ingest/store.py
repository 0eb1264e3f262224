"""Validated messages into the database, a batch per transaction, the same on SQLite and
PostgreSQL.

Loss counting is per camera and order-independent, because several ingest workers share
the agents' messages (shared subscriptions) and commit their batches in any order. Each
distinct report (agent, camera, bdseq, seq) is one health_history row (a unique index makes
a redelivered or re-sent retained report a duplicate, stored once and counted once). Within
the current bdseq the camera row keeps the lowest and highest seq and the number of
distinct reports, so `missing` = the reports the seq range says were sent but never
arrived; a late report fills its gap. A new bdseq starts a new range (the reports between
the end of one run and the start of the next are not counted as lost). A report of an
older bdseq is stored and counted as received but changes nothing else. `received`
counts distinct reports only.

A camera leaves the `cameras` table (its health_history stays) when the agent's newest
birth no longer lists it, or when its retained health is withdrawn (an empty payload on
its health topic). Neither may undo a newer boot: a birth removes only cameras whose
newest report is not from a later bdseq, and a report from a boot older than the agent's
current birth does not make a camera row (health.py), so a stale retained report cannot
bring back a camera the agent dropped. Within a batch arrival order decides: a withdrawal
followed by a report or a birth listing the camera is no withdrawal.

Row locks are taken in one order (cameras, then agents, each sorted by key) so concurrent
workers on PostgreSQL do not deadlock; a batch that still hits one is retried.

One message must not cost the others theirs. The validator bounds what reaches the store
to what both databases hold, but should the database (or the driver's conversion) still
refuse a batch for what it holds, not for trouble of its own (connection, disk, locks),
its messages are applied again one by one, each in its own transaction, and the one that
is refused is stored in `rejected_messages` with the database's reason. Database trouble
is a RegistryError: the worker keeps the batch unacknowledged and tries again.

The rows of each table are built in rows.py, health's in health.py, the cameras' history
intervals in intervals.py (folded from the new reports after the camera rows are locked);
this module is the batch: one transaction, its lock order, its retries and the refusals.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError, StatementError

from contract.topics import Kind
from registry.db.schema import rejected_messages
from registry.errors import RegistryError
from registry.ingest import health
from registry.ingest.intervals import IntervalWriter
from registry.ingest.rows import CameraKey, RowWriter
from registry.ingest.validate import Accepted, Rejected, Withdrawn, short_reason, storable

log = logging.getLogger(__name__)

# A batch that lost a deadlock (PostgreSQL) or a lock wait (SQLite) is tried again.
ATTEMPTS = 3
RETRY_PAUSE_S = 0.05
# PostgreSQL SQLSTATEs worth retrying: deadlock detected, serialization failure.
RETRYABLE_SQLSTATES = ("40P01", "40001")

Message = Accepted | Withdrawn | Rejected


@dataclass
class BatchResult:
    """What one batch did, for the worker's counters and the benchmark."""

    stored: int = 0  # accepted messages applied (duplicates included)
    duplicates: int = 0  # health reports and audit entries already held
    rejected: int = 0
    per_kind: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    removed: dict[str, list[str]] = field(default_factory=dict)  # agent -> camera ids
    # What was stored as rejected, in arrival order: the validator's and the database's.
    rejections: list[Rejected] = field(default_factory=list)

    def add(self, other: BatchResult) -> None:
        """Count `other` (a part of the same batch) in."""
        self.stored += other.stored
        self.duplicates += other.duplicates
        self.rejected += other.rejected
        for kind, n in other.per_kind.items():
            self.per_kind[kind] += n
        for agent, ids in other.removed.items():
            self.removed[agent] = sorted({*self.removed.get(agent, []), *ids})
        self.rejections.extend(other.rejections)


class MessageRefused(Exception):
    """The database, or the driver converting for it, refused what a batch holds."""


def topic_name(message: Message) -> str:
    """The topic a message came on, as received."""
    if isinstance(message, Rejected):
        return message.topic
    return message.name


class IngestStore:
    """Applies batches of validated (and rejected) messages to the registry database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._dialect = engine.dialect.name
        self._health = health.writer_for(self._dialect)
        self._rows = RowWriter(self._dialect)
        self._intervals = IntervalWriter(self._dialect)

    # --- a batch -----------------------------------------------------------------------------

    def apply(self, batch: Sequence[Message]) -> BatchResult:
        """Store a batch; a message the database refuses is stored as rejected instead.
        RegistryError if the database is in trouble (nothing of the batch may be stored)."""
        try:
            result = self._apply_once(batch)
        except MessageRefused as exc:
            log.warning(
                "ingest: the database refused a batch of %d (%s); storing them one by one",
                len(batch),
                exc,
            )
            result = self._apply_alone(batch)
        # Logged once committed: a retried or refused batch removed nothing.
        for agent, removed in sorted(result.removed.items()):
            log.info(
                "agent %s no longer has camera(s) %s: removed from the registry",
                agent,
                ", ".join(removed),
            )
        return result

    def _apply_alone(self, batch: Sequence[Message]) -> BatchResult:
        """Each message in its own transaction, in arrival order; a refused one is stored
        as rejected with the database's reason."""
        total = BatchResult()
        for message in batch:
            try:
                total.add(self._apply_once([message]))
                continue
            except MessageRefused as exc:
                refused = exc
            rejection = Rejected(
                topic_name(message),
                short_reason(f"the database refused it: {refused}"),
                message.received_at,
            )
            try:
                total.add(self._apply_once([rejection]))
            except MessageRefused as again:
                # Not even its topic and reason could be stored: dropped, but said.
                log.error("ingest: dropped a message on %r: %s", rejection.topic, again)
        return total

    def _apply_once(self, batch: Sequence[Message]) -> BatchResult:
        """One transaction, retried on a deadlock or a lock wait. MessageRefused if what the
        batch holds was refused, RegistryError for anything else (the database's trouble)."""
        for attempt in range(1, ATTEMPTS + 1):
            try:
                with self.engine.begin() as connection:
                    return self._apply(connection, batch)
            except Exception as exc:  # sorted below: the batch's fault or the database's
                # The health statements run on the driver's cursor: its errors come raw.
                cause = exc.orig if isinstance(exc, StatementError) and exc.orig else exc
                first_line = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
                if self._retryable(cause) and attempt < ATTEMPTS:
                    log.info("ingest batch retried (%s)", first_line)
                    time.sleep(RETRY_PAUSE_S * attempt)
                    continue
                if not self._refusal(cause):
                    raise RegistryError(f"database refused an ingest batch: {first_line}") from exc
                if not isinstance(cause, self._dbapi.Error | OverflowError | ValueError):
                    # Neither the database's word nor a driver's conversion: our code met
                    # a value it did not expect. The message is rejected; the bug is logged.
                    log.error("ingest: storing a batch failed", exc_info=exc)
                raise MessageRefused(f"{type(cause).__name__}: {first_line}") from exc
        raise AssertionError("unreachable")

    @property
    def _dbapi(self) -> Any:
        """The driver's module (PEP 249: its Error, DataError, ... classes)."""
        return self.engine.dialect.loaded_dbapi

    def _refusal(self, cause: BaseException) -> bool:
        """Refused for a value the batch holds: the database's data and integrity errors
        (a number out of range, a string too long) and errors raised before the database
        saw it (a driver that cannot convert a value). Anything else of the database's
        (connection, disk, locks, a missing table, a permission) is its trouble, and the
        batch waits for it rather than be lost as rejected."""
        dbapi = self._dbapi
        if isinstance(cause, dbapi.DataError | dbapi.IntegrityError):
            return True
        return not isinstance(cause, dbapi.Error | SQLAlchemyError | OSError)

    def _retryable(self, cause: BaseException) -> bool:
        if self._dialect == "postgresql":
            return getattr(cause, "sqlstate", None) in RETRYABLE_SQLSTATES
        text = str(cause)
        return isinstance(cause, self._dbapi.OperationalError) and (
            "locked" in text or "busy" in text
        )

    def _apply(self, connection: Connection, batch: Sequence[Message]) -> BatchResult:
        result = BatchResult()
        by_kind: dict[Kind, list[Accepted]] = defaultdict(list)
        rejected: list[Rejected] = []
        last_seen: dict[str, float] = {}
        for message in batch:
            if isinstance(message, Rejected):
                rejected.append(message)
                continue
            if isinstance(message, Withdrawn):
                # Elsewhere an empty payload only clears a retained message (the agent
                # tidying up, or an operator): nothing to store, nothing wrong.
                if message.topic.kind is not Kind.HEALTH:
                    log.debug("ignored an empty (retained-deleting) message on %s", message.name)
                continue
            by_kind[message.topic.kind].append(message)
            agent = message.topic.agent
            last_seen[agent] = max(last_seen.get(agent, 0.0), message.received_at)
            result.per_kind[message.topic.kind.value] += 1
        result.rejected = len(rejected)
        result.stored = len(batch) - len(rejected)
        result.rejections = rejected
        if rejected:
            connection.execute(
                rejected_messages.insert(),
                [
                    {
                        "topic": storable(m.topic),
                        "reason": storable(m.reason),
                        "received_at": m.received_at,
                    }
                    for m in rejected
                ],
            )
        # Inserts of new rows first (no shared row locks), then cameras, then agents.
        new_audit = self._rows.insert_audit(connection, by_kind[Kind.AUDIT])
        births = [m for m in by_kind[Kind.STATE] if m.payload["state"] == "online"]
        listed = self._rows.upsert_birth_cameras(connection, births)
        new_reports = self._apply_health(connection, by_kind[Kind.HEALTH])
        # After the reports: one that arrived before its camera's removal must not make
        # the row again.
        result.removed = self._rows.remove_cameras(connection, listed, _withdrawn(batch))
        if last_seen:
            self._touch_agents(connection, last_seen)
        result.duplicates = (len(by_kind[Kind.HEALTH]) - new_reports) + (
            len(by_kind[Kind.AUDIT]) - sum(new_audit.values())
        )
        for message in by_kind[Kind.STATE]:
            self._rows.apply_state(connection, message)
        self._rows.update_audit_heads(connection, new_audit)
        self._rows.upsert_statuses(connection, by_kind[Kind.STATUS])
        return result

    # --- health (registry/ingest/health.py writes it, on the driver's cursor) ------------

    def _apply_health(self, connection: Connection, reports: list[Accepted]) -> int:
        """History and camera rows; returns how many reports were new."""
        if not reports:
            return 0
        cursor = connection.connection.cursor()
        try:
            rows = health.history_rows(reports)
            inserted = self._health.insert_history(cursor, rows)
            fresh: list[tuple[health.HistoryRow, Accepted]] = []
            for row, message in zip(rows, reports, strict=True):
                key = (row[0], row[1], row[2], row[3])
                if key in inserted:
                    inserted.discard(key)  # a report twice in one batch counts once
                    fresh.append((row, message))
            if fresh:
                before = self._health.update_cameras(cursor, health.camera_changes(fresh))
                # The camera rows are locked now, and their open intervals were read then.
                self._intervals.apply(cursor, [message for _, message in fresh], before)
            return len(fresh)
        finally:
            cursor.close()

    def _touch_agents(self, connection: Connection, last_seen: dict[str, float]) -> None:
        """Every agent heard from gets a row and its newest last_seen."""
        cursor = connection.connection.cursor()
        try:
            self._health.touch_agents(cursor, last_seen)
        finally:
            cursor.close()


def _withdrawn(batch: Sequence[Message]) -> set[CameraKey]:
    """The cameras whose retained health was withdrawn (an empty payload) and that nothing
    later in the batch, a report or a birth listing them, says are there after all."""
    last_word: dict[CameraKey, bool] = {}  # True: withdrawn
    for message in batch:  # in arrival order
        if isinstance(message, Rejected) or message.topic.kind not in (Kind.HEALTH, Kind.STATE):
            continue
        agent, camera = message.topic.agent, message.topic.camera
        if isinstance(message, Withdrawn):
            if camera is not None:
                last_word[(agent, camera)] = True
        elif camera is not None:
            last_word[(agent, camera)] = False
        elif message.payload["state"] == "online":
            for described in message.payload["cameras"]:
                last_word[(agent, described["id"])] = False
    return {key for key, gone in last_word.items() if gone}
