"""A throwaway PostgreSQL database on the machine's server, created for one test session.

The machine's PostgreSQL is used only through a database the tests create (and drop)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest

# The server's admin connection; CI and the demo machine trust local connections.
ADMIN_URL = os.environ.get("CAMREG_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")


@contextmanager
def temporary_database() -> Iterator[str]:
    """Yields a SQLAlchemy URL of a new empty database; dropped afterwards."""
    name = f"camreg_test_{os.getpid()}_{secrets.token_hex(4)}"
    try:
        admin = psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL is not reachable at {ADMIN_URL}: {exc}", pytrace=False)
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        base = ADMIN_URL.rsplit("/", 1)[0]
        try:
            yield f"postgresql+psycopg://{base.split('://', 1)[1]}/{name}"
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
