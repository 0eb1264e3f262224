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
    probe.add_argument(
        "--reference",
        type=Path,
        metavar="IMAGE",
        help="an image of the view the camera should have; reports scene_changed if it moved",
    )
    probe.add_argument(
        "--fov",
        type=_fov,
        metavar="DEG",
        help="horizontal field of view: adds how far away the camera can identify a person",
    )
    probe.add_argument("--json", action="store_true", help="print one health object as JSON")

    reference = commands.add_parser("reference", help="the camera's reference view")
    reference_commands = reference.add_subparsers(dest="action", required=True, metavar="ACTION")
    reset = reference_commands.add_parser(
        "reset", help="accept the camera's current view as its reference (after moving it)"
    )
    reset.add_argument("camera", metavar="CAMERA")
    reset.add_argument("--config", type=Path, default=DEFAULT_CONFIG, metavar="PATH")
    return parser


def _fov(text: str) -> float:
    value = _positive(text)
    if value >= 180:
        raise argparse.ArgumentTypeError(f"must be below 180 degrees: {text!r}")
    return value


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
        return _probe(args)
    if args.command == "reference":
        return _reference_reset(args.config, args.camera)
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


def _probe(args: argparse.Namespace) -> int:
    from agent.errors import StreamError
    from agent.probe import describe, health_object, run_probe
    from agent.quality.reference import ReferenceImageError, from_image

    try:
        reference = from_image(args.reference) if args.reference else None
        health = run_probe(args.source, args.seconds, args.interval, reference)
    except (StreamError, ReferenceImageError) as exc:
        print(f"camera-agent probe: {exc}", file=sys.stderr)
        return EX_UNAVAILABLE
    if args.json:
        print(json.dumps(health_object(health, args.fov), indent=2))
    else:
        print(describe(args.source, health, args.fov))
    return 0


def _reference_reset(path: Path, camera: str) -> int:
    from agent.config import load_config
    from agent.control import ControlError, NoDaemon, ask
    from agent.quality.reference import ReferenceStore

    try:
        config = load_config(path)
    except ConfigError as exc:
        _print_config_errors(path, exc)
        return EX_CONFIG
    if config.camera(camera) is None:
        known = ", ".join(c.id for c in config.cameras)
        print(f"no camera {camera!r} in {path} (cameras: {known})", file=sys.stderr)
        return EX_USAGE
    try:
        reply = ask(config.agent.data_dir, {"command": "reference_reset", "camera": camera})
    except NoDaemon:
        had = ReferenceStore(config.agent.data_dir).reset(camera)
        state = "forgot its reference view" if had else "had no reference view yet"
        print(f"camera {camera}: {state}; the agent takes a new one after a healthy warm-up")
        return 0
    except ControlError as exc:
        print(f"camera-agent: {exc}", file=sys.stderr)
        return EX_UNAVAILABLE
    if not reply.get("ok"):
        print(f"camera-agent: {reply.get('error', 'refused')}", file=sys.stderr)
        return EX_UNAVAILABLE
    print(reply.get("message", "done"))
    return 0
