"""A request accepted on a clock that was not synchronised is checked again once it is.

Expiry, not-before, and the window (not in the future, not before any footage) were
judged against a clock nobody could trust: a device whose clock runs a day behind
accepts a token that expired yesterday. So nothing goes to consent before the token has
passed every check again on a synchronised clock, from the bytes that arrived.
"""

from __future__ import annotations

from datetime import datetime

from agent.police_requests.store import StoredRequest
from agent.police_requests.token import Policy, Rejected, check_window_time, verify
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
