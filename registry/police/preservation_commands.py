"""`camera-registry police preservation sign | send`: a police preservation, on the officer's
machine. It is a request token of kind `preserve` without `upload` (docs/requests.md,
"Preservation"): the agent holds the window until the token's `exp` and sends nothing.
`send` runs on the registry and relays it to its agent, like a request (the registry
cannot make or change one).

Exit codes: 0 signed, 1 refused or invalid input, 2 usage (argparse), 73 (EX_CANTCREAT)
the output file cannot be written, 70 (EX_SOFTWARE) the broker did not take it.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from contract.timestamps import rfc3339
from contract.token_rules import (
    DEFAULT_PRESERVE,
    MAX_PRESERVE,
    MAX_TOKEN_BYTES,
    PRESERVE,
    TOKEN_TYPE,
)
from registry.police.keyset_commands import _duration
from registry.police.token_files import put_token
from registry.police.withdrawal import ID_RE

EX_REFUSED = 1


def _moment(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an RFC 3339 time: {value!r}") from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{value!r} has no time zone (add Z)")
    return moment.astimezone(UTC)


def register(actions: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `preservation sign` under `camera-registry police`."""
    preservation = actions.add_parser(
        "preservation",
        help="preserve a window on an agent without any upload: sign (officer's machine)",
        description="A preservation asks an agent to keep a camera's footage of a window "
        "for a limited time (default 14 days, at most 90) without sending it, so that a "
        "later order still finds it.",
    )
    steps = preservation.add_subparsers(dest="preservation_action", required=True)
    sign = steps.add_parser("sign", help="sign a preservation")
    sign.add_argument("--agent", required=True)
    sign.add_argument("--camera", action="append", required=True, help="a camera id (repeat)")
    sign.add_argument("--start", type=_moment, required=True, help="RFC 3339, e.g. ...Z")
    sign.add_argument("--end", type=_moment, required=True)
    sign.add_argument("--case", required=True)
    sign.add_argument("--basis", required=True, help="the legal basis")
    sign.add_argument("--requester", required=True)
    sign.add_argument("--issuer", default="police")
    sign.add_argument("--key", type=Path, required=True, metavar="PRIVATE_PEM")
    sign.add_argument("--passphrase-file", type=Path, metavar="FILE")
    sign.add_argument(
        "--keep",
        type=_duration,
        default=DEFAULT_PRESERVE,
        metavar="DURATION",
        help=f"how long the agent keeps it (default {DEFAULT_PRESERVE.days}d, "
        f"at most {MAX_PRESERVE.days}d)",
    )
    sign.add_argument("--out", type=Path, metavar="FILE", help="write to a new FILE")
    sign.set_defaults(func=_sign)

    send = steps.add_parser("send", help="relay a signed preservation to its agent (registry)")
    send.add_argument("file", type=Path, metavar="PRESERVATION_FILE")
    send.add_argument("--config", type=Path, default=None, help="registry config file")
    send.set_defaults(func=_send)


def _send(args: argparse.Namespace) -> int:
    from contract import jws
    from registry.config import DEFAULT_CONFIG, load_server_config
    from registry.link import RequestRelay

    try:
        text = args.file.read_bytes()[: MAX_TOKEN_BYTES + 2].strip()
        parsed = jws.parse_compact(text, 6)
    except (OSError, jws.MalformedJws) as exc:
        print(f"camera-registry: not sent: {args.file}: {exc}", file=sys.stderr)
        return EX_REFUSED
    claims = parsed.claims
    if (
        parsed.header.get("typ") != TOKEN_TYPE
        or claims.get("kind") != PRESERVE
        or not isinstance(claims.get("aud"), str)
        or not ID_RE.fullmatch(claims["aud"])
    ):
        print(f"camera-registry: not sent: {args.file} is not a preservation", file=sys.stderr)
        return EX_REFUSED
    config = load_server_config(args.config or DEFAULT_CONFIG)
    relay = RequestRelay(config.mqtt)
    relay.start()
    try:
        relay.publish_request(claims["aud"], text.decode("ascii"))  # RegistryError: exit 70
    finally:
        relay.stop()
    print(f"Sent preservation {claims.get('jti')} to agent {claims['aud']}.")
    return 0


def _sign(args: argparse.Namespace) -> int:
    from contract import jws
    from registry.police import keys

    err = sys.stderr
    problems = [
        f"not an id: {value[:80]!r}"
        for value in (args.agent, *args.camera)
        if not ID_RE.fullmatch(value)
    ]
    if args.end <= args.start:
        problems.append("the window ends before it starts")
    if not timedelta(0) < args.keep <= MAX_PRESERVE:
        problems.append(f"--keep must be more than 0 and at most {MAX_PRESERVE.days} days")
    if problems:
        print(f"camera-registry: not signed: {'; '.join(problems)}", file=err)
        return EX_REFUSED
    try:
        passphrase = (
            keys.read_passphrase_file(args.passphrase_file) if args.passphrase_file else None
        )
        key = keys.load_private_key(args.key, passphrase)
    except keys.PoliceKeyError as exc:
        print(f"camera-registry: not signed: {exc}", file=err)
        return EX_REFUSED
    now = int(datetime.now(UTC).timestamp())
    request_id = f"pr-{secrets.token_hex(8)}"
    claims = {
        "iss": args.issuer,
        "aud": args.agent,
        "jti": request_id,
        "iat": now,
        "exp": now + int(args.keep.total_seconds()),
        "kind": PRESERVE,
        "case": args.case,
        "basis": args.basis,
        "requester": args.requester,
        "cameras": list(dict.fromkeys(args.camera)),
        "window": {"start": rfc3339(args.start), "end": rfc3339(args.end)},
    }
    payload = json.dumps(claims, separators=(",", ":"), ensure_ascii=True).encode("ascii")
    token = jws.sign(payload, key, TOKEN_TYPE)
    if (failed := put_token(token, args.out, err, "Preservation")) is not None:
        return failed
    print(
        f"Signed preservation {request_id} for agent {args.agent}, kept until "
        f"{rfc3339(datetime.fromtimestamp(claims['exp'], UTC))}. Hand it to the registry "
        "to send (camera-registry police preservation send).",
        file=err,
    )
    return 0
