"""Runs the camera workers as named threads, restarts crashed ones, replaces wedged ones.

A worker stuck inside a call no deadline reaches cannot be killed (Python has no way to
stop a thread). It is abandoned instead: fenced off from its camera's recording and
health (CameraWorker.retire) and replaced by a fresh worker, so one camera's hang never
withholds the watchdog ping that the other cameras' recording depends on. Abandoned
threads hold a connection and some memory until their call returns, so each camera has
at most MAX_ABANDONED_PER_CAMERA of them; past that its stuck worker is left in place,
and its health says `no_signal` until something returns.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from agent.streams.worker import CameraWorker

log = logging.getLogger(__name__)

# A worker shows life at least every I/O timeout (5 s) plus one reconnect wait slice,
# and every FFmpeg call on a stream has a deadline (agent.streams.source: 2 x 10 s to
# open, 10 s a read); this long without a sign means it is stuck where none reaches.
WEDGED_AFTER_S = 30.0
# Crashed workers are restarted at most this often in this window, then the agent
# gives up and exits non-zero so systemd restarts the whole service.
RESTART_BUDGET = 5
RESTART_WINDOW_S = 600.0
# Stuck workers given up per camera and not yet returned. One is enough to ride out a
# hang that ends (a socket the kernel closes, a disk that comes back); a camera that
# hangs every worker it gets is not helped by more, and each one holds memory.
MAX_ABANDONED_PER_CAMERA = 1


@dataclass
class _Slot:
    worker: CameraWorker
    thread: threading.Thread
    wedged: bool = False
    abandoned: list[threading.Thread] = field(default_factory=list)


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
                log.exception("camera %s: %s crashed", worker.camera_id, worker.label)

        # Daemon threads: a worker stuck inside a library call must not keep a stopping
        # agent alive; everything it owns is re-opened on the next start.
        return threading.Thread(target=body, name=worker.thread_name, daemon=True)

    def start(self) -> None:
        for slot in self._slots:
            slot.thread.start()

    def check(self) -> bool:
        """Restart crashed workers and replace wedged ones; False once the agent should
        give up (crashes past the restart budget). A wedged camera is no reason: the
        watchdog ping goes on for the others."""
        now = time.monotonic()
        for slot in self._slots:
            slot.abandoned = [t for t in slot.abandoned if t.is_alive()]
            if not slot.thread.is_alive() and not self._stop.is_set():
                self._restart(slot, now)
            elif now - slot.worker.heartbeat > self._wedged_after:
                self._wedged(slot, now)
            elif slot.wedged:
                log.warning("camera %s: %s alive again", slot.worker.camera_id, slot.worker.label)
                slot.wedged = False
        return not self.gave_up

    def _wedged(self, slot: _Slot, now: float) -> None:
        camera = slot.worker.camera_id
        silent = now - slot.worker.heartbeat
        if len(slot.abandoned) >= MAX_ABANDONED_PER_CAMERA:
            if not slot.wedged:
                log.error(
                    "camera %s: %s shows no sign of life for %.0f s, and the one "
                    "abandoned before it is still stuck; %s until one returns",
                    camera,
                    slot.worker.label,
                    silent,
                    slot.worker.while_stuck,
                )
            slot.wedged = True
            return
        log.error(
            "camera %s: %s shows no sign of life for %.0f s; abandoning it and starting a new one",
            camera,
            slot.worker.label,
            silent,
        )
        slot.worker.retire()
        slot.thread.name = f"{slot.thread.name} (abandoned)"
        slot.abandoned.append(slot.thread)
        slot.worker = slot.worker.successor()
        slot.thread = self._thread_for(slot.worker)
        slot.thread.start()
        slot.wedged = False

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
        log.warning("camera %s: restarting its %s", slot.worker.camera_id, slot.worker.label)
        slot.thread = self._thread_for(slot.worker)
        slot.thread.start()

    def join(self, timeout: float) -> None:
        """Wait for the workers to end, at most `timeout` seconds in all, newest first."""
        deadline = time.monotonic() + timeout
        for slot in reversed(self._slots):
            slot.thread.join(max(0.0, deadline - time.monotonic()))
