"""One-time enrolment codes: typed by an owner, stored only as their SHA-256, used once.

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
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, insert, select, update

from registry.db.schema import enrol_codes
from registry.enrolment.settings import DEFAULT_CODE_TTL_S

__all__ = [
    "ALPHABET",
    "CodeOutcome",
    "IssuedCode",
    "OpenCode",
    "code_sha256",
    "consume_code",
    "generate_code",
    "issue_code",
    "list_open_codes",
    "normalise_code",
    "rfc3339",
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


@dataclass(frozen=True)
class IssuedCode:
    """A new code: the text is shown once, to the operator who made it."""

    code: str
    created_by: str
    created_at: float  # epoch seconds
    expires_at: float


@dataclass(frozen=True)
class OpenCode:
    """A code that can still be used; its text is not known any more, only its hash."""

    code_sha256: str
    created_by: str
    created_at: float
    expires_at: float


def rfc3339(epoch: float) -> str:
    """Epoch seconds as RFC 3339 UTC with `Z`, the API's time format."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


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
    ttl_s: float = DEFAULT_CODE_TTL_S,
    *,
    now: float | None = None,
) -> IssuedCode:
    """Make and store a new code valid for `ttl_s` seconds."""
    if ttl_s <= 0:
        raise ValueError("the code's lifetime must be positive")
    if not created_by or len(created_by) > MAX_CREATED_BY:
        raise ValueError(f"created_by must be 1 to {MAX_CREATED_BY} characters")
    created_at = time.time() if now is None else now
    code = generate_code()
    with engine.begin() as connection:
        connection.execute(
            insert(enrol_codes).values(
                code_sha256=code_sha256(code),
                created_by=created_by,
                created_at=created_at,
                expires_at=created_at + ttl_s,
            )
        )
    return IssuedCode(code, created_by, created_at, created_at + ttl_s)


def list_open_codes(engine: Engine, *, now: float | None = None) -> list[OpenCode]:
    """Codes neither used nor expired, oldest first."""
    moment = time.time() if now is None else now
    query = (
        select(
            enrol_codes.c.code_sha256,
            enrol_codes.c.created_by,
            enrol_codes.c.created_at,
            enrol_codes.c.expires_at,
        )
        .where(enrol_codes.c.used_at.is_(None), enrol_codes.c.expires_at > moment)
        .order_by(enrol_codes.c.created_at)
    )
    with engine.connect() as connection:
        return [OpenCode(*row) for row in connection.execute(query)]


def consume_code(connection: Connection, code: str, agent_id: str, now: float) -> CodeOutcome:
    """Mark the code used by `agent_id`, inside the caller's transaction.

    One conditional UPDATE does the check and the marking, so of two concurrent uses only
    one matches a row: PostgreSQL re-checks the WHERE clause after the first commits, and
    SQLite lets one writer at a time. If the caller's transaction rolls back (storing the
    agent failed), the code stays usable."""
    symbols = normalise_code(code)
    if symbols is None:
        return CodeOutcome.UNKNOWN
    digest = hashlib.sha256(symbols.encode("ascii")).hexdigest()
    result = connection.execute(
        update(enrol_codes)
        .where(
            enrol_codes.c.code_sha256 == digest,
            enrol_codes.c.used_at.is_(None),
            enrol_codes.c.expires_at > now,
        )
        .values(used_at=now, agent_id=agent_id)
    )
    if result.rowcount == 1:
        return CodeOutcome.ACCEPTED
    row = connection.execute(
        select(enrol_codes.c.used_at).where(enrol_codes.c.code_sha256 == digest)
    ).first()
    if row is None:
        return CodeOutcome.UNKNOWN
    return CodeOutcome.EXPIRED if row.used_at is None else CodeOutcome.USED
