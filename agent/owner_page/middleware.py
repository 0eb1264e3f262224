"""The layers every request of the owner page passes before a handler: the address
check, the Host check (DNS rebinding) and the security headers of every answer."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agent.owner_page import auth
from agent.owner_page.auth import Network

log = logging.getLogger(__name__)

# No scripts at all; pictures and styles only from here.
CONTENT_POLICY = (
    b"default-src 'none'; script-src 'none'; style-src 'self'; img-src 'self'; "
    b"form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)


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
