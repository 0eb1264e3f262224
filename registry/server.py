"""`camera-registry serve`: the web app with every area mounted, MQTT ingest in-process
(unless separate workers do it), and the relay that hands signed tokens to the broker."""

from __future__ import annotations

import logging
import threading

import uvicorn
from starlette.routing import Mount

from registry.config import ServerConfig
from registry.db.engine import open_engine
from registry.enrolment.operator_api import operator_routes
from registry.enrolment.service import enrolment_routes
from registry.evidence.intake import EvidenceIntake
from registry.evidence.timestamp import load_roots
from registry.evidence.tsa_client import Stamper
from registry.ingest.service import IngestService
from registry.link import RequestRelay
from registry.web import evidence_pages, operator_pages, police_api, police_pages
from registry.web.app import build_app
from registry.web.state import AppState

log = logging.getLogger(__name__)

GRACEFUL_SHUTDOWN_S = 5


def stamper(config: ServerConfig) -> Stamper | None:
    """The registry's time-stamping authority, if one is configured."""
    settings = config.evidence
    if settings.tsa_url is None or settings.tsa_roots is None:
        return None
    roots = tuple(load_roots(settings.tsa_roots))  # checked when the config was read
    return Stamper(settings.tsa_url, roots, settings.tsa_roots)


def run_server(config: ServerConfig, *, ingest: bool = True) -> int:
    engine = open_engine(config.database_url)
    intake = EvidenceIntake(
        engine, config.evidence_dir, config.evidence.max_file_bytes, stamper(config)
    )
    stop = threading.Event()
    workers = IngestService(config, engine) if ingest else None
    # One broker connection per user: with the documented broker config a second login of
    # the same user pushes the first off, so the relay shares the ingest worker's.
    relay = workers.relay if workers is not None else RequestRelay(config.mqtt)
    routes = [
        *police_api.routes(),
        *police_pages.routes(),
        *evidence_pages.routes(intake),
        *enrolment_routes(engine, config),
        *operator_routes(),
        *operator_pages.routes(),
        Mount("/files", routes=intake.routes()),
    ]
    app = build_app(AppState(config, engine, relay), routes)
    tls = config.http.tls_cert is not None
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=config.http.host,
            port=config.http.port,
            ssl_certfile=str(config.http.tls_cert) if tls else None,
            ssl_keyfile=str(config.http.tls_key) if tls else None,
            log_level="warning",
            # Uploads are long; a slow PATCH must not be cut by the default keep-alive timeout.
            timeout_keep_alive=30,
            # SIGTERM waits this long for open connections, then closes them: over TLS a
            # keep-alive connection its client already dropped held stop for 30 s (asyncio's
            # TLS shutdown timeout). An upload cut here resumes from its offset.
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        )
    )

    relay.start()
    if workers is not None:
        workers.start(stop)
    # A package whose last file arrived just before the registry stopped was never checked.
    threading.Thread(target=intake.check_unchecked, name="evidence-recheck", daemon=True).start()
    log.info(
        "registry on %s (database %s)", config.http.base_url, config.database_url.split("://", 1)[0]
    )
    print(f"camera registry: {config.http.base_url}/", flush=True)
    # uvicorn handles SIGTERM and SIGINT itself: run() returns, then everything stops.
    try:
        server.run()
    finally:
        stop.set()
        if workers is not None:
            workers.join()
        relay.stop()
        engine.dispose()
    return 0
