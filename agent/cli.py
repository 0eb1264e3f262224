"""The `camera-agent` command line (DESIGN.md: CLI contract)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from agent import __version__
from agent.errors import ConfigError
from agent.log import setup_logging

log = logging.getLogger(__name__)

DEFAULT_CONFIG = Path("/etc/camera-agent/config.yaml")
EX_USAGE = 64
EX_UNAVAILABLE = 69
EX_CANTCREAT = 73
EX_CONFIG = 78


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="camera-agent",
        description="Watches CCTV cameras and reports their health to a police camera registry.",
    )
    parser.add_argument("--version", action="version", version=f"camera-agent {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run the agent (what the systemd service starts)")
    run.add_argument("--config", type=Path, default=DEFAULT_CONFIG, metavar="PATH")

    check = commands.add_parser("check", help="validate a config file; exit 78 listing errors")
    check.add_argument("--config", type=Path, default=DEFAULT_CONFIG, metavar="PATH")

    probe = commands.add_parser("probe", help="one-off health check of a stream or video file")
    probe.add_argument("source", metavar="SOURCE", help="rtsp:// or http(s):// URL, or a file")
    probe.add_argument(
        "--seconds",
        type=_positive,
        default=10.0,
        metavar="N",
        help="how long to watch (stream time for files, which are read as fast as possible)",
    )
    probe.add_argument(
        "--interval",
        type=_positive,
        default=None,
        metavar="S",
        help="analyse one keyframe every S seconds, as the daemon does "
        "(default: every keyframe, at least one picture a second)",
    )
    probe.add_argument("--json", action="store_true", help="print one health object as JSON")
    return parser


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0: {text!r}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    setup_logging(args.verbose)
    if args.command == "check":
        return _check(args.config)
    if args.command == "run":
        return _run(args.config)
    if args.command == "probe":
        return _probe(args.source, args.seconds, args.interval, args.json)
    return EX_USAGE


def _check(path: Path) -> int:
    from agent.config import load_config

    try:
        config = load_config(path)
    except ConfigError as exc:
        _print_config_errors(path, exc)
        return EX_CONFIG
    print(f"{path}: valid ({len(config.cameras)} camera(s), agent {config.agent.id})")
    return 0


def _print_config_errors(path: Path, exc: ConfigError) -> None:
    count = len(exc.errors)
    print(f"{path}: {count} error{'s' if count != 1 else ''}", file=sys.stderr)
    for line in exc.errors:
        print(f"  {line}", file=sys.stderr)


def _run(path: Path) -> int:
    from agent.app import App, install_signal_handlers
    from agent.config import load_config
    from agent.state import StateError

    try:
        config = load_config(path)
    except ConfigError as exc:
        _print_config_errors(path, exc)
        return EX_CONFIG
    stop = threading.Event()
    install_signal_handlers(stop)
    try:
        return App(config).run(stop)
    except StateError as exc:
        log.error("%s", exc)
        return EX_CANTCREAT


def _probe(source: str, seconds: float, interval: float | None, as_json: bool) -> int:
    from agent.errors import StreamError
    from agent.probe import describe, health_object, run_probe

    try:
        health = run_probe(source, seconds, interval)
    except StreamError as exc:
        print(f"camera-agent probe: {exc}", file=sys.stderr)
        return EX_UNAVAILABLE
    if as_json:
        print(json.dumps(health_object(health), indent=2))
    else:
        print(describe(source, health))
    return 0
