"""Lists as one bound parameter: ``column IN (values)`` and many-row updates.

SQLAlchemy expands ``in_([...])`` into one parameter per value, so a statement's SQL
changes with every list length: it is compiled again each time (measured: a third of
the dispatcher's database time went to compiling receipt batches). Here the list
travels as a single parameter — a JSON array read by ``json_each`` on SQLite, an array
compared with ``= ANY`` on PostgreSQL — and the statement compiles once.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
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
    set-based statement: the rows travel as arrays (``unnest`` on PostgreSQL) or a JSON
    array (``json_each`` on SQLite). Every row must carry the same columns.

    An executemany costs SQLAlchemy ~50 µs of Python per row (parameter processing);
    the dispatcher writes every message's outcome this way, so that cost was a large
    share of its time. Values go through each column type's bind processor, so what is
    stored is exactly what an ordinary UPDATE would store. ``where``: a further
    condition on the table's own columns (constants only); how many rows were updated.
    """
    if not rows:
        return 0
    names = [key, *(c for c in rows[0] if c != key)]
    dialect = conn.dialect
    columns = _bound_columns(conn, table, names, rows)
    quoted = [dialect.identifier_preparer.quote(name) for name in names]
    target = dialect.identifier_preparer.format_table(table)
    also = ""
    if where is not None:
        condition = where.compile(dialect=dialect, compile_kwargs={"literal_binds": True})
        # On SQLite as a filter only (unary +): offered a condition on an indexed column,
        # its planner scanned that index for every row instead of going by the key.
        also = f" AND ({condition})" if dialect.name == "postgresql" else f" AND +({condition})"
    if dialect.name == "postgresql":
        types = [table.c[name].type.compile(dialect=dialect) for name in names]
        arrays = ", ".join(f"%(c{i})s::{t}[]" for i, t in enumerate(types))
        aliases = ", ".join(f"c{i}" for i in range(len(names)))
        sets = ", ".join(f"{q} = j.c{i}" for i, q in enumerate(quoted) if i)
        sql = (
            f"UPDATE {target} SET {sets} FROM unnest({arrays}) AS j({aliases}) "
            f"WHERE {target}.{quoted[0]} = j.c0{also}"
        )
        return conn.exec_driver_sql(
            sql, {f"c{i}": values for i, values in enumerate(columns)}
        ).rowcount
    payload = json.dumps([list(values) for values in zip(*columns, strict=True)], default=str)
    sets = ", ".join(f"{q} = json_extract(j.value, '$[{i}]')" for i, q in enumerate(quoted) if i)
    sql = (
        f"UPDATE {target} SET {sets} FROM json_each(?) AS j "
        f"WHERE {target}.{quoted[0]} = json_extract(j.value, '$[0]'){also}"
    )
    return conn.exec_driver_sql(sql, (payload,)).rowcount


def insert_rows(conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> int:
    """``INSERT … ON CONFLICT DO NOTHING`` of many rows as ONE statement, the rows as
    arrays (``unnest``) or a JSON array (``json_each``), like ``update_rows``: a row
    that breaks a unique constraint is passed over, not an error. Every row must carry
    the same columns; how many were inserted."""
    if not rows:
        return 0
    names = list(rows[0])
    dialect = conn.dialect
    columns = _bound_columns(conn, table, names, rows)
    quoted = ", ".join(dialect.identifier_preparer.quote(name) for name in names)
    target = dialect.identifier_preparer.format_table(table)
    if dialect.name == "postgresql":
        types = [table.c[name].type.compile(dialect=dialect) for name in names]
        arrays = ", ".join(f"%(c{i})s::{t}[]" for i, t in enumerate(types))
        sql = (
            f"INSERT INTO {target} ({quoted}) SELECT * FROM unnest({arrays}) ON CONFLICT DO NOTHING"
        )
        return conn.exec_driver_sql(
            sql, {f"c{i}": values for i, values in enumerate(columns)}
        ).rowcount
    payload = json.dumps([list(values) for values in zip(*columns, strict=True)], default=str)
    values = ", ".join(f"json_extract(j.value, '$[{i}]')" for i in range(len(names)))
    # "WHERE true": SQLite would read ON CONFLICT as a join constraint of the SELECT.
    sql = (
        f"INSERT INTO {target} ({quoted}) SELECT {values} FROM json_each(?) AS j "
        "WHERE true ON CONFLICT DO NOTHING"
    )
    return conn.exec_driver_sql(sql, (payload,)).rowcount


def _bound_columns(
    conn: Connection, table: Table, names: Sequence[str], rows: Sequence[Mapping[str, Any]]
) -> list[list[Any]]:
    """Each named column's values across ``rows``, through the column type's bind
    processor: stored exactly as an ordinary statement would store them."""
    processors = [table.c[name].type._cached_bind_processor(conn.dialect) for name in names]
    columns = [[row[name] for row in rows] for name in names]
    return [
        column if processor is None else [processor(v) for v in column]
        for column, processor in zip(columns, processors, strict=True)
    ]
