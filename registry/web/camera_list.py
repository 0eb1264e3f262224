"""The dashboard's view of every registered camera: position, view, health and footage."""

from __future__ import annotations

import json
import time
from typing import Any

from sqlalchemy import Engine, select

from contract.timestamps import rfc3339_epoch
from registry.db.schema import agents, cameras
from registry.judgement import judged

# A camera whose agent has not reported for this long is shown as stale, whatever it said.
STALE_AFTER_S = 3 * 60 * 60.0


def camera_rows(engine: Engine) -> list[dict[str, Any]]:
    """One JSON-ready dict per camera, ordered by agent and camera id."""
    query = (
        select(cameras, agents.c.state.label("agent_state"), agents.c.last_seen)
        .join(agents, agents.c.agent_id == cameras.c.agent_id, isouter=True)
        .order_by(cameras.c.agent_id, cameras.c.camera_id)
    )
    with engine.connect() as db:
        rows = db.execute(query).all()
    now = time.time()
    result = []
    for row in rows:
        # `pending`: it says ok, but its picture is not judged yet (registry/judgement.py).
        shown = judged(row.status, row.health_json)
        status = shown.status or "unknown"
        if row.agent_state == "offline":
            status = "offline"  # the agent's will: nothing it last said holds any more
        result.append(
            {
                "agent": row.agent_id,
                "camera": row.camera_id,
                "name": row.name,
                "lat": row.lat,
                "lon": row.lon,
                "bearing_deg": row.bearing_deg,
                "fov_deg": row.fov_deg,
                "range_m": row.range_m,
                "dori_m": json.loads(row.dori_json) if row.dori_json else None,
                "status": status,
                "problems": json.loads(row.problems_json) if row.problems_json else [],
                "judgement": shown.judgement,
                "accepted": list(shown.accepted),
                "agent_state": row.agent_state,
                "last_report": rfc3339_epoch(row.report_ts, "seconds"),
                "stale": row.report_ts is None or now - row.report_ts > STALE_AFTER_S,
                "footage_oldest": rfc3339_epoch(row.footage_oldest, "seconds"),
                "footage_newest": rfc3339_epoch(row.footage_newest, "seconds"),
                "reports_received": row.received,
                "reports_missing": row.missing,
            }
        )
    return result
