"""The `camera-registry` command line. Each area registers its own subcommands, so this
file only assembles them: police (keygen, sign), evidence (verify), ingest, enrolment
codes, and the server with its users."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence

from contract import __version__
from contract.common.log import setup_logging
from contract.errors import ConfigError
from contract.exit_codes import EX_CONFIG, EX_SOFTWARE
from registry.enrolment import commands as enrolment_commands
from registry.errors import RegistryError
from registry.evidence import commands as evidence_commands
from registry.ingest import commands as ingest_commands
from registry.police import commands as police_commands
from registry.web import commands as web_commands

log = logging.getLogger(__name__)


Command = Callable[[argparse.Namespace], int]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="camera-registry",
        description="The reference camera registry: health ingest, dashboard, police "
        "search and signed requests, evidence intake.",
    )
    parser.add_argument("--version", action="version", version=f"camera-registry {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for area in (
        web_commands,
        ingest_commands,
        enrolment_commands,
        police_commands,
        evidence_commands,
    ):
        area.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    setup_logging(args.verbose)
    func: Command = args.func
    try:
        return func(args)
    except ConfigError as exc:
        print("invalid config:", file=sys.stderr)
        for error in exc.errors:
            print(f"  {error}", file=sys.stderr)
        return EX_CONFIG
    except RegistryError as exc:
        print(f"camera-registry: {exc}", file=sys.stderr)
        return EX_SOFTWARE
    except KeyboardInterrupt:
        return 130
