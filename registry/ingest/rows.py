"""The rows one ingest batch writes besides health, per table, through SQLAlchemy: the
cameras a birth describes or no longer lists, the agents' state, audit entries and each
agent's audit head, and request statuses.

Each method runs inside the batch's transaction (store.py) and is called in its lock
order; health_history, the cameras' health columns and last_seen are health.py's.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    String,
    Table,
    and_,
    bindparam,
    delete,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from registry.db.schema import agent_audit, agents, cameras, request_status, requests
from registry.ingest.validate import Accepted, epoch

# What a birth says of its agent's cameras: its bdseq and every camera id it lists.
Listed = dict[str, tuple[int, set[str]]]
CameraKey = tuple[str, str]


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class RowWriter:
    """Each table's statements, in one engine's dialect (its upserts differ)."""

    def __init__(self, dialect: str) -> None:
        self._dialect = dialect

    def _insert(self, table: Table) -> Any:
        """INSERT with ON CONFLICT support in this engine's dialect."""
        if self._dialect == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)

    # --- state -------------------------------------------------------------------------------

    def upsert_birth_cameras(self, connection: Connection, births: list[Accepted]) -> Listed:
        """Where each camera is and what it can see, from the agent's birth; returns, per
        agent, what its newest birth lists (old retained births are skipped)."""
        listed: Listed = {}
        if not births:
            return listed
        rows = connection.execute(
            select(agents.c.agent_id, agents.c.bdseq).where(
                agents.c.agent_id.in_({m.topic.agent for m in births})
            )
        )
        newest: dict[str, int] = {row.agent_id: row.bdseq or 0 for row in rows}
        for m in births:
            agent = m.topic.agent
            newest[agent] = max(newest.get(agent, 0), m.payload["bdseq"])
        described: dict[CameraKey, dict[str, Any]] = {}
        for m in births:  # in arrival order: a later birth of the same boot wins
            agent, bdseq = m.topic.agent, m.payload["bdseq"]
            if bdseq < newest[agent]:
                continue  # an old retained birth: the agent has started since
            listed[agent] = (bdseq, {camera["id"] for camera in m.payload["cameras"]})
            for camera in m.payload["cameras"]:
                location = camera["location"] or {}
                described[(agent, camera["id"])] = {
                    "agent_id": agent,
                    "camera_id": camera["id"],
                    "name": camera["name"],
                    "lat": location.get("lat"),
                    "lon": location.get("lon"),
                    "bearing_deg": location.get("bearing_deg"),
                    "fov_deg": location.get("fov_deg"),
                    "range_m": location.get("range_m"),
                    "dori_json": None if camera["dori_m"] is None else _dumps(camera["dori_m"]),
                }
        if not described:
            return listed
        statement = self._insert(cameras)
        columns = ("name", "lat", "lon", "bearing_deg", "fov_deg", "range_m", "dori_json")
        statement = statement.on_conflict_do_update(
            index_elements=["agent_id", "camera_id"],
            set_={name: statement.excluded[name] for name in columns},
        )
        connection.execute(statement, [described[key] for key in sorted(described)])
        return listed

    def remove_cameras(
        self, connection: Connection, listed: Listed, withdrawn: set[CameraKey]
    ) -> dict[str, list[str]]:
        """Delete the cameras a birth no longer lists or a withdrawal names; returns the
        removed ids per agent. One statement per agent, in key order (births are rare)."""
        c = cameras.c
        removed: dict[str, list[str]] = {}
        for agent in sorted(set(listed) | {key[0] for key in withdrawn}):
            conditions: list[ColumnElement[bool]] = []
            if agent in listed:
                bdseq, ids = listed[agent]
                # A camera that has reported from a later boot is not this birth's to drop.
                conditions.append(
                    and_(c.camera_id.not_in(sorted(ids)), or_(c.bdseq.is_(None), c.bdseq <= bdseq))
                )
            gone = sorted(camera for owner, camera in withdrawn if owner == agent)
            if gone:
                conditions.append(c.camera_id.in_(gone))
            rows = connection.execute(
                delete(cameras).where(c.agent_id == agent, or_(*conditions)).returning(c.camera_id)
            )
            ids_removed = sorted(rows.scalars())
            if ids_removed:
                removed[agent] = ids_removed
        return removed

    def apply_state(self, connection: Connection, message: Accepted) -> None:
        """Birth or offline, unless the agent has already started again (a newer bdseq)."""
        p = message.payload
        a = agents.c
        if p["state"] == "online":
            values: dict[str, Any] = {
                "state": "online",
                "bdseq": p["bdseq"],
                "version": p["version"],
                "offline_reason": None,
                "clock_synced": p["clock"]["synced"],
                "state_ts": epoch(p["ts"]),
            }
        else:
            # The will carries no ts: the broker sends it the moment the agent is gone.
            values = {
                "state": "offline",
                "bdseq": p["bdseq"],
                "offline_reason": p["reason"],
                "state_ts": message.received_at,
            }
        connection.execute(
            update(agents)
            .where(a.agent_id == message.topic.agent, or_(a.bdseq.is_(None), a.bdseq <= p["bdseq"]))
            .values(**values)
        )

    # --- audit -------------------------------------------------------------------------------

    def insert_audit(self, connection: Connection, entries: list[Accepted]) -> dict[str, int]:
        """Insert entries not held yet; returns how many were new, per agent."""
        new: dict[str, int] = defaultdict(int)
        if not entries:
            return new
        t = agent_audit.c
        statement = (
            self._insert(agent_audit)
            .on_conflict_do_nothing(index_elements=["agent_id", "hash"])
            .returning(t.agent_id)
        )
        rows = [
            {
                "agent_id": m.topic.agent,
                "entry": m.text,
                "received_at": m.received_at,
                "seq": m.payload["seq"],
                "hash": m.payload["hash"],
            }
            for m in entries
        ]
        for row in connection.execute(statement, rows):
            new[row.agent_id] += 1
        return new

    def update_audit_heads(self, connection: Connection, new: dict[str, int]) -> None:
        if not new:
            return
        t = agent_audit.c
        # The head is the entry with the highest seq, whatever order entries arrived in.
        head = (
            select(t.hash)
            .where(t.agent_id == agents.c.agent_id)
            .order_by(t.seq.desc(), t.id.desc())
            .limit(1)
            .scalar_subquery()
        )
        connection.execute(
            update(agents)
            .where(agents.c.agent_id == bindparam("p_agent", type_=String))
            .values(
                audit_entries=agents.c.audit_entries + bindparam("p_new", type_=BigInteger),
                audit_head=head,
            ),
            [{"p_agent": agent, "p_new": count} for agent, count in sorted(new.items())],
        )

    # --- request status ----------------------------------------------------------------------

    def upsert_statuses(self, connection: Connection, statuses: list[Accepted]) -> None:
        """The newest status of each request (by the agent's ts; a tie: the later arrival)."""
        if not statuses:
            return
        rows = []
        for m in statuses:
            p = m.payload
            progress = p["progress"] or {}
            rows.append(
                {
                    "agent_id": m.topic.agent,
                    "request_id": m.topic.request_id,
                    "state": p["state"],
                    "reason": p["reason"],
                    "bytes_sent": progress.get("bytes_sent"),
                    "bytes_total": progress.get("bytes_total"),
                    "manifest_sha256": p["manifest_sha256"],
                    "ts": epoch(p["ts"]),
                    "payload": m.text,
                }
            )
        statement = self._insert(request_status)
        columns = (
            "state",
            "reason",
            "bytes_sent",
            "bytes_total",
            "manifest_sha256",
            "ts",
            "payload",
        )
        statement = statement.on_conflict_do_update(
            index_elements=["agent_id", "request_id"],
            set_={name: statement.excluded[name] for name in columns},
            where=request_status.c.ts <= statement.excluded.ts,
        )
        # Executed one by one, in arrival order: two statuses of one request in a batch must
        # both be compared, and a multi-row upsert may not touch a row twice (PostgreSQL).
        for row in rows:
            connection.execute(statement, row)
        # The agent withdrew a request (a police withdrawal): its package is marked, and
        # the evidence intake takes nothing more for it.
        for row in rows:
            if row["state"] == "withdrawn":
                connection.execute(
                    update(requests)
                    .where(requests.c.request_id == row["request_id"])
                    .where(requests.c.agent_id == row["agent_id"])
                    .where(requests.c.withdrawn_at.is_(None))
                    .values(withdrawn_at=row["ts"])
                )
