"""The registry's web application: pages, JSON API, and the mounts for evidence intake and
enrolment (which authenticate by their own bearer token or one-time code)."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Receive, Scope, Send

from contract.common.login_limit import Refused, SlotsFull
from registry.ingest.ratelimit import RateLimitedLog
from registry.web import auth, user_audit
from registry.web.access import (
    SESSION_COOKIE,
    Caller,
    LoginRequired,
    identify,
    remote_of,
    require,
    state_of,
)
from registry.web.auth import LoginRefused, Role
from registry.web.camera_list import camera_rows
from registry.web.login_limits import LoginLimits
from registry.web.state import AppState

log = logging.getLogger(__name__)
# A client hammering the login after its lock-out gets a 429 per try; the log says so once
# in a while, not once per try (and no audit row: no password was checked).
_refusals = RateLimitedLog(log)

HERE = Path(__file__).parent
LEAFLET_DIR = HERE / "assets" / "node_modules" / "leaflet" / "dist"
templates = Jinja2Templates(directory=str(HERE / "templates"))

# Both roles see the health map: police pick cameras on it, operators keep them working.
ANY_ROLE = (Role.POLICE, Role.OPERATOR)
# When every login slot is taken: a few checks' time.
BUSY_RETRY_S = 2


def page(
    request: Request, name: str, caller: Caller | None, status: int = 200, **context: Any
) -> Response:
    state = state_of(request)
    return templates.TemplateResponse(
        request,
        name,
        {
            "user": caller.user if caller else None,
            "csrf": caller.session.csrf if caller and caller.session else "",
            "map": state.config.map,
            "leaflet": LEAFLET_DIR.is_dir(),
            "status": status,
            **context,
        },
        status_code=status,
    )


async def login_form(request: Request) -> Response:
    if await run_in_threadpool(identify, request) is not None:
        return RedirectResponse("/", 303)
    return page(request, "login.html", None, error=None)


def limits_of(request: Request) -> LoginLimits:
    limits: LoginLimits = request.app.state.login_limits
    return limits


async def login(request: Request) -> Response:
    state = state_of(request)
    limits = limits_of(request)
    form = await request.form()
    name, password = str(form.get("username", "")), str(form.get("password", ""))
    address = remote_of(request) or "?"
    settings = state.config.login
    # Counted before the check, one check per address at a time (contract/common/login_limit.py).
    attempt = limits.addresses.begin(address)
    if isinstance(attempt, Refused):
        _refusals.warning("login refused from %s: %s", address, attempt.reason)
        return _too_many(request, attempt)
    with attempt:
        try:
            user = await limits.authenticate(state.engine, name, password)
        except SlotsFull:
            attempt.not_checked()
            _refusals.warning("login from %s not checked: too many logins waiting", address)
            return _busy(request)
        except LoginRefused as exc:
            reason = exc.reason
            if attempt.failed():
                reason += f"; address locked for {settings.lockout_for:.0f} s"
            log.warning("login refused from %s: %s", address, reason)
            await run_in_threadpool(
                user_audit.record,
                state.engine,
                None,
                "login_refused",
                remote_of(request),
                tried=name,
                reason=reason,
            )
            return page(request, "login.html", None, error=str(exc))
        attempt.succeeded()
    secret, _ = await run_in_threadpool(
        auth.start_session, state.engine, user, settings.session_lifetime
    )
    await run_in_threadpool(user_audit.record, state.engine, user.name, "login", remote_of(request))
    response = RedirectResponse("/", 303)
    response.set_cookie(
        SESSION_COOKIE,
        secret,
        max_age=int(settings.session_lifetime),
        httponly=True,
        samesite="strict",
        secure=state.config.http.base_url.startswith("https://"),
    )
    return response


def _too_many(request: Request, refused: Refused) -> Response:
    """429 with Retry-After; no password was checked."""
    wait = math.ceil(refused.retry_after)
    if refused.locked:
        error = (
            "too many failed logins from your address: "
            f"try again in {max(1, math.ceil(wait / 60))} minute(s)"
        )
    else:
        error = "another login from your address is still being checked: try again in a moment"
    response = page(request, "login.html", None, 429, error=error)
    response.headers["Retry-After"] = str(wait)
    return response


def _busy(request: Request) -> Response:
    """503: the login was not checked and does not count; the client may retry soon."""
    error = "the registry is busy checking other logins: try again in a moment"
    response = page(request, "login.html", None, 503, error=error)
    response.headers["Retry-After"] = str(BUSY_RETRY_S)
    return response


async def logout(request: Request) -> Response:
    await require(request)
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        await run_in_threadpool(auth.end_session, state_of(request).engine, cookie)
    response = RedirectResponse("/login", 303)
    response.delete_cookie(SESSION_COOKIE)
    return response


def _problem_codes() -> list[str]:
    """The agents' problem vocabulary, from the health schema (the contract)."""
    schema = json.loads((HERE.parent / "schemas" / "health.schema.json").read_text())
    codes: list[str] = schema["properties"]["problems"]["items"]["enum"]
    return codes


