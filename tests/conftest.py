"""Fixtures for every test: a migrated database on SQLite and on PostgreSQL.

Each database test runs twice, once per backend. PostgreSQL comes from
ECHELON_TEST_POSTGRES_URL (default: the local server's database ``test``); every test
session (and every xdist worker) gets its own database, dropped at the end, and each
test starts from empty tables. Without PostgreSQL the SQLite half still runs and the
summary says loudly what did not; under CI (CI=true) that is a failure instead.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from echelon.db.engine import create_db_engine
from echelon.db.migrate import upgrade
from echelon.db.schema import metadata
from echelon.workspaces.service import Workspace, create_workspace

POSTGRES_URL = os.environ.get(
    "ECHELON_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
UNDER_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
_postgres_problem: str | None = None


def _postgres_reachable() -> str | None:
    engine = create_db_engine(POSTGRES_URL, connect_args={"connect_timeout": 5})
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        return str(exc).splitlines()[0]
    finally:
        engine.dispose()
    return None


def pytest_sessionstart(session: pytest.Session) -> None:
    global _postgres_problem
    _postgres_problem = _postgres_reachable()
    if _postgres_problem and UNDER_CI:
        pytest.exit(
            f"PostgreSQL unreachable at {POSTGRES_URL} under CI: {_postgres_problem}", returncode=3
        )


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _postgres_problem:
        terminalreporter.write_sep(
            "!",
            f"POSTGRESQL HALF NOT RUN: {POSTGRES_URL} unreachable ({_postgres_problem})",
            red=True,
            bold=True,
        )


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    engine = create_db_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def postgres_engine() -> Iterator[Engine]:
    if _postgres_problem:
        pytest.skip(f"PostgreSQL unreachable: {_postgres_problem}")
    name = f"echelon_test_{uuid.uuid4().hex[:12]}"
    admin = create_db_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    engine = create_db_engine(url)
    try:
        upgrade(engine)
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _empty_postgres(engine: Engine) -> None:
    tables = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(
    request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path
) -> Iterator[Engine]:
    """A migrated, empty database of each kind."""
    if request.param == "sqlite":
        path = tmp_path / "echelon.db"
        shutil.copy(sqlite_template, path)
        sqlite = create_db_engine(f"sqlite:///{path}")
        yield sqlite
        sqlite.dispose()
        return
    postgres: Engine = request.getfixturevalue("postgres_engine")
    _empty_postgres(postgres)
    yield postgres


@pytest.fixture
def workspace(engine: Engine) -> Workspace:
    created, _ = create_workspace(engine, slug="default", name="测试店铺")
    return created
