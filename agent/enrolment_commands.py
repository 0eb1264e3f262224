"""`camera-agent enroll`: join the registry with a one-time code from its operator, and say
what the registry gave (agent/enrolment.py does the asking)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from agent.cli_common import print_config_errors
from contract.errors import ConfigError
from contract.exit_codes import EX_CANTCREAT, EX_CONFIG

if TYPE_CHECKING:  # imported lazily below (agent/cli.py says why)
    from agent.enrolment import Enrolment
    from agent.i18n import Translator


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser], config: Path) -> None:
    enroll = commands.add_parser(
        "enroll", help="join the registry with a one-time code from its operator"
    )
    enroll.add_argument(
        "--registry",
        required=True,
        metavar="URL",
        help="the registry's address, e.g. https://registry.example.org",
    )
    enroll.add_argument(
        "--code", required=True, metavar="CODE", help="the one-time code, e.g. 7KQ2-M9XD-4HRT-0WBE"
    )
    enroll.add_argument(
        "--ca-file",
        type=Path,
        metavar="PATH",
        help="the CA of the registry's HTTPS certificate, if it is not publicly trusted",
    )
    enroll.add_argument("--config", type=Path, default=config, metavar="PATH")
    enroll.set_defaults(func=_enroll)


def _enroll(args: argparse.Namespace) -> int:
    # Lazily (agent/cli.py says why): pydantic, babel.
    from agent import enrolment
    from agent.i18n import translator

    try:
        view = enrolment.load_enrolment_view(args.config)
    except ConfigError as exc:
        print_config_errors(args.config, exc)
        return EX_CONFIG
    _ = translator(view.agent.locale)
    try:
        result = enrolment.enrol(view, args.registry, args.code, ca_file=args.ca_file)
    except enrolment.EnrolmentError as exc:
        print(f"camera-agent enroll: {exc}", file=sys.stderr)
        return exc.exit_code
    return report_enrolment(result, view.agent.data_dir, args.config, _)


def report_enrolment(
    result: Enrolment, data_dir: Path, config_path: Path | None, _: Translator
) -> int:
    """Say what enrolment gave and save the broker password; `config_path` None: the caller
    (setup) writes the registry section itself."""
    from agent import enrolment

    print(
        _("enrolled as {agent}; device key {kid}").format(
            agent=result.agent_id, kid=result.key_thumbprint
        )
    )
    print(
        _("broker: {broker} (topic prefix {prefix})").format(
            broker=result.broker, prefix=result.topic_prefix
        )
    )
    lines = ["registry:", f"  broker: {result.broker}", f"  username: {result.username}"]
    if result.password is not None:
        try:
            saved = enrolment.save_password(data_dir, result.password)
        except OSError as exc:
            said = _(
                "enrolled, but cannot save the broker password: {error}; enrol again with a "
                "new code"
            )
            print("camera-agent enroll: " + said.format(error=exc), file=sys.stderr)
            return EX_CANTCREAT
        print(_("broker password saved in {path} (mode 0600)").format(path=saved))
        lines.append(f"  password_file: {saved}")
    else:
        print(
            _(
                "the registry issued no password: the broker knows this agent by its client "
                "certificate (CN = agent id); set client_cert and client_key"
            )
        )
    if result.topic_prefix != "camreg/v1":
        lines.append(f"  topic_prefix: {result.topic_prefix}")
    if config_path is not None:
        print()
        print(_("this config file was not changed; {path} should have:").format(path=config_path))
        print("\n".join(lines))
    return 0
