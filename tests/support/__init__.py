"""Real services for the tests: a mosquitto broker, an RTSP camera, H.264 files, an MQTT watcher."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
# Short enough that a test does not idle long after its condition holds, long enough that
# a predicate which queries a database or a server does not load a busy CI machine.
POLL_S = 0.05

T = TypeVar("T")


# A failed wait shows this much of its context: the end of a log, where the cause is.
CONTEXT_CHARS = 4000


def eventually(
    predicate: Callable[[], T],
    what: str,
    timeout: float,
    interval: float = POLL_S,
    *,
    context: Callable[[], str] | None = None,
) -> T:
    """`predicate()`'s first truthy value within `timeout` s, else a failure naming `what`.

    The failure shows the last value seen, and the end of `context()` when given (e.g. the
    log of the process waited on: what it did instead). The predicate is asked once more at
    the deadline, so a wait is never shorter than `timeout`.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            said = f"not within {timeout} s: {what} (last seen: {value!r})"
            if context is not None:
                said += f"\n--- the last of what it said ---\n{context()[-CONTEXT_CHARS:]}"
            pytest.fail(said, pytrace=False)
        time.sleep(interval)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def port_accepts(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a TCP connect to host:port succeeds now."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_listening(
    proc: subprocess.Popen[Any], port: int, what: str, timeout: float, log: Callable[[], str]
) -> None:
    """Wait until `what`, the process `proc`, accepts connections on `port`; fail at once
    if it exits first, and in either failure show the end of its `log()`."""

    def listening() -> bool:
        if proc.poll() is not None:
            pytest.fail(
                f"{what} exited with {proc.returncode} at start\n"
                f"--- the last of what it said ---\n{log()[-CONTEXT_CHARS:]}",
                pytrace=False,
            )
        return port_accepts(port)

    eventually(listening, f"{what} listening on port {port}", timeout, context=log)


def wait_port_closed(port: int, timeout: float = 5.0) -> bool:
    """Wait until host:port refuses connections; True if it did within timeout."""
    try:
        eventually(lambda: not port_accepts(port), f"port {port} closed", timeout)
    except pytest.fail.Exception:
        return False
    return True
