"""`camera-registry police keyset sign | show | publish`: police key sets.

`sign` runs where the police keep their root key (offline, docs/police.md); `show` reads
a set anywhere; `publish` runs on the registry, which relays the signed set retained to
every agent and never holds the root key.

Exit codes: 0 done, 1 refused or invalid input, 2 usage (argparse), 73 (EX_CANTCREAT)
the output file cannot be written, 70 (EX_SOFTWARE) the broker did not take the set.
"""

from __future__ import annotations

import argparse
import sys
from datetime import timedelta
from pathlib import Path

from contract.durations import parse_duration
from registry.police.token_files import put_token

EX_REFUSED = 1
# A key set outlives its signing session by weeks, not years: an expiry is what makes a
# root key's mistakes and a lost set's keys run out (docs/police.md).
DEFAULT_LIFETIME = "30d"


def _duration(value: str) -> timedelta:
    try:
        return timedelta(seconds=parse_duration(value))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _version(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return number


def register(actions: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `keyset` and its actions under `camera-registry police`."""
    keyset = actions.add_parser(
        "keyset",
        help="police key sets: sign (offline, root key), show, publish (registry)",
        description="A key set names the request-signing keys valid now and the revoked "
        "ones, signed with a police root key that agent owners pin (police.root_keys).",
    )
    steps = keyset.add_subparsers(dest="keyset_action", required=True, metavar="ACTION")

    sign = steps.add_parser(
        "sign",
        help="sign a key set with the root key (on the offline machine)",
        description="Print (or write to --out) a key set signed with the root key.",
    )
    sign.add_argument("--root-key", type=Path, required=True, metavar="PRIVATE_PEM")
    sign.add_argument("--passphrase-file", type=Path, metavar="FILE")
    sign.add_argument(
        "--keys",
        type=Path,
        nargs="*",
        default=[],
        metavar="PUBLIC_KEY",
        help="the request-signing public keys valid in this set (PEM or JWK files)",
    )
    sign.add_argument(
        "--revoke",
        action="append",
        default=[],
        metavar="KID",
        help="a revoked kid (repeat; keep earlier revocations in every later set)",
    )
    sign.add_argument(
        "--version", type=_version, required=True, help="higher than every earlier set's"
    )
    sign.add_argument(
        "--expires",
        type=_duration,
        default=_duration(DEFAULT_LIFETIME),
        metavar="DURATION",
        help=f"how long the set is valid from now (default {DEFAULT_LIFETIME})",
    )
    sign.add_argument("--issuer", default="police", help="the iss claim (default: police)")
    sign.add_argument("--out", type=Path, metavar="FILE", help="write to a new FILE")
    sign.set_defaults(func=_sign)

    show = steps.add_parser("show", help="show a key set file in plain words")
    show.add_argument("file", type=Path, metavar="KEYSET_FILE")
    show.add_argument(
        "--root", type=Path, metavar="PUBLIC_KEY", help="check the signature with this root key"
    )
    show.set_defaults(func=_show)

    publish = steps.add_parser(
        "publish",
        help="relay a signed key set to every agent (retained), from the registry",
    )
    publish.add_argument("file", type=Path, metavar="KEYSET_FILE")
    publish.add_argument(
        "--config",
        type=Path,
        default=None,
        help="registry config file (default /etc/camera-registry/config.yaml)",
    )
    publish.set_defaults(func=_publish)


def _sign(args: argparse.Namespace) -> int:
    from contract import jws
    from registry.police import keys
    from registry.police.keyset import make_keyset, read_public_key

    err = sys.stderr
    try:
        passphrase = (
            keys.read_passphrase_file(args.passphrase_file) if args.passphrase_file else None
        )
        root = keys.load_private_key(args.root_key, passphrase)
        valid = [read_public_key(path) for path in args.keys]
        token = make_keyset(
            root,
            issuer=args.issuer,
            version=args.version,
            lifetime=args.expires,
            keys=valid,
            revoked=args.revoke,
        )
    except keys.PoliceKeyError as exc:
        print(f"camera-registry: {exc}", file=err)
        return EX_REFUSED
    if (failed := put_token(token, args.out, err, "Key set")) is not None:
        return failed
    print(
        f"Signed key set version {args.version} with root key "
        f"{jws.thumbprint(root.public_key())}: {len(valid)} key(s), "
        f"{len(set(args.revoke))} revoked. Hand it to the registry to publish.",
        file=err,
    )
    return 0


def _show(args: argparse.Namespace) -> int:
    from registry.police.keys import PoliceKeyError
    from registry.police.keyset import describe, read_keyset_file, read_public_key

    try:
        found = read_keyset_file(args.file)
        root = read_public_key(args.root) if args.root is not None else None
    except PoliceKeyError as exc:
        print(f"camera-registry: {exc}", file=sys.stderr)
        return EX_REFUSED
    lines = describe(found, root)
    for line in lines:
        print(line)
    return EX_REFUSED if any("REFUSED" in line for line in lines) else 0


def _publish(args: argparse.Namespace) -> int:
    from registry.config import DEFAULT_CONFIG, load_server_config
    from registry.link import RequestRelay
    from registry.police.keys import PoliceKeyError
    from registry.police.keyset import read_keyset_file

    try:
        found = read_keyset_file(args.file)
    except PoliceKeyError as exc:
        print(f"camera-registry: not published: {exc}", file=sys.stderr)
        return EX_REFUSED
    config = load_server_config(args.config or DEFAULT_CONFIG)
    relay = RequestRelay(config.mqtt)
    relay.start()
    try:
        relay.publish_keyset(found.token)  # RegistryError: main() says why, exit 70
    finally:
        relay.stop()
    print(
        f"Published key set version {found.claims.get('version')} (retained); agents that "
        "pinned its root key take it if it is newer than theirs."
    )
    return 0
