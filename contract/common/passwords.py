"""Passwords and session secrets as both sides keep them: Argon2id hashes of passwords (the
owner page's one password, the registry's users), SHA-256 digests of random secrets
(session cookies, API tokens), so a copy of the stored hashes lets nobody log in."""

from __future__ import annotations

import hashlib
import logging

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

log = logging.getLogger(__name__)

# Argon2id with the library's defaults (RFC 9106 "second recommended": 64 MiB, t=3).
_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def password_matches(password_hash: str, password: str, whose: str) -> bool:
    """True when `password` is the one `password_hash` was made from. A stored hash that is
    not Argon2 at all (a hand-edited file, a damaged row) matches nothing and is logged,
    naming `whose` hash it was."""
    try:
        return _hasher.verify(password_hash, password)
    except VerifyMismatchError:
        return False
    except (VerificationError, InvalidHashError):
        log.warning("%s: the stored password hash is not a valid Argon2 hash", whose)
        return False


def needs_rehash(password_hash: str) -> bool:
    """True when the hash was made with weaker parameters than today's."""
    return _hasher.check_needs_rehash(password_hash)


def secret_digest(secret: str) -> str:
    """What is stored of a random secret (a session cookie, an API token): its SHA-256."""
    return hashlib.sha256(secret.encode()).hexdigest()
