"""`camera-registry ingest`: one ingest worker (or `--workers N` processes) until SIGTERM or
SIGINT."""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from pathlib import Path
from types import FrameType

from contract.common.stop_signal import set_from_handler
from registry.config import DEFAULT_CONFIG, load_server_config
from registry.ingest.service import IngestService
from registry.ingest.workers import WorkerPool, check_workers, run_worker

__all__ = ["IngestService", "register"]

log = logging.getLogger(__name__)

MAX_WORKERS = 64


def _worker_count(value: str) -> int:
    count = int(value)
    if not 1 <= count <= MAX_WORKERS:
        raise argparse.ArgumentTypeError(f"must be 1 to {MAX_WORKERS}")
    return count


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add this area's subcommands to the `camera-registry` parser."""
    parser = commands.add_parser(
        "ingest",
        help="store agents' state, health, request status and audit from the MQTT broker",
        description="Run ingest workers until SIGTERM or SIGINT. Several workers (on one "
        "or more machines) share the load through the MQTT shared subscription group "
        "`share_group`; each needs its own --client-id (and, with the documented broker "
        "config, its own broker user: see docs/registry-ingest.md).",
    )
    parser.add_argument(
        "--config",
        type=Path,
        default=DEFAULT_CONFIG,
        help=f"registry config file (default {DEFAULT_CONFIG})",
    )
    parser.add_argument(
        "--client-id",
        default=None,
        help="MQTT client id of this worker (default: SHARE_GROUP-HOSTNAME); "
        "keep it the same across restarts",
    )
    parser.add_argument(
        "--no-snapshot",
        action="store_true",
        help="do not fetch retained messages at start (another worker does)",
    )
    parser.add_argument(
        "--workers",
        type=_worker_count,
        default=1,
        help="worker processes on this machine (default 1); worker k > 1 "
        "connects as CLIENT_ID-k with broker user USERNAME-k",
    )
    parser.set_defaults(func=_ingest)


def _ingest(args: argparse.Namespace) -> int:
    config = load_server_config(args.config)
    check_workers(config, args.workers)
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("ingest: %s, stopping", signal.Signals(signum).name)
        set_from_handler(stop)

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        if args.workers == 1:
            run_worker(config, args.client_id, not args.no_snapshot, stop)
            return 0
        pool = WorkerPool(
            args.config,
            args.workers,
            client_id=args.client_id,
            snapshot=not args.no_snapshot,
            verbose=logging.getLogger().isEnabledFor(logging.DEBUG),
        )
        return pool.run(stop)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
