"""The migrations build exactly the schema the metadata describes, on both databases."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, text

from echelon.db.engine import create_db_engine
from echelon.db.migrate import current_revision, head_revision, upgrade
from echelon.db.schema import metadata


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
