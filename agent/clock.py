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


# The kernel's `status` bit saying `offset` is in nanoseconds rather than microseconds.
_STA_NANO = 0x2000
# The kernel caps its maximum error at NTP_PHASE_LIMIT, 16 s (in µs): that means unknown.
_MAXERROR_UNKNOWN_US = 16_000_000


class _Timex(ctypes.Structure):
    # struct timex is 208 bytes on 64-bit Linux (linux/timex.h); modes=0 only reads. The
    # fields up to `status` are named (the NTP discipline's estimate); the rest is a
    # buffer so the struct has the kernel's size.
    _fields_ = [
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
        ("_rest", ctypes.c_byte * 164),
    ]


@dataclass(frozen=True)
class ClockState:
    synced: bool
    source: str

    def as_payload(self) -> dict[str, object]:
        return {"synced": self.synced, "source": self.source}


def _adjtimex() -> tuple[int, _Timex] | None:
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
    return state, timex


def _kernel_synced() -> bool | None:
    read = _adjtimex()
    return None if read is None else read[0] != _TIME_ERROR


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


@dataclass(frozen=True)
class ClockEstimate:
    """What the kernel's NTP discipline estimates of the system clock (adjtimex(2)), with
    the synchronisation state: written into evidence manifests (docs/evidence.md)."""

    state: ClockState
    offset_s: float | None  # the offset still being corrected; None if not readable
    estimated_error_s: float | None  # the kernel's estimated error
    max_error_s: float | None  # its maximum error; None while unknown (16 s or more)

    def as_manifest(self) -> dict[str, object]:
        return {
            "synced": self.state.synced,
            "source": self.state.source,
            "offset_s": self.offset_s,
            "estimated_error_s": self.estimated_error_s,
            "max_error_s": self.max_error_s,
            "read_by": "adjtimex",
        }


def clock_estimate() -> ClockEstimate:
    """The synchronisation state with the kernel's offset and error estimates."""
    state = clock_state()
    read = _adjtimex()
    if read is None:
        return ClockEstimate(state, None, None, None)
    timex = read[1]
    per_second = 1e9 if timex.status & _STA_NANO else 1e6
    max_error = None if timex.maxerror >= _MAXERROR_UNKNOWN_US else timex.maxerror / 1e6
    return ClockEstimate(
        state, round(timex.offset / per_second, 9), timex.esterror / 1e6, max_error
    )
