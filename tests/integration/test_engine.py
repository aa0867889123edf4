"""The engine's transactions: SQLite writers of one process queue on a lock that every
way out of a transaction hands on, and a quick read (the API key of every request)
neither waits for a writer nor holds one up."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, func, insert, select

from echelon.db.engine import create_db_engine, reading
from echelon.db.tables import workspaces
from echelon.workspaces.service import Workspace


def _count(engine: Engine) -> int:
    with reading(engine) as conn:
        return int(conn.execute(select(func.count()).select_from(workspaces)).scalar_one())


def _new_workspace(slug: str) -> dict[str, object]:
    return {
        "slug": slug,
        "name": slug,
        "timezone": "Asia/Shanghai",
        "created_at": datetime.now(UTC),
    }


def test_a_read_goes_on_while_another_thread_holds_a_write(
    engine: Engine, workspace: Workspace
) -> None:
    writing, release = threading.Event(), threading.Event()

    def writer() -> None:
        with engine.begin() as conn:
            conn.execute(insert(workspaces).values(_new_workspace("second")))
            writing.set()
            release.wait(10)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert writing.wait(10)
        started = time.monotonic()
        assert _count(engine) == 1  # the writer's row is not committed yet
        assert time.monotonic() - started < 1.0
    finally:
        release.set()
        thread.join()
    assert _count(engine) == 2


def test_every_way_out_of_a_transaction_frees_the_sqlite_writer(
    engine: Engine, workspace: Workspace
) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL has no single writer")
    with engine.begin() as conn:
        lock = conn.connection.dbapi_connection.writer_lock  # type: ignore[union-attr]
        assert lock.locked()
    assert not lock.locked()

    def fail_midway() -> None:
        with engine.begin() as conn:
            conn.execute(insert(workspaces).values(_new_workspace("rolled-back")))
            raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):
        fail_midway()
    assert not lock.locked()
    with engine.connect() as conn:  # a transaction begun implicitly, never committed
        conn.execute(select(workspaces.c.id))
        assert lock.locked()
    assert not lock.locked()
    # A second engine on the same file (another part of the process) shares the lock:
    # it waits its turn rather than sleeping through SQLite's busy retries.
    other = create_db_engine(engine.url.render_as_string(hide_password=False))
    try:
        with other.begin() as conn:
            assert conn.connection.dbapi_connection.writer_lock is lock  # type: ignore[union-attr]
            assert lock.locked()
        assert not lock.locked()
    finally:
        other.dispose()
    assert _count(engine) == 1


def test_writers_in_many_threads_all_get_their_turn(engine: Engine, workspace: Workspace) -> None:
    failures: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(20):
                with engine.begin() as conn:
                    conn.execute(insert(workspaces).values(_new_workspace(f"w{n}-{i}")))
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not failures
    assert _count(engine) == 1 + 6 * 20
