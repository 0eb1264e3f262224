"""The daemon as a process: which signals stop it or dump its threads' stacks, and how it
exits past a camera thread stuck in C code. `camera-agent run` (daemon_commands.py) sets
these up around `App.run`; the app itself only sees the stop event."""

from __future__ import annotations

import faulthandler
import logging
import os
import signal
import sys
import threading
from types import FrameType

from contract.common.stop_signal import set_from_handler

log = logging.getLogger(__name__)

# `systemctl kill -s USR1 camera-agent` writes every thread's stack to the journal: what a
# hung agent is doing, without stopping it (docs/service.md, "When the agent hangs").
DUMP_STACKS_SIGNAL = signal.SIGUSR1


def install_signal_handlers(stop: threading.Event) -> None:
    """SIGTERM and SIGINT ask for a clean stop; a crash in C code (SQLite, FFmpeg, OpenSSL)
    and DUMP_STACKS_SIGNAL print every thread's stack to stderr, the journal."""
    faulthandler.enable()
    faulthandler.register(DUMP_STACKS_SIGNAL, all_threads=True)

    def handler(signum: int, frame: FrameType | None) -> None:
        log.info("received %s", signal.Signals(signum).name)
        set_from_handler(stop)

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def exit_past_stuck_threads(code: int) -> None:
    """Exit now if a camera's thread is still blocked in FFmpeg after the clean stop.

    Everything is saved and closed by then, but a thread stuck in C code (a camera that
    sends garbage and never finishes opening) would still be running while Python tears
    itself down, and that can crash the process (SIGSEGV), which systemd then reports as a
    failed stop. Seen: 1 stop in 7 with four garbage cameras on one agent."""
    # Only the cameras' threads run C code that can block; the others wait in Python.
    stuck = [t.name for t in threading.enumerate() if t.name.startswith("camera:")]
    if not stuck:
        return
    log.info(
        "%d thread(s) still blocked (%s); exiting without waiting", len(stuck), ", ".join(stuck)
    )
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
