"""The SHA-256 a segment is sealed with and verified against, read in chunks that a stopping
agent can interrupt."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

from agent.errors import AgentError
from agent.recording.plain_file import open_plain

# Big enough that hashing runs at disk speed, small enough to stay out of the RSS budget.
HASH_CHUNK = 1024 * 1024


class HashCancelled(AgentError):
    """sha256_file gave up part-way because the agent is stopping."""


def sha256_file(path: Path, stop: threading.Event | None = None) -> tuple[int, str]:
    """(size in bytes, SHA-256 hex) of a file, read in 1 MiB chunks; raises HashCancelled
    between chunks once `stop` is set (a multi-GB file must not hold up a shutdown), and
    NotPlainFile for a symbolic link or anything but a regular file (plain_file.py)."""
    digest = hashlib.sha256()
    size = 0
    with open_plain(path) as fh:
        while chunk := fh.read(HASH_CHUNK):
            if stop is not None and stop.is_set():
                raise HashCancelled(f"hashing {path} stopped: the agent is stopping")
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()
