"""An enrolled agent's broker login. The agent id is the username (the broker ACL's `%u`).

`CredentialIssuer` is the seam: `MosquittoPasswords` writes a mosquitto password file; a
deployment with client certificates uses `NoPassword` (or its own issuer) and signs the
agent's certificate out of band, as docs/mosquitto/README.md describes.

A first enrolment only ever adds a user: a username already in the password file belongs
to someone enrolment did not make (the registry's workers, a user added by hand), and
replacing its password would hand that account to the code's holder and lock its owner
out. Only a re-enrolment (a code made to replace an enrolled agent's key) replaces one.
"""

from __future__ import annotations

import fcntl
import logging
import os
import secrets
import shutil
import signal
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from registry.enrolment.settings import EnrolmentSettings
from registry.errors import RegistryError

__all__ = [
    "BrokerLogin",
    "CredentialError",
    "CredentialIssuer",
    "MosquittoPasswords",
    "NoPassword",
    "UsernameTaken",
    "broker_users",
    "issuer_from_settings",
]

log = logging.getLogger("registry.enrolment")

PASSWORD_BYTES = 32  # 256 random bits, base64url: never typed, only copied into a file
TOOL_TIMEOUT_S = 30.0


class CredentialError(RegistryError):
    """The broker login could not be issued (tool missing, file not writable, no reload)."""


class UsernameTaken(RegistryError):
    """A first enrolment's username is a broker user already; nothing was changed."""


@dataclass(frozen=True)
class BrokerLogin:
    """What the agent presents to the broker. password None: it proves itself otherwise."""

    username: str
    password: str | None = field(repr=False)


class CredentialIssuer(Protocol):
    def issue(self, agent_id: str, *, replace: bool) -> BrokerLogin:
        """A fresh login for `agent_id`. Without `replace`, UsernameTaken if the broker
        has that user already; with it, the earlier login is replaced. CredentialError if
        the login cannot be made."""
        ...


class NoPassword:
    """Client-certificate deployments: the username (the certificate's CN) and no password."""

    def issue(self, agent_id: str, *, replace: bool) -> BrokerLogin:
        return BrokerLogin(agent_id, None)


class MosquittoPasswords:
    """Adds or replaces the agent in a mosquitto password file, then has the broker reload.

    The password goes to `mosquitto_passwd` on its standard input (its interactive mode,
    which reads stdin when it is not a terminal) rather than with `-b` on the command
    line, where any local user could read it in /proc while the tool runs."""

    def __init__(
        self,
        password_file: Path,
        *,
        pid_file: Path | None = None,
        reload_command: Sequence[str] | None = None,
        tool: str = "mosquitto_passwd",
    ) -> None:
        self.password_file = password_file
        self.pid_file = pid_file
        self.reload_command = list(reload_command) if reload_command else None
        self.tool = tool

    def issue(self, agent_id: str, *, replace: bool) -> BrokerLogin:
        password = secrets.token_urlsafe(PASSWORD_BYTES)
        self._write(agent_id, password, replace=replace)
        self._reload()
        return BrokerLogin(agent_id, password)

    def _write(self, username: str, password: str, *, replace: bool) -> None:
        tool = shutil.which(self.tool)
        if tool is None:
            raise CredentialError(f"{self.tool} is not installed (apt-get install mosquitto)")
        try:
            # Created 0600 if missing, so no moment exists where others could read it.
            fd = os.open(self.password_file, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise CredentialError(
                f"cannot open the broker password file {self.password_file}: {exc.strerror}"
            ) from exc
        # mosquitto_passwd rewrites the file in place without locking it; two enrolments at
        # once (threads or registry processes) would lose one of the two users.
        with os.fdopen(fd, "rb") as locked:
            fcntl.flock(locked.fileno(), fcntl.LOCK_EX)
            try:
                # Checked under the lock, so no one adds the user between check and write.
                if not replace and username in _users(locked.read()):
                    raise UsernameTaken(
                        f"the broker already has a user {username!r} that enrolment did not "
                        "make; it is not replaced"
                    )
                result = subprocess.run(
                    [tool, str(self.password_file), username],
                    input=f"{password}\n{password}\n",
                    capture_output=True,
                    text=True,
                    timeout=TOOL_TIMEOUT_S,
                    check=False,
                )
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise CredentialError(f"{self.tool} did not run: {exc}") from exc
            finally:
                fcntl.flock(locked.fileno(), fcntl.LOCK_UN)
        if result.returncode != 0:
            detail = (result.stderr or result.stdout).strip().splitlines()
            raise CredentialError(
                f"{self.tool} failed for {username!r} (exit {result.returncode}): "
                f"{detail[-1] if detail else 'no message'}"
            )

    def _reload(self) -> None:
        """Make the broker read the password file again; without it the login fails."""
        if self.pid_file is not None:
            self._signal_broker(self.pid_file)
        if self.reload_command is not None:
            try:
                result = subprocess.run(
                    self.reload_command,
                    capture_output=True,
                    text=True,
                    timeout=TOOL_TIMEOUT_S,
                    check=False,
                )
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise CredentialError(f"broker reload command did not run: {exc}") from exc
            if result.returncode != 0:
                raise CredentialError(
                    f"broker reload command {' '.join(self.reload_command)!r} failed "
                    f"(exit {result.returncode}): {result.stderr.strip()}"
                )
        if self.pid_file is None and self.reload_command is None:
            log.warning(
                "broker password file %s updated, but no broker_pid_file or reload_command "
                "is configured: the broker must be reloaded before the agent can log in",
                self.password_file,
            )

    @staticmethod
    def _signal_broker(pid_file: Path) -> None:
        try:
            pid = int(pid_file.read_text(encoding="ascii").strip())
        except (OSError, ValueError) as exc:
            raise CredentialError(f"no broker pid in {pid_file}: {exc}") from exc
        if pid <= 1:
            # kill(0) or kill(-1) would signal a whole process group or every process.
            raise CredentialError(f"{pid_file} holds no usable pid ({pid})")
        try:
            os.kill(pid, signal.SIGHUP)
        except OSError as exc:
            raise CredentialError(
                f"cannot tell the broker (pid {pid}) to reload: {exc.strerror}"
            ) from exc


def _users(content: bytes) -> set[str]:
    """The usernames in a mosquitto password file (`user:hash` lines)."""
    names = set()
    for line in content.decode("utf-8", errors="replace").splitlines():
        name, sep, _hash = line.partition(":")
        if sep and name.strip():
            names.add(name.strip())
    return names


def broker_users(settings: EnrolmentSettings) -> frozenset[str]:
    """The users in the broker's password file now (none without one): an operator asking
    for a first-enrolment code for one of them is told at once, not the owner later."""
    if settings.password_file is None:
        return frozenset()
    try:
        return frozenset(_users(settings.password_file.read_bytes()))
    except FileNotFoundError:
        return frozenset()
    except OSError as exc:
        raise CredentialError(
            f"cannot read the broker password file {settings.password_file}: {exc.strerror}"
        ) from exc


def issuer_from_settings(settings: EnrolmentSettings) -> CredentialIssuer:
    if settings.password_file is None:
        return NoPassword()
    return MosquittoPasswords(
        settings.password_file,
        pid_file=settings.broker_pid_file,
        reload_command=settings.reload_command,
    )