PROBLEM_CODES = _problem_codes()


async def dashboard(request: Request) -> Response:
    caller = await require(request, *ANY_ROLE)
    return page(request, "dashboard.html", caller, problems=PROBLEM_CODES)


async def cameras_api(request: Request) -> Response:
    await require(request, *ANY_ROLE)
    rows = await run_in_threadpool(camera_rows, state_of(request).engine)
    return JSONResponse({"cameras": rows})


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    wants_page = request.method == "GET" and not request.url.path.startswith("/api/")
    if isinstance(exc, LoginRequired) and wants_page:
        return RedirectResponse("/login", 303)
    if wants_page:
        caller = await run_in_threadpool(identify, request)
        return page(request, "error.html", caller, exc.status_code, message=exc.detail)
    return JSONResponse({"error": exc.detail}, status_code=exc.status_code)


def content_policy(tile_url: str) -> bytes:
    """Scripts, styles and data only from the registry itself; map tiles also from the tile
    server. Agents supply camera names: even if one slipped into the page as markup, no
    script of theirs would run."""
    tiles = ""
    if tile_url:
        parts = urlsplit(tile_url.replace("{s}", "a"))
        # Leaflet's {s} picks among subdomains: allow the tile host's siblings.
        host = parts.netloc.replace("a.", "*.", 1) if "{s}" in tile_url else parts.netloc
        tiles = f" {parts.scheme}://{host}"
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; "
        f"img-src 'self' data:{tiles}; connect-src 'self'; object-src 'none'; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ).encode()


class SecurityHeaders:
    """No framing, no sniffing, no referrer leaks; scripts and styles only from here."""

    def __init__(self, app: ASGIApp, policy: bytes) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [
                    (b"x-frame-options", b"DENY"),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"),
                    (b"cache-control", b"no-store"),
                    (b"content-security-policy", self.policy),
                ]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)  # type: ignore[arg-type]


def build_app(state: AppState, extra: Sequence[BaseRoute] = ()) -> Starlette:
    """The whole web app; `extra` are routes of other areas (intake, enrolment, police)."""
    routes: list[BaseRoute] = [
        Route("/login", login_form, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/", dashboard),
        Route("/api/v1/cameras", cameras_api),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
        *extra,
    ]
    if LEAFLET_DIR.is_dir():
        routes.append(Mount("/vendor/leaflet", StaticFiles(directory=LEAFLET_DIR)))
    else:
        log.warning("Leaflet is not installed in %s (npm ci there); maps show no map", LEAFLET_DIR)
    app = Starlette(
        routes=routes,
        middleware=[Middleware(SecurityHeaders, policy=content_policy(state.config.map.tile_url))],
        exception_handlers={HTTPException: _http_error},
    )
    app.state.registry = state
    app.state.login_limits = LoginLimits(state.config.login)
    return app
