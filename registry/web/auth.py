"""Who may use the registry: users with Argon2id-hashed passwords and a role, sessions with
a CSRF secret, API tokens, and lock-out after repeated failed logins.

Secrets (session cookies, API tokens) are random 256-bit values; only their SHA-256 is
stored, so a copy of the database lets nobody log in."""

from __future__ import annotations

import hmac
import logging
import re
import secrets
import time
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import Engine, delete, or_, select, update

from contract.common.passwords import (
    hash_password,
    needs_rehash,
    password_matches,
    secret_digest,
)
from registry.db.schema import api_tokens, sessions, users
from registry.errors import RegistryError

log = logging.getLogger(__name__)

USERNAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
MIN_PASSWORD = 12
# Verified against when the user does not exist, so a login takes as long either way.
_DUMMY_HASH = hash_password(secrets.token_hex(16))


class Role(StrEnum):
    POLICE = "police"  # search, requests, evidence
    OPERATOR = "operator"  # health dashboard, enrolment codes


@dataclass(frozen=True)
class User:
    name: str
    role: Role


@dataclass(frozen=True)
class Session:
    user: User
    csrf: str


class LoginRefused(RegistryError):
    """Wrong name or password, or locked out; `reason` is logged, the user sees one message."""

    def __init__(self, reason: str) -> None:
        super().__init__("wrong user name or password, or too many attempts: try later")
        self.reason = reason


def check_new_user(name: str, password: str) -> None:
    if not USERNAME.fullmatch(name):
        raise RegistryError(
            f"user name {name!r}: lower-case letters, digits, '.', '_' or '-', at most 64"
        )
    if len(password) < MIN_PASSWORD:
        raise RegistryError(f"password: at least {MIN_PASSWORD} characters")


def add_user(engine: Engine, name: str, password: str, role: Role) -> None:
    """Create a user, or reset an existing user's password and role (and unlock them)."""
    check_new_user(name, password)
    row = {
        "password_hash": hash_password(password),
        "role": role.value,
        "failed_logins": 0,
        "locked_until": None,
    }
    with engine.begin() as db:
        changed = db.execute(update(users).where(users.c.username == name).values(**row))
        if changed.rowcount == 0:
            db.execute(users.insert().values(username=name, created_at=time.time(), **row))


def list_users(engine: Engine) -> list[tuple[User, float | None]]:
    with engine.connect() as db:
        rows = db.execute(select(users).order_by(users.c.username)).all()
    return [(User(row.username, Role(row.role)), row.locked_until) for row in rows]


def authenticate(
    engine: Engine, name: str, password: str, *, lockout_after: int, lockout_for: float
) -> User:
    """The user, or LoginRefused. Failures in a row beyond `lockout_after` lock the account
    for `lockout_for` seconds, even for the right password (guessing stays slow).

    Blocking (Argon2 and the database): call it in a worker thread. The attempt is counted
    in its own transaction before the password is checked, so parallel attempts at one
    account cannot run more checks than `lockout_after`: the one that finds the count past
    it locks the account without a check."""
    now = time.time()
    open_account = or_(users.c.locked_until.is_(None), users.c.locked_until <= now)
    with engine.begin() as db:
        db.execute(
            update(users)
            .where(users.c.username == name, open_account)
            .values(failed_logins=users.c.failed_logins + 1)
        )
        row = db.execute(select(users).where(users.c.username == name)).one_or_none()
    if row is None:
        _verify(_DUMMY_HASH, password)
        raise LoginRefused(f"no user {name!r}")
    if row.locked_until is not None and row.locked_until > now:
        raise LoginRefused(f"{name} is locked for {row.locked_until - now:.0f} s more")
    attempt = row.failed_logins  # this one included
    if attempt > lockout_after:
        _lock(engine, name, now + lockout_for)
        raise LoginRefused(
            f"{name}: attempt {attempt} while {lockout_after} were allowed; "
            f"locked for {lockout_for:.0f} s"
        )
    if not _verify(row.password_hash, password):
        if attempt < lockout_after:
            raise LoginRefused(f"wrong password for {name}")
        _lock(engine, name, now + lockout_for)
        raise LoginRefused(
            f"wrong password for {name}; locked for {lockout_for:.0f} s after {attempt} failures"
        )
    values: dict[str, object] = {"failed_logins": 0, "locked_until": None}
    if needs_rehash(row.password_hash):
        values["password_hash"] = hash_password(password)
    with engine.begin() as db:
        db.execute(update(users).where(users.c.username == name).values(**values))
    return User(name, Role(row.role))


def _lock(engine: Engine, name: str, until: float) -> None:
    with engine.begin() as db:
        db.execute(
            update(users)
            .where(users.c.username == name)
            .values(failed_logins=0, locked_until=until)
        )


def _verify(password_hash: str, password: str) -> bool:
    return password_matches(password_hash, password, "registry login")


def start_session(engine: Engine, user: User, lifetime: float) -> tuple[str, Session]:
    """A new session; returns the cookie value (the secret) and the session."""
    secret = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    now = time.time()
    with engine.begin() as db:
        db.execute(delete(sessions).where(sessions.c.expires_at < now))
        db.execute(
            sessions.insert().values(
                session_sha256=secret_digest(secret),
                username=user.name,
                csrf=csrf,
                created_at=now,
                expires_at=now + lifetime,
            )
        )
    return secret, Session(user, csrf)


def session_of(engine: Engine, secret: str) -> Session | None:
    now = time.time()
    with engine.connect() as db:
        row = db.execute(
            select(sessions.c.csrf, users.c.username, users.c.role)
            .join(users, users.c.username == sessions.c.username)
            .where(sessions.c.session_sha256 == secret_digest(secret), sessions.c.expires_at > now)
        ).one_or_none()
    if row is None:
        return None
    return Session(User(row.username, Role(row.role)), row.csrf)


def end_session(engine: Engine, secret: str) -> None:
    with engine.begin() as db:
        db.execute(delete(sessions).where(sessions.c.session_sha256 == secret_digest(secret)))


def csrf_matches(session: Session, presented: str | None) -> bool:
    return presented is not None and hmac.compare_digest(session.csrf, presented)


def add_api_token(engine: Engine, name: str, label: str) -> str:
    """A new API token for an existing user; the token is shown once, only its hash kept."""
    with engine.begin() as db:
        if db.execute(select(users.c.username).where(users.c.username == name)).first() is None:
            raise RegistryError(f"no user {name!r} (create it with `camera-registry users add`)")
        token = "crt_" + secrets.token_urlsafe(32)
        db.execute(
            api_tokens.insert().values(
                token_sha256=secret_digest(token),
                username=name,
                label=label,
                created_at=time.time(),
            )
        )
    return token


def user_of_api_token(engine: Engine, token: str) -> User | None:
    with engine.connect() as db:
        row = db.execute(
            select(users.c.username, users.c.role)
            .join(api_tokens, api_tokens.c.username == users.c.username)
            .where(api_tokens.c.token_sha256 == secret_digest(token))
        ).one_or_none()
    return None if row is None else User(row.username, Role(row.role))
