"""The hot path of ingest: health reports into `health_history`, the cameras' current rows
and the agents' last_seen, written with the driver's own cursor.

Health is nearly all of the traffic (every camera, every minute). Through SQLAlchemy a
500-report batch cost ~50 ms on PostgreSQL just to build and parse one 500-row
multi-VALUES INSERT, plus an executemany UPDATE with a dozen CASEs per camera. Here each
column travels as one array (`unnest`), so PostgreSQL parses three short statements per
batch (psycopg prepares them after a few batches) whatever the batch size. SQLite runs
in-process: its prepared statements are cached by the driver and executed per row.

The loss-counting rules are those of store.py; both engines share the SET clause below.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import orjson

from registry.ingest.intervals import OPEN_SELECT
from registry.ingest.validate import Accepted, epoch

# One health_history row: agent, camera, bdseq, seq, ts, status, problems, payload, received.
HistoryRow = tuple[str, str, int, int, float, str, str, str, float]
ReportKey = tuple[str, str, int, int]
# The reports of one (camera, bdseq) in a batch, folded: agent, camera, bdseq, lowest seq,
# highest seq, count, then the newest report's status, problems, ts, footage oldest and
# newest, and the health object as received.
CameraChange = tuple[str, str, int, int, int, int, str, str, float, float | None, float | None, str]
# Prefixed so that no field shares a name with a column of `cameras` (unqualified names
# in the SET clause then mean the camera's column on both engines).
CHANGE_FIELDS = (
    "n_agent",
    "n_camera",
    "n_bdseq",
    "n_lo",
    "n_hi",
    "n_k",
    "n_status",
    "n_problems",
    "n_ts",
    "n_oldest",
    "n_newest",
    "n_health",
)


def _dumps(value: Any) -> str:
    # The same text as json.dumps(separators=(",", ":"), ensure_ascii=False) for the
    # schema's problem lists, in a quarter of the time.
    return orjson.dumps(value).decode()


def history_rows(reports: Sequence[Accepted]) -> list[HistoryRow]:
    rows: list[HistoryRow] = []
    for m in reports:
        p = m.payload
        assert m.topic.camera is not None
        ts = epoch(p["ts"])
        assert ts is not None
        rows.append(
            (
                m.topic.agent,
                m.topic.camera,
                p["bdseq"],
                p["seq"],
                ts,
                p["status"],
                _dumps(p["problems"]),
                m.text,
                m.received_at,
            )
        )
    return rows


def camera_changes(new: Sequence[tuple[HistoryRow, Accepted]]) -> list[list[CameraChange]]:
    """Fold the new reports per (camera, bdseq), in rounds: round n holds each camera's
    n-th bdseq of this batch (oldest first), so one UPDATE never meets a camera twice and
    an agent restart inside one batch is applied old run first. Nearly always one round."""
    groups: dict[tuple[str, str, int], list[tuple[HistoryRow, Accepted]]] = {}
    for item in new:
        row = item[0]
        groups.setdefault((row[0], row[1], row[2]), []).append(item)
    rounds: list[list[CameraChange]] = []
    previous: tuple[str, str] | None = None
    depth = 0
    for key in sorted(groups):
        group = groups[key]
        depth = depth + 1 if previous == key[:2] else 0
        previous = key[:2]
        newest_row, newest = max(group, key=lambda item: item[0][3])
        footage = newest.payload["footage"]
        change: CameraChange = (
            key[0],
            key[1],
            key[2],
            min(item[0][3] for item in group),
            newest_row[3],
            len(group),
            newest_row[5],
            newest_row[6],
            newest_row[4],
            epoch(footage["oldest"]),
            epoch(footage["newest"]),
            newest.text,
        )
        if depth == len(rounds):
            rounds.append([])
        rounds[depth].append(change)
    return rounds


def new_camera_keys(rounds: list[list[CameraChange]]) -> list[tuple[str, str, int]]:
    """Each camera of the batch, in key order, with the newest bdseq it reported from."""
    newest: dict[tuple[str, str], int] = {}
    for changes in rounds:
        for c in changes:
            newest[(c[0], c[1])] = max(newest.get((c[0], c[1]), c[2]), c[2])
    return [(agent, camera, bdseq) for (agent, camera), bdseq in sorted(newest.items())]


def camera_set_clause(new: Callable[[str], str]) -> str:
    """SET of the camera UPDATE; `new(field)` is how the statement names a CHANGE_FIELDS
    value. Every expression sees the row as it was before the statement (both engines).
    CASE instead of GREATEST/max: the one spelling both engines share."""
    b, lo, hi, k = new("n_bdseq"), new("n_lo"), new("n_hi"), new("n_k")
    fresh = f"(bdseq IS NULL OR {b} > bdseq)"  # a new run (bdseq) of the agent
    same = f"({b} = bdseq)"
    newest = f"({fresh} OR ({same} AND {hi} > seq))"
    top = f"(CASE WHEN seq > {hi} THEN seq ELSE {hi} END)"
    bottom = f"(CASE WHEN seq_first < {lo} THEN seq_first ELSE {lo} END)"
    missing_before = "(seq - seq_first + 1 - epoch_received)"
    missing_after = f"({top} - {bottom} + 1 - (epoch_received + {k}))"

    def current(column: str, field: str) -> str:
        return f"{column} = CASE WHEN {newest} THEN {new(field)} ELSE {column} END"

    return ", ".join(
        [
            f"received = received + {k}",
            f"missing = CASE WHEN {fresh} THEN missing + ({hi} - {lo} + 1 - {k}) "
            f"WHEN {same} THEN missing - {missing_before} + {missing_after} ELSE missing END",
            f"seq_first = CASE WHEN {fresh} THEN {lo} WHEN {same} THEN {bottom} ELSE seq_first END",
            f"seq = CASE WHEN {fresh} THEN {hi} WHEN {same} THEN {top} ELSE seq END",
            f"epoch_received = CASE WHEN {fresh} THEN {k} WHEN {same} THEN epoch_received + {k} "
            "ELSE epoch_received END",
            f"bdseq = CASE WHEN {fresh} THEN {b} ELSE bdseq END",
            current("status", "n_status"),
            current("problems_json", "n_problems"),
            current("report_ts", "n_ts"),
            current("footage_oldest", "n_oldest"),
            current("footage_newest", "n_newest"),
            current("health_json", "n_health"),
        ]
    )


class HealthWriter(Protocol):
    """Writes health rows inside the caller's transaction, on its DBAPI cursor."""

    def insert_history(self, cursor: Any, rows: list[HistoryRow]) -> set[ReportKey]:
        """Insert the rows not held yet; return the keys of those inserted."""

    def update_cameras(self, cursor: Any, rounds: list[list[CameraChange]]) -> dict[Any, Any]:
        """Make missing camera rows, lock them in key order, apply the changes. No row is
        made from reports of a boot older than the agent's current one (agents.bdseq): such
        a camera is one the agent has dropped since (a stale retained report), or its
        newer birth has made the row already. Returns each camera's open intervals as they
        were before (intervals.OPEN_SELECT, read with the lock: no second read)."""

    def touch_agents(self, cursor: Any, last_seen: dict[str, float]) -> None:
        """Every agent heard from gets a row and its newest last_seen."""


