"""A request accepted on a clock that was not synchronised is checked again once it is.

Expiry, not-before, and the window (not in the future, not before any footage) were
judged against a clock nobody could trust: a device whose clock runs a day behind
accepts a token that expired yesterday. So nothing goes to consent before the token has
passed every check again on a synchronised clock, from the bytes that arrived.
"""

from __future__ import annotations

from datetime import datetime

from agent.police_requests.store import StoredRequest
from agent.police_requests.token import (
    MAX_JSON_DEPTH,
    Policy,
    Rejected,
    check_window_time,
    verify,
)
from contract import jws
from contract.token_rules import CLOCK_SKEW


def check_again(
    request: StoredRequest,
    token: bytes | None,
    policy: Policy,
    *,
    now: datetime,
    oldest_footage: datetime | None,
) -> None:
    """Rejected with the reason of the first failing check, or None.

    The replay check is not repeated: its answer came from the ids on disk, which the
    desk does not prune while the clock is unsynchronised, and the one id now there is
    this request's own."""
    if token is None:  # accepted before tokens were kept: what the store holds
        if request.expires <= now - CLOCK_SKEW:
            raise Rejected("expired", f"expired at {request.expires.isoformat()}")
        check_window_time(request.start, request.end, now, oldest_footage)
        return
    checked = verify(token, policy, now=now, seen=lambda _: False, oldest_footage=oldest_footage)
    if checked.id != request.id:
        raise Rejected("claims_invalid", f"the stored token is for request {checked.id!r}")


def check_key_still_valid(token: bytes | None, policy: Policy) -> None:
    """Rejected (`revoked_key`) when the key that signed `token` is revoked by the key set
    held now, or None.

    A request accepted before the police revoked its key must not go on to be exported or
    sent: the desk asks this of every open request before each step and between the
    chunks of an upload. Only the revocation is asked: expiry was checked when the request
    was accepted, and a request whose token expires while its upload runs is still owed its
    footage. A request accepted before tokens were kept (None) has no kid to ask about."""
    if token is None or policy.key_sets is None:
        return
    held = policy.key_sets.current()
    if held is None:
        return
    try:
        kid = jws.parse_compact(token, MAX_JSON_DEPTH).header.get("kid")
    except jws.MalformedJws:  # it parsed when it was accepted; the store holds its bytes
        return
    if isinstance(kid, str) and kid in held.revoked:
        raise Rejected(
            "revoked_key",
            f"kid {kid!r} was revoked by police key set {held.version} after the request "
            "was accepted",
        )
