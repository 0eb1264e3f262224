"""The daemon's control socket: owner commands (`reference reset`, `requests approve`,
`problems accept`) reach the running agent here, one JSON line in, one JSON line out.

The socket lives in the runtime directory systemd gives the service (or the data
directory when run by hand); its file mode keeps it to the service's user and root.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from agent.errors import AgentError
from contract.exit_codes import EX_UNAVAILABLE

log = logging.getLogger(__name__)

SOCKET_NAME = "control.sock"
# Where a systemd-run daemon's socket is when the CLI is not inside the service.
SERVICE_RUNTIME_DIR = Path("/run/camera-agent")
# A request is one short JSON line; anything longer is refused unread.
MAX_REQUEST_BYTES = 4096
CLIENT_TIMEOUT_S = 5.0

Handler = Callable[[dict[str, Any]], dict[str, Any]]
# EX_UNAVAILABLE (contract/exit_codes.py) is the answer when the daemon refused or could
# not be asked.


class ControlError(AgentError):
    """The daemon could not be asked (not running, or it refused)."""


class NoDaemon(ControlError):
    """No daemon listens: the CLI acts on the state directory itself."""


def socket_path(data_dir: Path) -> Path:
    """Where this process's daemon listens: systemd's runtime directory for the
    service, else the data directory."""
    runtime = os.environ.get("RUNTIME_DIRECTORY")
    return Path(runtime.split(":")[0]) / SOCKET_NAME if runtime else data_dir / SOCKET_NAME


def socket_candidates(data_dir: Path) -> list[Path]:
    """Where a CLI outside the service looks for the daemon, first match wins."""
    return list(
        dict.fromkeys(
            [socket_path(data_dir), SERVICE_RUNTIME_DIR / SOCKET_NAME, data_dir / SOCKET_NAME]
        )
    )


class ControlServer:
    """Serves requests on a unix socket from its own thread; `handle` does the work."""

    def __init__(self, path: Path, handle: Handler) -> None:
        self.path = path
        self._handle = handle
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)

    def start(self, stop: threading.Event) -> None:
        """Listen until `stop` is set; close() then removes the socket."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            self.path.unlink()  # left by a daemon that did not stop cleanly
        old_umask = os.umask(0o177)
        try:
            self._sock.bind(str(self.path))
        finally:
            os.umask(old_umask)
        self._sock.listen(4)
        threading.Thread(target=self._serve, args=(stop,), name="control", daemon=True).start()

    def close(self) -> None:
        self._sock.close()
        self.path.unlink(missing_ok=True)

    def _serve(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(CLIENT_TIMEOUT_S)
                try:
                    reply = self._answer(self._read(conn))
                except (OSError, ValueError) as exc:
                    reply = {"ok": False, "error": f"bad request: {exc}"}
                except Exception:
                    log.exception("control request failed")
                    reply = {"ok": False, "error": "internal error; see the agent's log"}
                with contextlib.suppress(OSError):
                    conn.sendall(json.dumps(reply).encode() + b"\n")

    def _read(self, conn: socket.socket) -> Any:
        data = b""
        while b"\n" not in data:
            chunk = conn.recv(1024)
            if not chunk:
                break
            data += chunk
            if len(data) > MAX_REQUEST_BYTES:
                raise ValueError("request too long")
        return json.loads(data.decode())

    def _answer(self, request: Any) -> dict[str, Any]:
        if not isinstance(request, dict) or not isinstance(request.get("command"), str):
            raise ValueError("expected a JSON object with a 'command'")
        return self._handle(request)


def _daemon_sockets(data_dir: Path) -> Iterator[tuple[Path, socket.socket | None]]:
    """Each socket a daemon for this data directory listens on, connected; None in place
    of a socket this user may not open (PermissionError). Closed when the caller moves on."""
    for path in socket_candidates(data_dir):
        if not path.exists():
            continue
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(CLIENT_TIMEOUT_S)
            try:
                sock.connect(str(path))
            except (ConnectionRefusedError, FileNotFoundError):
                continue
            except PermissionError:
                yield path, None
                continue
            yield path, sock


def ask(data_dir: Path, request: dict[str, Any]) -> dict[str, Any]:
    """Send one request to the running daemon; NoDaemon when none listens."""
    for path, sock in _daemon_sockets(data_dir):
        if sock is None:
            raise ControlError(f"{path}: permission denied; run this as root")
        sock.sendall(json.dumps(request).encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
        try:
            reply: dict[str, Any] = json.loads(data.decode())
        except ValueError:
            raise ControlError(f"{path}: the agent gave no answer") from None
        return reply
    raise NoDaemon("no running agent found")


def tell_daemon(data_dir: Path, request: dict[str, Any], offline: Callable[[], int]) -> int:
    """An owner command for the running daemon, as a CLI exit code: its reply printed
    (0), or its refusal or a socket error on stderr (69); `offline()` when no daemon runs."""
    try:
        reply = ask(data_dir, request)
    except NoDaemon:
        return offline()
    except ControlError as exc:
        print(f"camera-agent: {exc}", file=sys.stderr)
        return EX_UNAVAILABLE
    if not reply.get("ok"):
        print(f"camera-agent: {reply.get('error', 'refused')}", file=sys.stderr)
        return EX_UNAVAILABLE
    print(reply.get("message", "done"))
    return 0


def daemon_running(data_dir: Path) -> bool:
    """Whether a daemon listens for this data directory (a socket it cannot open counts:
    better to refuse an offline-only command than to work under a running agent)."""
    return any(True for _ in _daemon_sockets(data_dir))
