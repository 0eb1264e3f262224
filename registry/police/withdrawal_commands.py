"""`camera-registry police withdrawal sign | send`: stopping a request the police sent.

`sign` runs on the officer's machine with a police request-signing key (docs/police.md);
`send` runs on the registry: it relays the signed withdrawal to the agent it names, on the
agent's requests topic, and marks the request withdrawn in the registry's database so the
evidence intake takes nothing more for it. The agent says what it did on the request's
status topic (`withdrawn`), or, for a request it does not have or that had ended, on the
withdrawal's own status id (`rejected`, `unknown_request` / `request_finished`).

Exit codes: 0 done, 1 refused or invalid input, 2 usage (argparse), 73 (EX_CANTCREAT)
the output file cannot be written, 70 (EX_SOFTWARE) the broker did not take it.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from pathlib import Path

from registry.police.keyset_commands import _duration
from registry.police.token_files import put_token

EX_REFUSED = 1
# Long enough to reach an agent that is offline for a while (the broker keeps it for a
# persistent session), short enough that a leaked copy soon does nothing.
DEFAULT_LIFETIME = "7d"


def register(actions: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `withdrawal` and its actions under `camera-registry police`."""
    withdrawal = actions.add_parser(
        "withdrawal",
        help="withdraw a request: sign (officer's machine), send (registry)",
        description="A withdrawal stops one request wherever it is on its agent (waiting, "
        "exporting, uploading) and releases its footage hold. It is signed with a police "
        "request-signing key; the registry only relays it.",
    )
    steps = withdrawal.add_subparsers(dest="withdrawal_action", required=True, metavar="ACTION")
    sign = steps.add_parser("sign", help="sign a withdrawal of REQUEST_ID")
    sign.add_argument("request_id", metavar="REQUEST_ID")
    sign.add_argument("--agent", required=True, help="the agent the request was sent to")
    sign.add_argument("--key", type=Path, required=True, metavar="PRIVATE_PEM")
    sign.add_argument("--passphrase-file", type=Path, metavar="FILE")
    sign.add_argument("--reason", default="", help="why, in words the owner will read")
    sign.add_argument("--issuer", default="police", help="the iss claim (default: police)")
    sign.add_argument(
        "--expires",
        type=_duration,
        default=_duration(DEFAULT_LIFETIME),
        metavar="DURATION",
        help=f"how long agents accept it from now (default {DEFAULT_LIFETIME})",
    )
    sign.add_argument("--out", type=Path, metavar="FILE", help="write to a new FILE")
    sign.set_defaults(func=_sign)

    send = steps.add_parser("send", help="relay a signed withdrawal to its agent (registry)")
    send.add_argument("file", type=Path, metavar="WITHDRAWAL_FILE")
    send.add_argument(
        "--config",
        type=Path,
        default=None,
        help="registry config file (default /etc/camera-registry/config.yaml)",
    )
    send.set_defaults(func=_send)


def _sign(args: argparse.Namespace) -> int:
    from contract import jws
    from registry.police import keys
    from registry.police.withdrawal import make_withdrawal

    err = sys.stderr
    try:
        passphrase = (
            keys.read_passphrase_file(args.passphrase_file) if args.passphrase_file else None
        )
        key = keys.load_private_key(args.key, passphrase)
        token = make_withdrawal(
            key,
            agent=args.agent,
            request_id=args.request_id,
            issuer=args.issuer,
            reason=args.reason,
            lifetime=args.expires,
        )
    except keys.PoliceKeyError as exc:
        print(f"camera-registry: not signed: {exc}", file=err)
        return EX_REFUSED
    if (failed := put_token(token, args.out, err, "Withdrawal")) is not None:
        return failed
    print(
        f"Signed a withdrawal of request {args.request_id} on agent {args.agent} with key "
        f"{jws.thumbprint(key.public_key())}. Hand it to the registry to send.",
        file=err,
    )
    return 0


def _send(args: argparse.Namespace) -> int:
    from sqlalchemy import update

    from registry.config import DEFAULT_CONFIG, load_server_config
    from registry.db.engine import open_engine
    from registry.db.schema import requests
    from registry.link import RequestRelay
    from registry.police.keys import PoliceKeyError
    from registry.police.withdrawal import read_withdrawal_file

    try:
        found = read_withdrawal_file(args.file)
    except PoliceKeyError as exc:
        print(f"camera-registry: not sent: {exc}", file=sys.stderr)
        return EX_REFUSED
    config = load_server_config(args.config or DEFAULT_CONFIG)
    relay = RequestRelay(config.mqtt)
    relay.start()
    try:
        relay.publish_request(found.agent, found.token)  # RegistryError: exit 70
    finally:
        relay.stop()
    engine = open_engine(config.database_url)
    try:
        with engine.begin() as db:
            marked = db.execute(
                update(requests)
                .where(requests.c.request_id == found.request_id)
                .where(requests.c.agent_id == found.agent)
                .where(requests.c.withdrawn_at.is_(None))
                .values(withdrawn_at=time.time())
            ).rowcount
    finally:
        engine.dispose()
    where = hashlib.sha256(found.token.encode("ascii")).hexdigest()[:16]
    print(
        f"Sent the withdrawal of request {found.request_id} to agent {found.agent}"
        + ("; the registry takes no more evidence for it." if marked else ".")
    )
    print(
        f"The agent says what it did on the request's status (withdrawn), or on {where} "
        "if it refused the withdrawal."
    )
    return 0
