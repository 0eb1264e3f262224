"""`camera-agent probe`: a one-off health check of a stream or video file."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from agent.cli_common import positive
from agent.errors import StreamError
from contract.exit_codes import EX_UNAVAILABLE


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    probe = commands.add_parser("probe", help="one-off health check of a stream or video file")
    probe.add_argument("source", metavar="SOURCE", help="rtsp:// or http(s):// URL, or a file")
    probe.add_argument(
        "--seconds",
        type=positive,
        default=10.0,
        metavar="N",
        help="how long to watch (stream time for files, which are read as fast as possible)",
    )
    probe.add_argument(
        "--interval",
        type=positive,
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
    probe.set_defaults(func=_probe)


def _fov(text: str) -> float:
    value = positive(text)
    if value >= 180:
        raise argparse.ArgumentTypeError(f"must be below 180 degrees: {text!r}")
    return value


def _probe(args: argparse.Namespace) -> int:
    # Lazily (agent/cli.py says why): PyAV, OpenCV and pydantic.
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