HISTORY_COLUMNS = "agent_id, camera_id, bdseq, seq, ts, status, problems_json, payload, received_at"


class PostgresHealth:
    """One statement per step, each column one array parameter. Sent in binary (`%b`):
    psycopg's pure-Python text format escapes every quote of every JSON payload with a
    regex, which cost more than the whole insert (~0.2 s per 500 reports)."""

    _history = (
        f"INSERT INTO health_history ({HISTORY_COLUMNS}) "
        "SELECT * FROM unnest(%b::text[], %b::text[], %b::bigint[], %b::bigint[], "
        "%b::float8[], %b::text[], %b::text[], %b::text[], %b::float8[]) "
        "ON CONFLICT (agent_id, camera_id, bdseq, seq) DO NOTHING "
        "RETURNING agent_id, camera_id, bdseq, seq"
    )
    # Rows are made and then locked in key order, so concurrent workers do not deadlock
    # (LockRows sits above the Sort: rows are locked as they come out sorted).
    _cameras = (
        "INSERT INTO cameras (agent_id, camera_id, received, missing, epoch_received) "
        "SELECT a, c, 0, 0, 0 FROM unnest(%b::text[], %b::text[], %b::bigint[]) AS u(a, c, b) "
        "WHERE NOT EXISTS "
        "(SELECT 1 FROM agents WHERE agents.agent_id = u.a AND agents.bdseq > u.b) "
        "ON CONFLICT (agent_id, camera_id) DO NOTHING"
    )
    _lock = (
        f"SELECT {OPEN_SELECT} FROM cameras JOIN unnest(%b::text[], %b::text[]) AS u(a, c) "
        "ON agent_id = u.a AND camera_id = u.c "
        "ORDER BY agent_id, camera_id FOR UPDATE OF cameras"
    )
    _update = (
        "UPDATE cameras SET "
        + camera_set_clause(lambda field: f"u.{field}")
        + " FROM unnest(%b::text[], %b::text[], %b::bigint[], %b::bigint[], %b::bigint[], "
        "%b::bigint[], %b::text[], %b::text[], %b::float8[], %b::float8[], %b::float8[], "
        f"%b::text[]) AS u({', '.join(CHANGE_FIELDS)}) "
        "WHERE cameras.agent_id = u.n_agent AND cameras.camera_id = u.n_camera"
    )
    _agents = (
        "INSERT INTO agents (agent_id, last_seen, audit_entries) "
        "SELECT a, s, 0 FROM unnest(%b::text[], %b::float8[]) AS u(a, s) "
        "ON CONFLICT (agent_id) DO UPDATE SET last_seen = "
        "GREATEST(COALESCE(agents.last_seen, 0), EXCLUDED.last_seen)"
    )

    def insert_history(self, cursor: Any, rows: list[HistoryRow]) -> set[ReportKey]:
        cursor.execute(self._history, [list(column) for column in zip(*rows, strict=True)])
        return {tuple(row) for row in cursor.fetchall()}

    def update_cameras(self, cursor: Any, rounds: list[list[CameraChange]]) -> dict[Any, Any]:
        keys = new_camera_keys(rounds)
        agents, cameras = [k[0] for k in keys], [k[1] for k in keys]
        cursor.execute(self._cameras, [agents, cameras, [k[2] for k in keys]])
        cursor.execute(self._lock, [agents, cameras])
        before = {(row[0], row[1]): row[2:] for row in cursor.fetchall()}
        for changes in rounds:
            cursor.execute(self._update, [list(column) for column in zip(*changes, strict=True)])
        return before

    def touch_agents(self, cursor: Any, last_seen: dict[str, float]) -> None:
        items = sorted(last_seen.items())
        cursor.execute(self._agents, [[a for a, _ in items], [s for _, s in items]])


