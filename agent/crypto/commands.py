"""`camera-agent keys init | show`: the device key that signs evidence manifests."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agent.config import AgentConfig

EX_CANTCREAT = 73
EX_UNAVAILABLE = 69


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser], config: Path) -> None:
    keys = commands.add_parser("keys", help="the device key that signs evidence")
    actions = keys.add_subparsers(dest="action", required=True, metavar="ACTION")
    init = actions.add_parser("init", help="create the device key (once; never replaced)")
    init.add_argument("--config", type=Path, default=config, metavar="PATH")
    show = actions.add_parser("show", help="print the public key the registry enrols")
    show.add_argument("--config", type=Path, default=config, metavar="PATH")
    show.add_argument("--json", action="store_true", help="kid and JWK as JSON")


def run(args: argparse.Namespace, config: AgentConfig) -> int:
    from agent.crypto import device_key
    from agent.i18n import translator

    _ = translator(config.agent.locale)
    data_dir = config.agent.data_dir
    try:
        if args.action == "init":
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
