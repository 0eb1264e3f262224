"""`/api/v1/enrol-codes`: operators (role `operator`) make and list one-time codes over the
web API, as `camera-registry enrol-code` does on the server. Mounted by the web app
(`build_app(state, extra=operator_routes())`), which supplies login, CSRF and AppState."""

from __future__ import annotations

import json

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from agent.durations import parse_duration
from registry.enrolment.codes import issue_code, list_open_codes, rfc3339
from registry.web import user_audit
from registry.web.access import require, state_of
from registry.web.auth import Role

__all__ = ["CODES_PATH", "MAX_TTL_S", "operator_routes"]

CODES_PATH = "/api/v1/enrol-codes"
MAX_TTL_S = 30 * 86400.0  # a code that lives for months is a standing key, not a one-time one
MAX_BODY_BYTES = 1024


async def create_code(request: Request) -> JSONResponse:
    caller = await require(request, Role.OPERATOR)
    state = state_of(request)
    body = await request.body()
    ttl = state.config.enrolment.code_ttl
    if body.strip():
        try:
            if len(body) > MAX_BODY_BYTES:
                raise ValueError("body too large")
            data = json.loads(body)
            if not isinstance(data, dict) or set(data) - {"ttl"}:
                raise ValueError('expected {"ttl": "24h"} or an empty body')
            if "ttl" in data:
                ttl = parse_duration(data["ttl"])
            if not 0 < ttl <= MAX_TTL_S:
                raise ValueError(f"ttl must be above 0 and at most {MAX_TTL_S:.0f} s")
        except ValueError as exc:
            return JSONResponse({"error": "malformed", "field": "ttl", "message": str(exc)}, 400)
    issued = await run_in_threadpool(issue_code, state.engine, caller.user.name, ttl)
    await run_in_threadpool(
        user_audit.record,
        state.engine,
        caller.user.name,
        "enrol_code_create",
        caller.remote,
        expires_at=rfc3339(issued.expires_at),
    )
    # The only time the code's text exists outside the owner's hands: not logged, not stored.
    return JSONResponse(
        {
            "code": issued.code,
            "created_by": issued.created_by,
            "expires_at": rfc3339(issued.expires_at),
        },
        status_code=201,
    )


async def open_codes(request: Request) -> JSONResponse:
    await require(request, Role.OPERATOR)
    codes = await run_in_threadpool(list_open_codes, state_of(request).engine)
    return JSONResponse(
        [
            {
                "code_sha256": item.code_sha256,
                "created_by": item.created_by,
                "created_at": rfc3339(item.created_at),
                "expires_at": rfc3339(item.expires_at),
            }
            for item in codes
        ]
    )


def operator_routes() -> list[BaseRoute]:
    return [
        Route(CODES_PATH, create_code, methods=["POST"]),
        Route(CODES_PATH, open_codes, methods=["GET"]),
    ]
