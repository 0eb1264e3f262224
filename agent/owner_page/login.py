"""The owner page's login and logout: the password checked one at a time per address,
lockouts and a busy answer that say so, and the session cookie."""

from __future__ import annotations

import functools
import logging
import math

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from agent.i18n import Translator
from agent.owner_page import auth
from agent.owner_page.context import (
    SESSION_COOKIE,
    OwnerPage,
    current_session,
    owner_page_of,
    refuse,
    remote_of,
    render,
    require,
    same_origin,
    translation,
)
from contract.common.login_limit import Refused, SlotsFull

log = logging.getLogger(__name__)

# When every login slot is taken: a few checks' time.
BUSY_RETRY_S = 2


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
    if not same_origin(request):
        raise refuse(request, 403, "login sent from another site", "sent from another site")
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
