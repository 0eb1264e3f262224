"""The running agent's parts stop in reverse order of starting, on one stop event.

Every long-lived part (the registry link, the footage storage, the request desk, the
camera workers, the owner page, the control socket) is started with the one stop event
`App.run(stop)` receives: its threads end when that is set, and no part has a stop event
of its own. Each part, once started, says here how it is stopped (joined, flushed,
closed); the app stops them the last started first, so that a part stops before the
parts it uses (agent/app.py gives the order and why).

The stop event is a StopEvent: setting it also sets the wake-up events registered with it,
so a thread that sleeps on an event of its own (the main loop, on the registry link's
connect) sees a stop at once without waking up to look for one. On a Pi every wake-up
costs: the main loop's 50 ms look at the stop event was a fifth of the agent's CPU.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from types import TracebackType


class StopEvent(threading.Event):
    """The agent's one stop event. `set` also sets every event handed to `wakes`, from
    whichever thread sets it (a signal's stop-signal thread, the lifecycle, a test)."""

    def __init__(self) -> None:
        super().__init__()
        self._wakes: list[threading.Event] = []
        self._wakes_lock = threading.Lock()

    def wakes(self, event: threading.Event) -> None:
        """From now on setting the stop event sets `event` too (at once if already set)."""
        with self._wakes_lock:
            self._wakes.append(event)
        # After the append: a set() that missed it has raised the flag by now.
        if self.is_set():
            event.set()

    def set(self) -> None:
        super().set()
        with self._wakes_lock:
            wakes = list(self._wakes)
        for event in wakes:
            event.set()


class Lifecycle:
    """The started parts' stops, run in reverse order of starting when the agent stops.

    Leaving it (the main loop ended, or an error) sets the stop event first, so that every
    part's threads wind down together, then stops each part, the last started first."""

    def __init__(self, stop: threading.Event) -> None:
        self._stop = stop
        self._stops = contextlib.ExitStack()

    def started(self, stop_part: Callable[..., object], *args: object) -> None:
        """A part has just started; `stop_part(*args)` stops it, after the parts started
        after it."""
        self._stops.callback(stop_part, *args)

    def __enter__(self) -> Lifecycle:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._stops.__exit__(exc_type, exc, tb)
