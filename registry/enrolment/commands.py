"""`camera-registry enrol-code --agent ID [--replace]`: an operator makes a one-time code
that enrols the owner's agent with that id, or (`--replace`) replaces an enrolled agent's
device key and broker password."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from pathlib import Path

from contract.durations import parse_duration
from contract.exit_codes import EX_DATAERR, EX_USAGE
from contract.timestamps import rfc3339_epoch
from registry.config import DEFAULT_CONFIG

__all__ = ["EX_DATAERR", "register"]

# EX_DATAERR: the agent id cannot have a code (reserved, enrolled, not enrolled)


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add this area's subcommands to the `camera-registry` parser."""
    code = commands.add_parser(
        "enrol-code",
        help="make a one-time code an owner's agent enrols with (camera-agent enroll)",
    )
    code.add_argument("--config", type=Path, default=DEFAULT_CONFIG, metavar="PATH")
    code.add_argument(
        "--agent",
        metavar="ID",
        help="the agent id (the owner's agent.id) the code enrols, and no other",
    )
    code.add_argument(
        "--replace",
        action="store_true",
        help="the agent is enrolled: the code replaces its device key and broker password "
        "(a new device, a lost key)",
    )
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
    from registry.enrolment.codes import CodeRefused, issue_code, list_open_codes
    from registry.enrolment.credentials import broker_users
    from registry.enrolment.names import service_names

    if not args.list and args.agent is None:
        print(
            "camera-registry enrol-code: --agent ID is needed: a code enrols one agent id",
            file=sys.stderr,
        )
        return EX_USAGE
    config = load_server_config(args.config)
    engine = open_engine(config.database_url)
    try:
        if args.list:
            open_codes = list_open_codes(engine)
            if not open_codes:
                print("no open enrolment codes")
            for item in open_codes:
                what = f"for {item.agent}" if item.agent else "unbound, enrols nobody"
                if item.replaces_key:
                    what += f", REPLACES key {item.replaces_key}"
                made = rfc3339_epoch(item.created_at, "seconds")
                expires = rfc3339_epoch(item.expires_at, "seconds")
                print(
                    f"{item.code_sha256[:12]}…  {what}, by {item.created_by}, "
                    f"made {made}, expires {expires}"
                )
            return 0
        ttl = args.ttl if args.ttl is not None else config.enrolment.code_ttl
        try:
            issued = issue_code(
                engine,
                args.by or _operator(),
                args.agent,
                ttl,
                service_names=service_names(config),
                broker_users=broker_users(config.enrolment),
                replace=args.replace,
            )
        except CodeRefused as exc:
            print(f"camera-registry enrol-code: no code made: {exc}", file=sys.stderr)
            return EX_DATAERR
    finally:
        engine.dispose()
    print(issued.code)
    until = rfc3339_epoch(issued.expires_at, "seconds")
    print(
        f"for the agent {issued.agent} only, valid once, until {until}; "
        f"the owner runs:\n"
        f"  camera-agent enroll --registry {config.http.base_url} --code {issued.code}"
    )
    if issued.replaces_key is not None:
        print(
            f"this code REPLACES {issued.agent}'s device key {issued.replaces_key} and its "
            "broker password: evidence signed with the old key no longer verifies"
        )
    return 0
