"""Police key sets: every forged or broken set is refused with its reason, before anything
of it is believed (contract/keyset.py)."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from contract import jws
from contract.keyset import MAX_KEYSET_BYTES, KeySetRefused, sign_keyset, verify_keyset
from tests.support.tokens import Police, PoliceRoot

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
ROOT = PoliceRoot()
ROOTS = {ROOT.kid: ROOT.key.public_key()}
OFFICER = Police()


def good(**changes: Any) -> dict[str, Any]:
    claims = {**ROOT.claims(3, [OFFICER], ("revoked-kid",), now=NOW), **changes}
    return {name: value for name, value in claims.items() if value is not None}


def b64(data: bytes) -> str:
    return jws.b64url_encode(data)


def hs256() -> bytes:
    header = b64(json.dumps({"alg": "HS256", "typ": "camreg-keyset+jwt", "kid": ROOT.kid}).encode())
    body = b64(json.dumps(good()).encode())
    mac = hmac.new(b"guessed", f"{header}.{body}".encode(), hashlib.sha256).digest()
    return f"{header}.{body}.{b64(mac)}".encode()


def unsigned() -> bytes:
    header = b64(json.dumps({"alg": "none", "typ": "camreg-keyset+jwt", "kid": ROOT.kid}).encode())
    return f"{header}.{b64(json.dumps(good()).encode())}.".encode()


def test_a_set_signed_by_the_pinned_root_is_read_whole() -> None:
    keyset = verify_keyset(ROOT.keyset(good()), ROOTS, now=NOW)
    assert keyset.version == 3
    assert dict(keyset.keys) == {OFFICER.kid: keyset.keys[OFFICER.kid]}
    assert keyset.revoked == {"revoked-kid"}
    assert keyset.root_kid == ROOT.kid
    assert keyset.expires == NOW + timedelta(days=30)
    assert not keyset.stale(NOW) and keyset.stale(NOW + timedelta(days=30))


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"x" * (MAX_KEYSET_BYTES + 1), "too_large"),
        (b"not a jws", "malformed"),
        (b"a.b", "malformed"),
        ("é.é.é".encode(), "malformed"),
        (b"!!.!!.!!", "malformed"),
        (ROOT.keyset(b'{"version": 1, "version": 9}'), "malformed"),  # duplicate key
        (ROOT.keyset(b"[1]"), "malformed"),
        (ROOT.keyset(json.dumps({"keys": [[[[[1]]]]]}).encode()), "malformed"),
        (unsigned(), "bad_algorithm"),
        (hs256(), "bad_algorithm"),
        (ROOT.keyset(good(), header={"alg": "EdDSA", "kid": ROOT.kid}), "bad_type"),
        (
            ROOT.keyset(
                good(), header={"alg": "EdDSA", "typ": "camreg-request+jwt", "kid": ROOT.kid}
            ),
            "bad_type",
        ),
        # Signed by a request-signing key, or by a key the registry made: not a root.
        (ROOT.keyset(good(), header=None, key=OFFICER.key), "bad_signature"),
        (
            PoliceRoot().keyset(good()),
            "unknown_key",
        ),
        (ROOT.keyset(good(), header={"alg": "EdDSA", "typ": "camreg-keyset+jwt"}), "unknown_key"),
        (ROOT.keyset(good(version=0)), "claims_invalid"),
        (ROOT.keyset(good(version="4")), "claims_invalid"),
        (ROOT.keyset(good(version=True)), "claims_invalid"),
        (ROOT.keyset(good(version=2**53)), "claims_invalid"),
        (ROOT.keyset(good(iss=None)), "claims_invalid"),
        (ROOT.keyset(good(exp=None)), "claims_invalid"),
        (ROOT.keyset(good(exp=int(NOW.timestamp()) - 10)), "claims_invalid"),  # before iat
        (ROOT.keyset(good(keys={"x": 1})), "claims_invalid"),
        (ROOT.keyset(good(keys=[{"kty": "RSA", "n": "x"}])), "claims_invalid"),
        (ROOT.keyset(good(keys=[{**OFFICER.jwk, "d": "secret"}])), "claims_invalid"),
        (ROOT.keyset(good(keys=[{**OFFICER.jwk, "kid": "someone-else"}])), "claims_invalid"),
        (ROOT.keyset(good(keys=[Police().jwk for _ in range(33)])), "claims_invalid"),
        (ROOT.keyset(good(revoked=[1])), "claims_invalid"),
        (ROOT.keyset(good(revoked=[OFFICER.kid])), "claims_invalid"),  # valid and revoked
        (
            ROOT.keyset(good(iat=int(NOW.timestamp()) - 90 * 86400, exp=int(NOW.timestamp()) - 61)),
            "expired",
        ),
    ],
)
def test_a_forged_or_broken_set_is_refused_with_its_reason(payload: bytes, reason: str) -> None:
    with pytest.raises(KeySetRefused) as refused:
        verify_keyset(payload, ROOTS, now=NOW)
    assert refused.value.reason == reason


def test_a_bit_flipped_in_the_claims_breaks_the_signature() -> None:
    header, body, signature = ROOT.keyset(good()).split(b".")
    claims = json.loads(jws.b64url_decode(body.decode()))
    claims["revoked"] = []
    forged = b".".join((header, jws.b64url_encode(json.dumps(claims).encode()).encode(), signature))
    with pytest.raises(KeySetRefused) as refused:
        verify_keyset(forged, ROOTS, now=NOW)
    assert refused.value.reason == "bad_signature"


def test_without_a_time_a_stale_set_still_reads_for_its_version_and_revocations() -> None:
    old = ROOT.keyset(good(iat=int(NOW.timestamp()) - 9000, exp=int(NOW.timestamp()) - 3600))
    assert verify_keyset(old, ROOTS, now=None).revoked == {"revoked-kid"}


def test_sign_keyset_makes_what_verify_keyset_reads_and_refuses_what_it_would_not() -> None:
    root = Ed25519PrivateKey.generate()
    token = sign_keyset(
        root=root,
        issuer="police.example",
        version=5,
        issued=NOW,
        expires=NOW + timedelta(days=1),
        keys=[OFFICER.key.public_key()],
        revoked=["gone"],
    )
    keyset = verify_keyset(
        token.encode(), {jws.thumbprint(root.public_key()): root.public_key()}, now=NOW
    )
    assert (keyset.version, set(keyset.keys), set(keyset.revoked)) == (5, {OFFICER.kid}, {"gone"})
    with pytest.raises(ValueError, match="valid and as revoked"):
        sign_keyset(
            root=root,
            issuer="police.example",
            version=6,
            issued=NOW,
            expires=NOW + timedelta(days=1),
            keys=[OFFICER.key.public_key()],
            revoked=[OFFICER.kid],
        )
