"""Opening the request store so that losing it cannot let a replayed token in.

A broken store is kept aside (agent/state_files.py) and a missing one started anew; either
way the new store remembers the id of every request the audit log says was accepted
(`received`), so a token seen before is still refused as `replayed`. The audit log is the
right source: it is append-only, hash-chained and a separate file, so the damage that
broke the store rarely reaches it. What the new store cannot know are the requests that
were open; their footage stays held in the index until the hold runs out.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

from agent.audit import AUDIT_FILE, AuditError, AuditLog
from agent.police_requests.store import REQUESTS_FILE, RequestStore
from agent.state_files import MovedAside, open_or_move_aside

log = logging.getLogger(__name__)


def open_request_store(data_dir: Path) -> tuple[RequestStore, MovedAside | None]:
    """The request store, and what was reset (for a `state_file_reset` audit entry)."""
    path = data_dir / REQUESTS_FILE
    audit_path = data_dir / AUDIT_FILE
    lost = not path.exists()
    store, reset = open_or_move_aside(path, RequestStore, "the request store")
    if reset is None and lost and audit_path.exists():
        # Deleted rather than broken: replay protection must hold all the same.
        log.error("the request store %s is missing; started a new one", path)
        reset = MovedAside(REQUESTS_FILE, None, "missing")
    if reset is not None:
        reset = reseed_seen(store, audit_path, reset)
    return store, reset


def reseed_seen(store: RequestStore, audit_path: Path, reset: MovedAside) -> MovedAside:
    """Remember the ids of the requests the audit log says were accepted; returns `reset`
    with their count."""
    try:
        ids = {e.request_id for e in AuditLog(audit_path).entries() if e.event == "received"}
    except AuditError as exc:
        log.error("cannot read the audit log to re-seed the request ids: %s", exc)
        return reset
    added = store.reseed(sorted(i for i in ids if i is not None))
    log.warning(
        "the new request store remembers the %d accepted request id(s) of the audit log, so "
        "their tokens stay refused as replays; requests that were open are lost: police "
        "must send them again under a new id",
        added,
    )
    return replace(reset, reseeded=added)
