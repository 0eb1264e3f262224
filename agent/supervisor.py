"""Runs the camera workers as named threads, restarts crashed ones, spots wedged ones."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from agent.streams.worker import CameraWorker

log = logging.getLogger(__name__)

# A worker shows life at least every I/O timeout (5 s) plus one reconnect wait slice;
# six times that without a sign means it is stuck somewhere no timeout reaches.
WEDGED_AFTER_S = 30.0
# Crashed workers are restarted at most this often in this window, then the agent
# gives up and exits non-zero so systemd restarts the whole service.
RESTART_BUDGET = 5
RESTART_WINDOW_S = 600.0


@dataclass
class _Slot:
    worker: CameraWorker
    thread: threading.Thread
    wedged: bool = False


class Supervisor:
    def __init__(
        self,
        workers: Sequence[CameraWorker],
        stop: threading.Event,
        *,
        wedged_after: float = WEDGED_AFTER_S,
    ) -> None:
        self._stop = stop
        self._wedged_after = wedged_after
        self._slots = [_Slot(w, self._thread_for(w)) for w in workers]
        self._restarts: deque[float] = deque()
        self.gave_up = False

    def _thread_for(self, worker: CameraWorker) -> threading.Thread:
        def body() -> None:
            try:
                worker.run(self._stop)
            except Exception:
                log.exception("camera %s: worker crashed", worker.camera_id)

        # Daemon threads: a worker stuck inside a library call must not keep a stopping
        # agent alive; everything it owns is re-opened on the next start.
        return threading.Thread(target=body, name=worker.thread_name, daemon=True)

    def start(self) -> None:
        for slot in self._slots:
            slot.thread.start()

    def check(self) -> bool:
        """Restart crashed workers; True while every worker is running and not wedged."""
        healthy = True
        now = time.monotonic()
        for slot in self._slots:
            if not slot.thread.is_alive() and not self._stop.is_set():
                healthy = False
                self._restart(slot, now)
            elif now - slot.worker.heartbeat > self._wedged_after:
                if not slot.wedged:
                    log.error(
                        "camera %s: worker shows no sign of life for %.0f s; "
                        "withholding the watchdog ping",
                        slot.worker.camera_id,
                        now - slot.worker.heartbeat,
                    )
                slot.wedged = True
                healthy = False
            elif slot.wedged:
                log.warning("camera %s: worker alive again", slot.worker.camera_id)
                slot.wedged = False
        return healthy and not self.gave_up

    def _restart(self, slot: _Slot, now: float) -> None:
        while self._restarts and self._restarts[0] < now - RESTART_WINDOW_S:
            self._restarts.popleft()
        if len(self._restarts) >= RESTART_BUDGET:
            if not self.gave_up:
                log.error(
                    "%d worker restarts within %.0f s; giving up", RESTART_BUDGET, RESTART_WINDOW_S
                )
            self.gave_up = True
            return
        self._restarts.append(now)
        log.warning("camera %s: restarting its worker", slot.worker.camera_id)
        slot.thread = self._thread_for(slot.worker)
        slot.thread.start()

    def join(self, timeout: float) -> None:
        """Wait for the workers to end, at most `timeout` seconds in all, newest first."""
        deadline = time.monotonic() + timeout
        for slot in reversed(self._slots):
            slot.thread.join(max(0.0, deadline - time.monotonic()))