class SqliteHealth:
    """SQLite: the driver caches each prepared statement; rows are executed one by one,
    which in-process costs microseconds (and tells which history rows were new)."""

    _history = (
        f"INSERT INTO health_history ({HISTORY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (agent_id, camera_id, bdseq, seq) DO NOTHING"
    )
    # INSERT ... SELECT with ON CONFLICT needs a WHERE in SQLite (a parsing ambiguity).
    _cameras = (
        "INSERT INTO cameras (agent_id, camera_id, received, missing, epoch_received) "
        "SELECT :a, :c, 0, 0, 0 WHERE NOT EXISTS "
        "(SELECT 1 FROM agents WHERE agent_id = :a AND bdseq > :b) "
        "ON CONFLICT (agent_id, camera_id) DO NOTHING"
    )
    _update = (
        "UPDATE cameras SET "
        + camera_set_clause(lambda field: f":{field}")
        + " WHERE agent_id = :n_agent AND camera_id = :n_camera"
    )
    _agents = (
        "INSERT INTO agents (agent_id, last_seen, audit_entries) VALUES (?, ?, 0) "
        "ON CONFLICT (agent_id) DO UPDATE SET last_seen = "
        "max(coalesce(agents.last_seen, 0), excluded.last_seen)"
    )

    def insert_history(self, cursor: Any, rows: list[HistoryRow]) -> set[ReportKey]:
        inserted: set[ReportKey] = set()
        for row in rows:
            cursor.execute(self._history, row)
            if cursor.rowcount == 1:
                inserted.add((row[0], row[1], row[2], row[3]))
        return inserted

    def update_cameras(self, cursor: Any, rounds: list[list[CameraChange]]) -> dict[Any, Any]:
        cursor.executemany(
            self._cameras, [{"a": a, "c": c, "b": b} for a, c, b in new_camera_keys(rounds)]
        )
        # The batch holds SQLite's write lock since its first insert: nobody changes them.
        before: dict[Any, Any] = {}
        for agent, camera, _ in new_camera_keys(rounds):
            cursor.execute(
                f"SELECT {OPEN_SELECT} FROM cameras WHERE agent_id = ? AND camera_id = ?",
                (agent, camera),
            )
            for row in cursor.fetchall():
                before[(row[0], row[1])] = row[2:]
        for changes in rounds:
            cursor.executemany(
                self._update, [dict(zip(CHANGE_FIELDS, c, strict=True)) for c in changes]
            )
        return before

    def touch_agents(self, cursor: Any, last_seen: dict[str, float]) -> None:
        cursor.executemany(self._agents, sorted(last_seen.items()))


def writer_for(dialect: str) -> HealthWriter:
    return PostgresHealth() if dialect == "postgresql" else SqliteHealth()
