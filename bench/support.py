"""What the benchmarks share: a PostgreSQL database of their own, dropped afterwards."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import text
from sqlalchemy.engine import make_url

from echelon.db.engine import create_db_engine

POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@contextmanager
def scratch_postgres(admin_url: str) -> Iterator[str]:
    """The URL of a fresh database on the server of ``admin_url``, dropped on exit."""
    name = f"echelon_bench_{uuid.uuid4().hex[:8]}"
    admin = create_db_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
