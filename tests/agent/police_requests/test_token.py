"""Request tokens: every hostile input of issue 6 is rejected with its DESIGN.md reason.

Tokens are assembled as raw bytes here: a JOSE library refuses to make most of them."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.police_requests.token import (
    Policy,
    Rejected,
    status_id,
    upload_allowed,
    verify,
)
from contract import jws
from contract.token_rules import MAX_TOKEN_BYTES

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
POLICE = Ed25519PrivateKey.generate()
REGISTRY = Ed25519PrivateKey.generate()  # a key the agent knows nothing about
ALLOW = ("https://evidence.police.example/uploads/",)
POLICY = Policy(
    agent_id="shop-42",
    police_keys={jws.thumbprint(POLICE.public_key()): POLICE.public_key()},
    cameras=frozenset({"front", "back"}),
    max_window=timedelta(hours=1),
    upload_allow=ALLOW,
)
OLDEST = NOW - timedelta(days=3)


def b64(data: bytes) -> str:
    return jws.b64url_encode(data)


def claims(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "iss": "police.example",
        "aud": "shop-42",
        "jti": "req-0001",
        "iat": int(NOW.timestamp()) - 60,
        "exp": int(NOW.timestamp()) + 3600,
        "kind": "order",
        "case": "2026-1234",
        "basis": "Sv 126nd",
        "requester": "officer 4711",
        "cameras": ["front"],
        "window": {"start": "2026-11-27T10:00:00Z", "end": "2026-11-27T10:05:00Z"},
        "upload": {"url": "https://evidence.police.example/uploads/", "token": "t0k"},
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def header(**changes: Any) -> dict[str, Any]:
    base = {"alg": "EdDSA", "typ": "camreg-request+jwt", "kid": jws.thumbprint(POLICE.public_key())}
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def token(
    head: dict[str, Any] | bytes | None = None,
    body: dict[str, Any] | bytes | None = None,
    key: Ed25519PrivateKey = POLICE,
) -> bytes:
    h = head if isinstance(head, bytes) else json.dumps(head or header()).encode()
    c = body if isinstance(body, bytes) else json.dumps(body or claims()).encode()
    signing_input = f"{b64(h)}.{b64(c)}".encode()
    return signing_input + b"." + b64(key.sign(signing_input)).encode()


def check(raw: bytes, seen: set[str] | None = None, oldest: datetime | None = OLDEST) -> Any:
    return verify(raw, POLICY, now=NOW, seen=lambda j: j in (seen or set()), oldest_footage=oldest)


def reason_of(raw: bytes, **kwargs: Any) -> str:
    with pytest.raises(Rejected) as caught:
        check(raw, **kwargs)
    return caught.value.reason


def test_a_valid_order_is_accepted_with_its_claims() -> None:
    request = check(token())
    assert (request.id, request.kind, request.cameras) == ("req-0001", "order", ("front",))
    assert request.end - request.start == timedelta(minutes=5)
    assert request.upload_url.startswith(ALLOW[0])


def test_a_rejected_tokens_status_id_is_its_own_hash() -> None:
    raw = token()
    assert status_id(raw) == hashlib.sha256(raw).hexdigest()[:16]


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"a" * (MAX_TOKEN_BYTES + 1), "too_large"),
        (b"only.two", "malformed"),
        (b"a.b.c.d", "malformed"),
        (b"e30.e30.!!!", "malformed"),  # not base64url
        (b"e30=.e30.AAAA", "malformed"),  # padding is not allowed
        (b"\xff\xfe.e30.AAAA", "malformed"),  # not ASCII
    ],
    ids=["oversized", "two-parts", "four-parts", "bad-base64url", "padding", "not-ascii"],
)
def test_structure_is_checked_before_anything_else(raw: bytes, reason: str) -> None:
    assert reason_of(raw) == reason


def test_invalid_utf8_duplicate_keys_and_deep_nesting_are_malformed() -> None:
    assert reason_of(token(body=b'{"aud": "\xff"}')) == "malformed"
    dup = json.dumps(claims())[:-1] + ', "aud": "shop-42"}'
    assert reason_of(token(body=dup.encode())) == "malformed"
    dup_header = b'{"alg":"EdDSA","alg":"none","typ":"camreg-request+jwt"}'
    assert reason_of(token(head=dup_header)) == "malformed"
    deep = claims(extra=json.loads("[" * 50 + "]" * 50))
    assert reason_of(token(body=deep)) == "malformed"
    very_deep = b'{"a":' + b"[" * 5000 + b"]" * 5000 + b"}"
    assert reason_of(token(body=very_deep)) in ("malformed", "too_large")


def test_alg_none_and_hs256_with_the_public_key_as_secret_are_refused() -> None:
    none = f"{b64(json.dumps(header(alg='none')).encode())}.{b64(json.dumps(claims()).encode())}."
    assert reason_of(none.encode()) == "bad_algorithm"
    public = POLICE.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    signing_input = (
        f"{b64(json.dumps(header(alg='HS256')).encode())}.{b64(json.dumps(claims()).encode())}"
    )
    mac = hmac.new(public, signing_input.encode(), hashlib.sha256).digest()
    assert reason_of(f"{signing_input}.{b64(mac)}".encode()) == "bad_algorithm"


def test_the_type_must_be_a_request() -> None:
    assert reason_of(token(head=header(typ=None))) == "bad_type"
    assert reason_of(token(head=header(typ="camreg-manifest+jwt"))) == "bad_type"
    assert reason_of(token(head=header(typ="JWT"))) == "bad_type"


@pytest.mark.parametrize("kid", [None, "nope", "../../etc/passwd", "/dev/stdin", 42])
def test_an_unknown_or_path_like_kid_is_refused(kid: Any) -> None:
    assert reason_of(token(head=header(kid=kid))) == "unknown_key"


def test_a_token_signed_by_a_key_that_is_not_a_police_key_is_refused() -> None:
    # It even claims the police key's kid.
    assert reason_of(token(key=REGISTRY)) == "bad_signature"
    other = header(kid=jws.thumbprint(REGISTRY.public_key()))
    assert reason_of(token(head=other, key=REGISTRY)) == "unknown_key"


def test_a_changed_claim_breaks_the_signature() -> None:
    raw = token().split(b".")
    forged = b64(json.dumps(claims(cameras=["front", "back"])).encode()).encode()
    assert reason_of(b".".join([raw[0], forged, raw[2]])) == "bad_signature"


@pytest.mark.parametrize(
    "changes",
    [
        {"jti": None},
        {"aud": 42},
        {"cameras": []},
        {"cameras": "front"},
        {"kind": "please"},
        {"exp": "tomorrow"},
        {"window": None},
        {"upload": {"url": "https://evidence.police.example/uploads/"}},
        {"exp": 10**20},
    ],
)
def test_missing_or_mistyped_claims_are_invalid(changes: dict[str, Any]) -> None:
    assert reason_of(token(body=claims(**changes))) == "claims_invalid"


def test_time_audience_and_replay() -> None:
    now = int(NOW.timestamp())
    assert reason_of(token(body=claims(aud="shop-7"))) == "wrong_audience"
    assert reason_of(token(body=claims(exp=now - 3600))) == "expired"
    assert reason_of(token(body=claims(nbf=now + 3600))) == "not_yet_valid"
    assert reason_of(token(body=claims(iat=now + 3600))) == "not_yet_valid"
    assert check(token(body=claims(iat=now + 30)))  # a little clock skew is fine
    assert reason_of(token(), seen={"req-0001"}) == "replayed"


def test_cameras_must_be_configured_ids_not_wildcards() -> None:
    for cameras in (["front", "garage"], ["*"], ["+"], ["#"], ["front/../back"]):
        assert reason_of(token(body=claims(cameras=cameras))) == "unknown_camera"


@pytest.mark.parametrize(
    ("window", "reason"),
    [
        ({"start": "2026-11-27T10:05:00Z", "end": "2026-11-27T10:00:00Z"}, "window_invalid"),
        ({"start": "yesterday", "end": "2026-11-27T10:00:00Z"}, "window_invalid"),
        ({"start": "2026-11-27T10:00:00", "end": "2026-11-27T10:05:00"}, "window_invalid"),
        ({"start": "2026-11-28T10:00:00Z", "end": "2026-11-28T10:05:00Z"}, "window_invalid"),
        ({"start": "2026-11-01T10:00:00Z", "end": "2026-11-01T10:05:00Z"}, "window_invalid"),
        ({"start": "2026-11-27T08:00:00Z", "end": "2026-11-27T10:00:01Z"}, "window_too_long"),
        # Times at the calendar's edge whose UTC lies outside it (OverflowError, not a
        # ValueError: the verifier raised it instead of rejecting; bench/fuzz/token.py).
        ({"start": "0001-01-01T00:00:00+23:59", "end": "2026-11-27T10:00:00Z"}, "window_invalid"),
        ({"start": "2026-11-27T10:00:00Z", "end": "9999-12-31T23:59:59-23:59"}, "window_invalid"),
    ],
    ids=[
        "inverted",
        "unparseable",
        "no-zone",
        "future",
        "before-footage",
        "too-long",
        "before-year-1",
        "after-year-9999",
    ],
)
def test_windows(window: dict[str, str], reason: str) -> None:
    assert reason_of(token(body=claims(window=window))) == reason


def test_no_footage_at_all_means_no_window_can_be_served() -> None:
    assert reason_of(token(), oldest=None) == "window_invalid"


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.example/uploads/",
        "https://evidence.police.example@evil.example/uploads/",
        "https://evidence.police.example.evil.example/uploads/",
        "https://user:pw@evidence.police.example/uploads/",
        "http://evidence.police.example/uploads/",
        "https://evidence.police.example:8443/uploads/",
        "https://evidence.police.example/uploads/../admin/",
        "https://evidence.police.example/uploads/%2e%2e/admin/",
        "https://evidence.police.example/uploads/%252e%252e/admin/",
        "https://evidence.police.example/other/",
        "https://evidence.police.example/uploadsX/",
        "https://evidence.police.example\\@evil.example/uploads/",
        "ftp://evidence.police.example/uploads/",
        "https://evidence.police.example/uploads/\n",
    ],
)
def test_upload_urls_outside_the_allow_list_are_refused(url: str) -> None:
    assert not upload_allowed(url, ALLOW)
    assert reason_of(token(body=claims(upload={"url": url, "token": "t"}))) == "upload_not_allowed"


def test_upload_urls_under_the_allow_list_pass() -> None:
    for url in (
        "https://evidence.police.example/uploads/",
        "https://EVIDENCE.police.example/uploads/case-1/",
        "https://evidence.police.example:443/uploads/x",
    ):
        assert upload_allowed(url, ALLOW), url
    loopback = ("http://127.0.0.1:1080/files/",)
    assert upload_allowed("http://127.0.0.1:1080/files/", loopback)
    assert not upload_allowed("http://127.0.0.1:1081/files/", loopback)


def test_a_valid_token_for_another_agent_is_refused_here() -> None:
    theirs = token(body=claims(aud="bakery-7", jti="req-9"))
    assert reason_of(theirs) == "wrong_audience"


@pytest.mark.parametrize(
    "jti", ["../keys", "a/b", "+", "#", "a/+/b", ".", "..", "x" * 65, "ü", "a b", "a\nb"]
)
def test_a_request_id_outside_the_id_shape_is_invalid(jti: str) -> None:
    assert reason_of(token(body=claims(jti=jti))) == "claims_invalid"


def test_request_ids_of_the_id_shape_pass() -> None:
    for jti in ("a", "x" * 64, "Req_2026-0001"):
        assert check(token(body=claims(jti=jti))).id == jti


def test_a_camera_listed_twice_is_invalid() -> None:
    assert reason_of(token(body=claims(cameras=["front", "back", "front"]))) == "claims_invalid"


def test_a_window_that_ends_after_now_plus_the_skew_is_invalid() -> None:
    start = "2026-11-27T11:50:00Z"
    assert (
        reason_of(token(body=claims(window={"start": start, "end": "2026-11-27T12:01:01Z"})))
        == "window_invalid"
    )
    assert check(token(body=claims(window={"start": start, "end": "2026-11-27T12:01:00Z"})))


def spellings(part: str) -> list[str]:
    """Every spelling of a base64url part that lenient decoders read as the same bytes."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    unused = {2: 4, 3: 2}[len(part) % 4]  # bits of the last character that carry nothing
    value = alphabet.index(part[-1])
    return [part[:-1] + alphabet[value ^ bits] for bits in range(1, 1 << unused)]


