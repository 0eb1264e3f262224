"""Validate, then store: what the ingest writer does with each message, also callable one
payload at a time (tests and the fuzz benchmarks in bench/ feed ingest this way, without
a broker).

Nothing a message holds stops it: the validator turns every bad message into a Rejected
with its reason, the store stores a message the database refuses as rejected (store.py),
and should checking one message fail all the same (a bug of ours), that message alone is
rejected and the failure logged with its traceback. Only database trouble is raised
(RegistryError), so that the batch waits unacknowledged until the database is back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from registry.ingest.store import BatchResult, IngestStore, Message
from registry.ingest.validate import Accepted, MessageValidator, Rejected, Withdrawn, storable

log = logging.getLogger(__name__)

# (topic, payload, received at) as the broker delivered it.
Delivered = tuple[str, bytes, float]


def check(validator: MessageValidator, topic: str, raw: bytes, received_at: float) -> Message:
    """`validator.check`, and a Rejected should it fail."""
    try:
        return validator.check(topic, raw, received_at)
    except Exception as exc:  # the writer's thread boundary, one message wide
        log.exception("ingest: checking a message on %r failed", topic)
        reason = f"could not be checked ({type(exc).__name__}); the registry's log has more"
        return Rejected(storable(topic), reason, received_at)


def ingest(
    validator: MessageValidator, store: IngestStore, batch: Sequence[Delivered]
) -> BatchResult:
    """Check and store a batch in one go, as the writer does; RegistryError only for
    database trouble."""
    return store.apply([check(validator, *delivered) for delivered in batch])


def ingest_one(
    validator: MessageValidator,
    store: IngestStore,
    topic: str,
    payload: bytes,
    received_at: float | None = None,
) -> Accepted | Withdrawn | Rejected:
    """Check and store one payload; what became of it: Accepted (stored), Withdrawn (an
    empty payload, applied) or Rejected (stored in rejected_messages with its reason)."""
    now = time.time() if received_at is None else received_at
    message = check(validator, topic, payload, now)
    result = store.apply([message])
    return result.rejections[0] if result.rejections else message
