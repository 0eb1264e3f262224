"""A broken SQLite state file is moved aside, never deleted, so the agent can go on.

Which SQLite errors mean "this file is broken" (its bytes are not a database, or a page
is damaged: what a power cut on an SD card or a stray write leaves) and which mean "this
file cannot be used right now" (permissions, a full or read-only disk). Only the first
kind is moved aside: moving a file because the disk is full would throw away a good one.
The recovery story of each state file is the table in docs/service.md.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

log = logging.getLogger(__name__)

# SQLite's primary result codes for a damaged file (sqlite3.h): SQLITE_CORRUPT, SQLITE_NOTADB.
_BROKEN_CODES = frozenset({11, 26})
# What SQLite's integrity check says of a sound file.
_SOUND = "ok"
# A WAL database's companions: they belong to the broken file, not to the fresh one.
_COMPANIONS = ("-wal", "-shm", "-journal")


class BrokenFile(sqlite3.DatabaseError):
    """A state file whose bytes are not a usable database (raised by `check_sound`)."""


@dataclass(frozen=True)
class MovedAside:
    """A broken state file kept under a new name, and why."""

    file: str  # the state file's name, e.g. `outbox.sqlite`
    kept_as: str | None  # the name it was kept under, beside it; None: it was missing
    error: str
    reseeded: int | None = None  # the request store's: request ids remembered again

    def audit_detail(self) -> dict[str, object]:
        """The detail of the `state_file_reset` audit entry (docs/audit.md)."""
        detail: dict[str, object] = {
            "file": self.file,
            "kept_as": self.kept_as,
            "error": self.error[:200],
        }
        if self.reseeded is not None:
            detail["reseeded_request_ids"] = self.reseeded
        return detail


def is_broken(exc: BaseException) -> bool:
    """Whether `exc` (or what caused it) says the file's bytes are damaged."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, BrokenFile):
            return True
        if isinstance(seen, sqlite3.DatabaseError):
            code = getattr(seen, "sqlite_errorcode", None)
            if code is not None and code & 0xFF in _BROKEN_CODES:
                return True
            text = str(seen)
            if "malformed" in text or "not a database" in text:
                return True
        seen = seen.__cause__ or seen.__context__
    return False


def check_sound(db: sqlite3.Connection, what: str) -> None:
    """Raise BrokenFile unless SQLite's quick check finds the file sound: a damaged page
    in the middle of a file opens without complaint and fails only when it is read."""
    try:
        rows = db.execute("PRAGMA quick_check").fetchall()
    except sqlite3.DatabaseError as exc:
        if is_broken(exc):
            raise BrokenFile(f"{what}: {exc}") from exc
        raise
    found = [str(row[0]) for row in rows]
    if found != [_SOUND]:
        raise BrokenFile(f"{what}: damaged ({'; '.join(found[:3])})")


def move_aside(path: Path, error: BaseException | str) -> MovedAside:
    """Rename `path` (and its WAL companions) to `NAME.corrupt-<unix time>` beside it."""
    stamp = int(time.time())
    kept = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 1
    while kept.exists():  # two resets within a second: keep both
        kept = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
        n += 1
    os.replace(path, kept)
    for suffix in _COMPANIONS:
        companion = path.with_name(path.name + suffix)
        if companion.exists():
            os.replace(companion, kept.with_name(kept.name + suffix))
    return MovedAside(path.name, kept.name, str(error))


T = TypeVar("T")


def open_or_move_aside(
    path: Path, opener: Callable[[Path], T], what: str
) -> tuple[T, MovedAside | None]:
    """`opener(path)`; if the file is broken, move it aside with one clear log line and
    open a fresh one. Errors that are not about the file's bytes propagate."""
    try:
        return opener(path), None
    except Exception as exc:
        if not is_broken(exc):
            raise
        moved = move_aside(path, exc)
    log.error(
        "%s %s is broken (%s); kept it as %s and started a new, empty one",
        what,
        path,
        moved.error,
        moved.kept_as,
    )
    return opener(path), moved
