"""The owner page as an ASGI app: login, cameras, snapshots, requests, audit log.

Every request first passes `LocalOnly` (the peer address must be in `owner_page.allow`),
then `OwnHostOnly` (the Host header must name this device), then `SecurityHeaders`.
Pages need a session from the owner password; every state change
(a POST) needs the session's CSRF token and, when the browser names one, our own Origin.
Refusals answer 400/401/403/429 and leave a log line naming the address; they change nothing."""

from __future__ import annotations

import functools
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agent.i18n import Translator, negotiate, translator
from agent.owner_page import auth, words
from agent.owner_page.auth import LoginGuard, Network, Session, Sessions
from agent.owner_page.snapshot import jpeg_of
from agent.owner_page.view import OwnerSources
from agent.quality.accepted import AcceptanceRefused
from agent.requests.store import RequestStoreError
from contract.common.login_limit import Refused, SlotsFull

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
SESSION_COOKIE = "camera_agent_owner"
CSRF_FIELD = "csrf"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# After a decision the page waits this long for the request desk to act on it, so the
# owner sees the new state rather than the old one.
DECISION_SETTLE_S = 3.0
# While a request is being worked on the requests page reloads itself this often.
REFRESH_S = 5
# When every login slot is taken: a few checks' time.
BUSY_RETRY_S = 2
BUSY_STATES = frozenset({"received", "waiting_clock", "approved", "exporting", "uploading"})
# No scripts at all; pictures and styles only from here.
CONTENT_POLICY = (
    b"default-src 'none'; script-src 'none'; style-src 'self'; img-src 'self'; "
    b"form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)

_templates = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)


@dataclass
class OwnerPage:
    """Everything the page's handlers share."""

    sources: OwnerSources
    data_dir: Path
    locale: str  # agent.locale: used when the browser names no language we have
    allow: tuple[Network, ...]
    sessions: Sessions = field(default_factory=Sessions)
    guard: LoginGuard = field(default_factory=LoginGuard)
    # Host names the page answers to (auth.local_host_names); IP literals always work.
    hosts: frozenset[str] = field(default_factory=auth.local_host_names)


class LoginRequired(HTTPException):
    def __init__(self) -> None:
        super().__init__(401, "log in first")


def owner_page_of(request: Request) -> OwnerPage:
    page: OwnerPage = request.app.state.owner_page
    return page


def remote_of(request: Request) -> str:
    return request.client.host if request.client else "?"


def translation(request: Request) -> tuple[str, Translator]:
    locale = negotiate(request.headers.get("accept-language"), owner_page_of(request).locale)
    return locale, translator(locale)


def render(
    request: Request,
    name: str,
    session: Session | None,
    status: int = 200,
    **context: Any,
) -> HTMLResponse:
    locale, _ = translation(request)
    html = _templates.get_template(name).render(
        _=_,
        ngettext=_.ngettext,
        locale=locale,
        csrf=session.csrf if session else "",
        logged_in=session is not None,
        path=request.url.path,
        **context,
    )
    return HTMLResponse(html, status_code=status)


def current_session(request: Request) -> Session | None:
    page = owner_page_of(request)
    return page.sessions.get(request.cookies.get(SESSION_COOKIE), auth.stored_hash(page.data_dir))


def _refuse(request: Request, status: int, why: str, detail: str) -> HTTPException:
    log.warning(
        "owner page: refused %s %s from %s: %s",
        request.method,
        request.url.path,
        remote_of(request),
        why,
    )
    return HTTPException(status, detail)


def _same_origin(request: Request) -> bool:
    """A browser names the page a form was sent from; it must be this page."""
    origin = request.headers.get("origin")
    if origin is None:
        return True  # not a browser, or an old one: the CSRF token still has to match
    return urlsplit(origin).netloc == request.headers.get("host", "")


