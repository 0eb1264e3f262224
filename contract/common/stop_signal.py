"""Turning SIGTERM and SIGINT into a stop Event, safely.

A Python signal handler runs in the main thread between two bytecodes, possibly in the
middle of `Event.set()` on the very same event: Ctrl-C reaches a whole process group and
a shell's clean-up sends SIGTERM right after, so a second handler can interrupt the
first. Event's lock is not re-entrant, and setting it again from there deadlocks the
process (seen: an agent that never stopped). So the handler only starts a thread that
sets the event. The agent and the registry's ingest both stop this way."""

from __future__ import annotations

import threading


def set_from_handler(stop: threading.Event) -> None:
    """Set `stop` from a signal handler without touching its lock in this thread."""
    if not stop.is_set():
        threading.Thread(target=stop.set, name="stop-signal", daemon=True).start()
