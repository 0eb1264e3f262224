"""Compact JWS with EdDSA (Ed25519) only, on top of `cryptography`.

Written here rather than taken from a JOSE library on purpose: the request contract
(DESIGN.md) fixes the order of the checks and a reason code for each failure, and asks
for things libraries accept or cannot report (duplicate JSON keys, padding in
base64url, the exact `typ`). What remains is small: strict base64url, the RFC 7638 key
thumbprint, and one signature call into `cryptography`.

Part of the contract: the agent verifies tokens and signs manifests with it, the registry
signs tokens and checks enrolment requests and evidence with it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from contract.strict_json import no_duplicate_keys

_B64URL = re.compile(r"[A-Za-z0-9_-]*")


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Strict base64url without padding (RFC 7515 section 2), in its one canonical
    spelling; ValueError otherwise. The last character of a group carries unused low
    bits; decoders ignore them, so without this check one signature or key had up to 16
    spellings (a token that is "new" to a cache by its bytes, the same to the verifier)."""
    if not _B64URL.fullmatch(text) or len(text) % 4 == 1:
        raise ValueError("not base64url")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise ValueError("not base64url") from None
    if b64url_encode(data) != text:
        raise ValueError("not base64url: unused bits are set (not the canonical spelling)")
    return data


def b64_decode(text: str) -> bytes:
    """Strict standard base64 with padding (RFC 4648 section 4), canonical as
    b64url_decode: tus headers (Upload-Metadata, Upload-Checksum) use this alphabet."""
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("not base64") from None
    if base64.b64encode(data).decode("ascii") != text:
        raise ValueError("not base64: unused bits are set (not the canonical spelling)")
    return data


def public_jwk(key: Ed25519PublicKey) -> dict[str, str]:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return {"kty": "OKP", "crv": "Ed25519", "x": b64url_encode(raw)}


def thumbprint(key: Ed25519PublicKey) -> str:
    """RFC 7638 JWK thumbprint (SHA-256, base64url): the required members in
    lexicographic order, no whitespace."""
    jwk = public_jwk(key)
    canonical = json.dumps(
        {"crv": jwk["crv"], "kty": jwk["kty"], "x": jwk["x"]}, separators=(",", ":")
    )
    return b64url_encode(hashlib.sha256(canonical.encode("ascii")).digest())


def public_key_from_jwk(jwk: dict[str, object]) -> Ed25519PublicKey:
    if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519" or not isinstance(jwk.get("x"), str):
        raise ValueError("not an Ed25519 public key (kty OKP, crv Ed25519, x)")
    raw = b64url_decode(str(jwk["x"]))
    if len(raw) != 32:
        raise ValueError("an Ed25519 public key has 32 bytes")
    return Ed25519PublicKey.from_public_bytes(raw)


def public_key_from_pem(pem: bytes) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(pem)
    except ValueError as exc:
        raise ValueError(f"not a PEM public key: {exc}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not an Ed25519 key (only Ed25519 is accepted)")
    return key


def sign(payload: bytes, key: Ed25519PrivateKey, typ: str) -> str:
    """A compact JWS of `payload`: alg EdDSA, the given typ, kid = the key's thumbprint."""
    header = {"alg": "EdDSA", "typ": typ, "kid": thumbprint(key.public_key())}
    signing_input = (
        b64url_encode(json.dumps(header, separators=(",", ":")).encode())
        + "."
        + b64url_encode(payload)
    )
    signature = key.sign(signing_input.encode("ascii"))
    return signing_input + "." + b64url_encode(signature)


def verify_signature(signing_input: bytes, signature: bytes, key: Ed25519PublicKey) -> bool:
    try:
        key.verify(signature, signing_input)
    except InvalidSignature:
        return False
    return True


class MalformedJws(ValueError):
    """A compact JWS that cannot even be read: its detail says what was wrong. Each caller
    reports it under its own `malformed` reason."""


@dataclass(frozen=True)
class CompactJws:
    header: dict[str, Any]
    claims: dict[str, Any]
    signing_input: bytes  # the first two parts as sent, which the signature covers
    signature: bytes
    text: str  # the whole token, without surrounding white space


def parse_compact(token: bytes, max_depth: int) -> CompactJws:
    """Read a compact JWS whose header and payload are JSON objects, strictly: ASCII,
    three base64url parts, UTF-8 JSON with no repeated key and no nesting deeper than
    `max_depth`. Raises MalformedJws; the signature is not checked here."""
    try:
        text = token.decode("ascii").strip()
    except UnicodeDecodeError:
        raise MalformedJws("not ASCII compact serialisation") from None
    parts = text.split(".")
    if len(parts) != 3:
        raise MalformedJws(f"{len(parts)} parts, not three")
    try:
        raw = [b64url_decode(part) for part in parts]
    except ValueError:
        raise MalformedJws("a part is not base64url") from None
    header = _json_object(raw[0], "header", max_depth)
    claims = _json_object(raw[1], "claims", max_depth)
    return CompactJws(header, claims, f"{parts[0]}.{parts[1]}".encode("ascii"), raw[2], text)


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


def _json_object(raw: bytes, what: str, max_depth: int) -> dict[str, Any]:
    try:
        value = json.loads(raw.decode("utf-8"), object_pairs_hook=no_duplicate_keys)
    except UnicodeDecodeError:
        raise MalformedJws(f"the {what} is not UTF-8") from None
    except RecursionError:
        raise MalformedJws(f"the {what} is nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError and duplicate keys
        raise MalformedJws(f"the {what} is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise MalformedJws(f"the {what} is not a JSON object")
    if _depth(value) > max_depth:
        raise MalformedJws(f"the {what} is nested too deeply")
    return value
