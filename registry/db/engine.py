"""Open the registry database from a URL: `sqlite:///path` (the default) or
`postgresql://user@host/db`; the tables are created if missing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from registry.db.schema import metadata
from registry.db.upgrade import add_missing_columns, forget_upload_bearers
from registry.errors import RegistryError

# Another process (an ingest worker, the CLI) may hold SQLite's write lock briefly.
SQLITE_BUSY_TIMEOUT_S = 15


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL: the dashboard reads while ingest writes; NORMAL is durable across a process
    # crash, and what a power cut could lose (the newest health) is re-sent as retained.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def normalise_url(url: str) -> str:
    """`postgresql://` means psycopg 3 (the driver we install), not SQLAlchemy's psycopg2."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def open_engine(url: str) -> Engine:
    """An engine with every table created; RegistryError naming what is wrong."""
    url = normalise_url(url)
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise RegistryError(f"database: not a database URL: {url!r}") from exc
    backend = parsed.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise RegistryError(f"database: {backend!r} is not supported (sqlite or postgresql)")
    try:
        if backend == "sqlite":
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(
                url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False}
            )
            event.listen(engine, "connect", _sqlite_pragmas)
        else:
            engine = create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)
        metadata.create_all(engine)
        with engine.begin() as connection:
            add_missing_columns(connection)
        forget_upload_bearers(engine)
    except (SQLAlchemyError, OSError) as exc:
        where = parsed.render_as_string(hide_password=True)
        # The driver's own first line, without SQLAlchemy's wrapper and help link.
        cause = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise RegistryError(f"database {where}: {cause}") from exc
    return engine
