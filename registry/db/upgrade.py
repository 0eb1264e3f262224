"""What a database made by an older registry needs, done when it opens (idempotent, cheap
when there is nothing to do, run at every open).

- Columns added to a table after a database was made: `create_all` makes missing tables
  only, so a registry that already has the table gets the new nullable columns here.
- Rows an older registry wrote that this one must not keep: older registries kept each
  request's upload bearer in clear, inside the prepared claims (`requests.claims_json`,
  `upload.token`) and inside the signed token (`requests.token`). Only its SHA-256
  (`requests.upload_token_sha256`) is needed to authorise uploads, so both are removed. On
  SQLite the freed bytes are overwritten too (`secure_delete`) and the write-ahead log is
  emptied, so the bearers do not linger in the files either.
"""

from __future__ import annotations

import json
import logging

from sqlalchemy import Connection, Engine, inspect, or_, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.schema import CreateColumn

from registry.db.schema import metadata, requests

__all__ = ["add_missing_columns", "forget_upload_bearers"]

log = logging.getLogger(__name__)


def add_missing_columns(connection: Connection) -> list[str]:
    """`ALTER TABLE ... ADD COLUMN` for each nullable column the database lacks; the
    `table.column` names added. A NOT NULL column cannot be added to filled rows like
    this, so a change that needs one must bring its own step."""
    inspector = inspect(connection)
    added: list[str] = []
    for table in metadata.sorted_tables:
        if not inspector.has_table(table.name):
            continue
        present = {column["name"] for column in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name in present or not column.nullable:
                continue
            definition = CreateColumn(column).compile(dialect=connection.dialect)
            quoted = connection.dialect.identifier_preparer.format_table(table)
            # Several registry processes may start at once: PostgreSQL skips a column
            # another one added; SQLite lets one writer at a time and says "duplicate".
            guard = "IF NOT EXISTS " if connection.dialect.name == "postgresql" else ""
            try:
                with connection.begin_nested():
                    connection.exec_driver_sql(
                        f"ALTER TABLE {quoted} ADD COLUMN {guard}{definition}"
                    )
            except OperationalError as exc:
                if "duplicate column" not in str(exc):
                    raise
                continue
            added.append(f"{table.name}.{column.name}")
    return added


def _without_bearer(claims_json: str) -> str | None:
    """The claims without `upload.token`, or None when they have none (or are not JSON)."""
    try:
        claims = json.loads(claims_json)
    except ValueError:
        return None
    upload = claims.get("upload") if isinstance(claims, dict) else None
    if not isinstance(upload, dict) or "token" not in upload:
        return None
    claims["upload"] = {k: v for k, v in upload.items() if k != "token"}
    return json.dumps(claims)


def forget_upload_bearers(engine: Engine) -> int:
    """Remove upload bearers an older registry stored; returns how many requests had one."""
    r = requests.c
    fixed = 0
    with engine.begin() as db:
        rows = db.execute(
            select(r.request_id, r.claims_json, r.token).where(
                # A cheap pre-filter; _without_bearer decides.
                or_(r.token.is_not(None), r.claims_json.like('%"token"%'))
            )
        ).all()
        sqlite = engine.dialect.name == "sqlite"
        if rows and sqlite:
            db.exec_driver_sql("PRAGMA secure_delete=ON")
        for row in rows:
            claims_json = _without_bearer(row.claims_json)
            if claims_json is None and row.token is None:
                continue
            values: dict[str, object] = {"token": None}
            if claims_json is not None:
                values["claims_json"] = claims_json
            db.execute(update(requests).where(r.request_id == row.request_id).values(**values))
            fixed += 1
    if fixed and sqlite:
        with engine.connect() as db:
            db.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    if fixed:
        log.warning(
            "removed the upload bearer an older registry kept in clear from %d requests "
            "(only its hash is needed)",
            fixed,
        )
    return fixed
