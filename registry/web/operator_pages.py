"""The operator's enrolment page: make a one-time code for an owner (through the operator
API, registry/enrolment/operator_api.py), see the codes still open and the agents enrolled."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, func, select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from contract.timestamps import rfc3339_epoch
from registry.db.schema import agents, cameras
from registry.web.access import require, state_of
from registry.web.app import page
from registry.web.auth import Role

AGENTS_PATH = "/api/v1/enrolled-agents"
# What the validity menu offers; the operator API accepts any duration up to 30 days.
VALIDITY_CHOICES = ("1h", "4h", "24h", "3d", "7d", "30d")


def enrolled_agents(engine: Engine) -> list[dict[str, Any]]:
    """Every agent that enrolled a device key, newest enrolment first, with its cameras."""
    counts = (
        select(cameras.c.agent_id, func.count().label("cameras"))
        .group_by(cameras.c.agent_id)
        .subquery()
    )
    query = (
        select(
            agents.c.agent_id,
            agents.c.key_thumbprint,
            agents.c.enrolled_at,
            agents.c.state,
            agents.c.last_seen,
            func.coalesce(counts.c.cameras, 0).label("cameras"),
        )
        .select_from(agents.outerjoin(counts, counts.c.agent_id == agents.c.agent_id))
        .where(agents.c.enrolled_at.is_not(None))
        .order_by(agents.c.enrolled_at.desc(), agents.c.agent_id)
    )
    with engine.connect() as db:
        rows = db.execute(query).all()
    return [
        {
            "agent": row.agent_id,
            "key_thumbprint": row.key_thumbprint,
            "enrolled_at": rfc3339_epoch(row.enrolled_at, "seconds"),
            "state": row.state,
            "last_seen": rfc3339_epoch(row.last_seen, "seconds"),
            "cameras": int(row.cameras),
        }
        for row in rows
    ]


def _default_validity(seconds: float) -> str:
    """The config's code_ttl as one of the menu's choices when it is one, else in seconds."""
    for choice in VALIDITY_CHOICES:
        amount, unit = int(choice[:-1]), choice[-1]
        if amount * {"h": 3600, "d": 86400}[unit] == seconds:
            return choice
    return f"{seconds:.0f}s"


async def enrolment_page(request: Request) -> Response:
    caller = await require(request, Role.OPERATOR)
    config = state_of(request).config
    default = _default_validity(config.enrolment.code_ttl)
    choices = (
        list(VALIDITY_CHOICES) if default in VALIDITY_CHOICES else [default, *VALIDITY_CHOICES]
    )
    return page(
        request,
        "enrolment.html",
        caller,
        registry_url=config.http.base_url,
        validity_choices=choices,
        default_validity=default,
    )


async def agents_api(request: Request) -> Response:
    await require(request, Role.OPERATOR)
    rows = await run_in_threadpool(enrolled_agents, state_of(request).engine)
    return JSONResponse({"agents": rows})


def routes() -> list[BaseRoute]:
    return [Route("/enrolment", enrolment_page), Route(AGENTS_PATH, agents_api)]
