"""Police withdrawals of a request: signed on the officer's machine, relayed by the registry.

A withdrawal is the compact JWS the agent checks (agent/police_requests/withdrawal.py):
header `alg` EdDSA, `typ` camreg-withdrawal+jwt, `kid` the police key's RFC 7638
thumbprint; claims `iss`, `aud` (the agent), `jti` (its own id), `withdraws` (the
request id), `iat`, `exp`, optional `reason`. Any police request-signing key the agent
trusts may sign one; the registry only relays it, and cannot make one.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from contract import jws
from contract.token_rules import MAX_TOKEN_BYTES, WITHDRAWAL_TYPE
from registry.police.keys import PoliceKeyError

__all__ = ["WithdrawalFile", "make_withdrawal", "read_withdrawal_file"]

ID_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
# As the agent allows (agent/police_requests/withdrawal.py, MAX_REASON_CHARS).
MAX_REASON_CHARS = 500
# Deeper than a withdrawal's claims, as the agent reads it.
_MAX_DEPTH = 6


@dataclass(frozen=True)
class WithdrawalFile:
    token: str
    header: dict[str, Any]
    claims: dict[str, Any]

    @property
    def agent(self) -> str:
        return str(self.claims["aud"])

    @property
    def request_id(self) -> str:
        return str(self.claims["withdraws"])


def make_withdrawal(
    key: Ed25519PrivateKey,
    *,
    agent: str,
    request_id: str,
    issuer: str,
    reason: str,
    lifetime: timedelta,
    now: datetime | None = None,
) -> str:
    """The signed withdrawal; PoliceKeyError when an id or the reason would be refused."""
    for name, value in (("agent id", agent), ("request id", request_id)):
        if not ID_RE.fullmatch(value):
            raise PoliceKeyError(f"not a {name}: {value[:80]!r} (^[A-Za-z0-9_-]{{1,64}}$)")
    if len(reason) > MAX_REASON_CHARS:
        raise PoliceKeyError(f"the reason is over {MAX_REASON_CHARS} characters")
    now = now or datetime.now(UTC)
    claims = {
        "iss": issuer,
        "aud": agent,
        "jti": f"wd-{secrets.token_hex(8)}",
        "withdraws": request_id,
        "iat": int(now.timestamp()),
        "exp": int((now + lifetime).timestamp()),
        **({"reason": reason} if reason else {}),
    }
    payload = json.dumps(claims, separators=(",", ":"), ensure_ascii=True).encode("ascii")
    token = jws.sign(payload, key, WITHDRAWAL_TYPE)
    if len(token) > MAX_TOKEN_BYTES:
        raise PoliceKeyError(f"the withdrawal would be over {MAX_TOKEN_BYTES} bytes")
    return token


def read_withdrawal_file(path: Path) -> WithdrawalFile:
    """A withdrawal file (one compact JWS), decoded but not verified (the agent does that);
    PoliceKeyError when it is plainly not a withdrawal."""
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_TOKEN_BYTES + 2)
    except OSError as exc:
        raise PoliceKeyError(f"cannot read {path}: {exc.strerror}") from None
    text = raw.strip()
    if len(text) > MAX_TOKEN_BYTES:
        raise PoliceKeyError(f"{path} is over {MAX_TOKEN_BYTES} bytes; agents refuse it")
    try:
        parsed = jws.parse_compact(text, _MAX_DEPTH)
    except jws.MalformedJws as exc:
        raise PoliceKeyError(f"{path} is not a compact JWS: {exc}") from None
    header, claims = parsed.header, parsed.claims
    if header.get("alg") != "EdDSA" or header.get("typ") != WITHDRAWAL_TYPE:
        raise PoliceKeyError(f"{path} is not a withdrawal (alg EdDSA, typ {WITHDRAWAL_TYPE})")
    for name in ("aud", "withdraws"):
        if not isinstance(claims.get(name), str) or not ID_RE.fullmatch(claims[name]):
            raise PoliceKeyError(f"{path}: claim {name} is not an id")
    return WithdrawalFile(text.decode("ascii"), header, claims)
