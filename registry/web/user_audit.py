"""The registry's own audit trail: every login, police search and request, with who, when,
from where and why. Append-only from the application's side."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, select

from registry.db.schema import user_audit


@dataclass(frozen=True)
class AuditRecord:
    ts: float
    username: str | None
    action: str
    remote: str | None
    detail: dict[str, Any]


def record(
    engine: Engine, username: str | None, action: str, remote: str | None, **detail: Any
) -> None:
    with engine.begin() as db:
        db.execute(
            user_audit.insert().values(
                ts=time.time(),
                username=username,
                action=action,
                remote=remote,
                detail=json.dumps(detail, sort_keys=True, default=str),
            )
        )


def recent(engine: Engine, limit: int = 200, action: str | None = None) -> list[AuditRecord]:
    query = select(user_audit).order_by(user_audit.c.id.desc()).limit(limit)
    if action is not None:
        query = query.where(user_audit.c.action == action)
    with engine.connect() as db:
        rows = db.execute(query).all()
    return [
        AuditRecord(row.ts, row.username, row.action, row.remote, json.loads(row.detail))
        for row in rows
    ]
