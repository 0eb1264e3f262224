"""Who may use the owner page: one owner password (Argon2id hash in the data directory),
sessions with a CSRF secret held in memory, a lock-out per address after failed logins,
the networks the page answers at all, and the host names it answers to.

The page has no user names: the device has one owner. The hash file is read at every login,
so a new password (`camera-agent owner-password`) applies at once, and ends every session
made under the old one."""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import secrets
import socket
import tempfile
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from agent.errors import AgentError
from contract.common import passwords
from contract.common.login_limit import AttemptLimiter, HashSlots
from contract.common.passwords import hash_password, secret_digest

log = logging.getLogger(__name__)

PASSWORD_FILE = "owner-password"
MIN_PASSWORD = 10
MAX_PASSWORD = 1024  # Argon2 hashes anything; a megabyte "password" is only a way to stall us
# Failed logins from one address before it must wait, and for how long: slows guessing
# to a crawl without letting one neighbour lock the owner out from every other address.
LOCKOUT_AFTER = 5
LOCKOUT_FOR_S = 300.0
# Logins of other addresses that may wait for the one Argon2 check (about 4 s of checks on
# a Pi); more are answered 503 at once. A home has a few devices, not dozens.
MAX_WAITING_LOGINS = 8
SESSION_LIFETIME_S = 12 * 3600.0

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class OwnerPasswordError(AgentError):
    """The password is unusable, or its file cannot be written."""


def password_path(data_dir: Path) -> Path:
    return data_dir / PASSWORD_FILE


def check_new_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise OwnerPasswordError(f"the password needs at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise OwnerPasswordError(f"the password may have at most {MAX_PASSWORD} characters")


def set_owner_password(data_dir: Path, password: str) -> Path:
    """Store the Argon2id hash of the owner page's password (mode 0600) and return its path.

    Written atomically; when run as root (the installer, `sudo camera-agent owner-password`)
    the file gets the data directory's owner, so the daemon's dynamic user can read it."""
    check_new_password(password)
    path = password_path(data_dir)
    hashed = hash_password(password)
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(prefix=".owner-password.", dir=data_dir)
        try:
            os.fchmod(fd, 0o600)
            if os.geteuid() == 0:
                owner = data_dir.stat()
                os.fchown(fd, owner.st_uid, owner.st_gid)
            os.write(fd, (hashed + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, path)
    except OSError as exc:
        raise OwnerPasswordError(f"cannot write {path}: {exc.strerror or exc}") from exc
    return path


def stored_hash(data_dir: Path) -> str | None:
    """The stored hash, or None when no password was set (the page then lets nobody in)."""
    try:
        text = password_path(data_dir).read_text().strip()
    except FileNotFoundError:
        return None
    except OSError as exc:
        log.warning("owner page: cannot read %s: %s", password_path(data_dir), exc)
        return None
    return text or None


def password_matches(password_hash: str, password: str) -> bool:
    if len(password) > MAX_PASSWORD:
        return False
    return passwords.password_matches(password_hash, password, "owner page")


@dataclass(frozen=True)
class Session:
    csrf: str
    expires: float
    password_hash: str  # the hash it was made under: a new password ends the session


class Sessions:
    """Logged-in browsers, in memory (a restart asks for the password again). Only the
    SHA-256 of each cookie is kept."""

    def __init__(self, lifetime: float = SESSION_LIFETIME_S) -> None:
        self._lifetime = lifetime
        self._lock = threading.Lock()
        self._sessions: dict[str, Session] = {}

    def start(self, password_hash: str) -> tuple[str, Session]:
        secret = secrets.token_urlsafe(32)
        now = time.monotonic()
        session = Session(secrets.token_urlsafe(32), now + self._lifetime, password_hash)
        with self._lock:
            self._sessions = {k: s for k, s in self._sessions.items() if s.expires > now}
            self._sessions[secret_digest(secret)] = session
        return secret, session

    def get(self, secret: str | None, current_hash: str | None) -> Session | None:
        if not secret:
            return None
        with self._lock:
            session = self._sessions.get(secret_digest(secret))
        if session is None or session.expires <= time.monotonic():
            return None
        if current_hash is None or not hmac.compare_digest(session.password_hash, current_hash):
            return None
        return session

    def end(self, secret: str) -> None:
        with self._lock:
            self._sessions.pop(secret_digest(secret), None)

    @property
    def lifetime(self) -> float:
        return self._lifetime


def csrf_matches(session: Session, presented: str | None) -> bool:
    return presented is not None and hmac.compare_digest(session.csrf, presented)


class LoginGuard(AttemptLimiter):
    """Counts login attempts per address before their check (contract/common/login_limit.py):
    LOCKOUT_AFTER failures in a row lock that address out for LOCKOUT_FOR_S."""

    def __init__(self, after: int = LOCKOUT_AFTER, lock_for: float = LOCKOUT_FOR_S) -> None:
        super().__init__(after, lock_for)
        # One Argon2 check at a time (each takes 64 MiB, and a Pi has little to spare), in a
        # worker thread; a few more may wait, in the event loop, for their turn.
        self.slots = HashSlots(running=1, waiting=MAX_WAITING_LOGINS)


def parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    """ValueError naming the first entry that is not an address or a network."""
    return tuple(ipaddress.ip_network(value.strip(), strict=False) for value in values)


def address_allowed(address: str | None, networks: Iterable[Network]) -> bool:
    """Whether a peer address lies in one of `networks`; an IPv4 peer on a dual-stack
    socket (`::ffff:192.168.1.5`) counts as its IPv4 address."""
    if not address:
        return False
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone (fe80::1%eth0)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip.version == net.version and ip in net for net in networks)


def local_host_names(extra: Iterable[str] = ()) -> frozenset[str]:
    """The names a browser may use for this device: `localhost`, its own host name (with
    and without `.local`, as mDNS announces it) and `extra` (owner_page.allowed_hosts).
    Any name outside these is refused: a web page could point it at this device by DNS
    rebinding and read the page with the owner's own browser. IP literals are always
    fine (see host_allowed)."""
    names = {"localhost"}
    hostname = socket.gethostname().lower().rstrip(".")
    if hostname:
        short = hostname.split(".", 1)[0]
        names |= {hostname, short, short + ".local"}
    names |= {name.lower().rstrip(".") for name in extra}
    return frozenset(names)


def host_of(header: str) -> str:
    """The host of a Host header, without port or IPv6 brackets, lower case."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1 : header.find("]")] if "]" in header else header[1:]
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


def host_allowed(header: str | None, names: frozenset[str]) -> bool:
    """Whether a request's Host header names this device: an IP literal (DNS rebinding
    needs a name, so an address is what the browser really connected to) or one of
    `names`. No header at all (an HTTP/1.0 client) is not a browser: allowed."""
    if header is None:
        return True
    host = host_of(header)
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return host.rstrip(".") in names
    return True
