"""Serves the owner page from the agent's process: uvicorn in one thread (`owner-page`)."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from collections.abc import Sequence
from pathlib import Path

import uvicorn

from agent.audit import AUDIT_FILE
from agent.config import AgentConfig
from agent.owner_page import auth
from agent.owner_page.app import OwnerPage, build_app
from agent.owner_page.view import CameraSource, Decide, OwnerSources
from agent.police_requests.store import REQUESTS_FILE, RequestStore
from agent.quality.accepted import Acceptance
from agent.recording.index import SegmentIndex

log = logging.getLogger(__name__)

# A clean stop must fit in the agent's own stop budget (systemd's TimeoutStopSec).
STOP_JOIN_S = 2.0


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound here so a taken port is an error the caller sees."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6 and host == "::":
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)  # IPv4 peers too
    try:
        sock.bind((host, port))
        sock.listen(64)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


class OwnerPageServer:
    def __init__(self, page: OwnerPage, host: str, port: int) -> None:
        self.page = page
        self._socket = bind(host, port)
        self.port = self._socket.getsockname()[1]
        config = uvicorn.Config(
            build_app(page),
            log_level="warning",
            access_log=False,
            lifespan="off",
            # Nobody sits in front of this page: a forwarded-for header is a lie to ignore.
            proxy_headers=False,
            server_header=False,
            date_header=False,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, name="owner-page", daemon=True)

    def _run(self) -> None:
        try:
            asyncio.run(self._server.serve(sockets=[self._socket]))
        except Exception:
            log.exception("owner page: the web server stopped")

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._server.should_exit = True
        self._thread.join(STOP_JOIN_S)
        self._socket.close()


def start_owner_page(
    config: AgentConfig,
    cameras: Sequence[CameraSource],
    index: SegmentIndex | None,
    decide: Decide,
    acceptance: Acceptance | None = None,
) -> OwnerPageServer | None:
    """Start the page as `owner_page` configures it; None (and an error logged) when its
    port cannot be had: the cameras matter more than the page."""
    settings = config.owner_page
    data_dir: Path = config.agent.data_dir
    sources = OwnerSources(
        cameras=cameras,
        index=index,
        store=RequestStore(data_dir / REQUESTS_FILE),
        audit_path=data_dir / AUDIT_FILE,
        decide=decide,
        acceptance=acceptance,
        agent_id=config.agent.id,
    )
    page = OwnerPage(
        sources=sources,
        data_dir=data_dir,
        locale=config.agent.locale,
        allow=auth.parse_networks(settings.allow),
        hosts=auth.local_host_names(settings.allowed_hosts),
    )
    try:
        server = OwnerPageServer(page, settings.host, settings.port)
    except OSError as exc:
        log.error(
            "owner page: cannot listen on %s: %s; the agent runs on without it",
            settings.listen,
            exc.strerror or exc,
        )
        return None
    server.start()
    log.info("owner page on http://%s (local network only)", settings.listen)
    if auth.stored_hash(data_dir) is None:
        log.warning(
            "owner page: no password is set, so nobody can log in: run "
            "`camera-agent owner-password`"
        )
    return server
