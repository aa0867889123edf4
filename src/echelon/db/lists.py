"""Lists as one bound parameter: ``column IN (values)`` and many-row updates.

SQLAlchemy expands ``in_([...])`` into one parameter per value, so a statement's SQL
changes with every list length: it is compiled again each time (measured: a third of
the dispatcher's database time went to compiling receipt batches). Here the list
travels as a single parameter — a JSON array read by ``json_each`` on SQLite, an array
compared with ``= ANY`` on PostgreSQL — and the statement compiles once.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Table,
    any_,
    bindparam,
    func,
    literal_column,
    select,
)
from sqlalchemy.dialects.postgresql import ARRAY


def one_of(
    conn: Connection, column: ColumnElement[Any], values: Collection[Any], name: str = "ids"
) -> ColumnElement[bool]:
    if conn.dialect.name == "postgresql":
        return column == any_(bindparam(name, list(values), type_=ARRAY(column.type)))
    listed = func.json_each(bindparam(name, json.dumps(list(values))))
    return column.in_(select(literal_column("value")).select_from(listed).scalar_subquery())


def update_rows(
    conn: Connection,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    key: str = "id",
    where: ColumnElement[bool] | None = None,
) -> int:
    """``UPDATE table SET … WHERE key = …`` for many rows with different values, as ONE
    set-based statement: the rows travel as one JSON array of arrays (read by
    ``json_array_elements`` on PostgreSQL, ``json_each`` on SQLite). Every row must carry
    the same columns.

    An executemany costs SQLAlchemy ~50 µs of Python per row (parameter processing),
    and arrays, one per column, cost psycopg as much again dumped element by element;
    the dispatcher writes every message's outcome this way. Values go through each
    column type's bind processor, so what is stored is exactly what an ordinary UPDATE
    would store. ``where``: a further condition on the table's own columns (constants
    only); how many rows were updated.
    """
    if not rows:
        return 0
    names = [key, *(c for c in rows[0] if c != key)]
    dialect = conn.dialect
    payload = _json_rows(conn, table, names, rows)
    quoted = [dialect.identifier_preparer.quote(name) for name in names]
    target = dialect.identifier_preparer.format_table(table)
    values = _row_values(conn, table, names)
    sets = ", ".join(f"{q} = {values[i]}" for i, q in enumerate(quoted) if i)
    also = ""
    if where is not None:
        condition = where.compile(dialect=dialect, compile_kwargs={"literal_binds": True})
        # On SQLite as a filter only (unary +): offered a condition on an indexed column,
        # its planner scanned that index for every row instead of going by the key.
        also = f" AND ({condition})" if dialect.name == "postgresql" else f" AND +({condition})"
    sql = (
        f"UPDATE {target} SET {sets} FROM {_rows_source(conn)} "
        f"WHERE {target}.{quoted[0]} = {values[0]}{also}"
    )
    return _execute(conn, sql, payload)


def insert_rows(conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> int:
    """``INSERT … ON CONFLICT DO NOTHING`` of many rows as ONE statement, the rows as one
    JSON array like ``update_rows``: a row that breaks a unique constraint is passed
    over, not an error. Every row must carry the same columns; how many were inserted."""
    if not rows:
        return 0
    names = list(rows[0])
    dialect = conn.dialect
    payload = _json_rows(conn, table, names, rows)
    quoted = ", ".join(dialect.identifier_preparer.quote(name) for name in names)
    target = dialect.identifier_preparer.format_table(table)
    values = ", ".join(_row_values(conn, table, names))
    # "WHERE true": SQLite would read ON CONFLICT as a join constraint of the SELECT.
    sql = (
        f"INSERT INTO {target} ({quoted}) SELECT {values} FROM {_rows_source(conn)} "
        "WHERE true ON CONFLICT DO NOTHING"
    )
    return _execute(conn, sql, payload)


def _json_rows(
    conn: Connection, table: Table, names: Sequence[str], rows: Sequence[Mapping[str, Any]]
) -> str:
    """The rows as one JSON array of arrays, each named column's values through the
    column type's bind processor: stored exactly as an ordinary statement would store
    them. Encoded in C, where psycopg dumps arrays element by element in Python."""
    processors = [table.c[name].type._cached_bind_processor(conn.dialect) for name in names]
    columns = [[row[name] for row in rows] for name in names]
    columns = [
        column if processor is None else _processed(column, processor)
        for column, processor in zip(columns, processors, strict=True)
    ]
    return json.dumps([list(values) for values in zip(*columns, strict=True)], default=str)


def _processed(column: list[Any], processor: Callable[[Any], Any]) -> list[Any]:
    """``processor`` applied to each value, once per distinct value: a batch's rows
    mostly share their times (the dispatcher's "now"), and spelling a time for SQLite
    costs more than the lookup."""
    done: dict[tuple[type, Any], Any] = {}
    processed = []
    for value in column:
        key = (value.__class__, value)  # True and 1 are equal keys, not equal values
        try:
            out = done[key]
        except KeyError:
            out = done[key] = processor(value)
        except TypeError:  # unhashable (a JSON document)
            out = processor(value)
        processed.append(out)
    return processed


def _rows_source(conn: Connection) -> str:
    if conn.dialect.name == "postgresql":
        return "json_array_elements(%(rows)s::json) AS j"
    return "json_each(?) AS j"


def _row_values(conn: Connection, table: Table, names: Sequence[str]) -> list[str]:
    """Each column's value out of the JSON row ``j.value`` (cast to the column's type on
    PostgreSQL, whose JSON text has none)."""
    dialect = conn.dialect
    if dialect.name == "postgresql":
        return [
            f"(j.value->>{i})::{table.c[name].type.compile(dialect=dialect)}"
            for i, name in enumerate(names)
        ]
    return [f"json_extract(j.value, '$[{i}]')" for i in range(len(names))]


def _execute(conn: Connection, sql: str, payload: str) -> int:
    if conn.dialect.name == "postgresql":
        return conn.exec_driver_sql(sql, {"rows": payload}).rowcount
    return conn.exec_driver_sql(sql, (payload,)).rowcount
