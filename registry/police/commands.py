"""`camera-registry police keygen | sign`: the request-signing key and signing, both meant to
run on the officer's or the authority's machine, never on the registry server.

Exit codes of `sign`: 0 signed, 1 declined or invalid input, 2 usage (argparse).
`keygen`: 0 created, 1 invalid input, 73 (EX_CANTCREAT) the files cannot be written.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from contract.exit_codes import EX_CANTCREAT
from registry.police import keyset_commands, preservation_commands, withdrawal_commands

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

EX_DECLINED = 1


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add this area's subcommands to the `camera-registry` parser."""
    police = commands.add_parser(
        "police",
        help="police request-signing key and signing (run off the server)",
        description="Make the police request-signing key and sign prepared requests. Both "
        "run on the officer's own machine: the registry server never holds the key.",
    )
    actions = police.add_subparsers(dest="action", required=True, metavar="ACTION")

    keygen = actions.add_parser(
        "keygen",
        help="make an Ed25519 signing key pair",
        description="Write NAME.key (private, mode 0600) and NAME.pem (public, for agent "
        "owners to pin) into DIR; existing files are never replaced.",
    )
    keygen.add_argument(
        "--out",
        type=Path,
        default=Path("."),
        metavar="DIR",
        help="folder for the two files (default: the current folder)",
    )
    keygen.add_argument(
        "--name",
        default=f"police-{datetime.now(UTC).year}",
        help="file name stem (default: police-YEAR)",
    )
    keygen.add_argument(
        "--passphrase-file",
        type=Path,
        metavar="FILE",
        help="encrypt the private key with the passphrase in FILE",
    )
    keygen.add_argument(
        "--root",
        action="store_true",
        help="a root key: it signs key sets only (police keyset sign), and owners pin it "
        "as police.root_keys; keep it on an offline machine",
    )
    keygen.set_defaults(func=_keygen)

    sign = actions.add_parser(
        "sign",
        help="sign a request the registry prepared (claims.json)",
        description="Show the prepared request in plain words, ask for confirmation, and "
        "print the signed token (a compact JWS) to submit to the registry.",
    )
    sign.add_argument("claims", type=Path, metavar="CLAIMS_JSON")
    sign.add_argument(
        "--key",
        type=Path,
        required=True,
        metavar="PRIVATE_PEM",
        help="the police private key (NAME.key)",
    )
    sign.add_argument(
        "--passphrase-file",
        type=Path,
        metavar="FILE",
        help="the key's passphrase (asked on the terminal when not given)",
    )
    sign.add_argument(
        "--yes",
        action="store_true",
        help="sign without asking (for scripts that showed the claims already)",
    )
    sign.add_argument(
        "--out",
        type=Path,
        metavar="FILE",
        help="write the token to a new FILE instead of standard output",
    )
    sign.set_defaults(func=_sign)
    keyset_commands.register(actions)
    withdrawal_commands.register(actions)
    preservation_commands.register(actions)


def _keygen(args: argparse.Namespace) -> int:
    from registry.police import keys

    try:
        passphrase = (
            keys.read_passphrase_file(args.passphrase_file) if args.passphrase_file else None
        )
    except keys.PoliceKeyError as exc:
        print(f"camera-registry: {exc}", file=sys.stderr)
        return EX_DECLINED
    try:
        made = keys.generate(args.out, args.name, passphrase)
    except keys.PoliceKeyError as exc:
        print(f"camera-registry: {exc}", file=sys.stderr)
        return EX_CANTCREAT
    protection = "encrypted with the passphrase" if made.encrypted else "NOT encrypted"
    print(f"private key: {made.private_path} (mode 0600, {protection})")
    print(f"public key:  {made.public_path}")
    print(f"kid (RFC 7638 thumbprint): {made.kid}")
    print()
    if args.root:
        print("A root key: keep the private key on an offline machine and use it only to sign")
        print("key sets (camera-registry police keyset sign). Give agent owners the public key")
    else:
        print("Keep the private key off the registry server. Give agent owners the public key")
    print(f"file; they copy it to {keys.AGENT_CONFIG_DIR}/ and add to their config:")
    print()
    snippet = keys.pin_snippet(
        keys.AGENT_CONFIG_DIR / made.public_path.name, made.kid, root=args.root
    )
    print(snippet, end="")
    return 0


def _load_key(args: argparse.Namespace) -> Ed25519PrivateKey:
    """The private key, asking for its passphrase on the terminal when needed."""
    from registry.police import keys

    passphrase = keys.read_passphrase_file(args.passphrase_file) if args.passphrase_file else None
    if passphrase is None and keys.is_encrypted(args.key):
        if not sys.stdin.isatty():
            raise keys.PoliceKeyError(
                f"{args.key} is encrypted; give --passphrase-file or run in a terminal"
            )
        passphrase = getpass.getpass(f"Passphrase for {args.key}: ").encode()
    return keys.load_private_key(args.key, passphrase)


def _confirm(prompt: str, answers: TextIO, out: TextIO) -> bool:
    print(prompt, end="", file=out, flush=True)
    answer = answers.readline()
    return answer.strip().lower() in ("y", "yes")


def _sign(args: argparse.Namespace) -> int:
    from contract import jws
    from registry.police import keys, sign
    from registry.police.claims import ClaimsError, describe_claims

    # Everything for the officer goes to stderr, so stdout holds only the token.
    err = sys.stderr
    try:
        claims = sign.read_claims_file(args.claims)
        lines = describe_claims(claims)
    except ClaimsError as exc:
        print(f"camera-registry: refused: {exc}", file=err)
        return EX_DECLINED
    try:
        # A missing or unreadable key file is said before the officer is asked anything.
        keys.is_encrypted(args.key)
    except keys.PoliceKeyError as exc:
        print(f"camera-registry: not signed: {exc}", file=err)
        return EX_DECLINED
    print("This request asks for footage:", file=err)
    for line in lines:
        print(f"  {line}", file=err)
    warning = sign.expiry_warning(claims)
    if warning:
        print(warning, file=err)
    if not args.yes:
        # A pipe is not an officer: `yes | camera-registry police sign` must not sign.
        if not sys.stdin.isatty():
            print(
                "camera-registry: not signed: no terminal to ask on. Run it in a terminal, "
                "or pass --yes once you have read the request above.",
                file=err,
            )
            return EX_DECLINED
        if not _confirm("Sign this request? [y/N] ", sys.stdin, err):
            print("Not signed.", file=err)
            return EX_DECLINED
    try:
        key = _load_key(args)
        note = keys.permission_warning(args.key)
        if note:
            print(note, file=err)
        token = sign.sign_claims(claims, key)
        if args.out is not None:
            sign.write_token(args.out, token)
    except (keys.PoliceKeyError, ClaimsError) as exc:
        print(f"camera-registry: not signed: {exc}", file=err)
        return EX_DECLINED
    if args.out is None:
        print(token)
    else:
        print(f"Signed token written to {args.out}.", file=err)
    print(
        f"Signed request {claims['jti']} with key {jws.thumbprint(key.public_key())}. "
        "Submit the token to the registry on the request's page.",
        file=err,
    )
    return 0
