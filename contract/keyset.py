"""The police key set: which request-signing keys are valid now, signed by a police root key.

The police publish it (DESIGN.md, "Extending the contract"); the registry relays it,
retained, on `{prefix}/police/keyset` (contract/topics.py) and cannot forge it, because
every agent checks it against the root keys its owner pinned at setup (`police.root_keys`).
A compact JWS like a request token, checked in the same order with the same reason codes:
size, structure, algorithm (`EdDSA` only), `typ` (`camreg-keyset+jwt`), `kid` (a pinned
root key), signature, then the claims:

    {"iss": "...", "version": 7, "iat": 1765000000, "exp": 1767600000,
     "keys": [{"kty": "OKP", "crv": "Ed25519", "x": "..."}, ...],
     "revoked": ["<kid>", ...]}

`version` only rises (the agent refuses a set that is not newer than the one it holds),
`exp` is when the set goes stale, `keys` are the request-signing keys as JWKs and
`revoked` the `kid`s (RFC 7638 thumbprints) no token may be signed with any more.

Part of the contract: the agent verifies a set with it, the registry's
`camera-registry police keyset sign | show` writes and reads one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from contract import jws
from contract.token_rules import CLOCK_SKEW

KEYSET_TYPE = "camreg-keyset+jwt"
# A set of a few keys and a few dozen revoked kids is 1-3 kB; anything near this is not one.
MAX_KEYSET_BYTES = 32 * 1024
# More request-signing keys than any authority rotates through at once.
MAX_KEYS = 32
# Revoked kids are kept in every later set; this many covers decades of monthly rotation.
MAX_REVOKED = 512
# The claims are flat: an object of lists of small objects. Deeper is not a key set.
MAX_JSON_DEPTH = 4
# Versions are JSON integers every reader handles exactly (JavaScript's safe range).
MAX_VERSION = 2**53 - 1


class KeySetRefused(Exception):
    """A key set that is not accepted, with the reason code (docs/requests.md)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class KeySet:
    """A key set whose signature by a pinned root key verified and whose claims are sound."""

    version: int
    issuer: str
    issued: datetime
    expires: datetime
    keys: Mapping[str, Ed25519PublicKey]  # kid -> request-signing key
    revoked: frozenset[str]
    root_kid: str
    token: str  # the compact JWS exactly as received, to keep on disk and compare

    def stale(self, now: datetime) -> bool:
        """Past its expiry: its keys no longer sign accepted requests (its revocations hold)."""
        return self.expires <= now


def verify_keyset(
    payload: bytes, roots: Mapping[str, Ed25519PublicKey], *, now: datetime | None
) -> KeySet:
    """The key set in `payload`, signed by one of `roots` (kid -> root key), or
    KeySetRefused. With `now` None the expiry is not checked (a set kept on disk stays
    in force for its revocations and its version after it went stale)."""
    if len(payload) > MAX_KEYSET_BYTES:
        raise KeySetRefused("too_large", f"{len(payload)} bytes, more than {MAX_KEYSET_BYTES}")
    try:
        parsed = jws.parse_compact(payload, MAX_JSON_DEPTH)
    except jws.MalformedJws as exc:
        raise KeySetRefused("malformed", str(exc)) from None
    header, claims, text = parsed.header, parsed.claims, parsed.text
    signing_input, signature = parsed.signing_input, parsed.signature
    if header.get("alg") != "EdDSA":
        raise KeySetRefused("bad_algorithm", f"alg {header.get('alg')!r}; only EdDSA is accepted")
    if header.get("typ") != KEYSET_TYPE:
        raise KeySetRefused("bad_type", f"typ {header.get('typ')!r}, not {KEYSET_TYPE}")
    kid = header.get("kid")
    root = roots.get(kid) if isinstance(kid, str) else None
    if root is None or not isinstance(kid, str):
        raise KeySetRefused("unknown_key", f"kid {kid!r} is not a pinned police root key")
    if not jws.verify_signature(signing_input, signature, root):
        raise KeySetRefused("bad_signature", "the signature does not verify with that root key")
    keyset = _check_claims(claims, kid, text)
    if now is not None and keyset.expires <= now - CLOCK_SKEW:
        raise KeySetRefused("expired", f"the key set expired at {keyset.expires.isoformat()}")
    return keyset


def sign_keyset(
    *,
    root: Ed25519PrivateKey,
    issuer: str,
    version: int,
    issued: datetime,
    expires: datetime,
    keys: list[Ed25519PublicKey],
    revoked: list[str],
) -> str:
    """The compact JWS of a key set, signed with the root key; ValueError when the claims
    would not pass verify_keyset (so a signer never hands out a set agents refuse)."""
    claims = {
        "iss": issuer,
        "version": version,
        "iat": int(issued.timestamp()),
        "exp": int(expires.timestamp()),
        "keys": [jws.public_jwk(key) for key in keys],
        "revoked": sorted(set(revoked)),
    }
    payload = json.dumps(claims, separators=(",", ":"), ensure_ascii=True).encode("ascii")
    token = jws.sign(payload, root, KEYSET_TYPE)
    root_kid = jws.thumbprint(root.public_key())
    try:
        verify_keyset(token.encode("ascii"), {root_kid: root.public_key()}, now=None)
    except KeySetRefused as exc:
        raise ValueError(exc.detail) from None
    return token


def _invalid(detail: str) -> KeySetRefused:
    return KeySetRefused("claims_invalid", detail)


def _check_claims(claims: dict[str, Any], root_kid: str, token: str) -> KeySet:
    issuer = claims.get("iss")
    if not isinstance(issuer, str) or not issuer:
        raise _invalid("iss missing or not a non-empty string")
    version = claims.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= MAX_VERSION:
        raise _invalid(f"version must be an integer from 1 to {MAX_VERSION}")
    times = []
    for name in ("iat", "exp"):
        value = claims.get(name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _invalid(f"{name} missing or not a number")
        try:
            times.append(datetime.fromtimestamp(value, UTC))
        except (OverflowError, OSError, ValueError):
            raise _invalid(f"{name} is out of range") from None
    issued, expires = times
    if expires <= issued:
        raise _invalid("exp is not after iat")
    jwks, revoked = claims.get("keys"), claims.get("revoked")
    if not isinstance(jwks, list) or len(jwks) > MAX_KEYS:
        raise _invalid(f"keys must be a list of at most {MAX_KEYS} JWKs")
    if not isinstance(revoked, list) or len(revoked) > MAX_REVOKED:
        raise _invalid(f"revoked must be a list of at most {MAX_REVOKED} kids")
    if not all(isinstance(kid, str) and kid for kid in revoked):
        raise _invalid("revoked must list kids (strings)")
    keys: dict[str, Ed25519PublicKey] = {}
    for jwk in jwks:
        if not isinstance(jwk, dict) or "d" in jwk:
            raise _invalid("each of keys must be a public JWK")
        try:
            key = jws.public_key_from_jwk(jwk)
        except ValueError as exc:
            raise _invalid(f"a key is not usable: {exc}") from None
        kid = jws.thumbprint(key)
        if "kid" in jwk and jwk["kid"] != kid:
            raise _invalid(f"a key's kid {jwk['kid']!r} is not its thumbprint {kid}")
        keys[kid] = key
    both = sorted(set(keys) & set(revoked))
    if both:
        raise _invalid(f"kid {both[0]} is listed as valid and as revoked")
    return KeySet(
        version=version,
        issuer=issuer,
        issued=issued,
        expires=expires,
        keys=keys,
        revoked=frozenset(revoked),
        root_kid=root_kid,
        token=token,
    )
