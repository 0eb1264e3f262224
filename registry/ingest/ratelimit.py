"""Warnings that could flood the log (a misbehaving agent sends thousands) are rate-limited."""

from __future__ import annotations

import logging
import threading
import time

# One warning per interval says what was refused; the rest are counted, and the next
# warning says how many were not shown. Every refusal is still in rejected_messages.
DEFAULT_INTERVAL_S = 10.0


class RateLimitedLog:
    """At most one warning per `interval` seconds, then a count of those held back."""

    def __init__(self, logger: logging.Logger, interval: float = DEFAULT_INTERVAL_S) -> None:
        self._logger = logger
        self._interval = interval
        self._next = 0.0
        self._held = 0
        self._lock = threading.Lock()

    def warning(self, message: str, *args: object) -> None:
        now = time.monotonic()
        with self._lock:
            if now < self._next:
                self._held += 1
                return
            held, self._held = self._held, 0
            self._next = now + self._interval
        self._logger.warning(message, *args)
        if held:
            self._logger.warning(
                "... and %d more like it in the last %.0f s, not shown", held, self._interval
            )
