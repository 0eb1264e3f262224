"""Writing files so that they survive a power cut, and hashing them as they are read: the
agent's audit log and footage index and the registry's evidence intake each need both.

Written here rather than taken from a library: each is a few lines of os calls, and the
kept libraries that offer them (e.g. atomicwrites, archived in 2022) wrap whole-file
writes, not appends at an offset or hashing that a stopping process can interrupt."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path
from typing import BinaryIO

# Big enough that hashing runs at disk speed, small enough to stay out of the RSS budget.
HASH_CHUNK = 1 << 20


class HashStopped(Exception):
    """sha256_of() gave up part-way because `stop` was set."""


def write_all(fd: int, data: bytes, position: int | None = None) -> None:
    """All of `data`, at the file's offset or at `position`: one write() or pwrite() may
    write less than it was given (a full disk, a signal), so it is repeated for the rest."""
    view = memoryview(data)
    while view:
        if position is None:
            written = os.write(fd, view)
        else:
            written = os.pwrite(fd, view, position)
            position += written
        view = view[written:]


def fsync_dir(directory: Path) -> None:
    """Make a new, renamed or linked name in `directory` durable, not just the file's bytes."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sha256_of(file: BinaryIO, stop: threading.Event | None = None) -> tuple[int, str]:
    """(size in bytes, SHA-256 hex) of what is left to read in `file`, in HASH_CHUNK reads;
    raises HashStopped between chunks once `stop` is set (a file of gigabytes must not hold
    up a shutdown)."""
    digest = hashlib.sha256()
    size = 0
    while chunk := file.read(HASH_CHUNK):
        if stop is not None and stop.is_set():
            raise HashStopped("stopped before the end of the file")
        digest.update(chunk)
        size += len(chunk)
    return size, digest.hexdigest()


def sha256_file(path: Path) -> tuple[int, str]:
    """(size in bytes, SHA-256 hex) of the file at `path`, in one streaming read."""
    with open(path, "rb") as file:
        return sha256_of(file)