async def require(request: Request) -> Session:
    """The session, and for a POST a matching CSRF token and origin; else 401/403 + log."""
    session = current_session(request)
    if session is None:
        if request.method not in SAFE_METHODS:
            raise _refuse(request, 401, "not logged in", "log in first")
        raise LoginRequired()
    if request.method not in SAFE_METHODS:
        if not _same_origin(request):
            raise _refuse(
                request,
                403,
                f"sent from another site ({request.headers.get('origin')})",
                "this form was sent from another site",
            )
        form = await request.form()
        value = form.get(CSRF_FIELD)
        if not auth.csrf_matches(session, value if isinstance(value, str) else None):
            raise _refuse(
                request,
                403,
                "missing or wrong CSRF token",
                "missing or wrong form token: reload the page and try again",
            )
    return session


# --- login ---------------------------------------------------------------------------------


async def login_form(request: Request) -> Response:
    if current_session(request) is not None:
        return RedirectResponse("/", 303)
    page = owner_page_of(request)
    return render(request, "login.html", None, error=None, no_password=_no_password(page))


def _no_password(page: OwnerPage) -> bool:
    return auth.stored_hash(page.data_dir) is None


async def login(request: Request) -> Response:
    page = owner_page_of(request)
    _ = translation(request)[1]
    remote = remote_of(request)
    if not _same_origin(request):
        raise _refuse(request, 403, "login sent from another site", "sent from another site")
    form = await request.form()
    password = form.get("password")
    password = password if isinstance(password, str) else ""
    stored = auth.stored_hash(page.data_dir)
    if stored is None:
        log.warning(
            "owner page: login refused from %s: no owner password is set "
            "(camera-agent owner-password)",
            remote,
        )
        return _wrong_password(request, _, no_password=True)
    # Counted before the check, one check per address at a time (contract/common/login_limit.py).
    attempt = page.guard.begin(remote)
    if isinstance(attempt, Refused):
        log.warning("owner page: login refused from %s: %s", remote, attempt.reason)
        return _too_many(request, _, attempt)
    with attempt:
        try:
            ok = await page.guard.slots.run(
                functools.partial(auth.password_matches, stored, password)
            )
        except SlotsFull:
            attempt.not_checked()
            log.warning("owner page: login from %s not checked: too many logins waiting", remote)
            return _busy(request, _)
        if not ok:
            why = "wrong password"
            if attempt.failed():
                why += f"; locked out for {auth.LOCKOUT_FOR_S:.0f} s"
            log.warning("owner page: login refused from %s: %s", remote, why)
            return _wrong_password(request, _, no_password=False)
        attempt.succeeded()
    secret, _session = page.sessions.start(stored)
    log.info("owner page: logged in from %s", remote)
    response = RedirectResponse("/", 303)
    response.set_cookie(
        SESSION_COOKIE,
        secret,
        max_age=int(page.sessions.lifetime),
        httponly=True,
        samesite="strict",
        # Plain HTTP on the local network: a Secure cookie would never come back.
        secure=request.url.scheme == "https",
    )
    return response


def _wrong_password(request: Request, _: Translator, *, no_password: bool) -> Response:
    error = _("Wrong password, or too many attempts: wait a few minutes and try again.")
    return render(request, "login.html", None, 401, error=error, no_password=no_password)


def _too_many(request: Request, _: Translator, refused: Refused) -> Response:
    """429 with Retry-After: the password was not checked at all."""
    if refused.locked:
        minutes = max(1, math.ceil(refused.retry_after / 60))
        ngettext = _.ngettext
        error = ngettext(
            "Too many wrong passwords from this device: wait %(minutes)d minute and try again.",
            "Too many wrong passwords from this device: wait %(minutes)d minutes and try again.",
            minutes,
        ) % {"minutes": minutes}
    else:
        error = _("Another login from this device is still being checked: try again in a moment.")
    response = render(request, "login.html", None, 429, error=error, no_password=False)
    response.headers["Retry-After"] = str(math.ceil(refused.retry_after))
    return response


