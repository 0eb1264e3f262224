"""Police key sets (contract/keyset.py): signed with the root key on the police's own,
offline machine; shown; and relayed by the registry, retained, for every agent.

The registry operator never holds a root key: `publish` only hands the signed bytes to
the broker. It refuses what is plainly not a key set (so an operator's slip does not
replace the retained set with junk), but whether a set is genuine only an agent can say,
against the root keys its owner pinned.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from contract import jws
from contract.keyset import (
    KEYSET_TYPE,
    MAX_KEYSET_BYTES,
    KeySetRefused,
    sign_keyset,
    verify_keyset,
)
from contract.strict_json import no_duplicate_keys
from registry.police.keys import PoliceKeyError, read_key_file

__all__ = ["KeySetFile", "describe", "make_keyset", "read_keyset_file", "read_public_key"]


@dataclass(frozen=True)
class KeySetFile:
    """A key set as a file holds it, decoded but NOT verified (no root key at hand)."""

    token: str
    header: dict[str, Any]
    claims: dict[str, Any]


def read_public_key(path: Path) -> Ed25519PublicKey:
    """A police public key file, PEM or JWK (as agent owners pin them)."""
    data = read_key_file(path)
    try:
        if data.lstrip().startswith(b"{"):
            return jws.public_key_from_jwk(json.loads(data))
        return jws.public_key_from_pem(data)
    except ValueError as exc:  # JSONDecodeError too
        raise PoliceKeyError(f"{path}: {exc}") from None


def make_keyset(
    root: Ed25519PrivateKey,
    *,
    issuer: str,
    version: int,
    lifetime: timedelta,
    keys: list[Ed25519PublicKey],
    revoked: list[str],
    now: datetime | None = None,
) -> str:
    """The signed key set; PoliceKeyError when agents would refuse it."""
    issued = now or datetime.now(UTC)
    if lifetime <= timedelta(0):
        raise PoliceKeyError("--expires must be a positive duration")
    try:
        return sign_keyset(
            root=root,
            issuer=issuer,
            version=version,
            issued=issued,
            expires=issued + lifetime,
            keys=keys,
            revoked=revoked,
        )
    except ValueError as exc:
        raise PoliceKeyError(f"not signed: {exc}") from None


def read_keyset_file(path: Path) -> KeySetFile:
    """A key set file (the compact JWS, one line), decoded; PoliceKeyError when it is not
    plainly a key set (size, three base64url parts of JSON, alg EdDSA, typ)."""
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_KEYSET_BYTES + 2)
    except OSError as exc:
        raise PoliceKeyError(f"cannot read {path}: {exc.strerror}") from None
    text = raw.decode("ascii", errors="replace").strip()
    if len(text) > MAX_KEYSET_BYTES:
        raise PoliceKeyError(f"{path} is over {MAX_KEYSET_BYTES} bytes; agents refuse it")
    parts = text.split(".")
    try:
        if len(parts) != 3:
            raise ValueError(f"{len(parts)} parts, not three")
        header, claims = (
            json.loads(jws.b64url_decode(part), object_pairs_hook=no_duplicate_keys)
            for part in parts[:2]
        )
        jws.b64url_decode(parts[2])
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise PoliceKeyError(f"{path} is not a compact JWS: {exc}") from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise PoliceKeyError(f"{path} is not a compact JWS of JSON objects")
    if header.get("alg") != "EdDSA" or header.get("typ") != KEYSET_TYPE:
        raise PoliceKeyError(f"{path} is not a police key set (alg EdDSA, typ {KEYSET_TYPE})")
    return KeySetFile(text, header, claims)


def describe(found: KeySetFile, root: Ed25519PublicKey | None) -> list[str]:
    """The set in plain lines; with `root`, whether its signature verifies with it."""
    claims = found.claims
    lines = []
    if root is None:
        lines.append("signature: NOT checked (give --root PUBLIC_KEY to check it)")
    else:
        try:
            verify_keyset(found.token.encode("ascii"), {jws.thumbprint(root): root}, now=None)
            lines.append(f"signature: verifies with root key {jws.thumbprint(root)}")
        except KeySetRefused as exc:
            lines.append(f"signature: REFUSED ({exc})")
    lines.append(f"root key (kid): {found.header.get('kid')}")
    lines.append(f"issuer: {claims.get('iss')}")
    lines.append(f"version: {claims.get('version')}")
    for name, what in (("iat", "signed"), ("exp", "expires")):
        value = claims.get(name)
        when = f"NOT A TIME {str(value)[:40]}"
        if isinstance(value, int | float) and not isinstance(value, bool):
            # Out of range (a hostile 1e300): shown as found.
            with contextlib.suppress(OverflowError, ValueError, OSError):
                when = f"{datetime.fromtimestamp(value, UTC):%Y-%m-%d %H:%M:%S} UTC"
        lines.append(f"{what}: {when}")
    for jwk in claims.get("keys") or []:
        try:
            lines.append(f"valid key: {jws.thumbprint(jws.public_key_from_jwk(jwk))}")
        except (ValueError, AttributeError, TypeError):
            lines.append(f"valid key: UNUSABLE {str(jwk)[:80]}")
    for kid in claims.get("revoked") or []:
        lines.append(f"revoked: {kid}")
    return lines
