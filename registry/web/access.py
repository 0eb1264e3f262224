"""Every page and API call is checked here: who is asking (session cookie or API token),
whether their role may, and for a browser session whether a state change carries the
session's CSRF token. Nothing in the registry is public."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request

from registry.web import auth
from registry.web.auth import Role, Session, User
from registry.web.state import AppState

log = logging.getLogger(__name__)

SESSION_COOKIE = "camreg_session"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class Caller:
    user: User
    session: Session | None  # None for an API token
    remote: str | None


class LoginRequired(HTTPException):
    """No valid session or token: pages redirect to the login form, the API answers 401."""

    def __init__(self) -> None:
        super().__init__(401, "log in first, or send 'Authorization: Bearer <API token>'")


def state_of(request: Request) -> AppState:
    state: AppState = request.app.state.registry
    return state


def remote_of(request: Request) -> str | None:
    return request.client.host if request.client else None


def identify(request: Request) -> Caller | None:
    state = state_of(request)
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        user = auth.user_of_api_token(state.engine, header[7:].strip())
        return None if user is None else Caller(user, None, remote_of(request))
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        session = auth.session_of(state.engine, cookie)
        if session is not None:
            return Caller(session.user, session, remote_of(request))
    return None


async def require(request: Request, *roles: Role) -> Caller:
    """The caller if logged in with one of `roles` (and, for a browser state change, the
    right CSRF token); otherwise 401 or 403 naming what is missing, and a log line."""
    # The database lookup runs in a worker thread: the event loop serves every request.
    caller = await run_in_threadpool(identify, request)
    if caller is None:
        log.info(
            "refused %s %s from %s: not logged in",
            request.method,
            request.url.path,
            remote_of(request),
        )
        raise LoginRequired()
    if roles and caller.user.role not in roles:
        log.warning(
            "refused %s %s for %s (role %s): needs %s",
            request.method,
            request.url.path,
            caller.user.name,
            caller.user.role,
            "/".join(roles),
        )
        raise HTTPException(403, f"this needs the role {' or '.join(roles)}")
    if caller.session is not None and request.method not in SAFE_METHODS:
        presented = request.headers.get(CSRF_HEADER)
        if presented is None and request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")
        ):
            form = await request.form()
            value = form.get(CSRF_FIELD)
            presented = value if isinstance(value, str) else None
        if not auth.csrf_matches(caller.session, presented):
            log.warning(
                "refused %s %s for %s: missing or wrong CSRF token",
                request.method,
                request.url.path,
                caller.user.name,
            )
            raise HTTPException(403, "missing or wrong CSRF token: reload the page and retry")
    return caller
