"""Planner statistics that keep up with the outbox (PostgreSQL).

A new installation's first campaign grows ``messages`` and ``receipts`` from nothing to
hundreds of thousands of rows in a minute or two, faster than autovacuum's rounds.
Until a table is analyzed PostgreSQL plans with default selectivities: a receipt
batch's ``provider_id = ANY(…)`` of 800 ids is estimated to match every row, so the
check for receipts already stored reads all of them — 42 ms a batch at 200,000 and
growing, against 3 ms once analyzed. So whoever writes the outbox in bulk (the
dispatcher) asks every few seconds how the tables grew since they were last analyzed
and analyzes one that outgrew its statistics — what autovacuum would do, only sooner.
SQLite's planner works without statistics: nothing to do.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Engine, text

GROWTH = 4.0  # analyze again once a table holds this many times the rows last analyzed
FIRST_AT = 5_000  # … and a table never analyzed, once it holds this many

_ROWS = text(
    "SELECT s.n_live_tup, c.reltuples, s.last_analyze IS NULL AND s.last_autoanalyze IS NULL "
    "FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid "
    "WHERE s.relid = to_regclass(:name)"
)


def stale_tables(engine: Engine, names: Iterable[str]) -> list[str]:
    """The tables among ``names`` that outgrew their statistics: never analyzed and past
    ``FIRST_AT`` rows, or grown ``GROWTH``-fold since. (Changes of a table that does
    not grow — statuses moving on — are autovacuum's to follow: once a table has
    statistics, the plans of the outbox's queries hold as it changes.)"""
    if engine.dialect.name != "postgresql":
        return []
    stale = []
    with engine.connect() as conn:
        for name in names:
            row = conn.execute(_ROWS, {"name": name}).first()
            if row is None:
                continue
            rows, known, never = int(row[0]), float(row[1]), bool(row[2])
            if rows >= FIRST_AT and (never or known <= 0 or rows > GROWTH * known):
                stale.append(name)
    return stale


def analyze(engine: Engine, names: Iterable[str]) -> None:
    """ANALYZE each table (it takes no lock that holds up reads or writes)."""
    with engine.connect() as conn:
        quote = conn.dialect.identifier_preparer.quote
        for name in names:
            conn.exec_driver_sql(f"ANALYZE {quote(name)}")
        conn.commit()


def refresh_statistics(engine: Engine, names: Iterable[str]) -> list[str]:
    """Analyze the stale tables among ``names``; the ones analyzed."""
    stale = stale_tables(engine, names)
    if stale:
        analyze(engine, stale)
    return stale
