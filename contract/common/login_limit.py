"""Password guessing per client address, for the owner page and the registry's login.

Each attempt is counted when it starts, before its password is checked, and an address may
have one check in flight at a time: parallel attempts cannot slip past the count while the
first ones are still being hashed (40 parallel logins used to get 40 checks). After `after`
failed attempts without a success the address waits `lock_for` seconds.

The table is bounded: past `max_addresses` the address seen longest ago is forgotten, so a
flood of addresses costs memory once, not without limit. An attacker who owns that many
addresses could try from each of them anyway.

`HashSlots` runs the checks themselves (Argon2: 64 MiB and about half a second each) in
worker threads, a few at a time, off the event loop that serves every other request; the
logins waiting for a slot wait in the event loop, not in threads of the shared pool the
pages need, and past a bound they are turned away at once."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import anyio
import anyio.to_thread

T = TypeVar("T")

# Enough for every device of a home network or every officer behind a police NAT many times
# over; a few hundred kB at most.
DEFAULT_MAX_ADDRESSES = 4096
# What a refused client is told to wait while another attempt of its address is checked:
# one Argon2 check takes well under a second.
BUSY_RETRY_S = 1.0


@dataclass
class _Entry:
    failures: int = 0  # attempts since the last success or lock-out, counting the one in flight
    locked_until: float = 0.0
    busy: bool = False  # an attempt of this address is being checked


@dataclass(frozen=True)
class Refused:
    """The attempt may not be checked now; `retry_after` seconds, and why in words."""

    retry_after: float
    locked: bool  # True: locked out after failures; False: another attempt is in flight

    @property
    def reason(self) -> str:
        if self.locked:
            return f"locked out for {self.retry_after:.0f} s more after failed logins"
        return "another login from this address is being checked"


class Attempt:
    """One admitted attempt: `succeeded()` or `failed()`; leaving it undecided (a crash, a
    client gone) counts as a failure, since it was counted when it started."""

    def __init__(self, limiter: AttemptLimiter, address: str) -> None:
        self._limiter = limiter
        self.address = address
        self._done = False

    def succeeded(self) -> None:
        if not self._done:
            self._done = True
            self._limiter.finish(self.address, success=True)

    def not_checked(self) -> None:
        """The server could not check it (busy): it does not count against the address."""
        if not self._done:
            self._done = True
            self._limiter.finish(self.address, success=False, counted=False)

    def failed(self) -> bool:
        """True when this failure locked the address out."""
        if self._done:
            return False
        self._done = True
        return self._limiter.finish(self.address, success=False)

    def __enter__(self) -> Attempt:
        return self

    def __exit__(self, *exc: object) -> None:
        self.failed()


class AttemptLimiter:
    def __init__(
        self,
        after: int,
        lock_for: float,
        max_addresses: int = DEFAULT_MAX_ADDRESSES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if after < 1 or max_addresses < 1:
            raise ValueError("after and max_addresses must be at least 1")
        self.after = after
        self.lock_for = lock_for
        self.max_addresses = max_addresses
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, _Entry] = OrderedDict()

    def begin(self, address: str) -> Attempt | Refused:
        """Admit and count an attempt of `address`, or say why not and for how long."""
        with self._lock:
            now = self._clock()
            entry = self._entries.get(address)
            if entry is None:
                entry = self._entries[address] = _Entry()
                while len(self._entries) > self.max_addresses:
                    self._entries.popitem(last=False)
            self._entries.move_to_end(address)
            if entry.locked_until > now:
                return Refused(entry.locked_until - now, locked=True)
            if entry.busy:
                return Refused(BUSY_RETRY_S, locked=False)
            entry.busy = True
            entry.failures += 1
            return Attempt(self, address)

    def finish(self, address: str, *, success: bool, counted: bool = True) -> bool:
        with self._lock:
            entry = self._entries.get(address)
            if entry is None:  # forgotten while checked (the table overflowed)
                return False
            entry.busy = False
            if not counted:
                entry.failures -= 1
                return False
            if success:
                del self._entries[address]
                return False
            if entry.failures >= self.after:
                entry.failures = 0
                entry.locked_until = self._clock() + self.lock_for
                return True
            return False

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)


class SlotsFull(Exception):
    """More password checks are waiting than HashSlots allows: try again in a moment."""


class HashSlots:
    """At most `running` checks at once in worker threads, at most `waiting` more queued.
    Use it from one event loop (the server's); it keeps no lock of its own."""

    def __init__(self, running: int, waiting: int) -> None:
        self.running = running
        self.waiting = waiting
        self._admitted = 0
        self._limiter: anyio.CapacityLimiter | None = None

    async def run(self, check: Callable[[], T]) -> T:
        """`check()` in a worker thread; SlotsFull when the queue is full."""
        if self._limiter is None:  # needs the running event loop: made on first use
            self._limiter = anyio.CapacityLimiter(self.running)
        if self._admitted >= self.running + self.waiting:
            raise SlotsFull()
        self._admitted += 1
        try:
            return await anyio.to_thread.run_sync(check, limiter=self._limiter)
        finally:
            self._admitted -= 1
