"""`camera-agent owner-password`: set the password of the owner page."""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from agent.cli_common import with_config
from contract.exit_codes import EX_CANTCREAT, EX_NOINPUT, EX_USAGE

if TYPE_CHECKING:
    from agent.config import AgentConfig


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser], config: Path) -> None:
    command = commands.add_parser(
        "owner-password", help="set the password of the owner page (asks twice)"
    )
    command.add_argument("--config", type=Path, default=config, metavar="PATH")
    command.add_argument(
        "--password-file",
        type=Path,
        metavar="FILE",
        help="read the password from the first line of FILE instead of asking",
    )
    command.set_defaults(func=with_config(run))


def run(args: argparse.Namespace, config: AgentConfig) -> int:
    from agent.i18n import translator
    from agent.owner_page.auth import OwnerPasswordError, set_owner_password

    _ = translator(config.agent.locale)
    if args.password_file is not None:
        try:
            lines = args.password_file.read_text().splitlines()
        except OSError as exc:
            print(f"camera-agent: {args.password_file}: {exc.strerror or exc}", file=sys.stderr)
            return EX_NOINPUT
        password = lines[0] if lines else ""
    else:
        try:
            password = getpass.getpass(_("New password for the owner page: "))
            again = getpass.getpass(_("The same password again: "))
        except (EOFError, KeyboardInterrupt):
            print(file=sys.stderr)
            return EX_USAGE
        if password != again:
            print(_("The two passwords differ; nothing was changed."), file=sys.stderr)
            return EX_USAGE
    try:
        path = set_owner_password(config.agent.data_dir, password)
    except OwnerPasswordError as exc:
        print(f"camera-agent: {exc}", file=sys.stderr)
        return EX_CANTCREAT
    print(_("Password set (stored as an Argon2id hash in %(path)s).") % {"path": path})
    if not config.owner_page.enabled:
        print(_("The owner page is off: set owner_page.enabled: true in the config."))
    return 0
