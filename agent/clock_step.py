"""Steps of the wall clock, seen against the kernel's boot clock, and the agent's own
elapsed time, which no step can change.

A Pi without a real-time clock starts at the time it last saved and jumps when NTP first
syncs, hours or days at once; an owner may set the date by hand. The wall clock minus
CLOCK_BOOTTIME (which counts from boot, suspend included, and is never stepped) stays
constant while the wall clock only ticks or is slewed; when it jumps, the wall clock was
stepped, by exactly that jump. Footage durations and retention ages within a boot are
taken from CLOCK_BOOTTIME; across a reboot only the wall clock spans the time the device
was off (docs/service.md, "Clock steps").
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

log = logging.getLogger(__name__)

# A jump of the offset this large is a step. NTP slews at most 0.5 ms a second, and both
# clocks are read back to back, so nothing but a step moves the offset by a second; a
# step smaller than that changes no footage time that matters.
STEP_MIN_S = 1.0
# The kernel's id of this boot: CLOCK_BOOTTIME restarts with it.
BOOT_ID_FILE = Path("/proc/sys/kernel/random/boot_id")


# Where the kernel does not say which boot this is: no age by the boot clock then, since
# every boot would look like this one.
UNKNOWN_BOOT = "unknown"


def boot_id() -> str:
    """This boot's id, or UNKNOWN_BOOT."""
    try:
        return BOOT_ID_FILE.read_text(encoding="ascii").strip() or UNKNOWN_BOOT
    except OSError:
        return UNKNOWN_BOOT


def boot_seconds() -> float:
    """Seconds since boot on CLOCK_BOOTTIME: never stepped, counts suspend."""
    return time.clock_gettime(time.CLOCK_BOOTTIME)


@dataclass(frozen=True)
class BootTime:
    """Where the agent is on its own clock: this boot and how long it has been up."""

    boot_id: str
    seconds: float

    @classmethod
    def now(cls, boot: str | None = None) -> BootTime:
        return cls(boot if boot is not None else boot_id(), boot_seconds())


@dataclass(frozen=True)
class ClockStep:
    """One step of the wall clock: at `before` (old wall time) it became `after`."""

    before: datetime
    after: datetime
    synced: bool  # whether the clock said it was synchronised just after the step

    @property
    def seconds(self) -> float:
        return (self.after - self.before).total_seconds()


def _offset() -> float:
    return time.time() - boot_seconds()


class ClockWatch:
    """Notices wall-clock steps; shared by the main loop and the camera threads.

    `check()` is cheap (two clock reads) and is called wherever a step matters at once:
    each recorder before it stamps a segment, the main loop every tick. The first caller to
    see a jump records it; `steps` counts them, so a recorder knows one happened since it
    last looked, and `take_new()` hands each to the main loop once (log, audit)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._offset = _offset()
        self._steps: list[ClockStep] = []
        self._taken = 0
        self.synced = False  # set by the main loop from agent.clock; read at a step

    def check(self) -> int:
        """Look for a step now; returns how many steps were seen so far."""
        with self._lock:
            offset = _offset()
            jump = offset - self._offset
            if abs(jump) >= STEP_MIN_S:
                after = datetime.now(UTC)
                step = ClockStep(after - timedelta(seconds=jump), after, self.synced)
                self._steps.append(step)
            self._offset = offset
            return len(self._steps)

    @property
    def steps(self) -> int:
        with self._lock:
            return len(self._steps)

    @property
    def last(self) -> ClockStep | None:
        with self._lock:
            return self._steps[-1] if self._steps else None

    def take_new(self) -> list[ClockStep]:
        """Steps not handed out before, oldest first."""
        with self._lock:
            new = self._steps[self._taken :]
            self._taken = len(self._steps)
            return new
