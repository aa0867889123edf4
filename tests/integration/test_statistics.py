"""``db.statistics``: a table that outgrew its planner statistics is analyzed, on
PostgreSQL; SQLite's planner needs none."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, insert, text

from echelon.db.statistics import FIRST_AT, refresh_statistics, stale_tables
from echelon.db.tables import workspaces

NOW = datetime(2026, 11, 23, 4, 0, tzinfo=UTC)


def _grow(engine: Engine, count: int) -> None:
    with engine.connect() as conn:
        conn.execute(
            insert(workspaces),
            [
                {"slug": f"s{i}", "name": f"店{i}", "timezone": "Asia/Shanghai", "created_at": NOW}
                for i in range(count)
            ],
        )
        conn.commit()
        if engine.dialect.name == "postgresql":  # counters reach the statistics at idle
            conn.exec_driver_sql("SELECT pg_stat_force_next_flush()")
            conn.commit()


def _stale_soon(engine: Engine, table: str) -> bool:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if table in stale_tables(engine, [table]):
            return True
        time.sleep(0.2)
    return False


@pytest.fixture
def no_autovacuum(engine: Engine) -> Iterator[None]:
    """Else autovacuum may analyze the grown table first (its threshold is far lower)
    and the table is never seen stale: one full-suite run failed so."""
    if engine.dialect.name != "postgresql":
        yield
        return
    with engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE workspaces SET (autovacuum_enabled = false)")
    yield
    with engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE workspaces RESET (autovacuum_enabled)")


@pytest.mark.usefixtures("no_autovacuum")
def test_a_table_that_outgrew_its_statistics_is_analyzed(engine: Engine) -> None:
    _grow(engine, FIRST_AT + 500)
    if engine.dialect.name != "postgresql":
        assert refresh_statistics(engine, ["workspaces"]) == []
        return
    assert _stale_soon(engine, "workspaces")
    assert refresh_statistics(engine, ["workspaces", "no_such_table"]) == ["workspaces"]
    assert stale_tables(engine, ["workspaces"]) == []
    with engine.connect() as conn:
        known = conn.execute(
            text("SELECT reltuples FROM pg_class WHERE oid = to_regclass('workspaces')")
        ).scalar_one()
    assert known >= FIRST_AT
