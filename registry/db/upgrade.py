"""Columns added to a table after a database was made: `create_all` makes missing tables
only, so a registry that already has the table gets the new nullable columns here."""

from __future__ import annotations

from sqlalchemy import Connection, inspect
from sqlalchemy.exc import OperationalError
from sqlalchemy.schema import CreateColumn

from registry.db.schema import metadata

__all__ = ["add_missing_columns"]


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
