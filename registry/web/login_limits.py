"""What a login may cost the registry: Argon2 runs in worker threads, a bounded few at a
time, so login loops cannot stall the pages, the API or the evidence intake (every
request shares one event loop); and each client address has its own lock-out
(contract/common/login_limit.py) on top of the per-account one in auth.authenticate."""

from __future__ import annotations

import functools

from sqlalchemy import Engine

from contract.common.login_limit import AttemptLimiter, HashSlots
from registry.config import LoginSettings
from registry.web import auth
from registry.web.auth import User

# Argon2id takes 64 MiB and a core for about half a second per check: two at a time keep a
# small server's memory and CPU for everything else. More logins wait their turn (in the
# event loop, not in a thread of the shared pool); past MAX_WAITING_LOGINS (about half a
# minute of checks) they get 503 at once.
MAX_CONCURRENT_HASHES = 2
MAX_WAITING_LOGINS = 64


class LoginLimits:
    def __init__(self, settings: LoginSettings) -> None:
        self.settings = settings
        self.addresses = AttemptLimiter(settings.address_lockout_after, settings.lockout_for)
        self.hashing = HashSlots(MAX_CONCURRENT_HASHES, MAX_WAITING_LOGINS)

    async def authenticate(self, engine: Engine, name: str, password: str) -> User:
        """auth.authenticate in a worker thread, at most MAX_CONCURRENT_HASHES at once;
        SlotsFull when too many wait."""
        check = functools.partial(
            auth.authenticate,
            engine,
            name,
            password,
            lockout_after=self.settings.lockout_after,
            lockout_for=self.settings.lockout_for,
        )
        return await self.hashing.run(check)
