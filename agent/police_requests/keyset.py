"""The police key set this agent holds: newer sets from the registry accepted, older refused.

A key set (contract/keyset.py) arrives, retained, on every connect; the registry relays it
and could replay an old one or send a forged one. So a set replaces the one held only when
its signature verifies with a root key the owner pinned (`police.root_keys`), it has not
expired, and its `version` is higher than the held one's. The same set again (the retained
copy after a reconnect) changes nothing and is not logged; the same version with other
content is refused: the police never sign two sets with one version, so one of them is
not theirs to trust.

The accepted set is kept in `<data_dir>/police-keyset.jws`, written atomically, so it
holds after a restart and a replay of an older set is still refused. A file that no
longer verifies (garbled, or signed by a root key the owner has since unpinned) is moved
aside with a log line, like the other state files (docs/service.md), and the agent goes on
without a set until the registry's next copy.

The MQTT thread only queues what arrives (`arrived`); the request desk's thread applies
it (`apply_arrived`) before it looks at the next token, so a set published before a
token counts for that token.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import deque
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from agent.audit import KEYSET_ACCEPTED, AuditError, AuditTrail
from agent.state_files import MovedAside, move_aside
from contract.common.files import fsync_dir, write_all
from contract.keyset import MAX_KEYSET_BYTES, KeySet, KeySetRefused, verify_keyset
from contract.timestamps import rfc3339

log = logging.getLogger(__name__)

KEYSET_FILE = "police-keyset.jws"
FILE_MODE = 0o600
# Sets waiting for the desk thread. Only the newest matters; a burst beyond this drops
# the oldest waiting, which a newer one in the queue would have replaced anyway.
MAX_WAITING = 4


class PoliceKeySets:
    """The key set held, and the ones that arrived and wait to be judged."""

    def __init__(
        self,
        data_dir: Path,
        roots: Mapping[str, Ed25519PublicKey],
        *,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.path = data_dir / KEYSET_FILE
        self._roots = dict(roots)
        self._now = now
        self._lock = threading.Lock()
        self._waiting: deque[bytes] = deque(maxlen=MAX_WAITING)
        self._held: KeySet | None = None
        self.reset: MovedAside | None = None  # the file moved aside at start, if it was
        self.on_arrival: Callable[[], None] = lambda: None  # wakes the desk
        self.audit: AuditTrail | None = None  # where an accepted set is written down
        self._load()

    def _load(self) -> None:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return
        except OSError as exc:
            log.error("cannot read the police key set %s: %s; going on without one", self.path, exc)
            return
        try:
            # Not checked for expiry: a stale set still holds its version and revocations.
            self._held = verify_keyset(data, self._roots, now=None)
        except KeySetRefused as exc:
            self.reset = move_aside(self.path, str(exc))
            log.error(
                "the police key set %s no longer verifies (%s); kept it as %s and went on "
                "without one until the registry sends the current set",
                self.path,
                exc,
                self.reset.kept_as,
            )
            return
        log.info("police key set version %d in force (%s)", self._held.version, self._describe())

    @property
    def roots_pinned(self) -> bool:
        return bool(self._roots)

    def current(self) -> KeySet | None:
        with self._lock:
            return self._held

    def arrived(self, payload: bytes) -> None:
        """A message on the key set topic (MQTT thread): queue it, nothing else."""
        if len(payload) > MAX_KEYSET_BYTES:
            # Not kept in memory at all; the desk thread would refuse it as too_large.
            log.warning(
                "police key set refused: too_large: %d bytes, more than %d",
                len(payload),
                MAX_KEYSET_BYTES,
            )
            return
        with self._lock:
            self._waiting.append(payload)
        self.on_arrival()

    def apply_arrived(self) -> None:
        """Judge each set that arrived, in order (the desk's thread)."""
        while True:
            with self._lock:
                if not self._waiting:
                    return
                payload = self._waiting.popleft()
            try:
                self.offer(payload)
            except KeySetRefused as exc:
                log.warning("police key set refused: %s", exc)

    def offer(self, payload: bytes) -> bool:
        """Take `payload` as the held set if it is a newer valid one: True; False when it is
        the held set again; KeySetRefused (with its reason) otherwise."""
        keyset = verify_keyset(payload, self._roots, now=self._now())
        held = self.current()
        if held is not None:
            if keyset.token == held.token:
                return False
            if keyset.version == held.version:
                raise KeySetRefused(
                    "version_reused",
                    f"version {keyset.version} is held already with other content",
                )
            if keyset.version < held.version:
                raise KeySetRefused(
                    "not_newer", f"version {keyset.version} is older than {held.version}, held"
                )
        self._write(keyset.token)
        with self._lock:
            self._held = keyset
        log.info("police key set version %d accepted (%s)", keyset.version, self._describe())
        self._audit(keyset)
        return True

    def _audit(self, keyset: KeySet) -> None:
        """Write down which keys the agent trusts from now on, and who said so. A failure is
        logged: the set verified and is in force; refusing it would keep a revoked key alive."""
        if self.audit is None:
            return
        try:
            self.audit.append(
                KEYSET_ACCEPTED,
                None,
                {
                    "version": keyset.version,
                    "issuer": keyset.issuer,
                    "root_kid": keyset.root_kid,
                    "keys": sorted(keyset.keys),
                    "revoked": sorted(keyset.revoked),
                    "expires": rfc3339(keyset.expires),
                },
            )
        except AuditError as exc:
            log.error("police key set version %d: not written down: %s", keyset.version, exc)

    def facts(self) -> dict[str, object] | None:
        """What the birth says of the held set (docs/schemas/state.schema.json)."""
        held = self.current()
        if held is None:
            return None
        return {
            "version": held.version,
            "expires": rfc3339(held.expires),
            "stale": held.stale(self._now()),
        }

    def _describe(self) -> str:
        held = self._held
        assert held is not None
        return (
            f"{len(held.keys)} key(s), {len(held.revoked)} revoked, expires "
            f"{rfc3339(held.expires)}, root key {held.root_kid}"
        )

    def _write(self, token: str) -> None:
        """Atomically (new file, fsync, rename, fsync the folder). A failure is logged, and
        the set is still used in memory: it verified, it only does not outlive a restart."""
        temporary = self.path.with_name(f".{self.path.name}.new")
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
            try:
                write_all(fd, (token + "\n").encode("ascii"))
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(temporary, self.path)
            fsync_dir(self.path.parent)
        except OSError as exc:
            temporary.unlink(missing_ok=True)
            log.error(
                "cannot keep the police key set in %s (%s); it is in force until the agent stops",
                self.path,
                exc.strerror or exc,
            )
