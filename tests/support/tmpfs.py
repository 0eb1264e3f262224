"""A real small filesystem (tmpfs) that a test can fill to the last byte, as a Pi's SD card
fills: mounted for the test, unmounted at its end. Needs root (CI runs the suite as root)."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

_CHUNK = 1024 * 1024


@contextmanager
def tmpfs(directory: Path, size_bytes: int) -> Iterator[Path]:
    """`directory` with a fresh tmpfs of `size_bytes` mounted on it."""
    directory.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_bytes},mode=0755", "tmpfs", str(directory)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.fail(
            f"cannot mount a tmpfs on {directory} (the disk-full tests need root): "
            f"{mounted.stderr.strip()}",
            pytrace=False,
        )
    try:
        yield directory
    finally:
        # Lazy: a process that still has a file open there must not fail the teardown.
        subprocess.run(["umount", "-l", str(directory)], check=False)


def free_bytes(directory: Path) -> int:
    return shutil.disk_usage(directory).free


def fill(path: Path, leave: int = 0) -> int:
    """Write `path` until the disk has only `leave` bytes free (0: to the last byte, as
    another program's runaway log would); returns the bytes written."""
    written = 0
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        chunk = _CHUNK
        while chunk >= 512:
            want = min(chunk, free_bytes(path.parent) - leave)
            if want < 512:
                break
            try:
                written += os.write(fd, bytes(want))
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                chunk //= 2
    finally:
        os.close(fd)
    return written
