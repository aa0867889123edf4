"""Set-based bulk paths: rows go into a session-local staging table in one round trip
per batch (COPY on PostgreSQL, executemany on SQLite), and SQL moves them on from there.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Collection, Sequence
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    ColumnElement,
    Connection,
    Date,
    DateTime,
    Engine,
    String,
    Table,
    bindparam,
    cast,
    func,
    select,
    text,
)
from sqlalchemy.schema import CreateTable

_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def json_text(value: object) -> str:
    """The one JSON spelling stored everywhere, so SQLite can compare documents as text."""
    return _ENCODER.encode(value)


def create_staging(conn: Connection, table: Table) -> None:
    """Create ``table`` (defined with ``prefixes=["TEMPORARY"]``) for this connection."""
    conn.execute(text(f"DROP TABLE IF EXISTS {table.name}"))
    conn.execute(CreateTable(table))


def clear_staging(conn: Connection, table: Table) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(text(f"TRUNCATE {table.name}"))
    else:
        conn.execute(table.delete())


def drop_staging(conn: Connection, table: Table) -> None:
    conn.execute(text(f"DROP TABLE IF EXISTS {table.name}"))


def load_staging(conn: Connection, table: Table, rows: Sequence[Sequence[Any]]) -> None:
    """Append ``rows`` (values in the table's column order) to the staging table."""
    copy_rows(conn, table, [c.name for c in table.columns], rows)


def copy_rows(
    conn: Connection,
    table: Table,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    trusted: bool = False,
) -> None:
    """Insert ``rows`` (values in ``columns`` order) in one round trip: COPY on
    PostgreSQL, executemany on SQLite; inside the caller's transaction.

    ``trusted``: every value is already what the database stores — its column's
    Python type (int, str; times as ``stored_time`` gives them) — and the rows satisfy
    the table's CHECK constraints, as rows a program built itself do. PostgreSQL then
    takes them as binary COPY, which it parses at a fraction of the text format's cost;
    SQLite takes them as they are and skips re-evaluating the CHECKs (an ``IN (…)``
    list there costs more per row than the insert without it).
    """
    if not rows:
        return
    raw: Any = conn.connection.driver_connection
    if conn.dialect.name == "postgresql":
        with raw.cursor() as cursor:
            statement = f"COPY {table.name} ({', '.join(columns)}) FROM STDIN"
            if trusted:
                statement += " (FORMAT BINARY)"
            with cursor.copy(statement) as copy:
                if trusted:
                    copy.set_types([_postgres_type(conn, table, name) for name in columns])
                for row in rows:
                    copy.write_row(row)
        return
    placeholders = ", ".join("?" for _ in columns)
    # Only date and time columns need SQLAlchemy's SQLite spelling; the rest go as they are.
    timed = [i for i, name in enumerate(columns) if _is_time(table.c[name].type)]
    if timed and not trusted:
        spelled: dict[Any, Any] = {}
        rows = [_with_sqlite_times(row, timed, spelled) for row in rows]
    cursor = raw.cursor()
    try:
        if trusted:
            cursor.execute("PRAGMA ignore_check_constraints = ON")
        cursor.executemany(
            f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({placeholders})", rows
        )
    finally:
        if trusted:
            cursor.execute("PRAGMA ignore_check_constraints = OFF")
        cursor.close()


def among(
    conn: Connection, column: ColumnElement[Any], values: Collection[Any]
) -> ColumnElement[bool]:
    """``column IN values`` with the values bound as one JSON array: a page of thousands
    costs one parameter, not a statement thousands of placeholders long to build, send
    and parse (nor an array the driver builds element by element)."""
    listed = json_text(list(values))
    if conn.dialect.name == "postgresql":
        elements = func.json_array_elements_text(cast(bindparam(None, listed, type_=String), JSON))
        value = elements.table_valued("value").c.value
        return column.in_(select(cast(value, column.type)))
    value = func.json_each(bindparam(None, listed, type_=String)).table_valued("value").c.value
    return column.in_(select(value))


_TYPE_ARGUMENTS = re.compile(r"\(.*\)")


def _postgres_type(conn: Connection, table: Table, name: str) -> str:
    # "VARCHAR(20)" -> "varchar", "TIMESTAMP WITH TIME ZONE" as it is: psycopg's names.
    spelled = table.c[name].type.compile(dialect=conn.dialect)
    return _TYPE_ARGUMENTS.sub("", spelled).lower()


def _is_time(column_type: Any) -> bool:
    return isinstance(getattr(column_type, "impl", column_type), Date | DateTime)


def _with_sqlite_times(
    row: Sequence[Any], timed: list[int], spelled: dict[Any, Any]
) -> Sequence[Any]:
    # A batch repeats the same few times (created, due), so each is spelled once.
    values = list(row)
    for i in timed:
        value = values[i]
        if value is not None:
            found = spelled.get(value)
            if found is None:
                found = spelled[value] = _sqlite_value(value)
            values[i] = found
    return values


def stored_time(bind: Connection | Engine) -> Callable[[datetime], Any]:
    """How ``copy_rows(trusted=True)`` takes a time on this database: the aware
    datetime itself on PostgreSQL, SQLAlchemy's spelling (``sqlite_time``) on SQLite."""
    if bind.dialect.name == "postgresql":
        return _itself
    return sqlite_time


def _itself(value: datetime) -> datetime:
    return value


def sqlite_time(value: datetime) -> str:
    """A time as SQLAlchemy stores it on SQLite: naive UTC, microseconds."""
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


def _sqlite_value(value: Any) -> Any:
    # The spellings SQLAlchemy itself stores on SQLite, so staged rows read back alike.
    if isinstance(value, datetime):
        return (
            value.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
        )
    if isinstance(value, date):
        return value.isoformat()
    return value


class GrowingTables:
    """Keeps PostgreSQL's statistics true while one transaction grows ``tables``.

    Autovacuum cannot see rows that are not committed yet, so a long import would
    be planned against a table the planner believes empty (hashing all of it for
    every batch). Analysing whenever the rows written have doubled costs a handful
    of samples per import; SQLite, planned per statement by index, needs none.
    """

    def __init__(self, conn: Connection, tables: Sequence[Table], *, first: int = 20_000) -> None:
        self._conn = conn
        self._tables = tables
        self._written = 0
        self._next = first

    def grew(self, rows: int) -> None:
        if self._conn.dialect.name != "postgresql":
            return
        self._written += rows
        if self._written >= self._next:
            # A small sample is enough to tell a big table from an empty one.
            self._conn.exec_driver_sql("SET LOCAL default_statistics_target = 10")
            for table in self._tables:
                self._conn.execute(text(f"ANALYZE {table.name}"))
            self._next = self._written * 2
