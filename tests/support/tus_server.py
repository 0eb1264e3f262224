"""The official Node.js tus server (@tus/server with @tus/file-store) on a free port.

The npm packages are pinned by `tus_server_js/package-lock.json` and installed with
`npm ci` into a cache outside the repo, keyed by the lock file's hash, only when that
cache is missing. `tus_server_js/server.mjs` adds bearer-token auth, the checksum
extension (optional) and a stats endpoint for counting what a client re-sent.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support import free_port, wait_listening, wait_port_closed

PACKAGE_DIR = Path(__file__).resolve().parent / "tus_server_js"
SERVER_SCRIPT = PACKAGE_DIR / "server.mjs"
CACHE_ROOT = (
    Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    / "camera-agent-tests"
    / "tus-server"
)
# A cold `npm ci` of 17 small packages takes a few seconds; a slow mirror longer.
INSTALL_TIMEOUT_S = 300.0
START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 5.0
TUS_PATH = "/files"
# Node 20.19 is the first that @tus/server 2.x supports (require(esm), srvx).
MIN_NODE = (20, 19)


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.fail(
            f"{name} is not installed (apt-get install nodejs npm); the upload tests need "
            "the official Node.js tus server",
            pytrace=False,
        )
    return found


def _check_node(node: str) -> None:
    version = subprocess.run(
        [node, "--version"], capture_output=True, text=True, check=True
    ).stdout.strip()
    major, minor = (int(part) for part in version.lstrip("v").split(".")[:2])
    if (major, minor) < MIN_NODE:
        pytest.fail(
            f"node {version} is too old for @tus/server 2.x (needs >= {MIN_NODE[0]}.{MIN_NODE[1]})",
            pytrace=False,
        )


def node_modules() -> Path:
    """The installed packages of the lock file, installing them on first use."""
    lock = (PACKAGE_DIR / "package-lock.json").read_bytes()
    key = hashlib.sha256(lock + (PACKAGE_DIR / "package.json").read_bytes()).hexdigest()[:16]
    target = CACHE_ROOT / key
    marker = target / ".installed"
    if marker.is_file():
        return target / "node_modules"
    npm = _tool("npm")
    CACHE_ROOT.mkdir(parents=True, exist_ok=True)
    with open(CACHE_ROOT / ".lock", "w") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)  # another test process may be installing
        if marker.is_file():
            return target / "node_modules"
        staging = Path(tempfile.mkdtemp(prefix=f"{key}.", dir=CACHE_ROOT))
        shutil.copy(PACKAGE_DIR / "package.json", staging)
        shutil.copy(PACKAGE_DIR / "package-lock.json", staging)
        result = subprocess.run(
            [npm, "ci", "--omit=optional", "--ignore-scripts", "--no-audit", "--no-fund"],
            cwd=staging,
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT_S,
        )
        if result.returncode != 0:
            shutil.rmtree(staging, ignore_errors=True)
            pytest.fail(
                f"npm ci of the tus server failed ({result.returncode}):\n"
                f"{result.stdout}\n{result.stderr}",
                pytrace=False,
            )
        (staging / ".installed").write_text("ok\n")
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
    return target / "node_modules"


@dataclass(frozen=True)
class UploadStats:
    """What the server saw of one upload."""

    received: int  # PATCH body bytes that reached the store, re-sent ones included
    stored: int
    patches: int
    checksummed: int
    checksum_failures: int
    first_byte_ms: int | None
    last_byte_ms: int | None
    timeline: list[tuple[int, int]]  # (ms, received so far)


# How many ports start() tries when the one it picked was taken meanwhile.
START_TRIES = 3


class TusServer:
    """@tus/server on http://127.0.0.1:<port>/files/, storing into a temp directory."""

    def __init__(self, *, token: str = "test-token", checksum: bool = False) -> None:
        node = _tool("node")
        _check_node(node)
        self._node = node
        self._modules = node_modules()
        self._tmp = tempfile.TemporaryDirectory(prefix="tus-server-")
        self.directory = Path(self._tmp.name)
        self.store = self.directory / "store"
        self.token = token
        self.checksum = checksum
        self.port = free_port()
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def endpoint(self) -> str:
        """The creation URL (tus endpoint)."""
        return f"{self.origin}{TUS_PATH}/"

    def start(self) -> None:
        """Start node and return once the port accepts connections. A port picked free can
        be taken (by another test's outgoing connection) before node listens on it: then
        another port is tried, up to START_TRIES times."""
        for attempt in range(1, START_TRIES + 1):
            try:
                self._start_once()
                return
            except pytest.fail.Exception:
                if attempt == START_TRIES or "EADDRINUSE" not in self._log():
                    raise
                self.port = free_port()

    def _start_once(self) -> None:
        env = {
            **os.environ,
            "TUS_MODULES": str(self._modules),
            "TUS_PORT": str(self.port),
            "TUS_DIR": str(self.store),
            "TUS_TOKEN": self.token,
            "TUS_CHECKSUM": "1" if self.checksum else "0",
        }
        with (self.directory / "server.log").open("wb") as log:
            self._proc = subprocess.Popen(
                [self._node, str(SERVER_SCRIPT)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env=env,
            )
        try:
            wait_listening(self._proc, self.port, "the tus server", START_TIMEOUT_S, self._log)
        except pytest.fail.Exception:
            self.stop()
            raise

    def _log(self) -> str:
        return (self.directory / "server.log").read_text(errors="replace")

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        wait_port_closed(self.port)

    def close(self) -> None:
        self.stop()
        self._tmp.cleanup()

    def __enter__(self) -> TusServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- what the server holds and saw ---------------------------------------------------

    def upload_id(self, url: str) -> str:
        return url.rstrip("/").rsplit("/", 1)[1]

    def stored_bytes(self, url: str) -> bytes:
        """The file as the server stored it."""
        return (self.store / self.upload_id(url)).read_bytes()

    def stored_info(self, url: str) -> dict[str, Any]:
        """The FileStore's record of the upload: size, offset and decoded metadata."""
        info: dict[str, Any] = json.loads((self.store / f"{self.upload_id(url)}.json").read_text())
        return info

    def stats(self) -> dict[str, Any]:
        response = requests.get(f"{self.origin}/_test/stats", timeout=5)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def upload_stats(self, url: str) -> UploadStats:
        raw = self.stats()["uploads"].get(self.upload_id(url))
        if raw is None:
            return UploadStats(0, 0, 0, 0, 0, None, None, [])
        raw["timeline"] = [tuple(point) for point in raw["timeline"]]
        return UploadStats(**raw)

    def fault(self, method: str, status: int, count: int = 1) -> None:
        """Answer the next `count` requests of `method` with `status` (460: a bad checksum)."""
        response = requests.post(
            f"{self.origin}/_test/fault",
            params={"method": method, "status": str(status), "count": str(count)},
            timeout=5,
        )
        response.raise_for_status()


@contextmanager
def tus_server(**kwargs: Any) -> Iterator[TusServer]:
    with TusServer(**kwargs) as server:
        yield server
