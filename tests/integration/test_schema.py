"""The migrations build exactly the schema the metadata describes, on both databases."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, text

from echelon.db.engine import create_db_engine
from echelon.db.migrate import current_revision, head_revision, upgrade
from echelon.db.schema import metadata
from echelon.workspaces.service import create_workspace


def test_migrated_schema_matches_metadata(engine: Engine) -> None:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, metadata) == []


def test_migrations_are_at_head_and_rerunnable(engine: Engine) -> None:
    assert current_revision(engine) == head_revision()
    upgrade(engine)
    assert current_revision(engine) == head_revision()


def test_every_customer_table_is_scoped_to_a_workspace(engine: Engine) -> None:
    tables = set(inspect(engine).get_table_names()) - {"alembic_version", "workspaces"}
    assert tables
    for table in tables:
        columns = {c["name"] for c in inspect(engine).get_columns(table)}
        assert "workspace_id" in columns, table


def test_sqlite_runs_in_wal_mode(sqlite_template: Path) -> None:
    engine = create_db_engine(f"sqlite:///{sqlite_template}")
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar_one() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar_one() == 1


@pytest.fixture(params=["sqlite", "postgresql"])
def bare_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An empty database of each kind, no migration applied."""
    if request.param == "sqlite":
        engine = create_db_engine(f"sqlite:///{tmp_path / 'bare.db'}")
        yield engine
        engine.dispose()
        return
    server: Engine = request.getfixturevalue("postgres_engine")  # skips when unreachable
    name = f"echelon_bare_{uuid.uuid4().hex[:12]}"
    admin = server.connect().execution_options(isolation_level="AUTOCOMMIT")
    admin.execute(text(f'CREATE DATABASE "{name}"'))
    engine = create_db_engine(server.url.set(database=name).render_as_string(False))
    try:
        yield engine
    finally:
        engine.dispose()
        admin.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.close()


def test_messages_planned_before_0011_learn_their_recipients_place(bare_engine: Engine) -> None:
    upgrade(bare_engine, "0010")
    now = datetime(2026, 11, 1, tzinfo=UTC)
    workspace, _ = create_workspace(bare_engine, slug="old", name="老店")
    with bare_engine.begin() as conn:
        contact_id = conn.execute(
            text(
                "INSERT INTO contacts (workspace_id, phone, carrier, province, created_at,"
                " updated_at) VALUES (:w, '+8613800138000', 'china_mobile', '北京市', :now, :now)"
                " RETURNING id"
            ),
            {"w": workspace.id, "now": now},
        ).scalar_one()
        conn.execute(
            text(
                "INSERT INTO messages (workspace_id, contact_id, phone, kind, text, text_hash,"
                " parts, cost_e4, status, due_at, created_at, updated_at) VALUES (:w, :c,"
                " '+8613800138000', 'service', 'x', 'h', 1, 0, 'delivered', :now, :now, :now)"
            ),
            {"w": workspace.id, "c": contact_id, "now": now},
        )
    upgrade(bare_engine)
    with bare_engine.connect() as conn:
        found = conn.execute(text("SELECT carrier, province FROM messages")).one()
    assert tuple(found) == ("china_mobile", "北京市")
