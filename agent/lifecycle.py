"""The running agent's parts stop in reverse order of starting, on one stop event.

Every long-lived part (the registry link, the footage storage, the request desk, the
camera workers, the owner page, the control socket) is started with the one stop event
`App.run(stop)` receives: its threads end when that is set, and no part has a stop event
of its own. Each part, once started, says here how it is stopped (joined, flushed,
closed); the app stops them the last started first, so that a part stops before the
parts it uses (agent/app.py gives the order and why).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from types import TracebackType


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
