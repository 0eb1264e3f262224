"""`camera-agent keys init | show`: the device key that signs evidence manifests."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from agent.cli_common import with_config
from contract.exit_codes import EX_CANTCREAT, EX_UNAVAILABLE

if TYPE_CHECKING:
    from agent.config import AgentConfig


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser], config: Path) -> None:
    keys = commands.add_parser("keys", help="the device key that signs evidence")
    actions = keys.add_subparsers(dest="action", required=True, metavar="ACTION")
    init = actions.add_parser("init", help="create the device key (once; never replaced)")
    init.add_argument("--config", type=Path, default=config, metavar="PATH")
    init.add_argument(
        "--replace",
        action="store_true",
        help="make a new key although there was one (lost or broken): the old file is kept "
        "aside; the registry must enrol the new key",
    )
    show = actions.add_parser("show", help="print the public key the registry enrols")
    show.add_argument("--config", type=Path, default=config, metavar="PATH")
    show.add_argument("--json", action="store_true", help="kid and JWK as JSON")
    keys.set_defaults(func=with_config(run))


def run(args: argparse.Namespace, config: AgentConfig) -> int:
    from agent.crypto import device_key
    from agent.i18n import translator

    _ = translator(config.agent.locale)
    data_dir = config.agent.data_dir
    try:
        if args.action == "init" and args.replace:
            key, kept = device_key.replace(data_dir)
            print(_("new device key created in {path}").format(path=device_key.key_dir(data_dir)))
            if kept is not None:
                print(_("the old key file is kept as {path}").format(path=kept))
            print(
                _(
                    "enrol again (camera-agent enroll) so the registry knows the new key, and "
                    "restart the agent"
                )
            )
        elif args.action == "init":
            key = device_key.create(data_dir)
            print(_("device key created in {path}").format(path=device_key.key_dir(data_dir)))
        else:
            key = device_key.load(data_dir)
    except device_key.DeviceKeyError as exc:
        print(f"camera-agent: {exc}", file=sys.stderr)
        return EX_CANTCREAT if args.action == "init" else EX_UNAVAILABLE
    public = device_key.describe(key)
    if getattr(args, "json", False):
        print(json.dumps({"kid": public["kid"], "jwk": public["jwk"]}, indent=2))
        return 0
    print(_("kid (RFC 7638 thumbprint): {kid}").format(kid=public["kid"]))
    print(_("public JWK: {jwk}").format(jwk=json.dumps(public["jwk"])))
    print(str(public["pem"]).rstrip())
    return 0