def _busy(request: Request, _: Translator) -> Response:
    """503: the password was not checked and does not count; try again soon."""
    error = _("The device is busy checking other logins: try again in a moment.")
    response = render(request, "login.html", None, 503, error=error, no_password=False)
    response.headers["Retry-After"] = str(BUSY_RETRY_S)
    return response


async def logout(request: Request) -> Response:
    await require(request)
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        owner_page_of(request).sessions.end(cookie)
    response = RedirectResponse("/login", 303)
    response.delete_cookie(SESSION_COOKIE)
    return response


# --- pages ---------------------------------------------------------------------------------


async def cameras(request: Request) -> Response:
    session = await require(request)
    rows = await run_in_threadpool(owner_page_of(request).sources.camera_rows)
    return render(
        request,
        "cameras.html",
        session,
        cameras=rows,
        words=words,
        local_time=words.local_time,
        stamp=int(time.time()),
    )


async def snapshot(request: Request) -> Response:
    await require(request)
    camera_id = request.path_params["camera"]
    planes = owner_page_of(request).sources.picture(camera_id)
    if planes is None:
        raise HTTPException(404, "no picture of this camera yet")
    data = await run_in_threadpool(jpeg_of, planes)
    return Response(data, media_type="image/jpeg")


async def requests_page(request: Request) -> Response:
    session = await require(request)
    return await _requests(request, session)


async def _requests(
    request: Request, session: Session, status: int = 200, error: str | None = None
) -> Response:
    found = await run_in_threadpool(owner_page_of(request).sources.requests)
    busy = any(r.state in BUSY_STATES for r in found)
    return render(
        request,
        "requests.html",
        session,
        status,
        requests=found,
        words=words,
        local_time=words.local_time,
        refresh=REFRESH_S if busy else None,
        error=error,
    )


async def decision(request: Request) -> Response:
    session = await require(request)
    _ = translation(request)[1]
    request_id = request.path_params["request_id"]
    form = await request.form()
    choice = form.get("decision")
    if choice not in ("approve", "decline"):
        raise _refuse(request, 400, f"no decision ({choice!r})", "choose approve or decline")
    page = owner_page_of(request)
    try:
        await run_in_threadpool(page.sources.decide, request_id, choice == "approve")
    except (RequestStoreError, ValueError) as exc:
        log.warning("owner page: %s of request %s refused: %s", choice, request_id, exc)
        error = _("This request cannot be decided (any more): it was decided or has ended.")
        return await _requests(request, session, 409, error)
    log.info(
        "owner page: request %s: %s by the owner from %s", request_id, choice, remote_of(request)
    )
    await run_in_threadpool(_settle, page, request_id)
    return RedirectResponse(f"/requests#request-{request_id}", 303)


def _settle(page: OwnerPage, request_id: str) -> None:
    deadline = time.monotonic() + DECISION_SETTLE_S
    while time.monotonic() < deadline:
        try:
            if page.sources.store.get(request_id).state != "awaiting_owner":
                return
        except RequestStoreError:
            return
        time.sleep(0.1)


async def accepted_change(request: Request) -> Response:
    """The button beside a raised problem ("this is normal for this camera") and its undo,
    through the same door as `camera-agent problems accept | unaccept`."""
    session = await require(request)
    camera = request.path_params["camera"]
    form = await request.form()
    problem, choice = form.get("problem"), form.get("accept")
    if not isinstance(problem, str) or choice not in ("yes", "no"):
        raise _refuse(request, 400, f"no problem or choice ({choice!r})", "choose a problem")
    acceptance = owner_page_of(request).sources.acceptance
    if acceptance is None:
        raise HTTPException(404, "not available")
    try:
        await run_in_threadpool(acceptance.change, camera, problem, choice == "yes", "owner_page")
    except AcceptanceRefused as exc:
        log.warning("owner page: %s of %s for camera %s refused: %s", choice, problem, camera, exc)
        return render(request, "error.html", session, 409, message=str(exc))
    log.info(
        "owner page: camera %s: %s %s by the owner from %s",
        camera,
        problem,
        "accepted" if choice == "yes" else "no longer accepted",
        remote_of(request),
    )
    return RedirectResponse(f"/#camera-{camera}", 303)


