"""`/api/v1/enrol-codes`: operators (role `operator`) make and list one-time codes over the
web API, as `camera-registry enrol-code` does on the server: each for one agent id, and
for an enrolled one only as a re-enrolment that replaces its key (`"replace": true`).
Mounted by the web app (`build_app(state, extra=operator_routes())`), which supplies
login, CSRF and AppState."""

from __future__ import annotations

import json

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from contract.durations import parse_duration
from contract.timestamps import rfc3339_epoch
from registry.enrolment.codes import CodeRefused, issue_code, list_open_codes
from registry.enrolment.credentials import CredentialError, broker_users
from registry.enrolment.names import service_names
from registry.web import user_audit
from registry.web.access import require, state_of
from registry.web.auth import Role

__all__ = ["CODES_PATH", "MAX_TTL_S", "operator_routes"]

CODES_PATH = "/api/v1/enrol-codes"
MAX_TTL_S = 30 * 86400.0  # a code that lives for months is a standing key, not a one-time one
MAX_BODY_BYTES = 1024


class _BadField(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _parse(body: bytes, default_ttl: float) -> tuple[str, float, bool]:
    """The agent id, lifetime and replace flag of `{"agent", "ttl", "replace"}`."""
    if len(body) > MAX_BODY_BYTES:
        raise _BadField("(body)", "body too large")
    try:
        data = json.loads(body) if body.strip() else {}
    except ValueError as exc:
        raise _BadField("(body)", f"not JSON: {exc}") from None
    if not isinstance(data, dict) or set(data) - {"agent", "ttl", "replace"}:
        raise _BadField("(body)", 'expected {"agent": "shop-42", "ttl": "24h", "replace": false}')
    agent = data.get("agent")
    if not isinstance(agent, str):
        raise _BadField("agent", "the agent id the code is for is missing: a code enrols one id")
    replace = data.get("replace", False)
    if not isinstance(replace, bool):
        raise _BadField("replace", "must be true or false")
    ttl = default_ttl
    if "ttl" in data:
        try:
            ttl = parse_duration(data["ttl"])
        except (ValueError, TypeError) as exc:
            raise _BadField("ttl", str(exc)) from None
    if not 0 < ttl <= MAX_TTL_S:
        raise _BadField("ttl", f"ttl must be above 0 and at most {MAX_TTL_S:.0f} s")
    return agent, ttl, replace


async def create_code(request: Request) -> JSONResponse:
    caller = await require(request, Role.OPERATOR)
    state = state_of(request)
    try:
        agent, ttl, replace = _parse(await request.body(), state.config.enrolment.code_ttl)
        issued = await run_in_threadpool(
            lambda: issue_code(
                state.engine,
                caller.user.name,
                agent,
                ttl,
                service_names=service_names(state.config),
                broker_users=broker_users(state.config.enrolment),
                replace=replace,
            )
        )
    except _BadField as exc:
        return JSONResponse({"error": "malformed", "field": exc.field, "message": str(exc)}, 400)
    except CredentialError as exc:
        return JSONResponse({"error": "unavailable", "message": str(exc)}, 503)
    except CodeRefused as exc:
        # Not a malformed request: the agent's state (or the name) rules the code out.
        return JSONResponse({"error": "refused", "field": "agent", "message": str(exc)}, 409)
    await run_in_threadpool(
        user_audit.record,
        state.engine,
        caller.user.name,
        "enrol_code_create",
        caller.remote,
        agent=issued.agent,
        replaces_key=issued.replaces_key,
        expires_at=rfc3339_epoch(issued.expires_at, "seconds"),
    )
    # The only time the code's text exists outside the owner's hands: not logged, not stored.
    return JSONResponse(
        {
            "code": issued.code,
            "agent": issued.agent,
            "replaces_key": issued.replaces_key,
            "created_by": issued.created_by,
            "expires_at": rfc3339_epoch(issued.expires_at, "seconds"),
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
                "agent": item.agent,
                "replaces_key": item.replaces_key,
                "created_by": item.created_by,
                "created_at": rfc3339_epoch(item.created_at, "seconds"),
                "expires_at": rfc3339_epoch(item.expires_at, "seconds"),
            }
            for item in codes
        ]
    )


def operator_routes() -> list[BaseRoute]:
    return [
        Route(CODES_PATH, create_code, methods=["POST"]),
        Route(CODES_PATH, open_codes, methods=["GET"]),
    ]
