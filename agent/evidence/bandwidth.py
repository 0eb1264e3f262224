"""A token bucket that caps the bytes per second the agent sends (`upload_rate_limit`)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

# Short enough that a 10 s window never exceeds the cap by more than 5 %, long enough
# that the pause while the server answers a PATCH does not lose the time it took.
BURST_SECONDS = 0.05


class TokenBucket:
    """`take(n)` returns once n more bytes fit under the rate; callers share the cap.

    Taking more than is in the bucket leaves a debt that the caller sleeps off, so the
    order of takers is kept and big pieces are no burst: over any span t the bytes taken
    are at most `rate * t + burst`.
    """

    def __init__(
        self,
        rate: float,
        *,
        burst: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be positive, not {rate}")
        self.rate = float(rate)
        self.burst = float(burst if burst is not None else rate * BURST_SECONDS)
        self._clock = clock
        self._sleep = sleep
        self._tokens = self.burst
        self._last = clock()
        self._lock = threading.Lock()

    def take(self, amount: int) -> float:
        """Wait until `amount` bytes may go; returns the seconds waited."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
            self._last = now
            self._tokens -= amount
            wait = -self._tokens / self.rate if self._tokens < 0 else 0.0
        if wait > 0:
            self._sleep(wait)
        return wait
