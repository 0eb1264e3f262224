"""A real local HTTP receiver for webhook and ntfy posts, and a real local SMTP server."""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.support import free_port
from tests.support.asgi_server import serve_asgi


@dataclass(frozen=True)
class Posted:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class HttpReceiver:
    """Every POST it got; answers `status` (a list is used up first, one per request)."""

    url: str = ""
    posts: list[Posted] = field(default_factory=list)
    fail_next: list[int] = field(default_factory=list)
    _arrived: threading.Condition = field(default_factory=threading.Condition)

    def app(self) -> Starlette:
        async def receive(request: Request) -> Response:
            posted = Posted(
                request.url.path,
                {k.lower(): v for k, v in request.headers.items()},
                await request.body(),
            )
            with self._arrived:
                status = self.fail_next.pop(0) if self.fail_next else 200
                self.posts.append(posted)
                self._arrived.notify_all()
            return Response("ok" if status == 200 else "nope", status_code=status)

        return Starlette(routes=[Route("/{path:path}", receive, methods=["POST"])])

    def wait_for(
        self, match: Callable[[Posted], bool] = lambda p: True, timeout: float = 10.0
    ) -> Posted:
        deadline = time.monotonic() + timeout
        with self._arrived:
            while True:
                found = [p for p in self.posts if match(p)]
                if found:
                    return found[0]
                left = deadline - time.monotonic()
                if left <= 0:
                    pytest.fail(f"no matching POST within {timeout} s; got {self.posts}")
                self._arrived.wait(left)


@contextmanager
def http_receiver() -> Iterator[HttpReceiver]:
    receiver = HttpReceiver()
    with serve_asgi(receiver.app()) as url:
        receiver.url = url
        yield receiver


@dataclass
class Mailbox:
    """Mail the SMTP server accepted, parsed, with the login it was sent with."""

    mails: list[EmailMessage] = field(default_factory=list)
    logins: list[tuple[str, str]] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    _arrived: threading.Condition = field(default_factory=threading.Condition)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        mail = message_from_bytes(content, policy=policy.default)
        assert isinstance(mail, EmailMessage)
        with self._arrived:
            self.mails.append(mail)
            self.envelopes.append((str(envelope.mail_from), list(envelope.rcpt_tos)))
            self._arrived.notify_all()
        return "250 OK"

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login = (auth_data.login.decode(), auth_data.password.decode())
        self.logins.append(login)
        return AuthResult(success=login == ("shop", "s3cret"))

    def wait(self, count: int = 1, timeout: float = 10.0) -> list[EmailMessage]:
        deadline = time.monotonic() + timeout
        with self._arrived:
            while len(self.mails) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    pytest.fail(f"{len(self.mails)} mail(s), not {count}, within {timeout} s")
                self._arrived.wait(left)
            return list(self.mails)


@dataclass(frozen=True)
class SmtpServer:
    port: int
    mailbox: Mailbox


@contextmanager
def smtp_server(
    *, tls: tuple[Path, Path] | None = None, implicit_tls: bool = False
) -> Iterator[SmtpServer]:
    """aiosmtpd on a free loopback port. With `tls` (cert, key): STARTTLS, or TLS from the
    first byte with `implicit_tls`; login required either way (user shop, s3cret)."""
    mailbox = Mailbox()
    port = free_port()
    options: dict[str, Any] = {}
    if tls is not None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(tls[0]), str(tls[1]))
        if implicit_tls:
            # aiosmtpd does not count TLS from the first byte as TLS for AUTH; it is.
            options.update(ssl_context=context, auth_require_tls=False)
        else:
            options.update(tls_context=context, require_starttls=True)
        options.update(authenticator=mailbox.authenticate, auth_required=True)
    controller = Controller(mailbox, hostname="127.0.0.1", port=port, **options)
    controller.start()
    try:
        yield SmtpServer(port, mailbox)
    finally:
        controller.stop()