async def audit_page(request: Request) -> Response:
    session = await require(request)
    locale, _ = translation(request)
    entries = await run_in_threadpool(owner_page_of(request).sources.audit)
    rows = [
        {
            "time": words.local_time(entry.time),
            "request": entry.request_id or "",
            "title": words.audit_title(entry, _),
            "details": words.audit_details(entry, locale, _),
            "seq": entry.seq,
        }
        for entry in entries
    ]
    return render(request, "audit.html", session, entries=rows)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if isinstance(exc, LoginRequired):
        return RedirectResponse("/login", 303)
    return render(
        request, "error.html", current_session(request), exc.status_code, message=exc.detail
    )


# --- middleware ----------------------------------------------------------------------------


class LocalOnly:
    """Refuses (403) every request from an address outside `owner_page.allow`, before
    anything else looks at it."""

    def __init__(self, app: ASGIApp, allow: Sequence[Network]) -> None:
        self.app = app
        self.allow = tuple(allow)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        address = client[0] if client else None
        if not auth.address_allowed(address, self.allow):
            log.warning(
                "owner page: refused %s %s from %s: not in owner_page.allow",
                scope.get("method"),
                scope.get("path"),
                address,
            )
            response = PlainTextResponse(
                "403 forbidden: this page answers only on the local network\n", 403
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


class OwnHostOnly:
    """Refuses (400) a request whose Host header names another site: a web page the owner
    opens could re-point its own name at this device (DNS rebinding) and then read the
    page, and post to it, as if it were that site."""

    def __init__(self, app: ASGIApp, hosts: frozenset[str]) -> None:
        self.app = app
        self.hosts = hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        header = next((v for k, v in scope["headers"] if k == b"host"), None)
        host = None if header is None else header.decode("latin-1")
        if auth.host_allowed(host, self.hosts):
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        log.warning(
            "owner page: refused %s %s from %s: Host %r is not this device's "
            "(owner_page.allowed_hosts)",
            scope.get("method"),
            scope.get("path"),
            client[0] if client else None,
            host,
        )
        response = PlainTextResponse(
            f"400 bad request: this page answers to this device's address or name, not to "
            f"{host!r}; if that name is this device's, add it to owner_page.allowed_hosts\n",
            400,
        )
        await response(scope, receive, send)


class SecurityHeaders:
    """No framing, no sniffing, no referrer to other sites, no caching (snapshots!), no scripts."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-frame-options", b"DENY"),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"same-origin"),  # no-referrer would make Origin "null"
                    (b"cache-control", b"no-store"),
                    (b"content-security-policy", CONTENT_POLICY),
                ]
            await send(message)

        await self.app(scope, receive, with_headers)


def build_app(page: OwnerPage) -> Starlette:
    routes = [
        Route("/login", login_form, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/", cameras),
        Route("/cameras/{camera}/snapshot.jpg", snapshot),
        Route("/cameras/{camera}/accepted", accepted_change, methods=["POST"]),
        Route("/requests", requests_page),
        Route("/requests/{request_id}/decision", decision, methods=["POST"]),
        Route("/audit", audit_page),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    app = Starlette(
        routes=routes,
        # The first listed runs first: the address check comes before anything else.
        middleware=[
            Middleware(LocalOnly, allow=page.allow),
            Middleware(OwnHostOnly, hosts=page.hosts),
            Middleware(SecurityHeaders),
        ],
        exception_handlers={HTTPException: _http_error},
    )
    app.state.owner_page = page
    return app
