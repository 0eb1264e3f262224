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
from collections import OrderedDict, deque
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

from contract import jws
from contract.common.login_limit import DEFAULT_MAX_ADDRESSES
from registry.config import ServerConfig
from registry.enrolment.codes import CodeOutcome, consume_code
from registry.enrolment.credentials import (
    BrokerLogin,
    CredentialError,
    CredentialIssuer,
    UsernameTaken,
    issuer_from_settings,
)
from registry.enrolment.names import agent_id_problem, service_names
from registry.enrolment.request import EnrolRequest, MalformedRequest, parse
from registry.enrolment.store import record_cameras, record_first_key, replace_key

__all__ = ["ENROL_PATH", "MAX_BODY_BYTES", "FailureLimiter", "enrolment_routes"]

log = logging.getLogger("registry.enrolment")

ENROL_PATH = "/api/v1/enrol"
# 256 cameras with names and locations fit in about 80 kB.
MAX_BODY_BYTES = 128 * 1024

# One message for a code never issued and a code already used: which codes exist (and
# when one was used) is nobody's business who does not hold one.
REJECTED = "the enrolment code is not valid or has been used already; ask for a new one"
# What counts against a client address: its own mistakes, not the registry's (503).
_FAILED_ATTEMPT = frozenset({400, 403, 409, 413})
EXPIRED = "the enrolment code has expired; ask the registry operator for a new one"


class FailureLimiter:
    """Counts failed attempts per client address in a sliding window (in memory, so per
    registry process; a restart forgets, which only helps someone who can restart it).

    An attempt is counted when it starts (`attempt`) and uncounted if it succeeds, so
    parallel attempts cannot slip past the limit while the first are still being checked.
    At most `max_addresses` are held, the one seen longest ago forgotten first: a flood of
    addresses (an IPv6 prefix holds plenty) costs memory once, not without limit."""

    def __init__(
        self,
        max_failures: int,
        window_s: float,
        clock: Callable[[], float] = time.monotonic,
        *,
        max_addresses: int = DEFAULT_MAX_ADDRESSES,
    ) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self.max_addresses = max_addresses
        self._clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def retry_after(self, address: str) -> float:
        """Seconds until `address` may try again; 0 if it may now."""
        with self._lock:
            return self._wait(self._recent(address))

    def attempt(self, address: str) -> float:
        """Count an attempt before it is checked: 0 when it may go on (call `succeeded` if
        it does), else the seconds to wait, and nothing is counted."""
        with self._lock:
            times = self._recent(address)
            wait = self._wait(times)
            if wait == 0:
                self._count(address, times)
            return wait

    def succeeded(self, address: str) -> None:
        """The attempt counted by `attempt` was no failure."""
        with self._lock:
            times = self._failures.get(address)
            if times:
                times.pop()

    def failed(self, address: str) -> None:
        with self._lock:
            self._count(address, self._recent(address))

    def addresses(self) -> int:
        with self._lock:
            return len(self._failures)

    def _wait(self, times: deque[float]) -> float:
        if len(times) < self.max_failures:
            return 0.0
        # Never 0 while locked: the oldest failure is inside the window.
        return max(times[0] + self.window_s - self._clock(), 1e-3)

    def _count(self, address: str, times: deque[float]) -> None:
        times.append(self._clock())
        self._failures[address] = times
        self._failures.move_to_end(address)
        while len(self._failures) > self.max_addresses:
            self._failures.popitem(last=False)

    def _recent(self, address: str) -> deque[float]:
        times = self._failures.get(address)
        if times is None:
            return deque()
        cutoff = self._clock() - self.window_s
        while times and times[0] <= cutoff:
            times.popleft()
        if not times:
            del self._failures[address]
        return times


@dataclass(frozen=True)
class _Outcome:
    status: int
    body: dict[str, object]


class _Refused(Exception):
    """Leaves the enrolment's transaction, rolling it back: the code is not spent."""

    def __init__(self, outcome: _Outcome, why: str) -> None:
        super().__init__(why)
        self.outcome = outcome
        self.why = why


def _conflict(error: str, message: str) -> _Outcome:
    return _Outcome(409, {"error": error, "message": message})


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
        # The registry's own broker users must never become an agent's (names.py).
        self.service_names = service_names(config)
        self.issuer = issuer
        self.limiter = limiter
        self.clock = clock

    async def endpoint(self, request: Request) -> JSONResponse:
        address = request.client.host if request.client else "unknown"
        wait = self.limiter.attempt(address)
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
        if outcome.status not in _FAILED_ATTEMPT:
            self.limiter.succeeded(address)  # counted by attempt() as a failure until now
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
            problem = agent_id_problem(parsed.agent_id, self.service_names)
            if problem is not None:
                raise MalformedRequest("agent_id", problem)
        except MalformedRequest as exc:
            log.warning("enrolment from %s refused: malformed %s", address, exc)
            return _Outcome(400, {"error": "malformed", "field": exc.field, "message": str(exc)})
        try:
            return await run_in_threadpool(self._enrol, parsed, key, address)
        except _Refused as refused:
            log.warning(
                "enrolment of %s from %s refused: %s", parsed.agent_id, address, refused.why
            )
            return refused.outcome
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
            consumed = consume_code(connection, parsed.code, agent, now)
            outcome = consumed.outcome
            if outcome is not CodeOutcome.ACCEPTED:
                log.warning(
                    "enrolment of %s from %s refused: code %s", agent, address, outcome.value
                )
                return _Outcome(403, _code_refusal(outcome, consumed.agent))
            public = jws.b64url_encode(raw)
            previous = consumed.replaces_key
            if previous is None:
                if not record_first_key(connection, agent, public, thumbprint, now):
                    raise _Refused(
                        _conflict(
                            "already_enrolled",
                            f"{agent} is enrolled already and this code is for a first "
                            "enrolment; replacing its device key needs a code made for that "
                            f"(camera-registry enrol-code --agent {agent} --replace)",
                        ),
                        "already enrolled, code for a first enrolment",
                    )
            elif not replace_key(connection, agent, previous, public, thumbprint, now):
                raise _Refused(
                    _conflict(
                        "key_changed",
                        f"{agent}'s device key changed after this code was made to replace "
                        "it; ask the registry operator for a new code",
                    ),
                    f"its key is no longer {previous}",
                )
            record_cameras(connection, agent, parsed.cameras)
            # Last, inside the transaction: if the broker login cannot be made, nothing is
            # stored and the code is not spent.
            try:
                login = self.issuer.issue(agent, replace=previous is not None)
            except UsernameTaken as exc:
                raise _Refused(
                    _conflict(
                        "username_taken",
                        f"the broker already has a user {agent!r} that is not an enrolled "
                        "agent; ask the registry operator (the code is still valid)",
                    ),
                    str(exc),
                ) from None
        if previous is not None:
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


def _code_refusal(outcome: CodeOutcome, made_for: str | None) -> dict[str, object]:
    if outcome is CodeOutcome.EXPIRED:
        return {"error": "code_expired", "message": EXPIRED}
    if outcome is CodeOutcome.WRONG_AGENT:
        # The holder of a code may learn whom it is for: they could enrol that id anyway.
        return {
            "error": "code_wrong_agent",
            "message": f"this code was made for the agent id {made_for!r}, not this one; "
            "set agent.id to it or ask the registry operator for a code for this id "
            "(the code is still valid)",
        }
    return {"error": "code_rejected", "message": REJECTED}


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
