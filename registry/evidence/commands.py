"""`camera-registry evidence verify DIR [--key FILE]`: the offline check of an evidence
package, for court: no server and no database, just the folder and the agent's key."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from contract import jws
from registry.evidence.timestamp import STAMP_NAME, TSA_ROOTS_NAME, fingerprint, load_roots
from registry.evidence.verify import KEY_FILE_NAME, verify_package

EXIT_VERIFIED = 0
EXIT_NOT_VERIFIED = 1
EXIT_USAGE = 2


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add this area's subcommands to the `camera-registry` parser."""
    evidence = commands.add_parser("evidence", help="evidence packages")
    actions = evidence.add_subparsers(dest="evidence_command", required=True, metavar="ACTION")
    verify = actions.add_parser(
        "verify",
        help="check a package folder offline: signature, every file's size and SHA-256",
        description="Check an evidence package folder without the registry: the signature "
        "of manifest.jws against the agent's public key and the size and SHA-256 of every "
        "file it lists. Exit 0 if verified, 1 if not, 2 on usage errors.",
    )
    verify.add_argument("directory", metavar="DIR", type=Path, help="the package folder")
    verify.add_argument(
        "--key",
        type=Path,
        metavar="FILE",
        help=f"the agent's public key, PEM or JWK (default: DIR/{KEY_FILE_NAME})",
    )
    verify.add_argument(
        "--tsa-roots",
        type=Path,
        metavar="FILE",
        help="PEM root certificates of the trusted time-stamping authority, to check "
        f"{STAMP_NAME} (default: DIR/{TSA_ROOTS_NAME} if there)",
    )
    verify.add_argument("--request-id", help="the request id the manifest must name")
    verify.add_argument("--agent", help="the agent id the manifest must name")
    verify.set_defaults(func=_verify)


def load_public_key(path: Path) -> Ed25519PublicKey:
    """An Ed25519 public key from a PEM or JWK file; ValueError saying what is wrong."""
    data = path.read_bytes()
    if data.lstrip().startswith(b"{"):
        try:
            jwk = json.loads(data)
        except ValueError as exc:
            raise ValueError(f"not a JWK: {exc}") from None
        if not isinstance(jwk, dict):
            raise ValueError("not a JWK object")
        return jws.public_key_from_jwk(jwk)
    return jws.public_key_from_pem(data)


def _verify(args: argparse.Namespace) -> int:
    directory: Path = args.directory
    if not directory.is_dir():
        print(f"evidence verify: {directory} is not a folder")
        return EXIT_USAGE
    key_file: Path = args.key or directory / KEY_FILE_NAME
    try:
        key = load_public_key(key_file)
    except FileNotFoundError:
        print(
            f"evidence verify: no key: {key_file} does not exist; give the agent's public "
            "key with --key"
        )
        return EXIT_USAGE
    except (OSError, ValueError) as exc:
        print(f"evidence verify: {key_file}: {exc}")
        return EXIT_USAGE
    roots_file: Path | None = args.tsa_roots
    if roots_file is None and (directory / TSA_ROOTS_NAME).is_file():
        roots_file = directory / TSA_ROOTS_NAME
    roots = None
    if roots_file is not None:
        try:
            roots = load_roots(roots_file)
        except (OSError, ValueError) as exc:
            print(f"evidence verify: {roots_file}: {exc}")
            return EXIT_USAGE
    verdict = verify_package(
        directory, key, request_id=args.request_id, agent=args.agent, tsa_roots=roots
    )
    print(f"package: {directory}")
    print(f"key: {key_file}, thumbprint {verdict.key_thumbprint}")
    print(
        "  (compare the thumbprint with the agent's enrolled key in the registry: a key "
        "that travelled with the package proves nothing on its own)"
    )
    if roots is not None:
        print(f"time-stamping roots: {roots_file}, SHA-256 {fingerprint(roots)}")
        print("  (compare with the time-stamping authority's published root certificate)")
    if verdict.manifest is not None:
        manifest = verdict.manifest
        print(
            f"request {manifest['request_id']}, agent {manifest['agent']}, case "
            f"{manifest['case']}, window {manifest['window']['start']} - "
            f"{manifest['window']['end']}, {len(manifest['files'])} files"
        )
    for line in verdict.checked:
        print(f"ok       {line}")
    for finding in verdict.findings:
        print(f"FINDING  {finding}")
    for line in verdict.stamp:
        print(f"stamp    {line}")
    for line in verdict.chain:
        print(f"chain    {line}")
    for line in verdict.device_clock:
        print(f"device   {line}")
    for line in verdict.clocks:
        print(f"clock    {line}")
    print("VERIFIED" if verdict.verified else "NOT VERIFIED")
    return EXIT_VERIFIED if verdict.verified else EXIT_NOT_VERIFIED
