"""The retention of camera intervals: rows that ended before the retention period are
deleted, by each ingest worker once an hour (several workers deleting the same rows is
harmless: a DELETE of rows already gone deletes nothing)."""

from __future__ import annotations

import logging
import threading
import time

from sqlalchemy import Engine, delete
from sqlalchemy.exc import SQLAlchemyError

from registry.db.schema import camera_intervals

__all__ = ["PRUNE_EVERY_S", "IntervalPruner", "prune_intervals"]

log = logging.getLogger(__name__)

# An hour's rows are a twenty-fourth of a day's: pruning hourly keeps the table within
# about 1/720 of its 30-day size of the retention, and each DELETE short.
PRUNE_EVERY_S = 3600.0


def prune_intervals(engine: Engine, keep_s: float, now: float | None = None) -> int:
    """Delete the intervals that ended more than `keep_s` ago; how many were deleted."""
    cutoff = (time.time() if now is None else now) - keep_s
    with engine.begin() as db:
        return db.execute(
            delete(camera_intervals).where(camera_intervals.c.end_ts < cutoff)
        ).rowcount


class IntervalPruner:
    """A thread pruning camera_intervals every PRUNE_EVERY_S until the stop event."""

    def __init__(self, engine: Engine, keep_s: float, every_s: float = PRUNE_EVERY_S) -> None:
        self._engine = engine
        self._keep_s = keep_s
        self._every_s = every_s
        self._thread: threading.Thread | None = None

    def start(self, stop: threading.Event) -> None:
        self._thread = threading.Thread(
            target=self._run, args=(stop,), name="ingest:prune", daemon=True
        )
        self._thread.start()

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                removed = prune_intervals(self._engine, self._keep_s)
                if removed:
                    log.info("pruned %d camera intervals past the retention", removed)
            except SQLAlchemyError:  # the database's trouble: tried again next time
                log.exception("pruning camera intervals failed")
            stop.wait(self._every_s)
