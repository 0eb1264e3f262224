"""Rejected tokens: a burst answered one by one, a flood counted into summaries.

Anyone who can publish on the requests topic can send junk by the thousand, and each
rejection answered in full costs an audit line (fsync), a status and an audit message in
the on-disk outbox, and a line in the journal. So a rejection is answered one by one (a
status with its reason, an audit entry, a warning) only while an allowance lasts: a burst
of DETAILED_BURST, refilled by one every REFILL_EVERY. Past it, rejections are counted
(by reason, with the ids of the first SUMMARY_IDS) and written as one
`rejections_summarised` audit entry every SUMMARY_EVERY, and when the agent stops. What a
flood can add to the disk is then bounded by time, not by the number of tokens: see
docs/requests.md, "A flood of tokens".
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from agent.audit import REJECTIONS_SUMMARISED, AuditTrail
from contract.timestamps import rfc3339

log = logging.getLogger(__name__)

# More than an honest sender gets wrong at once (a police system retrying a token it
# built wrong, a test of every reason code), and few enough lines to read.
DETAILED_BURST = 20
# After a burst, one more rejection in ten minutes is answered in full: a police officer
# who sends a corrected token during a flood may still see why it was refused.
REFILL_EVERY = timedelta(minutes=10)
# How often counted rejections are written down while a flood goes on: the owner and the
# registry learn of it within this long, and a flood costs six entries an hour.
SUMMARY_EVERY = timedelta(minutes=10)
# Ids (as on the status topic) of the first counted tokens in a summary: enough for
# police to find a token of theirs that was caught in a flood, and a summary stays ~1 kB.
SUMMARY_IDS = 10
# The reason counted for a token that was never checked: it arrived while the desk's
# queue was full (requests/desk.py, MAX_WAITING_TOKENS). Not a status reason: such a
# token gets no status at all, only its place in the summary.
NOT_CHECKED = "not_checked"


@dataclass
class _Counted:
    since: datetime
    until: datetime
    count: int = 0
    bytes: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    ids: list[str] = field(default_factory=list)


class RejectionGate:
    """Decides which rejections are answered one by one; counts and summarises the rest.

    Thread-safe: the request desk calls `rejected` and `tick` from its thread, the daemon
    `flush` when it stops."""

    def __init__(
        self,
        audit: AuditTrail,
        *,
        burst: int = DETAILED_BURST,
        refill_every: timedelta = REFILL_EVERY,
        summary_every: timedelta = SUMMARY_EVERY,
        summary_ids: int = SUMMARY_IDS,
    ) -> None:
        self._audit = audit
        self._burst = burst
        self._refill_every = refill_every
        self._summary_every = summary_every
        self._summary_ids = summary_ids
        self._allowance = float(burst)
        self._refilled: datetime | None = None
        self._counted: _Counted | None = None
        self._lock = threading.Lock()

    def rejected(self, request_id: str, reason: str, size: int, now: datetime) -> bool:
        """A token was rejected: True if it is to be answered one by one (the caller
        publishes its status and audits it), False if it was counted instead."""
        with self._lock:
            self._refill(now)
            if self._allowance >= 1:
                self._allowance -= 1
                return True
            self._count(request_id, reason, size, now)
            return False

    def not_checked(self, request_id: str, size: int, now: datetime) -> None:
        """A token dropped unchecked (the desk's queue was full): always counted."""
        with self._lock:
            self._count(request_id, NOT_CHECKED, size, now)

    def _count(self, request_id: str, reason: str, size: int, now: datetime) -> None:
        counted = self._counted
        if counted is None:
            counted = self._counted = _Counted(since=now, until=now)
            log.warning(
                "more than %d request tokens rejected in a short time (someone may be "
                "flooding the requests topic): further rejections get no status and are "
                "counted into one audit entry every %d minutes",
                self._burst,
                self._summary_every // timedelta(minutes=1),
            )
        counted.until = max(counted.until, now)
        counted.count += 1
        counted.bytes += size
        counted.reasons[reason] += 1
        if len(counted.ids) < self._summary_ids:
            counted.ids.append(request_id)
        if now - counted.since >= self._summary_every:
            self._write(counted)

    def tick(self, now: datetime) -> None:
        """Write the summary once it is due, even if no further token arrives."""
        with self._lock:
            counted = self._counted
            if counted is not None and now - counted.since >= self._summary_every:
                self._write(counted)

    def flush(self) -> None:
        """Write what was counted so far (the agent stops): no count is lost."""
        with self._lock:
            if self._counted is not None:
                self._write(self._counted)

    def _refill(self, now: datetime) -> None:
        if self._refilled is None or now < self._refilled:  # first call, or the clock went back
            self._refilled = now
            return
        earned = (now - self._refilled) / self._refill_every
        self._allowance = min(float(self._burst), self._allowance + earned)
        self._refilled = now

    def _write(self, counted: _Counted) -> None:
        self._counted = None
        detail = {
            "from": rfc3339(counted.since),
            "to": rfc3339(counted.until),
            "count": counted.count,
            "bytes": counted.bytes,
            "reasons": dict(sorted(counted.reasons.items())),
            "first_ids": counted.ids,
        }
        log.warning(
            "%d request tokens rejected and counted from %s to %s (%s); see "
            "`camera-agent audit show`",
            counted.count,
            detail["from"],
            detail["to"],
            ", ".join(f"{reason} {n}" for reason, n in sorted(counted.reasons.items())),
        )
        self._audit.append(REJECTIONS_SUMMARISED, None, detail)
