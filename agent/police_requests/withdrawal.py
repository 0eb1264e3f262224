"""Verifying a police withdrawal: a signed order to stop one request wherever it is.

A withdrawal is a compact JWS like a request token (contract/token_rules.py): `alg`
EdDSA, `typ` camreg-withdrawal+jwt, `kid` a police request-signing key this agent trusts
now (pinned, or in the held key set and not revoked). Its claims: `iss`, `aud` (this
agent), `jti` (the withdrawal's own id), `withdraws` (the id of the request it stops),
`iat`, `exp`, optional `nbf` and `reason` (free text for the owner). It arrives on the
same requests topic as requests and is checked in the same order with the same reason
codes, so a registry that relays it can neither forge one (it holds no police key) nor
turn one against another request or agent (`withdraws` and `aud` are signed).

What the desk does with a valid one is in desk.py: a request that is not final is
withdrawn; an unknown or finished one gets a rejected status under the withdrawal's own
status id (`unknown_request`, `request_finished`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from agent.audit import REQUEST_ID_RE
from agent.police_requests.token import (
    MAX_JSON_DEPTH,
    Policy,
    Rejected,
    check_audience_and_times,
    police_key,
)
from contract import jws
from contract.token_rules import MAX_TOKEN_BYTES, WITHDRAWAL_TYPE

# The owner reads the reason; a paragraph is plenty, and an entry stays small.
MAX_REASON_CHARS = 500


@dataclass(frozen=True)
class Withdrawal:
    """A withdrawal whose every check passed."""

    id: str  # its own jti
    request_id: str  # the request it withdraws
    issuer: str
    reason: str
    issued: datetime
    kid: str

    def summary(self) -> str:
        """For the log: who withdrew it, and why if they said."""
        said = f": {self.reason}" if self.reason else ""
        return f"withdrawal {self.id} by {self.issuer} (key {self.kid}){said}"

    def audit_detail(self, was: str) -> dict[str, object]:
        """The `withdrawn` entry's detail (docs/audit.md); `was` the state it stopped in."""
        return {
            "withdrawal": self.id,
            "issuer": self.issuer,
            "kid": self.kid,
            "was": str(was),
            "note": self.reason,
        }


def is_withdrawal(payload: bytes) -> bool:
    """Whether a message on the requests topic says it is a withdrawal (its header's
    `typ`), read without trusting it: only to hand it to the right check. Anything else,
    garbage included, goes to the request check, which rejects it with its reason."""
    if len(payload) > MAX_TOKEN_BYTES:
        return False
    try:
        return jws.parse_compact(payload, MAX_JSON_DEPTH).header.get("typ") == WITHDRAWAL_TYPE
    except jws.MalformedJws:
        return False


def verify_withdrawal(payload: bytes, policy: Policy, *, now: datetime) -> Withdrawal:
    """The withdrawal, or Rejected with the reason of the first failing check: size,
    structure, algorithm, type, key, signature, claims, audience, time."""
    if len(payload) > MAX_TOKEN_BYTES:
        raise Rejected("too_large", f"{len(payload)} bytes, more than {MAX_TOKEN_BYTES}")
    try:
        parsed = jws.parse_compact(payload, MAX_JSON_DEPTH)
    except jws.MalformedJws as exc:
        raise Rejected("malformed", str(exc)) from None
    header, claims = parsed.header, parsed.claims
    if header.get("alg") != "EdDSA":
        raise Rejected("bad_algorithm", f"alg {header.get('alg')!r}; only EdDSA is accepted")
    if header.get("typ") != WITHDRAWAL_TYPE:
        raise Rejected("bad_type", f"typ {header.get('typ')!r}, not {WITHDRAWAL_TYPE}")
    kid = header.get("kid")
    key = police_key(kid, policy, now)
    if not jws.verify_signature(parsed.signing_input, parsed.signature, key):
        raise Rejected("bad_signature", "the signature does not verify with that police key")
    assert isinstance(kid, str)  # police_key refuses any other
    return _checked(claims, policy, now, kid)


def _checked(claims: dict[str, Any], policy: Policy, now: datetime, kid: str) -> Withdrawal:
    for name in ("iss", "aud", "jti", "withdraws"):
        if not isinstance(claims.get(name), str) or not claims[name]:
            raise Rejected("claims_invalid", f"{name} missing or not a non-empty string")
    for name in ("jti", "withdraws"):
        if not REQUEST_ID_RE.fullmatch(claims[name]):
            raise Rejected("claims_invalid", f"{name} must match ^[A-Za-z0-9_-]{{1,64}}$")
    reason = claims.get("reason", "")
    if not isinstance(reason, str) or len(reason) > MAX_REASON_CHARS:
        raise Rejected("claims_invalid", f"reason must be text of at most {MAX_REASON_CHARS}")
    times = ("iat", "exp", *(("nbf",) if "nbf" in claims else ()))
    for name in times:
        value = claims.get(name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise Rejected("claims_invalid", f"{name} missing or not a number")
    try:
        issued, expires = (datetime.fromtimestamp(claims[n], UTC) for n in ("iat", "exp"))
        not_before = datetime.fromtimestamp(claims.get("nbf", claims["iat"]), UTC)
    except (OverflowError, OSError, ValueError):
        raise Rejected("claims_invalid", "a time claim is out of range") from None
    check_audience_and_times(claims["aud"], policy, now, issued, expires, not_before)
    return Withdrawal(
        id=claims["jti"],
        request_id=claims["withdraws"],
        issuer=claims["iss"],
        reason=reason,
        issued=issued,
        kid=kid,
    )
