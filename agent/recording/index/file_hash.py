"""The SHA-256 a segment is sealed with and verified against, read in chunks that a stopping
agent can interrupt."""

from __future__ import annotations

import threading
from pathlib import Path

from agent.errors import AgentError
from agent.recording.plain_file import open_plain
from contract.common.files import HASH_CHUNK, HashStopped, sha256_of

__all__ = ["HASH_CHUNK", "HashCancelled", "sha256_file"]


class HashCancelled(AgentError):
    """sha256_file gave up part-way because the agent is stopping."""


def sha256_file(path: Path, stop: threading.Event | None = None) -> tuple[int, str]:
    """(size in bytes, SHA-256 hex) of a file, read in 1 MiB chunks; raises HashCancelled
    between chunks once `stop` is set (a multi-GB file must not hold up a shutdown), and
    NotPlainFile for a symbolic link or anything but a regular file (plain_file.py)."""
    with open_plain(path) as fh:
        try:
            return sha256_of(fh, stop)
        except HashStopped:
            raise HashCancelled(f"hashing {path} stopped: the agent is stopping") from None
