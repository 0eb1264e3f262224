"""The `camera-agent` command line (DESIGN.md: CLI contract). Each area registers its own
subcommands, so this file only assembles them, in the order `--help` lists them, sets up
logging and hands the parsed arguments to the command.

Every command module is imported here, at start, before the command is known. So each
keeps to the standard library and the agent's plain modules at its top, and imports what
brings a third-party library (babel for the owner's language, cryptography, pydantic,
PyAV, OpenCV) inside the command that uses it: `camera-agent --version` answers from a
bare install (systemd/install.sh runs it; tests/whole/test_install.py installs without
dependencies), `--help` answers at once, and `check` or `requests` do not wait 0.4 s for
PyAV and OpenCV.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from agent import (
    __version__,
    audit_commands,
    daemon_commands,
    discover_commands,
    enrolment_commands,
    footage_commands,
    probe_commands,
)
from agent.cli_common import DEFAULT_CONFIG, Command
from agent.crypto import commands as key_commands
from agent.owner_page import commands as owner_commands
from agent.police_requests import commands as requests_commands
from agent.quality import commands as problems_commands
from agent.quality import reference_commands
from agent.setup import commands as setup_commands
from contract.common.log import setup_logging


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="camera-agent",
        description="Watches CCTV cameras and reports their health to a police camera registry.",
    )
    parser.add_argument("--version", action="version", version=f"camera-agent {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    daemon_commands.add_parser(commands, DEFAULT_CONFIG)  # run, check
    probe_commands.add_parser(commands)
    discover_commands.add_parser(commands)
    reference_commands.add_parser(commands, DEFAULT_CONFIG)
    setup_commands.add_parser(commands, DEFAULT_CONFIG)
    requests_commands.add_parser(commands, DEFAULT_CONFIG)
    key_commands.add_parser(commands, DEFAULT_CONFIG)
    owner_commands.add_parser(commands, DEFAULT_CONFIG)
    problems_commands.add_parser(commands, DEFAULT_CONFIG)
    enrolment_commands.add_parser(commands, DEFAULT_CONFIG)
    footage_commands.add_parser(commands, DEFAULT_CONFIG)
    audit_commands.add_parser(commands, DEFAULT_CONFIG)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    setup_logging(args.verbose)
    func: Command = args.func
    return func(args)
