"""A folder the whole test session shares, for files that are slow to make (the corpus).

Under pytest-xdist each worker has its own temporary folder and its own module fixtures,
so two tests of one module that land on two workers would each render the same clips.
The workers' folders sit in the session's, so a folder there is shared; an exclusive
lock while a fixture fills it makes the second worker wait and then reuse the files
(the builders skip files that exist and write each one atomically). Nothing outlives
the session's temporary folder.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def _session_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.getbasetemp()
    # xdist puts each worker's base folder (named for the worker) in the session's.
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@contextmanager
def session_cache(tmp_path_factory: pytest.TempPathFactory, name: str) -> Iterator[Path]:
    """The session's folder `name`, held exclusively by this worker inside the block."""
    root = _session_root(tmp_path_factory) / "session-cache"
    root.mkdir(exist_ok=True)
    folder = root / name
    with (root / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            folder.mkdir(exist_ok=True)
            yield folder
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
