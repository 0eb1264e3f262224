"""Opening footage files without following a symbolic link.

The owner's recorder folder is written by someone else (the recorder, often over SMB or
NFS). A symbolic link planted there resolves on the agent's machine: to another camera's
file, to the agent's own state, to /dev/zero. So footage is read only from regular files,
opened with O_NOFOLLOW (a link in the last component is refused by the kernel, with no
window between a check and the open) and checked with fstat on the open descriptor.
Folders are walked without following links (see recording/directory.py); a folder swapped
for a link after indexing leads to other bytes, which the hash recorded at indexing
refuses, and the copy is bounded by the recorded size (evidence/export.py).
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import BinaryIO


class NotPlainFile(OSError):
    """The path is a symbolic link, or not a regular file (a FIFO, a device, a folder)."""


def describe_link(path: str | Path) -> str:
    """What a symbolic link points to, for a warning; never raises."""
    try:
        return os.readlink(path)
    except OSError:
        return "?"


def open_plain(path: Path) -> BinaryIO:
    """Open a regular file for reading without following a symbolic link at its end.

    Raises NotPlainFile for a link or anything but a regular file, FileNotFoundError when
    it is gone, another OSError when it cannot be read. O_NONBLOCK: opening a FIFO for
    reading would otherwise wait for a writer."""
    flags = os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise NotPlainFile(
                errno.ELOOP,
                f"a symbolic link (to {describe_link(path)})",
                str(path),
            ) from None
        raise
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotPlainFile(
                errno.EINVAL, "something other than a regular file (a FIFO or a device)", str(path)
            )
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
