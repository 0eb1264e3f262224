"""The stop event wakes the threads that sleep on an event of their own (the main loop)."""

from __future__ import annotations

import threading

from agent.lifecycle import Lifecycle, StopEvent
from contract.common.stop_signal import set_from_handler


def test_a_stop_wakes_a_thread_sleeping_on_its_own_event() -> None:
    stop = StopEvent()
    wake = threading.Event()
    stop.wakes(wake)
    woke: list[bool] = []
    sleeper = threading.Thread(target=lambda: woke.append(wake.wait(60)))
    sleeper.start()
    set_from_handler(stop)  # as SIGTERM does: from a thread of its own
    sleeper.join(10)
    assert woke == [True]
    assert stop.is_set()


def test_an_event_handed_over_after_the_stop_is_set_at_once() -> None:
    stop = StopEvent()
    stop.set()
    wake = threading.Event()
    stop.wakes(wake)
    assert wake.is_set()


def test_leaving_the_lifecycle_wakes_the_sleepers_before_the_parts_stop() -> None:
    stop = StopEvent()
    wake = threading.Event()
    stop.wakes(wake)
    seen: list[bool] = []
    with Lifecycle(stop) as lifecycle:
        lifecycle.started(lambda: seen.append(wake.is_set()))
    assert seen == [True]
