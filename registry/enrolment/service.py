"""`POST /api/v1/enrol`: a one-time code, the agent's device key and cameras in; its broker
login out.

Every attempt is logged (logger `registry.enrolment`) with the client address and the
agent id, never the code or the password. Failed attempts are counted per client address
and past a limit answered with 429, so nobody can try codes in bulk (80-bit codes make
guessing hopeless anyway; the limit keeps the database and the log quiet).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from agent.crypto import jws
from registry.config import ServerConfig
from registry.enrolment.codes import CodeOutcome, consume_code
from registry.enrolment.credentials import (
    BrokerLogin,
    CredentialError,
    CredentialIssuer,
    issuer_from_settings,
)
from registry.enrolment.request import EnrolRequest, MalformedRequest, parse
from registry.enrolment.store import enrolled_key, record_enrolment

__all__ = ["ENROL_PATH", "MAX_BODY_BYTES", "FailureLimiter", "enrolment_routes"]

log = logging.getLogger("registry.enrolment")

ENROL_PATH = "/api/v1/enrol"
# 256 cameras with names and locations fit in about 80 kB.
MAX_BODY_BYTES = 128 * 1024

# One message for a code never issued and a code already used: which codes exist (and
# when one was used) is nobody's business who does not hold one.
REJECTED = "the enrolment code is not valid or has been used already; ask for a new one"
# What counts against a client address: its own mistakes, not the registry's (503).
_FAILED_ATTEMPT = frozenset({400, 403, 413})
EXPIRED = "the enrolment code has expired; ask the registry operator for a new one"


class FailureLimiter:
    """Counts failed attempts per client address in a sliding window (in memory, so per
    registry process; a restart forgets, which only helps someone who can restart it)."""

    def __init__(
        self, max_failures: int, window_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def retry_after(self, address: str) -> float:
        """Seconds until `address` may try again; 0 if it may now."""
        with self._lock:
            times = self._recent(address)
            if len(times) < self.max_failures:
                return 0.0
            return max(times[0] + self.window_s - self._clock(), 0.0)

    def failed(self, address: str) -> None:
        with self._lock:
            self._recent(address).append(self._clock())
            self._forget_idle()

    def _recent(self, address: str) -> deque[float]:
        times = self._failures.setdefault(address, deque())
        cutoff = self._clock() - self.window_s
        while times and times[0] <= cutoff:
            times.popleft()
        return times

    def _forget_idle(self) -> None:
        # Bounded memory: addresses with no failure inside the window are dropped.
        cutoff = self._clock() - self.window_s
        for address in [a for a, t in self._failures.items() if not t or t[-1] <= cutoff]:
            del self._failures[address]


@dataclass(frozen=True)
class _Outcome:
    status: int
    body: dict[str, object]


class _Enrolment:
    def __init__(
        self,
        engine: Engine,
        config: ServerConfig,
        issuer: CredentialIssuer,
        limiter: FailureLimiter,
        clock: Callable[[], float],
    ) -> None:
        self.engine = engine
        self.broker = config.enrolment.broker_url or config.mqtt.broker
        self.topic_prefix = config.mqtt.topic_prefix
        # The registry's own broker user must never become an agent's (docs/mosquitto).
        self.reserved = {"registry", config.mqtt.username or "registry"}
        self.issuer = issuer
        self.limiter = limiter
        self.clock = clock

    async def endpoint(self, request: Request) -> JSONResponse:
        address = request.client.host if request.client else "unknown"
        wait = self.limiter.retry_after(address)
        if wait > 0:
            log.warning("enrolment from %s refused: too many failed attempts", address)
            return JSONResponse(
                {
                    "error": "too_many_attempts",
                    "message": f"too many failed attempts; try again in {wait:.0f} s",
                },
                status_code=429,
                headers={"Retry-After": str(int(wait) + 1)},
            )
        outcome = await self._handle(request, address)
        if outcome.status in _FAILED_ATTEMPT:
            self.limiter.failed(address)
        return JSONResponse(outcome.body, status_code=outcome.status)

    async def _handle(self, request: Request, address: str) -> _Outcome:
        body = await _read_body(request)
        if body is None:
            log.warning("enrolment from %s refused: body over %d bytes", address, MAX_BODY_BYTES)
            return _Outcome(
                413,
                {"error": "too_large", "message": f"the body must be under {MAX_BODY_BYTES} bytes"},
            )
        try:
            parsed, key = parse(body)
            if parsed.agent_id in self.reserved:
                raise MalformedRequest("agent_id", f"{parsed.agent_id!r} is reserved")
        except MalformedRequest as exc:
            log.warning("enrolment from %s refused: malformed %s", address, exc)
            return _Outcome(400, {"error": "malformed", "field": exc.field, "message": str(exc)})
        try:
            return await run_in_threadpool(self._enrol, parsed, key, address)
        except (SQLAlchemyError, CredentialError):
            # The transaction rolled back, so the code is still usable once this is fixed.
            log.exception("enrolment of %s from %s failed", parsed.agent_id, address)
            return _Outcome(
                503,
                {
                    "error": "unavailable",
                    "message": "the registry could not complete the enrolment; "
                    "try again later (the code is still valid)",
                },
            )

    def _enrol(self, parsed: EnrolRequest, key: Ed25519PublicKey, address: str) -> _Outcome:
        now = self.clock()
        raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        thumbprint = jws.thumbprint(key)
        agent = parsed.agent_id
        login: BrokerLogin
        with self.engine.begin() as connection:
            outcome = consume_code(connection, parsed.code, agent, now)
            if outcome is not CodeOutcome.ACCEPTED:
                log.warning(
                    "enrolment of %s from %s refused: code %s", agent, address, outcome.value
                )
                message = EXPIRED if outcome is CodeOutcome.EXPIRED else REJECTED
                kind = "code_expired" if outcome is CodeOutcome.EXPIRED else "code_rejected"
                return _Outcome(403, {"error": kind, "message": message})
            previous = enrolled_key(connection, agent)
            record_enrolment(
                connection, agent, jws.b64url_encode(raw), thumbprint, now, parsed.cameras
            )
            # Last, inside the transaction: if the broker login cannot be made, nothing is
            # stored and the code is not spent.
            login = self.issuer.issue(agent)
        if previous is not None and previous != thumbprint:
            log.warning(
                "agent %s re-enrolled from %s: device key %s replaces %s",
                agent,
                address,
                thumbprint,
                previous,
            )
        log.info(
            "agent %s enrolled from %s: key %s, %d camera(s)",
            agent,
            address,
            thumbprint,
            len(parsed.cameras),
        )
        body: dict[str, object] = {
            "agent_id": agent,
            "broker": self.broker,
            "topic_prefix": self.topic_prefix,
            "username": login.username,
            "password": login.password,
            "key_thumbprint": thumbprint,
        }
        return _Outcome(200, body)


async def _read_body(request: Request) -> bytes | None:
    """The body, or None once it exceeds MAX_BODY_BYTES (reading stops there)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def enrolment_routes(
    engine: Engine,
    config: ServerConfig,
    issuer: CredentialIssuer | None = None,
    *,
    clock: Callable[[], float] = time.time,
) -> list[BaseRoute]:
    """The enrolment API. It needs no login: the one-time code is the authorisation."""
    settings = config.enrolment
    handler = _Enrolment(
        engine,
        config,
        issuer if issuer is not None else issuer_from_settings(settings),
        FailureLimiter(settings.max_failures, settings.failure_window),
        clock,
    )
    return [Route(ENROL_PATH, handler.endpoint, methods=["POST"])]
