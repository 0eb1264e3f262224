"""Writes an enrolment into `agents` and `cameras`, inside the caller's transaction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Table, select, update
from sqlalchemy.dialects import postgresql, sqlite

from registry.db.schema import agents, cameras
from registry.enrolment.request import CameraIn

__all__ = ["enrolled_key", "record_cameras", "record_first_key", "replace_key"]


def _upsert(
    connection: Connection,
    table: Table,
    values: dict[str, Any],
    keys: Sequence[str],
    only_if: Any = None,
) -> bool:
    """Insert, or update the given columns of the row with the same key (if `only_if`, a
    condition on the existing row, holds); whether a row was written. One statement, so
    two enrolments of the same new agent id cannot both try to insert it."""
    changes = [name for name in values if name not in keys]
    statement: postgresql.Insert | sqlite.Insert
    if connection.dialect.name == "postgresql":
        pg = postgresql.insert(table).values(values)
        statement = pg.on_conflict_do_update(
            index_elements=list(keys),
            set_={name: pg.excluded[name] for name in changes},
            where=only_if,
        )
    else:
        lite = sqlite.insert(table).values(values)
        statement = lite.on_conflict_do_update(
            index_elements=list(keys),
            set_={name: lite.excluded[name] for name in changes},
            where=only_if,
        )
    # RETURNING, not rowcount: psycopg reports -1 for an upsert.
    written = statement.returning(*(table.c[name] for name in keys))
    return connection.execute(written).first() is not None


def enrolled_key(connection: Connection, agent_id: str) -> str | None:
    """The thumbprint of the agent's enrolled key, if it has one."""
    row = connection.execute(
        select(agents.c.key_thumbprint).where(agents.c.agent_id == agent_id)
    ).first()
    return None if row is None else row.key_thumbprint


def record_first_key(
    connection: Connection, agent_id: str, public_key: str, thumbprint: str, now: float
) -> bool:
    """Store the device key (raw Ed25519, base64url) of an agent that has none; False, and
    nothing written, if it has one (enrolled meanwhile). A row without a key (the agent
    published before it enrolled) takes the key."""
    values = {
        "agent_id": agent_id,
        "public_key": public_key,
        "key_thumbprint": thumbprint,
        "enrolled_at": now,
    }
    return _upsert(connection, agents, values, ["agent_id"], agents.c.key_thumbprint.is_(None))


def replace_key(
    connection: Connection,
    agent_id: str,
    replaces: str,
    public_key: str,
    thumbprint: str,
    now: float,
) -> bool:
    """Replace the agent's device key if it is still the one `replaces` names; False, and
    nothing written, if the agent's key changed since the code was made."""
    result = connection.execute(
        update(agents)
        .where(agents.c.agent_id == agent_id, agents.c.key_thumbprint == replaces)
        .values(public_key=public_key, key_thumbprint=thumbprint, enrolled_at=now)
    )
    return result.rowcount == 1


def record_cameras(connection: Connection, agent_id: str, camera_list: Sequence[CameraIn]) -> None:
    """Upsert the cameras the agent sent.

    Cameras the agent no longer lists stay: their history belongs to the registry, and the
    agent's birth message says which cameras it has now."""
    for camera in camera_list:
        where = camera.location
        _upsert(
            connection,
            cameras,
            {
                "agent_id": agent_id,
                "camera_id": camera.id,
                "name": camera.name or camera.id,
                "lat": None if where is None else where.lat,
                "lon": None if where is None else where.lon,
                "bearing_deg": None if where is None else where.bearing_deg,
                "fov_deg": None if where is None else where.fov_deg,
                "range_m": None if where is None else where.range_m,
            },
            ["agent_id", "camera_id"],
        )
