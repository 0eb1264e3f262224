"""One-time enrolment codes: typed by an owner, stored only as their SHA-256, used once,
each for the one agent id the operator made it for.

A code for a first enrolment is refused for an id that is enrolled already; replacing an
enrolled agent's device key (and broker password) takes a code made for that, which
records the key it replaces so the operator sees what it does.

A code is 16 symbols of Crockford's base32 (`7KQ2-M9XD-4HRT-0WBE`): 80 random bits, no
I, L, O or U, and the letters people confuse with digits are read as those digits, so a
code read over the phone still works. The registry keeps only the hash, so a copy of the
database enrols nobody.
"""

from __future__ import annotations

import enum
import hashlib
import secrets
import time
from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, insert, select, update

from registry.db.schema import enrol_codes
from registry.enrolment.names import agent_id_problem
from registry.enrolment.settings import DEFAULT_CODE_TTL_S
from registry.enrolment.store import enrolled_key

__all__ = [
    "ALPHABET",
    "CodeOutcome",
    "CodeRefused",
    "Consumed",
    "IssuedCode",
    "OpenCode",
    "code_sha256",
    "consume_code",
    "generate_code",
    "issue_code",
    "list_open_codes",
    "normalise_code",
]

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32: 5 bits a symbol
GROUPS = 4
GROUP_SIZE = 4  # 4 x 4 x 5 = 80 bits: out of reach of guessing, short enough to type
_LENGTH = GROUPS * GROUP_SIZE
# Crockford's decoding of the look-alikes.
_READ_AS = str.maketrans({"O": "0", "I": "1", "L": "1"})
MAX_CREATED_BY = 64  # the column's width


class CodeOutcome(enum.Enum):
    """What happened to a code presented for enrolment."""

    ACCEPTED = "accepted"
    UNKNOWN = "unknown"  # never issued (or mistyped)
    USED = "used"
    EXPIRED = "expired"
    WRONG_AGENT = "made for another agent id"


class CodeRefused(ValueError):
    """No code was made: the agent id cannot have one (reserved, or not in the state the
    code is for); the message says why and what to do."""


@dataclass(frozen=True)
class Consumed:
    """A presented code's fate. `agent`: the id it was made for (None if unknown);
    `replaces_key`: for a re-enrolment code, the thumbprint of the key it replaces."""

    outcome: CodeOutcome
    agent: str | None = None
    replaces_key: str | None = None


@dataclass(frozen=True)
class IssuedCode:
    """A new code: the text is shown once, to the operator who made it."""

    code: str
    agent: str
    created_by: str
    created_at: float  # epoch seconds
    expires_at: float
    replaces_key: str | None  # a re-enrolment: the device key it replaces


@dataclass(frozen=True)
class OpenCode:
    """A code that can still be used; its text is not known any more, only its hash."""

    code_sha256: str
    agent: str | None  # None: made before codes were bound; it enrols nobody
    replaces_key: str | None
    created_by: str
    created_at: float
    expires_at: float


def generate_code() -> str:
    symbols = "".join(secrets.choice(ALPHABET) for _ in range(_LENGTH))
    return "-".join(symbols[i : i + GROUP_SIZE] for i in range(0, _LENGTH, GROUP_SIZE))


def normalise_code(text: str) -> str | None:
    """The 16 symbols of a code as typed (any case, with or without dashes and spaces), or
    None when it cannot be a code."""
    symbols = "".join(text.split()).replace("-", "").upper().translate(_READ_AS)
    if len(symbols) != _LENGTH or any(c not in ALPHABET for c in symbols):
        return None
    return symbols


def code_sha256(code: str) -> str:
    """The stored form of a code; ValueError if it is not one."""
    symbols = normalise_code(code)
    if symbols is None:
        raise ValueError("not an enrolment code")
    return hashlib.sha256(symbols.encode("ascii")).hexdigest()


