"""SIGTERM on top of SIGINT: a handler that interrupts another must not deadlock."""

from __future__ import annotations

import threading

from contract.common.stop_signal import set_from_handler


def test_a_stop_asked_while_the_event_is_locked_is_set_once_the_lock_is_free() -> None:
    stop = threading.Event()
    # As when a second signal's handler runs inside the first one's Event.set(): this
    # thread holds the event's (not re-entrant) lock. Setting it here would hang.
    with stop._cond:  # type: ignore[attr-defined]
        set_from_handler(stop)
        assert not stop.is_set()
    assert stop.wait(5)
    set_from_handler(stop)  # again, once set: nothing to do
    assert stop.is_set()
