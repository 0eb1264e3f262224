"""Writes an enrolment into `agents` and `cameras`, inside the caller's transaction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Table, select
from sqlalchemy.dialects import postgresql, sqlite

from registry.db.schema import agents, cameras
from registry.enrolment.request import CameraIn

__all__ = ["enrolled_key", "record_enrolment"]


def _upsert(
    connection: Connection, table: Table, values: dict[str, Any], keys: Sequence[str]
) -> None:
    """Insert, or update the given columns of the row with the same key. One statement, so
    two enrolments of the same new agent id cannot both try to insert it."""
    changes = [name for name in values if name not in keys]
    if connection.dialect.name == "postgresql":
        pg = postgresql.insert(table).values(values)
        connection.execute(
            pg.on_conflict_do_update(
                index_elements=list(keys), set_={name: pg.excluded[name] for name in changes}
            )
        )
    else:
        lite = sqlite.insert(table).values(values)
        connection.execute(
            lite.on_conflict_do_update(
                index_elements=list(keys), set_={name: lite.excluded[name] for name in changes}
            )
        )


def enrolled_key(connection: Connection, agent_id: str) -> str | None:
    """The thumbprint of the agent's enrolled key, if it has one."""
    row = connection.execute(
        select(agents.c.key_thumbprint).where(agents.c.agent_id == agent_id)
    ).first()
    return None if row is None else row.key_thumbprint


def record_enrolment(
    connection: Connection,
    agent_id: str,
    public_key: str,
    thumbprint: str,
    now: float,
    camera_list: Sequence[CameraIn],
) -> None:
    """Store the device key (raw Ed25519, base64url) and upsert the cameras it sent.

    Cameras the agent no longer lists stay: their history belongs to the registry, and the
    agent's birth message says which cameras it has now."""
    _upsert(
        connection,
        agents,
        {
            "agent_id": agent_id,
            "public_key": public_key,
            "key_thumbprint": thumbprint,
            "enrolled_at": now,
        },
        ["agent_id"],
    )
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
