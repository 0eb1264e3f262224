"""`camera-registry ingest`: one ingest worker until SIGTERM or SIGINT."""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from pathlib import Path
from types import FrameType

from registry.config import DEFAULT_CONFIG, load_server_config
from registry.db.engine import open_engine
from registry.ingest.service import IngestService

__all__ = ["IngestService", "register"]

log = logging.getLogger(__name__)


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add this area's subcommands to the `camera-registry` parser."""
    parser = commands.add_parser(
        "ingest",
        help="store agents' state, health, request status and audit from the MQTT broker",
        description="Run one ingest worker until SIGTERM or SIGINT. Several workers (on one "
        "or more machines) share the load through the MQTT shared subscription group "
        "`share_group`; each needs its own --client-id.",
    )
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG,
                        help=f"registry config file (default {DEFAULT_CONFIG})")
    parser.add_argument("--client-id", default=None,
                        help="MQTT client id of this worker (default: SHARE_GROUP-HOSTNAME); "
                        "keep it the same across restarts")
    parser.add_argument("--no-snapshot", action="store_true",
                        help="do not fetch retained messages at start (another worker does)")
    parser.set_defaults(func=_ingest)


def _ingest(args: argparse.Namespace) -> int:
    config = load_server_config(args.config)
    engine = open_engine(config.database_url)
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("ingest: %s, stopping", signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    service = IngestService(config, engine, client_id=args.client_id,
                            snapshot=not args.no_snapshot)
    try:
        service.start(stop)
        while not stop.wait(1.0):  # wakes regularly so the signal handler gets to run
            pass
        service.join()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        engine.dispose()
    return 0
