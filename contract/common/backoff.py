"""Capped, jittered reconnect delays; the agent's (streams, link, uploads) and the
registry's (broker connection) alike."""

from __future__ import annotations

import random

# Reconnect delays start at BASE and double up to CAP. Jitter spreads the cameras of one
# recorder (and the agents of one street after a power cut) so they don't retry in step.
BASE_S = 0.5
CAP_S = 10.0


class Backoff:
    def __init__(self, base: float = BASE_S, cap: float = CAP_S, rng: random.Random | None = None):
        self._base = base
        self._cap = cap
        self._failures = 0
        self._rng = rng or random.Random()

    def next(self) -> float:
        """The next delay: uniform in [d/2, d] with d the capped exponential step."""
        step = min(self._cap, self._base * 2**self._failures)
        self._failures = min(self._failures + 1, 32)
        return self._rng.uniform(step / 2, step)

    def reset(self) -> None:
        self._failures = 0
