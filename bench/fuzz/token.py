"""The agent's police request token verifier (agent/police_requests/token.py, contract/jws.py).

An input's first byte picks what the rest is: 0 the whole token as received (random bytes
and mutations of signed tokens, which mostly die at the signature), 1 the claims and 2
the header, each signed with the pinned police key, so that mutations reach the claim
checks behind the signature too. Every outcome must be an accepted request that keeps the
policy, or Rejected with a reason of DESIGN.md's table.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.fuzz.target import Target

# DESIGN.md, "Police requests": the reasons a token may be rejected with.
REASONS = frozenset(
    {
        "malformed",
        "too_large",
        "bad_algorithm",
        "bad_type",
        "unknown_key",
        "bad_signature",
        "claims_invalid",
        "wrong_audience",
        "expired",
        "not_yet_valid",
        "replayed",
        "unknown_camera",
        "window_invalid",
        "window_too_long",
        "upload_not_allowed",
    }
)
RAW, CLAIMS, HEADER = 0, 1, 2
MODES = 3
# A fixed key and clock: seeds signed in one run verify in the next.
POLICE_KEY_SEED = bytes(range(32))
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
AGENT = "shop-42"
CAMERAS = frozenset({"front", "back"})
ALLOW = ("https://evidence.police.example/uploads/", "http://127.0.0.1:9/files/")
REPLAYED_ID = "req-used"


def build() -> Target:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from agent.police_requests.token import Policy, Rejected, Request, upload_allowed, verify
    from contract.timestamps import rfc3339
    from tests.support.tokens import Police

    police = Police(agent=AGENT, upload=ALLOW[0])
    police.key = Ed25519PrivateKey.from_private_bytes(POLICE_KEY_SEED)
    policy = Policy(
        agent_id=AGENT,
        police_keys={police.kid: police.key.public_key()},
        cameras=CAMERAS,
        max_window=timedelta(hours=1),
        upload_allow=ALLOW,
    )
    oldest_footage = NOW - timedelta(days=3)
    header = json.dumps(police.header()).encode()

    def claims_json(**changes: Any) -> bytes:
        return json.dumps(police.claims(NOW, **changes)).encode()

    def check(token: bytes) -> None:
        try:
            request = verify(
                token,
                policy,
                now=NOW,
                seen=lambda jti: jti == REPLAYED_ID,
                oldest_footage=oldest_footage,
            )
        except Rejected as exc:
            if exc.reason not in REASONS:
                raise AssertionError(f"undocumented reason {exc.reason!r}") from exc
            return
        _accepted_keeps_the_policy(request, policy, upload_allowed, Request)

    def one_input(data: bytes) -> None:
        if not data:
            return check(data)
        mode, rest = data[0] % MODES, data[1:]
        if mode == RAW:
            check(rest)
        elif mode == CLAIMS:
            check(police.token(claims=rest, header=header))
        else:
            check(police.token(claims=claims_json(), header=rest))

    window = {"start": rfc3339(NOW - timedelta(minutes=30)), "end": rfc3339(NOW)}
    seeds = [
        bytes([RAW]) + police.token(claims=claims_json()),
        bytes([RAW]) + police.token(claims=claims_json(nbf=int(NOW.timestamp()), kind="voluntary")),
        bytes([RAW]) + police.token(claims=claims_json(cameras=["front", "back"], window=window)),
        bytes([RAW]) + police.token(claims=claims_json(jti=REPLAYED_ID)),
        bytes([RAW]) + b"eyJhbGciOiJub25lIn0.e30.",
        bytes([CLAIMS]) + claims_json(),
        bytes([CLAIMS]) + claims_json(upload={"url": ALLOW[1] + "x/../y", "token": "t"}),
        bytes([CLAIMS]) + claims_json(window=window, exp=1e400),
        bytes([HEADER]) + header,
        bytes([HEADER]) + json.dumps({**police.header(), "alg": "none"}).encode(),
        bytes([HEADER]) + json.dumps({"kid": police.kid, "typ": "JWT", "alg": "EdDSA"}).encode(),
        # What fuzzing found (tests/agent/police_requests/test_token.py, test_windows).
        bytes([CLAIMS])
        + claims_json(window={"start": "0001-01-01T00:00:00+23:59", "end": rfc3339(NOW)}),
    ]
    return Target(one_input, seeds)


def _accepted_keeps_the_policy(
    request: Any, policy: Any, upload_allowed: Any, request_type: type
) -> None:
    """What acceptance promises (DESIGN.md): every check held."""
    assert isinstance(request, request_type)
    assert request.cameras and set(request.cameras) <= policy.cameras, request.cameras
    assert request.start < request.end, (request.start, request.end)
    assert request.end - request.start <= policy.max_window
    assert request.expires > NOW - timedelta(seconds=60)
    assert request.id != REPLAYED_ID
    assert upload_allowed(request.upload_url, policy.upload_allow), request.upload_url
