"""What every handler of the owner page shares: the page's parts (`OwnerPage`), the
session and its checks (CSRF token, origin), the visitor's language and the templates."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse

from agent.i18n import Translator, negotiate, translator
from agent.owner_page import auth
from agent.owner_page.auth import LoginGuard, Network, Session, Sessions
from agent.owner_page.view import OwnerSources

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
SESSION_COOKIE = "camera_agent_owner"
CSRF_FIELD = "csrf"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

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


def refuse(request: Request, status: int, why: str, detail: str) -> HTTPException:
    log.warning(
        "owner page: refused %s %s from %s: %s",
        request.method,
        request.url.path,
        remote_of(request),
        why,
    )
    return HTTPException(status, detail)


def same_origin(request: Request) -> bool:
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
            raise refuse(request, 401, "not logged in", "log in first")
        raise LoginRequired()
    if request.method not in SAFE_METHODS:
        if not same_origin(request):
            raise refuse(
                request,
                403,
                f"sent from another site ({request.headers.get('origin')})",
                "this form was sent from another site",
            )
        form = await request.form()
        value = form.get(CSRF_FIELD)
        if not auth.csrf_matches(session, value if isinstance(value, str) else None):
            raise refuse(
                request,
                403,
                "missing or wrong CSRF token",
                "missing or wrong form token: reload the page and try again",
            )
    return session
