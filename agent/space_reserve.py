"""Space kept back on the state directory's disk so that a full disk cannot cost a health
report, an outbox message, an audit entry or a counter.

Footage fills disks; the agent's small state writes (counters.json, the outbox, the audit
log, the footage index) need a few KiB each. Without space for them the agent could
neither number nor keep a health report, and before issue 15 it exited on the first
failed counters write, at every start, for as long as the disk stayed full.

Why preallocated files rather than a quota or a separate filesystem: they work on any
filesystem the owner already has (an SD card's one ext4 partition, a tmpfs), need no root
and no setup, and whatever fills the disk (footage, another program's log) meets a full
disk while the reserve's blocks are still held. When a state write fails for lack of space
(`release`, called by the writer itself, or `tick` seeing the disk nearly full), one piece
is deleted: its blocks are free at once and the write is tried again. Footage must not
take them: Storage counts a released piece as space that is not there (`missing_bytes`)
and prunes the oldest footage to get it back, and recording resumes only when there is
room beyond it. When the disk has room again the pieces are made anew (`tick`). If even
the reserve runs out, counters.json is rewritten in place (agent/state.py) and messages
are published from memory (agent/mqtt/client.py): a connected registry still hears them.

Why the counters depend on it: a health report's (bdseq, seq) is how the registry counts
loss, so a seq is written to disk before it is used and never used unsaved (a report that
cannot be numbered waits). Unsaved counters would go back at the next start and the
registry would take new reports for duplicates of old ones.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

RESERVE_FILE = "space-reserve"
# What the state writes may need while the disk is full. Each outbox or index write in WAL
# mode appends a few 4 KiB pages to a -wal file, which SQLite rewinds after its automatic
# checkpoint at 1000 pages (4 MiB), so a WAL that has not yet reached that size can still
# grow by 4 MiB, and a clean stop deletes the WAL and its 32 KiB -shm index, which the next
# start must make again before it can read the file; a day of one camera's health reports
# waiting for a broker is ~2 MiB more of outbox rows; counters.json is one block, an audit
# entry a few hundred bytes.
RESERVE_BYTES = 8 * 1024 * 1024
# Held as pieces, released one at a time: what fills the disk from outside may take a
# released piece too, and the pieces left still carry the agent through (a restart on a
# full disk needs one to open its SQLite files).
RESERVE_PIECES = 4
# Below this much free space a piece is released before a writer has to fail.
RELEASE_BELOW_BYTES = 256 * 1024
# A piece comes back only when this much is free beyond it, so that making it does not
# make the disk full again at once (which would release it at the next tick).
RESTORE_MARGIN_BYTES = 4 * RELEASE_BELOW_BYTES
_CHUNK = 1024 * 1024
# sqlite3's extended result code for a full disk.
_SQLITE_FULL = 13

# Called by a state writer that met a full disk: True if space was released (try again).
OnFull = Callable[[], bool]


def is_disk_full(exc: BaseException) -> bool:
    """True for an error that means no space (or quota) is left: OSError or SQLite."""
    if isinstance(exc, sqlite3.Error):
        return (getattr(exc, "sqlite_errorcode", 0) & 0xFF) == _SQLITE_FULL
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)


class SpaceReserve:
    """The reserve's files in the data directory; safe to use from several threads."""

    def __init__(
        self, data_dir: Path, size: int = RESERVE_BYTES, pieces: int = RESERVE_PIECES
    ) -> None:
        self._dir = data_dir
        self._piece = size // pieces
        self._paths = [data_dir / f"{RESERVE_FILE}.{n}" for n in range(pieces)]
        self._lock = threading.Lock()

    def _present(self) -> list[Path]:
        present = []
        for path in self._paths:
            try:
                if path.stat().st_size >= self._piece:
                    present.append(path)
            except OSError:
                pass
        return present

    @property
    def held(self) -> bool:
        """True when every piece is there."""
        return len(self._present()) == len(self._paths)

    def missing_bytes(self) -> int:
        """Free space that is the reserve's by right: 0 while all of it is held."""
        return (len(self._paths) - len(self._present())) * self._piece

    def free_bytes(self) -> int:
        return shutil.disk_usage(self._dir).free

    def release(self) -> bool:
        """Delete one piece so that a state write can go on; True if there was one."""
        with self._lock:
            present = self._present()
            if not present:
                return False
            piece = present[-1]
            try:
                piece.unlink()
            except OSError as exc:
                log.error("cannot release the space reserve %s: %s", piece, exc)
                return False
        log.warning(
            "the disk of %s is full: released %d KiB of the space reserve (%d of %d pieces "
            "left) so that health reports, messages and audit entries are still written; "
            "footage on this disk is pruned to make room",
            self._dir,
            self._piece // 1024,
            len(present) - 1,
            len(self._paths),
        )
        return True

    def release_if_full(self) -> bool:
        """Release a piece if the disk is all but full (before opening files that need a
        little space, whatever error they would give); True if one was released."""
        try:
            full = self.free_bytes() < RELEASE_BELOW_BYTES
        except OSError:
            return False
        return full and self.release()

    def tick(self) -> None:
        """Release a piece when the disk is all but full, make one again once it is not."""
        try:
            self._dir.mkdir(parents=True, exist_ok=True)
            free = self.free_bytes()
        except OSError as exc:
            log.debug("cannot read the free space of %s: %s", self._dir, exc)
            return
        if free < RELEASE_BELOW_BYTES:
            self.release()
            return
        while free >= self._piece + RESTORE_MARGIN_BYTES and not self.held:
            if not self.make():
                return
            free -= self._piece

    def make(self) -> bool:
        """Allocate the first missing piece; False when the disk has no room for it."""
        with self._lock:
            missing = [path for path in self._paths if path not in self._present()]
            if not missing:
                return True
            path = missing[0]
            tmp = path.with_name(path.name + ".tmp")
            try:
                self._dir.mkdir(parents=True, exist_ok=True)
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
                try:
                    _allocate(fd, self._piece)
                    os.fsync(fd)
                finally:
                    os.close(fd)
                os.replace(tmp, path)
            except OSError as exc:
                tmp.unlink(missing_ok=True)
                if not is_disk_full(exc):
                    log.warning("cannot make the space reserve %s: %s", path, exc)
                return False
        if len(missing) == 1:
            log.info("the %d MiB space reserve in %s is whole", self._reserve_mib(), self._dir)
        return True

    def _reserve_mib(self) -> int:
        return self._piece * len(self._paths) // (1024 * 1024)


def _allocate(fd: int, size: int) -> None:
    """Give the file real blocks: fallocate where the filesystem has it, else zeros (a sparse
    file or one made by truncate would hold no space)."""
    try:
        os.posix_fallocate(fd, 0, size)
        return
    except OSError as exc:
        if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
            raise
    zeros = bytes(_CHUNK)
    written = 0
    while written < size:
        written += os.write(fd, zeros[: min(_CHUNK, size - written)])
