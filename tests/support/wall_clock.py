"""A wall-clock shifter for the agent process: tests/support/wall_clock_shift.c, built
once per test session with the system's C compiler and preloaded into the agent, so a test
steps the agent's wall clock while it runs and leaves its monotonic and boot clocks alone
(what the kernel does when NTP steps the clock)."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import tempfile
from pathlib import Path

from tests.support import REPO_ROOT

SOURCE = REPO_ROOT / "tests" / "support" / "wall_clock_shift.c"
_OFFSET = struct.Struct("=q")  # nanoseconds, native endian: what the library maps
_built: Path | None = None


class ShifterUnavailable(RuntimeError):
    """The shifter cannot be built here (no C compiler)."""


def shifter_library() -> Path:
    """The preload library, compiled on first use (about 0.2 s)."""
    global _built
    if _built is not None and _built.exists():
        return _built
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise ShifterUnavailable(
            "no C compiler: the clock-step tests build a small LD_PRELOAD library "
            "(demo/install-system-packages.sh installs gcc)"
        )
    target = Path(tempfile.mkdtemp(prefix="wall-clock-shift-")) / "wall_clock_shift.so"
    subprocess.run(
        [compiler, "-shared", "-fPIC", "-O2", "-Wall", "-o", str(target), str(SOURCE), "-ldl"],
        check=True,
        capture_output=True,
    )
    _built = target
    return target


class WallClockShift:
    """The offset the agent's wall clock runs at; `step(seconds)` moves it while it runs."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0.0
        path.write_bytes(_OFFSET.pack(0))

    @property
    def env(self) -> dict[str, str]:
        """What to add to the agent's environment."""
        return {"LD_PRELOAD": str(shifter_library()), "WALL_CLOCK_SHIFT_FILE": str(self.path)}

    def step(self, seconds: float) -> None:
        """Step the wall clock by `seconds` (negative: back), at once."""
        self.set(self.offset + seconds)

    def set(self, offset: float) -> None:
        self.offset = offset
        # One aligned 8-byte write into the page the library has mapped: it reads the old
        # or the new offset, never half of each.
        fd = os.open(self.path, os.O_WRONLY)
        try:
            os.pwrite(fd, _OFFSET.pack(round(offset * 1e9)), 0)
        finally:
            os.close(fd)
