"""Is the system clock synchronised, and by what? Read from the kernel, not assumed."""

from __future__ import annotations

import ctypes
import os
from dataclasses import dataclass
from pathlib import Path

from agent.libc import libc as c_library

# adjtimex(2) returns TIME_ERROR (5) while the kernel considers the clock unsynchronised.
_TIME_ERROR = 5
# For tests only, which cannot unsynchronise the machine's clock: the path of a file that
# says `synced` (anything else, or no file: not synchronised). The state then reports
# the source `test-file`, so a production agent started with it shows so to the registry.
TEST_CLOCK_ENV = "CAMERA_AGENT_TEST_CLOCK_FILE"
TEST_CLOCK_SOURCE = "test-file"


class _Timex(ctypes.Structure):
    # struct timex is 208 bytes on 64-bit Linux; modes=0 only reads, so a buffer of the
    # right size is all adjtimex needs from us.
    _fields_ = [("modes", ctypes.c_uint), ("_rest", ctypes.c_byte * 204)]


@dataclass(frozen=True)
class ClockState:
    synced: bool
    source: str

    def as_payload(self) -> dict[str, object]:
        return {"synced": self.synced, "source": self.source}


def _kernel_synced() -> bool | None:
    libc = c_library()
    if libc is None:
        return None
    try:
        timex = _Timex()
        state = int(libc.adjtimex(ctypes.byref(timex)))
    except AttributeError:
        return None
    if state < 0:
        return None
    return state != _TIME_ERROR


def _daemon() -> str:
    if os.path.exists("/run/systemd/timesync/synchronized"):
        return "systemd-timesyncd"
    if os.path.exists("/run/chrony") or os.path.exists("/var/run/chrony"):
        return "chrony"
    return "ntp"


def _test_file(path: Path) -> ClockState:
    try:
        synced = path.read_text(encoding="utf-8").strip() == "synced"
    except (OSError, UnicodeDecodeError):
        synced = False
    return ClockState(synced, TEST_CLOCK_SOURCE)


def clock_state() -> ClockState:
    override = os.environ.get(TEST_CLOCK_ENV)
    if override:
        return _test_file(Path(override))
    synced = _kernel_synced()
    if synced is None:
        return ClockState(False, "unknown")
    return ClockState(synced, _daemon() if synced else "none")
