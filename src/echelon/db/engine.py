"""Engine creation: one place that knows how each database is tuned."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

from echelon.db.bulk import json_text


def create_db_engine(url: str, *, read_only: bool = False, **kwargs: Any) -> Engine:
    """An engine for ``url``; SQLite gets WAL, foreign keys and a busy timeout.

    ``read_only``: for a process that only reads while another writes (the campaign
    planner's child). On SQLite its statements then read committed data without ever
    taking the write lock, each on its own snapshot.
    """
    kwargs.setdefault("json_serializer", json_text)
    # Set-based statements report what they did (rows imported, planned, claimed) by
    # rowcount, which SQLAlchemy only keeps for every statement kind when asked.
    kwargs.setdefault("execution_options", {"preserve_rowcount": True})
    parsed = make_url(url)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(parsed, **kwargs)
        event.listen(engine, "connect", _tune_sqlite)
        # pysqlite defers BEGIN on its own; issue it ourselves, IMMEDIATE, so a service
        # call is one real transaction that never fails upgrading a read lock to write.
        if not read_only:
            event.listen(engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN IMMEDIATE"))
        return engine
    return create_engine(parsed, pool_pre_ping=True, **kwargs)


def _tune_sqlite(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.isolation_level = None
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA temp_store=MEMORY")
    cursor.execute("PRAGMA cache_size=-65536")
    cursor.close()
