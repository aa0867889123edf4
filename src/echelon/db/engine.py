"""Engine creation: one place that knows how each database is tuned."""

from __future__ import annotations

import os
import sqlite3
import threading
from typing import Any, Final

from sqlalchemy import Connection, Engine, create_engine, event
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
        database = parsed.database or ""
        if (
            not read_only
            and database
            and database != ":memory:"
            and "factory" not in (kwargs.get("connect_args") or {})
        ):
            kwargs["connect_args"] = (kwargs.get("connect_args") or {}) | {
                "factory": _writer_connection(database)
            }
        engine = create_engine(parsed, **kwargs)
        event.listen(engine, "connect", _tune_sqlite)
        # pysqlite defers BEGIN on its own; issue it ourselves, IMMEDIATE, so a service
        # call is one real transaction that never fails upgrading a read lock to write.
        if not read_only:
            event.listen(engine, "begin", _begin_immediate)
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


# SQLite has one writer at a time. Left to itself, a writer that finds the database
# locked sleeps and polls (1, 2, 5 … 100 ms between tries), so under a steady stream of
# short transactions from several threads (API requests beside the dispatcher) a waiter
# can sleep through many turns: tail latencies of hundreds of milliseconds. The threads
# of one process therefore queue on a lock of their own, handed over the moment a
# transaction ends; SQLite's busy timeout still settles it with other processes.
WRITER_WAIT: Final = 30.0
_writer_locks: dict[str, threading.Lock] = {}
_writer_locks_guard = threading.Lock()


class _WriterConnection(sqlite3.Connection):
    """A connection that holds its database's process-wide writer lock from ``BEGIN``
    until the transaction ends (commit, rollback or close)."""

    writer_lock: threading.Lock
    _holds = False

    def begin_writing(self) -> None:
        if not self._holds:
            # Past the wait, go on without it: SQLite's own busy timeout decides.
            self._holds = self.writer_lock.acquire(timeout=WRITER_WAIT)

    def end_writing(self) -> None:
        if self._holds:
            self._holds = False
            self.writer_lock.release()

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            if not self.in_transaction:
                self.end_writing()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            if not self.in_transaction:
                self.end_writing()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.end_writing()


def _writer_connection(database: str) -> type[_WriterConnection]:
    """The connection class for ``database``: every engine of the process on that file
    shares one writer lock."""
    with _writer_locks_guard:
        lock = _writer_locks.setdefault(os.path.realpath(database), threading.Lock())
    return type("WriterConnection", (_WriterConnection,), {"writer_lock": lock})


def reading(engine: Engine) -> Connection:
    """A connection for one quick read that needs no transaction of its own (the API
    key behind every request): on PostgreSQL in autocommit, sparing the round trips of
    BEGIN and ROLLBACK; on SQLite begun DEFERRED, a snapshot that neither waits for the
    writer nor holds it up (WAL)."""
    conn = engine.connect()
    if engine.dialect.name == "postgresql":
        return conn.execution_options(isolation_level="AUTOCOMMIT")
    return conn.execution_options(echelon_reads_only=True)


def _begin_immediate(conn: Connection) -> None:
    if conn.get_execution_options().get("echelon_reads_only"):
        conn.exec_driver_sql("BEGIN")
        return
    raw = conn.connection.dbapi_connection
    writer = raw if isinstance(raw, _WriterConnection) else None
    if writer is not None:
        writer.begin_writing()
    try:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    except BaseException:
        if writer is not None and not writer.in_transaction:
            writer.end_writing()
        raise
