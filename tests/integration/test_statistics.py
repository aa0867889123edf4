"""``db.statistics``: a table that outgrew its planner statistics is analyzed, on
PostgreSQL; SQLite's planner needs none."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from sqlalchemy import Column, Engine, Integer, MetaData, String, Table, insert, text

from echelon.db.statistics import FIRST_AT, refresh_statistics, stale_tables

PROBE = "statistics_probe"


@pytest.fixture
def probe(engine: Engine) -> Iterator[Table]:
    """A table of the test's own: one of the schema's carries whatever earlier tests in
    the session did to it (a full run failed on an ``ANALYZE`` from before), and
    autovacuum, off here, could analyze it first."""
    table = Table(PROBE, MetaData(), Column("id", Integer, primary_key=True), Column("n", String))
    table.create(engine)
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.exec_driver_sql(f"ALTER TABLE {PROBE} SET (autovacuum_enabled = false)")
    yield table
    table.drop(engine)


def _grow(engine: Engine, table: Table, count: int) -> None:
    with engine.connect() as conn:
        conn.execute(insert(table), [{"id": i, "n": f"行{i}"} for i in range(count)])
        conn.commit()
        if engine.dialect.name == "postgresql":  # counters reach the statistics at idle
            conn.exec_driver_sql("SELECT pg_stat_force_next_flush()")
            conn.commit()


def _stale_soon(engine: Engine, table: str) -> bool:
    deadline = time.monotonic() + 30  # the statistics collector is slow under load
    while time.monotonic() < deadline:
        if table in stale_tables(engine, [table]):
            return True
        time.sleep(0.2)
    return False


def test_a_table_that_outgrew_its_statistics_is_analyzed(engine: Engine, probe: Table) -> None:
    _grow(engine, probe, FIRST_AT + 500)
    if engine.dialect.name != "postgresql":
        assert refresh_statistics(engine, [PROBE]) == []
        return
    assert _stale_soon(engine, PROBE)
    assert refresh_statistics(engine, [PROBE, "no_such_table"]) == [PROBE]
    assert stale_tables(engine, [PROBE]) == []
    with engine.connect() as conn:
        known = conn.execute(
            text("SELECT reltuples FROM pg_class WHERE oid = to_regclass(:name)"), {"name": PROBE}
        ).scalar_one()
    assert known >= FIRST_AT