def test_a_signature_has_one_spelling_only() -> None:
    head, body, signature = token().decode().split(".")
    others = spellings(signature)
    assert len(others) == 15  # 64 bytes: 86 characters, the last with 4 unused bits
    for other in others:
        assert reason_of(f"{head}.{body}.{other}".encode()) == "malformed"


def test_header_and_claims_have_one_spelling_only() -> None:
    for filler in ("x", "xx", "xxx"):  # a length whose last character has unused bits
        raw = token(head=header(x=filler), body=claims(case=filler))
        head, body, signature = raw.decode().split(".")
        if len(head) % 4 and len(body) % 4:
            break
    assert check(raw)
    assert reason_of(f"{head}.{spellings(body)[0]}.{signature}".encode()) == "malformed"
    assert reason_of(f"{spellings(head)[0]}.{body}.{signature}".encode()) == "malformed"


def test_strict_base64_of_both_alphabets_rejects_other_spellings() -> None:
    assert jws.b64url_decode("AA") == b"\x00"
    for text in ("AB", "AP", "AAB", "AA=", "A", "AA.", "A+", "A/"):
        with pytest.raises(ValueError):
            jws.b64url_decode(text)
    assert jws.b64_decode("AA==") == b"\x00"
    for text in ("AB==", "AAB=", "AA", "AA=", "AA==\n", "-_==", " AA=="):
        with pytest.raises(ValueError):
            jws.b64_decode(text)
    key = jws.public_jwk(POLICE.public_key())
    with pytest.raises(ValueError):  # an enrolled or pinned key has one spelling too
        jws.public_key_from_jwk({**key, "x": spellings(key["x"])[0]})
