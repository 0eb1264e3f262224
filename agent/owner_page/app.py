"""The owner page as an ASGI app: login, cameras, snapshots, requests, audit log.

Every request first passes `LocalOnly` (the peer address must be in `owner_page.allow`),
then `OwnHostOnly` (the Host header must name this device), then `SecurityHeaders`.
Pages need a session from the owner password; every state change
(a POST) needs the session's CSRF token and, when the browser names one, our own Origin.
Refusals answer 400/401/403/429 and leave a log line naming the address; they change nothing.

The parts: context.py (what handlers share: session, CSRF, language, templates),
login.py, pages.py (pages and their forms) and middleware.py; here the routes."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from agent.owner_page.context import (
    HERE,
    LoginRequired,
    OwnerPage,
    current_session,
    render,
)
from agent.owner_page.login import login, login_form, logout
from agent.owner_page.middleware import LocalOnly, OwnHostOnly, SecurityHeaders
from agent.owner_page.pages import (
    accepted_change,
    audit_page,
    cameras,
    decision,
    receipt_download,
    requests_page,
    snapshot,
)

# OwnerPage is built by server.py (and the tests) from here, with the app it serves.
__all__ = ["OwnerPage", "build_app"]


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if isinstance(exc, LoginRequired):
        return RedirectResponse("/login", 303)
    return render(
        request, "error.html", current_session(request), exc.status_code, message=exc.detail
    )


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
        Route("/requests/{request_id}/receipt", receipt_download),
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