def issue_code(
    engine: Engine,
    created_by: str,
    agent: str,
    ttl_s: float = DEFAULT_CODE_TTL_S,
    *,
    service_names: Collection[str],
    broker_users: Collection[str] = (),
    replace: bool = False,
    now: float | None = None,
) -> IssuedCode:
    """Make and store a new code valid for `ttl_s` seconds that enrols `agent` only.

    Without `replace` the agent must not be enrolled, nor one of `broker_users` (the
    broker's password file: a user enrolment did not make); with it, it must be enrolled,
    and the code replaces the device key it has now. CodeRefused says why not;
    `service_names` are the registry's own broker users (names.service_names), which no
    code can be for."""
    if ttl_s <= 0:
        raise ValueError("the code's lifetime must be positive")
    if not created_by or len(created_by) > MAX_CREATED_BY:
        raise ValueError(f"created_by must be 1 to {MAX_CREATED_BY} characters")
    problem = agent_id_problem(agent, service_names)
    if problem is not None:
        raise CodeRefused(problem)
    created_at = time.time() if now is None else now
    code = generate_code()
    with engine.begin() as connection:
        current = enrolled_key(connection, agent)
        if current is not None and not replace:
            raise CodeRefused(
                f"{agent} is enrolled already (device key {current}); a code that replaces "
                f"its device key and broker password: enrol-code --agent {agent} --replace"
            )
        if current is None and replace:
            raise CodeRefused(f"{agent} is not enrolled, so it has no key to replace")
        if current is None and agent in broker_users:
            raise CodeRefused(
                f"the broker's password file has a user {agent!r} that enrolment did not "
                "make; enrolment never changes it (if it is this agent's login made by hand, "
                "remove it first: mosquitto_passwd -D)"
            )
        connection.execute(
            insert(enrol_codes).values(
                code_sha256=code_sha256(code),
                agent_id=agent,
                replaces_key=current,
                created_by=created_by,
                created_at=created_at,
                expires_at=created_at + ttl_s,
            )
        )
    return IssuedCode(code, agent, created_by, created_at, created_at + ttl_s, current)


def list_open_codes(engine: Engine, *, now: float | None = None) -> list[OpenCode]:
    """Codes neither used nor expired, oldest first."""
    moment = time.time() if now is None else now
    query = (
        select(
            enrol_codes.c.code_sha256,
            enrol_codes.c.agent_id,
            enrol_codes.c.replaces_key,
            enrol_codes.c.created_by,
            enrol_codes.c.created_at,
            enrol_codes.c.expires_at,
        )
        .where(enrol_codes.c.used_at.is_(None), enrol_codes.c.expires_at > moment)
        .order_by(enrol_codes.c.created_at)
    )
    with engine.connect() as connection:
        return [OpenCode(*row) for row in connection.execute(query)]


def consume_code(connection: Connection, code: str, agent: str, now: float) -> Consumed:
    """Mark the code used, inside the caller's transaction, if it was made for `agent`.

    One conditional UPDATE does the check and the marking, so of two concurrent uses only
    one matches a row: PostgreSQL re-checks the WHERE clause after the first commits, and
    SQLite lets one writer at a time. A code presented for another agent id is left
    unused. If the caller's transaction rolls back (storing the agent failed), the code
    stays usable."""
    symbols = normalise_code(code)
    if symbols is None:
        return Consumed(CodeOutcome.UNKNOWN)
    digest = hashlib.sha256(symbols.encode("ascii")).hexdigest()
    row = connection.execute(
        select(
            enrol_codes.c.agent_id,
            enrol_codes.c.replaces_key,
            enrol_codes.c.used_at,
            enrol_codes.c.expires_at,
        ).where(enrol_codes.c.code_sha256 == digest)
    ).first()
    if row is None or row.agent_id is None:
        return Consumed(CodeOutcome.UNKNOWN)
    result = connection.execute(
        update(enrol_codes)
        .where(
            enrol_codes.c.code_sha256 == digest,
            enrol_codes.c.agent_id == agent,
            enrol_codes.c.used_at.is_(None),
            enrol_codes.c.expires_at > now,
        )
        .values(used_at=now)
    )
    if result.rowcount == 1:
        return Consumed(CodeOutcome.ACCEPTED, agent, row.replaces_key)
    if row.used_at is not None or (row.agent_id == agent and row.expires_at > now):
        # Used, or used by a concurrent enrolment between the SELECT and the UPDATE.
        return Consumed(CodeOutcome.USED)
    if row.expires_at <= now:
        return Consumed(CodeOutcome.EXPIRED)
    return Consumed(CodeOutcome.WRONG_AGENT, row.agent_id)
