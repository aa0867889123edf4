"""Bulk paths on both databases: trusted rows (binary COPY on PostgreSQL, unchecked on
SQLite) read back as written, CHECKs hold again afterwards, and ``among`` binds a list
as one parameter."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

import psycopg
import pytest
from sqlalchemy import Engine, select

from echelon.db.bulk import among, copy_rows, stored_time
from echelon.db.tables import suppressions
from echelon.workspaces.service import Workspace

AT = datetime(2026, 11, 11, 4, 0, 0, 123456, tzinfo=UTC)
COLUMNS = ("workspace_id", "phone", "kind", "source", "reason", "created_at")


def test_trusted_rows_read_back_as_written(engine: Engine, workspace: Workspace) -> None:
    phones = [f"+86138001380{n:02d}" for n in range(50)]
    with engine.begin() as conn:
        at = stored_time(conn)(AT)
        rows = [(workspace.id, phone, "dnc", "import", None, at) for phone in phones]
        copy_rows(conn, suppressions, COLUMNS, rows, trusted=True)
    with engine.connect() as conn:
        found = conn.execute(
            select(suppressions.c.phone, suppressions.c.kind, suppressions.c.created_at)
            .where(among(conn, suppressions.c.phone, [phones[3], phones[40], "+10000000000"]))
            .order_by(suppressions.c.phone)
        ).all()
        everything = conn.execute(select(suppressions.c.id)).scalars().all()
        some_ids = conn.execute(
            select(suppressions.c.id).where(among(conn, suppressions.c.id, everything[::7]))
        ).scalars()
        assert sorted(some_ids) == sorted(everything[::7])
    assert [tuple(row) for row in found] == [(phones[3], "dnc", AT), (phones[40], "dnc", AT)]


def test_checks_hold_again_after_trusted_rows(engine: Engine, workspace: Workspace) -> None:
    with engine.connect() as conn:
        good = [(workspace.id, "+8613800138000", "opt_out", "reply", None, stored_time(conn)(AT))]
    bad = [(workspace.id, "+8613900139000", "nonsense", "reply", None, AT)]
    with engine.begin() as conn:
        copy_rows(conn, suppressions, COLUMNS, good, trusted=True)
        # copy_rows speaks to the driver: its own error, not SQLAlchemy's.
        with pytest.raises((sqlite3.IntegrityError, psycopg.IntegrityError)):
            copy_rows(conn, suppressions, COLUMNS, bad)
