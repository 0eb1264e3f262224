"""`camera-registry enrol-code`: an operator makes a one-time code for an owner's agent."""

from __future__ import annotations

import argparse
import getpass
import os
from pathlib import Path

from agent.durations import parse_duration
from registry.config import DEFAULT_CONFIG
from registry.enrolment.codes import rfc3339 as _when

__all__ = ["register"]


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add this area's subcommands to the `camera-registry` parser."""
    code = commands.add_parser(
        "enrol-code",
        help="make a one-time code an owner's agent enrols with (camera-agent enroll)",
    )
    code.add_argument("--config", type=Path, default=DEFAULT_CONFIG, metavar="PATH")
    code.add_argument(
        "--ttl",
        type=_duration,
        default=None,
        metavar="DURATION",
        help="how long the code is valid, e.g. 24h or 7d (default: enrolment.code_ttl, 24h)",
    )
    code.add_argument(
        "--by",
        default=None,
        metavar="NAME",
        help="the operator issuing it, recorded with the code (default: your login name)",
    )
    code.add_argument(
        "--list", action="store_true", help="list the codes not yet used or expired instead"
    )
    code.set_defaults(func=run)


def _duration(text: str) -> float:
    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if seconds <= 0:
        raise argparse.ArgumentTypeError("must be longer than 0")
    return seconds


def _operator() -> str:
    # Under sudo, the person behind it rather than root.
    return os.environ.get("SUDO_USER") or getpass.getuser()


def run(args: argparse.Namespace) -> int:
    from registry.config import load_server_config
    from registry.db.engine import open_engine
    from registry.enrolment.codes import issue_code, list_open_codes

    config = load_server_config(args.config)
    engine = open_engine(config.database_url)
    try:
        if args.list:
            open_codes = list_open_codes(engine)
            if not open_codes:
                print("no open enrolment codes")
            for item in open_codes:
                print(
                    f"{item.code_sha256[:12]}…  by {item.created_by}, made {_when(item.created_at)}"
                    f", expires {_when(item.expires_at)}"
                )
            return 0
        ttl = args.ttl if args.ttl is not None else config.enrolment.code_ttl
        issued = issue_code(engine, args.by or _operator(), ttl)
    finally:
        engine.dispose()
    print(issued.code)
    print(
        f"valid once, until {_when(issued.expires_at)}; the owner runs:\n"
        f"  camera-agent enroll --registry {config.http.base_url} --code {issued.code}"
    )
    return 0
