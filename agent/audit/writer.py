"""Writing the audit log: append an entry, durably, from any thread or process; record a
torn tail.

`<data_dir>/audit.jsonl`, one entry a line, only ever appended to. An entry counts once
its whole line, newline included, is on disk: it is written with one write() to a file
opened O_APPEND, then fsync. A line without its newline, or lines after the last entry that
are not entries, are a *torn tail*: what a crash or power cut leaves while a line is
written (or a hand that added to the file). The log never rewrites or drops it; the next
append records it first, in an entry of event `torn_tail` that names those lines, their
size and their SHA-256, and continues the chain from the last entry before them.
agent/audit/verifier.py reports a torn tail not yet recorded as a break, and a recorded
one as a note. docs/audit.md explains this for owners and police.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from agent.audit.events import TORN_TAIL, checked
from agent.audit.verifier import AuditError, VerificationResult, read_entries, verify_log
from agent.space_reserve import OnFull, is_disk_full
from contract.audit_chain import GENESIS, SHA256_RE, AuditEntry, make_entry
from contract.common.files import fsync_dir, write_all
from contract.timestamps import rfc3339

log = logging.getLogger(__name__)

AUDIT_FILE = "audit.jsonl"
FILE_MODE = 0o600
# Reading backwards for the last entry, this much at a time.
_BLOCK = 64 * 1024


class AuditTrail(Protocol):
    """What request code needs of the audit log (AuditLog; a fake in unit tests)."""

    def append(
        self, event: str, request_id: str | None, detail: Mapping[str, object]
    ) -> object: ...


@dataclass(frozen=True)
class TornTail:
    """Lines at the end of the log that are not entries: a crash while writing, or a hand."""

    first_line: int
    last_line: int
    offset: int  # where its first line starts in the file
    data: bytes  # those lines as in the file, without a final newline
    terminated: bool  # whether the last of them ends with a newline

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    def lines_text(self) -> str:
        if self.first_line == self.last_line:
            return f"line {self.first_line}"
        return f"lines {self.first_line}-{self.last_line}"


@dataclass(frozen=True)
class _Tail:
    """Where the chain stands at the end of the file: what the next entry follows."""

    seq: int
    hash: str
    size: int
    torn: TornTail | None


class AuditLog:
    """The agent's audit log; safe for threads, and for processes (flock) appending at once.

    `on_append(entry)` is called with each entry once it is on disk, in seq order, in the
    appending thread while the log is locked: it must be quick and must not append. The
    daemon passes one that queues the entry's `line()` for the audit topic. An exception
    it raises is logged; the entry stays written.
    """

    def __init__(
        self,
        path: Path,
        *,
        on_append: Callable[[AuditEntry], None] | None = None,
        on_full: OnFull | None = None,
    ) -> None:
        self.path = path
        self._on_append = on_append
        # A full disk: release the space reserve (agent.space_reserve) and write again.
        self._on_full = on_full
        self._lock = threading.Lock()
        self._tail: _Tail | None = None
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise AuditError(f"cannot read the audit log {path}: {exc.strerror or exc}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)
            self._tail = _scan_tail(fd, os.fstat(fd).st_size)
        except OSError as exc:
            raise AuditError(f"cannot read the audit log {path}: {exc.strerror or exc}") from exc
        finally:
            os.close(fd)

    @property
    def torn(self) -> TornTail | None:
        """The torn tail found when the log was opened, until an append records it."""
        return self._tail.torn if self._tail else None

    def append(
        self, event: str, request_id: str | None, detail: Mapping[str, object]
    ) -> AuditEntry:
        """Write one entry (after a `torn_tail` entry, if the log ends in one) and return it.

        ValueError for an event, request id or detail that breaks the vocabulary (a bug in
        the caller); AuditError when the file cannot be written."""
        plain = checked(event, request_id, detail)
        with self._lock:
            try:
                written = self._write(event, request_id, plain)
            except AuditError as exc:
                full = exc.__cause__ is not None and is_disk_full(exc.__cause__)
                if not (full and self._on_full is not None and self._on_full()):
                    raise
                written = self._write(event, request_id, plain)
            for entry in written:
                self._notify(entry)
        return written[-1]

    def _write(
        self, event: str, request_id: str | None, detail: Mapping[str, Any]
    ) -> list[AuditEntry]:
        created = False
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CLOEXEC)
            except FileNotFoundError:
                fd = os.open(
                    self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, FILE_MODE
                )
                created = True
        except OSError as exc:
            raise AuditError(f"cannot open the audit log {self.path}: {exc.strerror}") from exc
        try:
            # Another process (the owner's CLI acting without the daemon) may append too.
            fcntl.flock(fd, fcntl.LOCK_EX)
            if created:
                os.fchmod(fd, FILE_MODE)  # whatever the umask
                fsync_dir(self.path.parent)
            size = os.fstat(fd).st_size
            tail = self._tail
            if tail is None or tail.size != size:
                if tail is not None and size < tail.size:
                    log.error(
                        "audit log %s shrank from %d to %d bytes since this agent last read "
                        "or wrote it: entries were removed. `camera-agent audit verify --head` "
                        "with the registry's head shows it; the chain goes on from what is left",
                        self.path,
                        tail.size,
                        size,
                    )
                tail = _scan_tail(fd, size)
            now = rfc3339(datetime.now(UTC))
            written: list[AuditEntry] = []
            data = b""
            seq, prev = tail.seq, tail.hash
            if tail.torn is not None:
                torn = tail.torn
                seal = make_entry(
                    seq + 1,
                    now,
                    TORN_TAIL,
                    None,
                    {
                        "from_line": torn.first_line,
                        "to_line": torn.last_line,
                        "bytes": len(torn.data),
                        "sha256": torn.sha256,
                    },
                    prev,
                )
                log.error(
                    "audit log %s ends in %d bytes that are not a complete entry (%s, "
                    "sha256 %s); the agent probably stopped while writing. Kept as found and "
                    "recorded by entry %d, which continues the chain from entry %d",
                    self.path,
                    len(torn.data),
                    torn.lines_text(),
                    torn.sha256,
                    seal.seq,
                    seq,
                )
                data += (b"" if torn.terminated else b"\n") + seal.line() + b"\n"
                written.append(seal)
                seq, prev = seal.seq, seal.hash
            entry = make_entry(seq + 1, now, event, request_id, detail, prev)
            data += entry.line() + b"\n"
            written.append(entry)
            self._tail = None  # unknown until the write is complete
            try:
                write_all(fd, data)
            except OSError as exc:
                if is_disk_full(exc):
                    # Part of the line may be written: take it back (we hold the lock and
                    # know the size before), so the retry after the space reserve is
                    # released appends a whole entry rather than after a torn tail.
                    os.ftruncate(fd, size)
                raise
            os.fsync(fd)
            self._tail = _Tail(entry.seq, entry.hash, size + len(data), None)
            return written
        except OSError as exc:
            raise AuditError(f"cannot write the audit log {self.path}: {exc.strerror}") from exc
        finally:
            os.close(fd)  # also releases the flock

    def _notify(self, entry: AuditEntry) -> None:
        if self._on_append is None:
            return
        try:
            self._on_append(entry)
        except Exception:
            log.exception("audit entry %d is written, but handing it on failed", entry.seq)

    def entries(self, request_id: str | None = None) -> list[AuditEntry]:
        """Every line that is an entry, in file order, unchecked (see `verify`): not the
        lines of a torn tail, recorded or not."""
        found = read_entries(self.path)
        if request_id is not None:
            found = [entry for entry in found if entry.request_id == request_id]
        return found

    def verify(self, expected_head: str | None = None) -> VerificationResult:
        """Check every line and link of the chain; `expected_head` is the hash of the
        newest entry the registry received, which the log must still contain."""
        return verify_log(self.path, expected_head)


# --- the tail: where the chain stands, and what follows its last entry ---------------------


def _usable(raw: bytes) -> tuple[int, str] | None:
    """(seq, hash) of a line the chain can continue from, or None."""
    try:
        value = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return None
    if not isinstance(value, dict):
        return None
    seq, digest = value.get("seq"), value.get("hash")
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
        return None
    if not isinstance(digest, str) or not SHA256_RE.fullmatch(digest):
        return None
    return seq, digest


def _pread_all(fd: int, length: int, offset: int) -> bytes:
    parts: list[bytes] = []
    while length > 0:
        chunk = os.pread(fd, length, offset)
        if not chunk:
            raise OSError(0, "the file got shorter while it was read")
        parts.append(chunk)
        length -= len(chunk)
        offset += len(chunk)
    return b"".join(parts)


def _scan_tail(fd: int, size: int) -> _Tail:
    """Read backwards to the last line that is an entry; what follows it is a torn tail."""
    buf = b""
    start = size  # buf holds the file's bytes [start, size)
    while True:
        if start > 0:
            step = min(_BLOCK, start)
            start -= step
            buf = _pread_all(fd, step, start) + buf
        terminated = buf.endswith(b"\n")
        parts = (buf[:-1] if terminated else buf).split(b"\n") if buf else []
        offsets: list[int] = []
        at = start
        for part in parts:
            offsets.append(at)
            at += len(part) + 1
        # parts[0] may begin before `start`: only whole once the start of the file is read.
        first_whole = 0 if start == 0 else 1
        for i in range(len(parts) - 1, first_whole - 1, -1):
            line_terminated = i < len(parts) - 1 or terminated
            found = _usable(parts[i]) if line_terminated else None
            if found is not None:
                return _Tail(found[0], found[1], size, _torn(fd, parts, offsets, i + 1, terminated))
        if start == 0:
            return _Tail(0, GENESIS, size, _torn(fd, parts, offsets, 0, terminated))


def _torn(
    fd: int, parts: list[bytes], offsets: list[int], first: int, terminated: bool
) -> TornTail | None:
    if first >= len(parts):
        return None
    offset = offsets[first]
    before = _count_newlines(fd, offset)
    return TornTail(
        first_line=before + 1,
        last_line=before + len(parts) - first,
        offset=offset,
        data=b"\n".join(parts[first:]),
        terminated=terminated,
    )


def _count_newlines(fd: int, end: int) -> int:
    count, offset = 0, 0
    while offset < end:
        chunk = _pread_all(fd, min(_BLOCK * 16, end - offset), offset)
        count += chunk.count(b"\n")
        offset += len(chunk)
    return count
