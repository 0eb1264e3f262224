"""Readiness, status and watchdog pings to systemd for a `Type=notify` service."""

# Written by hand rather than using the `systemd` Python binding: the protocol is one
# datagram of `KEY=VALUE` lines sent to the unix socket named in $NOTIFY_SOCKET, and the
# binding needs the libsystemd headers and a compiler to build, which a Pi's venv should
# not need. See sd_notify(3) and systemd.service(5) `WatchdogSec=`.

import logging
import os
import socket
from collections.abc import Mapping

log = logging.getLogger(__name__)

# A datagram to PID 1 normally leaves at once; the bound only keeps a wedged or
# overloaded PID 1 from blocking the supervisor thread that pings the watchdog.
SEND_TIMEOUT_S = 1.0

# systemd may kill a service the moment WatchdogSec passes without a ping, so ping at
# half the period, as sd_watchdog_enabled(3) recommends.
WATCHDOG_PING_FRACTION = 0.5


class Notifier:
    """Tells systemd about the service's state; every method is a no-op outside systemd."""

    def __init__(self, address: bytes | None) -> None:
        """`address` is a unix socket address (a leading NUL byte means abstract), or None."""
        self._address = address
        self._failing = False

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Notifier":
        """Build from $NOTIFY_SOCKET (a path, or `@name` for the abstract namespace)."""
        env = os.environ if environ is None else environ
        return cls(_socket_address(env.get("NOTIFY_SOCKET", "")))

    @property
    def enabled(self) -> bool:
        """Whether a notify socket was given, i.e. systemd is listening."""
        return self._address is not None

    def ready(self) -> bool:
        """Startup is complete; `systemctl start` returns only after this."""
        return self._send("READY=1")

    def watchdog(self) -> bool:
        """The service is alive; must come more often than WatchdogSec."""
        return self._send("WATCHDOG=1")

    def stopping(self) -> bool:
        """Shutdown has begun, so systemd shows `deactivating` rather than a failure."""
        return self._send("STOPPING=1")

    def status(self, text: str) -> bool:
        """One line for `systemctl status`."""
        # A newline would start a new KEY=VALUE assignment: text such as a camera name
        # must never be able to smuggle in READY=1 or WATCHDOG=trigger.
        return self._send("STATUS=" + " ".join(text.splitlines()))

    def _send(self, message: str) -> bool:
        """Send one datagram; True if systemd got it. Never raises: losing a ping is
        better than losing the agent, and a missing ping is what the watchdog catches."""
        if self._address is None:
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.settimeout(SEND_TIMEOUT_S)
                sock.sendto(message.encode(), self._address)
        except OSError as exc:
            # Warn once per run of failures, not every watchdog period.
            if not self._failing:
                log.warning("cannot notify systemd at %r: %s", self._address, exc)
            self._failing = True
            return False
        if self._failing:
            log.info("notifying systemd works again")
            self._failing = False
        return True


def watchdog_interval(environ: Mapping[str, str] | None = None) -> float | None:
    """Seconds between watchdog pings (half of WatchdogSec), or None if no watchdog is
    set for this process."""
    env = os.environ if environ is None else environ
    usec = env.get("WATCHDOG_USEC", "")
    pid = env.get("WATCHDOG_PID", "")
    # WATCHDOG_PID names the process the watchdog is meant for; a child that inherited
    # the environment must not ping on its parent's behalf.
    if pid and pid.strip() != str(os.getpid()):
        return None
    try:
        period = int(usec)
    except ValueError:
        if usec:
            log.warning("ignoring WATCHDOG_USEC=%r: not an integer", usec)
        return None
    if period <= 0:
        return None
    return period / 1_000_000 * WATCHDOG_PING_FRACTION


def _socket_address(value: str) -> bytes | None:
    """$NOTIFY_SOCKET as a unix socket address, or None if unset or unusable."""
    if not value:
        return None
    if value.startswith("@"):
        # Abstract namespace: the name follows a NUL byte, not stored in the file system.
        return b"\0" + os.fsencode(value[1:])
    if value.startswith("/"):
        return os.fsencode(value)
    # sd_notify(3) accepts only these two forms here (vsock: came with systemd 254).
    log.warning("ignoring NOTIFY_SOCKET=%r: not an absolute path or @name", value)
    return None
